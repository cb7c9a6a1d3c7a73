"""Separable 2-D discrete wavelet transform for any PyWavelets discrete wavelet, in plain tensor ops.

Filters come from ``wavelet_filters.json`` (tabulated from PyWavelets by ``scripts/make_wavelet_table.py``
and checked against it by the tests), so the core package needs no PyWavelets at run time.

The transform reproduces ``pywt.dwt2``/``pywt.idwt2`` exactly, boundary modes and odd sizes included:

* analysis along one axis of length ``N`` with a length-``F`` filter gives ``floor((N + F - 1) / 2)``
  coefficients (``ceil(N / 2)`` for ``periodization``): the signal is extended by the mode, convolved with
  the decomposition filters and every second sample is kept;
* the extension is computed from index arithmetic on the static size only (a small constant matrix on
  the few edge samples it reads), so inputs shorter than the filter get PyWavelets' repeated reflections
  and everything traces under ``torch.compile(fullgraph=True)``, ``torch.export`` and ONNX export;
* the analysis is separable (width, then height; PyWavelets filters the height first, which differs only
  by rounding), each axis one matrix product of the extended signal's stride-2 windows; the inverse
  is a transposed convolution per axis.

Sub-bands follow PyWavelets: ``cA`` low-pass on both axes, ``cH`` high-pass along the height (horizontal
edges, pywt key ``'da'``), ``cV`` high-pass along the width (vertical edges, ``'ad'``), ``cD`` both.
"""

from __future__ import annotations

import json
import math
import warnings
from importlib import resources

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "WAVELET_FAMILIES",
    "analysis_offset",
    "check_wavelet",
    "dwt_max_level",
    "extend2",
    "fb_dwt2",
    "fb_idwt2",
    "fb_packed",
    "filter_bank",
    "filter_length",
    "warn_if_level_too_high",
    "wavelet_names",
]

WAVELET_FAMILIES = ("haar", "db", "sym", "coif", "bior", "rbio", "dmey")
"""Families of the tabulated discrete wavelets (names as PyWavelets: ``db2``, ``sym4``, ``bior2.2`` ...)."""


# Read once at import (a few ms), so that traced code (torch.compile, export) only looks values up.
_WAVELETS: dict[str, tuple[tuple[float, ...], ...]] = {
    name: tuple(tuple(f) for f in bank)
    for name, bank in json.loads(resources.files("wavemixer").joinpath("wavelet_filters.json").read_text())[
        "wavelets"
    ].items()
}


def _table() -> dict[str, tuple[tuple[float, ...], ...]]:
    return _WAVELETS


def wavelet_names() -> list[str]:
    """Every tabulated wavelet name, as ``pywt.wavelist(kind='discrete')``."""
    return list(_table())


def check_wavelet(name: str) -> None:
    """Raise a one-line ``ValueError`` for a name that is not a tabulated discrete wavelet."""
    if not isinstance(name, str) or name not in _table():
        raise ValueError(
            f"unknown wavelet {name!r}; expected a PyWavelets discrete wavelet name from the families "
            f"{', '.join(WAVELET_FAMILIES)} (e.g. 'haar', 'db2', 'sym4', 'coif1', 'bior2.2')"
        )


def filter_bank(name: str) -> tuple[tuple[float, ...], ...]:
    """``(dec_lo, dec_hi, rec_lo, rec_hi)`` of wavelet ``name``, as ``pywt.Wavelet(name).filter_bank``."""
    check_wavelet(name)
    return _table()[name]


def filter_length(name: str) -> int:
    """Length of the (decomposition) filters of ``name``; 2 for Haar."""
    check_wavelet(name)
    return len(_table()[name][0])


def dwt_max_level(size: int, filter_len: int) -> int:
    """Deepest level at which some coefficient escapes boundary effects (``pywt.dwt_max_level``)."""
    if filter_len < 2:
        raise ValueError(f"invalid wavelet filter length {filter_len}")
    if size < filter_len - 1:
        return 0
    return math.floor(math.log2(size / (filter_len - 1)))


def warn_if_level_too_high(shape: tuple[int, ...] | torch.Size, level: int, wavelet: str) -> bool:
    """Warn as ``pywt.wavedec2`` does when ``level`` exceeds :func:`dwt_max_level` of a (H, W) shape.

    Silent while torch.compile/export traces (the eager run before it has warned already).
    """
    if torch.compiler.is_compiling():
        return False
    max_level = min(dwt_max_level(int(s), filter_length(wavelet)) for s in shape)
    if level > max_level:
        warnings.warn(
            f"Level value of {level} is too high: all coefficients will experience boundary effects "
            f"(a {shape[0]}x{shape[1]} input supports at most level {max_level} with wavelet {wavelet!r})",
            UserWarning,
            stacklevel=3,
        )
        return True
    return False


# -- boundary extension -------------------------------------------------------------------------------


def _source(k: int, n: int, mode: str) -> dict[int, float]:
    """Sample ``k`` (any integer) of the extended signal as a linear combination of ``x[0..n-1]``."""
    if 0 <= k < n:
        return {k: 1.0}
    if mode == "zero":
        return {}
    if n == 1 and mode in ("reflect", "antireflect"):
        raise ValueError(f"boundary mode {mode!r} needs at least 2 samples along each axis, got 1")
    if mode == "constant" or (n == 1 and mode in ("symmetric", "periodic", "smooth")):
        return {min(max(k, 0), n - 1): 1.0}
    if mode == "periodic":
        return {k % n: 1.0}
    if mode == "periodization":  # odd lengths first repeat the last sample
        m = k % (n + n % 2)
        return {min(m, n - 1): 1.0}
    if mode == "symmetric":  # half-sample symmetric, period 2n
        m = k % (2 * n)
        return {m if m < n else 2 * n - 1 - m: 1.0}
    if mode == "reflect":  # whole-sample symmetric, period 2n - 2
        m = k % (2 * n - 2)
        return {m if m < n else 2 * n - 2 - m: 1.0}
    if mode == "antisymmetric":  # x, -reversed(x), period 2n
        m = k % (2 * n)
        return {m: 1.0} if m < n else {2 * n - 1 - m: -1.0}
    if mode == "smooth":  # linear extrapolation of the edge slope
        if k < 0:
            return _combine({0: 1.0 - k, 1: float(k)})
        d = k - (n - 1)
        return _combine({n - 1: 1.0 + d, n - 2: -float(d)})
    if mode == "antireflect":  # whole-sample antisymmetric about each edge, repeated
        period, jump = 2 * n - 2, {n - 1: 2.0, 0: -2.0}  # x_ext[k + period] = x_ext[k] + 2 (x[n-1] - x[0])
        turns, m = divmod(k, period)
        base = {m: 1.0} if m < n else {n - 1: 2.0, 2 * n - 2 - m: -1.0}
        return _combine(base, *([{i: turns * c for i, c in jump.items()}] if turns else []))
    raise ValueError(f"unknown boundary mode {mode!r}")


def _combine(*terms: dict[int, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for term in terms:
        for i, c in term.items():
            out[i] = out.get(i, 0.0) + c
    return {i: c for i, c in out.items() if c != 0.0}


_EDGE_CACHE: dict[tuple[int, int, int, str], tuple[int, int, tuple[tuple[float, ...], ...]]] = {}


def _edge_matrix(n: int, first: int, count: int, mode: str) -> tuple[int, int, tuple[tuple[float, ...], ...]]:
    """Rows ``first .. first+count-1`` of the extended signal as ``x[lo:hi] @ matrix`` (``matrix``: hi-lo x count)."""
    key = (n, first, count, mode)
    if key not in _EDGE_CACHE:
        _EDGE_CACHE[key] = _edge_rows(n, first, count, mode)
    return _EDGE_CACHE[key]


def _edge_rows(n: int, first: int, count: int, mode: str) -> tuple[int, int, tuple[tuple[float, ...], ...]]:
    rows = [_source(first + r, n, mode) for r in range(count)]
    used = sorted({i for row in rows for i in row})
    if not used:
        return 0, 0, ()
    lo, hi = used[0], used[-1] + 1
    matrix = tuple(tuple(row.get(i, 0.0) for row in rows) for i in range(lo, hi))
    return lo, hi, matrix


def _edge(x: Tensor, first: int, count: int, mode: str) -> Tensor:
    n = x.shape[-1]
    lo, hi, matrix = _edge_matrix(n, first, count, mode)
    if not matrix:
        return x.new_zeros((*x.shape[:-1], count))
    return x[..., lo:hi] @ torch.tensor(matrix, dtype=x.dtype, device=x.device)


def _extend_last(x: Tensor, before: int, after: int, mode: str) -> Tensor:
    """Extend the last axis by ``before``/``after`` samples as PyWavelets' ``mode`` does."""
    n = x.shape[-1]
    parts = [x]
    if before > 0:
        parts.insert(0, _edge(x, -before, before, mode))
    if after > 0:
        parts.append(_edge(x, n, after, mode))
    return torch.cat(parts, dim=-1) if len(parts) > 1 else x


def _pads(n: int, flen: int, mode: str) -> tuple[int, int, int]:
    """Extension before/after and number of coefficients of one analysis step."""
    if mode == "periodization":
        half = flen // 2 - 1
        return half, half + n % 2, (n + 1) // 2
    out = (n + flen - 1) // 2
    return flen - 2, 2 * out - n, out


def extend2(x: Tensor, flen: int, mode: str) -> Tensor:
    """Extend the last two axes so that a ``flen x flen`` stride-2 convolution gives the DWT's output size."""
    h, w = x.shape[-2:]
    before, after, _ = _pads(h, flen, mode)
    x = _extend_last(x.transpose(-1, -2), before, after, mode).transpose(-1, -2)
    before, after, _ = _pads(w, flen, mode)
    return _extend_last(x, before, after, mode)


def analysis_offset(wavelet: str, mode: str) -> int:
    """Where, in input pixels, the x2-upsampled coefficient map of ``wavelet`` must be cropped to line up.

    Low-pass coefficient ``o`` is centred on input sample ``2o + 1 - c``, with ``c`` the tap index of the
    energy centre of ``dec_lo``; its two upsampled pixels sit at ``2o`` and ``2o + 1``. Cropping from
    ``floor(c)`` (the integer nearest ``c - 1/2``) brings them within half a pixel of their source: 0 for
    Haar, 2 for db2, 3 for bior2.2. ``periodization`` keeps Haar's ``ceil(N/2)`` grid, offset 0.
    """
    if mode == "periodization":
        return 0
    lo = filter_bank(wavelet)[0]
    centre = sum(i * t * t for i, t in enumerate(lo)) / sum(t * t for t in lo)
    return min(math.floor(centre), len(lo) - 2)


def _filters(wavelet: str, which: slice, like: Tensor, flip: bool) -> Tensor:
    bank = filter_bank(wavelet)[which]
    rows = [tuple(reversed(f)) if flip else f for f in bank]
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


#: filters up to this length analyse by one GEMM over copied windows (at most 4x the input); longer ones by conv1d
_GEMM_MAX_TAPS = 8


def _analysis_last(x: Tensor, taps: Tensor, mode: str) -> Tensor:
    """Low/high coefficients along the last axis: ``(..., N) -> (..., L, 2)``.

    Short filters: the extended signal's length-``F`` windows at stride 2, copied into one ``(M*L, F)``
    matrix, times the ``F x 2`` filter matrix: a single GEMM, faster on CPU (forward + backward) than a
    one-channel strided convolution for such filters. Multiplying the overlapping window *view* instead lets ``matmul``
    fall back to a batched product that loops over every row (a select and a clone each: 10^5 small ops
    at 128 px), which is slower still and floods the profiler. The copy is ``F/2`` times the input, so long
    filters (``dmey``: 62 taps) use a strided ``conv1d`` instead.
    """
    flen = taps.shape[-1]
    before, after, _ = _pads(x.shape[-1], flen, mode)
    ext = _extend_last(x, before, after, mode)
    if flen > _GEMM_MAX_TAPS:
        out = F.conv1d(ext.reshape(-1, 1, ext.shape[-1]), taps.unsqueeze(1), stride=2)  # (M, 2, L)
        return out.transpose(1, 2).reshape(*ext.shape[:-1], out.shape[-1], 2)
    windows = ext.unfold(-1, flen, 2)  # (..., L, F), overlapping view
    return (windows.reshape(-1, flen) @ taps.T).view(*windows.shape[:-1], 2)


def fb_dwt2(x: Tensor, wavelet: str, mode: str) -> Tensor:
    """One level over the last two axes as ``(..., 2, 2, H', W')``: [height band, width band] (0 low, 1 high)."""
    if x.dim() < 2 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"dwt2 needs a tensor (..., H, W) with non-empty H and W, got shape {tuple(x.shape)}")
    taps = _filters(wavelet, slice(0, 2), x, flip=True)
    y = _analysis_last(x, taps, mode)  # (..., H, W', 2w): width first, then height (pywt: height first)
    z = _analysis_last(y.movedim(-3, -1), taps, mode)  # (..., W', 2w, H', 2h)
    return z.permute(*range(z.dim() - 4), -1, -3, -2, -4)


def fb_packed(x: Tensor, wavelet: str, mode: str) -> Tensor:
    """(B, C, H, W) -> (B, 4C, H', W') grouped per channel ``[LL, H, V, D]`` as :func:`wavemixer.dwt.haar_packed`."""
    y = fb_dwt2(x, wavelet, mode)  # (B, C, hband, wband, H', W')
    return y.transpose(2, 3).flatten(1, 3)


def _synthesis_axis(c: Tensor, taps: Tensor, mode: str, dim: int) -> Tensor:
    """(M, 2, H, W) low/high coefficients -> (M, 1, N, W) (dim -2) or (M, 1, H, N) (dim -1)."""
    flen = taps.shape[-1]
    n = c.shape[dim]
    if dim == -2:
        full = F.conv_transpose2d(c, taps.view(2, 1, flen, 1), stride=(2, 1)).transpose(-1, -2)
    else:
        full = F.conv_transpose2d(c, taps.view(2, 1, 1, flen), stride=(1, 2))
    if mode == "periodization":  # fold the wrapped ends back: out[(i - shift) mod 2n] += full[i]
        period, shift = 2 * n, flen // 2 - 1
        lead = (period - shift % period) % period
        total = -(-(full.shape[-1] + lead) // period) * period
        full = F.pad(full, (lead, total - full.shape[-1] - lead))
        out = full.reshape(*full.shape[:-1], total // period, period).sum(-2)
    else:
        out = full[..., flen - 2 : 2 * n]
    return out.transpose(-1, -2) if dim == -2 else out


def fb_idwt2(coeffs: Tensor, wavelet: str, mode: str) -> Tensor:
    """Inverse of :func:`fb_dwt2` on ``(..., 2, 2, H', W')``, as ``pywt.idwt2`` (size ``2H' - F + 2``)."""
    lead, (h, w) = coeffs.shape[:-4], coeffs.shape[-2:]
    taps = _filters(wavelet, slice(2, 4), coeffs, flip=False)
    if mode != "periodization":
        flen = taps.shape[-1]
        out_h, out_w = 2 * h - flen + 2, 2 * w - flen + 2
        if min(out_h, out_w) < 0:
            raise ValueError(
                f"idwt2: {h}x{w} coefficients are too few for wavelet {wavelet!r} ({flen} taps) in mode {mode!r}; "
                f"each axis needs at least {flen // 2 - 1} (it gives 2n - {flen - 2} samples)"
            )
        if min(out_h, out_w) == 0:  # pywt.idwt2 returns an empty array here
            return coeffs.new_zeros((*lead, out_h, out_w))
    y = _synthesis_axis(coeffs.reshape(-1, 2, h, w), taps, mode, dim=-1)  # (2M, 1, H', W)
    y = y.reshape(-1, 2, h, y.shape[-1])
    y = _synthesis_axis(y, taps, mode, dim=-2)  # (M, 1, H, W)
    return y.reshape(*lead, y.shape[-2], y.shape[-1])
