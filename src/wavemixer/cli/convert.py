"""``wavemixer convert``: a reference ``wavemix`` checkpoint (.pth) -> config.json + model.safetensors."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from wavemixer.cli import CLIError


def _kwarg(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. final_dim=144), got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed: object = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value  # bare strings such as initial_conv=strided
    return key.strip(), parsed


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a reference wavemix checkpoint to a wavemixer model folder",
        description=__doc__,
        epilog="example: wavemixer convert cifar10_94.58.pth out/ --arg num_classes=10 --arg final_dim=144 "
        "--arg ff_channel=144 --arg depth=7 --arg level=1 --arg initial_conv=strided --arg stride=1",
    )
    p.add_argument("checkpoint", type=Path, help="reference .pth state dict")
    p.add_argument("output", type=Path, help="folder to write config.json and model.safetensors to")
    p.add_argument(
        "--task", choices=["classification", "segmentation", "super_resolution"], default="classification",
        help="which reference model the checkpoint is from (wavemix.classification / SemSegment / sisr)",
    )  # fmt: skip
    p.add_argument(
        "--arg", dest="kwargs", type=_kwarg, action="append", default=[], metavar="NAME=VALUE",
        help="a keyword argument the reference constructor was called with (repeatable)",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="overwrite an existing model folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wavemixer.files import check_can_create, refuse_overwrite
    from wavemixer.hub import CONFIG_NAME, WEIGHTS_NAME, refuse_replacing_foreign, save_pretrained
    from wavemixer.reference import from_reference
    from wavemixer.train.checkpoint import MANIFEST

    if not args.checkpoint.is_file():
        what = "is a folder; give the reference .pth file" if args.checkpoint.is_dir() else "does not exist"
        raise CLIError(f"checkpoint {args.checkpoint} {what}")
    if (args.output / MANIFEST).is_file():  # a run owns its folder: a model written beside it would be mistaken
        raise CLIError(
            f"{args.output} holds {MANIFEST}: it is a folder of other wavemixer outputs (a training run, or eval, "
            "predict or bench results); convert into a folder of its own"
        )
    try:  # before the (slow) conversion: config.json or model.safetensors alone is a model too
        refuse_overwrite([args.output / CONFIG_NAME, args.output / WEIGHTS_NAME], force=args.force)
    except FileExistsError as exc:
        raise CLIError(f"{args.output} already holds a model ({exc})") from None
    try:
        refuse_replacing_foreign(args.output)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from None
    check_can_create(args.output, "OUTPUT")
    model = from_reference(str(args.checkpoint), task=args.task, **dict(args.kwargs))
    metadata = {"converted_from": args.checkpoint.name, "reference_kwargs": dict(args.kwargs)}
    save_pretrained(model, args.output, metadata=metadata, force=args.force)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.output} ({type(model).__name__}, {n:,} parameters)")
    return 0
