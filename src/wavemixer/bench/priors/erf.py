"""Effective receptive field (Luo et al. 2016, "Understanding the effective receptive field in deep CNNs").

The ERF of a network is the input gradient of its centre output feature: ``|d f_centre / d x|``, summed
over input channels and averaged over images, a 2-D map of how much each input pixel moves that feature.

* **Which features**: a classifier's last feature map before global pooling — ``forward_features`` of a
  WaveMix or timm model, ``.model.forward_features`` of a :class:`~wavemixer.bench.peers.PeerModel`, the model's
  own output for a plain module (a conv stack) — or any ``features`` callable passed in. Where the features
  end in a LayerNorm over channels (timm's ``.norm`` of ViT and MLP-Mixer), its input is read instead:
  with its initial weights a LayerNorm's output sums to exactly zero over channels, so the channel sum
  below would have no gradient in an untrained network (and a distorted one in a trained network), while a
  per-token norm does not change which pixels a token sees. Token
  outputs ``(B, N, C)`` are read as a grid of patch tokens after dropping the model's
  ``num_prefix_tokens`` (class/register tokens), with the grid's aspect that of the input.
* **Which unit**: the centre of the ``(h, w)`` feature map, ``(h // 2, w // 2)`` (for even sizes the lower
  right of the four central units), **summed over channels**: one backward pass per batch gives every
  image's map, as in Luo et al. Per image the gradient's absolute value is taken before averaging, so
  gradients of opposite sign in different images do not cancel.
* **Radii**: the smallest *Euclidean* distance ``r`` from the map's centre of mass such that the pixels with
  centres within ``r`` hold at least the given fraction of the map's mass. Euclidean, so the radius does
  not depend on the map's orientation; the centroid, so a centre unit whose receptive field is centred
  between pixels (even feature maps, strided stems) is measured around where its field actually lies.

Untrained networks are measured by the same function; the model runs in eval mode (BatchNorm on its running
statistics, so images do not interact) and no parameter gradient is accumulated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .common import Data, eval_mode, iter_batches, model_device

__all__ = ["Erf", "effective_receptive_field", "feature_extractor", "mass_centroid", "mass_radius"]


def feature_extractor(model: nn.Module) -> tuple[Callable[[Tensor], Tensor], int]:
    """The model's last feature map before pooling (see module doc), and how many prefix tokens it has."""
    for owner in (model, getattr(model, "model", None)):  # a PeerModel holds the library model in .model
        fn = getattr(owner, "forward_features", None)
        if callable(fn):
            prefix = int(getattr(owner, "num_prefix_tokens", 0) or 0)
            norm = getattr(owner, "norm", None)
            return (_input_of(norm, fn) if isinstance(norm, nn.LayerNorm) else fn), prefix
    return model, 0


def _input_of(norm: nn.Module, fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``fn`` returning what ``norm`` received instead (its output if ``norm`` did not run)."""

    def features(x: Tensor) -> Tensor:
        seen: list[Tensor] = []
        handle = norm.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
        try:
            out = fn(x)
        finally:
            handle.remove()
        return seen[-1] if seen else out

    return features


def _as_map(feats: Tensor, input_hw: tuple[int, int], prefix: int) -> Tensor:
    """Features as ``(B, C, h, w)``: maps as they are, token sequences on their patch grid."""
    if feats.ndim == 4:
        return feats
    if feats.ndim != 3:
        raise ValueError(f"features must be a (B, C, h, w) map or (B, N, C) tokens, got {tuple(feats.shape)}")
    tokens = feats[:, prefix:]
    n = tokens.shape[1]
    h = max(1, round(math.sqrt(n * input_hw[0] / input_hw[1])))
    w = n // h
    if h * w != n:
        raise ValueError(f"{n} tokens after {prefix} prefix tokens do not form a grid of the input's aspect")
    return tokens.transpose(1, 2).reshape(len(tokens), -1, h, w)


def mass_centroid(erf: Tensor) -> tuple[float, float]:
    """Centre of mass ``(row, column)`` of a non-negative 2-D map, in pixel indices."""
    m = erf.double()
    total = float(m.sum())
    if not total > 0:
        return math.nan, math.nan
    rows = torch.arange(m.shape[0], dtype=m.dtype)
    cols = torch.arange(m.shape[1], dtype=m.dtype)
    return float((m.sum(1) * rows).sum()) / total, float((m.sum(0) * cols).sum()) / total


def mass_radius(erf: Tensor, fraction: float, centre: tuple[float, float] | None = None) -> float:
    """Smallest Euclidean radius around ``centre`` (default: the centroid) whose pixels hold at least
    ``fraction`` of the map's mass; NaN for a map without mass."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    if erf.ndim != 2 or bool((erf < 0).any()):
        raise ValueError("the map must be 2-D and non-negative")
    cy, cx = mass_centroid(erf) if centre is None else centre
    m = erf.double().flatten()
    total = float(m.sum())
    if not total > 0:
        return math.nan
    ys, xs = torch.meshgrid(
        torch.arange(erf.shape[0], dtype=torch.float64), torch.arange(erf.shape[1], dtype=torch.float64), indexing="ij"
    )
    dist = ((ys - cy) ** 2 + (xs - cx) ** 2).sqrt().flatten()
    order = dist.argsort()
    mass = m[order].cumsum(0)
    # the first pixel in distance order at which the mass reaches the fraction (1e-12: sums of float maps)
    k = int(torch.searchsorted(mass, fraction * total * (1 - 1e-12)))
    return float(dist[order][min(k, len(order) - 1)])


@dataclass
class Erf:
    """An ERF map ``(H, W)`` (float64, the input's size), the centre unit read and the feature map's size."""

    map: Tensor
    unit: tuple[int, int]
    feature_size: tuple[int, int]
    images: int

    def radius(self, fraction: float) -> float:
        return mass_radius(self.map, fraction)

    def summary(self, fractions: Sequence[float] = (0.5, 0.9)) -> dict[str, float]:
        """Table columns ``erf_r50``, ``erf_r90``, ...: radii in input pixels."""
        return {f"erf_r{round(100 * f)}": self.radius(f) for f in fractions}


def effective_receptive_field(
    model: nn.Module,
    data: Data,
    *,
    features: Callable[[Tensor], Tensor] | None = None,
    prefix_tokens: int | None = None,
    max_images: int | None = None,
) -> Erf:
    """The ERF of ``model``'s centre feature over the images of ``data`` (labels ignored); see module doc.

    ``features`` overrides the layer read (default :func:`feature_extractor`); ``prefix_tokens`` the number
    of leading non-patch tokens of a token output (default: the model's ``num_prefix_tokens``)."""
    default_fn, default_prefix = feature_extractor(model)
    fn = features or default_fn
    prefix = default_prefix if prefix_tokens is None else prefix_tokens
    device = model_device(model)
    total: Tensor | None = None
    n = 0
    unit = size = (0, 0)
    with eval_mode(model), torch.enable_grad():
        for x, _ in iter_batches(data, max_images):
            x = x.detach().to(device).requires_grad_(True)
            fmap = _as_map(fn(x), (x.shape[-2], x.shape[-1]), prefix)
            size = (fmap.shape[-2], fmap.shape[-1])
            unit = (size[0] // 2, size[1] // 2)
            (grad,) = torch.autograd.grad(fmap[:, :, unit[0], unit[1]].sum(), x, allow_unused=True)
            if grad is None:  # a feature that no input pixel reaches: an empty map, not an error
                grad = torch.zeros_like(x)
            part = grad.detach().abs().sum(dim=1).sum(dim=0).double().cpu()
            total = part if total is None else total + part
            n += len(x)
    if total is None:
        raise ValueError("no images to measure the receptive field on")
    return Erf(total / n, unit, size, n)
