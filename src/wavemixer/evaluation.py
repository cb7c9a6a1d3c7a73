"""The one evaluation loop: a model's loss and task metrics over a data set, in fp32.

Training's val and test scores, ``wavemixer eval`` and any script that scores a model call :func:`evaluate`,
so one model gets one score everywhere, on every CPU and GPU kind, whatever precision it was trained in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from wavemixer.data.bundle import DataInfo
from wavemixer.tasks.base import Task

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[Any],
    task: Task,
    info: DataInfo,
    device: torch.device,
    *,
    channels_last: bool = False,
    with_loss: bool = True,
    detailed: bool = False,
    reduce_sum: Callable[[list[float]], list[float]] | None = None,
) -> dict[str, Any]:
    """``{"loss": ..., **task metrics}`` over ``batches`` of ``(inputs, targets)`` (a data loader).

    The model is put in eval mode for the pass and restored after. ``reduce_sum`` sums the loss totals over
    ranks (the metrics synchronise themselves); ``detailed`` asks the task for what ``eval`` reports beyond
    the scalars; without ``with_loss`` only the metrics are returned.
    """
    was_training = model.training
    model.eval()
    metrics = task.make_metrics(info, device, detailed=detailed)
    loss_sum, count = 0.0, 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = model(x)
        if with_loss:
            loss_sum += float(task.loss(out, y)) * len(y)
            count += len(y)
        task.update_metrics(metrics, out, y)
    model.train(was_training)
    if not with_loss:
        return task.compute_metrics(metrics)
    total_loss, total_n = reduce_sum([loss_sum, count]) if reduce_sum is not None else (loss_sum, count)
    return {"loss": total_loss / max(total_n, 1), **task.compute_metrics(metrics)}
