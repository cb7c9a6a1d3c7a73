"""Accuracy at matched parameters and equal training: WaveMix mixer variants and peer architectures.

Every cell is one ``wavemixer train`` run with one recipe (the same flags for every model), selected on the
validation split carved from the training set, tested once. The grid resumes where it stopped: a cell
with ``results.json`` is done, a cell with a checkpoint is continued with ``--resume``, the rest start.

  python scripts/claims_grid.py run --grid cifar10-40k \
      --data-dir ../shared/data/CIFAR10/cifar10_jpeg_q75_imagefolder.zip
  python scripts/claims_grid.py run --grid cifar10-40k --only wavemix-dwt-haar resnet --seeds 0 --lanes 1
  python scripts/claims_grid.py summarize --grid cifar10-40k           # CSV + markdown + plots of what finished
  python scripts/claims_grid.py summarize --grid cifar10-40k --memory RESULTS/peers.csv   # + train-step memory

``cifar10-40k-2ep`` is the same grid cut to 2 epochs (what one session of a 2-core machine trains; the numbers
of docs/claims.md), ``cifar10-500k-2ep`` its 0.5M counterpart. ``cifar10-40k-equal-time`` gives every peer
the epochs it trains in WaveMix's 2-epoch wall-clock, ``cifar10-40k-11ep`` WaveMix the 11 epochs of ResNet
and MLP-Mixer there. ``summarize --merge CSV`` takes the runs of cells (and seeds) not trained here from an
earlier summary CSV, refusing any row that is not the same run (model, epochs, goal); ``--only`` limits a
summary to some cells (those whose runs exist so far). WaveMix and ConvMixer train 2 epochs in both grids:

  python scripts/claims_grid.py summarize --grid cifar10-40k-equal-time --merge docs/bench/claims/cifar10-40k-2ep.csv

``--memory`` takes the ``peers.csv`` of
``wavemixer bench --suite peers --scales 40k --mode train -b 128 --precision bf16``: each model's allocator
peak for one training step in the recipe's setting, the memory axis of the table and plots.

``--lanes N`` runs N cells at a time, each on one thread under ``nice``. Outputs go to ``--runs``
(default ``runs/claims``): ``<grid>/<model>-s<seed>/`` per cell; ``summarize`` writes ``<grid>.csv``,
``<grid>.md`` and ``<grid>-pareto.png`` into ``--out`` (default: the runs folder).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Cell:
    key: str  # the folder name's stem
    model: str  # --model
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None  # this cell's budget where it differs from the grid's (equal-time grids)


def _wavemix_variants(base: str) -> list[Cell]:
    return [
        Cell("wavemix-dwt-haar", base),
        Cell("wavemix-dwt-db2", base, {"wavelet": "db2"}),
        Cell("wavemix-random", base, {"mixer": "random"}),
        Cell("wavemix-conv", base, {"mixer": "conv"}),
        Cell("wavemix-avgpool", base, {"mixer": "avgpool"}),
        Cell("wavemix-fourier", base, {"mixer": "fourier"}),
    ]


def _peers(params: int, families: Sequence[str]) -> list[Cell]:
    return [Cell(f, f"peer:{f}", {"params": params}) for f in families]


PEER_FAMILIES = ("resnet", "convmixer", "mlp_mixer", "poolformer", "vit", "convnext")
CIFAR10 = ["--dataset", "cifar10", "--no-trivial-augment"]
RECIPE = ["--batch-size", "128", "--lr", "1e-2", "--threads", "1", "--workers", "0"]
"""The one recipe of every cell: AdamW, peak lr 1e-2 (the CIFAR-10 WaveMix-Lite-32/7 recipe of docs/results.md),
cosine schedule, batch 128, crop + flip; precision is wavemixer's ``auto``. A grid adds its warm-up length
(``recipe``), the same for every cell of that grid."""

CELLS_40K = [*_wavemix_variants("wavemix_lite_32_7_cifar10_tiny"), *_peers(37_058, PEER_FAMILIES)]
CELLS_500K = [Cell("wavemix-dwt-haar", "wavemix_lite_64_6_cifar10"), *_peers(520_106, PEER_FAMILIES)]
EPOCHS_IN_WAVEMIX_TIME_40K = dict(resnet=11, mlp_mixer=11, convnext=15, poolformer=17, vit=5, convmixer=2)
"""Epochs each 40k peer trains in the wall-clock time of WaveMix's 2 epochs (6.2 min): WaveMix's minutes per run
over the peer's minutes per epoch, both from the cifar10-40k-2ep table of docs/claims.md (2 lanes on 2 cores)."""

GRIDS: dict[str, dict[str, Any]] = {
    "cifar10-40k": dict(
        data=CIFAR10, epochs=20, goal=70.0, recipe=["--warmup-epochs", "1"], bench_group="40k@32",
        cells=CELLS_40K,
    ),
    # the 40k grid cut to what one 3-hour session of 2 CPU cores trains (3 seeds kept, epochs cut; docs/claims.md)
    "cifar10-40k-2ep": dict(
        data=CIFAR10, epochs=2, goal=50.0, recipe=["--warmup-epochs", "0.2"], bench_group="40k@32",
        cells=CELLS_40K,
    ),
    "cifar10-500k": dict(
        data=CIFAR10, epochs=20, goal=80.0, recipe=["--warmup-epochs", "1"], bench_group="500k@32",
        cells=CELLS_500K,
    ),
    # the 500k grid cut like the 40k one; docs/claims.md runs WaveMix and the strongest 40k peers (--only)
    "cifar10-500k-2ep": dict(
        data=CIFAR10, epochs=2, goal=50.0, recipe=["--warmup-epochs", "0.2"], bench_group="500k@32",
        cells=CELLS_500K,
    ),
    # equal wall-clock: WaveMix-tiny's 2 epochs against each peer trained for as long (the same recipe otherwise)
    "cifar10-40k-equal-time": dict(
        data=CIFAR10, epochs=2, goal=50.0, recipe=["--warmup-epochs", "0.2"], bench_group="40k@32",
        cells=[
            Cell("wavemix-dwt-haar", "wavemix_lite_32_7_cifar10_tiny"),
            *(replace(c, epochs=EPOCHS_IN_WAVEMIX_TIME_40K[c.key]) for c in _peers(37_058, PEER_FAMILIES)),
        ],
    ),
    # equal epochs at that longer budget: WaveMix for the 11 epochs ResNet and MLP-Mixer had in the equal-time grid
    # (their runs are the same runs: summarize with --merge of the equal-time CSV)
    "cifar10-40k-11ep": dict(
        data=CIFAR10, epochs=11, goal=50.0, recipe=["--warmup-epochs", "0.2"], bench_group="40k@32",
        cells=[Cell("wavemix-dwt-haar", "wavemix_lite_32_7_cifar10_tiny"), *_peers(37_058, ("resnet", "mlp_mixer"))],
    ),
    # a tiny grid on the embedded digits: the test of this script, and a smoke test for users
    "digits-smoke": dict(
        data=["--dataset", "digits"], epochs=1, recipe=["--warmup-epochs", "1"],
        cells=[
            Cell("wavemix-dwt-haar", "wavemix_lite_8_10_mnist"), Cell("convmixer", "peer:convmixer", {"params": 3_566})
        ],
        goal=50.0,
    ),
}  # fmt: skip


def _cells(grid: dict[str, Any], only: Sequence[str] | None) -> list[Cell]:
    cells = grid["cells"]
    if only:
        unknown = sorted(set(only) - {c.key for c in cells})
        if unknown:
            raise SystemExit(f"--only: unknown cell(s) {unknown}; the grid has {[c.key for c in cells]}")
        cells = [c for c in cells if c.key in only]
    return cells


def _command(cell: Cell, seed: int, out: Path, args: argparse.Namespace, grid: dict[str, Any]) -> list[str]:
    base = [sys.executable, "-m", "wavemixer.cli", "train"]
    if (out / "results.json").is_file():
        return []
    if (out / "checkpoint.pt").is_file():
        return [*base, "--resume", str(out)]
    cmd = [*base, *grid["data"], *RECIPE, *grid["recipe"], "--model", cell.model, "--seed", str(seed)]
    cmd += ["--output", str(out)]
    cmd += ["--epochs", str(args.epochs or cell.epochs or grid["epochs"])]
    for key, value in cell.model_args.items():
        cmd += ["--model-arg", f"{key}={value}"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.subset:
        cmd += ["--subset", str(args.subset)]
    return cmd + list(args.extra)


def run(args: argparse.Namespace) -> int:
    grid = GRIDS[args.grid]
    root = args.runs / args.grid
    root.mkdir(parents=True, exist_ok=True)
    queue = [(cell, seed) for seed in args.seeds for cell in _cells(grid, args.only)]  # seed-major: all models early
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running: list[tuple[subprocess.Popen, str]] = []
    failed = []
    while queue or running:
        while queue and len(running) < args.lanes:
            cell, seed = queue.pop(0)
            out = root / f"{cell.key}-s{seed}"
            cmd = _command(cell, seed, out, args, grid)
            if not cmd:
                continue
            if args.nice:
                cmd = ["nice", "-n", str(args.nice), *cmd]
            print(f"start {out.name}: {' '.join(cmd[cmd.index('train') :])}", flush=True)
            log = (root / f"{out.name}.log").open("a")
            running.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), out.name))
        time.sleep(0.2)
        for proc, name in list(running):
            if proc.poll() is not None:
                running.remove((proc, name))
                print(f"{'done' if proc.returncode == 0 else 'FAILED'} {name} (exit {proc.returncode})", flush=True)
                if proc.returncode:
                    failed.append(name)
    if failed:
        print(f"{len(failed)} cell(s) failed: {failed}; see their .log files in {root}", file=sys.stderr)
    return 1 if failed else summarize(args)


def _time_to(history: list[dict[str, str]], goal: float) -> float | None:
    return next((float(r["time_s"]) for r in history if float(r["val_top1"]) >= goal), None)


def collect(root: Path, goal: float) -> list[dict[str, Any]]:
    rows = []
    for res_path in sorted(root.glob("*-s*/results.json")):
        res = json.loads(res_path.read_text())
        history = list(csv.DictReader((res_path.parent / "summary.csv").open()))
        rows.append(
            dict(
                cell=res_path.parent.name.rsplit("-s", 1)[0], seed=res["seed"], model=res["model"],
                params=res["params"], epochs=res["epochs"], goal=goal, best_val=res["best_val"]["top1"],
                test=res["test"]["top1"], wall_min=res["wall_time_s"] / 60,
                peak_mem_mb=res.get("peak_memory_mb"), time_to_goal_min=_minutes(_time_to(history, goal)),
            )
        )  # fmt: skip
    return rows


MERGED_INTS = ("seed", "params", "epochs")
MERGED_FLOATS = ("goal", "best_val", "test", "wall_min", "peak_mem_mb", "time_to_goal_min")


def merge(
    path: Path, grid: dict[str, Any], cells: list[Cell], goal: float, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Runs of the selected cells kept in an earlier summary CSV (``--merge``), for the seeds not trained here.

    A row joins only if it is the same run this grid would make: same cell, model and epochs, and its
    time-to-accuracy column measured at the same goal; anything else is refused rather than mixed in.
    Rows of cells outside ``cells`` (``--only``), and of seeds trained here, are left out unread.
    """
    if not path.is_file():
        raise SystemExit(f"--merge: {path} does not exist; give a CSV written by `claims_grid.py summarize`")
    by_key = {c.key: c for c in cells}
    have = {(r["cell"], r["seed"]) for r in rows}
    merged = []
    for i, raw in enumerate(csv.DictReader(path.open()), start=2):
        if raw.get("cell") not in by_key or (raw["cell"], int(raw.get("seed") or -1)) in have:
            continue  # not selected, or trained here: the run on disk is the one to report
        missing = [k for k in ("model", *MERGED_INTS, *MERGED_FLOATS) if k not in raw]
        if missing:
            raise SystemExit(f"--merge: {path} has no column(s) {missing}; give a CSV written by this script")
        row: dict[str, Any] = dict(cell=raw["cell"], seed=int(raw["seed"]), model=raw["model"])  # collect()'s order
        row |= {k: int(raw[k]) for k in MERGED_INTS[1:]}
        row |= {k: float(raw[k]) if raw[k] else None for k in MERGED_FLOATS}
        cell = by_key[row["cell"]]
        want_epochs = cell.epochs or grid["epochs"]
        if (row["model"], row["epochs"], row["goal"]) != (cell.model, want_epochs, goal):
            raise SystemExit(
                f"--merge: {path} line {i} ({row['cell']} seed {row['seed']}) is model {row['model']}, "
                f"{row['epochs']} epochs, goal {row['goal']:g} %; this grid's cell is {cell.model}, "
                f"{want_epochs} epochs, goal {goal:g} %"
            )
        merged.append(row)
        have.add((row["cell"], row["seed"]))
    return rows + merged


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cell: mean ± std over its seeds."""
    out = []
    for cell in dict.fromkeys(r["cell"] for r in rows):
        runs = [r for r in rows if r["cell"] == cell]
        entry: dict[str, Any] = dict(
            cell=cell, model=runs[0]["model"], params=runs[0]["params"], epochs=runs[0]["epochs"], seeds=len(runs)
        )
        for key in ("test", "best_val", "wall_min", "peak_mem_mb", "step_mem_mb", "time_to_goal_min"):
            values = [r[key] for r in runs if r[key] is not None]
            mean, std = _mean_std(values) if values else (None, None)
            entry[f"{key}_mean"], entry[f"{key}_std"] = mean, std
            entry[f"{key}_n"] = len(values)
        out.append(entry)
    return out


def bench_memory(path: Path, group: str) -> tuple[dict[str, float], str]:
    """Training-step allocator peak (MB) per grid cell, from a ``wavemixer bench --suite peers`` CSV.

    Process RSS (what ``results.json`` records on CPU) is mostly the interpreter, torch and the data set,
    so it hardly tells models apart; the bench's allocator peak of one training step does. Returns the
    peaks of the ``group`` rows (e.g. ``40k@32``) by cell key and a label naming batch and precision.
    """
    if not path.is_file():
        raise SystemExit(f"--memory: {path} does not exist; write it with `wavemixer bench --suite peers --mode train`")
    rows = [r for r in csv.DictReader(path.open()) if r.get("mode") == "train" and r.get("group") == group]
    rows = [r for r in rows if r.get("peak_mem_mb")]
    if not rows:
        raise SystemExit(f"--memory: {path} has no measured training rows of group {group!r}")
    settings = {(r["batch_size"], r["precision"]) for r in rows}
    if len(settings) > 1:
        raise SystemExit(f"--memory: {path} mixes batch sizes/precisions {sorted(settings)}; measure one setting")
    batch, precision = settings.pop()
    peaks = {}
    for r in rows:
        name = r["model"].rsplit(" [", 1)[0]  # "WaveMix dwt/haar [40k@32]" / "resnet [40k@32]"
        key = "wavemix-" + name.removeprefix("WaveMix ").replace("/", "-") if name.startswith("WaveMix ") else name
        peaks[key] = float(r["peak_mem_mb"])
    return peaks, f"train-step memory (MB, batch {batch}, {precision})"


def _pm(entry: dict[str, Any], key: str, digits: int = 2) -> str:
    if entry[f"{key}_mean"] is None:
        return "–"
    text = f"{entry[f'{key}_mean']:.{digits}f} ± {entry[f'{key}_std']:.{digits}f}"
    return text if entry[f"{key}_n"] == entry["seeds"] else f"{text} ({entry[f'{key}_n']} of {entry['seeds']})"


def summarize(args: argparse.Namespace) -> int:
    root = args.runs / args.grid
    out = args.out or args.runs
    out.mkdir(parents=True, exist_ok=True)
    goal = args.goal if args.goal is not None else GRIDS[args.grid].get("goal", 70.0)
    cells = _cells(GRIDS[args.grid], args.only)
    keys = {c.key for c in cells}
    rows = [r for r in collect(root, goal) if r["cell"] in keys]
    if args.merge:
        rows = merge(args.merge, GRIDS[args.grid], cells, goal, rows)
    if not rows:
        print(f"no finished runs under {root}", file=sys.stderr)
        return 1
    step_mem, step_label = {}, ""
    if args.memory:
        if "bench_group" not in GRIDS[args.grid]:
            raise SystemExit(f"--memory: grid {args.grid!r} has no `wavemixer bench --suite peers` scale")
        step_mem, step_label = bench_memory(args.memory, GRIDS[args.grid]["bench_group"])
    for row in rows:
        row["step_mem_mb"] = step_mem.get(row["cell"])
    summary = table(rows)
    with (out / f"{args.grid}.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    head = "| model | params | epochs | seeds | test top-1 % | best val top-1 % | minutes per run | peak RSS (MB) "
    head += f"| minutes to val ≥ {goal:g} % |" + (f" {step_label} |" if step_mem else "")
    lines = [head, "|---|---:|---:|---:|---|---|---|---|---|" + ("---:|" if step_mem else "")]
    for e in sorted(summary, key=lambda e: -(e["test_mean"] or 0)):
        line = (
            f"| {e['cell']} | {e['params']:,} | {e['epochs']} | {e['seeds']} | {_pm(e, 'test')} | {_pm(e, 'best_val')} "
            f"| {_pm(e, 'wall_min', 1)} | {_pm(e, 'peak_mem_mb', 0)} | {_pm(e, 'time_to_goal_min', 1)} |"
        )
        if step_mem:
            line += f" {_fmt_mb(step_mem.get(e['cell']))} |"
        lines.append(line)
    (out / f"{args.grid}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    memory = ("step_mem_mb", step_label) if step_mem else ("peak_mem_mb", "peak process RSS (MB)")
    _plot(summary, out / f"{args.grid}-pareto.png", args.grid, memory)
    return 0


def _fmt_mb(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _plot(summary: list[dict[str, Any]], path: Path, title: str, memory: tuple[str, str]) -> None:
    """Test accuracy against memory and against training time; memory against parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mem_key, mem_label = memory
    panels = [(mem_key, mem_label), ("wall_min", "training time (min)"), ("params", "")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, (key, label) in zip(axes, panels):
        for e in summary:
            if key == "params":
                x, y = e["params"], e[f"{mem_key}_mean"]
            else:
                x, y = e[f"{key}_mean"], e["test_mean"]
            if x is None or y is None:
                continue
            marker = "o" if e["cell"].startswith("wavemix") else "^"
            ax.scatter(x, y, marker=marker)
            ax.annotate(e["cell"], (x, y), fontsize=7)
        if key == "params":
            ax.set(xlabel="parameters", ylabel=mem_label, title="memory vs parameters", yscale="log")
        elif key == mem_key:  # peers and WaveMix differ by up to 50x: a log axis keeps both readable
            ax.set(xlabel=label, ylabel="test top-1 % (mean over seeds)", title="accuracy vs memory", xscale="log")
        else:
            ax.set(xlabel=label, ylabel="test top-1 % (mean over seeds)", title=f"accuracy vs {label.split(' (')[0]}")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: o WaveMix variants, ^ peers", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("run", "summarize"):
        p = sub.add_parser(name)
        p.add_argument("--grid", choices=sorted(GRIDS), required=True)
        p.add_argument("--runs", type=Path, default=Path("runs/claims"))
        p.add_argument("--out", type=Path, help="where summarize writes CSV/markdown/plot (default: --runs)")
        p.add_argument("--goal", type=float, help="val top-1 %% of the time-to-accuracy column (default: the grid's)")
        p.add_argument(
            "--memory", type=Path, help="peers.csv of `wavemixer bench --suite peers --mode train`: train-step memory"
        )
        p.add_argument(
            "--merge", type=Path, help="summary CSV of earlier runs: adds this grid's cells/seeds not trained here"
        )
        p.add_argument("--only", nargs="+", help=f"{name} only these cells of the grid")
        if name == "run":
            p.add_argument("--data-dir", help="the data set's --data-dir")
            p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
            p.add_argument("--epochs", type=int, help="override the grid's epoch budget (every cell alike)")
            p.add_argument("--subset", type=int, help="train on N images (quick checks only)")
            p.add_argument("--lanes", type=int, default=2, help="cells trained at once, one thread each")
            p.add_argument("--nice", type=int, default=10, help="niceness of the training processes (0 = none)")
            p.add_argument("extra", nargs="*", help="further `wavemixer train` flags, after --")
    args = ap.parse_args(argv)
    if args.command == "run" and args.lanes < 1:
        ap.error(f"--lanes must be >= 1, got {args.lanes}")
    return run(args) if args.command == "run" else summarize(args)


if __name__ == "__main__":
    raise SystemExit(main())
