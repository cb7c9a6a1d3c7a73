"""Type and range checks for :class:`~wavemixer.train.config.TrainConfig`, driven by each field's declaration.

A field's annotation gives its type (``int | None``, ``float``, ``bool``, ``str``, ``dict``) and its ``_opt``
metadata its range (``ge``/``gt``/``le``/``lt``), ``choices`` or ``pattern``; a new field is checked with no
extra code. The same checks serve the command line (values arrive as strings), YAML files and the Python API.

Numeric strings are accepted for numeric fields: the command line passes every value as text, and PyYAML
(YAML 1.1) reads ``1e-3`` as the string ``'1e-3'``. Anything else of the wrong type is an error; in particular
a bool is never read from a string (``channels_last: "no"`` is rejected, not taken as true).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from typing import Any

from wavemixer.checks import Range

__all__ = ["check_fields", "check_option", "flag", "validate_config"]

_INT = re.compile(r"[+-]?\d+")


def flag(name: str) -> str:
    """``batch_size`` -> ``--batch-size``: how messages name an option."""
    return "--model-arg" if name == "model_args" else "--" + name.replace("_", "-")


def _kind(f: dataclasses.Field) -> tuple[str, bool]:
    """Base type name and whether ``None`` is allowed, from an annotation such as ``'int | None'``."""
    text = f.type.__name__ if isinstance(f.type, type) else str(f.type)
    parts = [p.strip() for p in text.split("|")]
    optional = "None" in parts
    base = next((p for p in parts if p != "None"), "Any")
    return base.split("[")[0], optional


def _number(value: Any, base: str) -> Any:
    """``value`` as an int/float, or ``None`` when it is not one (bools are not numbers here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if base == "int":
            return int(text) if _INT.fullmatch(text) else None
        try:
            return float(text)
        except ValueError:
            return None
    if base == "int":
        return int(value) if isinstance(value, numbers.Integral) else None
    return float(value) if isinstance(value, numbers.Real) else None


def _expected(base: str, bounds: Range | None, choices: Any) -> str:
    if choices is not None:
        return "one of " + ", ".join(map(str, choices))
    what = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string"}
    what.update(dict="a mapping of key: value")
    text = what.get(base, base)
    return f"{text} {bounds.describe()}" if bounds is not None else text


def check_option(f: dataclasses.Field, value: Any, label: str | None = None) -> Any:
    """``value`` converted to field ``f``'s type, or a one-line ``ValueError`` naming option, value and range."""
    label = label or flag(f.name)
    base, optional = _kind(f)
    bounds, choices, pattern = f.metadata.get("range"), f.metadata.get("choices"), f.metadata.get("pattern")
    expected = _expected(base, bounds, choices) + (" (or unset)" if optional else "")
    if value is None:
        if optional:
            return None
        raise ValueError(f"{label} must be {expected}, got nothing (null)")
    if base in ("int", "float"):
        number = _number(value, base)
        if number is None or (base == "float" and not math.isfinite(number)) or (bounds and number not in bounds):
            raise ValueError(f"{label} must be {expected}, got {value!r}")
        value = number
    elif base == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{label} must be true or false, got {value!r} ({type(value).__name__})")
    elif base == "str":
        if not isinstance(value, str):
            raise ValueError(f"{label} must be {expected}, got {value!r} ({type(value).__name__})")
    elif base in ("list", "tuple"):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ValueError(f"{label} must be a list, got {value!r} ({type(value).__name__})")
    elif base == "dict":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"{label} must be {expected} with string keys, got {value!r}")
    if choices is not None and value not in choices:
        raise ValueError(f"{label} must be {expected}; got {value!r}")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ValueError(f"{label} must be {f.metadata.get('pattern_help', pattern)}; got {value!r}")
    return value


def validate_config(cfg: Any) -> None:
    """Check and convert every field of a config dataclass in place."""
    for f in dataclasses.fields(cfg):
        object.__setattr__(cfg, f.name, check_option(f, getattr(cfg, f.name)))


def check_fields(cls: Any, **values: Any) -> dict[str, Any]:
    """Check values for some of ``cls``'s fields (other commands' flags that mean the same as train's)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return {name: check_option(fields[name], value) for name, value in values.items()}
