"""A run's record: the few small files that say what a finished run trained and scored, without its weights.

A grid of runs can outlive the machine it started on (a session ends, a spot instance goes). Its finished runs'
records are kept in a committed folder; restoring one gives back a run folder that the summaries, the tuning
tables and :func:`~wavemixer.runs.train_in_lanes` read as finished, so the grid continues where it stopped
instead of training those runs again. A record holds ``results.json``, ``config.yaml`` and ``summary.csv``
(kilobytes); the log beside it (``<run>.log``) is kept too, since it is what says a run diverged. A restored
folder has no weights: ``wavemixer eval`` and ``predict`` need the original folder, or the run trained again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from wavemixer.files import atomic_write

__all__ = ["DIVERGED", "RECORD_FILES", "diverged", "restore_record", "save_record"]

RECORD_FILES = ("results.json", "config.yaml", "summary.csv")
DIVERGED = "training diverged:"  # how `wavemixer train` begins the line of a run it stopped for a non-finite loss


def _log(folder: Path) -> Path:
    return folder.parent / f"{folder.name}.log"


def diverged(folder: Path) -> bool:
    """Whether the run in ``folder`` stopped because training diverged (its log beside it says so): a tried
    setting that has no score, and that retraining would not change."""
    log = _log(folder)
    if (folder / "results.json").is_file() or not log.is_file():
        return False
    return DIVERGED in log.read_text(errors="replace")


def save_record(run: Path, record: Path) -> bool:
    """Copy the record of ``run`` to ``record`` (a folder of the same layout) if the run ended: it finished
    (``results.json``) or diverged. Files already in the record are replaced atomically. Returns whether it
    saved anything (an unfinished run has no record)."""
    if not ((run / "results.json").is_file() or diverged(run)):
        return False
    record.mkdir(parents=True, exist_ok=True)
    if _log(run).is_file():
        atomic_write(_log(record), lambda tmp: shutil.copyfile(_log(run), tmp))
    for name in RECORD_FILES[::-1]:  # results.json last: a record cut short never reads as finished
        if (run / name).is_file():
            atomic_write(record / name, lambda tmp, src=run / name: shutil.copyfile(src, tmp))
    return True


def restore_record(record: Path, run: Path) -> bool:
    """Give back the run folder ``run`` from its ``record`` when the folder is not there (never over a folder
    that is: a run owns its folder). Returns whether it restored one."""
    if run.exists() or not record.is_dir():
        return False
    staging = run.parent / f".{run.name}.restoring"  # never read as a run: results.json arrives after the rename
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in RECORD_FILES:
        if (record / name).is_file():
            shutil.copyfile(record / name, staging / (f"{name}.part" if name == "results.json" else name))
    if _log(record).is_file() and not _log(run).exists():
        atomic_write(_log(run), lambda tmp: shutil.copyfile(_log(record), tmp))
    staging.rename(run)
    if (run / "results.json.part").is_file():
        (run / "results.json.part").rename(run / "results.json")
    return True
