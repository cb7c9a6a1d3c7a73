"""Peer architectures at a parameter budget: the models a user would pick instead of WaveMix.

Each peer is a maintained library class (timm or torchvision) built with its own constructor arguments;
only its width is solved for, so that its parameter count comes as close as the family allows to a
budget. Depth follows the budget's scale (:func:`peer_depth`) and the input size is passed where the class
needs it (MLP-Mixer, ViT). A peer is fully described by ``(family, width, depth, num_classes, in_chans,
img_size, design)`` — :class:`PeerSpec` — which is what results and run folders store, and
:func:`build_peer` rebuilds exactly the same model from it.

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

import contextlib
import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from wavemixer.optional_deps import require

__all__ = [
    "PEER_FAMILIES",
    "PEER_PREFIX",
    "SEGMENTATION_PEER_FAMILIES",
    "PeerBuilder",
    "PeerFamily",
    "PeerModel",
    "PeerSpec",
    "all_peer_families",
    "build_peer",
    "count_params",
    "create_peer",
    "default_design",
    "is_peer_name",
    "peer_depth",
    "solve_peer",
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
    ``width`` (:func:`solve_peer` bisects on it). ``depths`` are the depths :func:`peer_depth` gives at the
    ~40k, ~0.5M and ~3M scales (blocks of an isotropic family, blocks per stage of a staged one); ``None``
    where the architecture fixes its depth, which then refuses ``depth=``. It has no default: a staged family
    given an isotropic family's depths would still meet its budget, at a quietly shrunken width.
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
    depths = _family(family).depths
    if depths is None:
        return 1
    return depths[0 if params < 200_000 else (1 if params < 2_000_000 else 2)]


@dataclass(frozen=True)
class PeerSpec:
    """Everything that determines a peer model; JSON-friendly (``dataclasses.asdict``)."""

    family: str
    width: int
    depth: int
    num_classes: int
    in_chans: int
    img_size: int
    design: str = "imagenet"  # what configs saved before the small-input design rebuild

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"unknown peer design {self.design!r}; expected one of {list(DESIGNS)}")

    def build(self, device: torch.device | str | None = None) -> nn.Module:
        """The peer at its solved width (:func:`build_peer`)."""
        return build_peer(self, device=device)


#: the largest parameter budget a peer is built for (4 GB of fp32 weights); larger ones fail only once memory runs out
MAX_PEER_PARAMS = 1_000_000_000


def all_peer_families() -> dict[str, PeerFamily]:
    """Every peer family, classification and segmentation, by name."""
    return {**PEER_FAMILIES, **SEGMENTATION_PEER_FAMILIES}


def _check_depth_applies(fam: PeerFamily, depth: Any, who: str, option: str) -> None:
    """A depth is refused for a family whose architecture fixes it (named as the caller gives it)."""
    if depth is not None and fam.depths is None:
        raise ValueError(f"{who} has the depth its architecture fixes; {option} does not apply, got {depth!r}")


def _check_budget(params: Any, name: str = "params") -> None:
    """A parameter budget is a positive integer, at most :data:`MAX_PEER_PARAMS` (refused before any build)."""
    if not isinstance(params, int) or isinstance(params, bool) or not 1 <= params <= MAX_PEER_PARAMS:
        raise ValueError(
            f"{name} must be a positive integer of at most {MAX_PEER_PARAMS:,} (a parameter budget), got {params!r}"
        )


BUDGET_TOLERANCE = 0.10
"""How far a solved peer may miss its budget (the comparisons match parameters within 10 %)."""


def _check_met(family: str, params: int, depth: int, got: int) -> None:
    """Refuse a budget that no width meets within :data:`BUDGET_TOLERANCE` (too small for the family at
    this depth), rather than return a model of another size."""
    if abs(got - params) > BUDGET_TOLERANCE * params:
        raise ValueError(
            f"params={params:,} cannot be met by peer:{family} at depth {depth}: the closest width gives {got:,} "
            f"parameters (more than {BUDGET_TOLERANCE:.0%} off); give a larger budget or a smaller depth"
        )


def _check_positive(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"--model-arg {key} must be a positive integer, got {value!r}")


def _family(name: str) -> PeerFamily:
    families = all_peer_families()
    if name not in families:
        raise ValueError(f"unknown peer family {name!r}; expected one of {sorted(families)}")
    return families[name]


def build_peer(spec: PeerSpec, *, device: torch.device | str | None = None) -> nn.Module:
    """Build the library model that ``spec`` describes (randomly initialised)."""
    family = _family(spec.family)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        return family.build(
            width=spec.width, depth=spec.depth, num_classes=spec.num_classes, in_chans=spec.in_chans,
            img_size=spec.img_size, design=spec.design,
        )  # fmt: skip


def count_params(model: nn.Module) -> int:
    """All parameters of ``model`` (the budgets count every one, trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def solve_peer(
    family: str,
    params: int,
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    img_size: int = 32,
    depth: int | None = None,
    design: str | None = None,
) -> tuple[PeerSpec, int]:
    """The width whose parameter count is closest to ``params`` (models built on the meta device).

    ``design`` defaults to the one suited to ``img_size`` (:func:`default_design`).

    Returns the spec and its exact parameter count. Parameter count grows monotonically with width,
    so a doubling search followed by bisection needs ~15 builds.
    """
    fam = _family(family)
    _check_budget(params)
    _check_depth_applies(fam, depth, f"peer family {family!r}", "depth")
    if depth is not None:
        _check_positive("depth", depth)
    depth = peer_depth(family, params) if depth is None else depth
    design = default_design(img_size) if design is None else design

    def spec(units: int) -> PeerSpec:
        return PeerSpec(family, units * fam.step, depth, num_classes, in_chans, img_size, design)

    @functools.cache  # the search revisits widths; each count is a model build
    def count(units: int) -> int:
        return count_params(build_peer(spec(units), device="meta"))

    lo = max(1, fam.min_width // fam.step)
    if count(lo) >= params:
        _check_met(family, params, depth, count(lo))
        return spec(lo), count(lo)
    hi = lo * 2
    while count(hi) < params:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # invariant: count(lo) < params <= count(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < params else (lo, mid)
    best = min((lo, hi), key=lambda u: abs(count(u) - params))
    _check_met(family, params, depth, count(best))
    return spec(best), count(best)


PEER_PREFIX = "peer:"
"""``--model peer:<family>`` trains a peer with ``--model-arg params=N`` (a budget) or ``width=``/``depth=``."""


class PeerModel(nn.Module):
    """A peer as a savable model: the library model under ``.model``, its :class:`PeerSpec` as ``.config``.

    ``save_pretrained``/``from_pretrained`` store and rebuild it from that config, so a trained peer is
    evaluated, predicted with and compared exactly as a WaveMix model is. Its ``forward`` returns logits
    (classification) or the ``(B, classes, H, W)`` map (segmentation), as the WaveMix models do.
    """

    def __init__(
        self,
        *,
        family: str,
        width: int,
        depth: int,
        num_classes: int,
        in_chans: int = 3,
        img_size: int = 32,
        design: str = "imagenet",
    ) -> None:
        super().__init__()
        spec = PeerSpec(family, width, depth, num_classes, in_chans, img_size, design)
        self.model = build_peer(spec)
        self.config = dataclasses.asdict(spec)
        self.task = _family(family).task
        self.num_classes, self.in_chans = num_classes, in_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def is_peer_name(name: str | None) -> bool:
    """Whether ``--model`` names a peer (``peer:FAMILY``) rather than a registry model."""
    return isinstance(name, str) and name.startswith(PEER_PREFIX)


def create_peer(
    name: str,
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    model_args: dict[str, Any] | None = None,
    task: str = "classification",
) -> PeerModel:
    """``peer:<family>`` with ``params=N`` (solved to that budget) or ``width=W`` [``depth=D``], and optionally
    ``design=imagenet|small-input`` (default: the one suited to ``img_size``); the family must be one of
    ``task``'s."""
    family = name[len(PEER_PREFIX) :]
    families = all_peer_families()
    if family not in families or families[family].task != task:
        own = sorted(f.name for f in families.values() if f.task == task)
        what = f" is a {families[family].task} peer" if family in families else f": unknown peer family {family!r}"
        raise ValueError(
            f"--model {name}{what}; --task {task} takes "
            + (", ".join(f"{PEER_PREFIX}{f}" for f in own) if own else "no peers")
        )
    args = dict(model_args or {})
    unknown = sorted(set(args) - {"params", "width", "depth", "design"})
    if unknown:
        raise ValueError(
            f"--model {name} takes --model-arg params=N, or width=W and depth=D, and design=; got {unknown}"
        )
    if ("params" in args) == ("width" in args):
        raise ValueError(f"--model {name} needs exactly one of --model-arg params=N (a budget) or width=W")
    _check_depth_applies(families[family], args.get("depth"), f"--model {name}", "--model-arg depth")
    design = args.get("design", default_design(img_size))
    if design not in DESIGNS:
        raise ValueError(f"--model-arg design must be one of {list(DESIGNS)}, got {design!r}")
    if "params" in args:
        _check_budget(args["params"], "--model-arg params")  # named as the command line gives it
        spec, _ = solve_peer(
            family,
            args["params"],
            num_classes=num_classes,
            in_chans=in_chans,
            img_size=img_size,
            depth=args.get("depth"),
            design=design,
        )
        width, depth = spec.width, spec.depth
    else:
        width = args["width"]
        depth = args.get("depth", peer_depth(family, 0))
        for key, value in (("width", width), ("depth", depth)):
            _check_positive(key, value)
        fam = families[family]
        if width < fam.min_width or width % fam.step:
            raise ValueError(
                f"--model {name} --model-arg width must be a multiple of {fam.step} of at least {fam.min_width} "
                f"(what {fam.source} is built with), got {width}"
            )
        spec = PeerSpec(family, width, depth, num_classes, in_chans, img_size, design)
        if (n := count_params(build_peer(spec, device="meta"))) > MAX_PEER_PARAMS:  # counted before any allocation
            raise ValueError(
                f"--model-arg width={width} depth={depth} gives {n:,} parameters, more than the {MAX_PEER_PARAMS:,} "
                "a peer is built for; give a smaller width"
            )
    return PeerModel(family=family, width=width, depth=depth, num_classes=num_classes, in_chans=in_chans,
                     img_size=img_size, design=design)  # fmt: skip
