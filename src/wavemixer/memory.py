"""Training-time activation savings that leave the model's function and gradients unchanged.

Two things a WaveMix block keeps for backward are cheap to rebuild:

* **The level MLP's interior** (expand output, GELU output, dropout mask and output). It is recomputed
  from the MLP input, which backward keeps anyway; the cost is the small 1x1 expand conv again.
* **The BatchNorm input** at the end of each block. With ``out = x + BN(z)`` both ``x`` and ``out`` are
  kept anyway (they are the inputs of this and of the next block's 1x1 reduction), so ``z`` follows from
  ``(out - x - beta) / gamma * sigma + mu`` and need not be stored (the in-place activated BatchNorm idea,
  applied to the residual). This needs every ``|gamma|`` clear of zero and an fp32/fp64 residual
  stream; otherwise the ordinary path runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["GAMMA_FLOOR", "ResidualBatchNorm", "can_invert_batchnorm", "residual_batchnorm"]

#: below this ``|gamma|`` the BatchNorm input is not rebuilt from its output (precision would suffer)
GAMMA_FLOOR = 1e-3


class ResidualBatchNorm(torch.autograd.Function):
    """``x + batch_norm(z)`` in training mode, saving ``x`` and the output instead of ``z``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        z: Tensor,
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        momentum: float,
        eps: float,
    ) -> Tensor:
        normed, mean, invstd = torch.native_batch_norm(z, weight, bias, running_mean, running_var, True, momentum, eps)
        out = normed.add_(x)
        ctx.eps = eps
        ctx.save_for_backward(x, out, weight, bias, mean, invstd)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, out, weight, bias, mean, invstd = ctx.saved_tensors
        shape = (1, -1, 1, 1)
        scale = (1.0 / (weight * invstd)).view(shape)  # sigma / gamma
        z = (out - x - bias.view(shape)) * scale + mean.view(shape)
        grad_z, grad_w, grad_b = torch.ops.aten.native_batch_norm_backward(
            grad_out, z, weight, None, None, mean, invstd, True, ctx.eps, [True, True, True]
        )
        return grad_out, grad_z, grad_w, grad_b, None, None, None, None


def can_invert_batchnorm(norm: nn.Module, x: Tensor, z: Tensor) -> bool:
    """Whether :func:`residual_batchnorm` may replace ``x + norm(z)`` (the ``|gamma|`` check is separate)."""
    return (
        isinstance(norm, nn.BatchNorm2d)
        and norm.training
        and norm.affine
        and norm.momentum is not None
        and z.shape == x.shape
        and z.dtype == x.dtype == norm.weight.dtype
        and x.dtype in (torch.float32, torch.float64)
    )


def residual_batchnorm(x: Tensor, norm: nn.BatchNorm2d, z: Tensor) -> Tensor:
    """``x + norm(z)`` for a training-mode BatchNorm, without keeping ``z`` for backward."""
    if norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
    running = norm.track_running_stats
    return ResidualBatchNorm.apply(
        x,
        z,
        norm.weight,
        norm.bias,
        norm.running_mean if running else None,
        norm.running_var if running else None,
        norm.momentum,
        norm.eps,
    )
