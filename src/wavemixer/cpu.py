"""What this CPU is: its model name and the instruction-set flags that decide torch's kernels.

Read once from ``/proc/cpuinfo`` (Linux); elsewhere the model is ``platform``'s and the flags what torch's own
dispatcher detected. Training asks whether bf16 is native; benchmarks record the machine with every result.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

__all__ = ["KERNEL_FLAGS", "cpu_description", "cpu_flags", "cpu_model"]

KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
"""The flags that change which kernels run (and so speed, and bf16 support): what result files record."""


@functools.cache
def _cpuinfo() -> tuple[str | None, frozenset[str] | None]:
    model, flags = None, None
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None, None
    for line in text.splitlines():
        if line.startswith("model name") and model is None:
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and flags is None:
            flags = frozenset(line.split(":", 1)[1].split())
    return model, flags


def cpu_model() -> str:
    """The CPU's marketing name (``AMD EPYC 9R14``), else the platform's processor or machine name."""
    return _cpuinfo()[0] or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags; without ``/proc/cpuinfo``, those of :data:`KERNEL_FLAGS` torch detects."""
    flags = _cpuinfo()[1]
    return flags if flags is not None else _torch_probed_flags()


_TORCH_PROBES = {
    "avx2": "_is_avx2_supported",
    "avx512f": "_is_avx512_supported",
    "avx512_bf16": "_is_avx512_bf16_supported",
    "amx_bf16": "_is_amx_tile_supported",  # every CPU with AMX tiles has AMX-BF16 (torch has no probe of its own)
    "amx_tile": "_is_amx_tile_supported",
}


def _torch_probed_flags() -> frozenset[str]:
    """The kernel-deciding flags torch's own CPU probes report (cpuinfo), for an OS without ``/proc/cpuinfo``.

    ``get_cpu_capability()`` cannot stand in: it reads ``AVX512`` on Sapphire Rapids and on Zen 4 alike."""
    import torch

    return frozenset(flag for flag, probe in _TORCH_PROBES.items() if getattr(torch.cpu, probe, lambda: False)())


def cpu_description() -> str:
    """``AMD EPYC (avx2 avx512f avx512_bf16)``: the model and the kernel-deciding flags it has, as a training
    run records the CPU it ran on (the model name alone does not tell an AVX2-only EPYC from a Zen 4)."""
    flags = cpu_flags()
    return f"{cpu_model()} ({' '.join(f for f in KERNEL_FLAGS if f in flags) or 'no AVX2'})"
