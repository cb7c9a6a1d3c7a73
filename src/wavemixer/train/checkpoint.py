"""Run folders and training checkpoints (atomic writes, corrupt-file detection, a manifest of what was written).

A run folder holds ``config.yaml`` (resolved options), ``summary.csv`` (one row per epoch), ``curves.png``,
``checkpoint.pt`` (everything needed to resume), ``best/`` and ``last/`` (``save_pretrained`` folders:
safetensors weights + config + preprocessing + labels), at the end ``results.json``, and
``wavemixer-manifest.json``: every file wavemixer wrote there, the only files ``--force`` ever removes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from wavemixer.files import (
    atomic_write,
    atomic_write_text,
    check_writable,
    claim,
    describe_load_error,
    refuse_overwrite,
    remove_stale_temporaries,
    strict_json,
)
from wavemixer.written_files import (
    MANIFEST,
    read_manifest,
    record_outputs,
    recording,
    refuse_replacing_unrecorded,
    remove_recorded,
)

__all__ = [
    "MANIFEST",
    "TRAIN_STATE",
    "claim_reports",
    "clean_run_dir",
    "load_train_state",
    "own_run_dir",
    "record_outputs",
    "report_dir",
    "run_files",
    "save_train_state",
    "write_json",
    "write_summary",
]

TRAIN_STATE = "checkpoint.pt"
#: what a training checkpoint holds (Trainer.state_dict); resuming needs every one
_STATE_KEYS = (
    "config", "model", "optimizer", "scheduler", "scaler", "epoch", "global_step", "phase", "best", "best_epoch",
    "bad_epochs", "history", "rng_torch",
)  # fmt: skip
#: what every run writes (also in folders from before the manifest)
_RUN_FILES = (
    MANIFEST, "config.yaml", TRAIN_STATE, "best_state.pt", "summary.csv", "curves.png", "results.json",
    "best/config.json", "best/model.safetensors", "last/config.json", "last/model.safetensors",
)  # fmt: skip


def run_files(folder: Path) -> list[Path]:
    """The files of a run or saved-model folder that wavemixer wrote and reads back (its manifest's, every run's
    standard files, a model folder's config and weights), those that exist."""
    names = [*(read_manifest(folder) or []), *_RUN_FILES, "config.json", "model.safetensors"]
    paths = (folder.joinpath(*PurePosixPath(n).parts) for n in names)  # read_manifest keeps only names inside
    return [p for p in paths if p.is_file()]


def _run_names(run_dir: Path) -> dict[tuple[str, ...], set[str]]:
    """The names a run writes, by folder inside the run (its manifest's and every run's standard files; the
    folders on their way included), never outside it."""
    names: dict[tuple[str, ...], set[str]] = {}
    for rel in [*(read_manifest(run_dir) or []), *_RUN_FILES]:
        parts = PurePosixPath(rel).parts
        for i, part in enumerate(parts):
            if ".." not in parts[: i + 1]:
                names.setdefault(parts[:i], set()).add(part)
    return names


def clean_run_dir(run_dir: Path) -> None:
    """Remove what an interrupted save left behind (``.NAME.*.tmp``) for the files a run writes, wherever
    they are in the run folder; temporaries of other names are not ours and stay."""
    for parts, folder_names in _run_names(run_dir).items():
        remove_stale_temporaries(run_dir.joinpath(*parts), sorted(folder_names))


def _linked_run_file(run_dir: Path) -> Path | None:
    """The first file (or folder of files) a run writes that is a link: writing through it would put the file,
    and a cut write's temporary, outside the run folder, where :func:`clean_run_dir` never looks."""
    for parts, folder_names in _run_names(run_dir).items():
        for name in sorted(folder_names):
            if (path := run_dir.joinpath(*parts, name)).is_symlink():
                return path
    return None


@contextmanager
def own_run_dir(path: Path, *, force: bool, resume: bool = False) -> Iterator[Path]:
    """Claim the run folder for the whole run (two runs never write one folder) and check it can be written.

    A new run creates the folder; an existing non-empty one is an error unless ``force``, and then only the
    files its manifest lists (what an earlier run wrote) are removed, never anything else the folder holds.
    ``resume`` continues the run already in it. A new run that fails before its first checkpoint removes what
    it wrote (and the folder, if it made it), so the corrected command runs without ``--force``.
    """
    hint = "copy the run folder to continue it elsewhere" if resume else "choose another --output"
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"--output {path} exists and is not a folder")
    if not resume and path.is_dir() and any(path.iterdir()) and not force:
        raise FileExistsError(_occupied(path))  # before claiming: a finished run's folder needs no lock to say so
    with claim(path, "run folder", hint) as folder:
        check_writable(folder, "run folder")
        if (link := _linked_run_file(folder)) is not None:
            fix = (
                "put a copy of what it names in its place" if resume else "remove the link, or choose another --output"
            )
            raise FileExistsError(
                f"{'--resume' if resume else '--output'} {path}: {link} is a link to {os.path.realpath(link)}; a run "
                f"writes its files in its own folder, not through links: {fix}"
            )
        if not resume and any(folder.iterdir()):
            if not force:
                raise FileExistsError(_occupied(folder))
            files = read_manifest(folder)
            if files is None:
                raise FileExistsError(
                    f"--force removes only files wavemixer wrote, as listed in {folder / MANIFEST}, and {folder} has "
                    "no such manifest; choose another --output"
                )
            clean_run_dir(folder)
            remove_recorded(folder, files)
        try:
            yield folder
        except BaseException:
            if not resume and not (folder / TRAIN_STATE).is_file():  # failed before its first checkpoint: nothing
                recorded = [f for f in read_manifest(folder) or [] if f != MANIFEST]  # to resume; a retry needs
                remove_recorded(folder, recorded)  # no --force
                if [p.name for p in folder.iterdir()] == [MANIFEST]:  # else it stays: --force needs it for the rest
                    (folder / MANIFEST).unlink()
            raise


def _occupied(path: Path) -> str:
    return (
        f"run folder {path} already exists and is not empty; use --resume {path} to continue it, "
        "--force to replace the run in it, or another --output"
    )


def report_dir(output_dir: str | None, run_dir: Path | None, dataset: str, split: str) -> Path:
    """``eval``'s reports folder: ``--output-dir``, else ``eval-<dataset>-<split>`` in the run folder (or in
    the current folder, for weights outside a run)."""
    return Path(output_dir) if output_dir else (run_dir or Path(".")) / f"eval-{dataset}-{split}"


@contextmanager
def claim_reports(folder: Path, files: list[str], *, force: bool, run_dir: Path | None = None) -> Iterator[Path]:
    """Hold the folder of ``eval``'s reports from before the work until they are written.

    Existing reports are refused without ``force`` (checked first, so nothing runs in vain), and with it when
    wavemixer did not write them (a file of the user's that shares a name). Their names are recorded before
    they are written: inside a run folder in the run's manifest (``train --force`` then removes them with the
    run, and the run is claimed too, so reports never land in a folder a training is writing), elsewhere in
    the report folder's own.
    """
    hint = "choose another --output-dir"

    def refuse() -> None:
        refuse_overwrite([folder / f for f in files], force=force)
        refuse_replacing_unrecorded(folder, files, what="--output-dir", option="--force")

    refuse()
    with contextlib.ExitStack() as stack:
        real = folder.resolve()  # "." or a link: the run's manifest names the folder as it is inside the run
        inside = run_dir is not None and real.parent == run_dir.resolve() and read_manifest(run_dir) is not None
        if inside:
            stack.enter_context(claim(run_dir, "run folder", f"{hint} outside it"))  # type: ignore[arg-type]
        stack.enter_context(claim(folder, "output folder", hint))
        check_writable(folder, "output folder")
        refuse()  # again, now that no one else writes here
        if inside:
            stack.enter_context(recording(run_dir, [f"{real.name}/{f}" for f in files]))  # type: ignore[arg-type]
        else:
            stack.enter_context(recording(folder, files))
        yield folder


def save_train_state(path: Path, state: dict[str, Any]) -> None:
    """Write a training checkpoint atomically (serialised first, so a failure leaves the old one)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))


def load_train_state(path: Path) -> dict[str, Any]:
    """A training checkpoint to resume from; a missing, torn or foreign file is a one-line error."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise FileNotFoundError(f"{path} {what}: --resume needs a run folder with a {TRAIN_STATE}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:  # unreadable (permissions, I/O): the file may be sound, so the OS's reason is the message
        raise
    except Exception as exc:  # a torn or foreign file raises many kinds of errors
        raise ValueError(
            f"{path} is not a readable training checkpoint ({describe_load_error(path, exc)}); "
            "the file is corrupt — start a new run or restore it"
        ) from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a wavemixer training checkpoint (a {type(state).__name__}, not a mapping)")
    missing = [k for k in _STATE_KEYS if k not in state]
    if missing:
        raise ValueError(
            f"{path} is not a complete wavemixer training checkpoint (missing {', '.join(missing)}); it cannot be "
            "resumed: start a new run, or restore the file"
        )
    if not isinstance(state["config"], dict):
        raise ValueError(f"{path}: its 'config' is a {type(state['config']).__name__}, not the run's options")
    return state


def write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite ``summary.csv`` from the full history (so a resumed run has no duplicated rows)."""
    if not rows:
        return
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def write_json(path: Path, data: Any) -> None:
    """Strict JSON, written atomically."""
    atomic_write_text(path, strict_json(data))
