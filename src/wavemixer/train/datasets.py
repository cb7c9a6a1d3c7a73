"""Data sets by name, ImageFolder trees and zips, the embedded digits set, and the image preprocessing.

Every data set yields ``(float image tensor C×H×W, int label)``. Small data sets are held in memory as
uint8 tensors; image folders are decoded lazily. The same :class:`Preprocess` turns a uint8 image into the
model input at training, evaluation and prediction time, so that ``predict`` sees exactly what ``eval`` saw.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import threading
import zipfile
from collections.abc import Sequence
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
    "Preprocess",
    "build_datasets",
    "dataset_defaults",
    "default_data_dir",
    "load_image",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

_MNIST = dict(mean=(0.1307,), std=(0.3081,))
_CIFAR10 = dict(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
_CIFAR100 = dict(mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))
_SVHN = dict(mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970))
_IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
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
    "imagefolder": dict(
        model="wavemix_lite_64_6_cifar10", epochs=50, crop_padding=0, hflip=True, trivial_augment=True, **_IMAGENET
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
        raise ValueError(f"unknown {what} {name!r}; choose one of {', '.join(table)}{hint}")
    return key


def canonical_dataset(name: str) -> str:
    key = name.lower().replace("-", "_")
    key = _DATASET_ALIASES.get(name.lower(), _DATASET_ALIASES.get(key, key))
    if key == "emnist":
        key = "emnist_balanced"
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
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
        return (img.float().div_(255) - self.mean) / self.std


def load_image(source: str | Path | bytes, mode: str) -> Tensor:
    """Decode an image file (path or bytes) as a uint8 C×H×W tensor in ``mode`` ('L' or 'RGB')."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            im = im.convert(mode)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        where = "image bytes" if isinstance(source, bytes) else str(source)
        raise ValueError(f"cannot read {where} as an image ({exc})") from exc
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


# ------------------------------------------------------------------------------------------------ datasets
class ArrayDataset(Dataset):
    """In-memory uint8 images (N×C×H×W) and labels."""

    def __init__(self, images: Tensor, labels: Tensor, transform: Preprocess | None = None) -> None:
        self.images, self.labels, self.transform = images, labels.long(), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        img = self.images[i]
        return (self.transform(img) if self.transform else img), int(self.labels[i])

    def subset(self, indices: Tensor | Sequence[int]) -> ArrayDataset:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ArrayDataset(self.images[idx], self.labels[idx], self.transform)

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

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"], state["_lock"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, name: str) -> bytes | Path:
        if self.root.is_dir():
            return self.root / name
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip, self._zip_pid = zipfile.ZipFile(self.root), os.getpid()
        with self._lock:
            return self._zip.read(name)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        img = load_image(self._read(self.files[i]), self.mode)
        return (self.transform(img) if self.transform else img), self.labels[i]

    def subset(self, indices: Tensor | Sequence[int]) -> FolderDataset:
        idx = [int(i) for i in indices]
        return FolderDataset(
            self.root, [self.files[i] for i in idx], [self.labels[i] for i in idx], self.mode, self.transform
        )

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
        )


@dataclass
class DataBundle:
    train: ArrayDataset | FolderDataset
    val: ArrayDataset | FolderDataset
    test: ArrayDataset | FolderDataset | None
    info: DataInfo
    in_memory: bool = True
    notes: list[str] = field(default_factory=list)


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


def _load_torchvision(name: str, data_dir: Path, download: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, list]:
    import torchvision.datasets as tvd

    try:
        if name in ("cifar10", "cifar100"):
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            tr, te = (cls(str(data_dir), train=t, download=download) for t in (True, False))
            xtr, xte = (torch.from_numpy(d.data).permute(0, 3, 1, 2).contiguous() for d in (tr, te))
            ytr, yte = torch.tensor(tr.targets), torch.tensor(te.targets)
            labels = list(tr.classes)
        else:  # svhn
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
    """scikit-learn's bundled 8×8 digits (1,797 images), upsampled to 16×16; fixed 80/20 train/test split."""
    from sklearn.datasets import load_digits
    from torchvision.transforms.v2 import functional as TF

    d = load_digits()
    x = torch.from_numpy(np.round(d.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    x = TF.resize(x, [16, 16], antialias=True)
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1234))
    n_test = len(y) // 5
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te], [str(i) for i in range(10)]


# ----------------------------------------------------------------------------------------- image folders
_VAL_NAMES = ("val", "valid", "validation")


def _scan_folder(root: Path) -> dict[str, dict[str, list[str]]]:
    """``{split: {class: [relative file names]}}`` for a folder tree or zip with train/ [val/] [test/]."""
    if root.is_dir():
        names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    elif zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
    elif root.exists():
        raise ValueError(f"{root} is neither a folder nor a zip file; --data-dir must be an ImageFolder tree or zip")
    else:
        raise FileNotFoundError(f"data folder {root} does not exist; check --data-dir")
    tree: dict[str, dict[str, list[str]]] = {}
    for name in names:
        parts = name.split("/")
        if len(parts) < 3 or not name.lower().endswith(IMAGE_EXTENSIONS) or any(p.startswith(".") for p in parts):
            continue
        split, cls = parts[-3].lower(), parts[-2]
        if split in ("train", "test", *_VAL_NAMES):
            tree.setdefault("val" if split in _VAL_NAMES else split, {}).setdefault(cls, []).append(name)
    if "train" not in tree:
        raise ValueError(
            f"no images found in {root}/train/<class>/ (extensions {', '.join(IMAGE_EXTENSIONS)}); an image "
            "folder data set needs train/<class>/<image> and optionally val/ and test/ with the same classes"
        )
    return tree


def _folder_bundle(root: Path, input_size: int | None) -> tuple[dict[str, FolderDataset], list[str], int, tuple]:
    tree = _scan_folder(root)
    classes = sorted(tree["train"])
    if len(classes) < 2:
        raise ValueError(f"{root}/train has {len(classes)} class folder(s); classification needs at least 2")
    index = {c: i for i, c in enumerate(classes)}
    out: dict[str, FolderDataset] = {}
    for split, by_class in tree.items():
        extra = sorted(set(by_class) - set(classes))
        if extra:
            raise ValueError(f"{root}/{split} has classes not in train/: {extra}")
        files, labels = [], []
        for cls in classes:
            for f in sorted(by_class.get(cls, [])):
                files.append(f)
                labels.append(index[cls])
        out[split] = FolderDataset(root, files, labels, "RGB")
    probe = load_image(out["train"]._read(out["train"].files[0]), "RGB")
    from PIL import Image

    first = out["train"]._read(out["train"].files[0])
    with Image.open(io.BytesIO(first) if isinstance(first, bytes) else first) as im:
        mode = "L" if im.mode in ("L", "1", "I;16", "I") else "RGB"
    for ds in out.values():
        ds.mode = mode
    size = (input_size, input_size) if input_size else tuple(probe.shape[-2:])
    return out, classes, 1 if mode == "L" else 3, size


# ------------------------------------------------------------------------------------------------- build
def _split_val(train: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1), got {fraction}")
    n = len(train)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * fraction))
    return train.subset(perm[n_val:].sort().values), train.subset(perm[:n_val].sort().values)


def _take(ds: Any, n: int | None, seed: int) -> Any:
    if n is None or n >= len(ds):
        return ds
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed + 17))
    return ds.subset(perm[:n].sort().values)


def build_datasets(cfg: Any) -> DataBundle:
    """Train/val/test sets for ``cfg`` (a :class:`~wavemixer.train.config.TrainConfig` with defaults resolved).

    The val split is held out from the training split with ``cfg.seed`` unless the data set has one.
    """
    name = canonical_dataset(cfg.dataset)
    defaults = DATASETS[name]
    data_dir = Path(cfg.data_dir).expanduser() if cfg.data_dir else default_data_dir()
    in_memory = True
    folder_root = None
    if name == "imagefolder" or (
        name in ("cifar10", "cifar100", "svhn")
        and cfg.data_dir
        and (data_dir.suffix == ".zip" or (data_dir / "train").is_dir())
    ):
        if name == "imagefolder" and not cfg.data_dir:
            raise ValueError("--dataset imagefolder needs --data-dir: a folder or .zip with train/<class>/ images")
        folder_root = data_dir
    if folder_root is not None:
        splits, labels, in_chans, size = _folder_bundle(folder_root, cfg.input_size)
        train, val, test = splits["train"], splits.get("val"), splits.get("test")
        in_memory = False
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
    mean = tuple(defaults["mean"]) if len(defaults["mean"]) == in_chans else tuple(defaults["mean"][:1]) * in_chans
    std = tuple(defaults["std"]) if len(defaults["std"]) == in_chans else tuple(defaults["std"][:1]) * in_chans
    info = DataInfo(name, len(labels), list(labels), int(in_chans), (int(size[0]), int(size[1])), mean, std)
    train.transform = Preprocess(
        mean,
        std,
        info.input_size,
        train=True,
        crop_padding=cfg.crop_padding or 0,
        hflip=bool(cfg.hflip),
        trivial_augment=bool(cfg.trivial_augment),
        rand_augment_magnitude=cfg.rand_augment_magnitude if getattr(cfg, "rand_augment", False) else None,
    )
    eval_tf = Preprocess(mean, std, info.input_size)
    val.transform = eval_tf
    if test is not None:
        test.transform = eval_tf
    return DataBundle(train, val, test, info, in_memory)
