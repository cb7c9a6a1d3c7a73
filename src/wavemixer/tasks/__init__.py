"""The tasks a model can be trained for, by name: what ``--task`` chooses and a saved model records.

A task is one module (a subclass of :class:`~wavemixer.tasks.base.Task`); the engine, ``eval`` and
``predict`` reach it only through this registry. Add one with :func:`register_task`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wavemixer.train.config import TrainConfig

    from .base import Task

__all__ = ["TASKS", "get_task", "register_task", "task_class"]

#: task name -> ``"module:Class"`` (imported on first use) or the class itself
TASKS: dict[str, Any] = {
    "classification": "wavemixer.tasks.classification:ClassificationTask",
    "segmentation": "wavemixer.tasks.segmentation:SegmentationTask",
    "super_resolution": "wavemixer.tasks.super_resolution:SuperResolutionTask",
}


def register_task(cls: type[Task]) -> type[Task]:
    """Make ``cls`` trainable as ``--task <cls.name>`` (usable as a class decorator)."""
    TASKS[cls.name] = cls
    return cls


def task_class(name: str) -> type[Task]:
    """The class of a registered task."""
    try:
        entry = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(TASKS)}") from None
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = TASKS[name] = getattr(importlib.import_module(module), attr)
    return entry


def get_task(cfg: TrainConfig) -> Task:
    """The task a (resolved) :class:`~wavemixer.train.config.TrainConfig` trains, set up for it."""
    return task_class(cfg.task)(cfg)
