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
    add_force_option(p, "the reports wavemixer wrote in --output-dir")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wavemixer.evaluation import eval_config
    from wavemixer.files import refuse_overwrite
    from wavemixer.loading import load_model
    from wavemixer.tasks import task_class
    from wavemixer.train.checkpoint import claim_reports, report_dir
    from wavemixer.train.config import TrainConfig
    from wavemixer.train.config_checks import check_fields
    from wavemixer.train.distributed import pick_device

    check_common_options(args)
    if args.checkpoint and args.model:
        raise ValueError("give a checkpoint folder or --model NAME --pretrained, not both")
    given = dict(subset=args.subset, val_fraction=args.val_fraction, seed=args.seed)
    check_fields(TrainConfig, **{k: v for k, v in given.items() if v is not None})  # as train's; unset = the run's
    if args.val_fraction is not None and args.split != "val":
        raise ValueError(f"--val-fraction shapes the val split, not --split {args.split}; add --split val")
    if args.output_dir:  # refuse before evaluating, not after
        refuse_overwrite([Path(args.output_dir) / "metrics.json"], force=args.force)
    device = pick_device(args.device)
    loaded = load_model(args.checkpoint, model_name=args.model, pretrained=args.pretrained, device=device)
    cfg, stored = eval_config(loaded, dataset=args.dataset, data_dir=args.data_dir, seed=args.seed,
                              val_fraction=args.val_fraction, subset=args.subset, download=args.download,
                              batch_size=args.batch_size)  # fmt: skip
    task_type = task_class(loaded.task)
    out_dir = report_dir(args.output_dir, loaded.run_dir, task_type.canonical_dataset(cfg.dataset), args.split)
    with claim_reports(out_dir, list(task_type.eval_reports), force=args.force, run_dir=loaded.run_dir):
        return _evaluate(args, loaded, cfg, stored, out_dir, device)


def _evaluate(args: argparse.Namespace, loaded: Any, cfg: Any, stored: dict, out_dir: Path, device: Any) -> int:
    from torch.utils.data import DataLoader

    from wavemixer.evaluation import evaluate, evaluation_split
    from wavemixer.files import atomic_write_text, strict_json

    data = evaluation_split(loaded, cfg, stored, args.split)
    task, ds = data.task, data.dataset
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
