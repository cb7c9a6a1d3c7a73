"""``wavemixer eval``: a checkpoint's metrics on a data split (classification: top-1/top-5 accuracy, per-class
accuracy and a confusion matrix; segmentation: mIoU; super-resolution: PSNR/SSIM against bicubic).

The checkpoint's stored preprocessing is used (not the data set's defaults), and a run's stored data settings
(data set, --data-dir, seed, val fraction, subset, per-class): ``--split val`` rebuilds exactly the run's validation
images, checked against the fingerprint the run stored. Flags given here override the stored settings.

  wavemixer eval runs/mnist-run                                            # test split of the run's data
  wavemixer eval --model wavemix_lite_8_10_mnist --pretrained --dataset mnist --data-dir DATA
"""

from __future__ import annotations

import argparse
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
    from wavemixer.loading import load_model
    from wavemixer.tasks import task_class
    from wavemixer.train.checkpoint import claim_reports, report_dir
    from wavemixer.train.config import TrainConfig
    from wavemixer.train.config_checks import check_fields
    from wavemixer.train.distributed import _pick_device

    check_common_options(args)
    if args.checkpoint and args.model:
        raise ValueError("give a checkpoint folder or --model NAME --pretrained, not both")
    given = dict(subset=args.subset, val_fraction=args.val_fraction, seed=args.seed)
    check_fields(TrainConfig, **{k: v for k, v in given.items() if v is not None})  # as train's; unset = the run's
    if args.output_dir:  # refuse before evaluating, not after
        refuse_overwrite([Path(args.output_dir) / "metrics.json"], force=args.force)
    device = _pick_device(args.device, 0)
    loaded = load_model(args.checkpoint, model_name=args.model, pretrained=args.pretrained, device=device)
    task_type = task_class(loaded.task)
    meta = loaded.model.pretrained_config.get("metadata") or {}
    cfg, stored = eval_data_config(args, meta, loaded, task_type)
    out_dir = report_dir(args.output_dir, loaded.run_dir, task_type.canonical_dataset(cfg.dataset), args.split)
    with claim_reports(out_dir, list(task_type.eval_reports), force=args.force, run_dir=loaded.run_dir):
        return _evaluate(args, loaded, task_type(cfg), stored, out_dir, device)


def _evaluate(args: argparse.Namespace, loaded: Any, task: Any, stored: dict, out_dir: Path, device: Any) -> int:
    from torch.utils.data import DataLoader

    from wavemixer.evaluation import evaluate
    from wavemixer.files import atomic_write_text, strict_json

    data = task.build_data()
    task.check_model_fits(loaded, data.info)
    ds = data.split(args.split)
    check_split(args.split, data.split_hashes, stored, task.cfg.seed)
    transform = task.evaluation_transform(loaded.preprocessing)
    if transform is not None:  # the checkpoint's stored preprocessing, not the data set's defaults
        ds.transform = transform
    model = loaded.model.to(device)
    loader = DataLoader(ds, batch_size=task.cfg.eval_batch_size)
    values = evaluate(model, loader, task, data.info, device, with_loss=False, detailed=True)
    result = dict(model=loaded.name, source=loaded.source, task=task.name, dataset=data.info.name,
                  split=args.split, images=len(ds), **task.eval_result(loaded, values))  # fmt: skip
    atomic_write_text(out_dir / "metrics.json", strict_json(result))
    task.write_eval_reports(loaded, result, out_dir)
    for line in task.eval_summary(loaded, result):
        print(line)
    first, *rest = task.eval_reports
    print(f"wrote {out_dir}/{first}" + "".join(f", {name}" for name in rest))
    return 0


def eval_data_config(args: argparse.Namespace, meta: dict[str, Any], loaded: Any, task_type: Any) -> tuple[Any, dict]:
    """The data configuration to evaluate on: the run's stored settings, overridden by flags given here."""
    from wavemixer.train.config import TrainConfig

    run_dir = loaded.run_dir
    stored = dict(meta.get("data") or {})
    if not stored and run_dir is not None and (run_dir / "config.yaml").is_file():  # runs saved before data settings
        import yaml

        saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        stored = {
            k: saved.get(k)
            for k in ("dataset", "data_dir", "seed", "val_fraction", "subset", "input_size", "per_class")
        }
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
    batch = args.batch_size if task_type.max_eval_batch is None else min(args.batch_size, task_type.max_eval_batch)
    settings = task_type().model_settings(loaded.model)
    values.setdefault("decode_once", False)  # one split is evaluated: decode only its images, as they are read
    values.update(
        task=loaded.task,
        download=args.download,
        eval_batch_size=max(1, batch),
        hflip=False,
        trivial_augment=False,
        **({"model": loaded.name, "model_args": settings} if settings else {}),
    )
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
