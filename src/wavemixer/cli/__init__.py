"""The ``wavemixer`` command line: one module per sub-command, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence

__all__ = ["COMMANDS", "OPTIONAL_EXTRAS", "main"]

# sub-command name -> module (imported lazily so `wavemixer models` does not import torchvision)
COMMANDS: dict[str, str] = {
    "models": "wavemixer.cli.models",
    "convert": "wavemixer.cli.convert",
    "bench": "wavemixer.cli.bench",
    "train": "wavemixer.cli.train",
    "eval": "wavemixer.cli.eval",
    "predict": "wavemixer.cli.predict",
    "export": "wavemixer.cli.export",
}

# import name of an optional dependency -> the extra that installs it
OPTIONAL_EXTRAS: dict[str, str] = {
    "onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx", "timm": "timm", "huggingface_hub": "hub",
    "tensorboard": "tensorboard", "torchvision": "train", "torchmetrics": "train", "PIL": "train",
    "yaml": "train", "tqdm": "train", "matplotlib": "train", "sklearn": "train",
}  # fmt: skip


class CLIError(Exception):
    """A user error: printed as one line without a traceback, exit status 2."""


def add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, usually one per core)")


def apply_threads(threads: int | None) -> None:
    """Honour ``--threads`` (a run beside others on a shared machine should not take every core)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


class _StdoutHandler(logging.StreamHandler):
    """Writes each message to the ``sys.stdout`` of the moment (redirections and captures replace it)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stdout

    @stream.setter
    def stream(self, value: object) -> None:
        pass


@contextlib.contextmanager
def library_messages_to_stdout() -> Iterator[None]:
    """The library reports progress through ``logging`` (``wavemixer.*`` loggers); the CLI prints it plainly."""
    package = logging.getLogger("wavemixer")
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False
    try:
        yield
    finally:
        handler.flush()
        package.removeHandler(handler)
        package.setLevel(level)
        package.propagate = propagate


def build_parser() -> argparse.ArgumentParser:
    from wavemixer import __version__

    parser = argparse.ArgumentParser(
        prog="wavemixer", description="WaveMix image models: train, evaluate, predict, benchmark, convert."
    )
    parser.add_argument("--version", action="version", version=f"wavemixer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with library_messages_to_stdout():
            result = args.func(args)
    except CLIError as exc:
        print(f"wavemixer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, TypeError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"wavemixer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        package = (exc.name or "").split(".")[0]
        if package not in OPTIONAL_EXTRAS or getattr(args, "debug", False):
            raise
        print(
            f"wavemixer {args.command}: error: this needs {package!r}, which is not installed: "
            f"pip install 'wavemixer[{OPTIONAL_EXTRAS[package]}]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"wavemixer {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
