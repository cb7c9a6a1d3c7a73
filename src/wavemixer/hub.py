"""Save and load models as a folder: ``config.json`` + ``model.safetensors`` (atomic writes)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .files import atomic_folder, atomic_write, refuse_overwrite, strict_json
from .registry import MODEL_CLASSES, ModelSpec, get_spec

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "atomic_write",
    "clean_state_dict",
    "from_pretrained",
    "load_config",
    "load_packaged_weights",
    "packaged_weights_dir",
    "save_pretrained",
    "unwrap_model",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "wavemixer"
_TASK_OF_CLASS = {cls.__name__: task for task, cls in MODEL_CLASSES.items()}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside DDP/DataParallel (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        else:
            return model


def clean_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop ``module.``/``_orig_mod.`` prefixes that wrappers leave in keys."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def _json_ready(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


def save_pretrained(
    model: nn.Module,
    folder: str | os.PathLike,
    *,
    model_name: str | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    labels: list[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write ``folder/config.json`` and ``folder/model.safetensors`` (fp32/bf16 as the weights are).

    ``preprocessing`` (mean, std, input size ...) and ``labels`` travel with the weights so that
    prediction uses exactly what training used. Both files appear together or not at all; an existing
    model in ``folder`` is replaced only with ``force=True``. Other files in ``folder`` are left alone.
    """
    from safetensors.torch import save_file

    model = unwrap_model(model)
    if type(model).__name__ not in _TASK_OF_CLASS or not hasattr(model, "config"):
        raise TypeError(f"save_pretrained takes a wavemixer model, got {type(model).__name__}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    refuse_overwrite([folder / CONFIG_NAME, folder / WEIGHTS_NAME], force=force)
    config = {
        "format": FORMAT,
        "format_version": 1,
        "architecture": type(model).__name__,
        "task": _TASK_OF_CLASS[type(model).__name__],
        "model_name": model_name,
        "config": _json_ready(model.config),
        "preprocessing": _json_ready(dict(preprocessing)) if preprocessing else None,
        "labels": list(labels) if labels is not None else None,
        "metadata": _json_ready(dict(metadata)) if metadata else None,
    }
    try:  # before anything is written: a config that is not JSON must leave no files behind
        config_text = strict_json(config)  # a non-finite metric in the metadata becomes null
    except (TypeError, ValueError) as exc:
        raise ValueError(f"save_pretrained: the config, labels or metadata are not JSON-serialisable ({exc})") from exc
    state = {k: v.detach().contiguous().cpu() for k, v in clean_state_dict(model.state_dict()).items()}
    with atomic_folder(folder, owned=(CONFIG_NAME, WEIGHTS_NAME)) as tmp:
        save_file(state, tmp / WEIGHTS_NAME, metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(config_text)
    return folder


def load_config(folder: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``config.json`` of a saved model folder."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a saved wavemixer model is a folder with {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); the model folder is corrupt") from exc
    known = isinstance(config, dict) and config.get("format") == FORMAT
    if not known or config.get("architecture") not in _TASK_OF_CLASS:
        raise ValueError(f"{path} is not a wavemixer model config (missing or unknown 'format'/'architecture')")
    return config


def _resolve_hub(name: str) -> Path:
    repo = name[len("hf-hub:") :]
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ImportError("loading 'hf-hub:' models needs `pip install huggingface_hub`") from exc
    return Path(snapshot_download(repo, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME]))


def _read_weights(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the model folder has a config but no weights")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file ({exc}); the checkpoint is corrupt") from exc


def from_pretrained(name_or_path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a model saved by :func:`save_pretrained` (a folder), ``hf-hub:<repo>``, or a registry name with
    weights shipped in the package. The returned model is in eval mode and carries ``pretrained_config``
    (the parsed config.json, including preprocessing and labels)."""
    text = os.fspath(name_or_path)
    if text.startswith("hf-hub:"):
        folder = _resolve_hub(text)
    elif Path(text).is_dir():
        folder = Path(text)
    elif packaged_weights_dir(text) is not None:
        folder = packaged_weights_dir(text)  # type: ignore[assignment]
    else:
        raise FileNotFoundError(
            f"{text!r} is neither a model folder ({CONFIG_NAME} + {WEIGHTS_NAME}), 'hf-hub:<repo>', nor a "
            "registry name with packaged weights (see `wavemixer models --pretrained`)"
        )
    config = load_config(folder)
    cls = MODEL_CLASSES[config["task"]]
    try:
        model = cls(**config["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{Path(folder) / CONFIG_NAME} has an invalid model config: {exc}") from exc
    state = _read_weights(Path(folder) / WEIGHTS_NAME)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"the weights in {folder} do not fit the model in its {CONFIG_NAME}: {exc}") from exc
    model.pretrained_config = config
    return model.to(map_location).eval()


def packaged_weights_dir(name: str) -> Path | None:
    """Folder of weights shipped inside the package for a registry name, if any."""
    if "/" in name or os.sep in name:
        return None
    root = resources.files("wavemixer") / "weights" / name
    path = Path(str(root))
    return path if (path / CONFIG_NAME).is_file() else None


def load_packaged_weights(spec: ModelSpec, **overrides: Any) -> nn.Module:
    """Registry model with its packaged weights; ``num_classes`` may be overridden (new random head)."""
    folder = packaged_weights_dir(spec.name)
    if folder is None:
        raise ValueError(
            f"no pretrained weights ship with {spec.name!r}; variants with weights: "
            f"{', '.join(n for n in _names_with_weights()) or 'none'}"
        )
    model = from_pretrained(folder)
    if not overrides:
        return model
    allowed = {"num_classes", "dropout", "drop_rate"}
    if set(overrides) - allowed:
        raise ValueError(f"with pretrained=True only {sorted(allowed)} may be overridden, got {sorted(overrides)}")
    fresh = spec.build(**{**model.config, **overrides})
    state = model.state_dict()
    if "num_classes" in overrides and overrides["num_classes"] != model.config.get("num_classes"):
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    fresh.load_state_dict(state, strict=False)
    fresh.pretrained_config = model.pretrained_config
    return fresh.eval()


def _names_with_weights() -> list[str]:
    from .registry import list_models

    return [n for n in list_models() if packaged_weights_dir(n) is not None]


def spec_preprocessing(name: str) -> dict[str, Any]:
    """Default preprocessing of a registry variant (mean/std/input size)."""
    spec = get_spec(name)
    return dict(mean=list(spec.mean), std=list(spec.std), input_size=list(spec.input_size))
