"""``wavemixer export``: a model as ONNX, a torch.export archive (.pt2) or a TorchScript trace.

The graph takes any batch size, height and width the eager model takes (odd sizes included) unless
``--static``; it is checked against the eager model at three sizes of different parity before the command
reports success. ``--format torchscript-script`` is refused: torch.jit.script cannot compile the models.

  wavemixer export runs/mnist-run model.onnx                       # a run folder's best weights
  wavemixer export --model wavemix_lite_8_10_mnist --pretrained model.pt2 --format pt2
  wavemixer export --model wavemix_lite_32_7_cifar10 model.ts --format torchscript --input-size 3 32 32
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wavemixer.cli import CLIError

FORMAT_CHOICES = ["onnx", "pt2", "torchscript", "torchscript-script"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model for deployment (ONNX, torch.export, TorchScript)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="[CHECKPOINT] OUTPUT: a run or model folder, then the file")
    p.add_argument("--model", help="registry name to export instead of a checkpoint")
    p.add_argument("--pretrained", action="store_true", help="with --model: the weights shipped in the package")
    p.add_argument("--format", choices=FORMAT_CHOICES, help="default: from OUTPUT's suffix (.onnx, .pt2, .pt/.ts)")
    p.add_argument(
        "--input-size", type=int, nargs=3, metavar=("C", "H", "W"),
        help="example input size (default: the model's channels at its training size, else 32x32)",
    )  # fmt: skip
    p.add_argument("--static", action="store_true", help="fix the graph (batch included) to the example input size")
    p.add_argument("--no-fold", action="store_true", help="keep BatchNorm layers instead of folding them")
    p.add_argument("--no-verify", action="store_true", help="skip running the written graph against eager")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=run)


_SUFFIX_FORMATS = {".onnx": "onnx", ".pt2": "pt2", ".pt": "torchscript", ".ts": "torchscript"}


def _load(source: str | None, name: str | None, pretrained: bool):
    if name:
        from wavemixer.bench.peers import is_peer_name
        from wavemixer.factory import create_model

        if is_peer_name(name):  # a peer is built at a budget and trained: its run folder holds what to export
            raise CLIError(f"--model {name}: a peer is exported from its trained run: wavemixer export RUN OUTPUT")

        return create_model(name, pretrained=pretrained)
    from wavemixer.hub import from_pretrained

    path = Path(source)  # type: ignore[arg-type]
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found; give a run folder or a saved model folder")
    from wavemixer.loading import weights_folder

    return from_pretrained(weights_folder(path))


def _default_input_size(model) -> list[int]:
    pre = (getattr(model, "pretrained_config", None) or {}).get("preprocessing") or {}
    size = pre.get("input_size")
    return list(size) if size else [int(getattr(model, "in_chans", 3)), 32, 32]


def run(args: argparse.Namespace) -> int:
    from wavemixer.export import SCRIPT_REFUSAL, ExportResult, export_model
    from wavemixer.files import atomic_write, check_can_create, claim, is_stream

    if args.model and len(args.paths) != 1:
        raise CLIError("with --model give only OUTPUT: wavemixer export --model NAME OUTPUT")
    if not args.model and len(args.paths) != 2:
        raise CLIError("give CHECKPOINT OUTPUT (a run or model folder, then the file), or --model NAME OUTPUT")
    if args.pretrained and not args.model:
        raise CLIError("--pretrained goes with --model NAME")
    output = Path(args.paths[-1])
    by_suffix = _SUFFIX_FORMATS.get(output.suffix.lower())
    if args.format is not None and by_suffix is not None and args.format.split("-")[0] != by_suffix:
        raise CLIError(f"--format {args.format} contradicts OUTPUT {output}; drop one or rename the file")
    fmt = args.format or by_suffix
    if fmt is None:
        raise CLIError(f"cannot tell the format from {output.name!r}; pass --format {{onnx,pt2,torchscript}}")
    if fmt == "torchscript-script":
        raise CLIError(SCRIPT_REFUSAL)
    if not args.model:
        from wavemixer.files import refuse_overwriting_inputs
        from wavemixer.train.checkpoint import run_files

        source = Path(args.paths[0])
        refuse_overwriting_inputs([("OUTPUT", output)], run_files(source) if source.is_dir() else [source])
    if fmt == "onnx":
        from wavemixer.export import check_opset

        check_opset(args.opset, "--opset")
    if is_stream(output):  # the export is read back to check it: a stream cannot be
        raise CLIError(f"OUTPUT {output} is a device or pipe; give a file to write (the export is read back)")
    if output.is_dir():
        raise CLIError(f"OUTPUT {output} is a folder; give the path of the file to write (in it, or elsewhere)")
    if output.exists() and not args.force:
        raise CLIError(f"{output} exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        what = "is not a folder" if output.parent.exists() else "does not exist"
        raise CLIError(f"the folder {output.parent} of OUTPUT {output} {what}")
    check_can_create(output, "OUTPUT")  # before the export, not at its end under the temporary's name
    model = _load(None if args.model else args.paths[0], args.model, args.pretrained)
    if args.model and not args.pretrained:
        print(f"note: {args.model} with random weights (add --pretrained for the packaged ones)")
    size = args.input_size or _default_input_size(model)
    done: list[ExportResult] = []

    def write(tmp: str) -> None:  # checked while still the temporary: a failed check leaves no OUTPUT
        done.append(export_model(
            model, tmp, fmt, input_size=size, dynamic=not args.static, fold=not args.no_fold,
            verify=not args.no_verify, opset=args.opset,
        ))  # fmt: skip

    with claim(output, "OUTPUT", "choose another OUTPUT", folder=False):
        if output.exists() and not args.force:  # written since the check, by another process
            raise CLIError(f"{output} exists; pass --force to overwrite it")
        atomic_write(output, write, suffix=output.suffix)  # torch.export.save wants the suffix
    result = done[0]
    shape = "any batch x height x width" if result.dynamic else f"fixed {size[1]}x{size[2]}"
    checks = ", ".join(f"{c.size[0]}x{c.size[1]} max|err| {c.max_abs_error:.1e}" for c in result.checks)
    print(f"wrote {output} ({fmt}, {shape}){'; checked ' + checks if checks else ''}")
    return 0
