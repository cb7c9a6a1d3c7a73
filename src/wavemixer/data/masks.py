"""Segmentation sources: image/mask pairs from CamVid, Cityscapes and segmentation folders.

Every source is mapped onto one convention when it is read: a mask is an ``int64`` H×W tensor of class
indices ``0..num_classes-1`` and :data:`~wavemixer.constants.IGNORE_INDEX` (255) marks pixels no loss or
metric counts (CamVid "void" 11 and the Cityscapes non-train ids become 255).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from wavemixer.constants import IGNORE_INDEX

from .images import IMAGE_EXTENSIONS, image_files_under, load_image, unreadable_reason

__all__ = [
    "CAMVID_CLASSES",
    "CAMVID_NPZ",
    "CAMVID_PALETTE",
    "SegArrayDataset",
    "SegFileDataset",
    "cityscapes_classes",
    "default_palette",
    "load_camvid",
    "load_cityscapes",
    "load_segfolder",
    "read_mask",
]

MaskTransform = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]

CAMVID_CLASSES = [
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
]
#: the SegNet colour code of the 11 CamVid classes
CAMVID_PALETTE = [
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
]
CAMVID_NPZ = "camvid_segnet_180x240.npz"


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """Distinct colours for ``n`` classes (the PASCAL VOC bit-interleaving scheme)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i + 1
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def _check_labels(mask: Tensor, num_classes: int, ignore_index: int, where: str) -> None:
    bad = (mask >= num_classes) & (mask != ignore_index) | (mask < 0)
    if bool(bad.any()):
        values = sorted(int(v) for v in torch.unique(mask[bad])[:10])
        raise ValueError(
            f"{where}: mask label value(s) {values} are outside 0..{num_classes - 1} (and "
            f"{ignore_index} = ignore); fix the masks or the class list"
        )


class SegArrayDataset(Dataset):
    """In-memory uint8 images (N×C×H×W) and masks (N×H×W, already mapped to 0..K-1 / 255)."""

    def __init__(
        self,
        images: Tensor,
        masks: Tensor,
        names: Sequence[str],
        num_classes: int,
        transform: MaskTransform | None = None,
        ignore_index: int = IGNORE_INDEX,
        ids: Sequence[int] | None = None,
    ) -> None:
        if images.shape[0] != masks.shape[0] or images.shape[-2:] != masks.shape[-2:]:
            raise ValueError(
                f"images {tuple(images.shape)} and masks {tuple(masks.shape)} do not match: need N "
                "images C×H×W and N masks H×W of the same size"
            )
        _check_labels(masks, num_classes, ignore_index, "segmentation masks")
        self.images, self.masks, self.names = images, masks, list(names)
        self.num_classes, self.transform, self.ignore_index = num_classes, transform, ignore_index
        self.ids = list(range(len(masks))) if ids is None else list(ids)  # index in the source

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        img, mask = self.images[i], self.masks[i].long()
        return self.transform(img, mask) if self.transform else (img, mask)

    def subset(self, indices: Tensor | Sequence[int]) -> SegArrayDataset:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return SegArrayDataset(
            self.images[idx],
            self.masks[idx],
            [self.names[i] for i in idx.tolist()],
            self.num_classes,
            self.transform,
            self.ignore_index,
            [self.ids[i] for i in idx.tolist()],
        )


class SegFileDataset(Dataset):
    """Image/mask file pairs decoded on access; ``label_map`` (256-entry LUT) maps raw mask values."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        num_classes: int,
        label_map: Tensor | None = None,
        transform: MaskTransform | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.pairs = [(Path(a), Path(b)) for a, b in pairs]
        self.num_classes, self.label_map, self.transform, self.ignore_index = (
            num_classes,
            label_map,
            transform,
            ignore_index,
        )

    @property
    def names(self) -> list[str]:
        return [p[0].name for p in self.pairs]

    @property
    def ids(self) -> list[str]:
        return [f"{p[0].parent.name}/{p[0].name}" for p in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, i: int) -> tuple[Tensor, Tensor]:
        img_path, mask_path = self.pairs[i]
        img = load_image(img_path, "RGB", full_range=False)
        mask = read_mask(mask_path)
        if self.label_map is not None:
            mask = self.label_map[mask]
        if img.shape[-2:] != mask.shape:
            raise ValueError(
                f"{img_path} is {tuple(img.shape[-2:])} but its mask {mask_path} is "
                f"{tuple(mask.shape)}: a mask must have exactly the size of its image"
            )
        _check_labels(mask, self.num_classes, self.ignore_index, str(mask_path))
        return img, mask

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        img, mask = self.load(i)
        return self.transform(img, mask) if self.transform else (img, mask)

    def subset(self, indices: Tensor | Sequence[int]) -> SegFileDataset:
        return SegFileDataset(
            [self.pairs[int(i)] for i in indices], self.num_classes, self.label_map, self.transform, self.ignore_index
        )


def read_mask(path: Path) -> Tensor:
    """A label PNG as an int64 H×W tensor of its raw values (palette PNGs give their indices)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(
                    f"{path} is a {im.mode} image; a mask must be single-channel (class index per "
                    "pixel, 255 = ignore), not a colour picture"
                )
            arr = np.asarray(im).astype(np.int64)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read mask {path} ({unreadable_reason(exc)})") from exc
    return torch.from_numpy(arr)


def _camvid_lut() -> Tensor:
    lut = torch.arange(256, dtype=torch.long)
    lut[11] = IGNORE_INDEX  # void
    return lut


def load_camvid(root: Path) -> tuple[dict[str, Any], str]:
    """CamVid from the 180×240 npz (a file, or a folder holding it) or the SegNet folder layout."""
    npz = root if root.suffix == ".npz" else root / CAMVID_NPZ
    if npz.is_file():
        data = np.load(npz)
        lut = _camvid_lut()
        splits: dict[str, Any] = {}
        for split in ("train", "val", "test"):
            x = torch.from_numpy(data[f"x_{split}"]).permute(0, 3, 1, 2).contiguous()
            y = lut[torch.from_numpy(data[f"y_{split}"]).long()].to(torch.uint8)
            names = [str(n) for n in data[f"names_{split}"]] if f"names_{split}" in data else []
            splits[split] = SegArrayDataset(x, y, names, len(CAMVID_CLASSES))
        return splits, f"CamVid {npz.name}"
    if (root / "train").is_dir() and (root / "trainannot").is_dir():
        splits = {}
        for split in ("train", "val", "test"):
            if not (root / split).is_dir():
                continue
            pairs = _pair_files(root / split, root / f"{split}annot")
            splits[split] = SegFileDataset(pairs, len(CAMVID_CLASSES), _camvid_lut())
        return splits, "CamVid SegNet folders"
    raise FileNotFoundError(
        f"CamVid not found at {root}: pass --data-dir pointing at {CAMVID_NPZ} (or a folder holding it) or at "
        "the SegNet CamVid folder with train/ trainannot/ val/ valannot/ test/ testannot/"
    )


def _pair_files(image_dir: Path, mask_dir: Path) -> list[tuple[Path, Path]]:
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder {image_dir} does not exist")
    if not mask_dir.is_dir():
        raise FileNotFoundError(f"mask folder {mask_dir} does not exist (expected beside {image_dir})")
    images = [p for p in image_files_under(image_dir) if p.is_file()]
    masks = {p.relative_to(mask_dir).with_suffix("").as_posix(): p for p in image_files_under(mask_dir) if p.is_file()}
    if not images:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
    pairs, missing = [], []
    for img in images:
        key = img.relative_to(image_dir).with_suffix("").as_posix()
        if key in masks:
            pairs.append((img, masks[key]))
        else:
            missing.append(key)
    if missing:
        raise ValueError(
            f"{len(missing)} image(s) in {image_dir} have no mask of the same name in {mask_dir} "
            f"(e.g. {missing[:3]}); every image needs <name>.png in the mask folder"
        )
    return pairs


def load_segfolder(root: Path) -> tuple[dict[str, Any], list[str]]:
    """``root/classes.txt`` + ``root/images/[train|val|test/]*`` + ``root/masks/`` with the same names."""
    if not root.is_dir():
        raise FileNotFoundError(f"segmentation folder {root} does not exist; check --data-dir")
    classes_file = root / "classes.txt"
    if not classes_file.is_file():
        raise FileNotFoundError(
            f"{classes_file} not found: a segmentation folder needs classes.txt (one class "
            "name per line, line i = mask value i; 255 = ignore), images/ and masks/"
        )
    try:
        classes = [c.strip() for c in classes_file.read_text(encoding="utf-8-sig").splitlines() if c.strip()]
    except UnicodeDecodeError as exc:
        reason = f"{exc.reason} at byte {exc.start}"
        raise ValueError(f"{classes_file} is not UTF-8 text ({reason}); it lists one class name per line") from None
    if len(classes) < 2:
        raise ValueError(f"{classes_file} lists {len(classes)} class(es); segmentation needs at least 2")
    if len(classes) > 255:
        raise ValueError(f"{classes_file} lists {len(classes)} classes; at most 255 (255 is the ignore value)")
    images, masks = root / "images", root / "masks"
    split_dirs = [s for s in ("train", "val", "test") if (images / s).is_dir()]
    if split_dirs:
        if "train" not in split_dirs:
            raise FileNotFoundError(f"{images} has {split_dirs} but no train/ folder")
        splits = {s: SegFileDataset(_pair_files(images / s, masks / s), len(classes)) for s in split_dirs}
    else:
        splits = {"train": SegFileDataset(_pair_files(images, masks), len(classes))}
    return splits, classes


def load_cityscapes(root: Path) -> dict[str, Any]:
    """Cityscapes fine annotations through torchvision: 19 train ids, everything else 255."""
    from torchvision.datasets import Cityscapes

    lut = torch.full((256,), IGNORE_INDEX, dtype=torch.long)
    for c in Cityscapes.classes:
        if 0 <= c.id < 256 and 0 <= c.train_id < 255:
            lut[c.id] = c.train_id
    splits = {}
    for split in ("train", "val"):
        try:
            ds = Cityscapes(str(root), split=split, mode="fine", target_type="semantic")
        except RuntimeError as exc:
            raise FileNotFoundError(
                f"Cityscapes not found in {root} ({exc}); --data-dir must hold leftImg8bit/ "
                "and gtFine/ as downloaded from cityscapes-dataset.com"
            ) from exc
        splits[split] = SegFileDataset([(Path(i), Path(t[0])) for i, t in zip(ds.images, ds.targets)], 19, lut)
    return splits


def cityscapes_classes() -> tuple[list[str], list[tuple[int, int, int]]]:
    """The 19 Cityscapes training classes and their palette."""
    from torchvision.datasets import Cityscapes

    train = sorted((c for c in Cityscapes.classes if 0 <= c.train_id < 255), key=lambda c: c.train_id)
    return [c.name for c in train], [tuple(c.color) for c in train]
