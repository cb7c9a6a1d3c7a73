"""Optimizers and learning-rate schedules: AdamW/SGD with weight-decay groups, linear warm-up, cosine or constant,
and the reference's two-phase DualOpt recipe."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["build_optimizer", "param_groups"]


def _no_decay_names(model: nn.Module) -> set[str]:
    """Parameters a model (or any submodule, e.g. a wrapped timm ViT) lists in ``no_weight_decay()``: position
    embeddings and class tokens, which timm's own optimizer factory also keeps out of weight decay."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        method = getattr(module, "no_weight_decay", None)
        if callable(method):
            names |= {f"{prefix}.{n}" if prefix else n for n in method()}
    return names


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, normalisation parameters (1-D tensors), position embeddings and class tokens."""
    skip = _no_decay_names(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name in skip else decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, phase: int, steps_per_epoch: int, total_steps: int
) -> tuple[torch.optim.Optimizer, Any]:
    """The optimizer and per-step learning-rate schedule of ``cfg``'s recipe for ``phase`` (1; dualopt: 1 or 2)."""
    if cfg.recipe == "dualopt":  # the reference's DualOpt: constant learning rates
        if phase == 1:
            opt: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=cfg.sgd_lr, momentum=cfg.momentum)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    groups = param_groups(model, cfg.weight_decay)
    if cfg.opt == "adamw":
        opt = torch.optim.AdamW(groups, lr=cfg.lr)
    else:
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    total = max(1, total_steps)
    warmup = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)
    floor = cfg.min_lr_ratio

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if cfg.sched == "constant":
            return 1.0
        t = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
