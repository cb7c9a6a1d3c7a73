"""The manifest of what wavemixer wrote in a folder (``wavemixer-manifest.json``).

Run folders, ``eval`` report folders, ``predict`` image folders and ``bench`` results folders each keep one, so
``--force`` replaces or removes only files wavemixer wrote and never a file of the user's that shares a name.
A name is recorded *before* its file is written: an interrupted command never leaves a file the manifest
misses. Names are relative POSIX paths inside the folder; a manifest never names anything outside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from wavemixer.files import atomic_write_text, strict_json

__all__ = [
    "MANIFEST", "forget_if_only_manifest", "holds_outputs", "read_manifest", "record_outputs", "recorded",
    "refuse_replacing_unrecorded", "remove_recorded",
]  # fmt: skip

MANIFEST = "wavemixer-manifest.json"
_FORMAT = "wavemixer-run-manifest"  # the name run folders' manifests have always had; kept so they stay readable


def read_manifest(folder: str | os.PathLike) -> list[str] | None:
    """The relative paths wavemixer wrote in ``folder``, or ``None`` when it has no (valid) manifest."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("files"), list):
        return None
    return [str(p) for p in data["files"]]


def record_outputs(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Add ``names`` (paths relative to ``folder``) to its manifest; rewritten only when something is new.

    A file named like the manifest that is not one (the user's) is never replaced: ``FileExistsError``.
    """
    folder = Path(folder)
    files = _own_manifest(folder)
    new = [n for n in names if n not in (files or [])]
    if new or files is None:
        text = strict_json(dict(format=_FORMAT, files=sorted({*(files or []), *new, MANIFEST})))
        atomic_write_text(folder / MANIFEST, text)


def _own_manifest(folder: Path) -> list[str] | None:
    """The folder's manifest; a file of that name that is not one (the user's) stops wavemixer writing there."""
    files = read_manifest(folder)
    if files is None and (folder / MANIFEST).exists():
        raise FileExistsError(
            f"{folder / MANIFEST} is not a wavemixer manifest; wavemixer lists the files it writes in a file of "
            f"that name, so it does not write into {folder}: move the file away, or choose another folder"
        )
    return files


def recorded(folder: str | os.PathLike) -> set[str]:
    """The names wavemixer wrote in ``folder``: its own manifest's, and those its parent's manifest lists
    under it (the reports ``eval`` writes into a subfolder of a run folder are recorded in the run's)."""
    folder = Path(folder)
    names = set(_own_manifest(folder) or [])
    prefix = f"{folder.name}/"
    names.update(n[len(prefix) :] for n in read_manifest(folder.parent) or [] if n.startswith(prefix))
    return names


def refuse_replacing_unrecorded(folder: str | os.PathLike, names: Iterable[str], *, what: str, option: str) -> None:
    """``FileExistsError`` for the first of ``names`` that exists in ``folder`` but was not written by wavemixer:
    ``option`` (``--force``) replaces earlier outputs, never a file of the user's (``what`` names the folder's
    option, for the hint)."""
    folder = Path(folder)
    existing = [n for n in names if (folder / n).exists()]
    if not existing:
        return
    ours = recorded(folder)
    for name in existing:
        if name not in ours:
            raise FileExistsError(
                f"{folder / name} was not written by wavemixer (it is not listed in {folder / MANIFEST}), so "
                f"{option} does not replace it: move it away, or choose another {what}"
            )


def holds_outputs(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds anything but a manifest (which a failed command may leave, and a retry ignores)."""
    folder = Path(folder)
    return folder.is_dir() and any(p.name != MANIFEST for p in folder.iterdir())


@contextmanager
def forget_if_only_manifest(folder: str | os.PathLike) -> Iterator[None]:
    """Remove the manifest again when the block fails before writing anything beside it."""
    try:
        yield
    except BaseException:
        folder = Path(folder)
        if folder.is_dir() and [p.name for p in folder.iterdir()] == [MANIFEST]:
            (folder / MANIFEST).unlink()
        raise


def remove_recorded(folder: str | os.PathLike, files: Iterable[str]) -> None:
    """Delete the listed files (only plain relative paths inside ``folder``), then folders left empty."""
    folder = Path(folder)
    parents = set()
    for name in files:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            continue  # a manifest never names anything outside its folder
        path = folder.joinpath(*rel.parts)
        if path.is_file() or path.is_symlink():
            path.unlink()
        parents.update(folder.joinpath(*rel.parts[:i]) for i in range(1, len(rel.parts)))
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
