"""The Pareto-style figure of a summary: mean test score (± std over seeds) against each cost, one panel per cost.

WaveMix models are circles, everything else (peers, baselines) triangles, each point named by its group.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wavemixer.files import atomic_write
from wavemixer.runs.groups import Group
from wavemixer.runs.tables import metric_header

__all__ = ["DEFAULT_PANELS", "Panel", "pareto_plot"]

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
    """Write the figure to ``path`` (PNG); groups without a test score or the panel's cost are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = groups[0].runs[0].metric if groups else "top1"
    fig, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 5), squeeze=False)
    for ax, (column, label, log) in zip(axes[0], panels):
        for group in groups:
            cost, score = group.stat(column), group.stat("test")
            if cost is None or score is None:
                continue
            wavemix = _is_wavemix(group)
            ax.errorbar(cost.mean, score.mean, yerr=score.std, fmt="o" if wavemix else "^", capsize=3,
                        color="tab:blue" if wavemix else "tab:orange")  # fmt: skip
            ax.annotate(group.name, (cost.mean, score.mean), fontsize=7, xytext=(3, 3), textcoords="offset points")
        seeds = sorted({g.seeds for g in groups})
        over = f"{seeds[0]} seeds" if len(seeds) == 1 else "seeds"
        ax.set(xlabel=label, ylabel=f"test {metric_header(metric)} (mean ± std over {over})")
        if log:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title + ': ' if title else ''}o WaveMix, ^ others", fontsize=11)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def _is_wavemix(group: Group) -> bool:
    return str(group.first("model") or group.name).startswith("wavemix")
