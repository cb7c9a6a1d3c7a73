"""Shift and scale robustness of a classifier: prediction consistency and accuracy on perturbed test images.

**Shifts** (Zhang 2019, "Making convolutional networks shift-invariant again"; Chaman & Dokmanić 2021):
every image is shifted by ``s`` pixels in three directions — ``"h"`` (content moves right by ``s``), ``"v"``
(down by ``s``) and ``"d"`` (diagonally, down and right by ``s``) — in one of three ways:

* ``"circular"``: ``torch.roll``; what leaves one side re-enters on the other, so no pixel is lost and a
  network built only from circular convolutions and global pooling is exactly invariant. A decimated DWT is
  equivariant only to shifts by multiples of ``2**level``, which is why odd and even shifts are reported apart.
* ``"pad_zeros"`` / ``"pad_reflect"``: pad by ``s`` on the side the content moves away from (with the
  normalised zero, i.e. the mean colour, or by reflection), then crop the original-size window: the shift a
  camera makes, which loses ``s`` rows/columns on the far side.

**Consistency** is the fraction of images whose top-1 on the shifted image equals the top-1 on the *unshifted*
image (Zhang's circular-shift measure; he compares two random shifts for crops, here the reference is always
the original). **Accuracy** is the top-1 accuracy on the shifted images.

**Scale**: each image is resized by a factor with antialiased bilinear interpolation, then a smaller image
is centre-padded and a larger one centre-cropped back to the original size. Padding uses the normalised
zero (the data set's mean colour): the value a zero-padding network already sees beyond every border, so
what changes is the scale, not a new black frame; and since interpolation weights sum to one, resizing
normalised images equals normalising resized ones.

Models run in eval mode without gradients, on ``data`` as :mod:`.common` describes; without labels only
consistency is measured.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import Data, eval_mode, iter_batches, model_device

__all__ = [
    "DIRECTIONS",
    "SHIFT_MODES",
    "Perturbed",
    "Robustness",
    "perturbation_robustness",
    "rescale_images",
    "scale_robustness",
    "shift_images",
    "shift_robustness",
]

DIRECTIONS: dict[str, tuple[int, int]] = {"h": (0, 1), "v": (1, 0), "d": (1, 1)}
"""Shift directions as (rows, columns) per pixel of shift: right, down, and diagonally down-right."""

SHIFT_MODES = ("circular", "pad_zeros", "pad_reflect")


def shift_images(x: Tensor, dy: int, dx: int, mode: str = "circular") -> Tensor:
    """Content moved down by ``dy`` and right by ``dx`` pixels (both >= 0), size kept (see module doc)."""
    if mode not in SHIFT_MODES:
        raise ValueError(f"mode must be one of {SHIFT_MODES}, got {mode!r}")
    if dy < 0 or dx < 0:
        raise ValueError(f"shifts must be >= 0, got ({dy}, {dx})")
    if mode == "circular":
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    h, w = x.shape[-2:]
    padded = F.pad(x, (dx, 0, dy, 0), mode="constant" if mode == "pad_zeros" else "reflect")
    return padded[..., :h, :w]


def rescale_images(x: Tensor, factor: float, *, fill: float = 0.0) -> Tensor:
    """Resized by ``factor`` (antialiased bilinear), then centre-padded with ``fill`` or centre-cropped back
    to the input size. Where the size difference is odd, the extra row/column is padded or cropped at the
    bottom/right. A factor that keeps the size returns ``x`` itself."""
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    h, w = x.shape[-2:]
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    if (nh, nw) == (h, w):
        return x
    y = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    # per axis: pad (difference > 0) or crop (negative padding), half before, the odd one after
    top, left = int((h - nh) / 2), int((w - nw) / 2)
    return F.pad(y, (left, w - nw - left, top, h - nh - top), value=fill)


@dataclass(frozen=True)
class Perturbed:
    """One perturbation's result: fractions in [0, 1]; ``accuracy`` is None without labels."""

    kind: str  # a shift mode, or "scale"
    amount: float  # pixels of shift, or the scale factor
    direction: str  # "h", "v" or "d" for shifts, "" for scale
    consistency: float
    accuracy: float | None


@dataclass
class Robustness:
    """All perturbations of one model on the same images; ``accuracy`` is on the unperturbed images."""

    images: int
    accuracy: float | None
    rows: list[Perturbed] = field(default_factory=list)

    def mean(
        self, metric: str = "consistency", *, kind: str | None = None, amounts: Iterable[float] | None = None
    ) -> float:
        """``metric`` averaged over the rows of ``kind`` with an amount in ``amounts`` (all if None); the
        rows cover the same images, so this is also the average over image-perturbation pairs."""
        wanted = None if amounts is None else set(amounts)
        values = [
            getattr(r, metric)
            for r in self.rows
            if (kind is None or r.kind == kind) and (wanted is None or r.amount in wanted)
        ]
        if not values or any(v is None for v in values):
            raise ValueError(f"no {metric} for kind={kind!r}, amounts={amounts!r}")
        return sum(values) / len(values)

    def summary(self) -> dict[str, float]:
        """Flat columns for a table, in %: clean ``accuracy``; per shift mode its consistency (and accuracy)
        per shift over the directions, and over odd and even shifts; per scale factor both."""
        out: dict[str, float] = {} if self.accuracy is None else {"accuracy": 100 * self.accuracy}
        metrics = ("consistency",) if self.accuracy is None else ("consistency", "accuracy")
        for kind in dict.fromkeys(r.kind for r in self.rows):
            amounts = sorted({r.amount for r in self.rows if r.kind == kind})
            if kind == "scale":
                for a in amounts:
                    out.update({f"scale_{a:g}_{m}": 100 * self.mean(m, kind=kind, amounts=[a]) for m in metrics})
                continue
            for m in metrics:
                out.update({f"{kind}_{m}_{a:g}": 100 * self.mean(m, kind=kind, amounts=[a]) for a in amounts})
                for parity, keep in (("odd", 1), ("even", 0)):
                    chosen = [a for a in amounts if int(a) % 2 == keep]
                    if chosen:
                        out[f"{kind}_{m}_{parity}"] = 100 * self.mean(m, kind=kind, amounts=chosen)
        return out


def perturbation_robustness(
    model: nn.Module,
    data: Data,
    perturbations: Mapping[tuple[str, float, str], Callable[[Tensor], Tensor]],
    *,
    max_images: int | None = None,
) -> Robustness:
    """Consistency and accuracy under each ``(kind, amount, direction) -> transform`` of the image batch."""
    device = model_device(model)
    n = clean = 0
    same = dict.fromkeys(perturbations, 0)
    right = dict.fromkeys(perturbations, 0)
    labelled = True
    with eval_mode(model), torch.no_grad():
        for x, y in iter_batches(data, max_images):
            x = x.to(device)
            labelled = labelled and y is not None
            logits = model(x)
            if logits.ndim != 2:
                raise ValueError(f"expected classifier logits (B, classes), got shape {tuple(logits.shape)}")
            ref = logits.argmax(dim=1)
            y = ref if y is None else y.to(device)
            n += len(x)
            clean += int((ref == y).sum())
            for key, transform in perturbations.items():
                pred = model(transform(x)).argmax(dim=1)
                same[key] += int((pred == ref).sum())
                right[key] += int((pred == y).sum())
    if n == 0:
        raise ValueError("no images to evaluate")
    rows = [Perturbed(*key, same[key] / n, right[key] / n if labelled else None) for key in perturbations]
    return Robustness(n, clean / n if labelled else None, rows)


def shift_robustness(
    model: nn.Module,
    data: Data,
    *,
    shifts: Sequence[int] = (1, 2, 3, 4),
    directions: Sequence[str] = ("h", "v", "d"),
    modes: Sequence[str] = ("circular", "pad_zeros"),
    max_images: int | None = None,
) -> Robustness:
    """Consistency with the unshifted prediction, and accuracy, for every shift, direction and mode."""
    bad = [d for d in directions if d not in DIRECTIONS] + [m for m in modes if m not in SHIFT_MODES]
    if bad or any(s < 1 for s in shifts):
        raise ValueError(f"shifts must be >= 1, directions in {list(DIRECTIONS)}, modes in {SHIFT_MODES}")
    perturbations = {
        (mode, s, d): functools.partial(shift_images, dy=DIRECTIONS[d][0] * s, dx=DIRECTIONS[d][1] * s, mode=mode)
        for mode in modes
        for s in shifts
        for d in directions
    }
    return perturbation_robustness(model, data, perturbations, max_images=max_images)


def scale_robustness(
    model: nn.Module,
    data: Data,
    *,
    factors: Sequence[float] = (0.75, 1.25),
    fill: float = 0.0,
    max_images: int | None = None,
) -> Robustness:
    """Accuracy (and consistency with the unscaled prediction) on images rescaled by each factor."""
    perturbations = {("scale", f, ""): functools.partial(rescale_images, factor=f, fill=fill) for f in factors}
    return perturbation_robustness(model, data, perturbations, max_images=max_images)
