"""Training a list of runs, a few at a time, resumably: what a grid of runs needs to be trained.

Each job is a ``wavemixer`` command line and its run folder. A folder with ``results.json`` is finished and
skipped; one with ``checkpoint.pt`` was interrupted and is continued (``wavemixer train --resume FOLDER``);
the others start, with ``--force`` when a run was stopped before its first checkpoint (its folder holds only
what ``wavemixer train`` wrote at the start, which ``--force`` replaces). Each run gets one OpenMP thread, optionally
``nice``, and appends its output to ``<folder>.log`` beside the folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Job", "add_lane_options", "at_least", "command", "train_in_lanes"]


@dataclass(frozen=True)
class Job:
    """``args``: the ``wavemixer`` arguments that start the run (``["train", ...]``); ``out``: its run folder."""

    args: Sequence[str]
    out: Path


def command(job: Job, *, nice: int = 0, python: str = sys.executable) -> list[str] | None:
    """The process to start for ``job`` now: ``None`` when it is finished, the resume command when interrupted,
    the start command (with ``--force`` over a folder left before the first checkpoint) otherwise."""
    if (job.out / "results.json").is_file():
        return None
    base = [python, "-m", "wavemixer.cli"]
    if (job.out / "checkpoint.pt").is_file():
        cmd = [*base, "train", "--resume", str(job.out)]
    elif job.out.is_dir() and any(job.out.iterdir()):
        cmd = [*base, *job.args, "--force"]
    else:
        cmd = [*base, *job.args]
    return ["nice", "-n", str(nice), *cmd] if nice else cmd


def train_in_lanes(
    jobs: Sequence[Job],
    *,
    lanes: int = 2,
    nice: int = 10,
    log: Callable[[str], None] | None = None,
    poll_s: float = 0.5,
) -> list[Path]:
    """Run the jobs in order, ``lanes`` at a time; returns the run folders whose process failed."""
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, got {lanes}")
    log = log or (lambda text: print(text, flush=True))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    queue, running, failed = list(jobs), [], []
    while queue or running:
        while queue and len(running) < lanes:
            job = queue.pop(0)
            cmd = command(job, nice=nice)
            if cmd is None:
                continue
            job.out.parent.mkdir(parents=True, exist_ok=True)
            log(f"start {job.out}: {' '.join(cmd[cmd.index('train') :])}")
            with (job.out.parent / f"{job.out.name}.log").open("a") as fh:
                running.append((subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env), job.out))
        time.sleep(poll_s)
        for proc, out in list(running):
            if proc.poll() is not None:
                running.remove((proc, out))
                log(f"{'done' if proc.returncode == 0 else 'FAILED'} {out} (exit {proc.returncode})")
                if proc.returncode:
                    failed.append(out)
    return failed


def at_least(minimum: int, what: str = "a whole number") -> Callable[[str], int]:
    """An argparse ``type``: a whole number ``>= minimum``, refused in argparse's one line otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_lanes = at_least(1, "a whole number of runs at once")


def add_lane_options(parser: argparse.ArgumentParser) -> None:
    """``--lanes`` and ``--nice`` of a grid's command line (:func:`train_in_lanes`'s arguments)."""
    parser.add_argument("--lanes", type=_lanes, default=2, help="runs trained at once, one thread each (default 2)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the training processes (0 = none)")
