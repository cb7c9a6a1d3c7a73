"""Several models at once: the shift/scale/ERF measurements as one table row each, the table as CSV and
markdown, the rows of a model's seeds as mean ± std, and the ERF maps side by side in one PNG."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from wavemixer.files import atomic_write, atomic_write_text

from .common import Data
from .erf import Erf, effective_receptive_field, mass_centroid, mass_radius
from .robustness import scale_robustness, shift_robustness

__all__ = ["mean_erf_maps", "measure_priors", "plot_erfs", "seed_means", "write_seed_table", "write_table"]


def measure_priors(
    models: Mapping[str, nn.Module],
    data: Data,
    *,
    erf_data: Data | None = None,
    max_images: int | None = None,
    erf_images: int | None = None,
    shift_kwargs: Mapping[str, Any] | None = None,
    scale_kwargs: Mapping[str, Any] | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, Erf]]:
    """Shift, scale and ERF measurements of every model: a table row per name, and the ERFs for plotting.

    ``erf_data`` (default: ``data``) and ``erf_images`` choose the ERF's images separately, e.g. noise for
    untrained networks or fewer images, since the ERF needs a backward pass. The loader is iterated once
    per model and measurement, so it must be re-iterable (a ``DataLoader``, a list, a tensor)."""
    rows: dict[str, dict[str, float]] = {}
    erfs: dict[str, Erf] = {}
    for name, model in models.items():
        shift = shift_robustness(model, data, max_images=max_images, **(shift_kwargs or {}))
        scale = scale_robustness(model, data, max_images=max_images, **(scale_kwargs or {}))
        erfs[name] = effective_receptive_field(model, data if erf_data is None else erf_data, max_images=erf_images)
        rows[name] = {"images": shift.images, **shift.summary(), **scale.summary(), **erfs[name].summary()}
    return rows, erfs


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{digits}f}"
    return "" if value is None else str(value)


def write_table(
    rows: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    digits: int = 2,
) -> tuple[Path, Path]:
    """``path`` with ``.csv`` and ``.md``: one row per name, ``columns`` (default: every key, in first-seen
    order) after a ``model`` column. The CSV keeps full precision for later analysis; the markdown rounds
    floats to ``digits``. Returns both paths."""
    cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows.values() for k in r))
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", *cols])
    for name, row in rows.items():
        writer.writerow([name, *(row.get(c, "") for c in cols)])
    md = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    md += [f"| {name} | " + " | ".join(_cell(row.get(c), digits) for c in cols) + " |" for name, row in rows.items()]
    csv_path, md_path = base.with_suffix(".csv"), base.with_suffix(".md")
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(md_path, "\n".join(md) + "\n")
    return csv_path, md_path


def _model_of(name: str) -> str:
    from wavemixer.runs import seed_suffix

    return seed_suffix(name)[0]


def seed_means(rows: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """Rows named ``<model>-s<seed>`` grouped by model: ``column -> (mean, sample std, seeds)`` (std 0 for one
    seed). Names without a seed suffix are their own model."""
    values: dict[str, dict[str, list[float]]] = {}
    for name, row in rows.items():
        for column, value in row.items():
            if isinstance(value, int | float) and not math.isnan(float(value)):
                values.setdefault(_model_of(name), {}).setdefault(column, []).append(float(value))
    return {
        model: {c: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v)) for c, v in cols.items()}
        for model, cols in values.items()
    }


def write_seed_table(
    means: Mapping[str, Mapping[str, tuple[float, float, int]]], path: str | Path, *, columns: Sequence[str],
    digits: int = 2,
) -> tuple[Path, Path]:  # fmt: skip
    """``path`` with ``.csv`` (``<column>_mean`` and ``<column>_std``, full precision) and ``.md`` (``mean ± std``):
    one row per model of :func:`seed_means`, with its number of seeds."""
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "seeds", *(f"{c}_{k}" for c in columns for k in ("mean", "std"))])
    md = ["| model | seeds | " + " | ".join(columns) + " |", "|---|---:|" + "---:|" * len(columns)]
    for model, cols in means.items():
        seeds = max((n for _, _, n in cols.values()), default=0)
        writer.writerow([model, seeds, *(x for c in columns for x in (cols[c][:2] if c in cols else ("", "")))])
        cells = [_mean_std(cols[c], digits) if c in cols else "" for c in columns]
        md.append(f"| {model} | {seeds} | " + " | ".join(cells) + " |")
    csv_path, md_path = base.with_suffix(".csv"), base.with_suffix(".md")
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(md_path, "\n".join(md) + "\n")
    return csv_path, md_path


def _mean_std(stat: tuple[float, float, int], digits: int) -> str:
    mean, std, n = stat
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if n > 1 else "")


def mean_erf_maps(erfs: Mapping[str, Erf]) -> dict[str, Tensor]:
    """One map per model of ``<model>-s<seed>`` ERFs: the mean of the seeds' maps, each scaled to unit mass (so
    that every seed weighs the same whatever its gain)."""
    grouped: dict[str, list[Tensor]] = {}
    for name, erf in erfs.items():
        m = erf.map.double()
        grouped.setdefault(_model_of(name), []).append(m / m.sum() if float(m.sum()) > 0 else m)
    return {model: sum(maps[1:], maps[0]) / len(maps) for model, maps in grouped.items()}


def plot_erfs(
    erfs: Mapping[str, Erf | Tensor],
    path: str | Path,
    *,
    fractions: Sequence[float] = (0.5, 0.9),
    columns: int = 6,
    log: bool = False,
    title: str | None = None,
) -> Path:
    """ERF maps side by side (``columns`` per row) as a PNG, each scaled to its own maximum so that shapes
    compare across models of different gain; circles mark the radii holding ``fractions`` of the mass.
    ``log`` shows ``log10`` of the scaled map (from 1e-3), where a peaked trained ERF hides its tails."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global backend, renders with Agg

    if not erfs:
        raise ValueError("no ERF maps to plot")
    names = list(erfs)
    ncols = min(columns, len(names))
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(2.8 * ncols, 3.0 * nrows + (0.4 if title else 0)))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, name in zip(axes, names):
        erf = erfs[name]
        m = (erf.map if isinstance(erf, Erf) else erf).double()
        img = (m / m.max()).numpy() if float(m.max()) > 0 else m.numpy()
        if log:
            img = np.log10(np.clip(img, 1e-3, None))
        ax.imshow(img, cmap="inferno", vmin=-3 if log else 0, vmax=0 if log else 1)
        cy, cx = mass_centroid(m)
        label = []
        for f, color in zip(fractions, ("cyan", "lime", "white", "magenta")):
            r = mass_radius(m, f)
            label.append(f"r{round(100 * f)} {r:.1f}")
            if not math.isnan(r):
                ax.add_patch(_circle((cx, cy), r + 0.5, color))  # +0.5: around the pixels, not their centres
        ax.set_title(f"{name}\n" + "  ".join(label) + " px", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return out


def _circle(centre: tuple[float, float], radius: float, color: str) -> Any:
    from matplotlib.patches import Circle

    return Circle(centre, radius, fill=False, color=color, linewidth=0.8)
