"""``wavemixer predict``: labels and probabilities for images or folders of images.

Uses the preprocessing (normalisation, input size, colour mode) stored with the checkpoint, so predictions
match ``wavemixer eval``. The ``flag`` column warns of inputs unlike the training images (their per-channel
mean/std far from the ones stored at training time: ``input_z`` above the stored threshold) and of top-1
probabilities under 0.5.

  wavemixer predict runs/mnist-run digit.png more_digits/          # a training run folder (its best weights)
  wavemixer predict --model wavemix_lite_8_10_mnist --pretrained digit.png --format json
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from wavemixer.cli import add_force_option, add_threads_option, check_common_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predict labels of images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="PATH",
        help="checkpoint (run folder or saved model folder) followed by image files or folders; "
        "with --model NAME --pretrained, only images",
    )
    p.add_argument("--model", help="registry name whose packaged weights to use (with --pretrained)")
    p.add_argument("--pretrained", action="store_true", help="use the weights shipped in the package for --model")
    p.add_argument("--format", choices=["csv", "json"], default="csv", help="output format (default: csv)")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    add_force_option(p, "--output (and write into a non-empty --output-dir)")
    p.add_argument("--top-k", type=int, default=5, help="how many top classes to list in JSON (default: 5)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default: cpu)")
    p.add_argument(
        "--skip-corrupt",
        action="store_true",
        help="predict the readable images and list the unreadable ones on standard error (default: refuse, "
        "naming every unreadable image)",
    )
    add_threads_option(p)
    p.add_argument(
        "--output-dir",
        help="segmentation / super-resolution models: folder for the mask, overlay, "
        "upscaled and comparison PNGs (default: ./predictions)",
    )
    p.add_argument(
        "--from-hr",
        action="store_true",
        help="super-resolution: the inputs are high-resolution "
        "ground truth; downscale them first and compare bicubic | model | ground truth",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wavemixer.files import claim, refuse_overwrite

    check_common_options(args, allow_auto_device=False)
    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    if args.output and Path(args.output).is_dir():
        raise ValueError(
            f"--output {args.output} is a folder; give a file to write, e.g. {Path(args.output) / 'p.csv'}"
        )
    if not args.output:
        return _predict(args)
    refuse_overwrite([args.output], force=args.force)  # before any work, not after
    with claim(args.output, "--output", "choose another --output", folder=False):
        refuse_overwrite([args.output], force=args.force)  # again, now that no other process writes it
        return _predict(args)


def _predict(args: argparse.Namespace) -> int:
    from wavemixer.files import atomic_write_text, strict_json
    from wavemixer.train.datasets import list_unreadable
    from wavemixer.train.inference import find_images, load_model, predict_files

    inputs = list(args.inputs)
    if args.model:
        source = None
    else:
        source = inputs.pop(0)
        if not inputs:
            raise ValueError("no images given: wavemixer predict CHECKPOINT IMAGE_OR_FOLDER [...]")
    loaded = load_model(source, model_name=args.model, pretrained=args.pretrained, device=args.device)
    from wavemixer.train.dense import DENSE_TASKS, model_task, predict_dense

    if model_task(loaded.model) in DENSE_TASKS:
        return predict_dense(loaded, find_images(inputs), args)
    files = find_images(inputs)
    skipped: list[tuple[str, str]] | None = [] if args.skip_corrupt else None
    rows = predict_files(
        loaded, files, batch_size=args.batch_size, top_k=args.top_k, device=args.device, skipped=skipped
    )
    if args.format == "json":
        text = strict_json(dict(model=loaded.name, source=loaded.source, predictions=rows))
    else:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "label", "index", "probability", "input_z", "flag"])
        for r in rows:
            z = "" if r["input_z"] is None else f"{r['input_z']:g}"
            w.writerow([r["file"], r["label"], r["index"], f"{r['probability']:.6f}", z, r["flag"]])
        text = buf.getvalue()
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {len(rows):,} prediction{'s' if len(rows) != 1 else ''} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if skipped:
        print(
            f"skipped {len(skipped)} unreadable image(s) (--skip-corrupt): {list_unreadable(skipped)}", file=sys.stderr
        )
    if not loaded.preprocessing.get("input_stats"):
        print(
            f"note: input_z is empty: {loaded.source} stores no statistics of its training images (weights saved "
            "before wavemixer recorded them, packaged or converted weights), so inputs unlike them are not flagged",
            file=sys.stderr,
        )
    return 0
