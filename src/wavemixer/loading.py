"""Loading trained models and their weights: the one reader of every format the project writes.

``load_model`` gives a model with what prediction needs (preprocessing, labels, the task it was trained
for) from a run folder, a saved model folder or packaged weights; ``read_state_dict`` gives bare weights
from any of those, a training checkpoint (its EMA weights when it has them) or a ``.safetensors`` file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .files import describe_load_error

__all__ = ["LoadedModel", "load_encoder_weights", "load_model", "read_state_dict"]


@dataclass
class LoadedModel:
    """A model ready for ``eval``/``predict``, with the preprocessing and labels it was trained with and where it came
    from (``run_dir`` when it is a run's)."""

    model: nn.Module
    preprocessing: dict[str, Any]
    labels: list[str]
    name: str
    source: str
    run_dir: Path | None = None

    @property
    def task(self) -> str:
        """The task the model was trained for: the one its training recorded, else its model class's kind
        (``classification`` when the folder says neither)."""
        config = getattr(self.model, "pretrained_config", None) or {}
        return (config.get("metadata") or {}).get("task") or config.get("task") or "classification"

    @property
    def color_mode(self) -> str:
        """``L`` or ``RGB``: how input images are decoded for this model."""
        return self.preprocessing.get("color_mode") or ("L" if self.preprocessing["input_size"][0] == 1 else "RGB")


def weights_folder(path: Path) -> Path:
    """The saved model of ``path``: a run folder's ``best/``, or ``path`` itself (a saved model folder). A run
    folder without ``best/`` (one restored from its record keeps no weights) is refused in one line."""
    if (path / "best" / "config.json").is_file():
        return path / "best"
    if (path / "results.json").is_file() and not (path / "config.json").is_file():
        best = path / "best"
        if best.exists() or best.is_symlink():  # there, but not a model folder: say what it is instead
            what = f"{best / 'config.json'} is not a file" if best.is_dir() else f"{best} is not a folder"
            raise FileNotFoundError(f"{path} is a training run folder whose saved model is damaged ({what})")
        raise FileNotFoundError(
            f"{path} is a training run folder without its weights ({best} is missing; a run restored "
            "from its record keeps none): give a run folder with best/, or a saved model folder"
        )
    return path


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
        folder = weights_folder(path)
        run_dir = path if folder != path else None
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
    from wavemixer.checks import MAX_INPUT_SIDE
    from wavemixer.hub import check_input_size

    where = f"{folder / 'config.json'}: preprocessing"
    if not isinstance(pre, dict):
        raise ValueError(f"{where} must be a mapping with mean, std and input_size, got {pre!r}")
    missing = [k for k in ("mean", "std", *(() if dense else ("input_size",))) if k not in pre]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)} (needs mean, std and input_size [C, H, W])")
    if not dense:
        size = pre["input_size"]
        check_input_size(size, where)
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


def load_encoder_weights(model: nn.Module, source: str | Path) -> list[str]:
    """Initialise ``model``'s encoder from a classification checkpoint; returns the loaded keys.

    ``source``: a ``save_pretrained`` folder (e.g. a run's ``best/``), a training run folder, a
    ``checkpoint.pt``, a ``.safetensors`` file or a registry name with packaged weights. Only ``stem.*`` and
    ``blocks.*`` are taken, so the classifier head is dropped and the segmentation head stays random.
    """
    state = read_state_dict(Path(source)) if Path(source).exists() else None
    if state is None:
        from wavemixer.hub import from_pretrained

        state = from_pretrained(str(source)).state_dict()
    loader = getattr(model, "load_encoder_state_dict", None)
    if loader is None:
        raise ValueError(f"--init-from initialises an encoder, but {type(model).__name__} has none to load")
    return loader(state)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The weights of a saved model folder, a run folder (its ``best/``, else ``last/``, else its
    ``checkpoint.pt``), a training checkpoint (its EMA weights when it kept them) or a ``.safetensors`` file."""
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
    except OSError:  # unreadable (permissions, I/O): the file may be sound, so the OS's reason is the message
        raise
    except Exception as exc:  # torn or foreign files raise many kinds of errors
        raise ValueError(f"--init-from {path} is not a readable checkpoint ({describe_load_error(path, exc)})") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state.get("ema") or state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"--init-from {path} does not hold a state dict")
    return clean_state_dict(state)
