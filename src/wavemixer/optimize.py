"""Eval-time path: the same function as the trained model, computed with fewer ops.

* BatchNorm is folded into the layer before it. Every WaveMix level ends with
  ``project -> upsample -> BatchNorm`` and no nonlinearity in between, so the BN's affine map goes into
  the ConvTranspose2d (or into the 1x1 ``project`` conv for the parameter-free upsamplers, which act per
  channel). This removes one full-resolution read and write per level.
* ``channels_last`` memory layout, a lower-precision copy of the weights and ``torch.compile`` are opt-in.
* :func:`export_onnx` writes an ONNX graph (the DWT is plain tensor ops, so it exports).

The result is an ``eval()`` copy; the original model is not modified.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .blocks import LevelMLP
from .files import atomic_write

__all__ = [
    "ONNX_SINGLE_FILE_BYTES",
    "export_onnx",
    "fold_batchnorm",
    "onnx_weight_bytes",
    "optimize_for_inference",
    "save_onnx",
]

ONNX_SINGLE_FILE_BYTES = 1536 * 2**20
"""The most weight bytes an ONNX graph is saved with. Beyond 1.5 GiB (protobuf caps a file at 2 GiB) torch's
exporter moves the weights to an external-data file named after the file it saves, and wavemixer saves through a
temporary (atomic writes), whose name that file would keep; such graphs are refused instead."""


def onnx_weight_bytes(onnx_program: Any) -> int:
    """Bytes of the exported graph's initializers: what torch's exporter weighs against its external-data threshold
    (more than the model's parameters where constant folding keeps a weight twice, e.g. also transposed)."""
    values = onnx_program.model.graph.initializers.values()
    return sum(v.const_value.nbytes for v in values if v.const_value is not None)


def save_onnx(onnx_program: Any, path: str) -> None:
    """Save a ``torch.onnx.export`` program as one file, or refuse in one line a graph whose weights need two."""
    size = onnx_weight_bytes(onnx_program)
    if size > ONNX_SINGLE_FILE_BYTES:
        raise ValueError(
            f"the exported graph's weights take {size:,} bytes; an ONNX file is saved with at most "
            f"{ONNX_SINGLE_FILE_BYTES:,} (more needs an external-data file, which wavemixer does not write); "
            "export the model as pt2 or torchscript instead, which have no such limit"
        )
    onnx_program.save(path)


def _bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """``bn(y) == y * scale + shift`` per channel in eval mode (running statistics)."""
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    weight = bn.weight.double() if bn.affine else torch.ones_like(std)
    bias = bn.bias.double() if bn.affine else torch.zeros_like(std)
    scale = weight / std
    return scale, bias - bn.running_mean.double() * scale


@torch.no_grad()
def _fold_into(layer: nn.Module, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` into ``layer`` (Conv2d or ConvTranspose2d) whose output channels it normalises."""
    scale, shift = _bn_scale_shift(bn)
    weight = layer.weight.double()
    if isinstance(layer, nn.ConvTranspose2d):  # weight: (in, out / groups, kh, kw)
        if layer.groups != 1:
            raise ValueError("folding BatchNorm into a grouped ConvTranspose2d is not supported")
        weight = weight * scale.view(1, -1, 1, 1)
    else:  # Conv2d weight: (out, in / groups, kh, kw)
        weight = weight * scale.view(-1, 1, 1, 1)
    bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(scale)
    layer.weight.copy_(weight.to(layer.weight.dtype))
    new_bias = (bias * scale + shift).to(layer.weight.dtype)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias)
    else:
        layer.bias.copy_(new_bias)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold each :class:`LevelMLP`'s BatchNorm into its upsampling path, in place; returns the count.

    Only for inference: the folded model no longer tracks batch statistics.
    """
    folded = 0
    for level in model.modules():
        if not isinstance(level, LevelMLP) or not isinstance(level.norm, nn.BatchNorm2d):
            continue
        if isinstance(level.upsample, (nn.ConvTranspose2d, nn.Conv2d)):
            target = level.upsample  # convtranspose / pixelshuffle (conv after the shuffle)
        elif isinstance(level.upsample, nn.Upsample) and isinstance(level.project, nn.Conv2d):
            target = level.project  # nearest / bilinear upsampling commutes with a per-channel affine map
        else:
            continue
        _fold_into(target, level.norm)
        level.norm = nn.Identity()
        folded += 1
    return folded


def optimize_for_inference(
    model: nn.Module,
    *,
    channels_last: bool = False,
    dtype: torch.dtype | None = None,
    compile: bool = False,
) -> nn.Module:
    """An eval-mode copy with BatchNorm folded; optionally channels_last, cast to ``dtype``, compiled.

    Outputs equal the plain model's within fp32 rounding (the tests check 1e-5 relative to the output's
    scale); with ``dtype=torch.bfloat16`` they are those of a bf16 model.
    """
    fast = copy.deepcopy(model).eval()
    fold_batchnorm(fast)
    if dtype is not None:
        fast = fast.to(dtype)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    for p in fast.parameters():
        p.requires_grad_(False)
    if compile:
        return torch.compile(fast)  # type: ignore[return-value]
    return fast


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    input_size: Sequence[int],
    *,
    batch_size: int = 1,
    opset: int = 18,
    fold: bool = True,
    dynamic_batch: bool = True,
) -> str:
    """Write ``model`` (eval mode, BatchNorm folded unless ``fold=False``) as ONNX; returns the path.

    Uses ``torch.export`` and the ONNX exporter built on it (``torch.onnx.export(dynamo=True)``, which needs
    the ``onnx`` extra); the graph is fixed to ``input_size`` and, with ``dynamic_batch``, takes any batch
    size. Its input is named ``input`` and its output ``output``. :func:`wavemixer.export.export_model` writes
    graphs for every input size.
    """
    import torch.fx.experimental._config as fx_config

    fast = copy.deepcopy(model).eval()
    if fold:
        fold_batchnorm(fast)
    x = torch.randn(batch_size, *input_size)
    path = os.fspath(path)
    shapes = {"x": {0: torch.export.Dim("batch", min=1)}} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's progress notes
        # batch 1 is a batch like any other: no size is specialised to 0 or 1 while tracing
        with fx_config.patch(backed_size_oblivious=True):
            program = torch.export.export(fast, (x,), dynamic_shapes=shapes)
        onnx_program = torch.onnx.export(
            program, (x,), dynamo=True, opset_version=opset, input_names=["input"], output_names=["output"],
            verbose=False,
        )  # fmt: skip
    atomic_write(path, lambda tmp: save_onnx(onnx_program, tmp), suffix=".onnx")
    return path
