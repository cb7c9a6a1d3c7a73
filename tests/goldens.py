"""Bit-exact goldens, per CPU platform.

The last bits of a float result depend on the kernels torch picks: its version, the vector ISA it dispatches to,
whether oneDNN may take AMX kernels, and the CPU vendor (BLAS kernels are chosen per vendor). Sapphire Rapids and
AMD Zen 4 both read ``AVX512`` and differ in the first epoch's loss at the 7th digit. So a golden file keeps the
platform its values were recorded on, plus exact values recorded by the same code on other platforms
(``python -m tests.record_goldens``); on a platform with no record the tests compare with a tolerance.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import torch


def _cpu_vendor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def _has_amx() -> bool:
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


PLATFORM: dict[str, object] = dict(
    torch=torch.__version__,
    cpu_capability=torch.backends.cpu.get_cpu_capability(),
    cpu_vendor=_cpu_vendor(),
    amx=_has_amx(),
)


def exact_values(golden: dict) -> dict | None:
    """The values recorded on this platform (the golden's own, or one of its ``exact`` records), else None."""
    if golden["recorded_with"] == PLATFORM:
        return golden
    for record in golden.get("exact", []):
        if record["platform"] == PLATFORM:
            return record
    return None


def weights_sha256(folder: Path) -> str:
    """A checksum of a saved model's tensors (names, dtypes, shapes and bytes), whatever the file layout."""
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def summary_values(run: Path) -> list[dict[str, str]]:
    """``summary.csv`` without its wall-clock columns."""
    rows = csv.DictReader((run / "summary.csv").open())
    return [{k: v for k, v in row.items() if k not in ("epoch_s", "time_s")} for row in rows]
