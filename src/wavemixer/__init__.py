"""wavemixer: WaveMix image models (classification, segmentation, super-resolution) in PyTorch."""

from __future__ import annotations

from .blocks import LevelMixer, WaveMixBlock
from .body import WaveMixBody
from .classification import WaveMix
from .dwt import WaveletDetails, dwt2, idwt2, wavedec2, waverec2
from .registry import ModelSpec, create_model, get_spec, list_models
from .segmentation import WaveMixSegmentation
from .super_resolution import WaveMixSR

__version__ = "0.1.0"

__all__ = [
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
    "get_spec",
    "idwt2",
    "list_models",
    "wavedec2",
    "waverec2",
]
