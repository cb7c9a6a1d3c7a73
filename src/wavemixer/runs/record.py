"""One finished run as the tables see it: read from a run folder, or from a row of a summary CSV.

A run folder is what ``wavemixer train`` writes: ``results.json``, ``summary.csv`` (the per-epoch history) and
``config.yaml``.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["METRICS", "TASK_METRICS", "Run", "find_run_folders", "read_run", "seed_suffix"]

TASK_METRICS: dict[str, str] = {"classification": "top1", "segmentation": "miou", "super_resolution": "psnr"}
"""Each task's selection metric (the ``select_metric`` its training selects the best epoch by)."""

METRICS: dict[str, tuple[str, int, str]] = {
    "top1": ("top-1 %", 2, " %"),
    "miou": ("mIoU %", 2, " %"),
    "pixel_acc": ("pixel acc %", 2, " %"),
    "psnr": ("PSNR (dB)", 2, " dB"),
    "ssim": ("SSIM", 4, ""),
}
"""Metric -> (table header, decimals, unit of a goal): how the tables print it."""

SECONDARY: dict[str, tuple[str, ...]] = {"top1": (), "miou": ("pixel_acc",), "psnr": ("ssim",)}
"""Test metrics shown beside the selection metric (as ``test_<name>`` columns)."""

_SEED = re.compile(r"-s(\d+)$")


def seed_suffix(name: str) -> tuple[str, int | None]:
    """``"resnet-s2"`` -> ``("resnet", 2)``; a name without the ``-s<seed>`` suffix keeps its seed ``None``."""
    found = _SEED.search(name)
    return (name[: found.start()], int(found.group(1))) if found and found.start() else (name, None)


@dataclass
class Run:
    """One finished run: its group (the runs that differ only in seed), scores and costs.

    ``scores`` holds the task's further test metrics (``{"pixel_acc": 83.1}``); ``extra`` columns a caller
    joins (step memory from a benchmark, the learning rate from the config). ``source`` says where it was read.
    """

    group: str
    seed: int
    metric: str
    best_val: float | None
    test: float | None
    model: str | None = None
    params: int | None = None
    epochs: int | None = None
    steps: int | None = None
    best_epoch: int | None = None
    wall_min: float | None = None
    peak_mem_mb: float | None = None
    goal: float | None = None
    time_to_goal_min: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    folder: Path | None = field(default=None, repr=False)
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)
    peak_mem_kind: str | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        """The run as one CSV row (the columns :func:`wavemixer.runs.read_summary_csv` reads back)."""
        out: dict[str, Any] = dict(
            group=self.group, seed=self.seed, model=self.model, params=self.params, epochs=self.epochs,
            steps=self.steps, best_epoch=self.best_epoch, metric=self.metric, goal=self.goal,
            best_val=self.best_val, test=self.test,
        )  # fmt: skip
        out |= {f"test_{k}": v for k, v in self.scores.items()}
        out |= dict(wall_min=self.wall_min, peak_mem_mb=self.peak_mem_mb, time_to_goal_min=self.time_to_goal_min)
        return out | self.extra

    def value(self, column: str) -> Any:
        """A column of :meth:`row` (``None`` when the run does not have it)."""
        return self.row().get(column)

    def set_goal(self, goal: float | None) -> None:
        """Minutes until the val metric first reached ``goal`` (``None``: not reached, or no goal)."""
        self.goal = goal
        self.time_to_goal_min = None
        if goal is None:
            return
        key = f"val_{self.metric}"
        for row in self.history:
            if row.get(key) not in (None, "") and float(row[key]) >= goal:
                self.time_to_goal_min = float(row["time_s"]) / 60
                return


def find_run_folders(path: Path) -> list[Path]:
    """``path`` itself when it is a finished run, else every finished run below it, at any depth, sorted."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if (path / "results.json").is_file():
        return [path]
    return sorted(p.parent for p in path.rglob("results.json"))


def read_run(folder: Path, group: str, *, metric: str | None = None) -> Run:
    """The run in ``folder``; ``metric`` defaults to its task's (``config.yaml``) or the one it recorded."""
    results = _read_json(folder / "results.json")
    config = _read_config(folder / "config.yaml")
    metric = metric or _metric_of(results, config, folder)
    val = results.get("best_val")
    best_val = val.get(metric) if isinstance(val, dict) else None
    test = results.get("test") if isinstance(results.get("test"), dict) else {}
    seed = results.get("seed", seed_suffix(folder.name)[1])
    if seed is None:
        raise ValueError(f"{folder / 'results.json'} records no seed, and the folder name has no -s<seed> suffix")
    wall = results.get("wall_time_s")
    return Run(
        group=group, seed=int(seed), metric=metric, best_val=_number(best_val), test=_number(test.get(metric)),
        model=results.get("model"), params=results.get("params"), epochs=results.get("epochs"),
        steps=results.get("steps"), best_epoch=results.get("best_epoch"),
        wall_min=None if wall is None else wall / 60, peak_mem_mb=_number(results.get("peak_memory_mb")),
        peak_mem_kind=results.get("peak_memory_kind"),
        scores={k: float(test[k]) for k in SECONDARY.get(metric, ()) if test.get(k) is not None},
        source=str(folder), folder=folder, config=config, history=_history(folder),
        extra={k: results[k] for k in ("cpu", "torch") if results.get(k)},  # where it trained
    )  # fmt: skip


def _metric_of(results: dict[str, Any], config: dict[str, Any], folder: Path) -> str:
    if config.get("task") in TASK_METRICS:
        return TASK_METRICS[config["task"]]
    val = results.get("best_val")
    for metric in TASK_METRICS.values():
        if isinstance(val, dict) and metric in val:
            return metric
    raise ValueError(f"{folder}: cannot tell the run's metric (none of {list(TASK_METRICS.values())}); give --metric")


def _history(folder: Path) -> list[dict[str, Any]]:
    """Per-epoch rows (``val_<metric>``, ``time_s`` in seconds since the start) of ``summary.csv``."""
    summary = folder / "summary.csv"
    if not summary.is_file():
        return []
    try:
        with summary.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{summary} is not a run's per-epoch table (CSV text): {exc}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}): an unfinished write?") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not JSON text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a run's results (a JSON object)")
    return data


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    from wavemixer.files import read_yaml

    data = read_yaml(path)  # a damaged one is refused in one line, like a damaged results.json
    return data if isinstance(data, dict) else {}


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
