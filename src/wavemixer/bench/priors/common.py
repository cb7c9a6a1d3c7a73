"""What the measurements share: the forms test data may come in, and running a model in eval mode.

``data`` is a tensor of normalised images ``(B, C, H, W)``, an ``(images, labels)`` pair, or an iterable of
such batches (a ``DataLoader``); batches without labels are bare tensors or 1-tuples.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Data", "eval_mode", "iter_batches", "model_device"]

Data = Tensor | tuple[Tensor, Tensor] | Iterable[Any]


def iter_batches(data: Data, max_images: int | None = None) -> Iterator[tuple[Tensor, Tensor | None]]:
    """``(images, labels or None)`` batches from a tensor, an ``(images, labels)`` pair or a loader,
    stopping after ``max_images`` images."""
    if isinstance(data, Tensor):
        batches: Iterable[Any] = [data]
    elif isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, Tensor) for t in data) and data[0].ndim == 4:
        batches = [data]
    else:
        batches = data
    left = max_images
    for batch in batches:
        x, y = (batch, None) if isinstance(batch, Tensor) else (batch[0], batch[1] if len(batch) > 1 else None)
        if x.ndim != 4:
            raise ValueError(f"images must be (B, C, H, W), got shape {tuple(x.shape)}")
        if left is not None:
            x, y = x[:left], None if y is None else y[:left]
            left -= len(x)
        if len(x):
            yield x, y
        if left is not None and left <= 0:
            return


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode for the block; every submodule gets its own previous mode back."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def model_device(model: nn.Module) -> torch.device:
    """Where the model's first parameter (or buffer) lives; the CPU for a model with neither."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if first is None else first.device
