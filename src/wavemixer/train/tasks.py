"""Tasks plug into the one training engine: what the model is, its loss, its metrics, what selects the best.

A task knows nothing about the loop, precision, distribution or checkpoints; the engine knows nothing about
labels or pixels. Segmentation and super-resolution become tasks by implementing :class:`Task`.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn

from .datasets import DataInfo

__all__ = ["TASKS", "ClassificationTask", "Task", "get_task", "task_class"]


class Task(Protocol):
    """The task-specific half of training."""

    name: str
    #: metric (a key of :meth:`compute_metrics`) whose val value selects the best checkpoint
    select_metric: str
    #: "max" or "min": which direction of ``select_metric`` is better
    select_mode: str

    def build_model(self, model_name: str, info: DataInfo, model_args: dict[str, Any]) -> nn.Module:
        """The registry model adapted to the data (classes, channels)."""
        ...

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Mean training loss of a batch."""
        ...

    def make_metrics(self, info: DataInfo, device: torch.device) -> Any:
        """A fresh metric state (torchmetrics objects; they synchronise across ranks in ``compute``)."""
        ...

    def update_metrics(self, metrics: Any, outputs: Tensor, targets: Tensor) -> None:
        """Accumulate one evaluation batch."""
        ...

    def compute_metrics(self, metrics: Any) -> dict[str, float]:
        """Scalar metrics (same value on every rank)."""
        ...

    def preprocessing(self, info: DataInfo) -> dict[str, Any]:
        """What ``predict`` needs to reproduce the evaluation input (stored with the weights)."""
        ...


class ClassificationTask:
    """Image classification: cross-entropy, top-1/top-5 accuracy (torchmetrics), best = val top-1."""

    name = "classification"
    select_metric = "top1"
    select_mode = "max"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def build_model(self, model_name: str, info: DataInfo, model_args: dict[str, Any]) -> nn.Module:
        from wavemixer.factory import create_model
        from wavemixer.peers import create_peer, is_peer_name
        from wavemixer.registry import get_spec

        if is_peer_name(model_name):
            side = info.input_size[0]  # the peers are built for square inputs (ViT, MLP-Mixer fix their size)
            return create_peer(
                model_name, num_classes=info.num_classes, in_chans=info.in_chans, img_size=side, model_args=model_args
            )
        spec = get_spec(model_name, task="classification")
        overrides = dict(model_args)
        for key, value in (("num_classes", info.num_classes), ("in_chans", info.in_chans)):
            if spec.kwargs.get(key, {"num_classes": 1000, "in_chans": 3}[key]) != value:
                overrides.setdefault(key, value)
        return create_model(model_name, **overrides)

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return self.criterion(outputs.float(), targets)

    def make_metrics(self, info: DataInfo, device: torch.device) -> Any:
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy

        n = info.num_classes
        metrics = {"top1": MulticlassAccuracy(n, top_k=1, average="micro")}
        if n > 5:  # with 5 classes or fewer every image is in the top 5: no information
            metrics["top5"] = MulticlassAccuracy(n, top_k=5, average="micro")
        return MetricCollection(metrics).to(device)

    def update_metrics(self, metrics: Any, outputs: Tensor, targets: Tensor) -> None:
        metrics.update(outputs.float(), targets)

    def compute_metrics(self, metrics: Any) -> dict[str, float]:
        return {k: 100.0 * float(v) for k, v in metrics.compute().items()}

    def preprocessing(self, info: DataInfo) -> dict[str, Any]:
        return info.preprocessing()


def _segmentation_task() -> type:
    from .segmentation import SegmentationTask

    return SegmentationTask


def _super_resolution_task() -> type:
    from .super_resolution import SuperResolutionTask

    return SuperResolutionTask


#: task name -> task class, or a zero-argument function returning it (imported on first use)
TASKS: dict[str, Any] = {
    "classification": ClassificationTask,
    "segmentation": _segmentation_task,
    "super_resolution": _super_resolution_task,
}


def task_class(name: str) -> type:
    """The class of a registered task (a task may optionally define ``dataset_defaults`` and
    ``build_datasets(cfg)`` to bring its own data sets)."""
    try:
        entry = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(TASKS)}") from None
    return entry if isinstance(entry, type) else entry()


def get_task(name: str, **kwargs: Any) -> Task:
    return task_class(name)(**kwargs)
