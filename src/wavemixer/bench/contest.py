"""The fair contest: WaveMix configurations and peer architectures, each at its best, at equal compute.

What makes it fair, and where each part lives:

* **Contenders** (:func:`contenders`): every peer family solved to the parameter budget in the macro-design
  suited to the input size (:mod:`wavemixer.bench.peer_families`), and WaveMix in its published configuration and its
  efficient ones (stride-2 stem, patch-2 stem; bilinear, transposed-conv and pixel-shuffle upsampling), each
  with its width re-solved to the budget (:func:`solve_wavemix`).
* **One recipe, tuned per model with the same budget** (:data:`wavemixer.bench.tuning.TUNING_GRID`): AdamW,
  weight decay 0.05 (none on norms, biases, position embeddings and class tokens), cosine schedule, batch
  128, crop + flip, fp32 on one thread; peak learning rate and warm-up chosen per contender on seed 0's
  validation split.
* **Equal compute, not equal epochs** (:data:`TIME_BUDGETS`): each contender's optimizer steps are fixed once
  from one interleaved throughput sweep (:func:`steps_for_budget`; ``--max-steps``, the last epoch may be
  partial), so runs continued on another machine train the same steps. Images are decoded once into memory
  (``--decode-once``), so cheap models are not timed on the JPEG decoder.
* **Selection on val, test once, 3 seeds** (1, 2, 3: seed 0 chose the setting, so its runs are not reused).

``scripts/contest.py`` is the command line (sweep, tune, run, summarize; training and tables through
:mod:`wavemixer.runs`); this module holds the definitions, so that tests can check them without training.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavemixer.bench import tuning as T
from wavemixer.bench.peers_suite import MIXER_VARIANTS
from wavemixer.bench.tuning import Setting

__all__ = [
    "BUDGETS",
    "CONTEST_PEERS",
    "MIXERS",
    "PEER_TITLES",
    "PRESCREEN",
    "TIME_BUDGETS",
    "Contender",
    "best_wavemix",
    "budget_steps",
    "contender",
    "contenders",
    "long_grid_selection",
    "macs_per_image",
    "mixer_variant",
    "solve_wavemix",
    "steps_for_budget",
    "title",
    "train_command",
    "val_means",
]

BUDGETS: dict[str, int] = {"40k": 37_058, "500k": 520_106}
"""Parameter budgets: the published WaveMix-Lite-32/7 (CIFAR-10 "tiny") and WaveMix-Lite-64/6 counts."""

WAVEMIX_DEPTH = {"40k": 7, "500k": 6}
"""Blocks of the WaveMix contenders: the published model's depth at each budget (width is solved)."""

PUBLISHED = {"40k": "wavemix_lite_32_7_cifar10_tiny", "500k": "wavemix_lite_64_6_cifar10"}
"""The registered published configuration at each budget (the reference rows)."""

STEMS: dict[str, dict[str, Any]] = {
    "s1": dict(stem="strided", stride=1),  # the published CIFAR models: every block at 32x32
    "s2": dict(stem="strided", stride=2),  # two stride-2 convs: blocks at 8x8
    "p2": dict(stem="patchify", patch_size=2),  # patch-2 stem: blocks at 16x16
}
UPSAMPLERS = ("bilinear", "convtranspose", "pixelshuffle")
CONTEST_PEERS = ("resnet", "convnext", "poolformer", "vit", "mlp_mixer", "convmixer")
"""The peer families entered in the contest (each a ``wavemixer.bench.peers.PEER_FAMILIES`` name)."""

IMG_SIZE = 32
NUM_CLASSES = 10
TRAIN_IMAGES = 45_000  # CIFAR-10's 50,000 training images less the 10 % validation split
BATCH_SIZE = 128
STEPS_PER_EPOCH = TRAIN_IMAGES // BATCH_SIZE

DATA = ["--dataset", "cifar10", "--no-trivial-augment", "--decode-once"]
RECIPE = [
    "--batch-size", str(BATCH_SIZE), "--opt", "adamw", "--weight-decay", "0.05", "--sched", "cosine",
    "--threads", "1", "--workers", "0", "--amp", "none",
]  # fmt: skip
"""Every contest run: AdamW (wd 0.05, none on 1-D parameters, position embeddings, class tokens), cosine to
1 % of the peak, batch 128, crop + flip (CIFAR-10's defaults), fp32 on one thread — fp32 so that a run
continued on a CPU of another kind (bf16 or not) computes the same thing."""


PRESCREEN = Setting(3e-3, 0.2)
"""The one setting every WaveMix configuration trains at first (seed 0, the short budget): the middle learning
rate and the short warm-up (a 1-epoch warm-up would be the whole run of the slowest configurations)."""

TIME_BUDGETS: dict[str, tuple[str, float]] = {
    "40k-5min": ("40k", 5.0),
    "40k-20min": ("40k", 20.0),
    "500k-20min": ("500k", 20.0),
}
"""Grid name -> (parameter budget, minutes of one thread's training steps per run)."""

TUNING_BUDGET = "40k-5min"
"""The budget the tuning grid trains at (the short one); 0.5M contenders take their 40k configuration's
setting (tuning at 0.5M would cost 4x the 40k grid here)."""


@dataclass(frozen=True)
class Contender:
    """One model of the contest at one parameter budget: a ``wavemixer train --model`` and its arguments."""

    key: str
    budget: str
    model: str
    model_args: dict[str, Any] = field(default_factory=dict)
    kind: str = "peer"  # "peer" | "wavemix"
    published: bool = False

    @property
    def tuning_key(self) -> str:
        """The 40k contender whose tuned setting this one uses (the same key)."""
        return self.key

    def model_flags(self) -> list[str]:
        """The model as ``wavemixer train`` flags: ``--model`` and one ``--model-arg`` per argument."""
        flags = ["--model", self.model]
        for key, value in self.model_args.items():
            flags += ["--model-arg", f"{key}={value}"]
        return flags

    def build(self) -> Any:
        """The randomly initialised model, as ``wavemixer train`` builds it (for audits and counts)."""
        if self.kind == "peer":
            from wavemixer.bench.peers import create_peer

            return create_peer(
                self.model, num_classes=NUM_CLASSES, in_chans=3, img_size=IMG_SIZE, model_args=self.model_args
            )
        from wavemixer.registry import get_spec

        return get_spec(self.model).build(**self.model_args)


def _count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.cache
def solve_wavemix(budget: str, stem: str, upsample: str) -> tuple[int, int, int]:
    """``(final_dim, depth, params)`` of the WaveMix-Lite configuration closest to the budget's parameter count.

    Depth is the published model's at that budget unless ``final_dim`` (multiples of 4: the block's C -> C/4
    reduction needs them) cannot come within 5 % there; then one block more or less is tried as well.
    Built on the meta device.
    """
    import torch

    from wavemixer import WaveMix

    target = BUDGETS[budget]

    @functools.cache
    def count(dim: int, depth: int) -> int:
        with torch.device("meta"):
            model = WaveMix(
                num_classes=NUM_CLASSES, final_dim=dim, depth=depth, level=1, dropout=0.0, upsample=upsample,
                **STEMS[stem],
            )  # fmt: skip
        return _count(model)

    def closest(depth: int) -> tuple[int, int, int]:
        lo, hi = 2, 4  # in units of 4 channels; the count grows with the width
        while count(4 * hi, depth) < target:
            lo, hi = hi, hi * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if count(4 * mid, depth) < target else (lo, mid)
        dim = min((4 * lo, 4 * hi), key=lambda d: abs(count(d, depth) - target))
        return dim, depth, count(dim, depth)

    best = closest(WAVEMIX_DEPTH[budget])
    if abs(best[2] / target - 1) > 0.05:
        best = min((closest(d) for d in (best[1] - 1, best[1], best[1] + 1)), key=lambda r: abs(r[2] - target))
    return best


def _wavemix(budget: str, stem: str, upsample: str) -> Contender:
    """The published model of ``budget`` with stem, upsampler and width set (every argument explicit)."""
    from wavemixer.registry import get_spec

    dim, depth, _ = solve_wavemix(budget, stem, upsample)
    args = dict(final_dim=dim, depth=depth, upsample=upsample, dropout=0.0, **STEMS[stem])
    published = get_spec(PUBLISHED[budget]).kwargs
    is_published = all(published.get(k, v) == v for k, v in args.items()) and stem == "s1"
    return Contender(f"wavemix-{stem}-{upsample}", budget, PUBLISHED[budget], args, "wavemix", is_published)


PEER_TITLES = {
    "resnet": "ResNet (small-input)", "convnext": "ConvNeXt (small-input)", "poolformer": "PoolFormer (small-input)",
    "vit": "ViT", "mlp_mixer": "MLP-Mixer", "convmixer": "ConvMixer",
}  # fmt: skip
UPSAMPLER_TITLES = {"bilinear": "bilinear", "convtranspose": "transposed conv", "pixelshuffle": "pixel shuffle"}


def title(budget: str, key: str) -> str:
    """A contender's name in the docs' tables: ``WaveMix s2, transposed conv``, ``ResNet (small-input)``, the
    budget's published configuration marked ``(published)``; an unknown key as it is."""
    if key in PEER_TITLES:
        return PEER_TITLES[key]
    stem, _, upsample = key.removeprefix("wavemix-").partition("-")
    if not key.startswith("wavemix-") or stem not in STEMS or upsample not in UPSAMPLER_TITLES:
        return key
    published = budget in BUDGETS and contender(budget, key).published
    return f"WaveMix {stem}, {UPSAMPLER_TITLES[upsample]}" + (" (published)" if published else "")


def contenders(budget: str) -> list[Contender]:
    """Every WaveMix configuration (stems x upsamplers) and every peer family at ``budget``."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; expected one of {sorted(BUDGETS)}")
    out = [_wavemix(budget, stem, up) for stem in STEMS for up in UPSAMPLERS]
    out += [Contender(f, budget, f"peer:{f}", {"params": BUDGETS[budget]}) for f in CONTEST_PEERS]
    return out


def contender(budget: str, key: str) -> Contender:
    """The contender ``key`` at ``budget`` (an unknown key refused, naming the known ones)."""
    found = {c.key: c for c in contenders(budget)}
    if key not in found:
        raise ValueError(f"unknown contender {key!r} at {budget}; expected one of {sorted(found)}")
    return found[key]


@functools.cache
def macs_per_image(budget: str, key: str) -> int:
    """Exact multiply-accumulates per 3x32x32 image of a contender (:func:`wavemixer.flops.count_macs`): the
    throughput sweep's own figure was rounded to 0.1 M, which hides the differences between the 40k models."""
    from wavemixer.flops import count_macs

    return int(count_macs(contender(budget, key).build(), (3, IMG_SIZE, IMG_SIZE)))


# ------------------------------------------------------------------------------------------ result CSVs
# ------------------------------------------------------------------------------------------ throughput
def read_throughput(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The committed sweep: ``(budget, key, threads) -> row`` (``ms_per_step`` of a batch-128 training step)."""
    rows = {}
    for line, row in enumerate(T.read_rows(path, ("budget", "key", "threads", "ms_per_step"), "a throughput CSV"), 2):
        if row["ms_per_step"]:
            T.number(row, "ms_per_step", path, line)
        rows[(row["budget"], row["key"], T.number(row, "threads", path, line, int))] = row
    return rows


def steps_for_budget(ms_per_step: float, minutes: float) -> int:
    """Optimizer steps (batch 128) that take ``minutes`` at ``ms_per_step`` (at least one)."""
    return max(1, round(minutes * 60_000 / ms_per_step))


def budget_steps(throughput: Path, grid: str) -> dict[str, int]:
    """Steps per contender key for a time-budget grid, from the one-thread rows of the committed sweep."""
    budget, minutes = TIME_BUDGETS[grid]
    rows = read_throughput(throughput)
    out = {}
    for c in contenders(budget):
        row = rows.get((budget, c.key, 1))
        if row is not None and row.get("ms_per_step"):
            out[c.key] = steps_for_budget(float(row["ms_per_step"]), minutes)
    return out


# ------------------------------------------------------------------------------------------ commands
TUNING_FLAGS = ("--skip-test",)
"""What a tuning run adds to its command: it selects on val, so the test set is not evaluated."""


def train_command(
    contender: Contender,
    setting: Setting,
    *,
    steps: int,
    seed: int,
    output: Path,
    data_dir: str | None,
    tuning: bool = False,
) -> list[str]:
    """The ``wavemixer train`` arguments of one contest run (without the interpreter): ``steps`` optimizer
    steps, i.e. ``ceil(steps / 351)`` epochs with the last one cut short. A ``tuning`` run leaves the test set
    alone (``--skip-test``)."""
    cmd = ["train", *DATA, *RECIPE, *setting.flags(), *contender.model_flags()]
    cmd += TUNING_FLAGS if tuning else ()
    epochs = math.ceil(steps / STEPS_PER_EPOCH)
    cmd += ["--epochs", str(epochs), "--max-steps", str(steps), "--seed", str(seed), "--output", str(output)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    return cmd


# ------------------------------------------------------------------------------------------ tuning
def prescreen_selection(path: Path, budget: str = "40k") -> list[str]:
    """The WaveMix configurations that go on to full tuning: for each stem, the upsampler with the best val
    top-1 at :data:`PRESCREEN`, and the published configuration. Resource cost alone cannot rank them (the
    cheap stems train more steps in the same time), so this one-setting screen does."""
    screened: set[str] = set()  # diverged runs included: tried, and not tried again
    scores: dict[str, float] = {}
    for line, row in enumerate(T.read_rows(path, ("key", "lr", "warmup", "val_top1"), "a tuning CSV"), 2):
        at_screen = Setting(T.number(row, "lr", path, line), T.number(row, "warmup", path, line)) == PRESCREEN
        if at_screen and row["key"].startswith("wavemix-"):
            screened.add(row["key"])
            if row.get("val_top1") not in (None, ""):  # a diverged run has no score
                scores[row["key"]] = T.number(row, "val_top1", path, line)
    missing = [c.key for c in contenders(budget) if c.kind == "wavemix" and c.key not in screened]
    if missing:
        raise ValueError(f"the pre-screen in {path} lacks {missing}; run it first (tune --prescreen)")
    chosen = []
    for stem in STEMS:
        scored = [k for k in scores if k.startswith(f"wavemix-{stem}-")]
        if not scored:
            raise ValueError(f"the pre-screen in {path}: every {stem} configuration diverged, so none goes on")
        chosen.append(max(scored, key=scores.__getitem__))
    published = next(c.key for c in contenders(budget) if c.published)
    return list(dict.fromkeys([published, *chosen]))


LONG_GRID_KEEP = 6
"""Contenders a 20-minute grid trains: the budget's published configuration and the five best others at the
short budget. Fixed before the short grid finished, from this machine's compute: each contender costs about
36 minutes of wall time per 20-minute grid (3 seeds on 2 lanes), and all ten would take about 6 hours per grid."""


def val_means(grid_csv: Path) -> dict[str, float]:
    """Mean *validation* top-1 per contender in a grid's per-run CSV (never the test set); an error unless every
    contender has all its seeds (ranking a grid half-trained would favour its early runs)."""
    from wavemixer.runs.summary_csv import read_summary_csv

    scores: dict[str, list[float]] = {}
    for run in read_summary_csv(grid_csv):
        if run.best_val is not None:
            scores.setdefault(run.group, []).append(float(run.best_val))
    seeds = max((len(v) for v in scores.values()), default=0)
    incomplete = sorted(k for k, v in scores.items() if len(v) < seeds)
    if not scores or incomplete:
        raise ValueError(
            f"{grid_csv}: the grid is not finished ({incomplete or 'no runs'} lack seeds); "
            "rank contenders only when every one has all its seeds"
        )
    return {k: statistics.mean(v) for k, v in scores.items()}


def long_grid_selection(short: Path, budget: str, keep: int = LONG_GRID_KEEP) -> list[str]:
    """The contender keys a long grid at ``budget`` trains: the published configuration of ``budget`` (the
    reference row, always kept) and the ``keep - 1`` others with the highest mean val top-1 in the short grid
    (:func:`val_means`). The issue's rule: when the grid does not fit, drop the contenders that are
    weakest at the short budget, never seeds."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1 (the published row), got {keep}")
    scores = val_means(short)
    every = {c.key: c for c in contenders(budget)}
    unknown = sorted(set(scores) - set(every))
    if unknown:
        raise ValueError(f"{short}: contenders {unknown} do not exist at {budget}")
    published = next(c.key for c in every.values() if c.published)
    ranked = sorted((k for k in scores if k != published), key=lambda k: -scores[k])
    return [published, *ranked[: keep - 1]]


# ------------------------------------------------------------------------------------------ mixer ablation
MIXERS: dict[str, dict[str, Any]] = {name.removeprefix("dwt/"): args for name, args in MIXER_VARIANTS.items()}
"""The token mixers of the ablation inside the block (the benchmark suite's variants): the Haar DWT against the
db2 wavelet, random fixed filters, a learned 2x2 conv, 2x2 average pooling and a learned Fourier filter."""


def best_wavemix(grid_csv: Path) -> str:
    """The WaveMix configuration with the highest mean val top-1 in a grid's per-run CSV (:func:`val_means`)."""
    scores = {k: v for k, v in val_means(grid_csv).items() if k.startswith("wavemix-")}
    if not scores:
        raise ValueError(f"{grid_csv} has no WaveMix runs")
    return max(scores, key=scores.__getitem__)


def mixer_variant(base: Contender, mixer: str) -> Contender:
    """``base`` with its token mixer swapped (key ``<base>-<mixer>``; the Haar variant is ``base`` itself)."""
    if base.kind != "wavemix":
        raise ValueError(f"{base.key} is not a WaveMix configuration; the mixer ablation swaps WaveMix's mixer")
    if mixer not in MIXERS:
        raise ValueError(f"unknown mixer {mixer!r}; expected one of {sorted(MIXERS)}")
    if mixer == "haar":
        return base
    return Contender(f"{base.key}-{mixer}", base.budget, base.model, {**base.model_args, **MIXERS[mixer]}, "wavemix")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN for one value: no spread to report)."""
    vals = [float(v) for v in values]
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else math.nan)
