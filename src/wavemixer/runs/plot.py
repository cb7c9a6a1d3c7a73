"""The figures of a summary: mean test score (± std over seeds) against each cost, one panel per cost (Pareto
style), and scores against a budget (time, training images), one line per model.

WaveMix models are circles or solid lines, everything else (peers, baselines) triangles or dashed lines.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wavemixer.files import atomic_write
from wavemixer.runs.groups import Group, Stat
from wavemixer.runs.tables import metric_header

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["DEFAULT_PANELS", "Panel", "pareto_front", "pareto_plot", "score_curves"]

Panel = tuple[str, str, bool]
"""(column, axis label, logarithmic axis): the cost on one panel's x axis (its mean over the group's runs)."""

DEFAULT_PANELS: tuple[Panel, ...] = (
    ("wall_min", "training time per run (min)", False),
    ("peak_mem_mb", "peak memory (MB)", True),
    ("params", "parameters", True),
)


def pareto_plot(
    groups: Sequence[Group], path: Path, *, title: str = "", panels: Sequence[Panel] = DEFAULT_PANELS
) -> None:
    """Write the figure to ``path`` (PNG); groups without a test score or the panel's cost are left out.

    Each panel draws its Pareto front: the models no other model beats at the same or a lower cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter, LogLocator

    metric = groups[0].runs[0].metric if groups else "top1"
    fig, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 5), squeeze=False)
    for ax, (column, label, log) in zip(axes[0], panels):
        points = []
        for group in groups:
            cost, score = group.stat(column), group.stat("test")
            if cost is None or score is None:
                continue
            wavemix = _is_wavemix(group)
            ax.errorbar(cost.mean, score.mean, yerr=score.std, fmt="o" if wavemix else "^", capsize=3,
                        color="tab:blue" if wavemix else "tab:orange")  # fmt: skip
            points.append((cost.mean, score.mean, group.name))
        front = pareto_front([(c, s) for c, s, _ in points])
        if len(front) > 1:
            ax.step(*zip(*front), where="post", color="grey", linestyle=":", linewidth=1, label="Pareto front")
            ax.legend(fontsize=7, loc="lower right")
        seeds = sorted({g.seeds for g in groups})
        over = f"{seeds[0]} seeds" if len(seeds) == 1 else "seeds"
        ax.set(xlabel=label, ylabel=f"test {metric_header(metric)} (mean ± std over {over})")
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10))
            ax.xaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.xaxis.set_minor_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        _annotate_apart(ax, points)
    fig.suptitle(f"{title + ': ' if title else ''}o WaveMix, ^ others", fontsize=11)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, score) points that no other point matches or beats at the same or a lower cost, by cost."""
    front: list[tuple[float, float]] = []
    for cost, score in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or score > front[-1][1]:
            front.append((cost, score))
    return front


def _annotate_apart(ax: Axes, points: Sequence[tuple[float, float, str]]) -> None:
    """Name each point beside it, moving a name below its point where it would overlap one placed before
    (approximately: distances in display pixels before the layout is tightened)."""
    ax.autoscale_view()
    placed: list[tuple[float, float]] = []
    for cost, score, name in sorted(points, key=lambda p: -p[1]):
        x, y = ax.transData.transform((cost, score))
        dy = 3
        if any(abs(x - px) < 60 + 5.5 * len(name) and abs(y + dy - py) < 11 for px, py in placed):
            dy = -11
        placed.append((x, y + dy))
        ax.annotate(name, (cost, score), fontsize=7, xytext=(3, dy), textcoords="offset points")


def score_curves(
    series: Mapping[str, Sequence[tuple[float, Stat]]], path: Path, *, xlabel: str, ylabel: str, title: str,
    xlog: bool = True,
) -> None:  # fmt: skip
    """Write a PNG of one line per model (``series``: name -> (budget, score over seeds) points), mean ± std
    error bars; names starting with ``wavemix`` solid with round markers, the others dashed with square ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    drawn = [(name, points) for name, points in series.items() if points]
    colours = plt.get_cmap("tab10" if len(drawn) <= 10 else "tab20").colors  # distinct up to 20 lines
    for (name, points), colour in zip(drawn, itertools.cycle(colours)):
        xs, stats = zip(*sorted(points, key=lambda p: p[0]))
        wavemix = _wavemix_name(name)
        ax.errorbar(xs, [s.mean for s in stats], yerr=[s.std for s in stats], capsize=3, color=colour,
                    marker="o" if wavemix else "s", linestyle="-" if wavemix else "--", label=name)  # fmt: skip
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if xlog:
        ax.set_xscale("log")
    budgets = sorted({x for points in series.values() for x, _ in points})
    ax.set_xticks(budgets, [f"{x:,g}" for x in budgets])  # the budgets themselves, not powers of ten
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def _wavemix_name(name: str) -> bool:
    return name.partition("-")[2].startswith("wavemix") or name.startswith("wavemix")


def _is_wavemix(group: Group) -> bool:
    return str(group.first("model") or group.name).startswith("wavemix")
