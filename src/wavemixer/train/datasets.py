"""Names under which earlier versions offered classification data (kept for the scripts and tests written
against them). The data package is :mod:`wavemixer.data`; a task's data sets come from its
:meth:`~wavemixer.tasks.base.Task.build_data`."""

from __future__ import annotations

from typing import Any

from wavemixer.data.bundle import DataBundle, DataInfo
from wavemixer.data.images import load_image
from wavemixer.data.scan import scan_folder

__all__ = ["DataBundle", "DataInfo", "build_datasets", "load_image", "scan_folder"]


def build_datasets(cfg: Any) -> DataBundle:
    """Train/val/test classification sets for a :class:`~wavemixer.train.config.TrainConfig`."""
    from wavemixer.tasks.classification import ClassificationTask

    return ClassificationTask(cfg).build_data()
