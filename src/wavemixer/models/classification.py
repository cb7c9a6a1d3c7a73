"""WaveMix image classifier (timm model API)."""

from __future__ import annotations

from torch import Tensor, nn

from ..blocks import Upsampler
from ..body import Stem, WaveMixBody
from ..checks import Range, check_float, check_int
from ..dwt import BoundaryMode
from ..mixers import Mixer

__all__ = ["WaveMix"]


class WaveMix(WaveMixBody):
    """Stem, ``depth`` residual WaveMix blocks at one resolution, global average pool, linear head.

    Defaults are those of the reference ``wavemix.classification.WaveMix`` (ImageNet, 27.9 M params).
    ``level=1`` gives WaveMix-Lite. Inputs of any size at least the stem's patch work.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        depth: int = 16,
        final_dim: int = 192,
        ff_channel: int | None = None,
        mult: int = 2,
        level: int = 3,
        dropout: float = 0.5,
        stem: Stem = "patchify",
        patch_size: int = 4,
        stride: int = 2,
        in_chans: int = 3,
        upsample: Upsampler = "convtranspose",
        mode: BoundaryMode = "zero",
        mixer: Mixer = "dwt",
        wavelet: str = "haar",
        global_pool: str = "avg",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__(
            depth=depth,
            final_dim=final_dim,
            ff_channel=ff_channel,
            mult=mult,
            level=level,
            dropout=dropout,
            stem=stem,
            patch_size=patch_size,
            stride=stride,
            in_chans=in_chans,
            upsample=upsample,
            mode=mode,
            mixer=mixer,
            wavelet=wavelet,
        )
        self._record_config(
            dict(
                num_classes=num_classes, depth=depth, final_dim=final_dim, ff_channel=ff_channel, mult=mult,
                level=level, dropout=dropout, stem=stem, patch_size=patch_size, stride=stride, in_chans=in_chans,
                upsample=upsample, mode=mode, mixer=mixer, wavelet=wavelet, global_pool=global_pool,
                drop_rate=drop_rate,
            )
        )  # fmt: skip
        self.head_hidden_size = final_dim
        self.drop_rate = check_float("drop_rate", drop_rate, Range(ge=0, lt=1))
        self.head_drop = nn.Dropout(drop_rate)
        self._set_head(num_classes, global_pool)

    def _set_head(self, num_classes: int, global_pool: str) -> None:
        check_int("num_classes", num_classes, ge=0)  # 0 removes the classifier (a float or NaN must not)
        if not isinstance(global_pool, str) or global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '' (no pooling), got {global_pool!r}")
        if global_pool == "" and num_classes > 0:
            raise ValueError("global_pool='' (unpooled feature maps) needs num_classes=0")
        self.num_classes = num_classes
        self.global_pool = global_pool
        # a new head lives where the model lives and follows its train/eval mode (timm's reset_classifier)
        ref = self.stem[0].weight
        head = nn.Linear(self.num_features, num_classes, device=ref.device, dtype=ref.dtype) if num_classes else None
        self.head = (head or nn.Identity()).train(self.training)
        self.config.update(num_classes=num_classes, global_pool=global_pool)

    def get_classifier(self) -> nn.Module:
        """The final linear layer (timm's API)."""
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """New (randomly initialised) head for ``num_classes``; 0 makes ``forward`` return features.

        ``global_pool=None`` keeps the current pooling, except that a classifier added to an unpooled
        model (``global_pool=''``) brings back average pooling, the only input a linear head takes."""
        if global_pool is None:
            global_pool = "avg" if num_classes > 0 else self.global_pool
        self._set_head(num_classes, global_pool)

    def _prune_head(self) -> None:
        self.reset_classifier(0, "")

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pooling and the classifier; ``pre_logits`` stops before the classifier (timm's API)."""
        if self.global_pool == "avg":
            x = x.mean(dim=(-2, -1))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
