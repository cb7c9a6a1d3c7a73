"""Sample efficiency: the fair contest's contenders trained on 50 and 500 CIFAR-10 images per class.

The practical side of the paper's priors: does WaveMix need fewer labelled images? Each contender of the contest
(:mod:`wavemixer.bench.contest`: the peers and the WaveMix configurations it tuned at 40k, plus the best WaveMix
configuration at 0.5M) trains on a class-balanced subset fixed by the seed (``--per-class``), its validation
split carved class-balanced from the remaining training images (:data:`VAL_FRACTION` of the two together), and
is tested once on the whole 10,000-image test set.

* **Its own tuning**: small data moves the best learning rate, so the contest's lr x warm-up grid
  (:data:`~wavemixer.bench.tuning.TUNING_GRID`) is trained again on each subset (seed 0, val only), with the
  contest's edge rule.
* **To a validation plateau**: early stopping after :attr:`Regime.patience` epochs without a better val top-1,
  at most :attr:`Regime.max_epochs` (the cosine schedule spans the maximum) — not equal compute: with little
  data the question is the accuracy each model can reach, and every one of them reaches its plateau.
* Otherwise the contest's recipe and execution path (AdamW, wd 0.05 without decay on norms, biases and
  embeddings, crop + flip, fp32, one thread, images decoded once); seeds 1-3 (each a different subset).

``scripts/small_data.py`` is the command line; run folders are ``<runs>/<regime>/tune/<entry>/<setting>-s0`` and
``<runs>/<regime>/<entry>-s<seed>``, an entry being ``<budget>-<contender>`` (``40k-resnet``).
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavemixer.bench import contest as C
from wavemixer.bench import tuning as T

__all__ = [
    "REGIMES",
    "VAL_FRACTION",
    "Entry",
    "Regime",
    "entries",
    "full_data_figure",
    "full_data_scores",
    "overlapping_entries",
    "sample_efficiency_table",
    "seed_groups",
    "train_command",
]

Scores = dict[str, tuple[float, float, int]]
"""contender key -> test top-1 (mean, std, seeds)"""
FullData = dict[str, list[tuple[str, Scores]]]
"""budget -> the contest grids that give its full-data figures, in order of preference: (grid name, scores)"""


VAL_FRACTION = 0.2
"""The val split, a fifth of train + val: 12 images per class at 50 per class, 125 at 500."""


@dataclass(frozen=True)
class Regime:
    """A training-set size and how long its runs may train."""

    per_class: int
    batch_size: int
    max_epochs: int
    patience: int

    @property
    def name(self) -> str:
        return f"pc{self.per_class}"

    @property
    def train_images(self) -> int:
        return self.per_class * C.NUM_CLASSES

    @property
    def steps_per_epoch(self) -> int:
        return self.train_images // self.batch_size  # the loader drops the last partial batch


REGIMES: dict[str, Regime] = {
    r.name: r
    for r in (
        # 500 images: batch 32 (15 steps an epoch; at 128 an epoch would be 3 steps), up to 200 epochs
        Regime(per_class=50, batch_size=32, max_epochs=200, patience=20),
        # 5,000 images: the contest's batch 128 (39 steps an epoch), up to 60 epochs
        Regime(per_class=500, batch_size=128, max_epochs=60, patience=10),
    )
}


@dataclass(frozen=True)
class Entry:
    """One contender of the sample-efficiency grid: a contest contender at its parameter budget."""

    contender: C.Contender

    @property
    def key(self) -> str:
        return f"{self.contender.budget}-{self.contender.key}"


def entries(tuned_40k: Sequence[str], wavemix_500k: str | None) -> list[Entry]:
    """The 40k contenders the contest tuned (``tuned_40k``, contest keys) and, when given, one WaveMix
    configuration at 0.5M (its contest key, e.g. ``wavemix-s2-convtranspose``)."""
    found = {c.key: c for c in C.contenders("40k")}
    unknown = sorted(set(tuned_40k) - set(found))
    if unknown:
        raise ValueError(f"unknown 40k contender(s) {unknown}; expected some of {sorted(found)}")
    out = [Entry(found[k]) for k in tuned_40k]
    if wavemix_500k is not None:
        big = C.contender("500k", wavemix_500k)
        if big.kind != "wavemix":
            raise ValueError(f"--wavemix-500k: {wavemix_500k!r} is a peer; give a WaveMix configuration")
        out.append(Entry(big))
    return out


def train_command(
    entry: Entry,
    setting: T.Setting,
    regime: Regime,
    *,
    seed: int,
    output: Path,
    data_dir: str | None,
    tuning: bool = False,
) -> list[str]:
    """The ``wavemixer train`` arguments of one run: the contest's recipe on the regime's subset, early stopping;
    a ``tuning`` run leaves the test set alone (``--skip-test``)."""
    recipe = list(C.RECIPE)
    recipe[recipe.index("--batch-size") + 1] = str(regime.batch_size)
    cmd = ["train", *C.DATA, *recipe, *setting.flags(), *entry.contender.model_flags()]
    cmd += C.TUNING_FLAGS if tuning else ()
    cmd += ["--per-class", str(regime.per_class), "--val-fraction", f"{VAL_FRACTION:g}"]
    cmd += ["--epochs", str(regime.max_epochs), "--patience", str(regime.patience)]
    cmd += ["--seed", str(seed), "--output", str(output)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    return cmd


def full_data_scores(path: Path) -> Scores:
    """Test top-1 mean, std and seeds per contender of a contest grid's committed summary CSV (``group`` is the
    contender key): the full-data column of the sample-efficiency table."""
    values: dict[str, list[float]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("test") not in (None, ""):
                values.setdefault(row["group"], []).append(float(row["test"]))
    return {
        k: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v)) for k, v in sorted(values.items())
    }


def full_data_figure(full: FullData, key: str) -> tuple[str, tuple[float, float, int]] | None:
    """The full-data figure of an entry (``40k-resnet``) and the grid it comes from: the first of its budget's
    grids that trained the contender (the 20-minute grids keep six contenders; the 5-minute grid has all)."""
    budget, _, contender = key.partition("-")
    for grid, scores in full.get(budget, []):
        if contender in scores:
            return grid, scores[contender]
    return None


def _cell(stat: tuple[float, float, int] | None) -> str:
    if stat is None:
        return "–"
    mean, std, n = stat
    return f"{mean:.2f}" if n == 1 else f"{mean:.2f} ± {std:.2f}"


def sample_efficiency_table(by_regime: dict[str, Scores], full: FullData, params: dict[str, int]) -> list[str]:
    """Markdown: one row per entry, test top-1 % (mean ± std over seeds) at each regime's size and on the full
    training set, with the contest grid that figure comes from (:func:`full_data_figure`)."""
    names = [n for n in REGIMES if n in by_regime]
    head = " | ".join(f"{REGIMES[n].per_class} per class" for n in names)
    lines = [
        f"| contender | params | {head} | full data (4,500 per class) | full-data grid |",
        "|---|---:|" + "---|" * (len(names) + 2),
    ]
    keys = sorted({k for scores in by_regime.values() for k in scores})
    for key in keys:
        cells = [_cell(by_regime[n].get(key)) for n in names]
        found = full_data_figure(full, key)
        cells += [_cell(found[1]), found[0]] if found else ["–", "–"]
        lines.append(f"| {key} | {params.get(key, 0):,} | " + " | ".join(cells) + " |")
    return lines


def sample_efficiency_plot(by_regime: dict[str, Scores], full: FullData, path: Path) -> None:
    """Test top-1 against training images per class (log axis), one line per entry; WaveMix solid, peers dashed."""
    from wavemixer.runs import Stat
    from wavemixer.runs.plot import score_curves

    series: dict[str, list[tuple[float, Stat]]] = {}
    full_per_class = C.TRAIN_IMAGES // C.NUM_CLASSES
    for key in sorted({k for scores in by_regime.values() for k in scores}):
        points = [(REGIMES[n].per_class, s) for n in REGIMES if (s := by_regime.get(n, {}).get(key)) is not None]
        if (found := full_data_figure(full, key)) is not None:
            points.append((full_per_class, found[1]))
        series[key] = [(float(x), Stat(*stat)) for x, stat in points]
    score_curves(series, path, xlabel="training images per class", ylabel="test top-1 % (mean ± std over seeds)",
                 title="CIFAR-10: accuracy against training-set size")  # fmt: skip


def seed_groups(root: Path) -> tuple[list[Any], list[Any]]:
    """The seed runs under ``root`` (a regime's run or record folder; its ``tune/`` runs left out), grouped by
    entry (:func:`wavemixer.runs.group_runs`), and the runs. Early stopping gives the seeds of one entry
    different epochs; their model and metric must agree, and their setting (an edge run after some seeds had
    finished would otherwise mix two settings in one row): a ValueError names the entry that mixes two."""
    from wavemixer.runs import collect_runs, group_runs

    runs = [r for r in (collect_runs([root]) if root.is_dir() else []) if not r.group.startswith("tune/")]
    groups = group_runs(runs, same=("model", "metric", "goal"))
    for g in groups:
        settings = {(r.config.get("lr"), r.config.get("warmup_epochs")) for r in g.runs}
        if len(settings) > 1:
            raise ValueError(f"{root}/{g.name}: its seeds trained at different settings {sorted(settings)}; "
                             "retrain the ones off the tuned setting")  # fmt: skip
    return groups, runs


def waiting_entries(root: Path, groups: Sequence[Any]) -> list[str]:
    """The entries fully tuned under ``root/tune`` (every setting of the grid) that lack a finished run of one
    of seeds 1-3 among ``groups`` (:func:`seed_groups` of ``root``). A regime's table waits for them: a table of
    some entries, or of some seeds, would rank what was not measured alike. Empty where ``root`` holds no
    tuning, so records of seed runs alone make a table."""
    tried: dict[str, set[T.Setting]] = {}
    for row in T.tuning_rows(root / "tune"):
        tried.setdefault(row["key"], set()).add(T.Setting(row["lr"], row["warmup"]))
    seeds = {g.name: {r.seed for r in g.runs} for g in groups}
    return [k for k in sorted(tried) if T.fully_tuned(tried[k]) and not {1, 2, 3} <= seeds.get(k, set())]


def overlapping_entries(root: Path, entries: Collection[str] | None = None) -> list[str]:
    """The entries under ``root`` (of ``entries``, when given: the grid's current ones) whose test mean ± std
    over seeds 1-3 overlaps another's: they get seeds 4-5 (:func:`wavemixer.bench.claims.overlapping_groups`,
    the rule CamVid uses)."""
    from wavemixer.bench.claims import overlapping_groups

    return overlapping_groups(seed_groups(root)[0], where=str(root), keys=entries)


def scores_of(groups: Sequence[Any]) -> Scores:
    """``group name -> (mean, std, n)`` of the test score, from :func:`wavemixer.runs.group_runs` groups."""
    out = {}
    for g in groups:
        stat = g.stat("test")
        if stat is not None:
            out[g.name] = (stat.mean, stat.std, stat.n)
    return out
