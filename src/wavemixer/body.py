"""Stem + stack of residual WaveMix blocks: the encoder shared by every model family."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, Literal, get_args

import torch
import torch.fx
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .blocks import LevelMLP, Upsampler, WaveMixBlock
from .checks import Range, check_float, check_int
from .dwt import BoundaryMode
from .filterbank import warn_if_level_too_high
from .memory import GAMMA_FLOOR, can_invert_batchnorm, residual_batchnorm
from .mixers import HAAR_ONLY_MIXERS, Mixer
from .tracing import crop_to, is_symbolic

__all__ = ["Stem", "WaveMixBody", "build_stem", "check_image_batch", "stem_reduction"]

Stem = Literal["patchify", "strided"]
"""``patchify``: Conv3x3 in->C/4, Conv3x3 C/4->C/2 (both stride 1), Conv pxp stride p, GELU, BatchNorm.
``strided``: Conv3x3 in->C/2 and Conv3x3 C/2->C, both with stride ``stride`` (``stride=1`` is the
two-conv stride-1 stem of the WaveMix-Lite CIFAR/MNIST models)."""

STEMS = frozenset(get_args(Stem))


def build_stem(stem: str, *, in_chans: int, dim: int, patch_size: int, stride: int) -> nn.Sequential:
    """Layers are numbered as in the reference package so its weights map one to one."""
    if stem == "patchify":
        return nn.Sequential(
            nn.Conv2d(in_chans, dim // 4, 3, 1, 1),
            nn.Conv2d(dim // 4, dim // 2, 3, 1, 1),
            nn.Conv2d(dim // 2, dim, patch_size, patch_size),
            nn.GELU(),
            nn.BatchNorm2d(dim),
        )
    return nn.Sequential(
        nn.Conv2d(in_chans, dim // 2, 3, stride, 1),
        nn.Conv2d(dim // 2, dim, 3, stride, 1),
    )


@torch.fx.wrap
def check_image_batch(x: Any, weight: Tensor, in_chans: int, min_size: int) -> None:
    """Reject what a WaveMix forward cannot take, with a one-line message instead of a torch traceback.

    Not cast silently: integer or bool images need scaling (``x.float() / 255``) and then the model's
    normalisation, which a cast cannot guess; a floating dtype other than the weights' (``weight``) is
    usually a forgotten ``model.to(dtype)``, except under autocast, which casts per op.
    Wrapped for ``torch.fx`` so FX graphs (feature extractors) keep the check instead of failing to trace it.
    """
    if not isinstance(x, Tensor):
        raise TypeError(
            f"expected a torch.Tensor image batch (B, C, H, W), got {type(x).__name__}; convert it with "
            "torch.as_tensor(...) and scale it to floats"
        )
    if x.dim() != 4:
        raise ValueError(f"expected a 4-D image batch (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"expected floating-point images, got dtype {x.dtype}; convert and scale them first "
            "(e.g. x.float() / 255, then the model's mean/std normalisation)"
        )
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"input dtype {x.dtype} differs from the model's weights ({weight.dtype}); call "
            f"model.to({x.dtype}) or pass x.to({weight.dtype}) (or run under torch.autocast)"
        )
    if x.shape[1] != in_chans:
        raise ValueError(
            f"this model takes {in_chans}-channel images (in_chans={in_chans}), got {x.shape[1]} "
            "channels; convert the images or build the model with a matching in_chans"
        )
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise ValueError(
            f"input {h}x{w} is smaller than the patchify stem's patch ({min_size}); "
            f"use images of at least {min_size}x{min_size}"
        )


def stem_reduction(stem: str, *, patch_size: int, stride: int) -> int:
    """How much the stem shrinks each spatial side."""
    return patch_size if stem == "patchify" else stride * stride


@contextlib.contextmanager
def _frozen_batchnorm_stats(module: nn.Module) -> Iterator[None]:
    """Recomputation under gradient checkpointing must not update BatchNorm running stats twice."""
    buffers = [
        buf
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for buf in (m.running_mean, m.running_var, m.num_batches_tracked)
        if buf is not None
    ]
    saved = [buf.clone() for buf in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in zip(buffers, saved):
                buf.copy_(value)


class WaveMixBody(nn.Module):
    """Validated hyper-parameters, stem, residual blocks, gradient checkpointing and input checks."""

    def __init__(
        self,
        *,
        depth: int,
        final_dim: int,
        ff_channel: int | None,
        mult: int,
        level: int,
        dropout: float,
        stem: Stem,
        patch_size: int,
        stride: int,
        in_chans: int,
        upsample: Upsampler,
        mode: BoundaryMode,
        mixer: Mixer = "dwt",
        wavelet: str = "haar",
    ) -> None:
        super().__init__()
        check_int("depth", depth, ge=1)
        check_int("final_dim", final_dim, ge=4)
        if ff_channel is not None:
            check_int("ff_channel", ff_channel, ge=1)
        check_int("mult", mult, ge=1)
        check_float("dropout", dropout, Range(ge=0, lt=1))
        if not isinstance(stem, str) or stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; expected one of {sorted(STEMS)}")
        check_int("in_chans", in_chans, ge=1)
        check_int("patch_size", patch_size, ge=1)
        check_int("stride", stride, ge=1)
        if ff_channel is not None and upsample != "convtranspose" and ff_channel != final_dim:
            raise ValueError(
                f"ff_channel={ff_channel} applies only to upsample='convtranspose'; leave it unset with "
                f"upsample={upsample!r} (the MLP then projects straight to the output width)"
            )
        self.in_chans = in_chans
        self.num_features = final_dim
        self.reduction = stem_reduction(stem, patch_size=patch_size, stride=stride)
        self.min_input_size = patch_size if stem == "patchify" else 1
        self.grad_checkpointing = False
        self.memory_efficient = False
        self._level_warned = False
        self._invertible_norms = False
        self._norms_clear_of_zero = False  # the last eager check of every |gamma| > GAMMA_FLOOR
        self.stem = build_stem(stem, in_chans=in_chans, dim=final_dim, patch_size=patch_size, stride=stride)
        self.blocks = nn.ModuleList(
            WaveMixBlock(
                final_dim,
                level=level,
                mult=mult,
                ff_channel=ff_channel,
                dropout=dropout,
                upsample=upsample,
                mode=mode,
                mixer=mixer,
                wavelet=wavelet,
            )
            for _ in range(depth)
        )
        self.feature_info = [
            dict(num_chs=final_dim, reduction=self.reduction, module=f"blocks.{i}") for i in range(depth)
        ]

    # -- construction record (config.json) ------------------------------------------------------
    def _record_config(self, config: dict[str, Any]) -> None:
        self.config = dict(config)

    # -- checks ---------------------------------------------------------------------------------
    def check_input(self, x: Tensor) -> None:
        """One-line errors for inputs the model cannot take (kept as one call in FX graphs)."""
        check_image_batch(x, self.stem[0].weight, self.in_chans, self.min_input_size)

    # -- timm-style API -------------------------------------------------------------------------
    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the stem and each block in backward: activation memory O(1 block) instead of O(depth)."""
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def set_memory_efficient(self, enable: bool = True) -> None:
        """Keep fewer activations for backward at a small recompute cost; outputs and gradients unchanged.

        Recomputes each level MLP's interior and rebuilds every block's BatchNorm input from the residual
        stream (see :mod:`wavemixer.memory`). Training only; gradient checkpointing takes precedence.
        """
        self.memory_efficient = enable
        for m in self.modules():
            if isinstance(m, LevelMLP):
                m.recompute_mlp = enable
        self.refresh_memory_plan()

    @torch.jit.ignore
    def refresh_memory_plan(self) -> bool:
        """Check (one host sync) whether every block's BatchNorm input can be rebuilt from its output.

        Eager forward passes do this themselves; a ``torch.compile``-d model cannot without a graph break
        (a ``.item()``), so it uses the result of the last check: a training loop calls this before each
        compiled step (``wavemixer train --compile --memory-efficient`` does), and a flip recompiles once.
        """
        gammas = [b.levels[0].norm.weight for b in self.blocks if isinstance(b.levels[0].norm, nn.BatchNorm2d)]
        clear = len(gammas) == len(self.blocks) and bool(torch.cat(gammas).abs().min() > GAMMA_FLOOR)
        self._norms_clear_of_zero = clear
        return clear

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm's parameter groups (layer-wise learning-rate decay): the stem, then one group per block."""
        return dict(stem=r"^stem", blocks=r"^blocks\.(\d+)")

    def _check_invertible_norms(self) -> None:
        """One host sync per eager step (none when compiled): may each block's BatchNorm input be rebuilt?"""
        use = self.memory_efficient and self.training and torch.is_grad_enabled() and not self.grad_checkpointing
        if use and not torch.jit.is_scripting():
            use = self._norms_clear_of_zero if torch.compiler.is_compiling() else self.refresh_memory_plan()
        self._invertible_norms = use

    def _run_block(self, block: WaveMixBlock, x: Tensor) -> Tensor:
        if self._invertible_norms:
            z = block.forward_pre_norm(x)
            norm = block.levels[0].norm
            if can_invert_batchnorm(norm, x, z):
                return residual_batchnorm(x, norm, z)  # type: ignore[arg-type]
            return x + crop_to(norm(z), x.shape[-2], x.shape[-1])
        return x + self._maybe_checkpointed(block, x)

    def _run_stem(self, x: Tensor) -> Tensor:
        # checkpointed too: the stem's first conv output is as large as a block input (larger for stride 2)
        x = self._maybe_checkpointed(self.stem, x)
        self._warn_level_once(x)
        return x

    def _warn_level_once(self, tokens: Tensor) -> None:
        """Warn (once per model) when the token map is too small for the blocks' number of levels."""
        if self._level_warned or not self.blocks or torch.compiler.is_compiling() or is_symbolic(tokens):
            return  # a traced graph has no concrete size to judge (and must not branch on one)
        block = self.blocks[0]
        # every mixer but the 2x2 ones takes the wavelet's support (random and conv too); those behave as Haar
        wavelet = "haar" if block.mixer in HAAR_ONLY_MIXERS else block.wavelet
        if warn_if_level_too_high(tokens.shape[-2:], block.level, wavelet):
            self._level_warned = True

    def _maybe_checkpointed(self, module: nn.Module, x: Tensor) -> Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled() and not torch.jit.is_scripting():
            if torch.compiler.is_compiling():
                # compiled, the recomputation is the partitioner's and buffer updates are applied once, so
                # BatchNorm statistics need no freezing (nor can dynamo trace a custom context_fn)
                return checkpoint(module, x, use_reentrant=False)
            return checkpoint(
                module,
                x,
                use_reentrant=False,
                context_fn=lambda: (contextlib.nullcontext(), _frozen_batchnorm_stats(module)),
            )
        return module(x)

    def forward_features(self, x: Tensor) -> Tensor:
        """The stem and the blocks: a feature map at the body's resolution, before any head."""
        self.check_input(x)
        self._check_invertible_norms()
        x = self._run_stem(x)
        for block in self.blocks:
            x = self._run_block(block, x)
        return x

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """Block outputs (timm convention): ``indices`` an int takes the last n blocks."""
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        take = self._take_indices(indices)
        self.check_input(x)
        self._check_invertible_norms()
        x = self._run_stem(x)
        intermediates = []
        last = max(take) if stop_early else len(self.blocks) - 1
        for i, block in enumerate(self.blocks[: last + 1]):
            x = self._run_block(block, x)
            if i in take:
                intermediates.append(x.permute(0, 2, 3, 1) if output_fmt == "NHWC" else x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def _take_indices(self, indices: int | list[int] | None) -> list[int]:
        depth = len(self.blocks)
        if indices is None:
            return list(range(depth))
        if isinstance(indices, int):
            if not 1 <= indices <= depth:
                raise ValueError(f"indices={indices} must be between 1 and depth={depth}")
            return list(range(depth - indices, depth))
        take = [i % depth if -depth <= i < depth else None for i in indices]
        if None in take:
            raise ValueError(f"block indices {indices} out of range for depth {depth}")
        return sorted(set(take))  # type: ignore[arg-type]

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the blocks after the last index taken (timm's feature extraction API); returns the indices taken."""
        take = self._take_indices(indices)
        self.blocks = self.blocks[: max(take) + 1]
        self.feature_info = self.feature_info[: max(take) + 1]
        if prune_head:
            self._prune_head()
        return take

    def _prune_head(self) -> None:
        """Families replace this to drop their task head."""


def decoder_upsamples(reduction: int) -> int:
    """Number of x2 stages that bring an encoder map back to (at least) input size when exact."""
    return int(math.log2(reduction)) if reduction >= 1 else 0
