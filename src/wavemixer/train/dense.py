"""``wavemixer eval`` / ``predict`` for the dense tasks (segmentation, super-resolution).

The classification commands hand over to these functions when the checkpoint's ``config.json`` says its task
is ``segmentation`` or ``super_resolution``; data, metrics and outputs are the tasks' own.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from wavemixer.files import atomic_write_text, check_writable, claim, strict_json

from .checkpoint import claim_reports, report_dir

__all__ = ["DENSE_TASKS", "eval_dense", "model_task", "predict_dense"]

DENSE_TASKS = ("segmentation", "super_resolution")
#: dense outputs are large: evaluation batches are capped at this many images
MAX_EVAL_BATCH = 8


def model_task(model: torch.nn.Module) -> str:
    """The task recorded with a loaded model (``classification`` when unknown)."""
    return (getattr(model, "pretrained_config", None) or {}).get("task") or "classification"


def eval_dense(loaded: Any, args: argparse.Namespace, device: torch.device) -> int:
    """Evaluate a segmentation or super-resolution checkpoint on a split; writes ``metrics.json``."""
    from .config import TrainConfig
    from .tasks import get_task, task_class

    model = loaded.model.to(device).eval()
    task_name = model_task(model)
    meta = model.pretrained_config.get("metadata") or {}
    dataset = args.dataset or meta.get("dataset")
    if not dataset:
        raise ValueError("the checkpoint does not record its data set; pass --dataset")
    stored = meta.get("data") or {}
    seed = args.seed if args.seed is not None else int(meta.get("seed") or 0)  # an explicit --seed 0 is honoured
    val_fraction = args.val_fraction if args.val_fraction is not None else stored.get("val_fraction", 0.1)
    model_args = {"scale": int(model.scale)} if task_name == "super_resolution" else {}
    batch = max(1, min(args.batch_size, MAX_EVAL_BATCH))
    cfg = TrainConfig(task=task_name, dataset=dataset, data_dir=args.data_dir, val_fraction=val_fraction,
                      subset=args.subset, seed=seed, model=loaded.name, model_args=model_args,
                      eval_batch_size=batch, hflip=False, trivial_augment=False)  # fmt: skip
    task = get_task(task_name)
    canonical = task_class(task_name).dataset_defaults(dataset)[0]
    out_dir = report_dir(args.output_dir, loaded.run_dir, canonical, args.split)
    with claim_reports(out_dir, ["metrics.json"], force=getattr(args, "force", False), run_dir=loaded.run_dir):
        data = task.build_datasets(cfg)  # type: ignore[attr-defined]
        if task_name == "segmentation" and data.info.num_classes != getattr(model, "num_classes", None):
            raise ValueError(
                f"the model predicts {model.num_classes} classes but {dataset} has {data.info.num_classes}"
            )
        ds = data.test if args.split == "test" else data.val
        if ds is None:
            raise ValueError(f"{dataset} has no {args.split} split; use --split val")
        metrics = task.make_metrics(data.info, device)
        with torch.no_grad():
            for x, y in DataLoader(ds, batch_size=batch):
                x, y = x.to(device), y.to(device)
                task.update_metrics(metrics, model(x).float(), y)
        values = task.compute_metrics(metrics)
        result = dict(model=loaded.name, source=loaded.source, task=task_name, dataset=data.info.name,
                      split=args.split, images=len(ds), **values)  # fmt: skip
        atomic_write_text(out_dir / "metrics.json", strict_json(result))
    if task_name == "segmentation":
        per_class = {k[4:]: v for k, v in values.items() if k.startswith("iou_")}
        print(f"{loaded.name} on {data.info.name} {args.split} ({len(ds):,} images): mIoU {values['miou']:.2f}%  "
              f"pixel accuracy {values['pixel_acc']:.2f}% (void ignored)")  # fmt: skip
        print("per-class IoU: " + ", ".join(f"{k} {v:.1f}" for k, v in per_class.items()))
    else:
        print(f"{loaded.name} x{model.scale} on {data.info.name} {args.split} ({len(ds):,} images), Y channel, "
              f"border {model.scale}: PSNR {values['psnr']:.3f} dB  SSIM {values['ssim']:.4f}  |  bicubic "
              f"PSNR {values['bicubic_psnr']:.3f} dB  SSIM {values['bicubic_ssim']:.4f}")  # fmt: skip
    print(f"wrote {out_dir}/metrics.json")
    return 0


def predict_dense(loaded: Any, files: list[Path], args: argparse.Namespace) -> int:
    """Write mask/overlay PNGs (segmentation) or upscaled images + comparisons (super-resolution)."""
    task_name = model_task(loaded.model)
    out_dir = Path(getattr(args, "output_dir", None) or "predictions")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not getattr(args, "force", False):
        raise FileExistsError(_full(out_dir))
    with claim(out_dir, "--output-dir", "choose another --output-dir"):
        if any(out_dir.iterdir()) and not getattr(args, "force", False):  # filled since: by the other process
            raise FileExistsError(_full(out_dir))
        check_writable(out_dir, "--output-dir")
        if task_name == "segmentation":
            from .segmentation import predict_segmentation

            records = predict_segmentation(loaded.model, files, out_dir, preprocessing=loaded.preprocessing,
                                           labels=loaded.labels, device=args.device)  # fmt: skip
        else:
            from .super_resolution import predict_super_resolution

            records = predict_super_resolution(loaded.model, files, out_dir, device=args.device,
                                               from_hr=bool(getattr(args, "from_hr", False)))  # fmt: skip
    text = strict_json(dict(model=loaded.name, source=loaded.source, task=task_name, outputs=records))
    if getattr(args, "output", None):
        atomic_write_text(args.output, text)  # predict refused an existing file before predicting
    else:
        print(text, end="")
    return 0


def _full(out_dir: Path) -> str:
    return (
        f"--output-dir {out_dir} is not empty; pass --force to write into it (images of the same names are "
        "replaced), or choose another folder"
    )
