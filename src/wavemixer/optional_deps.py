"""Optional dependencies: which extra installs each one, and a one-line error when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRA_OF", "MissingDependencyError", "missing_dependency", "require"]

# top-level import name -> (pip distribution, wavemixer extra that installs it)
EXTRA_OF: dict[str, tuple[str, str]] = {
    "torchvision": ("torchvision", "train"),
    "torchmetrics": ("torchmetrics", "train"),
    "PIL": ("pillow", "train"),
    "yaml": ("pyyaml", "train"),
    "tqdm": ("tqdm", "train"),
    "matplotlib": ("matplotlib", "train"),
    "timm": ("timm", "timm"),
    "huggingface_hub": ("huggingface_hub", "hub"),
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "onnxscript": ("onnxscript", "onnx"),
    "tensorboard": ("tensorboard", "tensorboard"),
    "segmentation_models_pytorch": ("segmentation-models-pytorch", "smp"),
}


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def missing_dependency(exc: ImportError, purpose: str = "this") -> MissingDependencyError | None:
    """The one-line error for ``exc`` if it is a missing optional dependency, else None."""
    if isinstance(exc, MissingDependencyError):
        return exc
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or name not in EXTRA_OF:
        return None
    dist, extra = EXTRA_OF[name]
    err = MissingDependencyError(f'{purpose} needs {dist}, which is not installed: pip install "wavemixer[{extra}]"')
    err.name = name
    return err


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        err = missing_dependency(exc, purpose)
        if err is None:
            raise
        raise err from None
