"""Built-in classification data sets: the digits embedded in the package and torchvision's sets.

Each loader returns ``(train images, train labels, test images, test labels, class names)`` as uint8
N×C×H×W tensors and int64 labels, read through torchvision's own classes (``.data``/``.targets``).

MNIST-family files that sit gzip-compressed in ``<root>/<Name>/raw/`` (offline copies whose archives differ
from the ones torchvision pins) are decompressed once into a cache under :func:`default_data_dir`, never
beside the originals, which may be read-only.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["BUILTIN_LOADERS", "default_data_dir", "load_builtin", "load_digits", "mnist_family_root"]

Arrays = tuple[Tensor, Tensor, Tensor, Tensor, list[str]]

EMNIST_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")
#: data set -> torchvision class name (and its folder under the root)
_MNIST_FAMILY = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}
_IDX_PARTS = ("images-idx3-ubyte", "labels-idx1-ubyte")


def default_data_dir() -> Path:
    """Where data sets are looked for and downloaded: ``$WAVEMIXER_DATA``, else ``~/.cache/wavemixer/data``."""
    return Path(os.environ.get("WAVEMIXER_DATA", Path.home() / ".cache" / "wavemixer" / "data")).expanduser()


def load_digits() -> Arrays:
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


@contextmanager
def _download_errors(name: str, data_dir: Path, download: bool = True) -> Iterator[None]:
    """A failed ``--download`` (offline, proxy, server down) as one line that says what to do instead; without
    ``--download`` the caller reports the missing files."""
    try:
        yield
    except (OSError, RuntimeError) as exc:  # URLError/socket/HTTP errors; torchvision's MNIST wraps them
        if not download:
            raise
        lines = [ln.strip() for ln in str(getattr(exc, "reason", None) or exc).splitlines() if ln.strip()]
        reason = lines[-1] if lines else type(exc).__name__
        raise FileNotFoundError(
            f"--download could not fetch {name} ({reason}); without network access, copy the files into "
            f"{data_dir} (see docs/training.md) or pass --data-dir to where they are"
        ) from exc


def _idx_stems(name: str) -> tuple[str, list[str]]:
    """The torchvision folder and the four IDX file names of an MNIST-family set."""
    if name.startswith("emnist_"):
        split = name.split("_", 1)[1]
        return "EMNIST", [f"emnist-{split}-{kind}-{part}" for kind in ("train", "test") for part in _IDX_PARTS]
    return _MNIST_FAMILY[name], [f"{kind}-{part}" for kind in ("train", "t10k") for part in _IDX_PARTS]


def mnist_family_root(name: str, data_dir: Path) -> Path | None:
    """A torchvision root holding ``name``'s four IDX files uncompressed: ``data_dir`` itself, or a cache they
    were decompressed into from ``<data_dir>/<Name>/raw/*.gz``; ``None`` when neither form is there."""
    folder, stems = _idx_stems(name)
    raw = data_dir / folder / "raw"
    if all((raw / s).is_file() for s in stems):
        return data_dir
    packed = [raw / f"{s}.gz" for s in stems]
    if not all(p.is_file() for p in packed):
        return None
    key = hashlib.sha256("\n".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in packed).encode())
    cache = default_data_dir() / "decompressed" / key.hexdigest()[:16]
    target = cache / folder / "raw"
    for src, stem in zip(packed, stems):
        if not (target / stem).is_file():
            target.mkdir(parents=True, exist_ok=True)
            tmp = target / f".{stem}.{os.getpid()}.tmp"
            try:
                with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
            except BaseException as exc:
                tmp.unlink(missing_ok=True)
                if isinstance(exc, (gzip.BadGzipFile, EOFError, zlib.error)):  # the OS's faults keep their reason
                    raise ValueError(
                        f"{src} is not a valid gzip-compressed IDX file ({exc}); delete it and download again"
                    ) from exc
                raise
            tmp.replace(target / stem)
    return cache


def _emnist_labels(name: str, n: int) -> list[str]:
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    if name == "emnist_letters":
        return list(chars[10:36])
    if name in ("emnist_bymerge", "emnist_balanced"):
        return list(chars[:36] + "abdefghnqrt")[:n]
    return list(chars[:n])


def _load_mnist_family(name: str, data_dir: Path, download: bool) -> Arrays:
    import torchvision.datasets as tvd

    folder, stems = _idx_stems(name)
    root = mnist_family_root(name, data_dir)
    if root is None:
        if not download:
            raise FileNotFoundError(
                f"{name}: IDX files {', '.join(stems)} (or .gz) not found in {data_dir / folder / 'raw'}; pass "
                f"--download to fetch them, or --data-dir pointing at a folder that contains {folder}/raw/"
            )
        root = data_dir
    emnist = name.startswith("emnist_")

    def split(train: bool) -> object:
        if emnist:
            return tvd.EMNIST(str(root), split=name.split("_", 1)[1], train=train, download=download)
        return getattr(tvd, folder)(str(root), train=train, download=download)

    try:
        with _download_errors(name, data_dir):
            tr, te = split(True), split(False)
    except (TypeError, ValueError, RuntimeError) as exc:  # torchvision's IDX reader on a broken file
        raise ValueError(f"{name}: the IDX files in {root / folder / 'raw'} are not valid ({exc}); delete them and "
                         "download again") from exc  # fmt: skip
    xtr, xte = tr.data, te.data  # type: ignore[attr-defined]
    if emnist:  # EMNIST stores images transposed
        xtr, xte = xtr.transpose(1, 2), xte.transpose(1, 2)
    ytr, yte = tr.targets.long(), te.targets.long()  # type: ignore[attr-defined]
    if name == "emnist_letters":  # labels 1..26
        ytr, yte = ytr - 1, yte - 1
    n = int(max(ytr.max(), yte.max())) + 1
    labels = list(tr.classes) if name in ("fashion_mnist", "kmnist") else _emnist_labels(name, n)  # type: ignore[attr-defined]
    if name == "mnist":
        labels = [str(i) for i in range(10)]
    return xtr.contiguous().unsqueeze(1), ytr, xte.contiguous().unsqueeze(1), yte, labels


def _load_cifar_svhn(name: str, data_dir: Path, download: bool) -> Arrays:
    import torchvision.datasets as tvd

    try:
        if name in ("cifar10", "cifar100"):
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            with _download_errors(name, data_dir, download):
                tr, te = (cls(str(data_dir), train=t, download=download) for t in (True, False))
            xtr, xte = (torch.from_numpy(d.data).permute(0, 3, 1, 2).contiguous() for d in (tr, te))
            ytr, yte = torch.tensor(tr.targets), torch.tensor(te.targets)
            labels = list(tr.classes)
        else:  # svhn
            with _download_errors(name, data_dir, download):
                tr, te = (tvd.SVHN(str(data_dir / "SVHN"), split=s, download=download) for s in ("train", "test"))
            xtr, xte = torch.from_numpy(tr.data), torch.from_numpy(te.data)
            ytr, yte = torch.from_numpy(tr.labels.astype(np.int64)), torch.from_numpy(te.labels.astype(np.int64))
            labels = [str(i) for i in range(10)]
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted. You can use download=True ..."
        raise FileNotFoundError(
            f"{name} not found (or incomplete) in {data_dir}; pass --download to fetch it, or --data-dir pointing at "
            "a torchvision root, an ImageFolder tree or a zip of one"
        ) from exc
    return xtr, ytr, xte, yte, labels


BUILTIN_LOADERS = {
    "digits": lambda data_dir, download: load_digits(),
    **{n: (lambda data_dir, download, n=n: _load_mnist_family(n, data_dir, download)) for n in _MNIST_FAMILY},
    **{f"emnist_{s}": (lambda data_dir, download, s=s: _load_mnist_family(f"emnist_{s}", data_dir, download))
       for s in EMNIST_SPLITS},
    **{n: (lambda data_dir, download, n=n: _load_cifar_svhn(n, data_dir, download))
       for n in ("cifar10", "cifar100", "svhn")},
}  # fmt: skip
"""data set name -> ``loader(data_dir, download)``"""


def load_builtin(name: str, data_dir: Path, download: bool) -> Arrays:
    """Train and test arrays of a built-in data set (a key of :data:`BUILTIN_LOADERS`)."""
    if name not in BUILTIN_LOADERS:  # a data set named in a task's table without its loader here
        raise ValueError(f"--dataset {name}: no built-in loader for it; expected one of {sorted(BUILTIN_LOADERS)}")
    return BUILTIN_LOADERS[name](data_dir, download)
