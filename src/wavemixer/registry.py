"""Named WaveMix variants: every published configuration, with checked metadata.

Data only: building a variant with its weights and pretrained cfg is :func:`wavemixer.factory.create_model`,
which depends on this module and never the other way round."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from torch import nn

from .constants import (
    CIFAR10_MEAN_STD,
    CIFAR100_MEAN_STD,
    FASHION_MNIST_MEAN_STD,
    IMAGENET_MEAN_STD,
    MNIST_MEAN_STD,
    TINY_IMAGENET_MEAN_STD,
)
from .models.classification import WaveMix
from .models.segmentation import WaveMixSegmentation
from .models.super_resolution import WaveMixSR

__all__ = [
    "MODEL_CLASSES",
    "ModelKind",
    "ModelSpec",
    "get_spec",
    "list_models",
    "names_with_weights",
    "packaged_weights_dir",
    "register_model",
]

#: what a model class predicts (its head); the training tasks are :mod:`wavemixer.tasks`
ModelKind = Literal["classification", "segmentation", "super_resolution"]

MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "classification": WaveMix,
    "segmentation": WaveMixSegmentation,
    "super_resolution": WaveMixSR,
}

REF = "reference WaveMix repository"


@dataclass(frozen=True)
class ModelSpec:
    """A registered variant. ``num_params`` and ``gmacs`` are asserted against the built model by the tests.

    ``gmacs``: multiply-accumulates of convolutions, transposed convolutions and linear layers at
    ``input_size`` (B=1), in units of 1e9. The parameter-free Haar DWT's element-wise arithmetic is not
    included (:func:`wavemixer.flops.count_dwt_flops`; 0.02–5.3 % of the MACs of the registered models).
    """

    name: str
    task: ModelKind
    kwargs: dict[str, Any]
    num_params: int
    gmacs: float
    input_size: tuple[int, int, int]
    dataset: str
    metric: str = ""
    published: float | None = None
    source: str = ""
    notes: str = ""
    mean: tuple[float, ...] = IMAGENET_MEAN_STD["mean"]
    std: tuple[float, ...] = IMAGENET_MEAN_STD["std"]
    tags: tuple[str, ...] = field(default_factory=tuple)

    def build(self, **overrides: Any) -> nn.Module:
        """The model of this entry, ``overrides`` replacing its constructor arguments (an unknown one refused)."""
        unknown = set(overrides) - set(_init_params(MODEL_CLASSES[self.task]))
        if unknown:
            raise TypeError(
                f"{self.name}: unknown argument(s) {sorted(unknown)}; "
                f"{MODEL_CLASSES[self.task].__name__} takes {sorted(_init_params(MODEL_CLASSES[self.task]))}"
            )
        return MODEL_CLASSES[self.task](**{**self.kwargs, **overrides})


def _init_params(cls: type) -> list[str]:
    import inspect

    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (``create_model``, ``wavemixer models``, timm); a taken name is refused."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model name {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(pattern: str = "*", task: ModelKind | None = None) -> list[str]:
    """Registered names matching a shell-style ``pattern`` (and ``task``), sorted."""
    return sorted(n for n, s in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (task is None or s.task == task))


def get_spec(name: str, task: str | None = None) -> ModelSpec:
    """The registered variant ``name``; with ``task``, also check that it is a model of that task."""
    try:
        spec = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}{did_you_mean(str(name), _REGISTRY)}; `wavemixer models` or "
            "wavemixer.list_models() lists every name"
        ) from None
    if task is not None and spec.task != task:
        raise ValueError(
            f"model {name!r} is a {spec.task} model; choose a {task.replace('_', '-')} model "
            f"(`wavemixer models --task {task}`)"
        )
    return spec


def did_you_mean(name: str, names: Iterable[str], n: int = 3) -> str:
    """`` (did you mean a, b or c?)`` with the closest of ``names`` (difflib's ratio), or ``""`` when none is."""
    import difflib

    names = list(names)
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    if not close:  # a prefix typed as a word ("wavemix_lite") is close to no whole name
        close = sorted(x for x in names if x.startswith(name))[:n]
    if not close:
        return ""
    return " (did you mean " + (", ".join(close[:-1]) + " or " + close[-1] if len(close) > 1 else close[0]) + "?)"


def packaged_weights_dir(name: str) -> Path | None:
    """Folder (config.json + model.safetensors) of the weights shipped inside the package for ``name``, if any."""
    if "/" in name or os.sep in name:
        return None
    path = Path(str(resources.files("wavemixer") / "weights" / name))
    return path if (path / "config.json").is_file() else None


def names_with_weights() -> list[str]:
    """Registered variants whose weights ship with the package."""
    return [n for n in list_models() if packaged_weights_dir(n) is not None]


# --------------------------------------------------------------------------------------------------
# Variants. Numbers: params and GMACs computed from the architecture (reference doc §A.12, checked by
# tests); "published" is the metric the source reports, with the source named.
# --------------------------------------------------------------------------------------------------

_CIFAR10 = CIFAR10_MEAN_STD
_CIFAR100 = CIFAR100_MEAN_STD
_MNIST = MNIST_MEAN_STD
_FMNIST = FASHION_MNIST_MEAN_STD
_TINY = TINY_IMAGENET_MEAN_STD
_LITE_S1 = dict(level=1, stem="strided", stride=1)


def _cls(
    name: str, kwargs: dict[str, Any], params: int, gmacs: float, size: tuple[int, int, int], dataset: str,
    published: float | None, source: str, metric: str = "top-1 %", **extra: Any,
) -> None:  # fmt: skip
    """Register a classifier: this file's entries in :class:`ModelSpec`'s positional order, kept short."""
    register_model(ModelSpec(name, "classification", kwargs, params, gmacs, size, dataset, metric, published,
                             source, **extra))  # fmt: skip


# ImageNet-1k and other released reference checkpoints (reference doc §C.3).
_cls(
    "wavemix_192_16",
    dict(final_dim=192, depth=16, level=3),
    27_857_608,
    15.094,
    (3, 224, 224),
    "ImageNet-1k",
    75.06,
    f"{REF}, checkpoint wavemix_192_16_75.06.pth",
)
_cls(
    "wavemix_lite_192_16",
    dict(final_dim=192, depth=16, level=1),
    12_494_536,
    12.780,
    (3, 224, 224),
    "ImageNet-1k",
    71.18,
    f"{REF}, checkpoint wavemixlite_71.18.pth",
)
_cls(
    "wavemix_256_16",
    dict(final_dim=256, depth=16, level=3),
    49_416_808,
    26.805,
    (3, 224, 224),
    "ImageNet-1k",
    73.03,
    f"{REF}, checkpoint ImageNet73.03.pth",
)
_cls(
    "wavemix_256_16_l4",
    dict(final_dim=256, depth=16, level=4, stem="strided", stride=2),
    62_764_776,
    29.451,
    (3, 256, 256),
    "ImageNet-1k",
    70.42,
    f"{REF}, checkpoint imagenet4level_70.42.pth",
    notes="level 4 after a stride-4 stem: 256 px keeps every level's map even",
)
_cls(
    "wavemix_256_12_places365",
    dict(num_classes=365, final_dim=256, depth=12, level=2, patch_size=8),
    28_449_261,
    9.284,
    (3, 224, 224),
    "Places-365",
    54.94,
    f"{REF}, checkpoint places365_54.94.pth (paper Table 1: 56.45)",
)
_cls(
    "wavemix_192_16_tinyimagenet",
    dict(num_classes=200, final_dim=192, depth=16, level=3),
    27_703_208,
    1.232,
    (3, 64, 64),
    "Tiny-ImageNet",
    71.69,
    f"{REF}, checkpoint tiny_71.69.pth (78.76 at 128 px)",
    **_TINY,
)
_cls(
    "wavemix_lite_256_10_tinyimagenet",
    dict(num_classes=200, final_dim=256, depth=10, **_LITE_S1),
    13_637_192,
    15.315,
    (3, 64, 64),
    "Tiny-ImageNet",
    62.51,
    f"{REF}, checkpoint tinyimagenet_62.51.pth",
    notes="depth 10 from the checkpoint's size; its config file says 12",
    **_TINY,
)
_cls(
    "wavemix_192_16_galaxy10",
    dict(num_classes=10, final_dim=192, depth=16, level=3),
    27_666_538,
    19.714,
    (3, 256, 256),
    "Galaxy10 DECals",
    95.42,
    f"{REF}, checkpoint galaxy_95.42.pth",
    mean=(0.0,) * 3,
    std=(1.0,) * 3,
)
_cls(
    "wavemix_lite_192_16_galaxy10",
    dict(num_classes=10, final_dim=192, depth=16, level=1),
    12_303_466,
    16.694,
    (3, 256, 256),
    "Galaxy10 DECals",
    90.23,
    f"{REF}, checkpoint galaxy_90.23.pth",
    mean=(0.0,) * 3,
    std=(1.0,) * 3,
)
_cls(
    "wavemix_lite_144_7_cifar10",
    dict(num_classes=10, final_dim=144, depth=7, **_LITE_S1),
    3_042_550,
    0.878,
    (3, 32, 32),
    "CIFAR-10",
    94.58,
    f"{REF}, checkpoint cifar10_94.58.pth",
    **_CIFAR10,
)
_cls(
    "wavemix_lite_320_8_cifar10",
    dict(num_classes=10, final_dim=320, depth=8, **_LITE_S1),
    17_073_610,
    4.880,
    (3, 32, 32),
    "CIFAR-10",
    95.37,
    f"{REF}, checkpoint cifar10_95.37.pth",
    **_CIFAR10,
)
for _depth, _params, _macs, _top1 in ((7, 9_625_380, 2.772, 76.91), (8, 10_954_084, 3.124, 77.82),
                                      (10, 13_611_492, 3.829, 78.81)):  # fmt: skip
    _cls(
        f"wavemix_lite_256_{_depth}_cifar100",
        dict(num_classes=100, final_dim=256, depth=_depth, **_LITE_S1),
        _params,
        _macs,
        (3, 32, 32),
        "CIFAR-100",
        _top1,
        f"{REF}, checkpoint cifar100_{_top1}.pth",
        **_CIFAR100,
    )

# Parameter-efficiency table of the reference README (reference doc §E): the goal is the metric.
# The README says only "Upsampling" (same parameter count for every mode). We use bilinear: nearest
# upsampling after a stride-2 Haar DWT mixes only inside aligned 2x2 cells, so stacked blocks never grow
# the receptive field beyond the stem's; bilinear does (MNIST, 3 epochs: 95.6 % val vs 92.8 %, docs/results.md).
_cls(
    "wavemix_lite_8_10_mnist",
    dict(num_classes=10, final_dim=8, depth=10, in_chans=1, upsample="bilinear", dropout=0.0, **_LITE_S1),
    3_566,
    0.00088,
    (1, 28, 28),
    "MNIST",
    99.0,
    f"{REF} README parameter-efficiency table",
    metric="goal: top-1 % >=",
    **_MNIST,
)
_cls(
    "wavemix_lite_8_5_fmnist",
    dict(num_classes=10, final_dim=8, depth=5, in_chans=1, dropout=0.0, **_LITE_S1),
    7_156,
    0.00157,
    (1, 28, 28),
    "Fashion-MNIST",
    90.0,
    f"{REF} README parameter-efficiency table",
    metric="goal: top-1 % >=",
    **_FMNIST,
)
_cls(
    "wavemix_lite_32_7_cifar10_tiny",
    dict(num_classes=10, final_dim=32, depth=7, upsample="bilinear", dropout=0.0, **_LITE_S1),
    37_058,
    0.01434,
    (3, 32, 32),
    "CIFAR-10",
    80.0,
    f"{REF} README parameter-efficiency table",
    metric="goal: top-1 % >=",
    **_CIFAR10,
)
_cls(  # the contest's efficient 40k cell (docs/claims.md): stride-2 stem, blocks at 8x8, transposed-conv upsampling
    "wavemix_lite_16_7_s2_cifar10",
    dict(num_classes=10, final_dim=16, depth=7, upsample="convtranspose", dropout=0.0, level=1, stem="strided",
         stride=2),
    38_550,
    0.000731,
    (3, 32, 32),
    "CIFAR-10",
    73.39,
    "wavemixer's contest, docs/claims.md: mean test top-1 of seeds 1-3 (± 0.11) in the 40k-20min grid",
    metric="top-1 %, 20 min of one CPU thread",
    **_CIFAR10,
)  # fmt: skip
_cls(
    "wavemix_lite_64_6_cifar10",
    dict(num_classes=10, final_dim=64, depth=6, dropout=0.0, **_LITE_S1),
    520_106,
    0.15188,
    (3, 32, 32),
    "CIFAR-10",
    90.0,
    f"{REF} README parameter-efficiency table",
    metric="goal: top-1 % >=",
    **_CIFAR10,
)
_cls(  # the contest's efficient 0.5M cell (docs/claims.md): the 40k cell's design at the published 0.5M width
    "wavemix_lite_64_6_s2_cifar10",
    dict(num_classes=10, final_dim=64, depth=6, upsample="convtranspose", dropout=0.0, level=1, stem="strided",
         stride=2),
    520_106,
    0.00966,
    (3, 32, 32),
    "CIFAR-10",
    75.43,
    "wavemixer's contest, docs/claims.md: mean test top-1 of seeds 1-3 (± 0.77) in the 500k-20min grid",
    metric="top-1 %, 20 min of one CPU thread",
    **_CIFAR10,
)  # fmt: skip

# Semantic segmentation (reference doc §A.9).
register_model(ModelSpec(
    "wavemix_seg_256_16_l4", "segmentation", dict(num_classes=20, final_dim=256, depth=16, level=4), 63_164_628,
    67.66, (3, 256, 512), "Cityscapes val", "mIoU %", 82.70,
    "paper 2205.14375 v5 Table 1 (63 M model); reference wavemix.SemSegment defaults"))  # fmt: skip
register_model(ModelSpec(
    "wavemix_seg_192_16_cityscapes", "segmentation",
    dict(num_classes=20, final_dim=192, depth=16, level=3, stem="patchify", patch_size=4, dropout=0.5,
         decoder_dims=(128, 64)),
    28_190_388, 188.45, (3, 512, 1024), "Cityscapes val", "mIoU % (reference's own metric)", 83.04,
    f"{REF} README, checkpoint cityscapes_83.04.pth (ImageNet-75.06 body + 192-128-64-20 head)"))  # fmt: skip
register_model(ModelSpec(
    "wavemix_lite_seg_128_8", "segmentation", dict(num_classes=20, final_dim=128, depth=8, level=1), 2_900_852,
    34.116, (3, 512, 1024), "Cityscapes val", "", None, f"{REF} WaveMix_128_Lite_Cityscapes notebook"))  # fmt: skip
register_model(ModelSpec(
    "wavemix_lite_seg_256_7", "segmentation", dict(num_classes=20, final_dim=256, depth=7, level=1), 10_256_532,
    31.017, (3, 256, 512), "Cityscapes val", "", None, f"{REF} Semantic_Segmentation/WaveMix-Lite.py"))  # fmt: skip

# Single-image super-resolution (reference doc §A.10).
register_model(
    ModelSpec(
        "wavemix_sr_144_4_x2",
        "super_resolution",
        dict(scale=2, final_dim=144, depth=4, level=1),
        1_944_867,
        11.43,
        (3, 128, 128),
        "DIV2K x2",
        "",
        None,
        f"{REF} wavemix.sisr defaults",
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
    )
)
register_model(
    ModelSpec(
        "wavemix_sr_128_4_x2",
        "super_resolution",
        dict(scale=2, final_dim=128, depth=4, level=1, dropout=0.5),
        1_537_283,
        9.033,
        (3, 128, 128),
        "DIV2K x2",
        "",
        None,
        f"{REF} Image_Super_Resolution/Div2k_2x.py",
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
    )
)
register_model(
    ModelSpec(
        "wavemix_sr_144_4_x4",
        "super_resolution",
        dict(scale=4, final_dim=144, depth=4, level=1),
        1_986_267,
        3.540,
        (3, 64, 64),
        "DIV2K x4",
        "",
        None,
        "this library: the x2 reference model with a second x2 stage",
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
    )
)

# Sized for training on 2 CPU cores (docs/results.md): CamVid 11 classes, x2 SR with a bicubic skip.
register_model(ModelSpec(
    "wavemix_seg_64_6_l2_camvid", "segmentation", dict(num_classes=11, final_dim=64, depth=6, level=2), 881_867,
    0.6694, (3, 180, 240), "CamVid test (11 classes, 180x240)", "mIoU %", None,
    "this library: small Level-2 encoder, stride-2 stem (45x60 tokens at 180x240)"))  # fmt: skip
register_model(ModelSpec(
    "wavemix_sr_64_4_x2_residual", "super_resolution", dict(scale=2, final_dim=64, depth=4, level=1,
                                                            bicubic_residual=True),
    385_667, 1.4954, (3, 90, 120), "CamVid frames x2", "PSNR-Y dB", None,
    "this library: small x2 model predicting the residual over bicubic upsampling", mean=(0.0,) * 3,
    std=(1.0,) * 3))  # fmt: skip
