"""wavemixer: WaveMix image models (classification, segmentation, super-resolution) in PyTorch."""

from __future__ import annotations

from .blocks import LevelMixer, LevelMLP, WaveMixBlock
from .body import WaveMixBody
from .dwt import WaveletDetails, dwt2, idwt2, wavedec2, waverec2
from .factory import create_model
from .hub import from_pretrained, push_to_hub, save_pretrained
from .models.classification import WaveMix
from .models.segmentation import WaveMixSegmentation
from .models.super_resolution import WaveMixSR
from .reference import from_reference
from .registry import ModelSpec, get_spec, list_models

__version__ = "0.1.0"

__all__ = [
    "LevelMLP",
    "LevelMixer",
    "ModelSpec",
    "WaveMix",
    "WaveMixBlock",
    "WaveMixBody",
    "WaveMixSR",
    "WaveMixSegmentation",
    "WaveletDetails",
    "__version__",
    "create_model",
    "dwt2",
    "from_pretrained",
    "from_reference",
    "get_spec",
    "idwt2",
    "list_models",
    "push_to_hub",
    "save_pretrained",
    "wavedec2",
    "waverec2",
]

from .timm_models import install_timm_hook as _install_timm_hook

_install_timm_hook()
