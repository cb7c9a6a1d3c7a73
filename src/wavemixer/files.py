"""Safe output files: atomic, fsynced writes of files and whole folders, strict JSON, refusal to overwrite,
exclusive claims on output folders and files, and one-line descriptions of OS faults and unreadable files.

A write goes to a hidden temporary (``.NAME.XXXX.tmp``) beside its target, is flushed to disk and then renamed
over the target, so a crash or a kill leaves either the old or the new content, never a mix. Temporaries left
by a killed process are removed by :func:`remove_stale_temporaries` the next time the folder is used.

Two processes writing the same outputs would silently replace each other's files: :func:`claim` gives one
process an exclusive hold (``fcntl.flock``, released by the kernel when the process ends, even when killed)
and refuses the others in one line.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "ClaimedError",
    "OutputError",
    "atomic_folder",
    "atomic_save_png",
    "atomic_write",
    "atomic_write_text",
    "check_can_create",
    "check_writable",
    "claim",
    "describe_load_error",
    "describe_os_error",
    "is_stream",
    "read_yaml",
    "refuse_overwrite",
    "refuse_overwriting_inputs",
    "remove_stale_temporaries",
    "strict_json",
    "strict_walk",
    "write_target",
]


class ClaimedError(FileExistsError):
    """Another process holds the claim on an output folder or file (see :func:`claim`)."""


class OutputError(OSError):
    """An OS fault while writing outputs, its one-line message already naming the path and what to do."""


_OS_HINTS = {
    errno.EACCES: "permission denied: change the permissions or choose another path",
    errno.EPERM: "not permitted: the file or folder is read-only or immutable; make it writable or choose another path",
    errno.EROFS: "a read-only file system: choose a path on a writable one",
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.EFBIG: "over the file-size limit of this process (ulimit -f): raise the limit",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "it is a folder: give a file path",
    errno.ENAMETOOLONG: "a name too long for the file system: choose a shorter path",
    errno.EMFILE: "too many open files (ulimit -n): raise the limit",
    errno.EIO: "an input/output error of the device: check the disk",
}


def describe_os_error(exc: OSError, *, with_path: bool = True) -> str:
    """``PATH: what went wrong (what to do)`` in one line, for an OS error raised by a file operation
    (without ``PATH`` when the caller names the path itself)."""
    if exc.errno is None:  # raised by wavemixer with its own message
        return str(exc)
    names = (exc.filename, exc.filename2) if with_path else ()
    where = " -> ".join(os.fspath(f) for f in names if f is not None)
    what = exc.strerror or os.strerror(exc.errno)
    hint = _OS_HINTS.get(exc.errno)
    text = f"{where}: {what}" if where else what
    return f"{text} ({hint})" if hint else text


def describe_load_error(path: str | os.PathLike, exc: BaseException) -> str:
    """Why ``torch.load`` refused ``path``, in a few words: an empty file, or torch's first sentence without its
    advice (it suggests ``weights_only=False``, which would run any code a foreign file holds)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if not head:
            return "an empty file (0 bytes)"
        if not head.startswith((b"PK", b"\x80")):  # torch.save writes a zip archive (a pickle before torch 1.6)
            return "not a PyTorch checkpoint: neither the zip archive torch.save writes nor a pickle"
    except OSError:
        pass  # unreadable: the exception itself says why
    first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0].strip()
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def read_yaml(path: str | os.PathLike) -> Any:
    """The YAML document in ``path`` (``None`` when empty), refused in one line that names the path when it is
    not UTF-8 text or not valid YAML (PyYAML's own message spans several lines)."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise ValueError(f"{path} is not a UTF-8 text file (byte {byte:#04x} at position {exc.start})") from None
    try:
        return yaml.load(text, Loader=_unique_key_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{path} is not valid YAML: {problem}{where}") from None


def _unique_key_loader() -> type:
    """PyYAML's safe loader, refusing a key given twice in one mapping (it would keep the last one silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *anchor": its keys may be overridden
                    continue
                key = self.construct_object(key_node, deep=deep)
                with contextlib.suppress(TypeError):  # an unhashable key: the safe loader refuses it itself
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"the key {key!r} is given twice", key_node.start_mark
                        )
                    seen.add(key)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def check_writable(folder: str | os.PathLike, what: str) -> None:
    """Create and remove a temporary in ``folder``: a folder that cannot take outputs fails here, before any
    work, not at the first save (a resumed run would otherwise train an epoch it cannot keep)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".wavemixer-write-check.", suffix=TMP_SUFFIX, dir=folder)
        os.close(fd)
        os.remove(tmp)
    except OSError as exc:
        raise OutputError(f"cannot write in {what} {folder}: {describe_os_error(exc, with_path=False)}") from exc


def check_can_create(path: str | os.PathLike, what: str) -> None:
    """Whether ``path`` (a file or folder still to be written, its folders perhaps too) can be created: its
    nearest existing ancestor must be a folder that takes files. Checked before long work, so that an
    unwritable target is named with its option, not found at the end under a temporary's name."""
    target = Path(path)
    existing = next((p for p in (target, *target.parents) if p.exists()), Path("."))
    if existing != target and not existing.is_dir():
        raise OutputError(f"cannot write {what} {target}: {existing} is a file, not a folder")
    check_writable(existing if existing.is_dir() else existing.parent, f"the folder of {what}")


@contextmanager
def claim(path: str | os.PathLike, what: str, hint: str, *, folder: bool = True) -> Iterator[Path]:
    """Hold the output ``path`` exclusively while the block runs; yields it.

    A folder (``folder=True``) is created if missing and locked itself; one this call created is removed
    again if it is still empty at the end. A file is locked through a hidden ``.NAME.lock`` beside it
    (removed afterwards). The lock is ``fcntl.flock``: the kernel drops it when the process ends however it
    ends, so a killed run never leaves a stale claim. When another process holds it, :class:`ClaimedError`
    names ``what``, ``path`` and ``hint``. POSIX only: where ``fcntl`` is missing the claim is not enforced.
    """
    path = Path(path)
    created = False
    if not folder and is_stream(path):  # a device or pipe has no folder of ours to hold a lock file in
        yield path
        return
    if not folder and path.is_symlink():  # the lock sits beside what is written: two names, one holder
        path = write_target(path)
    if folder and not path.is_dir():
        if path.exists():
            raise FileExistsError(f"{what} {path} exists and is not a folder; {hint}")
        try:
            path.mkdir(parents=True)
            created = True
        except FileExistsError:  # made by a process started at the same moment: the lock decides
            pass
        except OSError as exc:
            raise OutputError(f"cannot create {what} {path}: {describe_os_error(exc, with_path=False)}") from exc
    elif not folder and not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the folder of {what} {path}: {describe_os_error(exc, with_path=False)}"
            ) from exc
    fd, lock_file = _lock(path, what, hint, folder)  # refused: the folder, made or not, is the holder's
    try:
        yield path
    finally:
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds while empty: whatever was written stays
        if lock_file is not None:
            with contextlib.suppress(OSError):
                lock_file.unlink()
        os.close(fd)  # releases the lock


def _lock(path: Path, what: str, hint: str, folder: bool) -> tuple[int, Path | None]:
    """An open descriptor holding ``flock(LOCK_EX)`` on the folder or the file's lock file, and that lock file."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no claim
        return os.open(os.devnull, os.O_RDONLY), None
    lock_file = None if folder else path.parent / f".{path.name}.lock"
    while True:
        try:
            if lock_file is None:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            else:
                fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666 & ~_current_umask())
        except OSError as exc:
            raise OutputError(f"cannot write {what} {path}: {describe_os_error(exc, with_path=False)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ClaimedError(
                f"{what} {path} is in use by another wavemixer process (an output has one writer at a time); "
                f"wait for it to finish, or {hint}"
            ) from None
        except OSError as exc:  # a file system without flock (some network mounts): say so, go on unclaimed
            logging.getLogger(__name__).warning(
                f"note: {what} {path} cannot be locked here ({exc.strerror}); a second process writing it at "
                "the same time would not be noticed"
            )
            return fd, lock_file
        # a lock file its previous holder removed between our open and flock: lock the new one instead
        if lock_file is None or (lock_file.exists() and os.stat(lock_file).st_ino == os.fstat(fd).st_ino):
            return fd, lock_file
        os.close(fd)


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


def is_stream(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a stream rather than a file to replace: a character device, pipe or socket
    (``/dev/null``, a FIFO), or a name for a descriptor (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``,
    whatever the descriptor is open on: stdout sent to a file is still written through it, not replaced).
    Streams are written in place and never count as something ``--force`` would overwrite."""
    return _descriptor(path) is not None or _is_device(path)


def _is_device(path: str | os.PathLike) -> bool:
    """A character device, pipe or socket (links followed)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


_DESCRIPTOR = re.compile(r"^/proc/(\d+)(?:/task/\d+)?/fd/(\d+)$")


def _descriptor(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(pid, fd)`` when ``path``, or a link on the way to what it names, is an open descriptor's name
    (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``, ``/proc/PID/task/TID/fd/N``, or a link to one of
    their folders); ``None`` otherwise. Each step's folder is resolved, so every spelling is recognised."""
    if not os.path.exists(path):
        return None
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        spelled = os.path.join(os.path.realpath(os.path.dirname(current)), os.path.basename(current))
        found = _DESCRIPTOR.match(spelled)
        if found:
            return int(found.group(1)), int(found.group(2))
        if not os.path.islink(current):
            return None
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    return None


def _write_to_own_descriptor(fd: int, write: Callable[[str], Any]) -> None:
    """Write through a duplicate of this process's descriptor ``fd``, at its offset and in its mode (appending
    stays appending): opening its name again would start a new description and truncate what it holds."""
    import sys

    for stream in (sys.stdout, sys.stderr):  # what was printed before comes before
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryDirectory(prefix="wavemixer-") as folder:
        tmp = os.path.join(folder, "output")
        write(tmp)
        with open(tmp, "rb") as source, os.fdopen(os.dup(fd), "wb") as target:
            shutil.copyfileobj(source, target)


def write_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: the target of a link (the link stays a link), else ``path``.
    A block device is refused: it is neither a file to replace nor a stream to write."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if target.exists() and stat.S_ISBLK(os.stat(target).st_mode):
        raise OutputError(f"cannot write {path}: it is a block device, not a file")
    return target


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any], *, suffix: str = "") -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path``: a crash never leaves a half-written file.

    A stream (:func:`is_stream`) is written directly: renaming over ``/dev/null`` would replace the device. A
    link is written through: its target is replaced and the link stays. ``suffix`` ends the temporary's name,
    for writers that tell the format from it (``torch.export.save``).
    """
    named = _descriptor(path)  # is_stream, with the descriptor it names
    if named is not None and named[0] == os.getpid():
        _write_to_own_descriptor(named[1], write)
        return
    if named is not None or _is_device(path):
        write(os.fspath(path))
        return
    path = write_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX + suffix, dir=path.parent)
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
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, tmp):
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc  # name the file, not its temporary
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text written through :func:`atomic_write`."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_save_png(image: Any, path: str | os.PathLike) -> None:
    """A PIL image written as PNG through :func:`atomic_write` (the temporary's name says nothing of the format)."""
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


@contextmanager
def atomic_folder(folder: str | os.PathLike, owned: Iterable[str]) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it replaces ``folder`` as a whole, on error it vanishes.

    ``owned`` are the file names this writer produces. When ``folder`` exists and holds only those, it is
    swapped for the new one (two renames); when it also holds other files, they stay and the new files are
    renamed into it one by one.
    """
    folder = write_target(folder)  # a link to a folder: swap the folder it names, keep the link
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=TMP_SUFFIX, dir=folder.parent))
    try:
        try:
            yield tmp
        except OSError as exc:  # name the folder being written, not its temporary
            if exc.errno is not None and (exc.filename is None or os.fspath(exc.filename).startswith(str(tmp))):
                name = os.path.basename(exc.filename) if exc.filename else ""
                raise OSError(exc.errno, exc.strerror, os.fspath(folder / name)) from exc
            raise
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


def _stop_walk(exc: OSError) -> None:
    raise exc


def strict_walk(root: str | os.PathLike, *, followlinks: bool = False) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` that raises the ``OSError`` of a folder it cannot list (permission denied, an I/O error):
    ``os.walk`` and ``Path.rglob`` skip such a folder, and every file in it, without a word."""
    return os.walk(root, onerror=_stop_walk, followlinks=followlinks)


def refuse_overwrite(paths: Iterable[str | os.PathLike], *, force: bool, option: str = "--force") -> None:
    """A ``FileExistsError`` naming the first existing path, unless ``force`` (``option`` says how to pass it:
    ``--force`` on the command line, ``force=True`` in Python)."""
    if force:
        return
    for p in paths:
        if Path(p).exists() and not is_stream(p):
            raise FileExistsError(f"{p} already exists; pass {option} to overwrite it, or choose another path")


def refuse_overwriting_inputs(
    outputs: Iterable[tuple[str, str | os.PathLike | None]], inputs: Iterable[str | os.PathLike]
) -> None:
    """An output is never one of the files the command reads: ``--force`` replaces an earlier output, not the
    checkpoint, results or images the command works from (``outputs`` are ``(option, path)`` pairs)."""
    read = {Path(p).resolve() for p in inputs}
    for option, out in outputs:
        if out is not None and Path(out).resolve() in read:
            raise ValueError(
                f"{option} {out} is one of the files this command works from (an input, or a file of the run or "
                "model folder it reads); choose another path"
            )
