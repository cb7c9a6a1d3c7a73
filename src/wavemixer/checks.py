"""Argument checks shared by model constructors, the training configuration and the command line.

Each check raises a one-line :class:`ValueError` (or :class:`TypeError` for a wrong type) that names the
argument, the value given and what is allowed, before the value can reach torch and fail deep inside it.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_INPUT_SIDE",
    "Range",
    "check_bool",
    "check_device",
    "check_float",
    "check_int",
    "check_int_list",
    "check_str",
]


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``ge``/``gt`` below, ``le``/``lt`` above (any may be ``None``)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, value: float) -> bool:
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def describe(self) -> str:
        """``in [0, 1)``, ``>= 1``, ``> 0`` ...: the range as messages and ``--help`` show it."""
        ge, gt, le, lt = (None if v is None else _bound(v) for v in (self.ge, self.gt, self.le, self.lt))
        low = f"[{ge}" if ge is not None else f"({gt}" if gt is not None else None
        high = f"{le}]" if le is not None else f"{lt})" if lt is not None else None
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f">= {ge}" if ge is not None else f"> {gt}"
        if high:
            return f"<= {le}" if le is not None else f"< {lt}"
        return "(any value)"


def _bound(value: float) -> str:
    """A bound as a reader types it: integers in full (4294967295, not 4.29497e+09), other numbers with ``g``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_int(name: str, value: Any, *, ge: int | None = None, le: int | None = None) -> int:
    """An integer (not a bool, not a float such as ``16.0``) within ``[ge, le]``."""
    bounds = Range(ge=ge, le=le)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):  # numpy integers are fine
        raise TypeError(f"{name} must be an integer {bounds.describe()}, got {value!r} ({type(value).__name__})")
    if value not in bounds:
        raise ValueError(f"{name} must be an integer {bounds.describe()}, got {value}")
    return value


def check_float(name: str, value: Any, bounds: Range = Range()) -> float:
    """A finite real number (ints allowed, bools not) within ``bounds``."""
    rule = bounds.describe() if bounds != Range() else "a finite number"
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number {rule}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value not in bounds:
        raise ValueError(f"{name} must be {rule}, got {value}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool; ``TypeError`` naming ``name`` otherwise (1 and "yes" are not bools)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def check_int_list(name: str, value: Any, *, ge: int | None = None) -> list[int]:
    """A list/tuple of integers, each within bounds (``name[i]`` in messages)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of integers, got {value!r} ({type(value).__name__})")
    return [check_int(f"{name}[{i}]", v, ge=ge) for i, v in enumerate(value)]


def check_str(name: str, value: Any, choices: Any = None) -> str:
    """A string, one of ``choices`` when given."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
    if choices is not None and value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


DEVICE_PATTERN = r"auto|cpu|mps|(cuda|xpu)(:\d+)?"

#: the largest image side a model input is resized to: 4096² RGB floats are 200 MB an image already, and a
#: typo such as 100000 would otherwise try to allocate tens of gigabytes before failing
MAX_INPUT_SIDE = 4096


def check_device(name: str, value: Any, *, allow_auto: bool = True) -> str:
    """A device name torch understands and this machine has (no ``tpu``, no ``cuda`` without a GPU)."""
    check_str(name, value)
    allowed = "auto, cpu, cuda, cuda:N, xpu[:N], mps" if allow_auto else "cpu, cuda, cuda:N, xpu[:N], mps"
    if not re.fullmatch(DEVICE_PATTERN, value) or (value == "auto" and not allow_auto):
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    if value.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"{name} {value}: CUDA is not available on this machine; use {name} cpu")
        index = int(value.split(":")[1]) if ":" in value else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"{name} {value}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return value
