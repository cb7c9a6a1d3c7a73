"""Training, evaluation and prediction for WaveMix models (needs the ``train`` extra: torchvision, torchmetrics).

One engine (:mod:`.engine`) runs any task (:mod:`.tasks`) on any data set (:mod:`.datasets`).
"""

from __future__ import annotations

from .config import TrainConfig
from .engine import Diverged, Trainer, resolve_config, train
from .tasks import TASKS, ClassificationTask, Task

__all__ = ["TASKS", "ClassificationTask", "Diverged", "Task", "TrainConfig", "Trainer", "resolve_config", "train"]
