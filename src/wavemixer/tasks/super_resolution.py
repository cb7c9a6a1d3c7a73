"""Single-image super-resolution: HR images, bicubic LR made from them, L1 loss, PSNR/SSIM on Y.

Protocol (the usual bicubic-degradation benchmark, as for DIV2K/Set5 tables); the data side (HR crops, LR
made by antialiased bicubic downscaling rounded to 8 bits) is in :mod:`wavemixer.data.hr_images`.

* **Metrics**: PSNR and SSIM (torchmetrics; SSIM with the 11×11 Gaussian window, σ = 1.5) on the **Y channel**
  of ITU-R BT.601 (Y = 16 + 65.481 R + 128.553 G + 24.966 B on a 0..255 scale, as MATLAB ``rgb2ycbcr``),
  after cropping ``scale`` pixels from every border, computed per image and averaged. Model outputs are
  clamped and rounded to 8-bit levels first. The **bicubic baseline** (bicubic upsampling of the same LR,
  ``align_corners=False``) is measured in the same pass on the same images (``bicubic_psnr``,
  ``bicubic_ssim``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavemixer.data.bundle import DataBundle, DataInfo
from wavemixer.data.hr_images import (
    DEFAULT_CROP,
    HRArrayDataset,
    bicubic_downscale,
    bicubic_upscale,
    load_hr_splits,
    mod_crop,
    quantize,
    rgb_to_y,
    same_size,
)
from wavemixer.data.images import load_image, readable_images
from wavemixer.files import atomic_save_png

from .base import PredictOptions, Task, image_outputs

if TYPE_CHECKING:
    from wavemixer.loading import LoadedModel
    from wavemixer.registry import ModelSpec
    from wavemixer.train.config import TrainConfig

__all__ = ["SR_DATASETS", "SRDataInfo", "SuperResolutionTask", "model_scale", "predict_super_resolution", "psnr_y"]

SR_DATASETS: dict[str, dict[str, Any]] = {
    "hrfolder": dict(model="wavemix_sr_64_4_x2_residual", epochs=50, crop_padding=0, hflip=True, trivial_augment=False),
    "div2k": dict(model="wavemix_sr_144_4_x2", epochs=100, crop_padding=0, hflip=True, trivial_augment=False),
    "camvid": dict(model="wavemix_sr_64_4_x2_residual", epochs=30, crop_padding=0, hflip=True, trivial_augment=False),
}


def model_scale(model_name: str | None, model_args: dict[str, Any]) -> int:
    """The upscaling factor of a model: ``model_args['scale']``, else its registry default."""
    if "scale" in model_args:
        scale = model_args["scale"]
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 2 or scale & (scale - 1):
            raise ValueError(f"--model-arg scale must be a power of two >= 2 (2, 4, 8), got {scale!r}")
        return scale
    from wavemixer.registry import get_spec

    spec = get_spec(model_name, task="super_resolution")  # type: ignore[arg-type]
    return int(spec.kwargs.get("scale", 2))


@dataclass
class SRDataInfo(DataInfo):
    """:class:`DataInfo` plus the upscaling factor the data make their low-resolution inputs for."""

    scale: int = 2


class SuperResolutionTask(Task):
    """L1 loss on RGB; val PSNR-Y selects the best checkpoint; the bicubic baseline is reported alongside."""

    name = "super_resolution"
    select_metric = "psnr"
    report_metrics = ("psnr",)
    datasets = SR_DATASETS
    aliases = {"folder": "hrfolder", "imagefolder": "hrfolder", "hr_folder": "hrfolder", "camvid_frames": "camvid"}
    dataset_hint = " (hrfolder: any folder of high-resolution images)"
    max_eval_batch = 8  # dense outputs are large
    predicts_images = True

    def __init__(self, cfg: TrainConfig | None = None) -> None:
        super().__init__(cfg)
        self.scale = 2

    def check_config(self) -> None:
        super().check_config()
        if self.cfg.label_smoothing:
            raise ValueError("--label-smoothing applies to classification only")
        if self.cfg.trivial_augment:
            raise ValueError("--trivial-augment is a classification augmentation; super-resolution uses random HR "
                             "crops (--input-size) and flips (--hflip)")  # fmt: skip

    # ------------------------------------------------------------------------------------------------ data
    def load_data(self) -> DataBundle:
        """Train/val/test (LR, HR) pairs; the scale comes from the model (``--model`` / ``--model-arg scale=4``)."""
        cfg = self.cfg
        name = self.canonical_dataset(cfg.dataset)
        scale = model_scale(cfg.model, cfg.model_args)
        root = Path(cfg.data_dir).expanduser() if cfg.data_dir else None
        splits = load_hr_splits(name, root)
        train, val, test = self.split(splits["train"], splits.get("val"), splits.get("test"))
        crop = cfg.input_size or DEFAULT_CROP
        train.configure(scale, train=True, crop=crop, flips=bool(cfg.hflip))
        for ds in (val, test):
            if ds is None:
                continue
            ds.configure(scale, train=False)
            if cfg.eval_batch_size > 1 and not same_size(ds):
                raise ValueError("the evaluation images have different sizes and cannot be batched; pass "
                                 "--eval-batch-size 1")  # fmt: skip
        info = SRDataInfo(name, 0, [], 3, (crop, crop), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), scale=scale)
        return DataBundle(train, val, test, info, in_memory=isinstance(train, HRArrayDataset))

    # ----------------------------------------------------------------------------------------------- model
    def model_arguments(self, spec: ModelSpec, info: DataInfo, model_args: dict[str, Any]) -> dict[str, Any]:
        scale = int(model_args.get("scale", spec.kwargs.get("scale", 2)))
        if isinstance(info, SRDataInfo) and scale != info.scale:
            raise ValueError(f"the model upscales x{scale} but the data were prepared for x{info.scale}")
        return dict(model_args)

    def peer_arguments(self, info: DataInfo) -> dict[str, Any]:
        raise ValueError("no comparison peers are defined for super-resolution; train a registry model")

    def model_settings(self, model: nn.Module) -> dict[str, Any]:
        return {"scale": int(model.scale)}  # type: ignore[arg-type]

    # -------------------------------------------------------------------------------------------- training
    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.l1_loss(outputs.float(), targets.float())

    # --------------------------------------------------------------------------------------------- metrics
    def make_metrics(self, info: DataInfo, device: torch.device, *, detailed: bool = False) -> Any:
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
        y = rgb_to_y(quantize(img.float()))
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

    # ------------------------------------------------------------------------------ saving and evaluating
    def preprocessing(self, info: DataInfo) -> dict[str, Any]:
        return {
            "task": "super_resolution", "scale": getattr(info, "scale", 2), "mean": [0.0] * info.in_chans,
            "std": [1.0] * info.in_chans, "color_mode": "RGB", "value_range": [0.0, 1.0],
            "lr_protocol": "bicubic downscale, antialias (Keys a=-0.5), 8-bit rounded",
            "metrics": "PSNR/SSIM on BT.601 Y, border crop = scale",
        }  # fmt: skip

    def eval_summary(self, loaded: LoadedModel, result: dict[str, Any]) -> list[str]:
        s = loaded.model.scale
        return [
            f"{loaded.name} x{s} on {result['dataset']} {result['split']} ({result['images']:,} images), Y channel, "
            f"border {s}: PSNR {result['psnr']:.3f} dB  SSIM {result['ssim']:.4f}  |  bicubic "
            f"PSNR {result['bicubic_psnr']:.3f} dB  SSIM {result['bicubic_ssim']:.4f}"
        ]

    # ------------------------------------------------------------------------------------------ predicting
    def image_names(self, loaded: LoadedModel, path: Path) -> tuple[str, ...]:
        return tuple(super_resolution_image_names(path, int(getattr(loaded.model, "scale", 2))).values())

    def predict(self, loaded: LoadedModel, files: list[Path], options: PredictOptions) -> list[dict[str, Any]]:
        """``<name>_x<scale>.png`` and a side-by-side ``<name>_compare.png`` per image."""
        files = readable_images(files, options.skipped)
        options.note_skipped()
        return predict_super_resolution(loaded.model, files, options.out_dir or Path("predictions"),
                                        device=options.device, from_hr=options.from_hr)  # fmt: skip


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
    return quantize(x.float())[0].mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def super_resolution_image_names(path: Path, scale: int) -> dict[str, str]:
    """What :func:`predict_super_resolution` writes for the input ``path``: the upscaled image and the
    side-by-side comparison."""
    return dict(output=f"{path.stem}_x{scale}.png", compare=f"{path.stem}_compare.png")


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
    image_outputs([Path(p) for p in inputs], lambda p: tuple(super_resolution_image_names(p, s).values()))
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
        names = super_resolution_image_names(path, s)
        rec: dict[str, Any] = dict(image=str(path), output=str(out / names["output"]),
                                   compare=str(out / names["compare"]))  # fmt: skip
        atomic_save_png(Image.fromarray(_to_uint8(sr)), rec["output"])
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
        atomic_save_png(Image.fromarray(np.concatenate(row, axis=1)), rec["compare"])
        records.append(rec)
    return records
