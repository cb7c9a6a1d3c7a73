"""Training (needs the ``train`` extra: torchvision, torchmetrics): one engine (:mod:`.engine`) runs any task
(:mod:`wavemixer.tasks`) on its data (:mod:`wavemixer.data`), configured by :mod:`.config`."""

from __future__ import annotations

from .config import TrainConfig
from .engine import Diverged, Trainer, resolve_config, train

__all__ = ["Diverged", "TrainConfig", "Trainer", "resolve_config", "train"]
