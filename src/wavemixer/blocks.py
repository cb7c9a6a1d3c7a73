"""The WaveMix block: one class for every DWT level, with the upsampler as an option."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .dwt import _MODES, BoundaryMode
from .filterbank import check_wavelet
from .mixers import HAAR_ONLY_MIXERS, MIXERS, Mixer, build_mixer
from .tracing import crop_to, is_symbolic
from .upsampling import BilinearUpsample2x

__all__ = ["LevelMLP", "LevelMixer", "Upsampler", "WaveMixBlock", "check_block_args"]

Upsampler = Literal["convtranspose", "nearest", "bilinear", "pixelshuffle"]
"""How a level's MLP output returns to the finer resolution.

``convtranspose``: 1x1 conv to ``ff_channel`` then ConvTranspose2d(k4, s2, p1) (the paper).
``nearest``/``bilinear``: 1x1 conv straight to the output width, then parameter-free x2 upsampling
(the reference README's parameter-efficient models). ``pixelshuffle``: PixelShuffle(2) then a 3x3 conv
(the reference's "V3" variant)."""

UPSAMPLERS = frozenset(get_args(Upsampler))


def check_block_args(
    *,
    dim: int,
    level: int,
    mult: int,
    ff_channel: int,
    dropout: float,
    upsample: str,
    mode: str = "zero",
    mixer: str = "dwt",
    wavelet: str = "haar",
) -> None:
    """Validate block hyper-parameters up front, naming the rule that a value breaks."""
    if not isinstance(level, int) or isinstance(level, bool) or level < 1:
        raise ValueError(f"level must be an integer >= 1 (number of Haar DWT levels per block), got {level!r}")
    if dim < 4 or dim % 4:
        raise ValueError(f"final_dim must be a positive multiple of 4 (the block reduces C to C/4), got {dim}")
    if level >= 2 and dim % 8:
        raise ValueError(
            f"final_dim must be a multiple of 8 for level >= 2 (coarser levels output C/2 from C/4), got {dim}"
        )
    if mult < 1:
        raise ValueError(f"mult must be >= 1, got {mult}")
    if ff_channel < 1:
        raise ValueError(f"ff_channel must be >= 1, got {ff_channel}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if upsample not in UPSAMPLERS:
        raise ValueError(f"unknown upsample {upsample!r}; expected one of {sorted(UPSAMPLERS)}")
    if mode not in _MODES:
        raise ValueError(f"unknown boundary mode={mode!r}; expected one of {sorted(_MODES)}")
    if mixer not in MIXERS:
        raise ValueError(f"unknown mixer={mixer!r}; expected one of {sorted(MIXERS)}")
    check_wavelet(wavelet)
    if wavelet != "haar" and mixer in HAAR_ONLY_MIXERS:
        raise ValueError(f"mixer={mixer!r} is a 2x2 operation: it takes only wavelet='haar', got {wavelet!r}")


class LevelMLP(nn.Module):
    """The channel MLP of one DWT level: 1x1 expand, GELU, dropout, then back to twice the resolution.

    Followed by BatchNorm of the output. There is deliberately no nonlinearity between ``project``
    and ``upsample`` (as in the paper), which lets eval-time code fold the BatchNorm into them.
    With ``recompute_mlp`` set, training recomputes expand/GELU/dropout/project in backward instead of
    keeping their outputs (same gradients, dropout mask included).

    The layer names ``expand``, ``project``, ``upsample`` and ``norm`` are read elsewhere and are state-dict
    keys: :func:`wavemixer.optimize.fold_batchnorm` folds ``norm`` into ``project``/``upsample``,
    :mod:`wavemixer.reference` maps the reference package's layers onto them, and the body's memory modes use
    ``norm`` and ``recompute_mlp``. A channel-MLP variant keeps them, or updates those three places.
    """

    recompute_mlp: bool = False

    def __init__(
        self, in_dim: int, out_dim: int, *, hidden_dim: int, ff_channel: int, dropout: float, upsample: Upsampler
    ) -> None:
        super().__init__()
        self.expand = nn.Conv2d(in_dim, hidden_dim, 1)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        if upsample == "convtranspose":
            self.project = nn.Conv2d(hidden_dim, ff_channel, 1)
            self.upsample = nn.ConvTranspose2d(ff_channel, out_dim, 4, stride=2, padding=1)
        elif upsample == "pixelshuffle":
            self.project = nn.PixelShuffle(2)
            self.upsample = nn.Conv2d(hidden_dim // 4, out_dim, 3, padding=1)
        else:
            self.project = nn.Conv2d(hidden_dim, out_dim, 1)
            self.upsample = (
                BilinearUpsample2x() if upsample == "bilinear" else nn.Upsample(scale_factor=2, mode=upsample)
            )
        self.norm = nn.BatchNorm2d(out_dim)

    def _mlp(self, x: Tensor) -> Tensor:
        return self.project(self.drop(self.act(self.expand(x))))

    def _mlp_with_mask(self, x: Tensor, keep: Tensor | None) -> Tensor:
        h = self.act(self.expand(x))
        if keep is not None:  # the same values F.dropout multiplies by: keep / (1 - p)
            h = h * keep.to(h.dtype).div_(1.0 - self.drop.p)
        return self.project(h)

    def forward(self, x: Tensor, normalize: bool = True) -> Tensor:
        if self.recompute_mlp and self.training and torch.is_grad_enabled() and not torch.jit.is_scripting():
            # Backward keeps only x and a 1-byte dropout mask; the mask is drawn once, as F.dropout draws it
            # on CPU, so no random numbers are replayed and the RNG stream is the plain path's.
            keep = None
            if self.drop.p > 0:
                shape = (x.shape[0], self.expand.out_channels, *x.shape[2:])
                keep = torch.empty(shape, dtype=torch.bool, device=x.device).bernoulli_(1.0 - self.drop.p)
            h = checkpoint(self._mlp_with_mask, x, keep, use_reentrant=False, preserve_rng_state=False)
        else:
            h = self._mlp(x)
        h = self.upsample(h)
        return self.norm(h) if normalize else h


LevelMixer = LevelMLP
"""The former name of :class:`LevelMLP` (it mixes channels, not tokens), kept so that old imports work."""


class WaveMixBlock(nn.Module):
    """Resolution-preserving WaveMix token mixer for any number of DWT levels (the residual branch).

    ``C -> C/4`` 1x1 reduction; token-mixer levels 1..L (``mixer``, default the Haar DWT), each from the
    previous level's LL (computed once); the coarsest level's MLP output is upsampled and concatenated
    with the next finer level, down to level 1, whose MLP returns ``C`` channels at the input resolution.
    The caller adds the residual.

    Odd or non-divisible sizes work: the DWT extends odd sizes by the boundary ``mode`` (as PyWavelets).
    Crop rule: each x2-upsampled map is cropped to the finer level's size, starting ``offset`` pixels in
    (:func:`wavemixer.filterbank.analysis_offset`: 0 for Haar and ``mode='periodization'``, 2 for db2).
    A length-``F`` filter gives ``floor((N + F - 1) / 2)`` coefficients, more than half of ``N``, centred
    up to ``F - 2`` samples before the Haar positions; the crop puts every upsampled value back within
    about half a pixel of the pixels it came from, and the block stays resolution-preserving for any wavelet
    and size.
    """

    def __init__(
        self,
        dim: int,
        *,
        level: int = 1,
        mult: int = 2,
        ff_channel: int | None = None,
        dropout: float = 0.0,
        upsample: Upsampler = "convtranspose",
        mode: BoundaryMode = "zero",
        mixer: Mixer = "dwt",
        wavelet: str = "haar",
    ) -> None:
        super().__init__()
        ff_channel = dim if ff_channel is None else ff_channel
        check_block_args(
            dim=dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample, mode=mode,
            mixer=mixer, wavelet=wavelet,
        )  # fmt: skip
        self.dim, self.level, self.mode, self.mixer, self.wavelet = dim, level, mode, mixer, wavelet
        self.reduction = nn.Conv2d(dim, dim // 4, 1)
        # one mixer per level (the parameter-free ones have no state-dict entries)
        self.mixers = nn.ModuleList(
            build_mixer(mixer, channels=dim // 4, wavelet=wavelet, mode=mode) for _ in range(level)
        )
        self.offset: int = self.mixers[0].offset
        levels = []
        for j in range(level):  # j = 0 is the finest level
            in_dim = dim if j == level - 1 else dim + dim // 2
            out_dim = dim if j == 0 else dim // 2
            levels.append(
                LevelMLP(
                    in_dim, out_dim, hidden_dim=mult * dim, ff_channel=ff_channel, dropout=dropout, upsample=upsample
                )
            )
        self.levels = nn.ModuleList(levels)

    def forward(self, x: Tensor) -> Tensor:
        return crop_to(self.forward_pre_norm(x, normalize=True), x.shape[-2], x.shape[-1])

    def forward_pre_norm(self, x: Tensor, normalize: bool = False) -> Tensor:
        """The branch before its final BatchNorm (``self.levels[0].norm``) and before cropping to ``x``.

        Every coarser level's output is normalised (it feeds the next finer level); the finest level's
        only when ``normalize`` is set, so that callers can fold or recalibrate that last BatchNorm.
        ``self.offset`` is where coefficient 0's pixels start (0 for Haar, see the class docstring): each
        upsampled map is cropped from there to its finer level's size, and the result from there on.
        """
        if not is_symbolic(x) and x.shape[1] != self.dim:  # traced: checked by the model's input check
            raise ValueError(f"WaveMixBlock expects {self.dim} input channels (final_dim), got {x.shape[1]}")
        r = self.reduction(x)
        bands: list[Tensor] = []
        for mix in self.mixers:
            packed = mix(r)
            bands.append(packed)
            r = packed[:, 0::4]  # this level's LL feeds the next level
        coarsest = len(self.levels) - 1
        out = self.levels[-1](bands[-1], normalize=normalize or coarsest > 0)  # level 1 alone is the finest
        o = self.offset
        for j in range(self.level - 2, -1, -1):
            z = bands[j]
            out = torch.cat((z, crop_to(out, z.shape[-2], z.shape[-1], o)), dim=1)
            out = self.levels[j](out, normalize=normalize or j > 0)
        return out[..., o:, o:] if o else out
