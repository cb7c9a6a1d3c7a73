"""The peer families: which library class each peer is, and how it is built at a width and depth.

Each peer is a maintained library class (timm, torchvision or segmentation_models_pytorch) built with its
own constructor arguments; only its width is free, so that :func:`wavemixer.bench.peers.solve_peer` can match
its parameter count to a budget. Depth follows the budget's scale (:func:`peer_depth`) and the input size is
passed where the class needs it (MLP-Mixer, ViT). A new family is one builder (a :class:`PeerBuilder`) and one
:class:`PeerFamily` entry in :data:`PEER_FAMILIES` or :data:`SEGMENTATION_PEER_FAMILIES`.

Two macro-designs (``design``):

- ``"imagenet"``: the library's own stem and stage count (what the class builds for 224-px inputs). Used from
  128 px, where its last stage is still 4x4; also what run folders saved before ``design`` existed rebuild.
- ``"small-input"`` (below 128 px), adapted the way practitioners adapt these classes to CIFAR-sized images,
  so that no stage runs on maps smaller than 4x4 and no kernel tap sees only zero padding:

  * ResNet: the CIFAR form of ResNet-18 (four stages of BasicBlocks, widths w/8 (rounded to even) .. w, at
    1, 1/2, 1/4 and 1/8 of the input): timm's 7x7/2 stem conv and max-pool replaced by one 3x3 stride-1 conv
    to the first stage's width (timm's ``stem_type='deep'`` is asked for only to size the stem's BatchNorm
    and the first stage's input; its three convs are replaced by that one conv). timm's ResNet always has
    four stages.
  * ConvNeXt: timm's four stages (depths d, d, 3d, d; widths w/8 .. w) behind a 3x3 stride-1 conv stem
    (the class's ``patch_size=1`` stem conv replaced), so the stages run at 1, 1/2, 1/4 and 1/8 of the input
    (timm's ConvNeXt always has four stages and downsamples in its first stage after a stride-2 stem).
  * PoolFormer (timm ``MetaFormer`` with pooling): three stages (depths d, d, 3d; widths w/4, w/2, w) behind
    a 3x3 stride-2 conv stem (the class's 7x7 stride-4 stem conv replaced; the same shape as its
    downsampling convs), at 1/2, 1/4 and 1/8 of the input.
  * ConvMixer: patch size giving 16x16 tokens; ViT and MLP-Mixer: patch 4 (8x8 tokens at 32 px, 16x16 at
    64 px), as in both designs.
  * U-Net (segmentation_models_pytorch): the original U-Net's four levels (deepest at 1/16) instead of smp's
    five (deepest at 1/32), stage widths w/4 .. w at 1/4 .. 1/16. Asked for by name
    (``--model-arg design=small-input``) at any size: the CamVid comparison crops 128 px.

  Replaced convs are initialised as the class initialises its own.

timm is an optional dependency (``pip install "wavemixer[timm]"``); torchvision comes with ``[train]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from wavemixer.optional_deps import require

__all__ = [
    "DESIGNS",
    "ISOTROPIC_DEPTHS",
    "PEER_FAMILIES",
    "SEGMENTATION_PEER_FAMILIES",
    "STAGED_DEPTHS",
    "PeerBuilder",
    "PeerFamily",
    "all_peer_families",
    "default_design",
    "peer_depth",
    "peer_family",
]

SMALL_INPUT_BELOW = 128
"""Inputs smaller than this many pixels a side get the ``"small-input"`` macro-design by default."""

DESIGNS = ("imagenet", "small-input")


def default_design(img_size: int) -> str:
    """The macro-design a peer gets at ``img_size`` when none is asked for."""
    return "small-input" if img_size < SMALL_INPUT_BELOW else "imagenet"


def _stage_widths(width: int) -> tuple[int, int, int, int]:
    """Four stages doubling in width up to ``width`` (the last stage), as ResNet/MetaFormer/ConvNeXt do."""
    return (max(1, width // 8), max(1, width // 4), max(1, width // 2), width)


def _three_stage_widths(width: int) -> tuple[int, int, int]:
    """Three stages doubling in width up to ``width``."""
    return (max(1, width // 4), max(1, width // 2), width)


def _resnet(*, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str) -> nn.Module:
    resnet = require("timm.models.resnet", "a peer model")
    if design == "imagenet":
        return resnet.ResNet(
            block=resnet.BasicBlock,
            layers=(depth,) * 4,
            channels=_stage_widths(width),
            stem_width=_stage_widths(width)[0],  # ignored by timm without stem_type='deep': the 64-wide 7x7 stem
            num_classes=num_classes,
            in_chans=in_chans,
        )
    channels = (max(2, width // 16 * 2), *_stage_widths(width)[1:])
    # stem_type='deep' makes the stem output (and the first stage's input) 2 * stem_width = channels[0]
    model = resnet.ResNet(
        block=resnet.BasicBlock,
        layers=(depth,) * 4,
        channels=channels,
        stem_type="deep",
        stem_width=channels[0] // 2,
        num_classes=num_classes,
        in_chans=in_chans,
    )
    model.conv1 = nn.Conv2d(in_chans, channels[0], 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # as ResNet.init_weights
    model.maxpool = nn.Identity()
    return model


def _init_like_timm(conv: nn.Conv2d) -> nn.Conv2d:
    """Truncated normal (std 0.02) weights and zero bias: how timm's ConvNeXt and MetaFormer initialise convs."""
    nn.init.trunc_normal_(conv.weight, std=0.02)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def _isotropic_patch(img_size: int, tokens: int) -> int:
    """The power-of-two patch size whose token grid per side is closest to ``tokens`` (at least 1 pixel)."""
    patch = 1
    while img_size / (patch * 2) >= tokens:
        patch *= 2
    return patch


def _convmixer(*, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str) -> nn.Module:
    convmixer = require("timm.models.convmixer", "a peer model")
    if design == "imagenet":
        patch = 2 if img_size <= 64 else 7
    else:
        patch = _isotropic_patch(img_size, 16)
    return convmixer.ConvMixer(
        dim=width, depth=depth, kernel_size=5, patch_size=patch, num_classes=num_classes, in_chans=in_chans
    )


def _mlp_mixer(*, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str) -> nn.Module:
    mixer = require("timm.models.mlp_mixer", "a peer model")
    return mixer.MlpMixer(
        num_classes=num_classes,
        img_size=img_size,
        in_chans=in_chans,
        patch_size=4 if img_size <= 64 else 16,
        num_blocks=depth,
        embed_dim=width,
    )


def _poolformer(*, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str) -> nn.Module:
    metaformer = require("timm.models.metaformer", "a peer model")
    # PoolFormer-v2 (the timm "poolformerv2_*" recipe): pooling token mixer, StarReLU MLP
    if design == "imagenet":
        return metaformer.MetaFormer(
            depths=(depth, depth, 3 * depth, depth),
            dims=_stage_widths(width),
            token_mixers=metaformer.Pooling,
            num_classes=num_classes,
            in_chans=in_chans,
        )
    dims = _three_stage_widths(width)
    model = metaformer.MetaFormer(
        depths=(depth, depth, 3 * depth),
        dims=dims,
        token_mixers=metaformer.Pooling,
        num_classes=num_classes,
        in_chans=in_chans,
    )
    model.stem.conv = _init_like_timm(nn.Conv2d(in_chans, dims[0], 3, stride=2, padding=1))
    return model


def _vit(*, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str) -> nn.Module:
    vit = require("timm.models.vision_transformer", "a peer model")
    # DeiT-style ViT with 2 heads (width is solved in steps of 2, fine enough for a 40k budget)
    return vit.VisionTransformer(
        img_size=img_size,
        patch_size=4 if img_size <= 64 else 16,
        in_chans=in_chans,
        num_classes=num_classes,
        embed_dim=width,
        depth=depth,
        num_heads=2,
    )


def _convnext(*, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str) -> nn.Module:
    convnext = require("timm.models.convnext", "a peer model")
    dims = _stage_widths(width)
    if design == "imagenet":
        return convnext.ConvNeXt(
            depths=(depth, depth, 3 * depth, depth),
            dims=dims,
            patch_size=2 if img_size <= 64 else 4,
            num_classes=num_classes,
            in_chans=in_chans,
        )
    model = convnext.ConvNeXt(
        depths=(depth, depth, 3 * depth, depth), dims=dims, patch_size=1, num_classes=num_classes, in_chans=in_chans
    )
    model.stem[0] = _init_like_timm(nn.Conv2d(in_chans, dims[0], 3, stride=1, padding=1))
    return model


def _mobilenet_v3_segmentation_backbone(width: int, in_chans: int) -> tuple[nn.Module, int, int, int, int]:
    """torchvision's dilated MobileNetV3-Large backbone at ``width_mult = width / 100``, the way its
    segmentation builders take it apart: (backbone, C2 index, C2 channels, C5 index, C5 channels)."""
    models = require("torchvision.models", "a peer model")
    features = models.mobilenet_v3_large(weights=None, dilated=True, width_mult=width / 100).features
    if in_chans != 3:  # torchvision builds RGB only: its first conv is replaced (same kernel, stride, width)
        first = features[0][0]
        conv = nn.Conv2d(in_chans, first.out_channels, first.kernel_size, first.stride, first.padding, bias=False)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out")  # as torchvision's MobileNetV3 initialises convs
        features[0][0] = conv
    stages = [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [len(features) - 1]
    low, high = stages[-4], stages[-1]  # output stride 8 and 16, as torchvision's LRASPP uses
    return features, low, features[low].out_channels, high, features[high].out_channels


def _lraspp(*, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str) -> nn.Module:
    seg = require("torchvision.models.segmentation.lraspp", "a peer model")
    extraction = require("torchvision.models.feature_extraction", "a peer model")
    features, low, low_ch, high, high_ch = _mobilenet_v3_segmentation_backbone(width, in_chans)
    backbone = extraction.create_feature_extractor(nn.Sequential(features), {f"0.{low}": "low", f"0.{high}": "high"})
    return _DictToTensor(seg.LRASPP(backbone, low_ch, high_ch, num_classes, inter_channels=128))


def _deeplabv3(*, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str) -> nn.Module:
    seg = require("torchvision.models.segmentation.deeplabv3", "a peer model")
    extraction = require("torchvision.models.feature_extraction", "a peer model")
    features, _, _, high, high_ch = _mobilenet_v3_segmentation_backbone(width, in_chans)
    backbone = extraction.create_feature_extractor(nn.Sequential(features), {f"0.{high}": "out"})
    # torchvision's DeepLabHead, whose ASPP width is fixed at 256 (1.5 M parameters on its own), rebuilt from
    # torchvision's ASPP with that width scaled like the backbone, so that small budgets can be met
    aspp = max(8, round(256 * width / 100 / 8) * 8)
    head = nn.Sequential(
        seg.ASPP(high_ch, [12, 24, 36], out_channels=aspp),
        nn.Conv2d(aspp, aspp, 3, padding=1, bias=False),
        nn.BatchNorm2d(aspp),
        nn.ReLU(),
        nn.Conv2d(aspp, num_classes, 1),
    )
    return _DictToTensor(seg.DeepLabV3(backbone, head))


def _unet(*, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str) -> nn.Module:
    smp = require("segmentation_models_pytorch", "the U-Net peer")
    # encoder: timm's ResNet (BasicBlock, ``depth`` blocks per stage) behind a deep 3x3 stem of widths (w/16,
    # w/16, w/8), so that small budgets are not spent on the 64-wide 7x7 stem; decoder: smp's, one stage per
    # encoder level, halving from w/2. "imagenet": smp's five levels, the last at 1/32 (4x4 on a 128-px crop),
    # stage widths w/8 .. w. "small-input": the original U-Net's four levels, the last at 1/16, stage widths
    # w/4 .. w at 1/4 .. 1/16 (timm builds a fourth stage that features_only leaves out)
    if design == "imagenet":
        levels, channels = 5, _stage_widths(width)
        decoder = (width // 2, width // 4, width // 8, width // 16, width // 16)
    else:
        levels, channels = 4, (*_three_stage_widths(width), width)
        decoder = (width // 2, width // 4, width // 8, width // 16)
    return smp.Unet(
        encoder_name="tu-resnet18",
        encoder_weights=None,
        encoder_depth=levels,
        decoder_channels=decoder,
        in_channels=in_chans,
        classes=num_classes,
        layers=(depth,) * 4,
        channels=channels,
        stem_type="deep",
        stem_width=width // 16,
    )


class _DictToTensor(nn.Module):
    """torchvision's segmentation models return ``{"out": logits}``; the trainers take the tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


class PeerBuilder(Protocol):
    """Builds a family's library model; keyword-only, so that no two of its integers can be swapped."""

    def __call__(
        self, *, width: int, depth: int, num_classes: int, in_chans: int, img_size: int, design: str
    ) -> nn.Module: ...


@dataclass(frozen=True)
class PeerFamily:
    """A library model class with one width knob; ``width`` runs over multiples of ``step``.

    ``build`` (a :class:`PeerBuilder`) returns the library model; its parameter count must grow with
    ``width`` (:func:`wavemixer.bench.peers.solve_peer` bisects on it). ``depths`` are the depths
    :func:`peer_depth` gives at the ~40k, ~0.5M and ~3M scales (blocks of an isotropic family, blocks per stage
    of a staged one); ``None`` where the architecture fixes its depth, which then refuses ``depth=``. It has no
    default: a staged family given an isotropic family's depths would still meet its budget, at a quietly
    shrunken width.
    """

    name: str
    source: str  # the class, as a user would name it
    build: PeerBuilder = dataclasses.field(repr=False)
    step: int
    min_width: int
    depths: tuple[int, int, int] | None
    task: str = "classification"


STAGED_DEPTHS = (1, 2, 2)
"""Blocks per stage of the staged families (ResNet, PoolFormer, ConvNeXt) at the three scales."""
ISOTROPIC_DEPTHS = (4, 8, 8)
"""Blocks of the isotropic families (ConvMixer, MLP-Mixer, ViT) at the three scales."""

PEER_FAMILIES: dict[str, PeerFamily] = {
    f.name: f
    for f in (
        PeerFamily(
            "resnet", "timm.models.resnet.ResNet (BasicBlock)", _resnet, step=2, min_width=8, depths=STAGED_DEPTHS
        ),
        PeerFamily(
            "convmixer", "timm.models.convmixer.ConvMixer", _convmixer, step=2, min_width=8, depths=ISOTROPIC_DEPTHS
        ),
        PeerFamily(
            "mlp_mixer", "timm.models.mlp_mixer.MlpMixer", _mlp_mixer, step=2, min_width=8, depths=ISOTROPIC_DEPTHS
        ),
        PeerFamily(
            "poolformer",
            "timm.models.metaformer.MetaFormer (Pooling)",
            _poolformer,
            step=2,
            min_width=8,
            depths=STAGED_DEPTHS,
        ),
        PeerFamily(
            "vit",
            "timm.models.vision_transformer.VisionTransformer",
            _vit,
            step=2,
            min_width=8,
            depths=ISOTROPIC_DEPTHS,
        ),
        PeerFamily("convnext", "timm.models.convnext.ConvNeXt", _convnext, step=2, min_width=8, depths=STAGED_DEPTHS),
    )
}
"""Classification peers. ResNet/PoolFormer/ConvNeXt: ``width`` is the last stage's, the stages are
(w//8, w//4, w//2, w); the isotropic ones (ConvMixer, MLP-Mixer, ViT) have one width throughout."""

SEGMENTATION_PEER_FAMILIES: dict[str, PeerFamily] = {
    f.name: f
    for f in (
        # width is 100 x MobileNetV3's width_mult (and scales the DeepLab head); depth is fixed by the architecture
        PeerFamily(
            "lraspp_mobilenet_v3",
            "torchvision.models.segmentation.lraspp_mobilenet_v3_large",
            _lraspp,
            step=1,
            min_width=10,
            task="segmentation",
            depths=None,
        ),
        PeerFamily(
            "deeplabv3_mobilenet_v3",
            "torchvision.models.segmentation.deeplabv3_mobilenet_v3_large",
            _deeplabv3,
            step=1,
            min_width=10,
            task="segmentation",
            depths=None,
        ),
        # width is the encoder's last stage
        PeerFamily(
            "unet",
            "segmentation_models_pytorch.Unet (timm ResNet encoder)",
            _unet,
            step=16,
            min_width=32,
            task="segmentation",
            depths=(1, 1, 1),  # one block per encoder stage at every scale
        ),
    )
}


def peer_depth(family: str, params: int) -> int:
    """Depth for a budget: shallow at the ~40k scale, deeper from ~0.5M, deeper still from ~3M.

    The family's :attr:`PeerFamily.depths` at the budget's scale: per-stage block counts for the staged
    families (ResNet, PoolFormer, ConvNeXt), blocks for the isotropic ones (ConvMixer, MLP-Mixer, ViT);
    1 where the architecture fixes its depth (MobileNetV3).
    """
    depths = peer_family(family).depths
    if depths is None:
        return 1
    return depths[0 if params < 200_000 else (1 if params < 2_000_000 else 2)]


def all_peer_families() -> dict[str, PeerFamily]:
    """Every peer family, classification and segmentation, by name."""
    return {**PEER_FAMILIES, **SEGMENTATION_PEER_FAMILIES}


def peer_family(name: str) -> PeerFamily:
    """The family called ``name`` (classification or segmentation); an unknown name is refused in one line."""
    families = all_peer_families()
    if name not in families:
        raise ValueError(f"unknown peer family {name!r}; expected one of {sorted(families)}")
    return families[name]
