"""Defaults derived from the data: what an image folder's scan and statistics decide when options are unset.

Each rule prints "chose X because Y", and every choice is a flag the user can set instead. Also the
normalisation statistics of a training split and whether to decode a folder's images once into memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .datasets import FolderDataset, raw_image
from .images import image_features, unit_float
from .scan import FolderScan

if TYPE_CHECKING:
    from wavemixer.train.config import TrainConfig

__all__ = [
    "DECODE_ONCE_MAX_BYTES",
    "DEFAULT_LR",
    "DEFAULT_MODEL",
    "decode_once",
    "derive_defaults",
    "estimated_seconds_per_image",
    "image_statistics",
    "width_for",
]

STATS_SAMPLE = 2000  # images whose statistics give the normalisation and the out-of-distribution threshold


def image_statistics(ds: Any, size: tuple[int, int], n: int = STATS_SAMPLE) -> dict[str, Any]:
    """Per-channel mean/std of up to ``n`` evenly spaced training images, and the spread of per-image
    (mean, std) used by ``predict`` to flag inputs unlike the training data."""
    from torchvision.transforms.v2 import functional as TF

    idx = np.linspace(0, len(ds) - 1, num=min(n, len(ds))).round().astype(int)
    feats, s1, s2, count = [], 0.0, 0.0, 0
    for i in np.unique(idx):
        img = raw_image(ds, int(i))
        if tuple(img.shape[-2:]) != tuple(size):
            img = TF.resize(img, list(size), antialias=True)
        x = unit_float(img).double().flatten(1)
        s1, s2, count = s1 + x.sum(1), s2 + (x * x).sum(1), count + x.shape[1]
        feats.append(image_features(img))
    mean = s1 / count
    std = (s2 / count - mean * mean).clamp_min(1e-12).sqrt()
    f = torch.stack(feats)
    mu, sigma = f.mean(0), f.std(0, correction=min(1, len(f) - 1)).clamp_min(1e-3)  # one image: no spread
    z = ((f - mu) / sigma).abs().amax(1)
    return dict(
        mean=tuple(round(float(v), 4) for v in mean),
        std=tuple(round(max(float(v), 1e-3), 4) for v in std),
        input_stats=dict(
            features="per-channel mean and std of the [0, 1] image at input size",
            mu=[round(float(v), 5) for v in mu],
            sigma=[round(float(v), 5) for v in sigma],
            z_threshold=round(max(4.0, float(torch.quantile(z, 0.999))), 2),
        ),
    )


# Defaults derived from the data (image folders): each rule prints "chose X because Y"; every one is a flag.
_MAX_SIDE = 64  # larger images are resized: at full size a CPU run would take hours
_BUDGET_S = 300.0  # the default epoch budget aims at ~5 min of training
_MIN_EPOCHS, _MAX_EPOCHS = 3, 30  # whatever the budget says


def _duration(seconds: float) -> str:
    """``~45 s`` / ``~4 min``: an estimate, said as one."""
    return f"~{seconds:.0f} s estimated" if seconds < 90 else f"~{seconds / 60:.0f} min estimated"


def estimated_seconds_per_image(macs: float) -> float:
    """Training cost per image of the small default models on one CPU thread.

    Fit to the measured throughput of wavemix_lite_32_7_cifar10_tiny on a 2 vCPU Xeon Sapphire Rapids
    (scripts/bench_small_model_throughput.py): 0.8 MMACs -> 1,106 img/s, 3.9 MMACs -> 336 img/s,
    10.8 MMACs -> 161 img/s. A fixed rule, so a command trains the same epochs on every machine.
    """
    return 4e-4 + 6e-10 * macs


DEFAULT_MODEL = "wavemix_lite_16_7_s2_cifar10"
"""The model of image folders trained with no ``--model``: the contest's efficient WaveMix cell (transposed-conv
upsampling, width 16 at 40k parameters), best of the WaveMix cells at equal training time (docs/claims.md)."""
DEFAULT_LR = 1e-2
"""Its peak AdamW rate: every efficient WaveMix cell of the contest tuned to 1e-2 (warm-up 1 epoch, the default),
over 3e-3 and 3e-2 (docs/bench/contest/tuning-40k.md)."""


def width_for(n_train: int) -> tuple[int, str]:
    """Width (``final_dim``) of :data:`DEFAULT_MODEL` from the data set's size: fewer weights than images' worth
    of evidence overfit less and train faster; more data supports more capacity within the same minutes-long
    budget. 16 is the contest's 40k-parameter cell."""
    if n_train < 2_000:
        return 8, f"under 2,000 training images ({n_train:,})"
    if n_train < 100_000:
        return 16, "2,000 to 100,000 training images"
    return 32, f"100,000 or more training images ({n_train:,})"


def derive_defaults(
    cfg: TrainConfig, scan: FolderScan, n_train: int
) -> tuple[dict[str, Any], tuple[int, int], list[str]]:
    """Options left unset, chosen from what the scan found; the resized input size; the reasons."""
    from wavemixer.factory import create_model
    from wavemixer.flops import count_macs
    from wavemixer.train.config import default_lr

    notes: list[str] = []
    changes: dict[str, Any] = {}
    h, w = scan.size
    gray = scan.color_mode == "L"
    if not cfg.input_size and max(h, w) > _MAX_SIDE:
        f = _MAX_SIDE / max(h, w)
        h, w = max(8, round(h * f / 2) * 2), max(8, round(w * f / 2) * 2)
        notes.append(
            f"chose input size {h}x{w} because {scan.size[0]}x{scan.size[1]} images would make a CPU run take "
            f"hours (longest side capped at {_MAX_SIDE}; --input-size N to change)"
        )
    n_classes, in_chans = len(scan.classes), 1 if gray else 3

    counted: dict[tuple[str, str], tuple[int, float] | None] = {}

    def count(name: str, model_args: dict[str, Any]) -> tuple[int, float] | None:
        """(parameters, MACs per image) of a model the rules consider, each built once; None if invalid."""
        key = (name, repr(sorted(model_args.items())))
        if key not in counted:
            try:
                model = create_model(name, **{**model_args, "num_classes": n_classes, "in_chans": in_chans})
                counted[key] = sum(p.numel() for p in model.parameters()), float(count_macs(model, (in_chans, h, w)))
            except Exception:  # an invalid model is reported when the run builds it
                counted[key] = None
        return counted[key]

    def macs_of(name: str, model_args: dict[str, Any]) -> float | None:
        counts = count(name, model_args)
        return None if counts is None else counts[1]

    if cfg.model is None:
        changes["model"] = DEFAULT_MODEL
        stride = 2 if min(h, w) >= 24 else 1
        model_args = dict(cfg.model_args)
        if "stride" not in model_args and stride != 2:
            model_args["stride"] = stride
        width, why_width = width_for(n_train)
        if "final_dim" not in model_args and width != 16:
            model_args["final_dim"] = width
        if model_args != cfg.model_args:
            changes["model_args"] = model_args
        final_dim, stride = model_args.get("final_dim", 16), model_args.get("stride", 2)
        why = why_width if "final_dim" not in cfg.model_args else "as given"
        counts = count(DEFAULT_MODEL, model_args)
        size = f" ({counts[0] / 1000:,.0f}k params)" if counts else ""
        if "stride" in cfg.model_args:
            why_stride = "as given"
        elif stride == 2:
            fine = macs_of(DEFAULT_MODEL, {**model_args, "stride": 1})
            coarse = macs_of(DEFAULT_MODEL, model_args)
            ratio = f": {fine / coarse:.1f}x fewer MACs per image than stride 1 at {h}x{w}" if fine and coarse else ""
            why_stride = f"because the images are {h}x{w}, at least 24 px{ratio}"
        else:
            why_stride = f"because the images are {h}x{w}, under 24 px (stride 2 would halve them to under 12 px)"
        notes.append(
            f"chose model {DEFAULT_MODEL} with width {final_dim}{size}, {why}, and stem stride {stride} "
            f"{why_stride}; --model NAME / --model-arg final_dim=N / --model-arg stride=N to change"
        )
        if cfg.lr is None and (cfg.opt, cfg.recipe) != ("adamw", "standard"):
            changes["lr"] = default_lr(cfg)  # the contest tuned AdamW with the standard recipe only
        elif cfg.lr is None:
            changes["lr"] = DEFAULT_LR
            notes.append(
                f"chose learning rate {DEFAULT_LR:g} because the contest tuned every efficient WaveMix "
                "configuration to it (docs/claims.md; --lr to change)"
            )
    if cfg.epochs is None:
        model_name = changes.get("model", cfg.model)
        macs = macs_of(model_name, changes.get("model_args", cfg.model_args)) or 1e6
        per_image = estimated_seconds_per_image(macs)
        fits = _BUDGET_S / (per_image * max(n_train, 1))  # epochs the budget holds
        epochs = int(min(_MAX_EPOCHS, max(_MIN_EPOCHS, fits)))
        changes["epochs"] = epochs
        rate = f"~{1 / per_image:,.0f} img/s for {macs / 1e6:.1f} MMACs/image on one CPU thread, by a fixed rule"
        took = _duration(epochs * n_train * per_image)
        budget = f"~{_BUDGET_S / 60:.0f} min"
        if fits >= _MAX_EPOCHS:
            why = f", the most the default allows: the {budget} budget would hold ~{fits:,.0f}; these take {took}"
        elif fits < _MIN_EPOCHS:
            why = f", the fewest the default allows, though the {budget} budget holds ~{fits:.1f}; these take {took}"
        else:
            why = f" because {budget} of training is the default budget; these take {took}"
        notes.append(f"chose {epochs} epochs{why} ({rate}; --epochs N to change)")
    if cfg.crop_padding is None:
        changes["crop_padding"] = max(1, round(min(h, w) / 14))
        pad = changes["crop_padding"]
        notes.append(f"chose random-crop padding {pad} because it is ~1/14 of the {min(h, w)} px side")
    if cfg.hflip is None:
        changes["hflip"] = not gray
        notes.append(
            "chose no horizontal flips because grayscale images are usually glyphs (digits, letters, symbols) "
            "whose mirror image is another or no symbol (--hflip to flip)"
            if gray
            else "chose horizontal flips because colour images are usually photos of scenes or objects, "
            "which mirror into plausible images (--no-hflip to stop)"
        )
    if cfg.trivial_augment is None:
        changes["trivial_augment"] = False
        notes.append(
            "chose no TrivialAugment because it pays off over long schedules (~100 epochs), not in a "
            "minutes-long run (--trivial-augment to use it)"
        )
    return changes, (h, w), notes


DECODE_ONCE_MAX_BYTES = 2 * 2**30
"""``--decode-once`` by default: image folders whose decoded images take at most this much memory."""


def decode_once(wanted: bool | None, scan: FolderScan, splits: list[FolderDataset], notes: list[str]) -> bool:
    """Decode the splits' images into memory once (``--decode-once``; by default when they fit in 2 GiB).

    Cheap models otherwise spend most of an epoch decoding JPEGs, which would time the decoder, not the model.
    Returns whether the data is now in memory."""
    chans = 3 if scan.color_mode == "RGB" else 1
    images = sum(len(d) for d in splits)
    per_image = sum(n * h * w for (h, w), n in scan.sizes.items()) / max(1, sum(scan.sizes.values())) * chans
    estimate = per_image * images
    limit = DECODE_ONCE_MAX_BYTES / 2**30
    if wanted is False or (wanted is None and estimate > DECODE_ONCE_MAX_BYTES):
        if wanted is None:
            notes.append(
                f"chose to decode images at every access because decoded they would take {estimate / 2**30:.1f} GiB, "
                f"more than {limit:.0f} GiB (--decode-once to hold them in memory anyway)"
            )
        return False
    held = sum(d.decode_all() for d in splits)
    why = "--decode-once asked for it" if wanted else f"they fit in {limit:.0f} GiB (--no-decode-once to stop)"
    notes.append(f"chose to decode the {images:,} images once into memory ({held / 2**20:,.0f} MB) because {why}")
    return True
