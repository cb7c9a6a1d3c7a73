"""WaveMix semantic segmentation: WaveMix encoder and a transposed-conv upsampling head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import Upsampler
from ..body import Stem, WaveMixBody, decoder_upsamples
from ..checks import check_bool, check_int, check_int_list
from ..dwt import BoundaryMode
from ..mixers import Mixer
from ..tracing import crop_to, is_symbolic

__all__ = ["WaveMixSegmentation"]


class WaveMixSegmentation(WaveMixBody):
    """Per-pixel logits ``(B, num_classes, H, W)`` at the input resolution, for every stem stride.

    The head is one ConvTranspose2d(k4, s2) per factor 2 the stem removed (channels halving unless
    ``decoder_dims`` is given), then a 1x1 classifier, purely linear as in the reference. The output is
    cropped to the input size (odd sizes), or resized bilinearly if the stem reduction is not a power of
    two. Defaults are the reference ``wavemix.SemSegment.WaveMix`` (Cityscapes, 63.2 M params).

    ``stem``/``blocks`` share names with :class:`~wavemixer.WaveMix`, so a classifier's weights
    initialise the encoder through :meth:`load_encoder_state_dict`.
    """

    def __init__(
        self,
        *,
        num_classes: int = 20,
        depth: int = 16,
        final_dim: int = 256,
        ff_channel: int | None = None,
        mult: int = 2,
        level: int = 4,
        dropout: float = 0.0,
        stem: Stem = "strided",
        patch_size: int = 4,
        stride: int = 2,
        in_chans: int = 3,
        upsample: Upsampler = "convtranspose",
        mode: BoundaryMode = "zero",
        mixer: Mixer = "dwt",
        wavelet: str = "haar",
        decoder_dims: Sequence[int] | None = None,
        resize_to_input: bool = True,
    ) -> None:
        super().__init__(
            depth=depth, final_dim=final_dim, ff_channel=ff_channel, mult=mult, level=level, dropout=dropout,
            stem=stem, patch_size=patch_size, stride=stride, in_chans=in_chans, upsample=upsample, mode=mode,
            mixer=mixer, wavelet=wavelet,
        )  # fmt: skip
        check_int("num_classes", num_classes, ge=1)
        check_bool("resize_to_input", resize_to_input)
        stages = decoder_upsamples(self.reduction)
        if decoder_dims is None:
            decoder_dims = [max(final_dim >> (i + 1), 1) for i in range(stages)]
        decoder_dims = check_int_list("decoder_dims", decoder_dims, ge=1)
        if len(decoder_dims) < stages:  # fewer x2 stages would silently predict at a fraction of the resolution
            raise ValueError(
                f"decoder_dims={decoder_dims}: the stem reduces the input {self.reduction}x, which needs at least "
                f"{stages} x2 decoder stage(s), one width each; give {stages} values (or leave it unset)"
            )
        self._record_config(
            dict(
                num_classes=num_classes, depth=depth, final_dim=final_dim, ff_channel=ff_channel, mult=mult,
                level=level, dropout=dropout, stem=stem, patch_size=patch_size, stride=stride, in_chans=in_chans,
                upsample=upsample, mode=mode, mixer=mixer, wavelet=wavelet, decoder_dims=decoder_dims,
                resize_to_input=resize_to_input,
            )
        )  # fmt: skip
        self.num_classes = num_classes
        self.resize_to_input = resize_to_input
        dims = [final_dim, *decoder_dims]
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(dims[i], dims[i + 1], 4, stride=2, padding=1) for i in range(len(decoder_dims))
        )
        self.classifier = nn.Conv2d(dims[-1], num_classes, 1)
        self._head_fit = _head_fit(stem, patch_size, stride, len(decoder_dims))

    def load_encoder_state_dict(self, state_dict: Mapping[str, Tensor]) -> list[str]:
        """Load ``stem.*``/``blocks.*`` from a classifier (or any WaveMix) state dict; returns loaded keys."""
        encoder = {k: v for k, v in state_dict.items() if k.startswith(("stem.", "blocks."))}
        if not encoder:
            raise ValueError("the state dict has no 'stem.*' or 'blocks.*' keys: it is not a wavemixer encoder")
        own = self.state_dict()
        for key, value in encoder.items():
            if key not in own:
                raise ValueError(f"encoder key {key!r} does not exist in this model: the architectures differ")
            if own[key].shape != value.shape:
                raise ValueError(
                    f"encoder weight {key!r} has shape {tuple(value.shape)}, this model needs "
                    f"{tuple(own[key].shape)}: final_dim/level/stem/in_chans must match the source model"
                )
        self.load_state_dict(encoder, strict=False)
        return sorted(encoder)

    def _prune_head(self) -> None:
        self.decoder = nn.ModuleList()
        self.classifier = nn.Identity()

    def forward_head(self, x: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """The decoder: per-pixel class logits, resized to ``size`` (the input's) when ``resize_to_input``."""
        for up in self.decoder:
            x = up(x)
        x = self.classifier(x)
        if size is None or not self.resize_to_input:
            return x
        if is_symbolic(x, *size) and self._head_fit is not None:  # a graph for every size: no size branch
            if self._head_fit == "crop":
                return crop_to(x, *size)
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
            return x[..., : size[0], : size[1]]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        size = (x.shape[-2], x.shape[-1])
        return self.forward_head(self.forward_features(x), size)


def _head_fit(stem: str, patch_size: int, stride: int, upsamples: int) -> str | None:
    """How the decoder output meets the input size at every size: ``crop`` (never smaller), ``resize``
    (never larger; at equal size a bilinear resize is the identity) or ``None`` (it depends on the size)."""
    up = 2**upsamples
    if stem == "strided":  # encoder side ceil(n / stride**2): up * ceil(n / s²) >= n when up >= s²
        return "crop" if up >= stride * stride else None
    return "resize" if up <= patch_size else None  # patchify: up * floor(n / p) <= n when up <= p
