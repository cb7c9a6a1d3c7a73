"""Super-resolution sources and the low-resolution protocol: HR images, and LR made from them on the fly.

* **HR**: RGB in [0, 1]. Training takes a random ``--input-size`` HR crop (a multiple of the scale) with
  random horizontal/vertical flips; evaluation takes each whole image, cropped at the bottom/right to a
  multiple of the scale ("mod crop").
* **LR** is made from that HR: bicubic downscaling by the scale with antialiasing (Keys kernel a = -0.5
  widened by the scale, as MATLAB ``imresize`` and PIL do; ``torch.nn.functional.interpolate(...,
  mode="bicubic", antialias=True)``), clamped to [0, 1] and rounded to 8-bit levels like a saved LR PNG.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .builtin import default_data_dir
from .images import IMAGE_EXTENSIONS, image_files_under, load_image, open_image
from .masks import CAMVID_NPZ
from .transforms import HRCrop

__all__ = [
    "DEFAULT_CROP",
    "HRArrayDataset",
    "HRFileDataset",
    "bicubic_downscale",
    "bicubic_upscale",
    "load_hr_splits",
    "mod_crop",
    "quantize",
    "rgb_to_y",
    "same_size",
]

DEFAULT_CROP = 64


def quantize(x: Tensor) -> Tensor:
    """Round to 8-bit levels in [0, 1], as saving an image would: the protocol's LR and SR images are 8-bit."""
    return x.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def bicubic_downscale(hr: Tensor, scale: int) -> Tensor:
    """HR (…×C×H×W in [0, 1], H and W multiples of ``scale``) → 8-bit-rounded LR by antialiased bicubic."""
    batched = hr.ndim == 4
    x = hr if batched else hr[None]
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}; mod-crop it first")
    lr = F.interpolate(x.float(), size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)
    lr = quantize(lr)
    return lr if batched else lr[0]


def bicubic_upscale(lr: Tensor, scale: int) -> Tensor:
    """The bicubic baseline: LR (B×C×h×w) → (B×C×scale·h×scale·w), clamped to [0, 1]."""
    return F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


def rgb_to_y(x: Tensor) -> Tensor:
    """ITU-R BT.601 luma of RGB in [0, 1] (B×3×H×W) → B×1×H×W in [16/255, 235/255], as MATLAB rgb2ycbcr."""
    if x.shape[1] == 1:
        return x
    w = x.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True) / 255.0 + 16.0 / 255.0


def mod_crop(img: Tensor, scale: int) -> Tensor:
    """Crop H and W down to multiples of ``scale`` (the protocol's ground truth), from the bottom right."""
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


class _HRBase(Dataset, ABC):
    """Yields ``(LR, HR)`` float pairs made from HR images by the protocol above."""

    scale: int
    crop: int | None
    train: bool
    flips: bool

    def configure(self, scale: int, *, train: bool, crop: int | None = None, flips: bool = False) -> None:
        if train and (crop is None or crop % scale or crop < scale):
            raise ValueError(f"the HR training crop (--input-size {crop}) must be a positive multiple of the scale "
                             f"{scale}")  # fmt: skip
        self.scale, self.train, self.crop, self.flips = scale, train, crop, flips

    @abstractmethod
    def hr(self, i: int) -> Tensor:
        """The i-th HR image, float in [0, 1], (3, H, W)."""

    @abstractmethod
    def sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` of every HR image, without decoding them (checks before training, not in a worker)."""

    def check_crop(self, crop: int) -> None:
        """Refuse a training crop larger than the smallest image, in one line, before any worker starts."""
        for i, (h, w) in enumerate(self.sizes()):
            if h < crop or w < crop:
                raise ValueError(f"HR image {self.name(i)} is {h}x{w}, smaller than the training crop {crop}; "
                                 "lower --input-size")  # fmt: skip

    def name(self, i: int) -> str:
        return str(i)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        img = self.hr(i)
        if self.train:
            c = self.crop or DEFAULT_CROP
            h, w = img.shape[-2:]
            if h < c or w < c:
                raise ValueError(f"HR image {self.name(i)} is {h}x{w}, smaller than the training crop {c}; lower "
                                 "--input-size")  # fmt: skip
            img = HRCrop(c, flips=self.flips)(img)
        else:
            img = mod_crop(img, self.scale)
        hr = img.float().div(255.0)
        return bicubic_downscale(hr, self.scale), hr


class HRArrayDataset(_HRBase):
    """In-memory uint8 HR images (N×C×H×W)."""

    def __init__(self, images: Tensor, names: Sequence[str] | None = None) -> None:
        self.images, self.names = images, list(names) if names is not None else []
        self.configure(2, train=False)

    def __len__(self) -> int:
        return len(self.images)

    def hr(self, i: int) -> Tensor:
        return self.images[i]

    def sizes(self) -> list[tuple[int, int]]:
        return [tuple(self.images.shape[-2:])] * len(self)  # type: ignore[list-item]

    def name(self, i: int) -> str:
        return self.names[i] if i < len(self.names) else str(i)

    @property
    def ids(self) -> list[str]:
        return [self.name(i) for i in range(len(self))]

    def subset(self, indices: Tensor | Sequence[int]) -> HRArrayDataset:
        idx = [int(i) for i in indices]
        return HRArrayDataset(self.images[idx], [self.name(i) for i in idx])


class HRFileDataset(_HRBase):
    """HR image files decoded on access (RGB)."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = [Path(f) for f in files]
        self.configure(2, train=False)

    def __len__(self) -> int:
        return len(self.files)

    def hr(self, i: int) -> Tensor:
        return load_image(self.files[i], "RGB", full_range=False)

    def sizes(self) -> list[tuple[int, int]]:
        out = []
        for f in self.files:
            try:
                with open_image(f) as im:  # refuses a named pipe or device instead of blocking on it
                    out.append((im.height, im.width))
            except Exception as exc:  # unreadable, or PIL's decompression-bomb guard: one line, not from a worker
                raise ValueError(
                    f"HR image {f} cannot be read ({exc.__class__.__name__}); remove or replace it"
                ) from None
        return out

    def name(self, i: int) -> str:
        return str(self.files[i])

    @property
    def ids(self) -> list[str]:
        return [f"{f.parent.name}/{f.name}" for f in self.files]

    def subset(self, indices: Tensor | Sequence[int]) -> HRFileDataset:
        return HRFileDataset([self.files[int(i)] for i in indices])


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist; check --data-dir")
    files = [p for p in image_files_under(folder) if p.is_file()]
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return files


def load_hr_splits(name: str, root: Path | None) -> dict[str, Any]:
    """The HR images of a super-resolution data set by split (arrays from an ``.npz``, or image files)."""
    if name not in ("camvid", "div2k", "hrfolder"):  # a name added to SR_DATASETS without its loader here
        raise ValueError(
            f"--dataset {name}: super-resolution has no loader for it (camvid, div2k and hrfolder have one)"
        )
    if name == "camvid":
        base = root or default_data_dir() / "CamVid"
        npz = base if base.suffix == ".npz" else base / CAMVID_NPZ
        if npz.is_file():
            data = np.load(npz)
            return {
                s: HRArrayDataset(torch.from_numpy(data[f"x_{s}"]).permute(0, 3, 1, 2).contiguous(),
                                  [str(n) for n in data[f"names_{s}"]] if f"names_{s}" in data else None)
                for s in ("train", "val", "test")
            }  # fmt: skip
        if (base / "train").is_dir():
            return {s: HRFileDataset(_images_in(base / s)) for s in ("train", "val", "test") if (base / s).is_dir()}
        raise FileNotFoundError(f"CamVid frames not found at {base}: pass --data-dir pointing at {CAMVID_NPZ} or "
                                "the SegNet CamVid folder (train/ val/ test/)")  # fmt: skip
    if root is None:
        raise ValueError(f"--dataset {name} needs --data-dir (a folder of high-resolution images)")
    if name == "div2k":
        train, valid = root / "DIV2K_train_HR", root / "DIV2K_valid_HR"
        if not train.is_dir():
            raise FileNotFoundError(f"{train} not found: --data-dir must hold DIV2K_train_HR/ (and DIV2K_valid_HR/)")
        splits = {"train": HRFileDataset(_images_in(train))}
        if valid.is_dir():
            splits["test"] = HRFileDataset(_images_in(valid))
        return splits
    if not root.is_dir():
        raise FileNotFoundError(f"HR image folder {root} does not exist; check --data-dir")
    subdirs = {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}
    if subdirs:
        if "train" not in subdirs:
            raise FileNotFoundError(f"{root} has {sorted(subdirs)} but no train/ folder")
        return {s: HRFileDataset(_images_in(p)) for s, p in subdirs.items()}
    return {"train": HRFileDataset(_images_in(root))}


def same_size(ds: Any) -> bool:
    """Whether all images of ``ds`` have one size (then they can be batched)."""
    if isinstance(ds, HRArrayDataset):
        return True
    from PIL import Image

    sizes = set()
    for f in ds.files:
        with Image.open(f) as im:
            sizes.add(im.size)
        if len(sizes) > 1:
            return False
    return True
