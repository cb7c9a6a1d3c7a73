"""``wavemixer bench --suite peers``: WaveMix, its token-mixer variants and peer architectures at equal
parameter counts, measured interleaved in one sweep.

At each scale the WaveMix model is a registered configuration; every peer family is solved to *that*
model's parameter count (:mod:`wavemixer.bench.peers`), and every mixer variant is the same configuration with
``mixer=`` / ``wavelet=`` changed (their parameter counts differ a little from the DWT's: the learned
mixers add weights, and the docs state how many). Ratios are taken against the WaveMix DWT/Haar row of the
same scale, input size, mode and precision. A resolution sweep (``--resolutions``) repeats one scale at
several input sizes, which shows how the memory ranking moves with resolution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from ..files import atomic_write, atomic_write_text
from ..mixers import Mixer
from .report import _fmt, csv_text
from .runner import BenchEntry

__all__ = [
    "MIXER_VARIANTS",
    "SCALES",
    "add_ratios",
    "format_peers_markdown",
    "plot_peers",
    "suite_entries",
    "write_peers_results",
]

SCALES: dict[str, tuple[str, int]] = {
    "40k": ("wavemix_lite_32_7_cifar10_tiny", 32),
    "500k": ("wavemix_lite_64_6_cifar10", 32),
    "3m": ("wavemix_lite_144_7_cifar10", 64),
}
"""Scale name → (WaveMix registry model, default square input size)."""

MIXER_VARIANTS: dict[str, dict[str, Any]] = {
    "dwt/haar": {},
    "dwt/db2": {"wavelet": "db2"},
    **{mixer: {"mixer": mixer} for mixer in get_args(Mixer) if mixer != "dwt"},
}
"""Token-mixer variants of the WaveMix block (overrides of the registry configuration): the Haar and db2
DWTs, then every other mixer of :data:`wavemixer.mixers.Mixer` with Haar's support."""

BASELINE = "dwt/haar"


def _group(scale: str, size: int) -> str:
    return f"{scale}@{size}"


def _is_baseline(row: dict[str, Any]) -> bool:
    return row["source"] == "wavemixer" and row["model"].startswith(f"WaveMix {BASELINE} [")


def _side(row: dict[str, Any]) -> int:
    return int(str(row["input_size"]).split("x")[-1])


def suite_entries(
    scales: Sequence[str] = ("40k", "500k", "3m"),
    *,
    families: Sequence[str] | None = None,
    mixers: Sequence[str] | None = None,
    resolutions: Sequence[int] = (),
    resolution_scale: str = "40k",
) -> list[BenchEntry]:
    """Bench entries of the suite; ``resolutions`` adds ``resolution_scale`` at those input sizes."""
    from wavemixer.bench.peers import PEER_FAMILIES, solve_peer
    from wavemixer.registry import get_spec

    families = list(PEER_FAMILIES) if families is None else list(families)
    mixers = list(MIXER_VARIANTS) if mixers is None else list(mixers)
    for name in scales:
        if name not in SCALES:
            raise ValueError(f"--scales: unknown scale {name!r}; expected some of {sorted(SCALES)}")
    for name in mixers:
        if name not in MIXER_VARIANTS:
            raise ValueError(f"--mixers: unknown mixer variant {name!r}; expected some of {list(MIXER_VARIANTS)}")
    for name in families:
        if name not in PEER_FAMILIES:
            raise ValueError(f"--families: unknown peer family {name!r}; expected some of {sorted(PEER_FAMILIES)}")
    if resolutions and resolution_scale not in SCALES:
        raise ValueError(f"unknown resolution scale {resolution_scale!r}; expected one of {sorted(SCALES)}")
    if any(not isinstance(r, int) or r < 8 for r in resolutions):
        raise ValueError(f"--resolutions: input sizes must be integers >= 8, got {list(resolutions)}")

    points = [(s, SCALES[s][1]) for s in scales]
    points += [(resolution_scale, r) for r in resolutions if (resolution_scale, r) not in points]
    entries: list[BenchEntry] = []
    for scale, size in points:
        model_name, _ = SCALES[scale]
        spec = get_spec(model_name)
        in_chans, num_classes = spec.input_size[0], spec.kwargs.get("num_classes", 10)
        group = _group(scale, size)
        params = None
        for mixer in [BASELINE, *[m for m in mixers if m != BASELINE]]:
            model = spec.build(**MIXER_VARIANTS[mixer])
            params = params or sum(p.numel() for p in model.parameters())
            entries.append(
                BenchEntry(
                    f"WaveMix {mixer} [{group}]",
                    "wavemixer",
                    "classification",
                    model_name,
                    dict(model.config),
                    (in_chans, size, size),
                    group,
                )
            )
        for family in families:
            peer, _ = solve_peer(family, params, num_classes=num_classes, in_chans=in_chans, img_size=size)
            entries.append(
                BenchEntry(
                    f"{family} [{group}]",
                    "peer",
                    "classification",
                    family,
                    dataclasses.asdict(peer),
                    (in_chans, size, size),
                    group,
                )
            )
    return entries


def add_ratios(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add per-sample memory and ratios to the WaveMix DWT/Haar row of the same group, mode, precision."""
    base = {(r["group"], r["mode"], r["precision"]): r for r in rows if _is_baseline(r) and r.get("ms_median")}
    out = []
    for row in rows:
        row = dict(row)
        ref = base.get((row["group"], row["mode"], row["precision"]))
        ok = row.get("ms_median") and ref is not None
        per_sample = row["peak_mem_mb"] / row["batch_size"] if row.get("peak_mem_mb") else None
        ref_per_sample = ref["peak_mem_mb"] / ref["batch_size"] if ok and ref.get("peak_mem_mb") else None
        row["mem_per_sample_mb"] = round(per_sample, 3) if per_sample is not None else None
        row["mem_ratio_vs_wavemix"] = round(per_sample / ref_per_sample, 3) if ok and ref_per_sample else None
        row["throughput_ratio_vs_wavemix"] = (
            round(row["samples_per_s"] / ref["samples_per_s"], 3) if ok and ref.get("samples_per_s") else None
        )
        out.append(row)
    return out


def format_peers_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One table per (group, mode): parameters, MACs, memory per sample, speed, ratios to WaveMix."""
    out: list[str] = []
    groups = list(dict.fromkeys(r["group"] for r in rows))
    for group in groups:
        for mode in ("train", "infer"):
            sel = [r for r in rows if r["group"] == group and r["mode"] == mode]
            if not sel:
                continue
            what = "training step" if mode == "train" else "inference"
            out += [f"**{group} — {what}**", "",
                    "| model | prec | batch | params | GMACs | peak MB / sample | ms / step | samples/s "
                    "| memory ÷ WaveMix | throughput ÷ WaveMix |",
                    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
            for r in sel:
                params = f"{r['params']:,}" if r.get("params") is not None else ""
                if r.get("error"):
                    out.append(f"| {r['model']} | {r['precision']} | {r['batch_size']} | {params} | | "
                               f"fails: {r['error'][:80]} | | | | |")  # fmt: skip
                    continue
                out.append(
                    f"| {r['model']} | {r['precision']} | {r['batch_size']} | {params} | {_fmt(r.get('gmacs'), 4)} "
                    f"| {_fmt(r.get('mem_per_sample_mb'), 2)} | {_fmt(r.get('ms_median'), 1)} "
                    f"| {_fmt(r.get('samples_per_s'), 1)} | {_fmt(r.get('mem_ratio_vs_wavemix'), 2)} "
                    f"| {_fmt(r.get('throughput_ratio_vs_wavemix'), 2)} |"
                )
            out.append("")
    return "\n".join(out)


def plot_peers(rows: Sequence[dict[str, Any]], path: Path) -> bool:
    """Training memory per sample against parameters, and against input size (the resolution sweep)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    train = [r for r in rows if r["mode"] == "train" and r.get("mem_per_sample_mb") and r.get("params")]
    if not train:
        return False
    fig, (ax_p, ax_r) = plt.subplots(1, 2, figsize=(13, 5))
    for r in train:
        marker = "o" if r["source"] == "wavemixer" else "^"
        ax_p.scatter(r["params"], r["mem_per_sample_mb"], marker=marker)
        ax_p.annotate(r["model"].split(" [")[0], (r["params"], r["mem_per_sample_mb"]), fontsize=6)
    ax_p.set(xscale="log", yscale="log", xlabel="parameters", ylabel="peak training memory per sample (MB)")
    ax_p.set_title("training memory vs parameters (o WaveMix variants, ^ peers)", fontsize=9)
    by_model: dict[str, list[tuple[int, float]]] = {}
    for r in train:
        by_model.setdefault(r["model"].split(" [")[0], []).append((_side(r), r["mem_per_sample_mb"]))
    for name, points in by_model.items():
        if len({s for s, _ in points}) > 1:
            points.sort()
            ax_r.plot([s for s, _ in points], [m for _, m in points], marker="o", label=name)
    ax_r.set(xscale="log", yscale="log", xlabel="input size (pixels per side)", ylabel="peak MB / sample")
    ax_r.set_title("training memory vs resolution (one parameter scale)", fontsize=9)
    if ax_r.lines:
        ax_r.legend(fontsize=7)
    for ax in (ax_p, ax_r):
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return True


PEERS_COLUMNS = [
    "model", "group", "mode", "precision", "input_size", "batch_size", "params", "gmacs", "mem_per_sample_mb",
    "peak_mem_mb", "ms_median", "samples_per_s", "mem_ratio_vs_wavemix", "throughput_ratio_vs_wavemix", "error",
]  # fmt: skip


#: every file :func:`write_peers_results` may write
PEERS_FILES = ("peers.csv", "peers.md", "peers.png")


def write_peers_results(folder: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Path]:
    """``peers.csv``, ``peers.md`` (one table per scale and mode) and ``peers.png`` beside the sweep's files."""
    rows = add_ratios(rows)
    paths = dict(peers_csv=folder / "peers.csv", peers_markdown=folder / "peers.md")
    atomic_write_text(paths["peers_csv"], csv_text(rows, PEERS_COLUMNS))
    header = [f"# WaveMix and peers at equal parameter counts: {meta.get('machine', '')}", "",
              f"Command: `{meta.get('command', '')}` (torch {meta.get('torch', '')}, {meta.get('threads', '')} "
              "threads). Memory: peak bytes of one training step or forward pass (weights, optimizer state and "
              f"activations; {rows[0].get('mem_method') or 'allocator peak'}) divided by the batch size. Ratios are "
              "to the WaveMix DWT/Haar row of the same scale, input size, mode and precision.", ""]  # fmt: skip
    atomic_write_text(paths["peers_markdown"], "\n".join(header) + "\n" + format_peers_markdown(rows))
    if plot_peers(rows, folder / "peers.png"):
        paths["peers_plot"] = folder / "peers.png"
    return paths
