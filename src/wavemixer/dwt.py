"""Differentiable 2-D Haar wavelet transform, written with plain tensor ops.

No custom ``autograd.Function`` and no filter buffers: every op follows the input's device and
dtype, so the transform works under autocast (forward and backward), ``torch.compile``,
``torch.export`` and ONNX export, on any GPU index and for fp64/fp32/bf16/fp16.

Sub-band convention (identical to PyWavelets, ``pywt.dwt2(x, 'haar')``): for every 2x2 patch
``[[a, b], [c, d]]`` (rows = height, axis -2)::

    LL = (a + b + c + d) / 2      approximation
    H  = (a + b - c - d) / 2      horizontal detail: top minus bottom (pywt ``cH``, key 'da')
    V  = (a - b + c - d) / 2      vertical detail: left minus right (pywt ``cV``, key 'ad')
    D  = (a - b - c + d) / 2      diagonal detail (pywt ``cD``, key 'dd')

Odd sizes follow PyWavelets: an odd length N gives ceil(N/2) coefficients, the missing sample being
supplied by the boundary ``mode`` (default ``'zero'``, the mode the reference WaveMix package uses).

Every function takes ``wavelet=`` (default ``'haar'``, the fast path above); any other PyWavelets
discrete wavelet name (``'db2'``, ``'sym4'``, ``'bior2.2'`` ...) runs the general separable filter bank
of :mod:`wavemixer.filterbank`, equal to ``pywt.dwt2``/``pywt.wavedec2`` for every mode and size.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

import torch
import torch.fx
import torch.nn.functional as F
from torch import Tensor

from .filterbank import check_wavelet, fb_dwt2, fb_idwt2, warn_if_level_too_high
from .tracing import is_symbolic

__all__ = [
    "BoundaryMode",
    "WaveletDetails",
    "dwt2",
    "haar_packed",
    "idwt2",
    "packed_to_reference_order",
    "reference_order_permutation",
    "wavedec2",
    "waverec2",
]

BoundaryMode = Literal[
    "zero", "symmetric", "constant", "periodization", "reflect", "periodic", "smooth", "antisymmetric", "antireflect"
]
"""PyWavelets signal-extension modes. For the Haar wavelet they matter only for odd sizes, where one
sample is appended: ``zero`` → 0; ``symmetric``/``constant``/``periodization`` → the edge sample;
``reflect`` → the sample before the edge; ``periodic`` → the first sample; ``smooth``/``antireflect``
→ linear extrapolation; ``antisymmetric`` → minus the edge sample."""

_MODES = frozenset(get_args(BoundaryMode))


class WaveletDetails(NamedTuple):
    """The three detail sub-bands of one level, in PyWavelets order ``(cH, cV, cD)``."""

    horizontal: Tensor
    vertical: Tensor
    diagonal: Tensor


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"unknown boundary mode {mode!r}; expected one of {sorted(_MODES)}")


def _extend_one(x: Tensor, dim: int, mode: str) -> Tensor:
    """Append one boundary sample along ``dim`` so that its length becomes even."""
    return torch.cat((x, _boundary_sample(x, dim, mode)), dim=dim)


def _boundary_sample(x: Tensor, dim: int, mode: str) -> Tensor | None:
    """The sample that ``mode`` appends after the end of ``dim`` (size 1 along ``dim``); ``None`` for zeros
    when ``x`` is a traced graph value (zero padding needs no sample there)."""
    n = x.shape[dim]
    edge = x.narrow(dim, n - 1, 1)
    if mode == "zero":
        return None if is_symbolic(x) else torch.zeros_like(edge)
    if mode in ("symmetric", "constant", "periodization"):
        return edge
    if mode == "periodic":
        return x.narrow(dim, 0, 1)
    if mode == "antisymmetric":
        return -edge
    # reflect, smooth, antireflect need the sample before the edge; PyWavelets extends a single sample
    # smoothly as a constant and refuses [anti]reflect
    if n < 2 and mode == "smooth":
        return edge
    if n < 2:
        raise ValueError(f"boundary mode {mode!r} needs at least 2 samples along each axis, got 1")
    before = x.narrow(dim, n - 2, 1)
    return before if mode == "reflect" else 2 * edge - before


def _pad_end(x: Tensor, dim: int, before: int, after: int) -> Tensor:
    pad = [0, 0] * (-dim - 1) + [before, after]
    return F.pad(x, pad)


def _extend_symbolic(x: Tensor, dim: int, mode: str) -> Tensor:
    """``x`` extended to length ``2 * ceil(n / 2)`` along ``dim`` with no branch on ``n``'s parity.

    ``count = 2 * ceil(n / 2) - n`` zeros are appended; the boundary sample, padded to the same length
    (``n`` zeros before it, ``count - 1`` after: a negative pad crops it away for even ``n``), is added.
    Both lengths simplify to ``2 * ceil(n / 2)``, which torch.export and ONNX keep symbolic.
    """
    n = x.shape[dim]
    count = 2 * ((n + 1) // 2) - n
    extra = _boundary_sample(x, dim, mode)
    out = _pad_end(x, dim, 0, count)
    return out if extra is None else out + _pad_end(extra, dim, n, count - 1)


def _make_even(x: Tensor, mode: str) -> Tensor:
    """Extend odd sizes by one sample (eager code skips the copy for even sizes; a traced graph pads every
    size by ``size % 2`` so that it runs at any size parity)."""
    symbolic = is_symbolic(x)
    for dim in (-2, -1):
        if symbolic:
            x = _extend_symbolic(x, dim, mode)
        elif x.shape[dim] % 2:
            x = _extend_one(x, dim, mode)
    return x


def _even_odd(x: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Samples 0, 2, 4, ... and 1, 3, 5, ... of an even-length axis (views, as ``x[0::2]`` and ``x[1::2]``)."""
    pairs = x.unflatten(dim, ((x.shape[dim] + 1) // 2, 2))
    return pairs.select(dim, 0), pairs.select(dim, 1)


@torch.fx.wrap
def _check_haar_input(x: Tensor) -> None:
    """Kept as one call in FX graphs (its size checks cannot be traced symbolically), run when the graph runs."""
    if x.dim() < 2:
        raise ValueError(f"dwt2 needs a tensor with at least 2 dimensions (..., H, W), got shape {tuple(x.shape)}")
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"dwt2 needs non-empty spatial dimensions, got shape {tuple(x.shape)}")


def _haar_bands(x: Tensor, mode: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    _check_haar_input(x)
    x = _make_even(x, mode)
    # Row butterfly first (half the work at half size), then columns; the 1/2 is exact in binary.
    top, bottom = _even_odd(x, -2)
    row_sum, row_diff = top + bottom, top - bottom
    (sum_left, sum_right), (diff_left, diff_right) = _even_odd(row_sum, -1), _even_odd(row_diff, -1)
    ll = (sum_left + sum_right) * 0.5
    h = (diff_left + diff_right) * 0.5
    v = (sum_left - sum_right) * 0.5
    d = (diff_left - diff_right) * 0.5
    return ll, h, v, d


def dwt2(x: Tensor, mode: BoundaryMode = "zero", wavelet: str = "haar") -> tuple[Tensor, WaveletDetails]:
    """Single-level DWT over the last two axes: ``(cA, (cH, cV, cD))`` as ``pywt.dwt2(x, wavelet, mode)``."""
    _check_mode(mode)
    if wavelet != "haar":
        check_wavelet(wavelet)
        y = fb_dwt2(x, wavelet, mode)
        return y[..., 0, 0, :, :], WaveletDetails(y[..., 1, 0, :, :], y[..., 0, 1, :, :], y[..., 1, 1, :, :])
    ll, h, v, d = _haar_bands(x, mode)
    return ll, WaveletDetails(h, v, d)


def idwt2(
    approx: Tensor,
    details: WaveletDetails | tuple[Tensor, Tensor, Tensor],
    wavelet: str = "haar",
    mode: BoundaryMode = "zero",
) -> Tensor:
    """Inverse single-level DWT as ``pywt.idwt2``; Haar doubles the coefficient size (crop odd inputs).

    A filter of length ``F`` gives ``2n - F + 2`` samples per axis (``2n`` for ``periodization``).
    """
    h, v, d = details
    if not (approx.shape == h.shape == v.shape == d.shape):
        raise ValueError(
            "idwt2 needs the approximation and the three details to have one shape, got "
            f"{tuple(approx.shape)}, {tuple(h.shape)}, {tuple(v.shape)}, {tuple(d.shape)}"
        )
    _check_mode(mode)
    if wavelet != "haar":
        check_wavelet(wavelet)
        bands = torch.stack((torch.stack((approx, v), -3), torch.stack((h, d), -3)), -4)
        return fb_idwt2(bands, wavelet, mode)
    s1, s2 = approx + h, approx - h
    t1, t2 = v + d, v - d
    a, b = (s1 + t1) * 0.5, (s1 - t1) * 0.5
    c, e = (s2 + t2) * 0.5, (s2 - t2) * 0.5
    top = torch.stack((a, b), dim=-1).flatten(-2)
    bottom = torch.stack((c, e), dim=-1).flatten(-2)
    return torch.stack((top, bottom), dim=-2).flatten(-3, -2)


def wavedec2(x: Tensor, level: int, mode: BoundaryMode = "zero", wavelet: str = "haar") -> list:
    """Multi-level DWT, each level computed once from the previous level's approximation.

    Returns ``[cA_n, details_n, ..., details_1]`` (coarsest first), as ``pywt.wavedec2``; like it, warns
    when ``level`` exceeds ``pywt.dwt_max_level`` of the input size (every coefficient then feels the edges).
    """
    _check_mode(mode)
    check_wavelet(wavelet)
    if level < 1:
        raise ValueError(f"level must be >= 1, got {level}")
    if x.dim() >= 2 and not is_symbolic(x):  # a traced graph has no concrete size to judge
        warn_if_level_too_high(x.shape[-2:], level, wavelet)
    details: list[WaveletDetails] = []
    approx = x
    for _ in range(level):
        approx, det = dwt2(approx, mode, wavelet)
        details.append(det)
    return [approx, *reversed(details)]


def waverec2(coeffs: list | tuple, wavelet: str = "haar", mode: BoundaryMode = "zero") -> Tensor:
    """Inverse of :func:`wavedec2`; crops odd-size levels the way ``pywt.waverec2`` does."""
    if len(coeffs) < 2:
        raise ValueError("waverec2 needs [cA_n, details_n, ..., details_1] with at least one detail level")
    approx = coeffs[0]
    for det in coeffs[1:]:
        target = det[0].shape[-2:]
        approx = approx[..., : target[0], : target[1]]
        approx = idwt2(approx, det, wavelet, mode)
    return approx


def haar_packed(x: Tensor, mode: BoundaryMode = "zero") -> Tensor:
    """One Haar level of a (B, C, H, W) map as (B, 4C, ceil(H/2), ceil(W/2)).

    Channels are grouped per input channel: ``[c0: LL, H, V, D, c1: LL, H, V, D, ...]``. This layout
    costs one copy (the reference's "LL block then interleaved details" costs two) and the LL of
    channel k is ``out[:, 4k]``, so the next level reads ``out[:, 0::4]`` without another copy.
    """
    ll, h, v, d = _haar_bands(x, mode)
    return torch.stack((ll, h, v, d), dim=2).flatten(1, 2)


def reference_order_permutation(channels: int) -> list[int]:
    """Index list ``p`` with ``reference_layout = packed[:, p]`` for ``channels`` input channels.

    The reference WaveMix layout is ``[LL of all channels, then c0_H, c0_V, c0_D, c1_H, ...]``.
    """
    lows = [4 * k for k in range(channels)]
    highs = [4 * k + band for k in range(channels) for band in (1, 2, 3)]
    return lows + highs


def packed_to_reference_order(packed: Tensor) -> Tensor:
    """Reorder a :func:`haar_packed` output into the reference WaveMix channel order."""
    if packed.shape[1] % 4:
        raise ValueError(f"a packed Haar map has a multiple of 4 channels, got {packed.shape[1]}")
    index = torch.tensor(reference_order_permutation(packed.shape[1] // 4), device=packed.device)
    return packed.index_select(1, index)
