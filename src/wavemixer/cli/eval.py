"""``wavemixer eval``: top-1/top-5 accuracy, per-class accuracy and a confusion matrix on a data split.

The checkpoint's stored preprocessing is used (not the data set's defaults), and a run's stored data settings
(data set, --data-dir, seed, val fraction, subset): ``--split val`` rebuilds exactly the run's validation
images, checked against the fingerprint the run stored. Flags given here override the stored settings.

  wavemixer eval runs/mnist-run                                            # test split of the run's data
  wavemixer eval --model wavemix_lite_8_10_mnist --pretrained --dataset mnist --data-dir DATA
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

from wavemixer.cli import add_force_option, add_threads_option, check_common_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint on a data split",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", nargs="?", help="training run folder or saved model folder")
    p.add_argument("--model", help="registry name whose packaged weights to evaluate (with --pretrained)")
    p.add_argument("--pretrained", action="store_true", help="use the weights shipped in the package for --model")
    p.add_argument("--dataset", help="data set name (default: the one the checkpoint was trained on)")
    p.add_argument("--data-dir", help="data location, as for `wavemixer train`")
    p.add_argument("--download", action="store_true", help="download torchvision data sets if missing")
    p.add_argument("--split", choices=["test", "val"], default="test", help="which split (default: test)")
    p.add_argument("--val-fraction", type=float, help="val split held out of train (default: the run's, else 0.1)")
    p.add_argument(
        "--seed", type=int, help="seed of the val split (default: the run's; another one overlaps its training images)"
    )
    p.add_argument("--subset", type=int, help="evaluate on a subset (as `train --subset`)")
    p.add_argument("--batch-size", type=int, default=512, help="images per forward pass (default: 512)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    add_threads_option(p)
    p.add_argument(
        "--output-dir",
        help="where to write metrics.json, per_class.csv, confusion_matrix.png "
        "(default: <run folder>/eval-<dataset>-<split>, else ./eval-<dataset>-<split>)",
    )
    add_force_option(p, "the reports in --output-dir")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wavemixer.files import refuse_overwrite
    from wavemixer.train.checkpoint import claim_reports, report_dir
    from wavemixer.train.config import TrainConfig
    from wavemixer.train.datasets import canonical_dataset
    from wavemixer.train.distributed import _pick_device
    from wavemixer.train.inference import load_model
    from wavemixer.train.validation import check_fields

    check_common_options(args)
    if args.checkpoint and args.model:
        raise ValueError("give a checkpoint folder or --model NAME --pretrained, not both")
    given = dict(subset=args.subset, val_fraction=args.val_fraction, seed=args.seed)
    check_fields(TrainConfig, **{k: v for k, v in given.items() if v is not None})  # as train's; unset = the run's
    if args.output_dir:  # refuse before evaluating, not after
        refuse_overwrite([Path(args.output_dir) / "metrics.json"], force=args.force)
    device = _pick_device(args.device, 0)
    loaded = load_model(args.checkpoint, model_name=args.model, pretrained=args.pretrained, device=device)
    from wavemixer.train.dense import DENSE_TASKS, eval_dense, model_task

    if model_task(loaded.model) in DENSE_TASKS:  # segmentation: mIoU; super-resolution: PSNR/SSIM vs bicubic
        return eval_dense(loaded, args, device)
    meta = loaded.model.pretrained_config.get("metadata") or {}
    cfg, stored = eval_data_config(args, meta, loaded.run_dir)
    reports = ["metrics.json", "per_class.csv", "confusion_matrix.png"]
    out_dir = report_dir(args.output_dir, loaded.run_dir, canonical_dataset(cfg.dataset), args.split)
    with claim_reports(out_dir, reports, force=args.force, run_dir=loaded.run_dir):
        return _evaluate(args, loaded, cfg, stored, out_dir, device)


def _evaluate(args: argparse.Namespace, loaded: Any, cfg: Any, stored: dict, out_dir: Path, device: Any) -> int:
    import torch
    from torch.utils.data import DataLoader
    from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

    from wavemixer.files import atomic_write_text, strict_json
    from wavemixer.train.datasets import build_datasets
    from wavemixer.train.plots import plot_confusion_matrix

    data = build_datasets(cfg)
    dataset = data.info.name
    if data.info.in_chans != pre_chans(loaded):
        raise ValueError(f"the model takes {pre_chans(loaded)}-channel images but {dataset} has {data.info.in_chans}")
    n = data.info.num_classes
    if n != len(loaded.labels):
        raise ValueError(f"the model predicts {len(loaded.labels)} classes but {dataset} has {n}")
    ds = data.test if args.split == "test" else data.val
    if ds is None:
        raise ValueError(f"{dataset} has no {args.split} split; use --split val")
    check_split(args.split, data.split_hashes, stored, cfg.seed)
    ds.transform = loaded.transform()
    metrics = {
        "top1": MulticlassAccuracy(n, top_k=1, average="micro"),
        "per_class": MulticlassAccuracy(n, average=None),
        "confusion": MulticlassConfusionMatrix(n),
    }
    if n > 5:  # with 5 classes or fewer every image is in the top 5
        metrics["top5"] = MulticlassAccuracy(n, top_k=5, average="micro")
    metrics = {k: m.to(device) for k, m in metrics.items()}
    model = loaded.model.to(device).eval()
    with torch.no_grad():
        for x, y in DataLoader(ds, batch_size=args.batch_size):
            x, y = x.to(device), y.to(device)
            out = model(x).float()
            for m in metrics.values():
                m.update(out, y)
    top1 = 100 * float(metrics["top1"].compute())
    top5 = {"top5": 100 * float(metrics["top5"].compute())} if "top5" in metrics else {}
    per_class = (100 * metrics["per_class"].compute()).tolist()
    confusion = metrics["confusion"].compute().cpu()
    result = dict(
        model=loaded.name,
        source=loaded.source,
        dataset=data.info.name,
        split=args.split,
        images=len(ds),
        top1=top1,
        **top5,
        labels=list(loaded.labels),
        per_class={lab: acc for lab, acc in zip(loaded.labels, per_class)},
        confusion_matrix=confusion.tolist(),
    )
    atomic_write_text(out_dir / "metrics.json", strict_json(result))
    table = io.StringIO()
    w = csv.writer(table)
    w.writerow(["class", "label", "images", "accuracy"])
    for i, (lab, acc) in enumerate(zip(loaded.labels, per_class)):
        w.writerow([i, lab, int(confusion[i].sum()), f"{acc:.2f}"])
    atomic_write_text(out_dir / "per_class.csv", table.getvalue())
    plot_confusion_matrix(
        confusion.numpy(),
        loaded.labels,
        out_dir / "confusion_matrix.png",
        title=f"{loaded.name} on {data.info.name} {args.split} (top-1 {top1:.2f}%)",
    )
    top5_text = f"  top-5 {top5['top5']:.2f}%" if top5 else ""
    print(f"{loaded.name} on {data.info.name} {args.split} ({len(ds):,} images): top-1 {top1:.2f}%{top5_text}")
    worst = sorted(zip(per_class, loaded.labels))[:3]
    print("lowest per-class accuracy: " + ", ".join(f"{lab} {acc:.1f}%" for acc, lab in worst))
    print(f"wrote {out_dir}/metrics.json, per_class.csv, confusion_matrix.png")
    return 0


def pre_chans(loaded: Any) -> int:
    return int(loaded.preprocessing["input_size"][0])


def eval_data_config(args: argparse.Namespace, meta: dict[str, Any], run_dir: Path | None) -> tuple[Any, dict]:
    """The data configuration to evaluate on: the run's stored settings, overridden by flags given here."""
    from wavemixer.train.config import TrainConfig

    stored = dict(meta.get("data") or {})
    if not stored and run_dir is not None and (run_dir / "config.yaml").is_file():  # runs saved before data settings
        import yaml

        saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        stored = {k: saved.get(k) for k in ("dataset", "data_dir", "seed", "val_fraction", "subset", "input_size")}
    stored.setdefault("seed", meta.get("seed"))
    given = dict(
        dataset=args.dataset, data_dir=args.data_dir, seed=args.seed, val_fraction=args.val_fraction, subset=args.subset
    )
    values = {k: v for k, v in stored.items() if k in TrainConfig.__dataclass_fields__ and v is not None}
    if args.dataset and stored.get("dataset") and args.dataset != stored.get("dataset"):
        values, stored = {}, {}  # another data set: none of the run's data settings apply
    values.update({k: v for k, v in given.items() if v is not None})
    if not values.get("dataset"):
        raise ValueError("the checkpoint does not record its data set; pass --dataset")
    values["download"] = args.download
    return TrainConfig(**values), stored


def check_split(split: str, hashes: dict[str, str], stored: dict[str, Any], seed: int) -> None:
    """Refuse a val split that is not the run's own (it would score training images) unless asked for."""
    want = (stored.get("split_hashes") or {}).get(split)
    if want is None or hashes.get(split) == want:
        return
    if stored.get("seed") is not None and seed != stored["seed"]:
        print(
            f"note: --seed {seed} is not the run's seed {stored['seed']}: this {split} split is not the run's and "
            "overlaps its training images",
            file=sys.stderr,
        )
        return
    raise ValueError(
        f"the {split} split rebuilt from the run's settings differs from the one it trained with (fingerprint "
        f"{hashes.get(split)} vs {want}): the images changed since the run; restore them or retrain"
    )
