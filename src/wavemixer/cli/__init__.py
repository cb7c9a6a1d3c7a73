"""The ``wavemixer`` command line: one module per sub-command, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from wavemixer.optional_deps import missing_dependency

__all__ = ["COMMANDS", "OneLineParser", "main"]

# sub-command name -> module; every one is imported to build the parser, so each keeps its heavy imports
# (torchvision, the engine) inside its functions and `wavemixer models` stays quick
COMMANDS: dict[str, str] = {
    "models": "wavemixer.cli.models",
    "convert": "wavemixer.cli.convert",
    "bench": "wavemixer.cli.bench",
    "train": "wavemixer.cli.train",
    "eval": "wavemixer.cli.eval",
    "predict": "wavemixer.cli.predict",
    "export": "wavemixer.cli.export",
    "runs": "wavemixer.cli.runs",
}


class CLIError(Exception):
    """A user error: printed as one line without a traceback, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage block is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def run_command(self, args: argparse.Namespace) -> int:
        """``args.func(args)`` of a grid script's sub-command: a missing ``--data-dir`` is refused before any job
        starts, the script's own refusals (``SystemExit("...")``, a malformed result CSV's ``ValueError``)
        end in argparse's form, one line with exit status 2, and a reader that closed the output
        (``summarize ... | head``) ends it quietly, as for ``wavemixer``."""
        where = f"{self.prog} {args.command}"
        if getattr(args, "data_dir", None) and not Path(args.data_dir).exists():
            self.exit(2, f"{where}: error: --data-dir {args.data_dir} does not exist\n")
        try:
            result = args.func(args)
            sys.stdout.flush()
            return result
        except BrokenPipeError:
            return _closed_pipe()
        except SystemExit as exc:
            if isinstance(exc.code, str):
                self.exit(2, f"{where}: error: {exc.code}\n")
            raise
        except ValueError as exc:
            self.exit(2, f"{where}: error: {exc}\n")


def add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, usually one per core)")


def add_force_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--force", action="store_true", help=f"overwrite {what} if it exists (default: refuse)")


def check_common_options(args: argparse.Namespace, *, allow_auto_device: bool = True) -> None:
    """What eval, predict and bench share: --batch-size, --device, --threads, --pretrained (one-line errors)."""
    from wavemixer.checks import check_device, check_int

    if getattr(args, "batch_size", None) is not None:
        check_int("--batch-size", args.batch_size, ge=1)
    if getattr(args, "device", None) is not None:
        check_device("--device", args.device, allow_auto=allow_auto_device)
    apply_threads(getattr(args, "threads", None))
    if getattr(args, "pretrained", False) and not getattr(args, "model", None):
        raise ValueError("--pretrained takes the weights shipped for --model NAME; give --model too")


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


@contextlib.contextmanager
def one_line_warnings(command: str) -> Iterator[None]:
    """Warnings (the library's and its dependencies') as one plain line each, like the errors; ``--debug``
    keeps Python's format with the file and line."""

    def show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        text = " ".join(str(message).split())  # one line, whatever the message's own line breaks
        print(f"wavemixer {command}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def build_parser() -> argparse.ArgumentParser:
    from wavemixer import __version__

    parser = OneLineParser(
        prog="wavemixer", description="WaveMix image models: train, evaluate, predict, benchmark, convert."
    )
    parser.add_argument("--version", action="version", version=f"wavemixer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def from_worker(exc: BaseException) -> str | None:
    """The original one-line message of an error raised in a ``DataLoader`` worker process (a file that fails
    to decode mid-epoch), which torch re-raises with the worker's whole traceback as its message; else None."""
    text = str(exc)
    if not (text.startswith("Caught ") and "\nOriginal Traceback" in text):
        return None
    last = [line for line in text.splitlines() if line.strip()][-1]
    prefix = f"{type(exc).__name__}: "
    return last[len(prefix) :] if last.startswith(prefix) else last


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        quiet_format = contextlib.nullcontext() if getattr(args, "debug", False) else one_line_warnings(args.command)
        with library_messages_to_stdout(), quiet_format:
            result = args.func(args)
    except CLIError as exc:
        print(f"wavemixer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"wavemixer {args.command}: error: {from_worker(exc) or exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # our own messages (errno None) and faults of the OS: a path, what, what to do
        if isinstance(exc, BrokenPipeError):  # the reader closed standard output
            return _closed_pipe()
        if getattr(args, "debug", False):
            raise
        from wavemixer.files import describe_os_error

        print(f"wavemixer {args.command}: error: {from_worker(exc) or describe_os_error(exc)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        if getattr(args, "debug", False) or not _out_of_memory(exc):
            raise
        print(f"wavemixer {args.command}: error: {_out_of_memory(exc)}", file=sys.stderr)
        return 2
    except ImportError as exc:
        missing = missing_dependency(exc, "this command")
        if missing is None or getattr(args, "debug", False):
            raise
        print(f"wavemixer {args.command}: error: {missing}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wavemixer {args.command}: interrupted", file=sys.stderr)
        return 130
    try:
        sys.stdout.flush()  # a reader that stopped early (`wavemixer models | head -3`) shows here
    except BrokenPipeError:
        return _closed_pipe()
    return int(result or 0)


def _out_of_memory(exc: BaseException) -> str | None:
    """One line for an allocation that failed (host or GPU memory), or ``None`` for other errors."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"  # torch.OutOfMemoryError, without importing torch here
        or "can't allocate memory" in text
        or "out of memory" in text.lower()
    ):
        return None
    import re

    asked = re.search(r"(?i)tried to allocate (\d+) bytes", text)  # the CPU allocator
    size = f"{int(asked.group(1)) / 2**20:,.0f} MiB" if asked else None
    asked = asked or re.search(r"(?i)tried to allocate ([\d.]+ [KMGT]iB)", text)  # CUDA's
    detail = f" (an allocation of {size or asked.group(1)} failed)" if asked else ""
    return (
        f"out of memory{detail}: the inputs or batches are too large for this machine; lower --batch-size, "
        "or the input size (--input-size, or the model's input_size), or use a machine with more memory"
    )


def _closed_pipe() -> int:
    """The reader closed standard output: stop quietly, as command-line tools do (status 128 + SIGPIPE)."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's final flush at exit must not raise again
    return 141


if __name__ == "__main__":
    sys.exit(main())
