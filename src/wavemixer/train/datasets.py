"""Data sets by name, ImageFolder trees and zips, the embedded digits set, and the image preprocessing.

Every data set yields ``(float image tensor C×H×W, int label)``. Small data sets are held in memory as
uint8 tensors; image folders are decoded lazily. The same :class:`Preprocess` turns a uint8 image into the
model input at training, evaluation and prediction time, so that ``predict`` sees exactly what ``eval`` saw.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import struct
import threading
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "DataBundle",
    "DataInfo",
    "FolderScan",
    "Preprocess",
    "UnreadableImage",
    "build_datasets",
    "dataset_defaults",
    "default_data_dir",
    "derive_defaults",
    "image_features",
    "image_statistics",
    "list_unreadable",
    "load_image",
    "scan_folder",
    "scan_summary",
    "split_hash",
    "unit_float",
    "unreadable_reason",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

_MNIST = dict(mean=(0.1307,), std=(0.3081,))
_CIFAR10 = dict(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
_CIFAR100 = dict(mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))
_SVHN = dict(mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970))
_EMNIST_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")

# Per-data-set defaults: model, epochs, normalisation, augmentation (crop padding, flip, TrivialAugmentWide).
DATASETS: dict[str, dict[str, Any]] = {
    "digits": dict(
        model="wavemix_lite_32_7_cifar10_tiny",
        epochs=25,
        mean=(0.2,),
        std=(0.35,),
        crop_padding=1,
        hflip=False,
        trivial_augment=False,
    ),
    "mnist": dict(
        model="wavemix_lite_8_10_mnist", epochs=20, crop_padding=2, hflip=False, trivial_augment=False, **_MNIST
    ),
    "fashion_mnist": dict(
        model="wavemix_lite_8_5_fmnist",
        epochs=20,
        mean=(0.2860,),
        std=(0.3530,),
        crop_padding=2,
        hflip=True,
        trivial_augment=False,
    ),
    "kmnist": dict(
        model="wavemix_lite_8_10_mnist",
        epochs=20,
        mean=(0.1918,),
        std=(0.3483,),
        crop_padding=2,
        hflip=False,
        trivial_augment=False,
    ),
    **{
        f"emnist_{s}": dict(
            model="wavemix_lite_8_10_mnist",
            epochs=20,
            mean=(0.1736,),
            std=(0.3317,),
            crop_padding=2,
            hflip=False,
            trivial_augment=False,
        )
        for s in _EMNIST_SPLITS
    },
    "cifar10": dict(
        model="wavemix_lite_64_6_cifar10", epochs=100, crop_padding=4, hflip=True, trivial_augment=True, **_CIFAR10
    ),
    "cifar100": dict(
        model="wavemix_lite_256_7_cifar100", epochs=100, crop_padding=4, hflip=True, trivial_augment=True, **_CIFAR100
    ),
    "svhn": dict(
        model="wavemix_lite_64_6_cifar10", epochs=30, crop_padding=2, hflip=False, trivial_augment=False, **_SVHN
    ),
    # image folders: model, epochs, augmentation and normalisation are derived from the data (derive_defaults)
    "imagefolder": dict(
        model=None, epochs=None, crop_padding=None, hflip=None, trivial_augment=None, mean=None, std=None
    ),
}
_DATASET_ALIASES = {
    "fmnist": "fashion_mnist",
    "fashionmnist": "fashion_mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "folder": "imagefolder",
    "image_folder": "imagefolder",
}


def lookup_dataset(name: str, table: dict[str, Any], aliases: dict[str, str], what: str, hint: str = "") -> str:
    """The table key for a user-typed data set name (case, '-' vs '_' and aliases forgiven)."""
    key = name.lower().replace("-", "_")
    key = aliases.get(key, key)
    if key not in table:
        from wavemixer.registry import did_you_mean

        raise ValueError(f"unknown {what} {name!r}{did_you_mean(key, table)}; choose one of {', '.join(table)}{hint}")
    return key


def canonical_dataset(name: str) -> str:
    key = name.lower().replace("-", "_")
    key = _DATASET_ALIASES.get(name.lower(), _DATASET_ALIASES.get(key, key))
    if key == "emnist":
        key = "emnist_balanced"
    if key not in DATASETS:
        from wavemixer.registry import did_you_mean

        raise ValueError(f"unknown data set {name!r}{did_you_mean(key, DATASETS)}; choose one of {', '.join(DATASETS)}")
    return key


def dataset_defaults(name: str) -> dict[str, Any]:
    return dict(DATASETS[canonical_dataset(name)])


def default_data_dir() -> Path:
    return Path(os.environ.get("WAVEMIXER_DATA", Path.home() / ".cache" / "wavemixer" / "data")).expanduser()


# --------------------------------------------------------------------------------------------- preprocessing
class Preprocess:
    """uint8 C×H×W image → normalised float tensor; with ``train=True`` also the random augmentation.

    Picklable (data-loader workers) and shared by training, ``eval`` and ``predict``.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        size: Sequence[int] | None = None,
        *,
        train: bool = False,
        crop_padding: int = 0,
        hflip: bool = False,
        trivial_augment: bool = False,
        rand_augment_magnitude: int | None = None,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.size = tuple(size) if size else None
        self.train = train
        self.crop_padding = crop_padding
        self.hflip = hflip
        self._trivial = None
        if train and trivial_augment:
            from torchvision.transforms import v2

            self._trivial = v2.TrivialAugmentWide()
        self._rand = None
        if train and rand_augment_magnitude is not None:
            from torchvision.transforms import v2

            self._rand = v2.RandAugment(num_ops=2, magnitude=rand_augment_magnitude)

    def __call__(self, img: Tensor) -> Tensor:
        if self.size is not None and tuple(img.shape[-2:]) != self.size:
            from torchvision.transforms.v2 import functional as TF

            img = TF.resize(img, list(self.size), antialias=True)
        if self.train:
            if self.crop_padding:
                p = self.crop_padding
                h, w = img.shape[-2:]
                padded = torch.nn.functional.pad(img, (p, p, p, p))
                i, j = torch.randint(0, 2 * p + 1, (2,)).tolist()
                img = padded[:, i : i + h, j : j + w]
            if self.hflip and torch.rand(()) < 0.5:
                img = img.flip(-1)
            if self._trivial is not None:
                img = self._trivial(img)
            if self._rand is not None:
                img = self._rand(img)
        return (unit_float(img) - self.mean) / self.std


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
        with _open_image(source) as im:
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


def _open_image(source: str | Path | bytes) -> Any:
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


# ------------------------------------------------------------------------------------------------ datasets
class ArrayDataset(Dataset):
    """In-memory uint8 images (N×C×H×W) and labels."""

    def __init__(
        self, images: Tensor, labels: Tensor, transform: Preprocess | None = None, ids: Tensor | None = None
    ) -> None:
        self.images, self.labels, self.transform = images, labels.long(), transform
        self.ids = torch.arange(len(labels)) if ids is None else ids  # index in the source: splits are traceable

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        img = self.images[i]
        return (self.transform(img) if self.transform else img), int(self.labels[i])

    def subset(self, indices: Tensor | Sequence[int]) -> ArrayDataset:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ArrayDataset(self.images[idx], self.labels[idx], self.transform, self.ids[idx])

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()


class FolderDataset(Dataset):
    """Images in a folder tree or a zip (``<split>/<class>/<file>``), decoded on access."""

    def __init__(
        self, root: Path, files: list[str], labels: list[int], mode: str, transform: Preprocess | None = None
    ) -> None:
        self.root, self.files, self.labels, self.mode, self.transform = root, files, labels, mode, transform
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = -1
        self._lock = threading.Lock()
        self._decoded: list[Tensor] | None = None  # decode_all()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"], state["_lock"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.files)

    @property
    def ids(self) -> list[str]:
        return self.files

    def _read(self, name: str) -> bytes | Path:
        if self.root.is_dir():
            return self.root / name
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip, self._zip_pid = zipfile.ZipFile(self.root), os.getpid()
        with self._lock:
            return self._zip.read(name)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        img = self._decoded[i] if self._decoded is not None else load_image(self._read(self.files[i]), self.mode)
        return (self.transform(img) if self.transform else img), self.labels[i]

    def decode_all(self) -> int:
        """Decode every image once and keep it (uint8): epochs then cost the model, not the image decoder.
        The tensors are those ``__getitem__`` would decode, so results do not change. Returns the bytes held."""
        if self._decoded is None:
            self._decoded = [load_image(self._read(f), self.mode) for f in self.files]
        return sum(t.numel() * t.element_size() for t in self._decoded)

    def subset(self, indices: Tensor | Sequence[int]) -> FolderDataset:
        idx = [int(i) for i in indices]
        out = FolderDataset(
            self.root, [self.files[i] for i in idx], [self.labels[i] for i in idx], self.mode, self.transform
        )
        if self._decoded is not None:
            out._decoded = [self._decoded[i] for i in idx]
        return out

    @property
    def targets(self) -> list[int]:
        return list(self.labels)


@dataclass
class DataInfo:
    """What the model and the saved checkpoint need to know about the data."""

    name: str
    num_classes: int
    labels: list[str]
    in_chans: int
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_stats: dict[str, Any] | None = field(default=None, kw_only=True)

    @property
    def color_mode(self) -> str:
        return "L" if self.in_chans == 1 else "RGB"

    def preprocessing(self) -> dict[str, Any]:
        return dict(
            mean=list(self.mean),
            std=list(self.std),
            input_size=[self.in_chans, *self.input_size],
            color_mode=self.color_mode,
            resize="bilinear-antialias",
            **({"input_stats": self.input_stats} if self.input_stats else {}),
        )


@dataclass
class DataBundle:
    train: ArrayDataset | FolderDataset
    val: ArrayDataset | FolderDataset
    test: ArrayDataset | FolderDataset | None
    info: DataInfo
    in_memory: bool = True
    notes: list[str] = field(default_factory=list)
    #: options the data decided (data-derived defaults), applied to the run's configuration
    derived: dict[str, Any] = field(default_factory=dict)
    #: fingerprint of each split's images, stored with the run so eval can check it rebuilt the same split
    split_hashes: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- IDX (MNIST)
_IDX_NAMES = {
    "mnist": (
        "MNIST",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ),
    "fashion_mnist": (
        "FashionMNIST",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ),
    "kmnist": (
        "KMNIST",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ),
}
_LABELS = {
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        return arr.reshape(shape)
    except (OSError, EOFError, struct.error, ValueError) as exc:
        raise ValueError(f"{path} is not a valid IDX file ({exc}); delete it and download again") from exc


def _find_idx(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_dataset(name: str, data_dir: Path, download: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, list]:
    if name.startswith("emnist_"):
        split = name.split("_", 1)[1]
        folder = "EMNIST"
        stems = tuple(
            f"emnist-{split}-{s}"
            for s in (
                "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte",
                "test-images-idx3-ubyte",
                "test-labels-idx1-ubyte",
            )
        )
    else:
        folder, *rest = _IDX_NAMES[name]
        stems = tuple(rest)
    raw = data_dir / folder / "raw"
    paths = [_find_idx(raw, s) for s in stems]
    if any(p is None for p in paths):
        if not download:
            raise FileNotFoundError(
                f"{name}: IDX files {', '.join(stems)} (or .gz) not found in {raw}; pass --download to fetch "
                f"them, or --data-dir pointing at a folder that contains {folder}/raw/"
            )
        import torchvision.datasets as tvd

        cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "kmnist": tvd.KMNIST}.get(name)
        with _download_errors(name, data_dir):
            if cls is not None:
                cls(str(data_dir), train=True, download=True)
            else:
                tvd.EMNIST(str(data_dir), split=name.split("_", 1)[1], train=True, download=True)
        paths = [_find_idx(raw, s) for s in stems]
        if any(p is None for p in paths):
            raise FileNotFoundError(f"{name}: download finished but the IDX files are not in {raw}")
    xtr, ytr, xte, yte = (read_idx(p) for p in paths)  # type: ignore[arg-type]
    if name.startswith("emnist_"):  # EMNIST stores images transposed
        xtr, xte = xtr.transpose(0, 2, 1), xte.transpose(0, 2, 1)
    ytr, yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    if name == "emnist_letters":  # labels 1..26
        ytr, yte = ytr - 1, yte - 1
    n = int(max(ytr.max(), yte.max())) + 1
    labels = _LABELS.get(name) or _emnist_labels(name, n)
    to_t = lambda a: torch.from_numpy(np.array(a, copy=True)).unsqueeze(1)  # noqa: E731
    return to_t(xtr), ytr, to_t(xte), yte, labels


def _emnist_labels(name: str, n: int) -> list[str]:
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    if name == "emnist_letters":
        return list(chars[10:36])
    if name in ("emnist_bymerge", "emnist_balanced"):
        return list(chars[:36] + "abdefghnqrt")[:n]
    return list(chars[:n])


@contextmanager
def _download_errors(name: str, data_dir: Path) -> Iterator[None]:
    """A failed ``--download`` (offline, proxy, server down) as one line that says what to do instead."""
    try:
        yield
    except (OSError, RuntimeError) as exc:  # URLError/socket/HTTP errors; torchvision's MNIST wraps them
        lines = [ln.strip() for ln in str(getattr(exc, "reason", None) or exc).splitlines() if ln.strip()]
        reason = lines[-1] if lines else type(exc).__name__
        raise FileNotFoundError(
            f"--download could not fetch {name} ({reason}); without network access, copy the files into "
            f"{data_dir} (see docs/training.md) or pass --data-dir to where they are"
        ) from exc


def _load_torchvision(name: str, data_dir: Path, download: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, list]:
    import torchvision.datasets as tvd

    try:
        if name in ("cifar10", "cifar100"):
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            with _download_errors(name, data_dir):
                tr, te = (cls(str(data_dir), train=t, download=download) for t in (True, False))
            xtr, xte = (torch.from_numpy(d.data).permute(0, 3, 1, 2).contiguous() for d in (tr, te))
            ytr, yte = torch.tensor(tr.targets), torch.tensor(te.targets)
            labels = list(tr.classes)
        else:  # svhn
            with _download_errors(name, data_dir):
                tr, te = (tvd.SVHN(str(data_dir / "SVHN"), split=s, download=download) for s in ("train", "test"))
            xtr, xte = torch.from_numpy(tr.data), torch.from_numpy(te.data)
            ytr, yte = torch.from_numpy(tr.labels.astype(np.int64)), torch.from_numpy(te.labels.astype(np.int64))
            labels = [str(i) for i in range(10)]
    except RuntimeError as exc:
        raise FileNotFoundError(
            f"{name} not found in {data_dir} ({exc}); pass --download to fetch it, or --data-dir pointing at "
            "a torchvision root, an ImageFolder tree or a zip of one"
        ) from exc
    return xtr, ytr, xte, yte, labels


def _digits() -> tuple[Tensor, Tensor, Tensor, Tensor, list]:
    """The 1,797 8×8 digits shipped in the package (scikit-learn's copy, see data/digits.LICENSE), upsampled to
    16×16; fixed 80/20 train/test split."""
    from importlib import resources

    from torchvision.transforms.v2 import functional as TF

    with resources.as_file(resources.files("wavemixer") / "data" / "digits.npz") as path, np.load(path) as d:
        images, labels = d["images"], d["labels"]
    x = torch.from_numpy(np.round(images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    x = TF.resize(x, [16, 16], antialias=True)
    y = torch.from_numpy(labels.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1234))
    n_test = len(y) // 5
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te], [str(i) for i in range(10)]


# ----------------------------------------------------------------------------------------- image folders
_VAL_NAMES = ("val", "valid", "validation")
_SPLIT_NAMES = ("train", "test", *_VAL_NAMES)
_GRAY_MODES = ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "F")
MANIFEST_SUFFIXES = (".csv", ".json")


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
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
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


_MANIFEST_SPLITS = ("train", "val", "valid", "validation", "test")


def _read_manifest(path: Path) -> list[tuple[str, str, str | None]]:
    """``(file, label, split or None)`` rows of a CSV (columns path,label[,split]) or JSON manifest, checked:
    every row names a file inside the manifest's folder (relative path), a label and a known split, and no file
    is listed twice. A UTF-8 byte-order mark and Windows line ends are read as plain text."""
    import csv
    import json

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"manifest {path} lists {twice[0]!r} twice as a key; each file once")
        return dict(pairs)

    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                cols = {c.strip().lower(): c for c in reader.fieldnames or []}
                if "path" not in cols or "label" not in cols:
                    raise ValueError(f"manifest {path} needs a header with columns path,label[,split]")
                raw = [
                    (f"row {reader.line_num}", r[cols["path"]], r[cols["label"]], r.get(cols.get("split", "")))
                    for r in reader
                ]
        else:
            data = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=unique_keys)
            if isinstance(data, dict):
                raw = [(f"key {k!r}", k, v, None) for k, v in data.items()]
            elif isinstance(data, list) and all(isinstance(r, dict) and "path" in r and "label" in r for r in data):
                raw = [(f"entry {i + 1}", r["path"], r["label"], r.get("split")) for i, r in enumerate(data)]
            else:
                raise ValueError(
                    f"manifest {path}: expected a list of {{path, label[, split]}} objects or a {{path: label}} map"
                )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read manifest {path} ({exc})") from exc
    rows: list[tuple[str, str, str | None]] = []
    first: dict[str, tuple[str, str]] = {}  # normalised path -> (where, label)
    for where, file, label, split in raw:
        file = "" if file is None else str(file).strip()
        label = "" if label is None else str(label).strip()
        split = str(split).strip().lower() if split not in (None, "") else None
        at = f"manifest {path} {where}"
        if not file or not label:
            raise ValueError(f"{at}: empty {'path' if not file else 'label'}; every row needs a path and a label")
        if split is not None and split not in _MANIFEST_SPLITS:
            raise ValueError(f"{at}: split {split!r} is not one of {', '.join(_MANIFEST_SPLITS)} (or empty for train)")
        norm = os.path.normpath(file.replace("\\", "/"))
        absolute = _absolute(file)
        if absolute or norm == ".." or norm.startswith("../"):
            raise ValueError(
                f"{at}: path {file} is {'absolute' if absolute else 'outside the manifest folder'}; "
                f"paths are relative to the manifest's folder ({path.parent}) and stay inside it"
            )
        if norm in first:
            was, was_label = first[norm]
            if was_label != label:
                raise ValueError(f"{at}: {file} is listed with label {was_label!r} ({was}) and {label!r}; give one")
            raise ValueError(f"{at}: {file} is listed twice ({was} too): a duplicate would be trained and tested on")
        first[norm] = (where, label)
        rows.append((file, label, split))
    return rows


def _absolute(name: str) -> bool:
    """An absolute path on any system: ``/x``, ``\\\\server\\x``, ``C:/x`` or ``C:\\x``."""
    return name.startswith(("/", "\\")) or bool(re.match(r"[A-Za-z]:[/\\]", name))


def _zip_names(root: Path) -> tuple[list[str], list[str]]:
    """Files and folders of a zip; an absolute or ``..`` entry is refused (it is no part of a data set tree)."""
    with zipfile.ZipFile(root) as z:
        entries = z.namelist()
    for name in entries:
        if _absolute(name) or ".." in name.replace("\\", "/").split("/"):
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
        return "manifest", _read_manifest(root), root.parent
    if root.is_dir():
        names, folders = _walk_files(root)
    elif root.exists() and zipfile.is_zipfile(root):
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


def list_unreadable(corrupt: list[tuple[str, str]], shown: int = 3) -> str:
    """``file (why); ...`` for the first ``shown`` unreadable files: whole names, never cut mid-path."""
    text = "; ".join(f"{f} ({why})" for f, why in corrupt[:shown])
    return text + (f"; and {len(corrupt) - shown} more" if len(corrupt) > shown else "")


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
            with _open_image(reader._read(file)) as im:
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


def _folder_bundle(root: Path, cfg: Any) -> tuple[dict[str, FolderDataset], FolderScan]:
    scan = scan_folder(root, skip_corrupt=bool(getattr(cfg, "skip_corrupt", False)), input_size=cfg.input_size)
    base = root.parent if scan.layout == "manifest" else root
    out = {s: FolderDataset(base, files, labels, scan.color_mode) for s, (files, labels) in scan.splits.items()}
    return out, scan


# ------------------------------------------------------------------------------------------------- build
TEST_SPLIT_SEED = 20_260_101  # fixed: a carved test split must not move with --seed, or seeds are not comparable
_STATS_SAMPLE = 2000


def _split_val(train: Any, fraction: float, seed: int, what: str = "--val-fraction") -> tuple[Any, Any]:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{what} must be in (0, 1), got {fraction}")
    n = len(train)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * fraction))
    if n_val >= n:
        held = "val" if what == "--val-fraction" else "test"
        raise ValueError(
            f"{what} {fraction:g} holds out {n_val:,} of the {n:,} training images as {held}, leaving none to train "
            f"on; lower {what}"
        )
    return train.subset(perm[n_val:].sort().values), train.subset(perm[:n_val].sort().values)


def _take(ds: Any, n: int | None, seed: int) -> Any:
    if n is None or n >= len(ds):
        return ds
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed + 17))
    return ds.subset(perm[:n].sort().values)


def split_hash(ds: Any) -> str:
    """A short fingerprint of which images a split holds (their file names or indices in the source)."""
    import hashlib

    return hashlib.sha256("\n".join(map(str, ds.ids)).encode()).hexdigest()[:16]


def _raw_image(ds: Any, i: int) -> Tensor:
    if isinstance(ds, ArrayDataset):
        return ds.images[i]
    return load_image(ds._read(ds.files[i]), ds.mode)


def image_statistics(ds: Any, size: tuple[int, int], n: int = _STATS_SAMPLE) -> dict[str, Any]:
    """Per-channel mean/std of up to ``n`` evenly spaced training images, and the spread of per-image
    (mean, std) used by ``predict`` to flag inputs unlike the training data."""
    from torchvision.transforms.v2 import functional as TF

    idx = np.linspace(0, len(ds) - 1, num=min(n, len(ds))).round().astype(int)
    feats, s1, s2, count = [], 0.0, 0.0, 0
    for i in np.unique(idx):
        img = _raw_image(ds, int(i))
        if tuple(img.shape[-2:]) != tuple(size):
            img = TF.resize(img, list(size), antialias=True)
        x = unit_float(img).double().flatten(1)
        s1, s2, count = s1 + x.sum(1), s2 + (x * x).sum(1), count + x.shape[1]
        feats.append(image_features(img))
    mean = s1 / count
    std = (s2 / count - mean * mean).clamp_min(1e-12).sqrt()
    f = torch.stack(feats)
    mu, sigma = f.mean(0), f.std(0).clamp_min(1e-3)
    z = ((f - mu) / sigma).abs().amax(1)
    return dict(
        mean=tuple(round(float(v), 4) for v in mean),
        std=tuple(round(max(float(v), 1e-3), 4) for v in std),
        input_stats=dict(
            features="per-channel mean and std of the [0, 1] image at input size",
            mu=[round(float(v), 5) for v in mu],
            sigma=[round(float(v), 5) for v in sigma],
            z_threshold=round(max(4.0, float(torch.quantile(z, 0.999))), 2),
        ),
    )


def image_features(img: Tensor) -> Tensor:
    """Per-channel mean and std of a C×H×W image on the [0, 1] scale: cheap, and far off for most foreign inputs."""
    x = unit_float(img).double().flatten(1)
    return torch.cat([x.mean(1), x.std(1, correction=0)])


# Defaults derived from the data (image folders): each rule prints "chose X because Y"; every one is a flag.
_MAX_SIDE = 64  # larger images are resized: at full size a CPU run would take hours
_BUDGET_S = 300.0  # the default epoch budget aims at ~5 min of training
_MIN_EPOCHS, _MAX_EPOCHS = 3, 30  # whatever the budget says


def _duration(seconds: float) -> str:
    """``~45 s`` / ``~4 min``: an estimate, said as one."""
    return f"~{seconds:.0f} s estimated" if seconds < 90 else f"~{seconds / 60:.0f} min estimated"


def estimated_seconds_per_image(macs: float) -> float:
    """Training cost per image of the small default models on one CPU thread.

    Fit to the measured throughput of wavemix_lite_32_7_cifar10_tiny on a 2 vCPU Xeon Sapphire Rapids
    (scripts/bench_small_model_throughput.py): 0.8 MMACs -> 1,106 img/s, 3.9 MMACs -> 336 img/s,
    10.8 MMACs -> 161 img/s. A fixed rule, so a command trains the same epochs on every machine.
    """
    return 4e-4 + 6e-10 * macs


def _width_for(n_train: int) -> tuple[int, str]:
    """Model width from the data set's size: fewer weights than images' worth of evidence overfit less and
    train faster; more data supports more capacity within the same minutes-long budget."""
    if n_train < 2_000:
        return 16, f"under 2,000 training images ({n_train:,})"
    if n_train < 100_000:
        return 32, "2,000 to 100,000 training images"
    return 64, f"100,000 or more training images ({n_train:,})"


def derive_defaults(cfg: Any, scan: FolderScan, n_train: int) -> tuple[dict[str, Any], tuple[int, int], list[str]]:
    """Options left unset, chosen from what the scan found; the resized input size; the reasons."""
    from wavemixer.factory import create_model
    from wavemixer.flops import count_macs

    notes: list[str] = []
    changes: dict[str, Any] = {}
    h, w = scan.size
    gray = scan.color_mode == "L"
    if not cfg.input_size and max(h, w) > _MAX_SIDE:
        f = _MAX_SIDE / max(h, w)
        h, w = max(8, round(h * f / 2) * 2), max(8, round(w * f / 2) * 2)
        notes.append(
            f"chose input size {h}x{w} because {scan.size[0]}x{scan.size[1]} images would make a CPU run take "
            f"hours (longest side capped at {_MAX_SIDE}; --input-size N to change)"
        )
    n_classes, in_chans = len(scan.classes), 1 if gray else 3

    def macs_of(name: str, model_args: dict[str, Any]) -> float | None:
        try:
            model = create_model(name, **{**model_args, "num_classes": n_classes, "in_chans": in_chans})
            return float(count_macs(model, (in_chans, h, w)))
        except Exception:  # an invalid model is reported when it is built
            return None

    if cfg.model is None:
        changes["model"] = "wavemix_lite_32_7_cifar10_tiny"
        stride = 2 if min(h, w) >= 24 else 1
        model_args = dict(cfg.model_args)
        if "stride" not in model_args:
            model_args["stride"] = stride
        width, why_width = _width_for(n_train)
        if "final_dim" not in model_args and width != 32:
            model_args["final_dim"] = width
        if model_args != cfg.model_args:
            changes["model_args"] = model_args
        final_dim = model_args.get("final_dim", 32)
        size = {16: " (10k params)", 32: " (37k params)", 64: " (144k params)"}.get(final_dim, "")
        why = why_width if "final_dim" not in cfg.model_args else "as given"
        if "stride" in cfg.model_args:
            why_stride = "as given"
        elif stride == 2:
            fine = macs_of(changes["model"], {**model_args, "stride": 1})
            coarse = macs_of(changes["model"], model_args)
            ratio = f": {fine / coarse:.1f}x fewer MACs per image than stride 1 at {h}x{w}" if fine and coarse else ""
            why_stride = f"because the images are {h}x{w}, at least 24 px{ratio}"
        else:
            why_stride = f"because the images are {h}x{w}, under 24 px (stride 2 would halve them to under 12 px)"
        notes.append(
            f"chose model wavemix_lite_32_7_cifar10_tiny with width {final_dim}{size}, {why}, and stem stride "
            f"{model_args['stride']} {why_stride}; --model NAME / --model-arg final_dim=N / --model-arg stride=N "
            "to change"
        )
    if cfg.epochs is None:
        model_name = changes.get("model", cfg.model)
        macs = macs_of(model_name, changes.get("model_args", cfg.model_args)) or 1e6
        per_image = estimated_seconds_per_image(macs)
        fits = _BUDGET_S / (per_image * max(n_train, 1))  # epochs the budget holds
        epochs = int(min(_MAX_EPOCHS, max(_MIN_EPOCHS, fits)))
        changes["epochs"] = epochs
        rate = f"~{1 / per_image:,.0f} img/s for {macs / 1e6:.1f} MMACs/image on one CPU thread, by a fixed rule"
        took = _duration(epochs * n_train * per_image)
        budget = f"~{_BUDGET_S / 60:.0f} min"
        if fits >= _MAX_EPOCHS:
            why = f", the most the default allows: the {budget} budget would hold ~{fits:,.0f}; these take {took}"
        elif fits < _MIN_EPOCHS:
            why = f", the fewest the default allows, though the {budget} budget holds ~{fits:.1f}; these take {took}"
        else:
            why = f" because {budget} of training is the default budget; these take {took}"
        notes.append(f"chose {epochs} epochs{why} ({rate}; --epochs N to change)")
    if cfg.crop_padding is None:
        changes["crop_padding"] = max(1, round(min(h, w) / 14))
        pad = changes["crop_padding"]
        notes.append(f"chose random-crop padding {pad} because it is ~1/14 of the {min(h, w)} px side")
    if cfg.hflip is None:
        changes["hflip"] = not gray
        notes.append(
            "chose no horizontal flips because grayscale images are usually glyphs (digits, letters, symbols) "
            "whose mirror image is another or no symbol (--hflip to flip)"
            if gray
            else "chose horizontal flips because colour images are usually photos of scenes or objects, "
            "which mirror into plausible images (--no-hflip to stop)"
        )
    if cfg.trivial_augment is None:
        changes["trivial_augment"] = False
        notes.append(
            "chose no TrivialAugment because it pays off over long schedules (~100 epochs), not in a "
            "minutes-long run (--trivial-augment to use it)"
        )
    return changes, (h, w), notes


DECODE_ONCE_MAX_BYTES = 2 * 2**30
"""``--decode-once`` by default: image folders whose decoded images take at most this much memory."""


def _decode_once(cfg: Any, scan: FolderScan, splits: list[FolderDataset], notes: list[str]) -> bool:
    """Decode the splits' images into memory once (``--decode-once``; by default when they fit in 2 GiB).

    Cheap models otherwise spend most of an epoch decoding JPEGs, which would time the decoder, not the model.
    Returns whether the data is now in memory."""
    chans = 3 if scan.color_mode == "RGB" else 1
    images = sum(len(d) for d in splits)
    per_image = sum(n * h * w for (h, w), n in scan.sizes.items()) / max(1, sum(scan.sizes.values())) * chans
    estimate = per_image * images
    wanted = getattr(cfg, "decode_once", None)
    limit = DECODE_ONCE_MAX_BYTES / 2**30
    if wanted is False or (wanted is None and estimate > DECODE_ONCE_MAX_BYTES):
        if wanted is None:
            notes.append(
                f"chose to decode images at every access because decoded they would take {estimate / 2**30:.1f} GiB, "
                f"more than {limit:.0f} GiB (--decode-once to hold them in memory anyway)"
            )
        return False
    held = sum(d.decode_all() for d in splits)
    why = "--decode-once asked for it" if wanted else f"they fit in {limit:.0f} GiB (--no-decode-once to stop)"
    notes.append(f"chose to decode the {images:,} images once into memory ({held / 2**20:,.0f} MB) because {why}")
    return True


def build_datasets(cfg: Any) -> DataBundle:
    """Train/val/test sets for ``cfg`` (a :class:`~wavemixer.train.config.TrainConfig` with defaults resolved).

    The val split is held out from the training split with ``cfg.seed`` unless the data set has one; image
    folders without a test split get one carved with a fixed seed (``cfg.test_fraction``).
    """
    name = canonical_dataset(cfg.dataset)
    defaults = DATASETS[name]
    data_dir = Path(cfg.data_dir).expanduser() if cfg.data_dir else default_data_dir()
    in_memory = True
    folder_root = None
    notes: list[str] = []
    if name == "imagefolder" or (
        name in ("cifar10", "cifar100", "svhn")
        and cfg.data_dir
        and (data_dir.suffix.lower() in (".zip", *MANIFEST_SUFFIXES) or (data_dir / "train").is_dir())
    ):
        if name == "imagefolder" and not cfg.data_dir:
            raise ValueError(
                "--dataset imagefolder needs --data-dir: a folder of <class>/<image> or train/<class>/<image>, "
                "a .zip of one, or a .csv/.json manifest of path,label"
            )
        folder_root = data_dir
    scan = None
    if folder_root is not None:
        splits, scan = _folder_bundle(folder_root, cfg)
        notes += scan.notes
        labels, in_chans, size = scan.classes, 1 if scan.color_mode == "L" else 3, scan.size
        train, val, test = splits["train"], splits.get("val"), splits.get("test")
        in_memory = False
        test_fraction = getattr(cfg, "test_fraction", 0.1)
        if test is None and test_fraction:
            train, test = _split_val(train, test_fraction, TEST_SPLIT_SEED, "--test-fraction")
            notes.append(
                f"no test split in the data: held out {len(test):,} images ({test_fraction:g}, fixed seed, the "
                "same for every --seed) as test"
            )
    else:
        if name == "digits":
            xtr, ytr, xte, yte, labels = _digits()
        elif name in ("cifar10", "cifar100", "svhn"):
            xtr, ytr, xte, yte, labels = _load_torchvision(name, data_dir, cfg.download)
        else:
            xtr, ytr, xte, yte, labels = _load_idx_dataset(name, data_dir, cfg.download)
        train, val, test = ArrayDataset(xtr, ytr), None, ArrayDataset(xte, yte)
        in_chans = xtr.shape[1]
        size = (cfg.input_size, cfg.input_size) if cfg.input_size else tuple(xtr.shape[-2:])
    if val is None:
        train, val = _split_val(train, cfg.val_fraction, cfg.seed)
    if cfg.subset is not None:
        if cfg.subset < 10:
            raise ValueError(f"--subset must be at least 10, got {cfg.subset}")
        train = _take(train, cfg.subset, cfg.seed)
        val = _take(val, max(cfg.subset // 4, 10), cfg.seed)
        test = _take(test, max(cfg.subset // 4, 10), cfg.seed) if test is not None else None
    if scan is not None:
        in_memory = _decode_once(cfg, scan, [d for d in (train, val, test) if d is not None], notes)
    derived: dict[str, Any] = {}
    if name == "imagefolder" and scan is not None:
        derived, size, rule_notes = derive_defaults(cfg, scan, len(train))
        notes += rule_notes
    stats = image_statistics(train, (int(size[0]), int(size[1])))
    if defaults.get("mean") is None:  # normalisation from the data's own statistics, stored with the run
        mean, std = stats["mean"], stats["std"]
        notes.append(f"chose normalisation mean {list(mean)} std {list(std)} because they are this training data's own")
    else:
        mean = tuple(defaults["mean"]) if len(defaults["mean"]) == in_chans else tuple(defaults["mean"][:1]) * in_chans
        std = tuple(defaults["std"]) if len(defaults["std"]) == in_chans else tuple(defaults["std"][:1]) * in_chans
    info = DataInfo(name, len(labels), list(labels), int(in_chans), (int(size[0]), int(size[1])), mean, std)
    info.input_stats = stats["input_stats"]
    aug = {k: derived.get(k, getattr(cfg, k)) for k in ("crop_padding", "hflip", "trivial_augment")}
    train.transform = Preprocess(
        mean,
        std,
        info.input_size,
        train=True,
        crop_padding=aug["crop_padding"] or 0,
        hflip=bool(aug["hflip"]),
        trivial_augment=bool(aug["trivial_augment"]),
        rand_augment_magnitude=cfg.rand_augment_magnitude if getattr(cfg, "rand_augment", False) else None,
    )
    eval_tf = Preprocess(mean, std, info.input_size)
    val.transform = eval_tf
    if test is not None:
        test.transform = eval_tf
    parts = {k: d for k, d in (("train", train), ("val", val), ("test", test)) if d is not None}
    if scan is not None:
        notes.insert(0, scan_summary(scan, {k: len(d) for k, d in parts.items()}))
    hashes = {k: split_hash(d) for k, d in parts.items()}
    return DataBundle(train, val, test, info, in_memory, notes, derived, hashes)
