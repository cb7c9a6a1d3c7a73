"""Save and load models as a folder: ``config.json`` + ``model.safetensors`` (atomic writes); the Hugging Face Hub.

One folder layout serves three loaders: :func:`from_pretrained` (``format``/``task``/``config``), timm's
``create_model("hf-hub:<repo>")`` / ``("local-dir:<folder>")`` for classifiers (``architecture``, ``model_args``,
``pretrained_cfg``) and ``PyTorchModelHubMixin`` subclasses of the model classes (constructor arguments
at the top level of ``config.json``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .files import atomic_folder, atomic_write, refuse_overwrite, strict_json
from .optional_deps import require
from .registry import MODEL_CLASSES, get_spec, packaged_weights_dir
from .timm_models import attach_pretrained_cfg, folder_pretrained_cfg, hub_config_fields

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "atomic_write",
    "check_input_size",
    "clean_state_dict",
    "from_pretrained",
    "load_config",
    "packaged_weights_dir",
    "push_to_hub",
    "read_safetensors",
    "refuse_replacing_foreign",
    "save_pretrained",
    "state_dict_mismatch",
    "unwrap_model",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "wavemixer"
FORMAT_VERSION = 2  # 2: "architecture" is a timm model name, "model_class" the class (1: the class)
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
    from safetensors.torch import save

    model = unwrap_model(model)
    peer = type(model).__name__ == "PeerModel"
    if (type(model).__name__ not in _TASK_OF_CLASS and not peer) or not hasattr(model, "config"):
        raise TypeError(f"save_pretrained takes a wavemixer model, got {type(model).__name__}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    refuse_overwrite([folder / CONFIG_NAME, folder / WEIGHTS_NAME], force=force, option="force=True")
    if force:
        refuse_replacing_foreign(folder, option="force=True")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "task": model.task if peer else _TASK_OF_CLASS[type(model).__name__],
        "model_name": model_name,
        "config": _json_ready(model.config),
        "preprocessing": _json_ready(dict(preprocessing)) if preprocessing else None,
        "labels": list(labels) if labels is not None else None,
        "metadata": _json_ready(dict(metadata)) if metadata else None,
    }
    if not peer:  # a peer is a timm/torchvision model with a wavemixer wrapper: no timm entry point of ours
        config.update(_json_ready(hub_config_fields(model, config)))  # timm and PyTorchModelHubMixin keys
    try:  # before anything is written: a config that is not JSON must leave no files behind
        config_text = strict_json(config)  # a non-finite metric in the metadata becomes null
    except (TypeError, ValueError) as exc:
        raise ValueError(f"save_pretrained: the config, labels or metadata are not JSON-serialisable ({exc})") from exc
    state = {k: v.detach().contiguous().cpu() for k, v in clean_state_dict(model.state_dict()).items()}
    weights = save(state, metadata={"format": "pt"})  # written by Python: a full disk is an OSError naming the file
    with atomic_folder(folder, owned=(CONFIG_NAME, WEIGHTS_NAME)) as tmp:
        (tmp / WEIGHTS_NAME).write_bytes(weights)
        (tmp / CONFIG_NAME).write_text(config_text)
    return folder


def refuse_replacing_foreign(folder: str | os.PathLike, option: str = "--force") -> None:
    """Raise ``FileExistsError`` when ``folder`` holds a ``config.json`` that is not a wavemixer model's: a force
    to overwrite replaces a model wavemixer wrote, never a file of the user's that shares the name."""
    if (Path(folder) / CONFIG_NAME).is_file():
        try:
            load_config(folder)
        except ValueError:
            raise FileExistsError(
                f"{Path(folder) / CONFIG_NAME} is not a wavemixer model config, so {option} does not replace it: "
                "move it away, or save into another folder"
            ) from None


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
    model_class = config.get("model_class", config.get("architecture")) if known else None
    if model_class == "PeerModel" and config.get("task") in ("classification", "segmentation"):
        return config
    if model_class not in _TASK_OF_CLASS or config.get("task") != _TASK_OF_CLASS[model_class]:
        raise ValueError(f"{path} is not a wavemixer model config (missing or unknown 'format'/'model_class'/'task')")
    _check_config_parts(config, path)
    return config


def check_input_size(size: Any, where: str) -> None:
    """A stored ``input_size`` is ``[channels, height, width]`` of positive integers (``where`` names it)."""
    if not (isinstance(size, list) and len(size) == 3 and all(type(v) is int and v >= 1 for v in size)):
        raise ValueError(f"{where} input_size must be [channels, height, width] of positive integers, got {size!r}")


def _check_config_parts(config: dict[str, Any], path: Path) -> None:
    """The parts every reader takes on trust, checked once here so that a damaged one is named in one line."""
    version = config.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {version!r} is not one this wavemixer reads (1 to {FORMAT_VERSION}); "
            "a newer wavemixer wrote it, or the file is damaged"
        )
    for part in ("config", "preprocessing", "metadata"):
        if config.get(part) is not None and not isinstance(config[part], dict):
            raise ValueError(f"{path}: {part} must be a mapping, got {config[part]!r}")
    size = (config.get("preprocessing") or {}).get("input_size")
    if size is not None:
        check_input_size(size, f"{path}: preprocessing")
    data = (config.get("metadata") or {}).get("data")
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"{path}: metadata data (the training data's settings) must be a mapping, got {data!r}")


def _resolve_hub(
    name: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
) -> Path:
    """Local snapshot of ``hf-hub:<repo>[@revision]`` (config + weights only), through the Hub's cache."""
    repo = name[len("hf-hub:") :]
    if "@" in repo:
        repo, at = repo.split("@", 1)
        if revision is not None and revision != at:
            raise ValueError(f"{name!r} names revision {at!r} but revision={revision!r} was passed; give one")
        revision = at
    if not repo or repo.count("/") != 1:
        raise ValueError(f"{name!r}: expected 'hf-hub:<owner>/<repo>[@revision]'")
    hub = require("huggingface_hub", "loading 'hf-hub:' models")
    return Path(
        hub.snapshot_download(
            repo,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            force_download=force_download,
            local_files_only=local_files_only,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME],
        )
    )


#: bytes per element of the safetensors dtypes
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip
_MAX_HEADER = 100_000_000  # the safetensors library's own limit on the JSON header


def check_safetensors_header(path: Path) -> None:
    """Check a safetensors file's header against the file before anything is mapped or allocated.

    The header is JSON that names each tensor's dtype, shape and byte range. A corrupt or forged one (a
    shape claiming 40 GB in a 1 kB file) must fail here in one line, not inside the loader or the allocator.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or n > min(_MAX_HEADER, size - 8):
            raise ValueError(f"{path} is corrupt: not a safetensors file (header length {n} in a {size:,}-byte file)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is corrupt: not a safetensors file (its header is not JSON: {exc})") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{path} is corrupt: not a safetensors file (its header is not a mapping)")
    data = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, offsets = (
            info.get(k) if isinstance(info, dict) else None for k in ("dtype", "shape", "data_offsets")
        )
        ok = (
            dtype in _DTYPE_BYTES
            and isinstance(shape, list)
            and all(isinstance(d, int) and d >= 0 for d in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
        )
        if not ok:
            raise ValueError(f"{path} is corrupt: the header entry of tensor {name!r} is malformed ({info!r:.120})")
        want = math.prod(shape) * _DTYPE_BYTES[dtype]
        begin, end = offsets
        if not 0 <= begin <= end <= data or end - begin != want:
            raise ValueError(
                f"{path}: the header says tensor {name!r} is {dtype} {shape} ({want:,} bytes at {begin:,}-{end:,}) "
                f"but the file holds {data:,} bytes of data; the file is corrupt or truncated"
            )


def read_safetensors(path: Path) -> dict[str, Tensor]:
    """The tensors of a safetensors file, its header checked first, every floating-point value finite."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the model folder has a config but no weights")
    check_safetensors_header(path)
    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the OS's fault (permissions, I/O), not the file's
            raise
        raise ValueError(f"{path} is not a readable safetensors file ({exc}); the checkpoint is corrupt") from exc
    bad = [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise ValueError(
            f"{path} holds non-finite weights (NaN or infinity in {bad[0]!r}{more}): the model is corrupt or its "
            "training diverged, and every prediction would be meaningless"
        )
    return state


def from_pretrained(
    name_or_path: str | os.PathLike,
    *,
    map_location: str | torch.device = "cpu",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
) -> nn.Module:
    """Load a model saved by :func:`save_pretrained` (a folder, also as timm's ``local-dir:<folder>``),
    ``hf-hub:<repo>[@revision]``, or a registry name with weights shipped in the package.

    ``revision``, ``cache_dir``, ``token``, ``force_download`` and ``local_files_only`` go to
    ``huggingface_hub.snapshot_download``. The returned model is in eval mode (as Hugging Face loaders
    return it) and carries ``pretrained_config`` (the parsed config.json, including preprocessing and
    labels) and timm's ``pretrained_cfg``."""
    text = os.fspath(name_or_path)
    if text.startswith("local-dir:"):
        text = text[len("local-dir:") :]
        if not Path(text).is_dir():
            raise FileNotFoundError(f"local-dir:{text}: no such folder")
    if text.startswith("hf-hub:"):
        folder = _resolve_hub(
            text,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            force_download=force_download,
            local_files_only=local_files_only,
        )
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
    peer = config.get("model_class") == "PeerModel"
    if peer:
        from .bench.peers import PeerModel

        cls: type[nn.Module] = PeerModel
    else:
        cls = MODEL_CLASSES[config["task"]]
    try:
        model = cls(**config["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{Path(folder) / CONFIG_NAME} has an invalid model config: {exc}") from exc
    state = read_safetensors(Path(folder) / WEIGHTS_NAME)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        why = state_dict_mismatch(model, state)
        raise ValueError(f"the weights in {folder} do not fit the model in its {CONFIG_NAME}: {why}") from exc
    model.pretrained_config = config
    if not peer:
        attach_pretrained_cfg(model, folder_pretrained_cfg(config, str(Path(folder) / WEIGHTS_NAME)))
    return model.to(map_location).eval()


def state_dict_mismatch(model: nn.Module, state: Mapping[str, Any]) -> str:
    """Why ``state`` does not fit ``model``, in one line: how many entries are missing, unexpected or of another
    shape, each with its first example (torch's message lists every key, over several lines)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in own if k in state and tuple(own[k].shape) != tuple(getattr(state[k], "shape", ()))]
    parts = [f"{len(missing)} missing (first: {missing[0]})"] if missing else []
    parts += [f"{len(unexpected)} unexpected (first: {unexpected[0]})"] if unexpected else []
    if reshaped:
        k = reshaped[0]
        theirs, ours = list(getattr(state[k], "shape", ())), list(own[k].shape)
        parts.append(f"{len(reshaped)} of another shape (first: {k}, {theirs} in the weights, {ours} in the model)")
    return "; ".join(parts) or "the tensors match in name and shape but could not be copied"


def push_to_hub(
    model: nn.Module,
    repo_id: str,
    *,
    token: str | bool | None = None,
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload wavemixer model",
    create_pr: bool = False,
    **save_kwargs: Any,
) -> str:
    """Save ``model`` as :func:`save_pretrained` does and upload the folder to the Hub repo ``repo_id``
    (created if missing); ``save_kwargs`` are :func:`save_pretrained`'s. Returns the commit URL."""
    hub = require("huggingface_hub", "push_to_hub")
    api = hub.HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wavemixer-push-") as tmp:
        folder = save_pretrained(model, Path(tmp) / "model", **save_kwargs)
        (folder / "README.md").write_text(_model_card(load_config(folder)))
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            revision=revision,
            commit_message=commit_message,
            create_pr=create_pr,
        )
    return str(getattr(info, "commit_url", info))


def _model_card(config: dict[str, Any]) -> str:
    tags = ["wavemixer", "wavemix", config["task"].replace("_", "-")]
    if config["task"] == "classification":
        tags += ["image-classification", "timm"]
    name = config.get("model_name") or config["architecture"]
    header = "\n".join(["---", "library_name: wavemixer", "license: mit", "tags:", *(f"- {t}" for t in tags), "---"])
    return (
        f"{header}\n\n# {name}\n\nA WaveMix model (arXiv:2205.14375) saved by wavemixer.\n\n"
        '```python\nimport wavemixer\nmodel = wavemixer.from_pretrained("hf-hub:<this repo>")\n```\n'
    )


def spec_preprocessing(name: str) -> dict[str, Any]:
    """Default preprocessing of a registry variant (mean/std/input size)."""
    spec = get_spec(name)
    return dict(mean=list(spec.mean), std=list(spec.std), input_size=list(spec.input_size))
