"""Safe output files: atomic, fsynced writes of files and whole folders, strict JSON, refusal to overwrite.

A write goes to a hidden temporary (``.NAME.XXXX.tmp``) beside its target, is flushed to disk and then renamed
over the target, so a crash or a kill leaves either the old or the new content, never a mix. Temporaries left
by a killed process are removed by :func:`remove_stale_temporaries` the next time the folder is used.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_folder",
    "atomic_write",
    "atomic_write_text",
    "refuse_overwrite",
    "remove_stale_temporaries",
    "strict_json",
]

TMP_SUFFIX = ".tmp"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a folder's entry to disk (folders: best effort, not every OS can open them)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path``: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the file normal permissions
        _fsync_path(tmp)
        if os.environ.get("WAVEMIXER_TEST_PAUSE_BEFORE_RENAME"):  # lets a test kill a process mid-save
            import time

            time.sleep(float(os.environ["WAVEMIXER_TEST_PAUSE_BEFORE_RENAME"]))
        os.replace(tmp, path)
        _fsync_path(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


@contextmanager
def atomic_folder(folder: str | os.PathLike, owned: Iterable[str]) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it replaces ``folder`` as a whole, on error it vanishes.

    ``owned`` are the file names this writer produces. When ``folder`` exists and holds only those, it is
    swapped for the new one (two renames); when it also holds other files, they stay and the new files are
    renamed into it one by one.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=TMP_SUFFIX, dir=folder.parent))
    try:
        yield tmp
        for f in tmp.iterdir():
            _fsync_path(f)
        _fsync_path(tmp)
        os.chmod(tmp, 0o777 & ~_current_umask())
        if not folder.exists():
            os.rename(tmp, folder)
        elif {p.name for p in folder.iterdir()} <= set(owned):
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", suffix=TMP_SUFFIX, dir=folder.parent))
            os.rmdir(old)
            os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old)
        else:
            for f in sorted(tmp.iterdir()):
                os.replace(f, folder / f.name)
            tmp.rmdir()
        _fsync_path(folder.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def remove_stale_temporaries(folder: str | os.PathLike, names: Iterable[str]) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files and folders an interrupted write of ``NAME`` left in ``folder``.

    Only temporaries of the given names go: another ``*.tmp`` in the folder is not ours to remove. A folder
    swap cut between its two renames leaves only ``.NAME.old.*.tmp``: it is renamed back to NAME.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for name in names:
        for p in sorted(folder.glob(f".{glob.escape(name)}.*{TMP_SUFFIX}")):
            if p.name.startswith(f".{name}.old.") and p.is_dir() and not (folder / name).exists():
                os.rename(p, folder / name)
                continue
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            removed.append(p)
    return removed


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def strict_json(data: Any, *, indent: int | None = 2) -> str:
    """Standard JSON text (no ``NaN``/``Infinity``, which strict parsers reject): non-finite numbers become null."""
    return json.dumps(_finite_or_none(data), indent=indent, allow_nan=False) + "\n"


def refuse_overwrite(paths: Iterable[str | os.PathLike], *, force: bool, option: str = "--force") -> None:
    """A ``FileExistsError`` naming the first existing path, unless ``force``."""
    if force:
        return
    for p in paths:
        if Path(p).exists():
            raise FileExistsError(f"{p} already exists; pass {option} to overwrite it, or choose another path")
