"""Loading a trained model with its preprocessing, and running it on data sets or image files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .datasets import IMAGE_EXTENSIONS, Preprocess, image_features, load_image

#: predictions below this top-1 probability are flagged "low confidence"
LOW_CONFIDENCE = 0.5

__all__ = ["LoadedModel", "find_images", "load_model", "predict_files"]


@dataclass
class LoadedModel:
    model: nn.Module
    preprocessing: dict[str, Any]
    labels: list[str]
    name: str
    source: str
    run_dir: Path | None = None

    def transform(self) -> Preprocess:
        p = self.preprocessing
        return Preprocess(p["mean"], p["std"], p["input_size"][1:])

    @property
    def color_mode(self) -> str:
        return self.preprocessing.get("color_mode") or ("L" if self.preprocessing["input_size"][0] == 1 else "RGB")


def load_model(
    source: str | None, *, model_name: str | None = None, pretrained: bool = False, device: str | torch.device = "cpu"
) -> LoadedModel:
    """A run folder (its ``best/``), a saved model folder, or ``--model NAME --pretrained`` (packaged weights).

    Registry defaults stand in for preprocessing or labels that a folder lacks, with a clear error if none.
    """
    from wavemixer.hub import from_pretrained, packaged_weights_dir, spec_preprocessing

    run_dir = None
    if source is None:
        if not model_name:
            raise ValueError("give a checkpoint (a run folder or a saved model folder) or --model NAME --pretrained")
        if not pretrained:
            raise ValueError(
                f"--model {model_name} without --pretrained would predict with random weights; "
                "add --pretrained (see `wavemixer models --pretrained`) or give a checkpoint folder"
            )
        if packaged_weights_dir(model_name) is None:
            from wavemixer.registry import get_spec

            get_spec(model_name)  # unknown name -> a clear error listing names
            raise ValueError(f"no pretrained weights ship with {model_name!r}; see `wavemixer models --pretrained`")
        folder = packaged_weights_dir(model_name)
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint {path} not found; give a run folder or a saved model folder")
        if path.is_file():
            raise ValueError(
                f"{path} is a file; give the folder that holds config.json and model.safetensors "
                "(or a training run folder)"
            )
        if (path / "best" / "config.json").is_file():
            run_dir, folder = path, path / "best"
        else:
            folder = path
    model = from_pretrained(folder, map_location=device)  # type: ignore[arg-type]
    cfg = model.pretrained_config
    name = cfg.get("model_name") or type(model).__name__
    pre = cfg.get("preprocessing")
    if not pre:
        try:
            pre = spec_preprocessing(name)
        except ValueError:
            raise ValueError(
                f"{folder} stores no preprocessing (mean/std/input size) and {name!r} is not a "
                "registry name to take defaults from; re-save it with preprocessing"
            ) from None
    n_classes = getattr(model, "num_classes", 0)
    labels = cfg.get("labels") or [str(i) for i in range(n_classes)]
    if cfg.get("task", "classification") == "classification":  # dense tasks take any size, their own way
        _check_preprocessing(pre, folder)
        if len(labels) != n_classes:
            raise ValueError(
                f"{folder / 'config.json'} lists {len(labels)} labels but the model predicts {n_classes} classes; "
                "fix its 'labels' (one per class)"
            )
    return LoadedModel(model, dict(pre), list(labels), name, str(folder), run_dir)


def _check_preprocessing(pre: Any, folder: Path) -> None:
    """What prediction needs from a stored preprocessing: mean, std and input_size [C, H, W]."""
    where = f"{folder / 'config.json'}: preprocessing"
    if not isinstance(pre, dict):
        raise ValueError(f"{where} must be a mapping with mean, std and input_size, got {pre!r}")
    missing = [k for k in ("mean", "std", "input_size") if k not in pre]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)} (needs mean, std and input_size [C, H, W])")
    size = pre["input_size"]
    if not (isinstance(size, list) and len(size) == 3 and all(isinstance(v, int) and v >= 1 for v in size)):
        raise ValueError(f"{where} input_size must be [channels, height, width] of positive integers, got {size!r}")


def find_images(inputs: list[str]) -> list[Path]:
    """Image files among ``inputs`` (files, or folders searched recursively), in a stable order."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in folder {path}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input {path} does not exist")
    if not files:
        raise ValueError("no input images given")
    return files


@torch.no_grad()
def predict_files(
    loaded: LoadedModel, files: list[Path], *, batch_size: int = 256, top_k: int = 5, device: str | torch.device = "cpu"
) -> list[dict[str, Any]]:
    """Label, probability and top-k for each image, with the checkpoint's own preprocessing.

    ``flag`` warns of answers not to trust: an input whose statistics lie far from the training images'
    (``input_z``: the largest z-score of its per-channel mean/std against those stored at training time), or
    a top-1 probability under :data:`LOW_CONFIDENCE`.
    """
    model = loaded.model.to(device).eval()
    tf = loaded.transform()
    size = tuple(loaded.preprocessing["input_size"][1:])
    stats = loaded.preprocessing.get("input_stats")
    k = min(top_k, len(loaded.labels))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        images = [load_image(f, loaded.color_mode) for f in chunk]
        x = torch.stack([tf(img) for img in images]).to(device)
        probs = model(x).float().softmax(-1).cpu()
        top_p, top_i = probs.topk(k, dim=-1)
        for f, img, p, i in zip(chunk, images, top_p.tolist(), top_i.tolist()):
            z = input_z(img, size, stats)
            rows.append(
                dict(
                    file=os.fspath(f),
                    label=loaded.labels[i[0]],
                    index=i[0],
                    probability=p[0],
                    input_z=z,
                    flag=_flag(z, p[0], stats),
                    top_k=[dict(label=loaded.labels[j], probability=q) for j, q in zip(i, p)],
                )
            )
    return rows


def input_z(img: torch.Tensor, size: tuple[int, ...], stats: dict[str, Any] | None) -> float | None:
    """How far the image's statistics lie from the training images' (largest |z|), or None if not stored."""
    if not stats:
        return None
    if tuple(img.shape[-2:]) != tuple(size):
        from torchvision.transforms.v2 import functional as TF

        img = TF.resize(img, list(size), antialias=True)
    mu, sigma = torch.tensor(stats["mu"], dtype=torch.float64), torch.tensor(stats["sigma"], dtype=torch.float64)
    return round(float(((image_features(img) - mu) / sigma).abs().max()), 2)


def _flag(z: float | None, probability: float, stats: dict[str, Any] | None) -> str:
    if z is not None and stats and z > stats["z_threshold"]:
        return f"unlike the training images (input z {z:g} > {stats['z_threshold']:g})"
    if probability < LOW_CONFIDENCE:
        return f"low confidence (p < {LOW_CONFIDENCE:g})"
    return ""
