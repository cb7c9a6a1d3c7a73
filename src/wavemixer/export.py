"""Deployment graphs that run at every input size the eager model takes: ONNX, torch.export (.pt2), TorchScript.

The DWT pads odd sizes with ``size % 2`` computed inside the graph and crops with symbolic sizes
(:mod:`wavemixer.tracing`), so one graph serves every height, width and batch size, odd sizes and other
parities included. :func:`export_model` checks that: it runs the written graph at sizes of different parity
and compares it with the eager model. A model that cannot be exported for every size is refused with the
constraint torch.export reports.

``torch.jit.script`` is not offered: it is deprecated in PyTorch and cannot compile the forward (typed
Python helpers, FX-wrapped checks, checkpointing); a TorchScript *trace* gives the same runtime and, here,
keeps sizes symbolic.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx.experimental._config as fx_config
from torch import Tensor, nn

from .optimize import fold_batchnorm, save_onnx

__all__ = ["FORMATS", "ExportCheck", "ExportResult", "check_opset", "check_sizes", "export_model", "export_program"]

FORMATS = ("onnx", "pt2", "torchscript")
"""``onnx``: ONNX (opset 18) via torch.export; ``pt2``: ``torch.export.save`` archive; ``torchscript``: a
``torch.jit.trace`` archive."""

MIN_OPSET = 18
"""The oldest ONNX opset torch.export's exporter writes (asked for less, it warns and writes 18 anyway)."""


def check_opset(opset: Any, name: str = "opset") -> int:
    """An opset torch.export's exporter writes and the installed ``onnx`` knows, refused in one line otherwise."""
    onnx = _require("onnx", "onnx")
    newest = int(onnx.defs.onnx_opset_version())
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"{name} must be an integer in [{MIN_OPSET}, {newest}] (the exporter writes opset {MIN_OPSET} or newer; "
            f"onnx {onnx.__version__} knows up to {newest}), got {opset!r}"
        )
    return opset


SCRIPT_REFUSAL = (
    "torch.jit.script cannot compile wavemixer models (it is deprecated in PyTorch and rejects their "
    "Python-typed forward); use --format torchscript (a trace: same TorchScript runtime, every input size), "
    "pt2 or onnx"
)


@dataclass
class ExportCheck:
    """The written graph against the eager model at one input size."""

    size: tuple[int, int]
    max_abs_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_error <= self.tolerance


@dataclass
class ExportResult:
    """The written file, its format, whether its input sizes are dynamic, and the checks against the eager model."""

    path: Path
    format: str
    dynamic: bool
    checks: list[ExportCheck] = field(default_factory=list)


def _min_size(model: nn.Module) -> int:
    return int(getattr(model, "min_input_size", 1))


def check_sizes(height: int, width: int, min_size: int = 1) -> list[tuple[int, int]]:
    """Three sizes of different parity at every DWT level: the example, odd x odd, and a larger mixed one."""
    sizes = [(height, width), (height + 5, width + 13), (3 * height, 2 * width + 1)]
    return [(max(h, min_size), max(w, min_size)) for h, w in sizes]


def export_program(model: nn.Module, example: Tensor, *, dynamic: bool = True) -> torch.export.ExportedProgram:
    """``torch.export`` with batch, height and width symbolic (or all fixed with ``dynamic=False``).

    Sizes are treated as "not 0 or 1" when tracing broadcasts (``backed_size_oblivious``): the model never
    broadcasts a spatial axis, so the graph is also right for 1-pixel levels, and no size is specialised.
    A plain ``torch.export.export`` with ``Dim`` ranges works too when its minimum keeps every DWT level at
    least 2 pixels wide (PyTorch's contiguity checks guard on size-1 axes otherwise).
    """
    if not dynamic:
        return torch.export.export(model, (example,))
    shapes = {
        "x": {
            0: torch.export.Dim("batch", min=1),
            2: torch.export.Dim("height", min=_min_size(model)),
            3: torch.export.Dim("width", min=_min_size(model)),
        }
    }
    try:
        with fx_config.patch(backed_size_oblivious=True):
            return torch.export.export(model, (example,), dynamic_shapes=shapes)
    except torch._dynamo.exc.UserError as exc:  # a guard on the input size: say which, in one line
        detail = next((line.strip(" -") for line in str(exc).splitlines() if "guard" in line), str(exc))
        raise ValueError(
            f"{type(model).__name__} cannot be exported for every input size: {detail}; "
            "export a fixed size instead (--static)"
        ) from None


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"this needs the {module!r} package: pip install 'wavemixer[{extra}]'", name=module
        ) from None


def _write(fmt: str, model: nn.Module, example: Tensor, path: Path, dynamic: bool, opset: int) -> None:
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(model, (example,), check_trace=False)
        traced.save(str(path))
        return
    program = export_program(model, example, dynamic=dynamic)
    if fmt == "pt2":
        torch.export.save(program, str(path))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_program = torch.onnx.export(program, (example,), dynamo=True, opset_version=opset, verbose=False)
    save_onnx(onnx_program, str(path))


def _runner(fmt: str, path: Path, opset: int) -> Any:
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            loaded = torch.jit.load(str(path))
        return lambda x: loaded(x)
    if fmt == "pt2":
        module = torch.export.load(str(path)).module()
        return lambda x: module(x)
    ort = _require("onnxruntime", "onnx")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types (InvalidGraph, Fail, ...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(
            f"onnxruntime {ort.__version__} cannot load the exported opset-{opset} graph ({reason[:200]}); "
            f"export a lower opset ({MIN_OPSET} loads), or pass --no-verify to keep it unchecked"
        ) from None
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def export_model(
    model: nn.Module,
    path: str | os.PathLike,
    format: str = "onnx",
    *,
    input_size: Sequence[int] | None = None,
    dynamic: bool = True,
    fold: bool = True,
    verify: bool = True,
    opset: int = 18,
) -> ExportResult:
    """Write ``model`` (an eval-mode copy, BatchNorm folded unless ``fold=False``) to ``path``.

    ``input_size`` is ``(C, H, W)`` of the example input (default: the model's channels at 32x32); with
    ``dynamic`` (the default) the graph takes any batch, height and width. ``verify`` runs the written file
    at :func:`check_sizes` (only the example size when not dynamic) and raises if it disagrees with eager.
    """
    if format == "torchscript-script":
        raise ValueError(SCRIPT_REFUSAL)
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; expected one of {list(FORMATS)}")
    if format == "onnx":  # before any work: a missing package is reported at once
        for module in ("onnx", "onnxscript", *(["onnxruntime"] if verify else [])):
            _require(module, "onnx")
        check_opset(opset)
    channels = int(getattr(model, "in_chans", 3))
    c, h, w = input_size if input_size is not None else (channels, 32, 32)
    if c != channels or min(h, w) < _min_size(model):
        raise ValueError(
            f"--input-size {c} {h} {w} does not fit the model: it takes {channels} channels and at least "
            f"{_min_size(model)}x{_min_size(model)} pixels"
        )
    reference = copy.deepcopy(model).eval()
    deployed = copy.deepcopy(reference)
    if fold:
        fold_batchnorm(deployed)
    for p in deployed.parameters():
        p.requires_grad_(False)
    dtype = next(reference.parameters()).dtype
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, c, h, w, generator=generator, dtype=dtype)
    path = Path(path)
    with torch.no_grad():
        _write(format, deployed, example, path, dynamic, opset)
    result = ExportResult(path, format, dynamic)
    if not verify:
        return result
    run = _runner(format, path, opset)
    sizes = check_sizes(h, w, _min_size(model)) if dynamic else [(h, w)]
    for i, (sh, sw) in enumerate(sizes):
        x = torch.randn(1 + i % 2, c, sh, sw, generator=generator, dtype=dtype)
        with torch.no_grad():
            expected = reference(x)
            got = run(x)
        tolerance = 1e-4 * max(1.0, float(expected.abs().max()))
        error = float((got - expected).abs().max()) if got.shape == expected.shape else float("inf")
        result.checks.append(ExportCheck((sh, sw), error, tolerance))
    bad = [ch for ch in result.checks if not ch.ok]
    if bad:
        raise ValueError(
            f"the exported {format} graph disagrees with the eager model at "
            + ", ".join(f"{ch.size[0]}x{ch.size[1]} (max error {ch.max_abs_error:.3g})" for ch in bad)
        )
    return result
