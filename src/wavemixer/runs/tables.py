"""Markdown tables of groups (mean ± std over seeds) and listings of single runs.

A table is a list of :class:`Column` s; :func:`standard_columns` are those of every summary (scores, time,
memory, time to the goal), and callers add their own (a benchmark's step memory, a contest's step budget).
Rows are sorted by the mean test score, best first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wavemixer.runs.groups import Group
from wavemixer.runs.record import METRICS, SECONDARY, Run

__all__ = ["Column", "curves_markdown", "markdown_table", "mean_std", "run_lines", "standard_columns"]


@dataclass(frozen=True)
class Column:
    """One column of a markdown table: its header, its text for a group, and ``---`` or ``---:`` (right)."""

    header: str
    cell: Callable[[Group], str]
    align: str = "---"


def mean_std(group: Group, column: str, digits: int = 2) -> str:
    """``mean ± std`` of the column over the group's runs (the value alone for one run: a single seed has no
    spread to show); ``(n of seeds)`` when some runs lack it; ``–`` if all."""
    stat = group.stat(column)
    if stat is None:
        return "–"
    text = f"{stat.mean:.{digits}f}" + (f" ± {stat.std:.{digits}f}" if stat.n > 1 else "")
    return text if stat.n == group.seeds else f"{text} ({stat.n} of {group.seeds})"


def metric_header(metric: str) -> str:
    return METRICS.get(metric, (metric, 2, ""))[0]


def metric_digits(metric: str) -> int:
    return METRICS.get(metric, (metric, 2, ""))[1]


def goal_text(metric: str, goal: float) -> str:
    return f"{goal:g}{METRICS.get(metric, (metric, 2, ''))[2]}"


def standard_columns(
    groups: Sequence[Group], *, label: str = "run", goal: float | None = None, extra: Sequence[Column] = ()
) -> list[Column]:
    """Name, parameters, epochs, seeds, test and best-val score, the task's further test scores, minutes per
    run, peak memory, minutes to val ≥ goal (with a goal), then ``extra``."""
    metric = groups[0].runs[0].metric if groups else "top1"
    name, digits = metric_header(metric), metric_digits(metric)
    kinds = {r.peak_mem_kind for g in groups for r in g.runs}
    memory = "peak RSS (MB)" if kinds <= {None, "process peak RSS"} else "peak memory (MB)"
    columns = [
        Column(label, lambda g: g.name),
        Column("params", lambda g: _count(g.first("params")), "---:"),
        Column("epochs", lambda g: _text(g.first("epochs")), "---:"),
        Column("seeds", lambda g: str(g.seeds), "---:"),
        Column(f"test {name}", lambda g: mean_std(g, "test", digits)),
        Column(f"best val {name}", lambda g: mean_std(g, "best_val", digits)),
    ]
    for score in SECONDARY.get(metric, ()):
        columns.append(
            Column(f"test {metric_header(score)}", lambda g, s=score: mean_std(g, f"test_{s}", metric_digits(s)))
        )
    columns += [
        Column("minutes per run", lambda g: mean_std(g, "wall_min", 1)),
        Column(memory, lambda g: mean_std(g, "peak_mem_mb", 0)),
    ]
    if goal is not None:
        header = f"minutes to val ≥ {goal_text(metric, goal)}"
        columns.append(Column(header, lambda g: mean_std(g, "time_to_goal_min", 1)))
    return columns + list(extra)


def markdown_table(groups: Sequence[Group], columns: Sequence[Column]) -> str:
    """The table, best mean test score first (groups without a test score last, in name order)."""

    def score(g: Group) -> float:
        stat = g.stat("test")
        return -stat.mean if stat is not None else float("inf")

    lines = ["| " + " | ".join(c.header for c in columns) + " |", "|" + "|".join(c.align for c in columns) + "|"]
    for group in sorted(groups, key=score):
        lines.append("| " + " | ".join(c.cell(group) for c in columns) + " |")
    return "\n".join(lines)


def run_lines(runs: Sequence[Run]) -> list[str]:
    """One line per run: test and best val score, the best epoch, minutes, when val reached the goal."""
    out = []
    for r in sorted(runs, key=lambda r: (r.group, r.seed)):
        digits = metric_digits(r.metric)
        line = f"- {r.group} seed {r.seed}: test {r.metric} {_score(r.test, digits)}"
        line += f", best val {_score(r.best_val, digits)}"
        if r.best_epoch is not None:
            line += f" at epoch {r.best_epoch}/{r.epochs}"
        if r.wall_min is not None:
            line += f", {r.wall_min:.1f} min"
        if r.goal is not None:
            reached = "not reached" if r.time_to_goal_min is None else f"after {r.time_to_goal_min:.1f} min"
            line += f"; val ≥ {goal_text(r.metric, r.goal)} {reached}"
        out.append(line + f" ({r.source})")
    return out


def curves_markdown(runs: Sequence[Run]) -> list[str]:
    """Per run, a table of the val score and the minutes after each epoch (runs read from folders)."""
    out = []
    for r in sorted(runs, key=lambda r: (r.group, r.seed)):
        rows = [row for row in r.history if row.get(f"val_{r.metric}") not in (None, "")]
        if not rows:
            continue
        out += [
            "",
            f"| {r.group} seed {r.seed} (epoch) | " + " | ".join(str(row["epoch"]) for row in rows) + " |",
            "|---|" + "---|" * len(rows),
            f"| val {metric_header(r.metric)} | "
            + " | ".join(f"{float(row[f'val_{r.metric}']):.{metric_digits(r.metric) - 1}f}" for row in rows)
            + " |",
            "| minutes | " + " | ".join(f"{float(row['time_s']) / 60:.1f}" for row in rows) + " |",
        ]
    return out


def _count(value: int | None) -> str:
    return "–" if value is None else f"{int(value):,}"


def _text(value: object) -> str:
    return "–" if value is None else str(value)


def _score(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"
