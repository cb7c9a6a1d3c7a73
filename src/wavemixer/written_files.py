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
    "MANIFEST", "holds_outputs", "read_manifest", "record_outputs", "recorded", "recording",
    "refuse_replacing_unrecorded", "remove_recorded",
]  # fmt: skip

MANIFEST = "wavemixer-manifest.json"
_FORMAT = "wavemixer-run-manifest"  # the name run folders' manifests have always had; kept so they stay readable


def read_manifest(folder: str | os.PathLike) -> list[str] | None:
    """The relative paths wavemixer wrote in ``folder``, or ``None`` when it has no (valid) manifest."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError):
        return None  # none, or not one (a folder, text that is not this JSON); an unreadable one raises
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("files"), list):
        return None
    return [str(p) for p in data["files"] if _inside(str(p))]  # an entry outside the folder is never ours


def _inside(name: str) -> bool:
    """A plain relative path that stays inside its folder (no ``..``, not absolute, not empty)."""
    rel = PurePosixPath(name)
    return bool(rel.parts) and not rel.is_absolute() and ".." not in rel.parts


def record_outputs(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Add ``names`` (paths relative to ``folder``) to its manifest; rewritten only when something is new.

    A file named like the manifest that is not one (the user's) is never replaced: ``FileExistsError``.
    """
    folder = Path(folder)
    names = list(names)
    outside = [n for n in names if not _inside(n)]
    if outside:
        raise ValueError(f"{outside[0]!r} is not a path inside {folder}: a manifest lists only its folder's files")
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
    folder = Path(folder).resolve()  # "." and links: the parent's manifest names the real folder
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
            why = (
                f"it is not listed in {folder / MANIFEST}"
                if ours or (folder / MANIFEST).is_file()
                else f"{folder} has no {MANIFEST}, as folders written before report folders kept one have none"
            )
            raise FileExistsError(
                f"{folder / name} was not written by wavemixer ({why}), so {option} does not replace it: move it "
                f"away, or choose another {what}"
            )


def holds_outputs(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds anything but a manifest."""
    folder = Path(folder)
    return folder.is_dir() and any(p.name != MANIFEST for p in folder.iterdir())


@contextmanager
def recording(folder: str | os.PathLike, names: Iterable[str]) -> Iterator[None]:
    """Record ``names`` before the block writes them; afterwards, however it ends, forget those it did not
    write (an image ``--skip-corrupt`` left out, a command that failed half-way), so that a file of the user's
    that later takes such a name is never taken for ours. A manifest left listing nothing is removed."""
    folder, names = Path(folder), list(names)
    record_outputs(folder, names)
    try:
        yield
    finally:
        files = read_manifest(folder)
        if files is not None:
            kept = [f for f in files if f not in names or folder.joinpath(*PurePosixPath(f).parts).is_file()]
            if kept == [MANIFEST]:
                (folder / MANIFEST).unlink(missing_ok=True)
            elif kept != files:
                atomic_write_text(folder / MANIFEST, strict_json(dict(format=_FORMAT, files=kept)))


def remove_recorded(folder: str | os.PathLike, files: Iterable[str]) -> None:
    """Delete the listed files (only plain relative paths inside ``folder``), then folders left empty."""
    folder = Path(folder)
    parents = set()
    for name in files:
        if not _inside(name):
            continue  # a manifest never names anything outside its folder
        rel = PurePosixPath(name)
        path = folder.joinpath(*rel.parts)
        if path.is_file() or path.is_symlink():
            path.unlink()
        parents.update(folder.joinpath(*rel.parts[:i]) for i in range(1, len(rel.parts)))
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
