"""x2 bilinear upsampling as two small matrix products, the fast form on CPU for WaveMix's map sizes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tracing import is_symbolic

__all__ = ["BilinearUpsample2x", "bilinear_matrix", "upsample_bilinear2x_matmul"]

# Largest side for which the matrix form beat F.interpolate (forward + backward, one thread, AMD Zen 4;
# scripts/bench_upsample.py, docs/bench/upsample-cpu.csv): at 32x32 it took 0.42x the time in fp32 and
# 0.17x in bf16; fp32 broke even at 48x48 and lost from 64x64 on (1.19x), bf16 still won at 128x128 (0.91x).
_MATMUL_MAX_SIDE = {torch.float32: 40, torch.float64: 40, torch.bfloat16: 128, torch.float16: 128}


def bilinear_matrix(size: int, *, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The ``(2 * size, size)`` matrix that F.interpolate(bilinear, align_corners=False) applies along one axis.

    Built by interpolating the identity, so edge clamping follows PyTorch's own kernel exactly; its entries
    (0, 0.25, 0.75, 1) are exact in every floating dtype.
    """
    eye = torch.eye(size, dtype=torch.float32, device=device)[None, None]
    return F.interpolate(eye, size=(2 * size, size), mode="bilinear", align_corners=False)[0, 0].to(dtype)


def upsample_bilinear2x_matmul(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """``F.interpolate(x, scale_factor=2, mode="bilinear")`` as ``A_h @ x @ A_w^T``, at any size.

    ``dtype`` is that of the matrices (default ``x.dtype``; under autocast, the autocast dtype).
    """
    dtype = x.dtype if dtype is None else dtype
    a_h = bilinear_matrix(x.shape[-2], dtype=dtype, device=x.device)
    a_w = bilinear_matrix(x.shape[-1], dtype=dtype, device=x.device)
    return torch.matmul(torch.matmul(a_h, x), a_w.t())


def _compute_dtype(x: Tensor) -> torch.dtype:
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


class BilinearUpsample2x(nn.Upsample):
    """``nn.Upsample(scale_factor=2, mode="bilinear")`` computed as ``A_h @ x @ A_w^T`` on small CPU maps.

    ``upsample_bilinear2d`` and above all its backward are gather/scatter kernels that ran at a few hundred
    MB/s here, and under CPU autocast it also casts to fp32 and back; the matrix form turns the work into
    GEMMs (bf16 included). Same outputs up to float rounding; other devices and larger maps keep
    ``F.interpolate``. A subclass, so code that treats it as an ``nn.Upsample`` (BN folding) still does.
    """

    matmul_on_cpu: bool = True
    """Class-wide switch, for A/B measurements (scripts/bench_upsample.py); off = plain ``F.interpolate``."""

    def __init__(self) -> None:
        super().__init__(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        if is_symbolic(x) or not self.matmul_on_cpu or x.device.type != "cpu" or x.dim() != 4:
            return super().forward(x)
        dtype = _compute_dtype(x)
        if max(x.shape[-2:]) > _MATMUL_MAX_SIDE.get(dtype, 0):
            return super().forward(x)
        out = upsample_bilinear2x_matmul(x, dtype)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)
        return out
