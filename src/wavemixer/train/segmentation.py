"""Semantic segmentation as a task of the one training engine: data, joint augmentation, metrics, output.

Conventions (every data set is mapped onto them when it is read):

* a mask is an ``int64`` H×W tensor of class indices ``0..num_classes-1``; **255 is ignored** by the loss
  and by every metric (CamVid "void" 11 and the Cityscapes non-train ids are mapped to 255);
* the metrics are the standard ones: per-class IoU over the whole split (torchmetrics
  ``MulticlassJaccardIndex(average=None, ignore_index=255)``), their mean over the classes that occur
  (mIoU), and pixel accuracy, all ignoring void. The reference implementation instead AND/OR-ed class-index
  maps and trained void as a class; its numbers are not comparable with these.
* augmentation is joint: one random scale, crop and flip applied to image and mask alike, the mask resized by
  nearest neighbour so that no new label values appear. Validation and test transforms are never random.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from .datasets import IMAGE_EXTENSIONS, DataBundle, DataInfo, default_data_dir, load_image, lookup_dataset

__all__ = [
    "CAMVID_CLASSES",
    "CAMVID_PALETTE",
    "IGNORE_INDEX",
    "SEGMENTATION_DATASETS",
    "JointTransform",
    "SegArrayDataset",
    "SegDataInfo",
    "SegFileDataset",
    "SegmentationTask",
    "build_segmentation_datasets",
    "colorize",
    "load_encoder_weights",
    "overlay",
    "predict_segmentation",
]

IGNORE_INDEX = 255
_IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

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

# Per-data-set defaults, in the shape the engine's resolve_config expects (model, epochs, augmentation).
SEGMENTATION_DATASETS: dict[str, dict[str, Any]] = {
    "camvid": dict(model="wavemix_seg_64_6_l2_camvid", epochs=40, crop_padding=0, hflip=True, trivial_augment=False),
    "cityscapes": dict(model="wavemix_lite_seg_128_8", epochs=100, crop_padding=0, hflip=True, trivial_augment=False),
    "segfolder": dict(model="wavemix_seg_64_6_l2_camvid", epochs=50, crop_padding=0, hflip=True, trivial_augment=False),
}
_ALIASES = {"folder": "segfolder", "seg_folder": "segfolder", "imagefolder": "segfolder", "folder_pair": "segfolder"}
#: random rescaling range of the training augmentation
SCALE_RANGE = (0.75, 1.5)


def canonical_segmentation_dataset(name: str) -> str:
    hint = " (segfolder: a folder with images/, masks/ and classes.txt)"
    return lookup_dataset(name, SEGMENTATION_DATASETS, _ALIASES, "segmentation data set", hint)


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


# ------------------------------------------------------------------------------------------- transforms
class JointTransform:
    """uint8 image C×H×W + int mask H×W → normalised float image + int64 mask, augmented jointly.

    Training: random scale in ``scale_range`` (image bilinear with antialias, mask nearest), random crop of
    ``crop_size`` (padding the image with 0 and the mask with the ignore index where the scaled image is
    smaller), random horizontal flip. Evaluation (``train=False``): only the normalisation, or a fixed resize
    to ``size``. Picklable for data-loader workers.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        train: bool = False,
        crop_size: tuple[int, int] | None = None,
        scale_range: tuple[float, float] | None = SCALE_RANGE,
        hflip: bool = False,
        size: tuple[int, int] | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.train, self.crop_size, self.scale_range, self.hflip = train, crop_size, scale_range, hflip
        self.size, self.ignore_index = size, ignore_index

    @staticmethod
    def _resize(img: Tensor, mask: Tensor, size: Sequence[int]) -> tuple[Tensor, Tensor]:
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        img = TF.resize(img, list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
        mask = TF.resize(mask[None], list(size), interpolation=InterpolationMode.NEAREST_EXACT)[0]
        return img, mask

    def __call__(self, img: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if img.shape[-2:] != mask.shape[-2:]:
            raise ValueError(
                f"image is {tuple(img.shape[-2:])} but its mask is {tuple(mask.shape[-2:])}: a mask "
                "must have exactly the size of its image"
            )
        mask = mask.long()
        if self.size is not None and tuple(img.shape[-2:]) != tuple(self.size):
            img, mask = self._resize(img, mask, self.size)
        if self.train:
            h, w = img.shape[-2:]
            if self.scale_range is not None:
                lo, hi = self.scale_range
                s = lo + (hi - lo) * float(torch.rand(()))
                img, mask = self._resize(img, mask, (max(1, round(h * s)), max(1, round(w * s))))
            ch, cw = self.crop_size or (h, w)
            ph, pw = max(ch - img.shape[-2], 0), max(cw - img.shape[-1], 0)
            if ph or pw:
                img = F.pad(img, (0, pw, 0, ph), value=0)
                mask = F.pad(mask, (0, pw, 0, ph), value=self.ignore_index)
            i = int(torch.randint(0, img.shape[-2] - ch + 1, ()))
            j = int(torch.randint(0, img.shape[-1] - cw + 1, ()))
            img, mask = img[:, i : i + ch, j : j + cw], mask[i : i + ch, j : j + cw]
            if self.hflip and torch.rand(()) < 0.5:
                img, mask = img.flip(-1), mask.flip(-1)
        x = (img.float().div(255) - self.mean) / self.std
        return x.contiguous(), mask.contiguous()


# --------------------------------------------------------------------------------------------- datasets
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
        transform: JointTransform | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        if images.shape[0] != masks.shape[0] or images.shape[-2:] != masks.shape[-2:]:
            raise ValueError(
                f"images {tuple(images.shape)} and masks {tuple(masks.shape)} do not match: need N "
                "images C×H×W and N masks H×W of the same size"
            )
        _check_labels(masks, num_classes, ignore_index, "segmentation masks")
        self.images, self.masks, self.names = images, masks, list(names)
        self.num_classes, self.transform, self.ignore_index = num_classes, transform, ignore_index

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
        )


class SegFileDataset(Dataset):
    """Image/mask file pairs decoded on access; ``label_map`` (256-entry LUT) maps raw mask values."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        num_classes: int,
        label_map: Tensor | None = None,
        transform: JointTransform | None = None,
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
        raise ValueError(f"cannot read mask {path} ({exc})") from exc
    return torch.from_numpy(arr)


@dataclass
class SegDataInfo(DataInfo):
    """:class:`DataInfo` plus what segmentation output needs: the ignore index and the class colours."""

    ignore_index: int = IGNORE_INDEX
    palette: list[tuple[int, int, int]] = field(default_factory=list)

    def preprocessing(self) -> dict[str, Any]:
        return {
            **super().preprocessing(),
            "task": "segmentation",
            "ignore_index": self.ignore_index,
            "palette": [list(c) for c in self.palette],
            "resize": "none (any size; output = input size)",
        }


def _camvid_lut() -> Tensor:
    lut = torch.arange(256, dtype=torch.long)
    lut[11] = IGNORE_INDEX  # void
    return lut


def _load_camvid(root: Path) -> tuple[dict[str, Any], str]:
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
    images = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    masks = {
        p.relative_to(mask_dir).with_suffix("").as_posix(): p
        for p in mask_dir.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    }
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


def _load_segfolder(root: Path) -> tuple[dict[str, Any], list[str]]:
    """``root/classes.txt`` + ``root/images/[train|val|test/]*`` + ``root/masks/`` with the same names."""
    if not root.is_dir():
        raise FileNotFoundError(f"segmentation folder {root} does not exist; check --data-dir")
    classes_file = root / "classes.txt"
    if not classes_file.is_file():
        raise FileNotFoundError(
            f"{classes_file} not found: a segmentation folder needs classes.txt (one class "
            "name per line, line i = mask value i; 255 = ignore), images/ and masks/"
        )
    classes = [c.strip() for c in classes_file.read_text().splitlines() if c.strip()]
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


def _load_cityscapes(root: Path) -> dict[str, Any]:
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
    from torchvision.datasets import Cityscapes

    train = sorted((c for c in Cityscapes.classes if 0 <= c.train_id < 255), key=lambda c: c.train_id)
    return [c.name for c in train], [tuple(c.color) for c in train]


def _split_off_val(train: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1), got {fraction}")
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(len(train) * fraction))
    return train.subset(perm[n_val:].sort().values), train.subset(perm[:n_val].sort().values)


def _first(ds: Any, n: int) -> Any:
    return ds if n >= len(ds) else ds.subset(range(n))


def build_segmentation_datasets(cfg: Any) -> DataBundle:
    """Train/val/test segmentation sets for a resolved training config.

    ``--input-size N`` is the square training crop (default: the native image size); evaluation always runs
    on whole images at their native size, so that the metric is computed on the original label maps.
    """
    name = canonical_segmentation_dataset(cfg.dataset)
    if cfg.trivial_augment:
        raise ValueError(
            "--trivial-augment is a classification augmentation; segmentation uses joint "
            "scale/crop/flip augmentation (--input-size sets the crop, --hflip the flip)"
        )
    root = Path(cfg.data_dir).expanduser() if cfg.data_dir else None
    if name == "camvid":
        splits, _ = _load_camvid(root or default_data_dir() / "CamVid")
        classes, palette = list(CAMVID_CLASSES), list(CAMVID_PALETTE)
    elif name == "cityscapes":
        splits = _load_cityscapes(root or default_data_dir() / "cityscapes")
        classes, palette = cityscapes_classes()
    else:
        if root is None:
            raise ValueError("--dataset segfolder needs --data-dir: a folder with classes.txt, images/ and masks/")
        splits, classes = _load_segfolder(root)
        palette = default_palette(len(classes))
    train, val, test = splits["train"], splits.get("val"), splits.get("test")
    if val is None:
        train, val = _split_off_val(train, cfg.val_fraction, cfg.seed)
    if cfg.subset is not None:
        if cfg.subset < 2:
            raise ValueError(f"--subset must be at least 2, got {cfg.subset}")
        train, val = _first(train, cfg.subset), _first(val, max(cfg.subset // 4, 2))
        test = _first(test, max(cfg.subset // 4, 2)) if test is not None else None
    probe, _ = train[0] if not isinstance(train, SegFileDataset) else train.load(0)
    native = (int(probe.shape[-2]), int(probe.shape[-1]))
    crop = (cfg.input_size, cfg.input_size) if cfg.input_size else native
    info = SegDataInfo(
        name,
        len(classes),
        classes,
        3,
        crop,
        _IMAGENET["mean"],
        _IMAGENET["std"],
        ignore_index=IGNORE_INDEX,
        palette=palette,
    )
    train.transform = JointTransform(info.mean, info.std, train=True, crop_size=crop, hflip=bool(cfg.hflip))
    evaluate = JointTransform(info.mean, info.std)
    val.transform = evaluate
    if test is not None:
        test.transform = evaluate
    return DataBundle(train, val, test, info, in_memory=isinstance(train, SegArrayDataset))


# ------------------------------------------------------------------------------------------------ task
class SegmentationTask:
    """Per-pixel cross-entropy (void ignored); val mIoU selects the best checkpoint."""

    name = "segmentation"
    select_metric = "miou"
    select_mode = "max"

    def __init__(self, label_smoothing: float = 0.0, ignore_index: int = IGNORE_INDEX, **_: Any) -> None:
        self.label_smoothing, self.ignore_index = label_smoothing, ignore_index
        self.labels: list[str] = []

    @staticmethod
    def dataset_defaults(dataset: str) -> tuple[str, dict[str, Any]]:
        name = canonical_segmentation_dataset(dataset)
        return name, dict(SEGMENTATION_DATASETS[name])

    def build_datasets(self, cfg: Any) -> DataBundle:
        return build_segmentation_datasets(cfg)

    def build_model(self, model_name: str, info: DataInfo, model_args: dict[str, Any]) -> nn.Module:
        from wavemixer.factory import create_model
        from wavemixer.registry import get_spec

        spec = get_spec(model_name, task="segmentation")
        overrides = dict(model_args)
        overrides.setdefault("num_classes", info.num_classes)
        if overrides["num_classes"] != info.num_classes:
            raise ValueError(f"num_classes={overrides['num_classes']} but {info.name} has {info.num_classes} classes")
        if spec.kwargs.get("in_chans", 3) != info.in_chans:
            overrides.setdefault("in_chans", info.in_chans)
        return create_model(model_name, **overrides)

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if not bool((targets != self.ignore_index).any()):  # an all-void batch: no signal, but keep the graph
            return outputs.float().sum() * 0.0
        return F.cross_entropy(
            outputs.float(), targets, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing
        )

    def make_metrics(self, info: DataInfo, device: torch.device) -> Any:
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

        n = info.num_classes
        self.labels = list(info.labels)
        return MetricCollection({
            "iou": MulticlassJaccardIndex(n, average="none", ignore_index=self.ignore_index,
                                          zero_division=float("nan")),
            "pixel_acc": MulticlassAccuracy(n, average="micro", ignore_index=self.ignore_index),
        }).to(device)  # fmt: skip

    def update_metrics(self, metrics: Any, outputs: Tensor, targets: Tensor) -> None:
        metrics.update(outputs.argmax(1), targets)

    def compute_metrics(self, metrics: Any) -> dict[str, float]:
        """``miou`` (mean over classes present in labels or predictions), ``pixel_acc``, ``iou_<class>``."""
        values = metrics.compute()
        iou = values["iou"].float()
        out = {"miou": 100.0 * float(torch.nanmean(iou)), "pixel_acc": 100.0 * float(values["pixel_acc"])}
        names = self.labels if len(self.labels) == len(iou) else [str(i) for i in range(len(iou))]
        for name, v in zip(names, iou.tolist()):
            out[f"iou_{name}"] = 100.0 * v
        return out

    def preprocessing(self, info: DataInfo) -> dict[str, Any]:
        return info.preprocessing()


# ------------------------------------------------------------------------------------------ init-from
def load_encoder_weights(model: nn.Module, source: str | Path) -> list[str]:
    """Initialise ``model``'s encoder from a classification checkpoint; returns the loaded keys.

    ``source``: a ``save_pretrained`` folder (e.g. a run's ``best/``), a training run folder, a
    ``checkpoint.pt``, a ``.safetensors`` file or a registry name with packaged weights. Only ``stem.*`` and
    ``blocks.*`` are taken, so the classifier head is dropped and the segmentation head stays random.
    """
    state = _read_state(Path(source)) if Path(source).exists() else None
    if state is None:
        from wavemixer.hub import from_pretrained

        state = from_pretrained(str(source)).state_dict()
    loader = getattr(model, "load_encoder_state_dict", None)
    if loader is None:
        raise ValueError(f"--init-from initialises an encoder, but {type(model).__name__} has none to load")
    return loader(state)


def _read_state(path: Path) -> dict[str, Tensor]:
    from wavemixer.hub import clean_state_dict, from_pretrained

    if path.is_dir():
        if (path / "config.json").is_file():
            return from_pretrained(path).state_dict()
        for sub in ("best", "last"):
            if (path / sub / "config.json").is_file():
                return from_pretrained(path / sub).state_dict()
        if (path / "checkpoint.pt").is_file():
            path = path / "checkpoint.pt"
        else:
            raise FileNotFoundError(f"--init-from {path}: no config.json, best/, last/ or checkpoint.pt inside")
    if path.suffix == ".safetensors":
        from wavemixer.hub import read_safetensors

        return read_safetensors(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torn or foreign files raise many kinds of errors
        raise ValueError(f"--init-from {path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state.get("ema") or state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"--init-from {path} does not hold a state dict")
    return clean_state_dict(state)


# --------------------------------------------------------------------------------------------- output
def colorize(
    mask: Tensor | np.ndarray, palette: Sequence[Sequence[int]], ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """H×W class indices → H×W×3 uint8 colour image (ignored and unknown values black)."""
    m = np.asarray(mask, dtype=np.int64)
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:255]
    lut[ignore_index] = 0
    return lut[np.clip(m, 0, 255)]


def overlay(image: np.ndarray, color: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour mask over an H×W×3 uint8 image."""
    mixed = (1 - alpha) * image.astype(np.float32) + alpha * color.astype(np.float32)
    return np.clip(mixed.round(), 0, 255).astype(np.uint8)


@torch.no_grad()
def predict_segmentation(
    model: nn.Module,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    preprocessing: dict[str, Any] | None = None,
    labels: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    amp: str = "none",
    alpha: float = 0.5,
) -> list[dict[str, Any]]:
    """Segment images and write ``<name>_mask.png`` (colours), ``<name>_overlay.png`` and ``<name>_labels.png``
    (class indices) into ``out_dir``; returns one record per image with the class-pixel fractions."""
    from PIL import Image

    pre = preprocessing or {}
    mean = torch.tensor(pre.get("mean", _IMAGENET["mean"]), dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(pre.get("std", _IMAGENET["std"]), dtype=torch.float32).view(-1, 1, 1)
    n = int(getattr(model, "num_classes", 0) or len(labels or []))
    palette = pre.get("palette") or default_palette(n)
    names = list(labels) if labels else [str(i) for i in range(n)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().to(device)
    records = []
    for src in inputs:
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"input image {path} does not exist")
        img = load_image(path, "RGB", full_range=False)
        x = ((img.float() / 255 - mean) / std)[None].to(device)
        ctx = torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if amp == "bf16" else nullcontext()
        with ctx:
            logits = model(x)
        pred = logits.float().argmax(1)[0].cpu().numpy().astype(np.uint8)
        color = colorize(pred, palette)
        rgb = img.permute(1, 2, 0).numpy()
        paths = {kind: out / f"{path.stem}_{kind}.png" for kind in ("mask", "overlay", "labels")}
        Image.fromarray(color).save(paths["mask"])
        Image.fromarray(overlay(rgb, color, alpha)).save(paths["overlay"])
        Image.fromarray(pred, mode="L").save(paths["labels"])
        counts = np.bincount(pred.ravel(), minlength=n)[:n] / pred.size
        records.append(
            dict(
                image=str(path),
                **{k: str(v) for k, v in paths.items()},
                fractions={names[i]: round(float(c), 4) for i, c in enumerate(counts) if c > 0},
            )
        )
    return records
