"""Multiply-accumulate counts from ``torch.utils.flop_counter``, run on the meta device (no memory)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .blocks import WaveMixBlock

__all__ = ["count_dwt_flops", "count_macs"]


def count_macs(model: nn.Module, input_size: Sequence[int], batch_size: int = 1) -> int:
    """MACs of conv, transposed-conv and matmul ops for one forward pass (FLOPs / 2).

    Runs a copy of the model on the meta device, so even 60 M-parameter models at high resolution cost
    milliseconds. Element-wise ops (the Haar DWT, GELU, BatchNorm) are not counted here.
    """
    meta = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(batch_size, *input_size, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(x)
    return counter.get_total_flops() // 2


def count_dwt_flops(model: nn.Module, input_size: Sequence[int], batch_size: int = 1) -> int:
    """Arithmetic of the Haar DWTs in one forward pass: 12 adds/multiplies per 2x2 patch, per level.

    Counted from the blocks' actual input sizes (hooks on the meta-device copy), so odd sizes and
    multi-level blocks are exact. Blocks with another mixer or wavelet add nothing here: their filter
    banks and convolutions are convolutions, counted by :func:`count_macs` (docs/wavelets.md).
    """
    meta = copy.deepcopy(model).to("meta").eval()
    total = 0

    def hook(block: nn.Module, args: tuple) -> None:
        nonlocal total
        if block.mixer != "dwt" or block.wavelet != "haar":
            return
        b, c, h, w = args[0].shape
        channels = c // 4
        for _ in range(block.level):
            h, w = (h + 1) // 2, (w + 1) // 2
            total += 12 * b * channels * h * w

    handles = [m.register_forward_pre_hook(hook) for m in meta.modules() if isinstance(m, WaveMixBlock)]
    with torch.no_grad():
        meta(torch.empty(batch_size, *input_size, device="meta"))
    for handle in handles:
        handle.remove()
    return total
