"""Semantic segmentation: CamVid, Cityscapes and segmentation folders; per-pixel cross-entropy; mIoU.

* Masks follow one convention (:mod:`wavemixer.data.masks`): class indices, **255 ignored** by the loss and by
  every metric.
* The metrics are the standard ones: per-class IoU over the whole split (torchmetrics
  ``MulticlassJaccardIndex(average=None, ignore_index=255)``), their mean over the classes that occur
  (mIoU), and pixel accuracy, all ignoring void. The reference implementation instead AND/OR-ed class-index
  maps and trained void as a class; its numbers are not comparable with these.
* Augmentation is joint (:class:`~wavemixer.data.transforms.SegmentationTransform`): one random scale, crop
  and flip applied to image and mask alike. Evaluation runs on whole images at their native size, so that
  the metric is computed on the original label maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavemixer.constants import IGNORE_INDEX, IMAGENET_MEAN_STD
from wavemixer.data.builtin import default_data_dir
from wavemixer.data.bundle import DataBundle, DataInfo
from wavemixer.data.images import load_image, readable_images
from wavemixer.data.masks import (
    CAMVID_CLASSES,
    CAMVID_PALETTE,
    SegArrayDataset,
    SegFileDataset,
    cityscapes_classes,
    default_palette,
    load_camvid,
    load_cityscapes,
    load_segfolder,
)
from wavemixer.data.transforms import SegmentationTransform
from wavemixer.files import atomic_save_png

from .base import PredictOptions, Task, image_outputs

if TYPE_CHECKING:
    from wavemixer.loading import LoadedModel
    from wavemixer.registry import ModelSpec
    from wavemixer.train.config import TrainConfig

__all__ = ["SEGMENTATION_DATASETS", "SegDataInfo", "SegmentationTask", "colorize", "overlay", "predict_segmentation"]

# Per-data-set defaults (model, epochs, augmentation).
SEGMENTATION_DATASETS: dict[str, dict[str, Any]] = {
    "camvid": dict(model="wavemix_seg_64_6_l2_camvid", epochs=40, crop_padding=0, hflip=True, trivial_augment=False),
    "cityscapes": dict(model="wavemix_lite_seg_128_8", epochs=100, crop_padding=0, hflip=True, trivial_augment=False),
    "segfolder": dict(model="wavemix_seg_64_6_l2_camvid", epochs=50, crop_padding=0, hflip=True, trivial_augment=False),
}


@dataclass
class SegDataInfo(DataInfo):
    """:class:`DataInfo` plus the colours of the classes (for masks and overlays)."""

    palette: list[tuple[int, int, int]] = field(default_factory=list)


class SegmentationTask(Task):
    """Per-pixel cross-entropy (void ignored); val mIoU selects the best checkpoint."""

    name = "segmentation"
    select_metric = "miou"
    report_metrics = ("miou",)
    datasets = SEGMENTATION_DATASETS
    aliases = {"folder": "segfolder", "seg_folder": "segfolder", "imagefolder": "segfolder", "folder_pair": "segfolder"}
    dataset_hint = " (segfolder: a folder with images/, masks/ and classes.txt)"
    max_eval_batch = 8  # dense outputs are large
    predicts_images = True
    ignore_index = IGNORE_INDEX

    def __init__(self, cfg: TrainConfig | None = None) -> None:
        super().__init__(cfg)
        self.labels: list[str] = []

    def check_config(self) -> None:
        super().check_config()
        if self.cfg.trivial_augment:
            raise ValueError(
                "--trivial-augment is a classification augmentation; segmentation uses joint "
                "scale/crop/flip augmentation (--input-size sets the crop, --hflip the flip)"
            )

    # ------------------------------------------------------------------------------------------------ data
    def load_data(self) -> DataBundle:
        """``--input-size N`` is the square training crop (default: the native image size)."""
        cfg = self.cfg
        name = self.canonical_dataset(cfg.dataset)
        root = Path(cfg.data_dir).expanduser() if cfg.data_dir else None
        if name == "camvid":
            splits, _ = load_camvid(root or default_data_dir() / "CamVid")
            classes, palette = list(CAMVID_CLASSES), list(CAMVID_PALETTE)
        elif name == "cityscapes":
            splits = load_cityscapes(root or default_data_dir() / "cityscapes")
            classes, palette = cityscapes_classes()
        elif name == "segfolder":
            if root is None:
                raise ValueError("--dataset segfolder needs --data-dir: a folder with classes.txt, images/ and masks/")
            splits, classes = load_segfolder(root)
            palette = default_palette(len(classes))
        else:  # a name added to SEGMENTATION_DATASETS without its loader here
            raise ValueError(
                f"--dataset {name}: segmentation has no loader for it (camvid, cityscapes and segfolder have one)"
            )
        train, val, test = self.split(splits["train"], splits.get("val"), splits.get("test"))
        probe, _ = train[0] if not isinstance(train, SegFileDataset) else train.load(0)
        native = (int(probe.shape[-2]), int(probe.shape[-1]))
        crop = (cfg.input_size, cfg.input_size) if cfg.input_size else native
        mean, std = IMAGENET_MEAN_STD["mean"], IMAGENET_MEAN_STD["std"]
        info = SegDataInfo(name, len(classes), classes, 3, crop, mean, std, palette=palette)
        train.transform = SegmentationTransform(mean, std, train=True, crop_size=crop, hflip=bool(cfg.hflip))
        for split in (val, test):
            if split is not None:
                split.transform = SegmentationTransform(mean, std)
        return DataBundle(train, val, test, info, in_memory=isinstance(train, SegArrayDataset))

    # ----------------------------------------------------------------------------------------------- model
    def model_arguments(self, spec: ModelSpec, info: DataInfo, model_args: dict[str, Any]) -> dict[str, Any]:
        overrides = dict(model_args)
        overrides.setdefault("num_classes", info.num_classes)
        if overrides["num_classes"] != info.num_classes:
            raise ValueError(f"num_classes={overrides['num_classes']} but {info.name} has {info.num_classes} classes")
        if spec.kwargs.get("in_chans", 3) != info.in_chans:
            overrides.setdefault("in_chans", info.in_chans)
        return overrides

    # -------------------------------------------------------------------------------------------- training
    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if not bool((targets != self.ignore_index).any()):  # an all-void batch: no signal, but keep the graph
            return outputs.float().sum() * 0.0
        return F.cross_entropy(
            outputs.float(), targets, ignore_index=self.ignore_index, label_smoothing=self.cfg.label_smoothing
        )

    # --------------------------------------------------------------------------------------------- metrics
    def make_metrics(self, info: DataInfo, device: torch.device, *, detailed: bool = False) -> Any:
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

    # ------------------------------------------------------------------------------ saving and evaluating
    def preprocessing(self, info: DataInfo) -> dict[str, Any]:
        return dict(
            mean=list(info.mean), std=list(info.std), input_size=[info.in_chans, *info.input_size],
            color_mode=info.color_mode, resize="none (any size; output = input size)", task="segmentation",
            ignore_index=self.ignore_index, palette=[list(c) for c in getattr(info, "palette", [])],
        )  # fmt: skip

    def evaluation_transform(self, preprocessing: dict[str, Any]) -> SegmentationTransform:
        return SegmentationTransform(preprocessing["mean"], preprocessing["std"])

    def eval_summary(self, loaded: LoadedModel, result: dict[str, Any]) -> list[str]:
        per_class = {k[4:]: v for k, v in result.items() if k.startswith("iou_")}
        return [
            f"{loaded.name} on {result['dataset']} {result['split']} ({result['images']:,} images): mIoU "
            f"{result['miou']:.2f}%  pixel accuracy {result['pixel_acc']:.2f}% (void ignored)",
            "per-class IoU: " + ", ".join(f"{k} {v:.1f}" for k, v in per_class.items()),
        ]

    # ------------------------------------------------------------------------------------------ predicting
    def image_names(self, loaded: LoadedModel, path: Path) -> tuple[str, ...]:
        return tuple(segmentation_image_names(path).values())

    def predict(self, loaded: LoadedModel, files: list[Path], options: PredictOptions) -> list[dict[str, Any]]:
        """``<name>_mask.png`` (colours), ``<name>_overlay.png`` and ``<name>_labels.png`` per image."""
        files = readable_images(files, options.skipped)
        options.note_skipped()
        return predict_segmentation(loaded.model, files, options.out_dir or Path("predictions"),
                                    preprocessing=loaded.preprocessing, labels=loaded.labels,
                                    device=options.device)  # fmt: skip


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


def segmentation_image_names(path: Path) -> dict[str, str]:
    """What :func:`predict_segmentation` writes for the input ``path``: colours, overlay and class indices."""
    return {kind: f"{path.stem}_{kind}.png" for kind in ("mask", "overlay", "labels")}


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
    mean = torch.tensor(pre.get("mean", IMAGENET_MEAN_STD["mean"]), dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(pre.get("std", IMAGENET_MEAN_STD["std"]), dtype=torch.float32).view(-1, 1, 1)
    n = int(getattr(model, "num_classes", 0) or len(labels or []))
    palette = pre.get("palette") or default_palette(n)
    names = list(labels) if labels else [str(i) for i in range(n)]
    out = Path(out_dir)
    image_outputs([Path(p) for p in inputs], lambda p: tuple(segmentation_image_names(p).values()))
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
        paths = {kind: out / name for kind, name in segmentation_image_names(path).items()}
        atomic_save_png(Image.fromarray(color), paths["mask"])
        atomic_save_png(Image.fromarray(overlay(rgb, color, alpha)), paths["overlay"])
        atomic_save_png(Image.fromarray(pred, mode="L"), paths["labels"])
        counts = np.bincount(pred.ravel(), minlength=n)[:n] / pred.size
        records.append(
            dict(
                image=str(path),
                **{k: str(v) for k, v in paths.items()},
                fractions={names[i]: round(float(c), 4) for i, c in enumerate(counts) if c > 0},
            )
        )
    return records
