"""torch.hub entry points: ``torch.hub.load("<owner>/wavemixer", "wavemix_192_16", num_classes=10)``.

Every registry name is an entry point; keyword arguments override the variant's constructor arguments,
``pretrained=True`` loads weights shipped in the package (see ``wavemixer models --pretrained``). Every model
carries timm's ``pretrained_cfg`` (input size, mean/std, interpolation) as from ``wavemixer.create_model``.
"""

import os
import sys

dependencies = ["torch", "numpy", "safetensors"]

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from wavemixer.factory import create_model as _create_model  # noqa: E402
from wavemixer.registry import list_models as _list_models  # noqa: E402


def _entry(name):
    def load(pretrained=False, **kwargs):
        return _create_model(name, pretrained=pretrained, **kwargs)

    load.__name__ = name
    load.__doc__ = f"wavemixer model `{name}`."
    return load


for _name in _list_models():
    globals()[_name] = _entry(_name)
