"""The fair contest's command line: throughput sweep, tuning grid, equal-compute grids, summaries.

Definitions (contenders, recipe, tuning grid, budgets) live in :mod:`wavemixer.bench.contest`. Steps, each
resumable and each writing committed result files under ``--out`` (default ``docs/bench/contest``):

  python scripts/contest.py sweep                         # throughput.csv/.md: one interleaved sweep, fixes epochs
  python scripts/contest.py tune --data-dir ZIP           # tuning-40k.csv/.md: lr x warm-up, seed 0, val only
  python scripts/contest.py run --grid 40k-5min --data-dir ZIP   # 3 seeds at each contender's tuned setting
  python scripts/contest.py summarize --grid 40k-5min     # <grid>.csv/.md/-pareto.png from the runs on disk

ZIP is ``../shared/data/CIFAR10/cifar10_jpeg_q75_imagefolder.zip`` here (CIFAR-10 as JPEGs, 45,000 train /
5,000 val / 10,000 test). Runs go to ``--runs`` (default ``runs/contest``), one folder per run; a run with
``results.json`` is done, one with a checkpoint is continued with ``--resume``. ``--lanes N`` trains N runs
at a time, each on one thread under ``nice``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wavemixer.bench import contest as C

OUT = Path("docs/bench/contest")
RUNS = Path("runs/contest")


# ------------------------------------------------------------------------------------------ machine
def machine() -> dict[str, str]:
    """CPU model and the flags that decide kernels (AVX-512, bf16, AMX), torch version, for every result file."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    import torch

    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return dict(
        cpu=model, cpus=str(os.cpu_count()), flags=" ".join(f for f in wanted if f in flags), torch=torch.__version__
    )


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


# ------------------------------------------------------------------------------------------ sweep
def _entries(budgets: Sequence[str]) -> list[tuple[Any, Any]]:
    from wavemixer.bench.runner import BenchEntry

    out = []
    for budget in budgets:
        for c in C.contenders(budget):
            model = c.build()
            if c.kind == "peer":
                entry = BenchEntry(f"{budget}/{c.key}", "peer", "classification", c.model, dict(model.config),
                                   (3, C.IMG_SIZE, C.IMG_SIZE), budget)  # fmt: skip
            else:
                entry = BenchEntry(f"{budget}/{c.key}", "wavemixer", "classification", c.model, dict(model.config),
                                   (3, C.IMG_SIZE, C.IMG_SIZE), budget)  # fmt: skip
            out.append((c, entry))
    return out


def data_loading_ms(data_dir: str, batches: int = 60) -> float:
    """Milliseconds per batch-128 of the contest's training input pipeline (decoded images: crop, flip,
    normalise), one thread: the part of an epoch no model spends, kept out of the time budgets."""
    import torch

    from wavemixer.train import TrainConfig, resolve_config
    from wavemixer.train.datasets import build_datasets

    torch.set_num_threads(1)
    cfg = resolve_config(TrainConfig(dataset="cifar10", data_dir=data_dir, decode_once=True, trivial_augment=False))
    train = build_datasets(cfg).train
    loader = torch.utils.data.DataLoader(train, batch_size=C.BATCH_SIZE, shuffle=True, num_workers=0)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return (time.perf_counter() - start) / batches * 1000


def sweep(args: argparse.Namespace) -> int:
    """Training-step time (batch 128, fp32) at 1 and 2 threads, step memory and MACs of every contender."""
    from wavemixer.bench.runner import BenchSettings, aggregate, run_sweep

    pairs = _entries(args.budgets)
    rows: list[dict[str, Any]] = []
    info = machine()
    for threads, rounds in ((1, args.rounds), (2, 1)):
        settings = BenchSettings(
            batch_size=C.BATCH_SIZE, modes=("train",), precisions=("fp32",), warmup=args.warmup, iters=args.iters,
            rounds=rounds, threads=threads, timeout_s=1800.0,
        )  # fmt: skip
        records = run_sweep([e for _, e in pairs], settings, log=lambda t: print(t, flush=True))
        by_label = {r["model"]: r for r in aggregate(records)}
        for c, e in pairs:
            r = by_label[e.label]
            rows.append(
                dict(
                    budget=c.budget, key=c.key, kind=c.kind, published=int(c.published), params=r.get("params"),
                    macs=round(r["gmacs"] * 1e9) if r.get("gmacs") is not None else None, threads=threads,
                    ms_per_step=r["ms_median"], ms_p25=r["ms_p25"], ms_p75=r["ms_p75"],
                    samples_per_s=r["samples_per_s"], step_mem_mb=r["peak_mem_mb"], runs=r["runs"], error=r["error"],
                )
            )  # fmt: skip
    data_ms = data_loading_ms(args.data_dir) if args.data_dir else None
    for row in rows:
        row["data_ms_per_step"] = round(data_ms, 2) if data_ms is not None else None
    out = args.out / "throughput.csv"
    _write_csv(out, rows)
    lines = [
        f"Training-step throughput of the contenders: batch {C.BATCH_SIZE}, fp32, CIFAR-10-sized inputs (3x32x32), "
        f"median over {args.rounds} interleaved rounds x {args.iters} steps (1 thread) and 1 round (2 threads), "
        "each measurement in a fresh process (`wavemixer.bench.runner`).",
        "",
        f"Machine: {info['cpu']}, {info['cpus']} CPUs, flags {info['flags'] or 'none of avx2/avx512'}, "
        f"torch {info['torch']}. Command: `python scripts/contest.py sweep --data-dir ZIP`.",
        "",
    ]
    if data_ms is not None:
        lines += [
            f"Input pipeline (decoded images, crop + flip + normalise, one thread): {data_ms:.1f} ms per batch of "
            f"{C.BATCH_SIZE}, {data_ms * C.STEPS_PER_EPOCH / 1000:.1f} s per epoch — the same for every model and "
            "not counted in the time budgets.",
            "",
        ]
    lines += [
        "| budget | contender | params | MMACs/image | ms/step (1 thread) | ms/step (2 threads) | img/s (1 thread) "
        "| step memory (MB) | " + " | ".join(f"epochs in {g}" for g in C.TIME_BUDGETS) + " |",
        "|---|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(C.TIME_BUDGETS),
    ]
    one = {(r["budget"], r["key"]): r for r in rows if r["threads"] == 1}
    two = {(r["budget"], r["key"]): r for r in rows if r["threads"] == 2}
    for (budget, key), r in one.items():
        epochs = []
        for b, minutes in C.TIME_BUDGETS.values():
            ok = b == budget and r["ms_per_step"]
            epochs.append(str(C.epochs_for_budget(float(r["ms_per_step"]), minutes)) if ok else "")
        name = key + (" (published)" if r["published"] else "")
        lines.append(
            f"| {budget} | {name} | {r['params']:,} | {(r['macs'] or 0) / 1e6:.2f} | {r['ms_per_step']} "
            f"| {two[(budget, key)]['ms_per_step']} | {r['samples_per_s']} | {r['step_mem_mb']} | "
            + " | ".join(epochs)
            + " |"
        )
    (args.out / "throughput.md").write_text("\n".join(lines) + "\n")
    (args.out / "machine.json").write_text(json.dumps(info, indent=1) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}, {args.out / 'throughput.md'}")
    return 0


# ------------------------------------------------------------------------------------------ main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sweep", help="interleaved throughput sweep of every contender (fixes the epoch budgets)")
    p.add_argument("--budgets", nargs="+", default=list(C.BUDGETS), choices=list(C.BUDGETS))
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds at 1 thread (default 2)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--data-dir", help="CIFAR-10 data (also measures the input pipeline's share of an epoch)")
    p.add_argument("--out", type=Path, default=OUT)
    p.set_defaults(func=sweep)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
