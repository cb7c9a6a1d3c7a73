"""WaveMix single-image super-resolution (x2, x4, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import Upsampler
from ..body import WaveMixBody
from ..checks import check_bool, check_int, check_int_list
from ..dwt import BoundaryMode
from ..mixers import Mixer

__all__ = ["WaveMixSR"]


class WaveMixSR(WaveMixBody):
    """Full-resolution WaveMix body, then one ConvTranspose2d(k4, s2) per factor 2 and a 1x1 to pixels.

    Output ``(B, in_chans, scale*H, scale*W)`` for any input size. Defaults (``scale=2``) are the
    reference ``wavemix.sisr.WaveMix`` (1.94 M params). ``bicubic_residual=True`` adds the bicubic
    upsampling of the input to the output, so the network learns only the missing detail (not in the
    reference; it trains faster and never does worse than bicubic at initialisation).
    """

    def __init__(
        self,
        *,
        scale: int = 2,
        depth: int = 4,
        final_dim: int = 144,
        ff_channel: int | None = None,
        mult: int = 2,
        level: int = 1,
        dropout: float = 0.0,
        in_chans: int = 3,
        upsample: Upsampler = "convtranspose",
        mode: BoundaryMode = "zero",
        mixer: Mixer = "dwt",
        wavelet: str = "haar",
        decoder_dims: Sequence[int] | None = None,
        bicubic_residual: bool = False,
    ) -> None:
        super().__init__(
            depth=depth, final_dim=final_dim, ff_channel=ff_channel, mult=mult, level=level, dropout=dropout,
            stem="strided", patch_size=1, stride=1, in_chans=in_chans, upsample=upsample, mode=mode,
            mixer=mixer, wavelet=wavelet,
        )  # fmt: skip
        check_int("scale", scale, ge=2)
        check_bool("bicubic_residual", bicubic_residual)
        if scale & (scale - 1):
            raise ValueError(f"scale must be a power of two >= 2 (2, 4, 8), got {scale}")
        stages = scale.bit_length() - 1
        if decoder_dims is None:
            decoder_dims = [max(final_dim >> (i + 1), 1) for i in range(stages)]
        decoder_dims = check_int_list("decoder_dims", decoder_dims, ge=1)
        if len(decoder_dims) != stages:
            raise ValueError(f"scale={scale} needs {stages} decoder_dims (one per x2 stage), got {decoder_dims}")
        self._record_config(
            dict(
                scale=scale, depth=depth, final_dim=final_dim, ff_channel=ff_channel, mult=mult, level=level,
                dropout=dropout, in_chans=in_chans, upsample=upsample, mode=mode, mixer=mixer, wavelet=wavelet,
                decoder_dims=decoder_dims,
                bicubic_residual=bicubic_residual,
            )
        )  # fmt: skip
        self.scale = scale
        self.bicubic_residual = bicubic_residual
        dims = [final_dim, *decoder_dims]
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(dims[i], dims[i + 1], 4, stride=2, padding=1) for i in range(stages)
        )
        self.to_image = nn.Conv2d(dims[-1], in_chans, 1)
        if bicubic_residual:  # start exactly at bicubic upsampling; the residual is learnt from there
            nn.init.zeros_(self.to_image.weight)
            nn.init.zeros_(self.to_image.bias)

    def _prune_head(self) -> None:
        self.decoder = nn.ModuleList()
        self.to_image = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.forward_features(x)
        for up in self.decoder:
            out = up(out)
        out = self.to_image(out)
        if self.bicubic_residual:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out
