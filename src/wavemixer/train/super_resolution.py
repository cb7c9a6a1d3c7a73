"""Single-image super-resolution as a task of the one training engine: HR data, bicubic LR, PSNR/SSIM.

Protocol (the usual bicubic-degradation benchmark, as for DIV2K/Set5 tables):

* **HR**: RGB in [0, 1]. Training takes a random ``--input-size`` HR crop (a multiple of the scale) with
  random horizontal/vertical flips; evaluation takes each whole image, cropped at the bottom/right to a
  multiple of the scale ("mod crop").
* **LR** is made on the fly from that HR: bicubic downscaling by the scale with antialiasing (Keys kernel
  a = -0.5 widened by the scale, as MATLAB ``imresize`` and PIL do; ``torch.nn.functional.interpolate(...,
  mode="bicubic", antialias=True)``), clamped to [0, 1] and rounded to 8-bit levels like a saved LR PNG.
* **Metrics**: PSNR and SSIM (torchmetrics; SSIM with the 11×11 Gaussian window, σ = 1.5) on the **Y channel**
  of ITU-R BT.601 (Y = 16 + 65.481 R + 128.553 G + 24.966 B on a 0..255 scale, as MATLAB ``rgb2ycbcr``),
  after cropping ``scale`` pixels from every border, computed per image and averaged. Model outputs are
  clamped and rounded to 8-bit levels first. The **bicubic baseline** (bicubic upsampling of the same LR,
  ``align_corners=False``) is measured in the same pass on the same images (``bicubic_psnr``,
  ``bicubic_ssim``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from .datasets import IMAGE_EXTENSIONS, DataBundle, DataInfo, default_data_dir, load_image, lookup_dataset

__all__ = [
    "SR_DATASETS",
    "HRArrayDataset",
    "HRFileDataset",
    "SRDataInfo",
    "SuperResolutionTask",
    "bicubic_downscale",
    "bicubic_upscale",
    "build_super_resolution_datasets",
    "predict_super_resolution",
    "psnr_y",
    "rgb_to_y",
]

SR_DATASETS: dict[str, dict[str, Any]] = {
    "hrfolder": dict(model="wavemix_sr_64_4_x2_residual", epochs=50, crop_padding=0, hflip=True, trivial_augment=False),
    "div2k": dict(model="wavemix_sr_144_4_x2", epochs=100, crop_padding=0, hflip=True, trivial_augment=False),
    "camvid": dict(model="wavemix_sr_64_4_x2_residual", epochs=30, crop_padding=0, hflip=True, trivial_augment=False),
}
_ALIASES = {"folder": "hrfolder", "imagefolder": "hrfolder", "hr_folder": "hrfolder", "camvid_frames": "camvid"}
DEFAULT_CROP = 64


def canonical_sr_dataset(name: str) -> str:
    hint = " (hrfolder: any folder of high-resolution images)"
    return lookup_dataset(name, SR_DATASETS, _ALIASES, "super-resolution data set", hint)


# ------------------------------------------------------------------------------------------- protocol
def _quantize(x: Tensor) -> Tensor:
    return x.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def bicubic_downscale(hr: Tensor, scale: int) -> Tensor:
    """HR (…×C×H×W in [0, 1], H and W multiples of ``scale``) → 8-bit-rounded LR by antialiased bicubic."""
    batched = hr.ndim == 4
    x = hr if batched else hr[None]
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}; mod-crop it first")
    lr = F.interpolate(x.float(), size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)
    lr = _quantize(lr)
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
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


# --------------------------------------------------------------------------------------------- datasets
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
            top, left = int(torch.randint(0, h - c + 1, ())), int(torch.randint(0, w - c + 1, ()))
            img = img[:, top : top + c, left : left + c]
            if self.flips:
                if torch.rand(()) < 0.5:
                    img = img.flip(-1)
                if torch.rand(()) < 0.5:
                    img = img.flip(-2)
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

    def name(self, i: int) -> str:
        return self.names[i] if i < len(self.names) else str(i)

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

    def name(self, i: int) -> str:
        return str(self.files[i])

    def subset(self, indices: Tensor | Sequence[int]) -> HRFileDataset:
        return HRFileDataset([self.files[int(i)] for i in indices])


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist; check --data-dir")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return files


def _load_hr_splits(name: str, root: Path | None) -> dict[str, Any]:
    if name == "camvid":
        from .segmentation import CAMVID_NPZ

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


@dataclass
class SRDataInfo(DataInfo):
    """:class:`DataInfo` plus the upscaling factor."""

    scale: int = 2

    def preprocessing(self) -> dict[str, Any]:
        return {
            "task": "super_resolution", "scale": self.scale, "mean": [0.0] * self.in_chans,
            "std": [1.0] * self.in_chans, "color_mode": "RGB", "value_range": [0.0, 1.0],
            "lr_protocol": "bicubic downscale, antialias (Keys a=-0.5), 8-bit rounded",
            "metrics": "PSNR/SSIM on BT.601 Y, border crop = scale",
        }  # fmt: skip


def model_scale(model_name: str, model_args: dict[str, Any]) -> int:
    from wavemixer.registry import get_spec

    spec = get_spec(model_name, task="super_resolution")
    return int(model_args.get("scale", spec.kwargs.get("scale", 2)))


def _same_size(ds: Any) -> bool:
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


def build_super_resolution_datasets(cfg: Any) -> DataBundle:
    """Train/val/test (LR, HR) sets; the scale comes from the model (``--model`` / ``--model-arg scale=4``)."""
    name = canonical_sr_dataset(cfg.dataset)
    if cfg.trivial_augment:
        raise ValueError("--trivial-augment is a classification augmentation; super-resolution uses random HR "
                         "crops (--input-size) and flips (--hflip)")  # fmt: skip
    scale = model_scale(cfg.model, cfg.model_args)
    root = Path(cfg.data_dir).expanduser() if cfg.data_dir else None
    splits = _load_hr_splits(name, root)
    train, val, test = splits["train"], splits.get("val"), splits.get("test")
    if val is None:
        if not 0.0 < cfg.val_fraction < 1.0:
            raise ValueError(f"--val-fraction must be in (0, 1), got {cfg.val_fraction}")
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))
        n_val = max(1, round(len(train) * cfg.val_fraction))
        train, val = train.subset(perm[n_val:].sort().values), train.subset(perm[:n_val].sort().values)
    if cfg.subset is not None:
        if cfg.subset < 2:
            raise ValueError(f"--subset must be at least 2, got {cfg.subset}")
        train = train.subset(range(min(cfg.subset, len(train))))
        val = val.subset(range(min(max(cfg.subset // 4, 2), len(val))))
        test = test.subset(range(min(max(cfg.subset // 4, 2), len(test)))) if test is not None else None
    crop = cfg.input_size or DEFAULT_CROP
    train.configure(scale, train=True, crop=crop, flips=bool(cfg.hflip))
    for ds in (val, test):
        if ds is None:
            continue
        ds.configure(scale, train=False)
        if cfg.eval_batch_size > 1 and not _same_size(ds):
            raise ValueError("the evaluation images have different sizes and cannot be batched; pass "
                             "--eval-batch-size 1")  # fmt: skip
    info = SRDataInfo(name, 0, [], 3, (crop, crop), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), scale=scale)
    return DataBundle(train, val, test, info, in_memory=isinstance(train, HRArrayDataset))


# ------------------------------------------------------------------------------------------------ task
class SuperResolutionTask:
    """L1 loss on RGB; val PSNR-Y selects the best checkpoint; the bicubic baseline is reported alongside."""

    name = "super_resolution"
    select_metric = "psnr"
    select_mode = "max"

    def __init__(self, label_smoothing: float = 0.0, **_: Any) -> None:
        if label_smoothing:
            raise ValueError("--label-smoothing applies to classification only")
        self.scale = 2

    @staticmethod
    def dataset_defaults(dataset: str) -> tuple[str, dict[str, Any]]:
        name = canonical_sr_dataset(dataset)
        return name, dict(SR_DATASETS[name])

    def build_datasets(self, cfg: Any) -> DataBundle:
        return build_super_resolution_datasets(cfg)

    def build_model(self, model_name: str, info: DataInfo, model_args: dict[str, Any]) -> nn.Module:
        from wavemixer.factory import create_model

        scale = model_scale(model_name, model_args)
        if isinstance(info, SRDataInfo) and scale != info.scale:
            raise ValueError(f"the model upscales x{scale} but the data were prepared for x{info.scale}")
        return create_model(model_name, **model_args)

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.l1_loss(outputs.float(), targets.float())

    def make_metrics(self, info: DataInfo, device: torch.device) -> Any:
        from torchmetrics import MetricCollection
        from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

        self.scale = int(getattr(info, "scale", self.scale))

        def pair() -> MetricCollection:
            return MetricCollection({
                "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
                "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
            })  # fmt: skip

        return nn.ModuleDict({"model": pair(), "bicubic": pair()}).to(device)

    def _prepare(self, img: Tensor) -> Tensor:
        y = rgb_to_y(_quantize(img.float()))
        b = self.scale
        return y[..., b:-b, b:-b] if min(y.shape[-2:]) > 2 * b else y

    def update_metrics(self, metrics: Any, outputs: Tensor, targets: Tensor) -> None:
        if outputs.shape != targets.shape:
            raise ValueError(f"model output {tuple(outputs.shape)} and HR target {tuple(targets.shape)} differ")
        hr = self._prepare(targets)
        metrics["model"].update(self._prepare(outputs), hr)
        bic = bicubic_upscale(bicubic_downscale(targets.float(), self.scale), self.scale)
        metrics["bicubic"].update(self._prepare(bic), hr)

    def compute_metrics(self, metrics: Any) -> dict[str, float]:
        """``psnr``/``ssim`` of the model and ``bicubic_psnr``/``bicubic_ssim`` of the baseline (Y, border crop)."""
        out: dict[str, float] = {}
        for who, prefix in (("model", ""), ("bicubic", "bicubic_")):
            for k, v in metrics[who].compute().items():
                out[prefix + k] = float(v)
        return out

    def preprocessing(self, info: DataInfo) -> dict[str, Any]:
        return info.preprocessing()


# --------------------------------------------------------------------------------------------- predict
def psnr_y(pred: Tensor, target: Tensor, scale: int) -> float:
    """PSNR (dB) of one image pair by the protocol (8-bit rounding, BT.601 Y, border crop = scale)."""
    task = SuperResolutionTask()
    task.scale = scale
    mse = float((task._prepare(pred) - task._prepare(target)).pow(2).mean())
    return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def _label(img: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    draw.rectangle([0, 0, 8 + 6 * len(text), 14], fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(im)


def _to_uint8(x: Tensor) -> np.ndarray:
    return _quantize(x.float())[0].mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def predict_super_resolution(
    model: nn.Module,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    scale: int | None = None,
    from_hr: bool = False,
    device: str | torch.device = "cpu",
    amp: str = "none",
) -> list[dict[str, Any]]:
    """Upscale images; write ``<name>_x<scale>.png`` and a side-by-side ``<name>_compare.png``.

    With ``from_hr`` the inputs are ground-truth HR images: each is mod-cropped, downscaled by the protocol,
    upscaled by bicubic and by the model, and the comparison shows bicubic | model | ground truth with the
    PSNR-Y of both (returned too). Otherwise the inputs are LR images and the comparison is bicubic | model.
    """
    from contextlib import nullcontext

    from PIL import Image

    s = int(scale or getattr(model, "scale", 2))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().to(device)
    records = []
    for src in inputs:
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"input image {path} does not exist")
        img = load_image(path, "RGB", full_range=False).float().div(255.0)[None]
        hr = mod_crop(img, s) if from_hr else None
        lr = bicubic_downscale(hr, s) if hr is not None else img
        ctx = torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if amp == "bf16" else nullcontext()
        with ctx:
            sr = model(lr.to(device)).float().cpu()
        bic = bicubic_upscale(lr, s)
        rec: dict[str, Any] = dict(image=str(path), output=str(out / f"{path.stem}_x{s}.png"),
                                   compare=str(out / f"{path.stem}_compare.png"))  # fmt: skip
        Image.fromarray(_to_uint8(sr)).save(rec["output"])
        panels = [_label(_to_uint8(bic), "bicubic"), _label(_to_uint8(sr), "WaveMix")]
        if hr is not None:
            rec.update(psnr=round(psnr_y(sr, hr, s), 3), bicubic_psnr=round(psnr_y(bic, hr, s), 3))
            panels = [
                _label(_to_uint8(bic), f"bicubic {rec['bicubic_psnr']:.2f} dB"),
                _label(_to_uint8(sr), f"WaveMix {rec['psnr']:.2f} dB"),
                _label(_to_uint8(hr), "ground truth"),
            ]
        gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
        row = [panels[0]]
        for p in panels[1:]:
            row += [gap, p]
        Image.fromarray(np.concatenate(row, axis=1)).save(rec["compare"])
        records.append(rec)
    return records
