"""wavemixer in timm: pretrained cfgs, entry points built with timm's own builder, Hub config fields.

Every classifier of the registry is a timm model (``timm.create_model("wavemix_lite_8_10_mnist",
pretrained=True, features_only=True)``) built by ``build_model_with_cfg`` from the cfgs of
``generate_default_cfgs``; pretrained loading, ``in_chans`` adaptation of the stem, ``pretrained_cfg_overlay``
and the ``features_only`` wrapper (timm's ``FeatureGetterNet`` over ``forward_intermediates``) are timm's.
Segmentation and super-resolution variants stay out of timm's registry: timm's model contract (and its
test suite) is that of a classifier with a pooled head. They carry a pretrained cfg all the same.

The cfgs are plain dicts, so models from every entry point (:func:`wavemixer.create_model`,
:func:`wavemixer.from_pretrained`, torch.hub) carry one without importing timm. Importing timm costs about
2 s, so ``import wavemixer`` never imports it: the names are registered at once if timm is already
imported, otherwise right after the first ``import timm`` (a post-import hook).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.util
import inspect
import json
import math
import sys
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .body import stem_reduction
from .constants import IMAGENET_MEAN_STD
from .registry import MODEL_CLASSES, get_spec, list_models, packaged_weights_dir

__all__ = [
    "BASE_VARIANT",
    "attach_pretrained_cfg",
    "folder_pretrained_cfg",
    "hub_config_fields",
    "install_timm_hook",
    "pretrained_cfg",
    "register_timm_models",
]

PAPER = dict(
    paper_ids="arXiv:2205.14375",
    paper_name="WaveMix: A Resource-efficient Neural Network for Image Analysis",
    origin_url="https://github.com/pranavphoenix/WaveMix",
)
# the registered variant whose arguments are each family's class defaults: the "architecture" of a
# saved model that is no registered variant (its model_args then give every constructor argument)
BASE_VARIANT = {
    "classification": "wavemix_192_16",
    "segmentation": "wavemix_seg_256_16_l4",
    "super_resolution": "wavemix_sr_144_4_x2",
}
# config.json "preprocessing" resize -> timm interpolation; wavemixer's Preprocess resizes with
# torchvision's bilinear + antialias (PIL's bilinear, which timm uses, antialiases too) and never crops
_INTERPOLATION = {"bilinear-antialias": "bilinear", "bilinear": "bilinear", "bicubic": "bicubic"}
_registered = False


def _init_defaults(cls: type) -> dict[str, Any]:
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if p.default is not p.empty}


def _pool_size(task: str, model_args: Mapping[str, Any], input_size: tuple[int, ...]) -> tuple[int, int] | None:
    """Spatial size of ``forward_features`` at ``input_size`` (blocks keep the stem's resolution)."""
    if task != "classification":
        return None
    args = {**_init_defaults(MODEL_CLASSES[task]), **model_args}
    if args["stem"] == "patchify":
        p = args["patch_size"]
        return input_size[1] // p, input_size[2] // p
    s = args["stride"]
    assert stem_reduction("strided", patch_size=args["patch_size"], stride=s) == s * s
    return tuple(math.ceil(math.ceil(n / s) / s) for n in input_size[1:])  # type: ignore[return-value]


def _packaged_labels(name: str) -> list[str] | None:
    folder = packaged_weights_dir(name)
    return json.loads((folder / "config.json").read_text()).get("labels") if folder is not None else None


def pretrained_cfg(name: str) -> dict[str, Any]:
    """timm ``PretrainedCfg`` fields of a registered variant, as its packaged weights were trained.

    The packaged weights were trained on images resized with bilinear antialiasing, full frame
    (``crop_pct=1``); the same preprocessing serves the variants without weights, as ``wavemixer predict``
    applies it to all.
    """
    spec = get_spec(name)
    weights = packaged_weights_dir(name)
    args = {**_init_defaults(MODEL_CLASSES[spec.task]), **spec.kwargs}
    cfg: dict[str, Any] = dict(
        architecture=name,
        input_size=tuple(spec.input_size),
        fixed_input_size=False,
        interpolation="bilinear",
        crop_pct=1.0,
        crop_mode="center",
        mean=tuple(spec.mean),
        std=tuple(spec.std),
        num_classes=args.get("num_classes", 0),
        pool_size=_pool_size(spec.task, args, spec.input_size),
        first_conv="stem.0",
        classifier={"classification": "head", "segmentation": "classifier"}.get(spec.task),
        notes=(spec.source,) + ((spec.notes,) if spec.notes else ()),
        **PAPER,
    )
    if weights is not None:
        cfg.update(file=str(weights / "model.safetensors"), license="mit", label_names=_packaged_labels(name))
    return cfg


def folder_pretrained_cfg(config: Mapping[str, Any], weights_file: str | None = None) -> dict[str, Any]:
    """The pretrained cfg of a saved model folder's ``config.json`` (stored one first, else derived)."""
    task, args = config["task"], config["config"]
    name = config.get("model_name")
    registered = name in list_models(task=task)
    cfg = dict(config.get("pretrained_cfg") or (pretrained_cfg(name) if registered else {}))
    pre = config.get("preprocessing") or {}
    if not cfg:
        cfg = dict(architecture=BASE_VARIANT[task], first_conv="stem.0", crop_pct=1.0, crop_mode="center", **PAPER)
        if task == "classification":
            cfg["classifier"] = "head"
    in_chans = args.get("in_chans", _init_defaults(MODEL_CLASSES[task])["in_chans"])
    input_size = tuple(pre.get("input_size") or cfg.get("input_size") or (in_chans, 224, 224))
    input_size = (in_chans, *input_size[1:])
    cfg.update(
        input_size=input_size,
        mean=tuple(pre.get("mean") or cfg.get("mean") or IMAGENET_MEAN_STD["mean"]),
        std=tuple(pre.get("std") or cfg.get("std") or IMAGENET_MEAN_STD["std"]),
        interpolation=_INTERPOLATION.get(pre.get("resize", ""), cfg.get("interpolation", "bilinear")),
        num_classes=args.get("num_classes", 0),
        pool_size=_pool_size(task, args, input_size),
    )
    for key in ("input_size", "mean", "std", "pool_size"):  # JSON gives lists; timm's cfgs hold tuples
        if isinstance(cfg.get(key), list):
            cfg[key] = tuple(cfg[key])
    if config.get("labels") is not None:
        cfg["label_names"] = list(config["labels"])
    if weights_file is not None:
        cfg["file"] = weights_file
    return cfg


def attach_pretrained_cfg(model: nn.Module, cfg: Mapping[str, Any]) -> nn.Module:
    """Set ``pretrained_cfg`` (and timm's alias ``default_cfg``) to ``cfg`` fitted to the built model."""
    cfg = dict(cfg)
    if cfg.get("input_size") and hasattr(model, "in_chans"):
        cfg["input_size"] = (model.in_chans, *cfg["input_size"][1:])
    if hasattr(model, "num_classes") and model.num_classes != cfg.get("num_classes"):
        cfg["num_classes"] = model.num_classes
        cfg.pop("label_names", None)  # a new head: the weights' labels no longer apply
    model.pretrained_cfg = cfg
    model.default_cfg = cfg
    return model


def hub_config_fields(model: nn.Module, config: Mapping[str, Any]) -> dict[str, Any]:
    """Extra ``config.json`` keys so that timm (``hf-hub:``/``local-dir:``) and ``PyTorchModelHubMixin``
    subclasses load a saved folder: timm reads ``architecture`` (a timm model name), ``model_args``,
    ``num_classes``, ``label_names`` and ``pretrained_cfg``; the mixin reads constructor arguments at the top
    level (``model_class`` names the wavemixer class)."""
    task, args = config["task"], config["config"]
    name = config.get("model_name")
    cfg = folder_pretrained_cfg(config)
    cfg.pop("file", None)
    return {
        **args,
        "architecture": name if name in list_models(task=task) else BASE_VARIANT[task],
        "model_args": dict(args),
        "num_features": getattr(model, "num_features", None),
        "label_names": config.get("labels"),
        "pretrained_cfg": cfg,
    }


# -- timm entry points ------------------------------------------------------------------------------------


def _construct(name: str, *, device: Any = None, dtype: torch.dtype | None = None, **kwargs: Any) -> nn.Module:
    """The model class call of ``build_model_with_cfg``: the registry variant, on ``device``/``dtype``."""
    with torch.device(device) if device is not None else contextlib.nullcontext():
        model = get_spec(name).build(**kwargs)
    return model.to(dtype=dtype) if dtype is not None else model


def _build(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    from timm.models import build_model_with_cfg

    # single-resolution blocks: like timm's ViTs, features are the last 3 block outputs by default
    model = build_model_with_cfg(
        functools.partial(_construct, name),
        name,
        pretrained,
        feature_cfg=dict(feature_cls="getter", out_indices=3),
        **kwargs,
    )
    return attach_pretrained_cfg(model, model.pretrained_cfg)  # in_chans/num_classes as built


def _entrypoint(name: str):
    def build(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return _build(name, pretrained, **kwargs)

    build.__name__ = name
    build.__qualname__ = name
    build.__module__ = __name__
    build.__doc__ = f"wavemixer `{name}` ({get_spec(name).dataset})."
    return build


def register_timm_models() -> list[str]:
    """Register every classification variant, with its pretrained cfg, with timm (idempotent)."""
    global _registered
    from timm.models import generate_default_cfgs, register_model

    names = list_models(task="classification")
    if not _registered:
        module = sys.modules[__name__]
        module.default_cfgs = generate_default_cfgs({n: pretrained_cfg(n) for n in names})  # type: ignore[attr-defined]
        for name in names:
            fn = _entrypoint(name)
            setattr(module, name, fn)
            register_model(fn)
        _registered = True
    return names


class _TimmImportHook(importlib.abc.MetaPathFinder):
    """Registers our models once ``timm`` finishes importing."""

    def find_spec(self, fullname, path, target=None):  # type: ignore[override]
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("timm")
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            register_timm_models()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install_timm_hook() -> None:
    """Register now if timm is imported, else when it is; no-op when timm is not installed."""
    if "timm" in sys.modules:
        register_timm_models()
        return
    hooked = any(isinstance(f, _TimmImportHook) for f in sys.meta_path)
    if not hooked and importlib.util.find_spec("timm") is not None:
        sys.meta_path.insert(0, _TimmImportHook())
