"""Runs grouped into the seeds of one training, and their mean ± sample std.

A group is named by the run folder's path below the summarised folder, less its ``-s<seed>`` suffix
(``resnet-s2`` -> ``resnet``; ``tune/resnet/lr0.01-s0`` -> ``tune/resnet/lr0.01``), or by the recorded
training options (``config.yaml`` less the seed and where/how it ran). Runs of one group must be the same
training but for the seed: the same model, epochs, steps, metric and goal, and one run per seed; anything
else is refused rather than averaged.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavemixer.runs.record import Run, find_run_folders, read_run, seed_suffix
from wavemixer.runs.summary_csv import merge_runs, read_summary_csv

__all__ = ["GROUP_BY", "Group", "Stat", "check_same_training", "collect_runs", "group_runs", "read_runs"]

GROUP_BY = ("folder", "config")

IGNORED_OPTIONS = frozenset(
    {"seed", "output", "resume", "force", "quiet", "log", "log_interval", "threads", "workers", "device",
     "data_dir", "download", "stop_after_steps"}
)  # fmt: skip
"""Training options that do not change what is trained (where it ran, how it logged): not part of a group."""

SAME_TRAINING = ("model", "epochs", "steps", "metric", "goal")
"""What the runs of one group must share (``None``, not recorded, matches anything but the goal)."""


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation and count of one metric over a group's seeds."""

    mean: float
    std: float  # sample std; 0.0 for one value
    n: int


@dataclass
class Group:
    """The runs of one training over seeds."""

    name: str
    runs: list[Run]

    @property
    def seeds(self) -> int:
        return len(self.runs)

    def first(self, column: str) -> Any:
        """The column of the first run that has it (the same for every run: params, model, epochs)."""
        return next((v for r in self.runs if (v := r.value(column)) is not None), None)

    def stat(self, column: str) -> Stat | None:
        """Mean ± sample std of the column over the runs that have it; ``None`` when none has."""
        values = [float(v) for r in self.runs if (v := r.value(column)) not in (None, "")]
        if not values:
            return None
        return Stat(statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))


def read_runs(
    paths: Sequence[Path], *, by: str = "folder", metric: str | None = None, goal: float | None = None
) -> list[Run]:
    """Every finished run under ``paths`` (run folders or folders of them), named by their group."""
    if by not in GROUP_BY:
        raise ValueError(f"unknown grouping {by!r}; expected one of {GROUP_BY}")
    found = [(folder, path) for path in paths for folder in find_run_folders(path)]
    runs = [read_run(folder, _folder_group(folder, path), metric=metric) for folder, path in found]
    if by == "config":
        _name_by_config(runs)
    for run in runs:
        run.set_goal(goal)
    return runs


def collect_runs(
    paths: Sequence[Path],
    *,
    by: str = "folder",
    metric: str | None = None,
    goal: float | None = None,
    merge: Path | None = None,
) -> list[Run]:
    """The finished runs under ``paths`` and, with ``merge``, the rows of that summary CSV not trained here."""
    runs = read_runs(paths, by=by, metric=metric, goal=goal)
    return merge_runs(runs, read_summary_csv(merge)) if merge is not None else runs


def group_runs(
    runs: Iterable[Run],
    *,
    goal: float | None = None,
    expected: Mapping[str, Mapping[str, Any]] | None = None,
    same: Sequence[str] = SAME_TRAINING,
) -> list[Group]:
    """Runs grouped by name, sorted by seed, each group checked to be one training (see the module).

    ``goal``: the time-to-accuracy goal every run must have been measured at (rows of an earlier CSV carry
    theirs). ``expected``: per group, what its runs must be (``model``, ``epochs``, ...; ``source`` names
    where that comes from), e.g. a grid's cell definition. ``same``: what the runs of a group must share
    (runs stopped early by ``--patience`` differ in epochs and steps: leave those out).
    """
    runs = sorted(runs, key=lambda r: (r.group, r.seed))
    metrics: dict[str, set[str]] = {}
    for run in runs:
        metrics.setdefault(run.metric, set()).add(run.group)
    if len(metrics) > 1:
        which = "; ".join(f"{m}: {', '.join(sorted(g))}" for m, g in sorted(metrics.items()))
        raise ValueError(f"runs of different metrics (tasks) in one table ({which}); summarise them apart (--only)")
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    out = [Group(name, members) for name, members in groups.items()]
    for group in out:
        check_same_training(group, {"goal": goal, **((expected or {}).get(group.name) or {})}, same=same)
    return out


def check_same_training(
    group: Group, expected: Mapping[str, Any] | None = None, *, same: Sequence[str] = SAME_TRAINING
) -> None:
    """Refuse a group whose runs are not one training over seeds.

    Every run must match ``expected`` (the keys it has; ``source`` names where it comes from) and the group's
    first run in ``same`` (default :data:`SAME_TRAINING`), and have a seed of its own.
    """
    seen: dict[int, Run] = {}
    for run in group.runs:
        if run.seed in seen:
            raise ValueError(f"two runs of {group.name} with seed {run.seed}: {seen[run.seed].source} and {run.source}")
        seen[run.seed] = run
    expected = dict(expected or {})
    first = group.runs[0]
    checks = [(expected, str(expected.pop("source", "this summary")))] if expected else []
    checks.append(({k: first.value(k) for k in same}, first.source))
    for want, what in checks:
        for run in group.runs:
            for key in same:
                if key not in want:
                    continue
                have, should = run.value(key), want[key]
                if key == "goal" and have != should:
                    raise ValueError(
                        f"{run.source} ({group.name} seed {run.seed}) timed val ≥ goal {_goal(have)}; {what} "
                        f"times val ≥ goal {_goal(should)}: not comparable (give the same goal, --goal)"
                    )
                if have != should and None not in (have, should):
                    raise ValueError(
                        f"{run.source} ({group.name} seed {run.seed}) is {_describe(run.row())}; {what} is "
                        f"{_describe(want)}: not the same training"
                    )


def _describe(values: Mapping[str, Any]) -> str:
    """``model M, 2 epochs, 702 steps, metric top1, goal 50``: the keys of :data:`SAME_TRAINING` it has."""
    parts = []
    for key in SAME_TRAINING:
        value = values.get(key)
        if key not in values or (value is None and key != "goal"):
            continue
        if key in ("epochs", "steps"):
            parts.append(f"{value} {key}")
        else:
            parts.append(f"{key} {_goal(value) if key == 'goal' else value}")
    return ", ".join(parts)


def _goal(goal: float | None) -> str:
    return "none" if goal is None else f"{goal:g}"


def _folder_group(folder: Path, path: Path) -> str:
    """``<path>/<grid>/<cell>-s<seed>`` -> ``<grid>/<cell>``; a run folder given itself keeps its own name."""
    relative = folder.relative_to(path).as_posix() if folder != path else folder.name
    return seed_suffix(relative)[0]


def _name_by_config(runs: list[Run]) -> None:
    """Group by the recorded options, named by the model and the options in which groups of it differ."""
    keys: dict[str, dict[str, Any]] = {}
    for run in runs:
        options = {k: v for k, v in run.config.items() if k not in IGNORED_OPTIONS} or {"model": run.model}
        keys[json.dumps(options, sort_keys=True, default=str)] = options
        run.group = json.dumps(options, sort_keys=True, default=str)
    varying = {k for opts in keys.values() for k in opts if len({json.dumps(o.get(k)) for o in keys.values()}) > 1}
    names: dict[str, str] = {}
    for key, options in keys.items():
        args = options.get("model_args") or {}
        name = str(options.get("model")) + (f"[{','.join(f'{k}={v}' for k, v in args.items())}]" if args else "")
        name += "".join(f" {k}={options.get(k)}" for k in sorted(varying - {"model", "model_args"}))
        names[key] = name if name not in names.values() else f"{name} ({len(names) + 1})"
    for run in runs:
        run.group = names[run.group]
