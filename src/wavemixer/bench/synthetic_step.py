"""One registry classifier's training step on a fixed synthetic batch, for in-process A/B timing scripts.

The scripts under ``scripts/`` switch one formulation on and off between steps of the same model and optimizer, so
that load on the machine hits both alike; this builds that model and step once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..factory import create_model
from ..registry import get_spec


def synthetic_train_step(name: str, batch: int, precision: str = "fp32") -> tuple[nn.Module, Callable[[], None]]:
    """``(model, step)``: ``step()`` runs forward, cross-entropy, backward and AdamW under ``precision`` autocast."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16 (CPU autocast), got {precision!r}")
    torch.manual_seed(0)
    model = create_model(name).train()
    x = torch.randn(batch, *get_spec(name).input_size)
    y = torch.randint(0, model.num_classes, (batch,))
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)

    def step() -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return model, step
