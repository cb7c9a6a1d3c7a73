"""Training a list of runs, a few at a time, resumably: what a grid of runs needs to be trained.

Each job is a ``wavemixer`` command line and its run folder. A folder with ``results.json`` is finished and
skipped; one with ``checkpoint.pt`` was interrupted and is continued (``wavemixer train --resume FOLDER``);
the others start, with ``--force`` when a run was stopped before its first checkpoint (its folder holds only
what ``wavemixer train`` wrote at the start, which ``--force`` replaces). Each run gets one OpenMP thread, optionally
``nice``, and appends its output to ``<folder>.log`` beside the folder. A run that diverged (its log says so)
is not started again: it would diverge again. A job with a ``record`` folder (:mod:`wavemixer.runs.records`)
is restored from it when its run folder is gone, and saves its record when its run ends, so that a grid
continues from committed records on another machine.
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

from .records import diverged, restore_record, save_record

__all__ = ["Job", "add_lane_options", "at_least", "command", "record_path", "train_in_lanes"]


@dataclass(frozen=True)
class Job:
    """``args``: the ``wavemixer`` arguments that start the run (``["train", ...]``); ``out``: its run folder;
    ``record``: where its record is kept (``None``: nowhere)."""

    args: Sequence[str]
    out: Path
    record: Path | None = None


def command(job: Job, *, nice: int = 0, python: str = sys.executable) -> list[str] | None:
    """The process to start for ``job`` now: ``None`` when it is finished, the resume command when interrupted,
    the start command (with ``--force`` over a folder left before the first checkpoint) otherwise; ``None``
    too for a run that diverged."""
    if (job.out / "results.json").is_file() or diverged(job.out):
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
    """Run the jobs in order, ``lanes`` at a time; returns the run folders whose process failed. A run that
    diverges is an outcome (a setting that does not train), logged as ``DIVERGED``, not a failure."""
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, got {lanes}")
    log = log or (lambda text: print(text, flush=True))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    queue, running, failed = list(jobs), [], []
    while queue or running:
        while queue and len(running) < lanes:
            job = queue.pop(0)
            if job.record is not None and restore_record(job.record, job.out):
                log(f"restored {job.out} from its record {job.record}")
            cmd = command(job, nice=nice)
            if cmd is None:
                if diverged(job.out):
                    log(f"skip {job.out}: it diverged (its log says so); delete {job.out.name}.log to train it again")
                if job.record is not None:
                    save_record(job.out, job.record)  # a run that ended before records were kept
                continue
            job.out.parent.mkdir(parents=True, exist_ok=True)
            log(f"start {job.out}: {' '.join(cmd[cmd.index('train') :])}")
            with (job.out.parent / f"{job.out.name}.log").open("a") as fh:
                running.append((subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env), job))
        time.sleep(poll_s)
        for proc, job in list(running):
            if proc.poll() is not None:
                running.remove((proc, job))
                outcome = "done" if proc.returncode == 0 else "DIVERGED" if diverged(job.out) else "FAILED"
                log(f"{outcome} {job.out} (exit {proc.returncode})")
                if outcome == "FAILED":
                    failed.append(job.out)
                if job.record is not None and save_record(job.out, job.record):
                    log(f"record of {job.out} kept in {job.record}")
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


def add_lane_options(parser: argparse.ArgumentParser, records: str | None = None) -> None:
    """``--lanes`` and ``--nice`` of a grid's command line (:func:`train_in_lanes`'s arguments), and
    ``--records`` (each run's record, :func:`record_path`; ``records`` says where it goes by default)."""
    parser.add_argument("--lanes", type=_lanes, default=2, help="runs trained at once, one thread each (default 2)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the training processes (0 = none)")
    parser.add_argument("--records", type=Path, metavar="DIR",
                        help="keep each finished run's record here, and restore run folders that are gone from it "
                             f"(default: {records or 'none kept'})")  # fmt: skip


def record_path(records: Path | None, runs: Path, out: Path) -> Path | None:
    """Where the record of the run folder ``out`` (under ``runs``) is kept: the same path under ``records``."""
    return None if records is None else records / out.relative_to(runs)
