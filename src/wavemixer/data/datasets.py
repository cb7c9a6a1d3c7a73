"""Classification data sets: in-memory uint8 arrays and image files in a folder or zip, decoded lazily.

Both yield ``(image, label)`` after their ``transform`` and support the split operations of
:mod:`wavemixer.data.splits`: ``len``, ``subset(indices)``, ``ids`` (what a split fingerprint hashes:
indices in the source, or file names) and ``targets`` (the labels, for class-balanced subsets).
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .images import load_image

__all__ = ["ArrayDataset", "FolderDataset", "raw_image"]

Transform = Callable[[Tensor], Tensor]


class ArrayDataset(Dataset):
    """In-memory uint8 images (N×C×H×W) and labels."""

    def __init__(
        self, images: Tensor, labels: Tensor, transform: Transform | None = None, ids: Tensor | None = None
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
        self, root: Path, files: list[str], labels: list[int], mode: str, transform: Transform | None = None
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

    def read(self, name: str) -> bytes | Path:
        if self.root.is_dir():
            return self.root / name
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip, self._zip_pid = zipfile.ZipFile(self.root), os.getpid()
        with self._lock:
            return self._zip.read(name)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        img = self._decoded[i] if self._decoded is not None else load_image(self.read(self.files[i]), self.mode)
        return (self.transform(img) if self.transform else img), self.labels[i]

    def decode_all(self) -> int:
        """Decode every image once and keep it (uint8): epochs then cost the model, not the image decoder.
        The tensors are those ``__getitem__`` would decode, so results do not change. Returns the bytes held."""
        if self._decoded is None:
            self._decoded = [load_image(self.read(f), self.mode) for f in self.files]
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


def raw_image(ds: Any, i: int) -> Tensor:
    """The i-th image as stored (uint8, before any transform)."""
    if isinstance(ds, ArrayDataset):
        return ds.images[i]
    return load_image(ds.read(ds.files[i]), ds.mode)
