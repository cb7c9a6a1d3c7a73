"""``wavemixer predict``: labels and probabilities for images or folders of images (segmentation: masks and
overlays; super-resolution: upscaled images and comparisons, written into ``--output-dir``).

Uses the preprocessing (normalisation, input size, colour mode) stored with the checkpoint, so predictions
match ``wavemixer eval``. The ``flag`` column warns of inputs unlike the training images (their per-channel
mean/std far from the ones stored at training time: ``input_z`` above the stored threshold) and of top-1
probabilities under 0.5.

  wavemixer predict runs/mnist-run digit.png more_digits/          # a training run folder (its best weights)
  wavemixer predict --model wavemix_lite_8_10_mnist --pretrained digit.png --format json
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
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
    p.add_argument(
        "--format",
        choices=["csv", "json"],
        help="output format (default: from --output's suffix, .json or .csv; else csv)",
    )
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    add_force_option(p, "--output (and write into a non-empty --output-dir, replacing only images wavemixer wrote)")
    p.add_argument("--top-k", type=int, help="top classes to list in JSON (default: 5, or every class if fewer)")
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
    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    _resolve_format(args)
    if args.output and Path(args.output).is_dir():
        raise ValueError(
            f"--output {args.output} is a folder; give a file to write, e.g. {Path(args.output) / 'p.csv'}"
        )
    if not args.output:
        return _predict(args)
    _refuse_overwriting_inputs(args)
    refuse_overwrite([args.output], force=args.force)  # before any work, not after
    with claim(args.output, "--output", "choose another --output", folder=False):
        refuse_overwrite([args.output], force=args.force)  # again, now that no other process writes it
        return _predict(args)


def _refuse_flags_that_do_not_apply(args: argparse.Namespace, task: str, predicts_images: bool) -> None:
    """Flags this model's task would ignore, refused rather than dropped without a word."""
    if args.output_dir is not None and not predicts_images:
        raise ValueError(f"--output-dir is for models that predict images (segmentation, super-resolution), not {task}")
    if args.from_hr and task != "super_resolution":
        raise ValueError(f"--from-hr applies to super-resolution models, not {task}")
    if args.top_k is not None and task == "classification" and args.format != "json":
        raise ValueError("--top-k lists classes in JSON output; add --format json (CSV has the top class only)")


_SUFFIX_FORMATS = {".csv": "csv", ".json": "json"}


def _resolve_format(args: argparse.Namespace) -> None:
    """``--format`` from ``--output``'s suffix when not given (as ``export`` does); a contradiction is refused."""
    by_suffix = _SUFFIX_FORMATS.get(Path(args.output).suffix.lower()) if args.output else None
    if args.format is not None and by_suffix is not None and args.format != by_suffix:
        raise ValueError(f"--format {args.format} contradicts --output {args.output}; drop one or rename the file")
    args.asked_format = args.format or by_suffix  # what the user chose, if anything
    args.format = args.asked_format or "csv"


def _refuse_overwriting_inputs(args: argparse.Namespace) -> None:
    """``--output`` may not be an image it predicts on, nor a file of the model folder it loads."""
    from wavemixer.data.images import find_images
    from wavemixer.files import refuse_overwriting_inputs
    from wavemixer.train.checkpoint import run_files

    images = list(args.inputs) if args.model else list(args.inputs)[1:]
    read = find_images(images) if images else []
    if not args.model and Path(args.inputs[0]).is_dir():
        read += run_files(Path(args.inputs[0]))
    refuse_overwriting_inputs([("--output", args.output)], read)


def _predict(args: argparse.Namespace) -> int:
    from wavemixer.data.images import find_images
    from wavemixer.files import atomic_write_text
    from wavemixer.loading import load_model
    from wavemixer.tasks import task_class
    from wavemixer.tasks.base import PredictOptions, Task, image_outputs

    inputs = list(args.inputs)
    if args.model:
        source = None
    else:
        source = inputs.pop(0)
        if not inputs:
            raise ValueError("no images given: wavemixer predict CHECKPOINT IMAGE_OR_FOLDER [...]")
    loaded = load_model(source, model_name=args.model, pretrained=args.pretrained, device=args.device)
    task = task_class(loaded.task)()
    _refuse_flags_that_do_not_apply(args, loaded.task, task.predicts_images)
    if getattr(args, "asked_format", None) == "csv" and type(task).predictions_text is Task.predictions_text:
        raise ValueError(
            f"{loaded.task} predictions are written as JSON only; use --format json (or an --output ending in .json)"
        )
    files = find_images(inputs)
    options = PredictOptions(device=args.device, batch_size=args.batch_size, top_k=args.top_k,
                             from_hr=bool(args.from_hr), skipped=[] if args.skip_corrupt else None)  # fmt: skip
    if task.predicts_images:
        options.out_dir = Path(args.output_dir or "predictions")
        names = image_outputs(files, lambda path: task.image_names(loaded, path))
        with _image_folder(options.out_dir, names, args.force):
            records = task.predict(loaded, files, options)
    else:
        records = task.predict(loaded, files, options)
    if options.skipped and len(options.skipped) == len(files):  # an empty table would pass for a result
        from wavemixer.data.images import list_unreadable

        raise ValueError(
            f"none of the {len(files)} images could be read (--skip-corrupt): {list_unreadable(options.skipped)}"
        )
    text = task.predictions_text(loaded, records, args.format)
    if args.output:
        atomic_write_text(args.output, text)  # predict refused an existing file before predicting
        if not task.predicts_images:
            n = len(records)
            print(f"wrote {n:,} prediction{'s' if n != 1 else ''} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for note in options.notes:
        print(note, file=sys.stderr)
    return 0


@contextlib.contextmanager
def _image_folder(out_dir: Path, names: list[str], force: bool) -> Iterator[None]:
    """Hold ``--output-dir`` while the images are written: refused when not empty, unless ``--force``, which
    replaces only images wavemixer wrote there (its manifest lists them; the new names are added first)."""
    from wavemixer.files import check_writable, claim
    from wavemixer.written_files import holds_outputs, recording, refuse_replacing_unrecorded

    full = (
        f"--output-dir {out_dir} is not empty; pass --force to write into it (images wavemixer wrote there under "
        "the same names are replaced), or choose another folder"
    )

    def refuse() -> None:
        if holds_outputs(out_dir) and not force:
            raise FileExistsError(full)
        refuse_replacing_unrecorded(out_dir, names, what="--output-dir", option="--force")

    refuse()
    with claim(out_dir, "--output-dir", "choose another --output-dir"):
        refuse()  # again: another process may have filled it since
        check_writable(out_dir, "--output-dir")
        with recording(out_dir, names):
            yield
