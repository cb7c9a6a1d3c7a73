"""The one evaluation loop, and the data a saved model is evaluated on.

Training's val and test scores, ``wavemixer eval`` and any script that scores a model call :func:`evaluate`
(in fp32), so one model gets one score everywhere, on every CPU and GPU kind, whatever precision it was trained
in. :func:`eval_config` and :func:`evaluation_split` rebuild a saved run's own val or test split with its stored
preprocessing, as ``wavemixer eval`` does, for any caller that measures a trained model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from wavemixer.data.bundle import DataInfo
from wavemixer.tasks.base import Task

__all__ = ["EvalSplit", "eval_config", "evaluate", "evaluation_split"]


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


def eval_config(
    loaded: Any,
    *,
    dataset: str | None = None,
    data_dir: str | None = None,
    seed: int | None = None,
    val_fraction: float | None = None,
    subset: int | None = None,
    download: bool = False,
    batch_size: int = 512,
) -> tuple[Any, dict[str, Any]]:
    """The training configuration that rebuilds ``loaded``'s data (a :class:`wavemixer.loading.LoadedModel`):
    the run's stored data settings, overridden by the arguments given (``None``: the run's). Returns the
    configuration and the stored settings (with the split fingerprints the run recorded)."""
    from wavemixer.tasks import task_class
    from wavemixer.train.config import TrainConfig

    meta = loaded.model.pretrained_config.get("metadata") or {}
    run_dir = loaded.run_dir
    stored = dict(meta.get("data") or {})
    if not stored and run_dir is not None and (run_dir / "config.yaml").is_file():  # runs saved before data settings
        from wavemixer.files import read_yaml

        saved = read_yaml(run_dir / "config.yaml") or {}
        stored = {
            k: saved.get(k)
            for k in ("dataset", "data_dir", "seed", "val_fraction", "subset", "input_size", "per_class")
        }
    stored.setdefault("seed", meta.get("seed"))
    given = dict(dataset=dataset, data_dir=data_dir, seed=seed, val_fraction=val_fraction, subset=subset)
    values = {k: v for k, v in stored.items() if k in TrainConfig.__dataclass_fields__ and v is not None}
    if values.get("dataset") == "digits":
        values.pop("data_dir", None)  # older runs recorded a --data-dir the embedded digits never read
    if dataset and stored.get("dataset") and dataset != stored.get("dataset"):
        values, stored = {}, {}  # another data set: none of the run's data settings apply
    values.update({k: v for k, v in given.items() if v is not None})
    if not values.get("dataset"):
        raise ValueError("the checkpoint does not record its data set; pass --dataset")
    task_type = task_class(loaded.task)
    batch = batch_size if task_type.max_eval_batch is None else min(batch_size, task_type.max_eval_batch)
    settings = task_type().model_settings(loaded.model)
    values.setdefault("decode_once", False)  # one split is evaluated: decode only its images, as they are read
    values.update(
        task=loaded.task,
        download=download,
        eval_batch_size=max(1, batch),
        hflip=False,
        trivial_augment=False,
        **({"model": loaded.name, "model_args": settings} if settings else {}),
    )
    return TrainConfig(**values), stored


@dataclass
class EvalSplit:
    """A split rebuilt for a saved model: its task (with the configuration), data description and images."""

    task: Task
    info: DataInfo
    dataset: Any


def evaluation_split(loaded: Any, cfg: Any, stored: dict[str, Any], split: str) -> EvalSplit:
    """``split`` (``val`` or ``test``) of the data ``cfg`` describes (from :func:`eval_config`), preprocessed as
    ``loaded`` expects; refuses a model that does not fit the data and a val split that is not the run's own."""
    from wavemixer.data.splits import check_split_fingerprint
    from wavemixer.tasks import task_class

    task = task_class(loaded.task)(cfg)
    data = task.build_data()
    task.check_model_fits(loaded, data.info)
    ds = data.split(split)
    check_split_fingerprint(split, data.split_hashes, stored, task.cfg.seed)
    transform = task.evaluation_transform(loaded.preprocessing)
    if transform is not None:  # the checkpoint's stored preprocessing, not the data set's defaults
        ds.transform = transform
    return EvalSplit(task, data.info, ds)
