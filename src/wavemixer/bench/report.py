"""Write a sweep's results: CSV, a markdown table, a plot and the raw per-process records."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wavemixer.files import atomic_write, atomic_write_text, strict_json

__all__ = ["format_markdown", "results_dir_name", "write_results"]

COLUMNS = [
    "model", "mode", "precision", "variant", "input_size", "batch_size", "params_m", "gmacs", "dwt_mflops",
    "ms_median", "ms_p25", "ms_p75", "samples_per_s", "peak_mem_mb", "rss_peak_mb", "ms_ratio_vs_ref",
    "mem_ratio_vs_ref",
    "ms_ratio_vs_ref_fp32", "mem_ratio_vs_ref_fp32", "runs", "threads", "source", "group", "torch_version",
    "mem_method", "error",
]  # fmt: skip


def results_dir_name(
    device: str, precisions: Sequence[str], channels_last: bool, torch_version: str, tag: str = ""
) -> str:
    """``bench[-tag]-{device}-{precisions}-{nchw|nhwc}-pt{version}``: the name records how it was measured."""
    parts = ["bench", tag, re.sub(r"[^A-Za-z0-9.]+", "_", device).strip("_").lower(), "+".join(precisions),
             "nhwc" if channels_last else "nchw", "pt" + torch_version.split("+")[0]]  # fmt: skip
    return "-".join(p for p in parts if p)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


#: the ratio columns of the tables: (row key, header); shown only when some row of the table has the ratio
_RATIOS = (
    ("ms_ratio_vs_ref", "time ÷ ref"),
    ("mem_ratio_vs_ref", "mem ÷ ref"),
    ("ms_ratio_vs_ref_fp32", "time ÷ ref fp32"),
    ("mem_ratio_vs_ref_fp32", "mem ÷ ref fp32"),
)


def format_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One table per mode; ratios are ours / reference (same precision, and against reference fp32), their
    columns left out when nothing was compared (``--no-reference``)."""
    out = []
    for mode in ("train", "infer"):
        sel = [r for r in rows if r["mode"] == mode]
        if not sel:
            continue
        ratios = [(k, h) for k, h in _RATIOS if any(r.get(k) not in (None, "") for r in sel)]
        title = "Training step (forward + loss + backward + SGD step)" if mode == "train" else "Inference (forward)"
        head = ["model", "prec", "batch", "params (M)", "GMACs", "ms/step (median)", "p25–p75", "samples/s",
                "peak MB", *(h for _, h in ratios)]  # fmt: skip
        out += [f"**{title}**", "", "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
        for r in sel:
            first = [r["model"], r["precision"], str(r["batch_size"]), _fmt(r["params_m"], 2), _fmt(r["gmacs"], 3)]
            if r.get("error"):
                cells = [*first, f"fails: {r['error'][:90]}", *[""] * (len(head) - len(first) - 1)]
            else:
                spread = f"{r['ms_p25']:.1f}–{r['ms_p75']:.1f}"
                cells = [*first, _fmt(r["ms_median"]), spread, _fmt(r["samples_per_s"]), _fmt(r["peak_mem_mb"], 0)]
                cells += [_fmt(r.get(k), 2) for k, _ in ratios]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


_SOURCES = {"wavemixer": ("o", "C0", "wavemixer"), "reference": ("s", "C1", "reference wavemix")}


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> bool:
    """Throughput and peak memory against parameters, one row of panels per mode. Only what was measured is
    drawn and named: a mode with a single measurement has nothing to compare and gets no panels, and a
    sweep without any such comparison no plot (the tables hold its numbers)."""
    points = {
        m: [r for r in rows if r["mode"] == m and r.get("ms_median") and r.get("params_m")] for m in ("train", "infer")
    }
    modes = [m for m, sel in points.items() if len(sel) >= 2]
    if not modes:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(len(modes), 2, figsize=(12, 4.5 * len(modes)), squeeze=False)
    for i, mode in enumerate(modes):
        sel = points[mode]
        for j, (key, label) in enumerate((("samples_per_s", "samples / s"), ("peak_mem_mb", "peak memory (MB)"))):
            ax = axes[i][j]
            order = [*_SOURCES, "baselines"]
            for source in sorted(
                {r["source"] for r in sel}, key=lambda x: order.index(x if x in _SOURCES else "baselines")
            ):
                marker, color, name = _SOURCES.get(source, ("^", "C2", "baselines"))
                mine = [r for r in sel if r["source"] == source]
                ax.scatter([r["params_m"] for r in mine], [r[key] for r in mine], marker=marker, c=color, label=name)
            for r in sel:
                ax.annotate(f"{r['model']} {r['precision']}", (r["params_m"], r[key]), fontsize=6)
            ax.set_xlabel("parameters (M)")
            ax.set_ylabel(label)
            ax.set_title(f"{mode}: {label} vs parameters", fontsize=9)
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return True


#: every file :func:`write_results` may write (``bench`` checks them before a sweep)
RESULT_FILES = ("results.csv", "results.md", "raw.json", "plot.png")


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV text with ``columns`` (missing and ``None`` values empty), written atomically by callers."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: ("" if r.get(k) is None else r.get(k)) for k in columns} for r in rows)
    return buffer.getvalue()


def write_results(
    out_dir: Path, rows: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]], meta: dict[str, Any]
) -> dict[str, Path]:
    """Write ``results.csv``, ``results.md``, ``raw.json`` and (with matplotlib) ``plot.png``."""
    paths = dict(csv=out_dir / "results.csv", markdown=out_dir / "results.md", raw=out_dir / "raw.json")
    atomic_write_text(paths["csv"], csv_text(rows, COLUMNS))
    header = [f"# wavemixer bench: {meta.get('machine', '')}", "", f"Command: `{meta.get('command', '')}`", ""]
    header += [f"- {k}: {v}" for k, v in meta.items() if k not in ("command", "machine")]
    header += ["", "MACs: multiply-accumulates of one forward pass at batch 1 as `torch.utils.flop_counter` counts "
               "them (FLOPs / 2). Our Haar DWT is additions, which the counter does not see: its FLOPs are the "
               "`dwt_mflops` column of the CSV. The reference's DWT is a grouped convolution and is "
               "counted.", ""]  # fmt: skip
    atomic_write_text(paths["markdown"], "\n".join(header) + "\n" + format_markdown(rows))
    atomic_write_text(paths["raw"], strict_json(dict(meta=meta, records=list(records)), indent=1))
    plot = out_dir / "plot.png"
    if _plot(rows, plot):
        paths["plot"] = plot
    return paths
