"""Scanning image folders, zips and manifests: every image opened once before training, so that classes,
splits, colour mode, sizes and unreadable files are known (and reported in one line) up front.

Layouts: ``<class>/<image>``, ``train/ [val/] [test/] <class>/<image>``, a ``.zip`` of either, or a manifest
(:mod:`wavemixer.data.manifest`).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavemixer.files import strict_walk

from .datasets import FolderDataset
from .images import IMAGE_EXTENSIONS, UnreadableImage, list_unreadable, open_image, unreadable_reason
from .manifest import MANIFEST_SUFFIXES, is_absolute, read_manifest

__all__ = ["FolderScan", "folder_splits", "scan_folder", "scan_summary"]

_VAL_NAMES = ("val", "valid", "validation")
_SPLIT_NAMES = ("train", "test", *_VAL_NAMES)
_GRAY_MODES = ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "F")


@dataclass
class FolderScan:
    """What an up-front look at every image of a folder, zip or manifest found."""

    root: Path
    layout: str  # "split folders", "class folders" or "manifest"
    classes: list[str]
    splits: dict[str, tuple[list[str], list[int]]]  # split -> (files, labels)
    modes: dict[str, int]  # PIL mode -> images
    sizes: dict[tuple[int, int], int]  # (H, W) -> images
    corrupt: list[tuple[str, str]]  # (file, reason)
    color_mode: str = "RGB"
    size: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)


def _walk_files(root: Path) -> tuple[list[str], list[str]]:
    """Relative names of every file and every folder under ``root``, following symlinked folders (each real
    folder once); hidden ones (``.name``) are left out."""
    names: list[str] = []
    folders: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in strict_walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink cycle or a folder linked twice
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root)
        folders += [(rel / d).as_posix() for d in dirnames]
        names += [(rel / f).as_posix() for f in sorted(filenames) if not f.startswith(".")]
    return names, folders


def _readable(path: Path) -> bool:
    """True, or the ``OSError`` of opening ``path`` (``zipfile.is_zipfile`` reads an unreadable file as "not a
    zip", so a data set the user may not read was refused as not being one)."""
    with open(path, "rb"):
        return True


def _zip_names(root: Path) -> tuple[list[str], list[str]]:
    """Files and folders of a zip; an absolute or ``..`` entry is refused (it is no part of a data set tree)."""
    try:
        with zipfile.ZipFile(root) as z:
            entries = z.namelist()
    except zipfile.BadZipFile as exc:  # its end record reads, its directory does not
        raise ValueError(f"{root} is a damaged zip file ({exc}); zip the data set again") from exc
    for name in entries:
        if is_absolute(name) or ".." in name.replace("\\", "/").split("/"):
            raise ValueError(
                f"zip {root} has the entry {name!r}, an absolute path or one with '..'; a data set zip holds "
                "relative paths only (<class>/<image> or train/<class>/<image>)"
            )
    files = [n for n in entries if not n.endswith("/")]
    folders = {n.rstrip("/") for n in entries if n.endswith("/")}
    folders |= {"/".join(n.split("/")[:i]) for n in files for i in range(1, n.count("/") + 1)}
    return files, sorted(f for f in folders if not any(p.startswith(".") for p in f.split("/")))


def _list_source(root: Path) -> tuple[str, list[tuple[str, str, str | None]], Path]:
    """The layout and ``(file, class, split or None)`` of every image; the folder the files are relative to."""
    if root.is_file() and root.suffix.lower() in MANIFEST_SUFFIXES:
        return "manifest", read_manifest(root), root.parent
    if root.is_dir():
        names, folders = _walk_files(root)
    elif root.is_file() and _readable(root) and zipfile.is_zipfile(root):  # a pipe or device would block here
        names, folders = _zip_names(root)
    elif root.exists():
        raise ValueError(
            f"{root} is neither a folder, a zip file nor a .csv/.json manifest; --data-dir must be one of those"
        )
    else:
        raise FileNotFoundError(f"data folder {root} does not exist; check --data-dir")
    images = []
    for name in names:
        parts = name.split("/")
        if len(parts) >= 2 and name.lower().endswith(IMAGE_EXTENSIONS) and not any(p.startswith(".") for p in parts):
            images.append(parts)
    split_layout = any(len(p) >= 3 and p[-3].lower() in _SPLIT_NAMES for p in images)
    rows = []
    for parts in images:
        if split_layout:
            if len(parts) < 3 or parts[-3].lower() not in _SPLIT_NAMES:
                continue
            rows.append(("/".join(parts), parts[-2], parts[-3].lower()))
        else:
            rows.append(("/".join(parts), parts[-2], None))
    _refuse_empty_classes(root, rows, folders)
    return ("split folders" if split_layout else "class folders"), rows, root


def _refuse_empty_classes(root: Path, rows: list[tuple[str, str, str | None]], folders: list[str]) -> None:
    """A folder beside the training class folders without any image: a class the model would silently lack."""
    train = [f for f, _, split in rows if split in (None, "train")]
    class_dirs = {f.rsplit("/", 1)[0] for f in train}
    parents = {d.rsplit("/", 1)[0] if "/" in d else "" for d in class_dirs}
    for folder in folders:
        parent = folder.rsplit("/", 1)[0] if "/" in folder else ""
        if parent in parents and folder not in class_dirs and not any(f.startswith(folder + "/") for f, _, _ in rows):
            raise ValueError(
                f"class folder {folder} in {root} has no images ({', '.join(IMAGE_EXTENSIONS)}); add images or "
                "remove it (the model would otherwise lack the class without a word)"
            )


def _image_mode(im: Any) -> str:
    """'L' for grayscale images (palettes of grays included), else 'RGB'."""
    if im.mode in _GRAY_MODES:
        return "L"
    if im.mode == "P":
        pal = im.getpalette() or []
        if all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3)):
            return "L"
    return "RGB"


def scan_folder(root: Path, *, skip_corrupt: bool = False, input_size: int | None = None) -> FolderScan:
    """Every image opened and decoded once before training: classes, splits, colour modes, sizes, bad files.

    Colour: RGB if any image is in colour, else grayscale. Size: the common size, or (mixed sizes) the median
    height and width, unless ``input_size`` is given. Unreadable files are all reported at once.
    """
    from collections import Counter

    layout, rows, base = _list_source(root)
    if not rows:
        want = "train/<class>/<image> (with optional val/ and test/) or <class>/<image>"
        raise ValueError(
            f"no images found in {root} (extensions {', '.join(IMAGE_EXTENSIONS)}); an image folder data set "
            f"needs {want}, or a .csv/.json manifest of path,label"
        )
    reader = FolderDataset(base, [], [], "RGB")
    modes: Counter = Counter()
    sizes: Counter = Counter()
    corrupt: list[tuple[str, str]] = []
    good = []
    for file, cls, split in rows:
        try:
            with open_image(reader.read(file)) as im:
                im.load()
                modes[_image_mode(im)] += 1
                sizes[(im.height, im.width)] += 1
        except UnreadableImage as exc:
            corrupt.append((file, exc.reason))
            continue
        except Exception as exc:  # any decoder failure: the file is unreadable
            corrupt.append((file, unreadable_reason(exc)))
            continue
        good.append((file, cls, split))
    notes: list[str] = []
    if corrupt:
        shown = list_unreadable(corrupt)
        if not skip_corrupt:
            raise ValueError(
                f"{len(corrupt)} of {len(rows):,} images in {root} cannot be read: {shown}; fix or remove them, "
                "or pass --skip-corrupt to train without them"
            )
        notes.append(f"skipped {len(corrupt)} unreadable image(s) (--skip-corrupt): {shown}")
    by_split: dict[str, list[tuple[str, str]]] = {}
    for file, cls, split in good:
        split = "val" if split in _VAL_NAMES else (split or "train")
        by_split.setdefault(split, []).append((file, cls))
    if "train" not in by_split:
        raise ValueError(f"no training images found in {root}: a split layout needs train/<class>/<image>")
    classes = sorted({c for _, c in by_split["train"]})
    if len(classes) < 2:
        raise ValueError(f"{root} has {len(classes)} class in its training images; classification needs at least 2")
    index = {c: i for i, c in enumerate(classes)}
    splits: dict[str, tuple[list[str], list[int]]] = {}
    for split, items in by_split.items():
        extra = sorted({c for _, c in items} - set(classes))
        if extra:
            raise ValueError(f"{root}: the {split} images have classes not among the training classes: {extra}")
        items = sorted(items, key=lambda fc: (index[fc[1]], fc[0]))
        splits[split] = ([f for f, _ in items], [index[c] for _, c in items])
    scan = FolderScan(root, layout, classes, splits, dict(modes), dict(sizes), corrupt, notes=notes)
    scan.color_mode = "RGB" if modes.get("RGB") else "L"
    if len(modes) > 1:
        notes.append(
            f"colour mode RGB because {modes['RGB']:,} of {sum(modes.values()):,} images are in colour "
            "(grayscale ones are repeated over 3 channels)"
        )
    if input_size:
        scan.size = (input_size, input_size)
    elif len(sizes) == 1:
        scan.size = next(iter(sizes))
    else:
        hs = sorted(h for (h, _), n in sizes.items() for _ in range(n))
        ws = sorted(w for (_, w), n in sizes.items() for _ in range(n))
        scan.size = (hs[len(hs) // 2], ws[len(ws) // 2])
        notes.append(
            f"images come in {len(sizes)} sizes; all are resized to {scan.size[0]}x{scan.size[1]} (the median "
            "height and width; --input-size N chooses another)"
        )
    return scan


def scan_summary(scan: FolderScan, counts: dict[str, int] | None = None) -> str:
    """One line: what was found (and, given ``counts``, how it was split), before anything trains."""
    counts = counts or {split: len(files) for split, (files, _) in scan.splits.items()}
    per_split = " / ".join(f"{n:,} {split}" for split, n in counts.items())
    sizes = sorted(scan.sizes.items(), key=lambda kv: -kv[1])
    size_text = ", ".join(f"{h}x{w}" for (h, w), _ in sizes[:3])
    size_text += f" (+{len(sizes) - 3} more)" if len(sizes) > 3 else ""
    modes = ", ".join(f"{n:,} {m}" for m, n in sorted(scan.modes.items()))
    return (
        f"found {len(scan.classes)} classes ({scan.layout}) in {scan.root}: {per_split} images; sizes {size_text}; "
        f"colour modes {modes}" + (f"; {len(scan.corrupt)} unreadable skipped" if scan.corrupt else "")
    )


def folder_splits(
    root: Path, *, skip_corrupt: bool = False, input_size: int | None = None
) -> tuple[dict[str, FolderDataset], FolderScan]:
    """The scanned source's splits as lazily decoded data sets, and the scan."""
    scan = scan_folder(root, skip_corrupt=skip_corrupt, input_size=input_size)
    base = root.parent if scan.layout == "manifest" else root
    out = {s: FolderDataset(base, files, labels, scan.color_mode) for s, (files, labels) in scan.splits.items()}
    return out, scan
