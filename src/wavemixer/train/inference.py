"""Loading a trained model with its preprocessing, and running it on data sets or image files."""

from __future__ import annotations

import math
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
    dense = cfg.get("task", "classification") != "classification"  # dense tasks take any size, their own way
    _check_preprocessing(pre, folder, dense=dense, channels=getattr(model, "in_chans", None))
    if not dense:
        in_chans = getattr(model, "in_chans", None)
        if in_chans is not None and in_chans != pre["input_size"][0]:
            raise ValueError(
                f"{folder / 'config.json'}: preprocessing input_size {pre['input_size']} gives {pre['input_size'][0]}"
                f"-channel images but the model takes {in_chans}"
            )
        if len(labels) != n_classes:
            raise ValueError(
                f"{folder / 'config.json'} lists {len(labels)} labels but the model predicts {n_classes} classes; "
                "fix its 'labels' (one per class)"
            )
    return LoadedModel(model, dict(pre), list(labels), name, str(folder), run_dir)


def _check_preprocessing(pre: Any, folder: Path, *, dense: bool = False, channels: int | None = None) -> None:
    """What prediction needs from a stored preprocessing, checked before any image is read: mean and std
    (finite; std > 0, or every output is NaN), input_size [C, H, W] within bounds, and the training images'
    statistics when stored. Dense models take any size and need only mean and std (``channels`` values, or
    one for all, when the model's channel count is known)."""
    from wavemixer.validation import MAX_INPUT_SIDE

    where = f"{folder / 'config.json'}: preprocessing"
    if not isinstance(pre, dict):
        raise ValueError(f"{where} must be a mapping with mean, std and input_size, got {pre!r}")
    missing = [k for k in ("mean", "std", *(() if dense else ("input_size",))) if k not in pre]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)} (needs mean, std and input_size [C, H, W])")
    if not dense:
        size = pre["input_size"]
        if not (isinstance(size, list) and len(size) == 3 and all(_is_int(v) and v >= 1 for v in size)):
            raise ValueError(f"{where} input_size must be [channels, height, width] of positive integers, got {size!r}")
        if size[0] not in (1, 3) or max(size[1:]) > MAX_INPUT_SIDE:
            raise ValueError(
                f"{where} input_size {size} is out of bounds: 1 or 3 channels (grayscale or RGB images) and sides of "
                f"at most {MAX_INPUT_SIDE} pixels"
            )
        mode = pre.get("color_mode")
        if mode is not None and mode != ("L" if size[0] == 1 else "RGB"):
            raise ValueError(f"{where} color_mode {mode!r} does not match {size[0]}-channel input_size {size}")
    channels = channels if dense else pre["input_size"][0]
    for key in ("mean", "std"):
        values = pre[key]
        if not (isinstance(values, list) and values and all(_is_number(v) for v in values)):
            raise ValueError(f"{where} {key} must be a list of finite numbers, got {values!r}")
        if channels is not None and len(values) not in (1, channels):
            allowed = "1" if channels == 1 else f"1 or {channels}"
            raise ValueError(f"{where} {key} has {len(values)} values for {channels}-channel images; give {allowed}")
    if not all(v > 0 for v in pre["std"]):
        raise ValueError(f"{where} std must be > 0 for every channel (it divides the image), got {pre['std']!r}")
    stats = pre.get("input_stats")
    if stats is not None:
        ok = isinstance(stats, dict) and all(
            isinstance(stats.get(k), list) and stats[k] and all(_is_number(v) for v in stats[k])
            for k in ("mu", "sigma")
        )
        ok = ok and all(v > 0 for v in stats["sigma"]) and _is_number(stats.get("z_threshold"))
        if not ok:
            raise ValueError(
                f"{where} input_stats must hold mu and sigma (finite; sigma > 0) and a finite z_threshold, "
                f"got {stats!r:.200}"
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def find_images(inputs: list[str]) -> list[Path]:
    """Image files among ``inputs`` (files, or folders searched recursively), in a stable order; a file given
    twice (or also inside a given folder) is listed once."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and not p.is_dir())
            if not found:
                raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in folder {path}")
            files += found
        elif path.exists():
            files.append(path)  # a named pipe or device is refused, with the other unreadable files, when read
        else:
            raise FileNotFoundError(f"input {path} does not exist")
    if not files:
        raise ValueError("no input images given")
    seen: set[str] = set()
    unique = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


#: input batches are cut to about this many bytes, whatever --batch-size asks (large input sizes)
_BATCH_BYTES = 2**30


@torch.no_grad()
def predict_files(
    loaded: LoadedModel,
    files: list[Path],
    *,
    batch_size: int = 256,
    top_k: int = 5,
    device: str | torch.device = "cpu",
    skipped: list[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Label, probability and top-k for each image, with the checkpoint's own preprocessing.

    ``flag`` warns of answers not to trust: an input whose statistics lie far from the training images'
    (``input_z``: the largest z-score of its per-channel mean/std against those stored at training time), or
    a top-1 probability under :data:`LOW_CONFIDENCE`. Unreadable files raise one ``ValueError`` naming them
    all, before anything is returned; given a ``skipped`` list, they are left out and listed there instead
    as ``(file, reason)``.
    """
    from .datasets import UnreadableImage, list_unreadable

    model = loaded.model.to(device).eval()
    tf = loaded.transform()
    size = tuple(loaded.preprocessing["input_size"][1:])
    stats = loaded.preprocessing.get("input_stats")
    k = min(top_k, len(loaded.labels))
    per_image = 4 * math.prod(loaded.preprocessing["input_size"])
    batch_size = max(1, min(batch_size, _BATCH_BYTES // per_image))
    rows: list[dict[str, Any]] = []
    unreadable: list[tuple[str, str]] = []
    for start in range(0, len(files), batch_size):
        chunk, images = [], []
        for f in files[start : start + batch_size]:
            try:
                images.append(load_image(f, loaded.color_mode))
                chunk.append(f)
            except UnreadableImage as exc:
                unreadable.append((os.fspath(f), exc.reason))
        if not chunk or (unreadable and skipped is None):
            continue  # only reading on, to name every unreadable file at once
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
    if unreadable and skipped is None:
        raise ValueError(
            f"{len(unreadable)} of {len(files):,} images cannot be read: {list_unreadable(unreadable)}; fix or "
            "remove them, or pass --skip-corrupt to predict the others"
        )
    if skipped is not None:
        skipped += unreadable
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
