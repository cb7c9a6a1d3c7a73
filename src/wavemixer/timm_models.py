"""Expose the classification registry through ``timm.create_model``.

Importing timm costs about 2 s, so ``import wavemixer`` never imports it: the names are registered at
once if timm is already imported, otherwise right after the first ``import timm`` (a post-import hook).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

from torch import nn

from .registry import create_model, get_spec, list_models

__all__ = ["install_timm_hook", "register_timm_models"]

# keyword arguments timm's create_model passes that are not model hyper-parameters
_TIMM_ONLY = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "pretrained_strict")
_registered = False


def _entrypoint(name: str):
    def build(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        for key in _TIMM_ONLY:
            kwargs.pop(key, None)
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        model = create_model(name, pretrained=pretrained, **kwargs)
        spec = get_spec(name)
        model.pretrained_cfg = dict(
            architecture=name, input_size=spec.input_size, mean=spec.mean, std=spec.std, interpolation="bicubic",
            crop_pct=1.0, num_classes=model.num_classes, first_conv="stem.0", classifier="head",
        )  # fmt: skip
        model.default_cfg = model.pretrained_cfg
        if device is not None or dtype is not None:
            model = model.to(device=device, dtype=dtype)
        return model

    build.__name__ = name
    build.__qualname__ = name
    build.__module__ = __name__
    build.__doc__ = f"wavemixer `{name}` ({get_spec(name).dataset})."
    return build


def register_timm_models() -> list[str]:
    """Register every classification variant with timm (idempotent); returns the names."""
    global _registered
    from timm.models import register_model

    names = list_models(task="classification")
    if not _registered:
        module = sys.modules[__name__]
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
