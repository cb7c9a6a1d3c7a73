"""Load checkpoints of the reference ``wavemix`` package (0.2.x) into wavemixer models.

The reference models are rebuilt from the keyword arguments of the reference constructors (same
names, same defaults); their state dicts are renamed key by key, and the first 1x1 conv after each DWT
gets its input channels permuted from the reference sub-band layout (LL block, then interleaved
details) to ours (LL, H, V, D per channel; see :func:`wavemixer.dwt.haar_packed`).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .dwt import reference_order_permutation
from .files import describe_load_error
from .models.classification import WaveMix
from .models.segmentation import WaveMixSegmentation
from .models.super_resolution import WaveMixSR

__all__ = ["REFERENCE_DEFAULTS", "convert_reference_state_dict", "from_reference", "reference_kwargs_to_config"]

REFERENCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": dict(
        num_classes=1000, depth=16, mult=2, ff_channel=192, final_dim=192, dropout=0.5, level=3,
        initial_conv="pachify", patch_size=4, stride=2,
    ),
    "segmentation": dict(
        num_classes=20, depth=16, mult=2, ff_channel=256, final_dim=256, dropout=0.0, level=4, stride=2
    ),
    "super_resolution": dict(depth=4, mult=2, ff_channel=144, final_dim=144, dropout=0.0, level=1),
}  # fmt: skip
"""Constructor defaults of ``wavemix.classification.WaveMix``, ``wavemix.SemSegment.WaveMix`` and
``wavemix.sisr.WaveMix``."""

_TASK_CLASSES: dict[str, type[nn.Module]] = {
    "classification": WaveMix,
    "segmentation": WaveMixSegmentation,
    "super_resolution": WaveMixSR,
}


def reference_kwargs_to_config(task: str, **reference_kwargs: Any) -> dict[str, Any]:
    """Our constructor arguments for the reference model built with ``reference_kwargs``."""
    if task not in REFERENCE_DEFAULTS:
        raise ValueError(f"task must be one of {sorted(REFERENCE_DEFAULTS)}, got {task!r}")
    defaults = REFERENCE_DEFAULTS[task]
    unknown = set(reference_kwargs) - set(defaults)
    if unknown:
        raise TypeError(
            f"the reference {task} WaveMix has no argument(s) {sorted(unknown)}; it takes {sorted(defaults)}"
        )
    ref = {**defaults, **reference_kwargs}
    level = ref["level"]
    if level not in (1, 2, 3, 4):
        warnings.warn(
            f"the reference package silently builds level-1 blocks for level={level!r}; doing the same",
            stacklevel=3,
        )
        level = 1
    config = dict(
        depth=ref["depth"], mult=ref["mult"], ff_channel=ref["ff_channel"], final_dim=ref["final_dim"],
        dropout=ref["dropout"], level=level,
    )  # fmt: skip
    if task == "classification":
        strided = ref["initial_conv"] == "strided"  # the reference treats any other value as patchify
        config.update(
            num_classes=ref["num_classes"], stem="strided" if strided else "patchify",
            patch_size=ref["patch_size"], stride=ref["stride"],
        )  # fmt: skip
    elif task == "segmentation":
        # The reference head always upsamples x4 (two ConvT stages, C/2 then C/4), whatever the stride.
        dim = ref["final_dim"]
        config.update(
            num_classes=ref["num_classes"], stem="strided", stride=ref["stride"], decoder_dims=(dim // 2, dim // 4),
            resize_to_input=ref["stride"] == 2,
        )  # fmt: skip
    return config


_PREFIXES = ("module.", "_orig_mod.", "model.")


def _plain_state_dict(state: Any) -> dict[str, Tensor]:
    if isinstance(state, (str, os.PathLike)):
        try:
            state = torch.load(state, map_location="cpu", weights_only=True)
        except OSError:  # unreadable (permissions, I/O): the OS's reason, not "cannot read a checkpoint"
            raise
        except Exception as exc:
            reason = describe_load_error(state, exc)
            raise ValueError(f"cannot read reference checkpoint {os.fspath(state)!r}: {reason}") from exc
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"expected a state dict (mapping of names to tensors), got {type(state).__name__}")
    out = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def _rename(key: str, task: str, level: int) -> str:
    """Reference key -> our key (raises on keys the reference model cannot have)."""
    m = re.fullmatch(r"conv\.(\d+)\.(.+)", key)
    if m:
        return f"stem.{m[1]}.{m[2]}"
    m = re.fullmatch(r"layers\.(\d+)\.(reduction\..+|feedforward(\d*)\.(\d)\.(.+))", key)
    if m:
        if m[2].startswith("reduction"):
            return f"blocks.{m[1]}.{m[2]}"
        mixer = int(m[3] or 1) - 1
        part = {"0": "expand", "3": "project", "4": "upsample", "5": "norm"}.get(m[4])
        if part is not None and mixer < level:
            return f"blocks.{m[1]}.levels.{mixer}.{part}.{m[5]}"
    if task == "classification":
        m = re.fullmatch(r"pool\.2\.(weight|bias)", key)
        if m:
            return f"head.{m[1]}"
    m = re.fullmatch(r"expand\.(\d+)\.(weight|bias)", key)
    if m and task in ("segmentation", "super_resolution"):
        index, last = int(m[1]), 2 if task == "segmentation" else 1
        if index < last:
            return f"decoder.{index}.{m[2]}"
        if index == last:
            return f"{'classifier' if task == 'segmentation' else 'to_image'}.{m[2]}"
    raise ValueError(f"unexpected key {key!r} for a reference {task} model: is it the right task and level?")


def convert_reference_state_dict(state: Any, task: str, *, final_dim: int, level: int) -> dict[str, Tensor]:
    """Rename a reference state dict and permute each level's first conv to our sub-band layout."""
    state = _plain_state_dict(state)
    perm = torch.tensor(reference_order_permutation(final_dim // 4))
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        new = _rename(key, task, level)
        if re.fullmatch(r"blocks\.\d+\.levels\.\d+\.expand\.weight", new):
            if value.dim() != 4 or value.shape[1] < final_dim:
                raise ValueError(
                    f"weight {key!r} has shape {tuple(value.shape)}, too few input channels for final_dim="
                    f"{final_dim}: pass the constructor arguments the checkpoint was trained with"
                )
            value = value.clone()
            band = value[:, :final_dim].clone()
            value[:, perm] = band  # ours[:, perm[i]] = reference[:, i] for the DWT channels only
        out[new] = value
    return out


def from_reference(state_dict: Any, task: str = "classification", **reference_kwargs: Any) -> nn.Module:
    """Our model with the weights of a reference ``wavemix`` model, giving the same outputs.

    Args:
        state_dict: a state dict, a loaded ``nn.Module`` or the path of a ``.pth`` file saved from the
            reference model (``module.``/``_orig_mod.`` prefixes and ``{'state_dict': ...}`` wrappers are
            accepted).
        task: ``"classification"``, ``"segmentation"`` or ``"super_resolution"`` (the reference's
            ``wavemix.classification``, ``wavemix.SemSegment`` and ``wavemix.sisr`` models).
        reference_kwargs: the keyword arguments the reference constructor was called with (same names
            and defaults, e.g. ``final_dim``, ``depth``, ``level``, ``initial_conv``, ``num_classes``).
    """
    config = reference_kwargs_to_config(task, **reference_kwargs)
    model = _TASK_CLASSES[task](**config)
    converted = convert_reference_state_dict(state_dict, task, final_dim=config["final_dim"], level=config["level"])
    own = model.state_dict()
    missing = sorted(set(own) - set(converted))
    for key, value in converted.items():
        if key in own and own[key].shape != value.shape:
            raise ValueError(
                f"weight {key!r} has shape {tuple(value.shape)} but the model built from {reference_kwargs} "
                f"needs {tuple(own[key].shape)}: pass the constructor arguments the checkpoint was trained with"
            )
    if missing:
        raise ValueError(
            f"the checkpoint lacks {len(missing)} weight(s) of the model built from {reference_kwargs} "
            f"(first: {missing[:3]}): pass the constructor arguments the checkpoint was trained with"
        )
    model.load_state_dict(converted, strict=True)
    return model
