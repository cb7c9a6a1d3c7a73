"""Token mixers of the WaveMix block: the 2-D DWT and the alternatives the paper compares it with.

Every mixer maps the reduced map ``(B, C/4, H, W)`` to ``(B, C, H', W')`` with channels grouped per
input channel in four slots ``[LL, H, V, D]`` (the layout of :func:`wavemixer.dwt.haar_packed`); the
next level reads slot 0 (``out[:, 0::4]``). With Haar (``F = 2``) ``H' = ceil(H/2)``; a wavelet with
length-``F`` filters gives PyWavelets' ``H' = floor((H + F - 1) / 2)`` and :attr:`offset` tells the block
where the pixels of coefficient 0 start (see :class:`wavemixer.blocks.WaveMixBlock`).

``random`` and ``conv`` use the support of the chosen wavelet (``F x F``, stride 2: 2x2 for Haar) and
the DWT's boundary extension, so every mixer sees exactly the samples the DWT would. ``avgpool`` and
``fourier`` are 2x2 operations (Haar geometry only); odd sides first get one sample from ``mode``.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dwt import haar_packed
from .filterbank import analysis_offset, extend2, fb_packed, filter_length

__all__ = [
    "FOURIER_GRID", "HAAR_ONLY_MIXERS", "MIXERS", "Mixer", "TokenMixer", "build_mixer", "mixer_wavelet_pairs",
]  # fmt: skip

Mixer = Literal["dwt", "random", "conv", "avgpool", "fourier"]
"""``dwt``: the wavelet transform (``wavelet=``, default Haar; no parameters). ``random``: a fixed seeded
random orthonormal stride-2 filter bank of the DWT's shape (four ``F x F`` filters per channel, 2x2 for
Haar; a buffer, not trained). ``conv``: a learned ``F x F`` (2x2 for Haar) stride-2 convolution ``C/4 -> C``.
``avgpool``: 2x2 average pooling in the LL slot, zeros in the three detail slots (lossy; the same
shapes, parameters and MACs downstream as the DWT). ``fourier``: a learned GFNet-style global filter
over the lossless 2x2 space-to-depth map."""

MIXERS = frozenset(get_args(Mixer))

HAAR_ONLY_MIXERS = frozenset({"avgpool", "fourier"})
"""Mixers that are 2x2 operations: they take only ``wavelet='haar'`` (the block refuses any other)."""

FOURIER_GRID = (16, 16)
"""Spatial grid (H', W') at which the ``fourier`` mixer's filter is learnt; its real-FFT half-plane is
16 x 9 complex numbers per channel, bilinearly interpolated to other grids as GFNet does."""

RANDOM_SEED = 0


class TokenMixer(nn.Module):
    """What the block asks of a mixer (:class:`wavemixer.blocks.WaveMixBlock`): built as
    ``Mixer(channels, wavelet=..., mode=...)`` with ``channels`` = C/4, it maps ``(B, C/4, H, W)`` to the
    four-slot ``(B, C, H', W')`` layout, and :attr:`offset` says where the pixels of coefficient 0 start."""

    offset: int

    def __init__(self, channels: int, *, wavelet: str, mode: str) -> None:
        super().__init__()
        self.wavelet, self.mode = wavelet, mode
        self.offset = analysis_offset(wavelet, mode)


class DWTMixer(TokenMixer):
    """One DWT level; Haar runs :func:`~wavemixer.dwt.haar_packed` (the reference-exact fast path)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.wavelet == "haar":
            return haar_packed(x, self.mode)
        return fb_packed(x, self.wavelet, self.mode)


class _Stride2(TokenMixer):
    """Shared part of the stride-2 mixers: the DWT's boundary extension for ``F x F`` windows."""

    def __init__(self, channels: int, *, wavelet: str, mode: str) -> None:
        super().__init__(channels, wavelet=wavelet, mode=mode)
        self.flen = filter_length(wavelet)

    def extend(self, x: Tensor) -> Tensor:
        return extend2(x, self.flen, self.mode)


class _TwoByTwo(_Stride2):
    """Shared part of the 2x2 mixers (:data:`HAAR_ONLY_MIXERS`): Haar's geometry, no other wavelet's."""

    def __init__(self, channels: int, *, wavelet: str, mode: str) -> None:
        if wavelet != "haar":
            raise ValueError(f"{type(self).__name__} is a 2x2 operation: it takes only wavelet='haar', got {wavelet!r}")
        super().__init__(channels, wavelet=wavelet, mode=mode)


class RandomMixer(_Stride2):
    """Four fixed random orthonormal ``F x F`` filters applied to every channel (seeded; in the state dict).

    Unit-norm, mutually orthogonal filters, as the four 2-D filters of an orthogonal wavelet are.
    """

    def __init__(self, channels: int, *, wavelet: str, mode: str) -> None:
        super().__init__(channels, wavelet=wavelet, mode=mode)
        gen = torch.Generator().manual_seed(RANDOM_SEED)
        q, r = torch.linalg.qr(torch.randn(self.flen**2, 4, generator=gen, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))  # the unique QR basis: reproducible across platforms
        self.register_buffer("weight", q.T.to(torch.float32).reshape(4, 1, self.flen, self.flen))

    def forward(self, x: Tensor) -> Tensor:
        x = self.extend(x)
        b, c, h, w = x.shape
        y = F.conv2d(x.reshape(b * c, 1, h, w), self.weight.to(x.dtype), stride=2)
        return y.reshape(b, 4 * c, *y.shape[-2:])


class ConvMixer(_Stride2):
    """A learned ``F x F`` (2x2 for Haar) stride-2 convolution ``C/4 -> C`` with bias."""

    def __init__(self, channels: int, *, wavelet: str, mode: str) -> None:
        super().__init__(channels, wavelet=wavelet, mode=mode)
        self.conv = nn.Conv2d(channels, 4 * channels, self.flen, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.extend(x))


class AvgPoolMixer(_TwoByTwo):
    """2x2 average pooling in the LL slot, zeros in the detail slots (the DWT with its details dropped)."""

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.avg_pool2d(self.extend(x), 2)
        zero = torch.zeros_like(pooled)
        return torch.stack((pooled, zero, zero, zero), dim=2).flatten(1, 2)


class FourierMixer(_TwoByTwo):
    """GFNet global filter: 2x2 space-to-depth, rfft2, times a learned complex filter per channel, irfft2.

    The filter is learnt on :data:`FOURIER_GRID`; another map size interpolates it bilinearly to that
    size's half-plane of frequencies. FFTs run in fp32 (also under autocast) and work for odd sizes.
    """

    def __init__(self, channels: int, *, wavelet: str, mode: str) -> None:
        super().__init__(channels, wavelet=wavelet, mode=mode)
        gh, gw = FOURIER_GRID
        weight = torch.zeros(4 * channels, gh, gw // 2 + 1, 2)
        weight[..., 0] = 1.0  # start at the identity: the lossless space-to-depth map
        self.weight = nn.Parameter(weight + 0.02 * torch.randn_like(weight))

    def forward(self, x: Tensor) -> Tensor:
        z = F.pixel_unshuffle(self.extend(x), 2)
        h, w = z.shape[-2:]
        weight = self.weight
        if (h, w // 2 + 1) != weight.shape[1:3]:
            grid = weight.permute(0, 3, 1, 2).reshape(1, -1, *weight.shape[1:3])
            grid = F.interpolate(grid, size=(h, w // 2 + 1), mode="bilinear", align_corners=True)
            weight = grid.reshape(weight.shape[0], 2, h, w // 2 + 1).permute(0, 2, 3, 1)
        spectrum = torch.fft.rfft2(z.float(), norm="ortho") * torch.view_as_complex(weight.float().contiguous())
        return torch.fft.irfft2(spectrum, s=(h, w), norm="ortho").to(z.dtype)


_BUILDERS: dict[str, type[TokenMixer]] = {
    "dwt": DWTMixer,
    "random": RandomMixer,
    "conv": ConvMixer,
    "avgpool": AvgPoolMixer,
    "fourier": FourierMixer,
}


def build_mixer(mixer: str, *, channels: int, wavelet: str, mode: str) -> TokenMixer:
    """The token mixer ``mixer`` for ``channels`` reduced channels (``C/4``)."""
    if mixer not in _BUILDERS:
        raise ValueError(f"unknown mixer {mixer!r}; expected one of {sorted(MIXERS)}")
    return _BUILDERS[mixer](channels, wavelet=wavelet, mode=mode)


def mixer_wavelet_pairs() -> list[tuple[str, str]]:
    """Every mixer with Haar, the ones that take a longer support also with db2, and the DWT with bior2.2.

    The variants that the tests check and that docs/wavelets.md tabulates (``scripts/mixer_table.py``); a
    new mixer joins both by being in :data:`Mixer`.
    """

    def wavelets(mixer: str) -> tuple[str, ...]:
        if mixer in HAAR_ONLY_MIXERS:
            return ("haar",)
        return ("haar", "db2", "bior2.2") if mixer == "dwt" else ("haar", "db2")

    return [(m, w) for m in get_args(Mixer) for w in wavelets(m)]
