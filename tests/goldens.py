"""Bit-exact goldens, per CPU platform.

The last bits of a float result depend on the kernels torch picks: its version, the vector ISA it dispatches to,
whether oneDNN may take AMX kernels, and the CPU vendor (BLAS kernels are chosen per vendor). Sapphire Rapids and
AMD Zen 4 both read ``AVX512`` and differ in the first epoch's loss at the 7th digit. So a golden file keeps the
platform its values were recorded on, plus exact values recorded by the same code on other platforms
(``python -m tests.record_goldens``); on a platform with no record the tests compare with a tolerance. The key
is coarse: a newer CPU of a listed family (a Zen 5, a Granite Rapids) shares its key, and if its last bits differ
the exact tests fail loudly; record it then under a finer key.
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path
from typing import Any

import torch

RECORDING_VERSION = "ff3dc7e"
"""The commit whose training and run-folder results the goldens pin: the code before the training package was
reorganised. Every platform's exact record is made with it."""


def _cpu_vendor() -> str:
    """Read here, not through ``wavemixer.cpu``: the key must come out the same whichever version is imported."""
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


def _close(got: object, want: object, tol: float) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_close(got[k], want[k], tol) for k in want)
    if isinstance(want, str):  # summary.csv's values are strings
        return isinstance(got, str) and math.isclose(float(got), float(want), rel_tol=tol, abs_tol=tol)
    return math.isclose(got, want, rel_tol=tol, abs_tol=tol)


def training_within_tolerance(got: dict, golden: dict) -> bool:
    """A training's summary values and test metrics within 1e-3 (relative or absolute) of the golden's: what an
    unlisted platform must meet."""
    rows_ok = len(got["summary"]) == len(golden["summary"]) and all(
        _close(g, w, 1e-3) for g, w in zip(got["summary"], golden["summary"])
    )
    return rows_ok and _close(got["test"], golden["test"], 1e-3)


OLD_RUN_KEYS = ("eval_test", "eval_val", "predict", "resumed")
"""What the old run folder's golden holds per platform."""


def old_run_within_tolerance(key: str, got: Any, want: Any) -> bool:
    """One of the old run folder's results (``eval_test``, ``eval_val``, ``predict``, ``resumed``) near what the
    recording platform gave: scores and probabilities within 1e-4, image counts, labels and input z-scores
    exact; a resumed run's test top-1 within 2 points (two epochs from the same checkpoint, other last bits)."""
    if key == "resumed":
        return abs(got["test"]["top1"] - want["test"]["top1"]) <= 2.0
    if key == "predict":
        return len(got) == len(want) and all(
            (g["label"], g["input_z"]) == (w["label"], w["input_z"])
            and abs(g["probability"] - w["probability"]) <= 1e-4
            for g, w in zip(got, want)
        )
    return got["images"] == want["images"] and all(abs(got[k] - want[k]) <= 1e-4 for k in ("top1", "top5"))


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
