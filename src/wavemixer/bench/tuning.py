"""Tuning a grid's learning rate and warm-up: the one protocol the fair contest, the small-data grids and
the CamVid grid share.

Every contender trains the same :data:`TUNING_GRID` on seed 0 and is judged on val (:func:`read_tuning`:
highest val top-1, ties to the lower rate); the edge rule (:func:`edge_settings`, :func:`edge_rounds`)
extends a contender whose best rate lies at a boundary of what it tried. A finished run's row comes from its
folder (:func:`tuning_rows`), a tuning CSV keeps the rows trained elsewhere (:func:`merge_tuning`), and
:func:`tuning_table` writes the Markdown table.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavemixer.bench.report import csv_text
from wavemixer.files import atomic_write_text
from wavemixer.runs.records import diverged

__all__ = [
    "EDGE_MAX_STEPS",
    "EDGE_STEP",
    "GRID_LRS",
    "TUNING_GRID",
    "Setting",
    "edge_rounds",
    "edge_runs",
    "edge_settings",
    "fully_tuned",
    "merge_tuning",
    "number",
    "read_rows",
    "read_tuning",
    "setting_of",
    "tried",
    "tried_rates",
    "tuning_rows",
    "tuning_table",
    "write_csv",
]


@dataclass(frozen=True)
class Setting:
    """One point of the tuning grid."""

    lr: float
    warmup: float

    @property
    def key(self) -> str:
        """The setting in a run folder's name: ``lr0.003-wu0.2`` (``-s<seed>`` follows)."""
        return f"lr{self.lr:g}-wu{self.warmup:g}"

    def flags(self) -> list[str]:
        """The setting as ``wavemixer train`` flags."""
        return ["--lr", f"{self.lr:g}", "--warmup-epochs", f"{self.warmup:g}"]


GRID_LRS = (1e-3, 3e-3, 1e-2)
TUNING_GRID = tuple(Setting(lr, wu) for lr in GRID_LRS for wu in (0.2, 1.0))
"""Peak learning rate x warm-up epochs, the same six settings for every contender (seed 0, val split)."""

EDGE_STEP = 3.0
EDGE_MAX_STEPS = 3
"""The edge rule: a contender whose best setting lies at the lowest or highest learning rate it has tried
trains both warm-ups once more at that rate / or x :data:`EDGE_STEP` (:func:`edge_settings`), and again
while its best stays at a boundary (at most :data:`EDGE_MAX_STEPS` steps beyond the grid; a diverged rate
counts as tried), so that no model is held at a boundary of what it tried. Applied alike to every contender."""


def read_rows(path: Path, columns: Sequence[str], what: str) -> list[dict[str, str]]:
    """The rows of a committed result CSV, refused in one line when it lacks ``columns`` (a hand-edited or
    foreign file), so a grid never stops on a ``KeyError`` deep inside."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} is not {what}: it lacks the column(s) {missing} (it needs {list(columns)})")
        return list(reader)


def number(row: dict[str, str], column: str, path: Path, line: int, kind: type = float) -> Any:
    """``row[column]`` as a number, refused in one line that names the file, line and column."""
    try:
        return kind(row[column])
    except (TypeError, ValueError):
        raise ValueError(f"{path} line {line}: column {column} must be a number, got {row[column]!r}") from None


def fully_tuned(tried: Collection[Setting]) -> bool:
    """Whether a contender has trained at every setting of :data:`TUNING_GRID` (its edge runs aside): only
    then is its best setting chosen (a pre-screen trains some at one setting)."""
    return set(tried) >= set(TUNING_GRID)


def read_tuning(path: Path, *, complete: bool = False, within: Sequence[Setting] | None = None) -> dict[str, Setting]:
    """Each contender's best setting from a committed tuning CSV (highest val top-1; ties: lower lr).

    ``complete``: only contenders with a run at every setting of :data:`TUNING_GRID` (a pre-screen trains
    some contenders at one setting; those are not tuned). ``within``: choose among these settings only (the
    grid without its edge runs, for :func:`edge_settings`)."""
    best: dict[str, tuple[float, Setting]] = {}
    seen: dict[str, set[Setting]] = {}
    allowed = set(within) if within is not None else None
    for line, row in enumerate(read_rows(path, ("key", "lr", "warmup", "val_top1"), "a tuning CSV"), 2):
        s = Setting(number(row, "lr", path, line), number(row, "warmup", path, line))
        seen.setdefault(row["key"], set()).add(s)
        if (allowed is not None and s not in allowed) or row.get("val_top1") in (None, ""):
            continue  # off the settings asked for, or diverged (tried, no score)
        val = number(row, "val_top1", path, line)
        cur = best.get(row["key"])
        if cur is None or val > cur[0] or (val == cur[0] and s.lr < cur[1].lr):
            best[row["key"]] = (val, s)
    return {k: s for k, (_, s) in best.items() if not complete or fully_tuned(seen[k])}


def edge_settings(best: dict[str, Setting], tried: dict[str, set[float]] | None = None) -> dict[str, list[Setting]]:
    """Per contender whose best learning rate is the lowest or highest of the rates it tried (``tried``; default:
    the grid's): the two settings one :data:`EDGE_STEP` beyond it (both warm-ups), unless that rate was tried
    already or lies more than :data:`EDGE_MAX_STEPS` steps beyond the grid. Empty for the others."""
    lo, hi = min(GRID_LRS) / EDGE_STEP**EDGE_MAX_STEPS, max(GRID_LRS) * EDGE_STEP**EDGE_MAX_STEPS
    out = {}
    for key, s in best.items():
        rates = (tried or {}).get(key) or set(GRID_LRS)
        if s.lr not in (min(rates), max(rates)):
            continue
        lr = float(f"{(s.lr * EDGE_STEP if s.lr == max(rates) else s.lr / EDGE_STEP):.3g}")
        if lo * 0.99 <= lr <= hi * 1.01 and not any(math.isclose(lr, r, rel_tol=1e-3) for r in rates):
            out[key] = [Setting(lr, wu) for wu in (0.2, 1.0)]
    return out


def tried_rates(tuning: Path) -> dict[str, set[float]]:
    """The learning rates each contender of a tuning CSV has trained at (diverged runs included)."""
    out: dict[str, set[float]] = {}
    for line, row in enumerate(read_rows(tuning, ("key", "lr"), "a tuning CSV"), 2):
        out.setdefault(row["key"], set()).add(number(row, "lr", tuning, line))
    return out


def edge_runs(tuning: Path) -> dict[str, list[Setting]]:
    """The edge rule's next settings per contender from a tuning CSV (:func:`edge_settings` of each fully tuned
    contender's best setting among all it tried); refuses a tuning that does not exist yet. ``tune --edge``
    repeats until this is empty."""
    if not tuning.is_file():
        raise FileNotFoundError(f"--edge reads {tuning}, which does not exist: tune the grid first")
    return edge_settings(read_tuning(tuning, complete=True), tried_rates(tuning))


def edge_rounds(tuning: Path, train_round: Callable[[dict[str, list[Setting]]], int | None]) -> int:
    """The edge rule to its end: ``train_round`` trains the untried runs of :func:`edge_runs`'s plan and rewrites
    ``tuning``, returning 1 if a run failed, 0 if not, or ``None`` when the plan left nothing to train (the rule
    is done). Returns the failure status."""
    while True:
        status = train_round(edge_runs(tuning))
        if status is None or status:
            return status or 0


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``rows`` as a CSV file, the columns in order of first appearance (tuning tables, throughput sweeps)."""
    atomic_write_text(path, csv_text(rows, list(dict.fromkeys(k for r in rows for k in r))))


def setting_of(key: str) -> Setting | None:
    """``lr0.003-wu0.2`` -> Setting(0.003, 0.2); ``None`` for another name."""
    import re

    m = re.fullmatch(r"lr([0-9.e+-]+)-wu([0-9.e+-]+)", key)
    return Setting(float(m.group(1)), float(m.group(2))) if m else None


def tried(folder: Path) -> bool:
    """Whether the run in ``folder`` needs no training: it finished, or it diverged (and would again)."""
    return (folder / "results.json").is_file() or diverged(folder)


def tuning_rows(root: Path) -> list[dict[str, Any]]:
    """One row per finished tuning run under ``root`` (``<contender>/<setting>-s0``): the contender, its
    setting, steps and epochs trained, best epoch, best val top-1 and minutes (grid and edge settings); and
    one per diverged run (``diverged`` 1, no val top-1: tried, never chosen)."""
    from wavemixer.runs import collect_runs

    rows = []
    for r in collect_runs([root]) if root.is_dir() else []:  # groups are <contender>/<setting>
        key, _, setting_key = r.group.partition("/")
        setting = setting_of(setting_key)
        if setting is None or r.seed != 0 or r.best_val is None:
            continue
        rows.append(dict(key=key, lr=setting.lr, warmup=setting.warmup, steps=r.steps, epochs=r.epochs,
                         best_epoch=r.best_epoch, val_top1=round(r.best_val, 2),
                         minutes=round(r.wall_min or 0.0, 2), diverged=0))  # fmt: skip
    for folder in sorted(root.glob("*/*-s0")) if root.is_dir() else []:
        setting = setting_of(folder.name.removesuffix("-s0"))
        if setting is not None and folder.is_dir() and diverged(folder):
            rows.append(dict(key=folder.parent.name, lr=setting.lr, warmup=setting.warmup, steps=None, epochs=None,
                             best_epoch=None, val_top1="", minutes=None, diverged=1))  # fmt: skip
    return rows


def merge_tuning(path: Path, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (the runs on disk) and the rows of the tuning CSV at ``path`` that they do not replace.

    A tuning run's folder lives under the untracked ``runs/``; the committed CSV may hold runs trained on
    another machine. Rebuilding it from the folders alone would drop every contender not trained here (``tune
    --only NEW`` on a fresh checkout would leave one contender), so a row leaves only when its run is on disk.
    """
    if not path.is_file():
        return list(rows)
    fresh = {(r["key"], Setting(float(r["lr"]), float(r["warmup"]))) for r in rows}
    kept = []
    for line, r in enumerate(read_rows(path, ("key", "lr", "warmup", "val_top1"), "a tuning CSV"), 2):
        row: dict[str, Any] = dict(r)  # typed as tuning_rows types them, so the tables read both alike
        row["lr"], row["warmup"] = number(r, "lr", path, line), number(r, "warmup", path, line)
        for column, kind in (("val_top1", float), ("minutes", float), ("steps", int), ("epochs", int),
                             ("best_epoch", int), ("diverged", int)):  # fmt: skip
            if row.get(column) not in (None, ""):
                row[column] = number(row, column, path, line, kind)
            elif column != "val_top1":
                row[column] = None
        if (row["key"], Setting(row["lr"], row["warmup"])) not in fresh:
            kept.append(row)
    return [*rows, *kept]


def tuning_table(
    rows: Sequence[dict[str, Any]],
    best: dict[str, Setting],
    *,
    size: tuple[str, Callable[[list[dict[str, Any]]], str]] | None = None,
    prescreen: Setting | None = None,
    max_epochs: int | None = None,
) -> list[str]:
    """The markdown table of a tuning grid: contenders x settings, val top-1 %, each tuned contender's chosen
    setting in bold. ``size``: a second column (header, text from the contender's rows); ``prescreen``: name
    the contenders trained only at this setting (a pre-screen); ``max_epochs``: mark with † the runs that
    trained that many epochs, stopped by the cap rather than by early stopping."""
    by = {(r["key"], Setting(float(r["lr"]), float(r["warmup"]))): r for r in rows}
    keys = sorted(dict.fromkeys(r["key"] for r in rows), key=lambda k: (k not in best, k))
    columns = sorted(set(TUNING_GRID) | {s for _, s in by}, key=lambda s: (s.lr, s.warmup))
    settings = " | ".join(f"lr {s.lr:g}, warm-up {s.warmup:g}" for s in columns)
    lines = [f"| contender |{f' {size[0]} |' if size else ''} {settings} |"]
    lines.append("|---|" + ("---:|" if size else "") + "---:|" * len(columns))
    for key in keys:
        cells = []
        for s in columns:
            r = by.get((key, s))
            if r is None:
                text = "–"
            else:
                text = "diverged" if r.get("val_top1") in (None, "") else f"{float(r['val_top1']):.2f}"
                if max_epochs is not None and r.get("epochs") not in (None, "") and int(r["epochs"]) >= max_epochs:
                    text += " †"
            cells.append(f"**{text}**" if best.get(key) == s else text)
        done = [s for s in TUNING_GRID if (key, s) in by]
        name = key
        if key not in best:
            screened = prescreen is not None and done == [prescreen]
            name = f"{key} (pre-screen)" if screened else f"{key} ({len(done)} of {len(TUNING_GRID)})"
        extra = f" {size[1]([r for r in rows if r['key'] == key])} |" if size else ""
        lines.append(f"| {name} |{extra} " + " | ".join(cells) + " |")
    return lines
