"""Decoding image files into tensors: every bit depth, broken files named in one line, per-image statistics.

Every reader of the project (training folders, segmentation and super-resolution pairs, ``predict``) decodes
through :func:`load_image`, so the same file gives the same tensor everywhere.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wavemixer.files import strict_walk

__all__ = [
    "IMAGE_EXTENSIONS",
    "UnreadableImage",
    "find_images",
    "image_features",
    "image_files_under",
    "list_unreadable",
    "load_image",
    "open_image",
    "readable_images",
    "settle_unreadable",
    "unit_float",
    "unreadable_reason",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def unit_float(img: Tensor) -> Tensor:
    """An image as float on the [0, 1] scale: uint8 divided by 255; images decoded at more than 8 bits
    (16-bit and float files, see :func:`load_image`) are already float on that scale."""
    return img.float().div_(255) if img.dtype == torch.uint8 else img.float()


#: Pillow modes of images with more than 8 bits per sample (all single-channel)
_DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def load_image(source: str | Path | bytes, mode: str, *, full_range: bool = True) -> Tensor:
    """Decode an image file (path or bytes) as a C×H×W tensor in ``mode`` ('L' or 'RGB').

    8-bit images give uint8. Deeper ones (16-bit PNG/TIFF, 32-bit integer or float TIFF) are never clipped
    to 8 bits, which would turn most of them white: with ``full_range`` they give float32 on the [0, 1]
    scale (integers divided by their largest value, float images as stored); without it, uint8 scaled from
    their whole range (for the pipelines that hold 8-bit images). A grayscale image in ``mode`` 'RGB' is
    repeated over the three channels.
    """
    where = "image bytes" if isinstance(source, bytes) else str(source)
    try:
        with open_image(source) as im:
            arr = _deep_array(im) if im.mode in _DEEP_MODES else np.asarray(im.convert(mode), dtype=np.uint8)
    except UnreadableImage as exc:
        raise UnreadableImage(where, exc.reason) from None
    except Exception as exc:  # decoders raise many kinds of errors for a broken file
        raise UnreadableImage(where, unreadable_reason(exc)) from exc
    t = torch.from_numpy(arr.copy())
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()
    if t.dtype != torch.uint8:
        if mode == "RGB":
            t = t.expand(3, -1, -1).contiguous()
        if not full_range:
            low, high = float(t.min()), float(t.max())
            if low < 0 or high > 1:
                raise UnreadableImage(
                    where, f"a float image with values in [{low:g}, {high:g}]; 8-bit use needs [0, 1]"
                )
            t = t.mul(255).round_().to(torch.uint8)
    return t


class UnreadableImage(ValueError):
    """A file that does not decode as an image; ``reason`` says why in a few words (without the path)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"cannot read {where} as an image ({reason})")
        self.reason = reason


def open_image(source: str | Path | bytes) -> Any:
    """``PIL.Image.open`` of a path or bytes; a path that is not a regular file (a named pipe, a device) is
    refused before opening: reading one would block forever or never end."""
    from PIL import Image

    if isinstance(source, bytes):
        return Image.open(io.BytesIO(source))
    special = _not_a_regular_file(source)
    if special:
        raise UnreadableImage(str(source), special)
    return Image.open(source)


def _not_a_regular_file(path: str | Path) -> str | None:
    """What ``path`` is when it is not a regular file (reading a named pipe blocks forever), else ``None``."""
    import stat

    kind = os.stat(path).st_mode
    if stat.S_ISREG(kind):
        return None
    what = "a named pipe" if stat.S_ISFIFO(kind) else "a folder" if stat.S_ISDIR(kind) else "a device or socket"
    return f"not a regular file: {what}"


def _deep_array(im: Any) -> np.ndarray:
    """A >8-bit single-channel image as float32: integers divided by their largest value, floats as stored."""
    arr = np.asarray(im)
    if im.mode == "F":
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise UnreadableImage("", "a float image with NaN or infinite pixels")
        return arr
    if im.mode == "I":  # 32-bit container: the file says how many bits it uses (TIFF), PNG/PNM at most 16
        tags = getattr(im, "tag_v2", None) or {}
        bits = tags.get(258, (16 if im.format in ("PNG", "PPM") else 32,))
        bits = int(bits[0] if isinstance(bits, tuple) else bits)
        if arr.min() < 0:
            raise UnreadableImage("", "a signed integer image with negative pixels; only unsigned ones are read")
    else:
        bits = 16
    return (arr.astype(np.float64) / (2**bits - 1)).astype(np.float32)


def unreadable_reason(exc: BaseException) -> str:
    """Why a file did not decode, in a few words; never its path (messages name the file beside it)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image format Pillow can read"
    if isinstance(exc, Image.DecompressionBombError):  # a tiny file that would decode to gigabytes
        size = str(exc).split(",")[0]  # "Image size (N pixels) exceeds limit of M pixels"
        return f"{size}: refused as a possible decompression bomb"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if len(text) > 80:
        text = text[:80].rsplit(" ", 1)[0] + " ..."
    return f"{type(exc).__name__}: {text}"


def image_features(img: Tensor) -> Tensor:
    """Per-channel mean and std of a C×H×W image on the [0, 1] scale: cheap, and far off for most foreign inputs."""
    x = unit_float(img).double().flatten(1)
    return torch.cat([x.mean(1), x.std(1, correction=0)])


def list_unreadable(corrupt: list[tuple[str, str]], shown: int = 3) -> str:
    """``file (why); ...`` for the first ``shown`` unreadable files: whole names, never cut mid-path."""
    text = "; ".join(f"{f} ({why})" for f, why in corrupt[:shown])
    return text + (f"; and {len(corrupt) - shown} more" if len(corrupt) > shown else "")


def readable_images(
    files: Sequence[str | Path], skipped: list[tuple[str, str]] | None, color_mode: str = "RGB"
) -> list[Path]:
    """The ``files`` that decode, checked before anything is predicted. An unreadable one is an error naming every
    unreadable file, unless a ``skipped`` list is given (``--skip-corrupt``): then they are listed there."""
    good, unreadable = [], []
    for f in files:
        try:
            load_image(f, color_mode, full_range=False)
            good.append(Path(f))
        except UnreadableImage as exc:
            unreadable.append((os.fspath(f), exc.reason))
    settle_unreadable(unreadable, len(files), skipped)
    return good


def settle_unreadable(unreadable: list[tuple[str, str]], total: int, skipped: list[tuple[str, str]] | None) -> None:
    """Refuse the unreadable inputs of a prediction in one error naming them, or, given a ``skipped`` list
    (``--skip-corrupt``), add them to it."""
    if unreadable and skipped is None:
        raise ValueError(
            f"{len(unreadable)} of {total:,} images cannot be read: {list_unreadable(unreadable)}; fix or "
            "remove them, or pass --skip-corrupt to predict the others"
        )
    if skipped is not None:
        skipped += unreadable


def image_files_under(folder: Path) -> list[Path]:
    """Files with an image extension below ``folder`` (symlinked folders not followed), sorted; a sub-folder that
    cannot be listed raises its ``OSError`` instead of being skipped with its images (``Path.rglob`` would)."""
    found = [Path(d) / f for d, _, files in strict_walk(folder) for f in files]
    return sorted(p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS)


def find_images(inputs: list[str]) -> list[Path]:
    """Image files among ``inputs`` (files, or folders searched recursively), in a stable order; a file given
    twice (or also inside a given folder) is listed once."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = image_files_under(path)
            if not found:
                raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in folder {path}")
            files += found
        elif path.exists():
            files.append(path)  # a named pipe or device is refused, with the other unreadable files, when read
        else:
            raise FileNotFoundError(f"input {path} does not exist")
    if not files:
        raise ValueError("no input images given")
    seen: set[str] = set()
    unique = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique
