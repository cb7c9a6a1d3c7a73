"""Build a registered variant, optionally with the weights shipped in the package, carrying its pretrained cfg."""

from __future__ import annotations

from typing import Any

from torch import nn

from .checks import check_bool
from .hub import from_pretrained
from .optional_deps import require
from .registry import get_spec, names_with_weights, packaged_weights_dir
from .timm_models import attach_pretrained_cfg, pretrained_cfg

__all__ = ["create_model"]

# what may change when packaged weights are loaded: a new head, dropout, the stem's input channels
_PRETRAINED_OVERRIDES = ("num_classes", "dropout", "drop_rate", "in_chans")


def create_model(name: str, *, pretrained: bool = False, **overrides: Any) -> nn.Module:
    """Build a registered variant; keyword ``overrides`` replace its constructor arguments.

    ``pretrained=True`` loads the weights shipped inside the package for that variant; a different
    ``num_classes`` gets a new random head, a different ``in_chans`` a stem adapted as timm adapts it
    (``adapt_input_conv``: channels summed for 1, repeated and rescaled otherwise). As with
    ``timm.create_model`` the model comes back in training mode; ``model.pretrained_cfg`` gives the input
    size, mean/std and interpolation it expects (``timm.data.resolve_model_data_config(model)``).
    """
    if not isinstance(name, str):
        raise TypeError(f"create_model takes a registry model name (see list_models()), got {name!r}")
    check_bool("pretrained", pretrained)
    spec = get_spec(name)
    model = _with_packaged_weights(name, overrides) if pretrained else spec.build(**overrides)
    return attach_pretrained_cfg(model, pretrained_cfg(name))


def _with_packaged_weights(name: str, overrides: dict[str, Any]) -> nn.Module:
    folder = packaged_weights_dir(name)
    if folder is None:
        raise ValueError(
            f"no pretrained weights ship with {name!r}; variants with weights: {', '.join(names_with_weights())}"
        )
    unknown = sorted(set(overrides) - set(_PRETRAINED_OVERRIDES))
    if unknown:
        raise ValueError(f"with pretrained=True only {list(_PRETRAINED_OVERRIDES)} may be overridden, got {unknown}")
    trained = from_pretrained(folder)
    state = trained.state_dict()
    if overrides.get("num_classes", trained.config.get("num_classes")) != trained.config.get("num_classes"):
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    in_chans = overrides.get("in_chans", trained.in_chans)
    if in_chans != trained.in_chans:
        manipulate = require("timm.models", f"pretrained=True with in_chans={in_chans}")
        state["stem.0.weight"] = manipulate.adapt_input_conv(
            in_chans, state["stem.0.weight"], base_chans=trained.in_chans
        )
    model = get_spec(name).build(**{**trained.config, **overrides})
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("head.") for k in missing):
        raise ValueError(f"packaged weights of {name!r} do not fit: missing {missing}, unexpected {unexpected}")
    model.pretrained_config = trained.pretrained_config
    return model
