"""The contest's throughput measurement: training-step time, memory and MACs of every contender.

One sweep of these measurements (``scripts/contest.py sweep``) fixes every grid's step budget
(:func:`wavemixer.bench.contest.budget_steps`), so every contender is timed in the same interleaved run, each
measurement in a fresh process (:func:`wavemixer.bench.runner.run_sweep`). ``compile-check`` and
``gpu-sweep`` measure the same steps compiled and on a CUDA device. The script writes the files; this module
measures and renders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from wavemixer.bench import contest as C

__all__ = [
    "bench_entries",
    "data_loading_ms",
    "machine_info",
    "measure_steps",
    "throughput_row",
    "throughput_table",
]


def machine_info() -> dict[str, str]:
    """CPU model and the flags that decide kernels (AVX-512, bf16, AMX), torch version, for every result file."""
    import torch

    from wavemixer.cpu import KERNEL_FLAGS, cpu_flags, cpu_model

    flags = cpu_flags()
    return dict(
        cpu=cpu_model(), cpus=str(os.cpu_count()), flags=" ".join(f for f in KERNEL_FLAGS if f in flags),
        torch=torch.__version__,
    )  # fmt: skip


def bench_entries(budgets: Sequence[str]) -> list[tuple[C.Contender, Any]]:
    """Every contender of ``budgets`` with the bench entry that times it (label ``<budget>/<key>``)."""
    from wavemixer.bench.runner import BenchEntry

    out = []
    for budget in budgets:
        for c in C.contenders(budget):
            config = dict(c.build().config)
            source = "peer" if c.kind == "peer" else "wavemixer"
            shape = (3, C.IMG_SIZE, C.IMG_SIZE)
            out.append((c, BenchEntry(f"{budget}/{c.key}", source, "classification", c.model, config, shape, budget)))
    return out


def data_loading_ms(data_dir: str, batches: int = 60) -> float:
    """Milliseconds per batch-128 of the contest's training input pipeline (decoded images: crop, flip,
    normalise), one thread: the part of an epoch no model spends, kept out of the time budgets."""
    import torch

    from wavemixer.tasks.classification import ClassificationTask
    from wavemixer.train import TrainConfig, resolve_config

    torch.set_num_threads(1)
    cfg = resolve_config(TrainConfig(dataset="cifar10", data_dir=data_dir, decode_once=True, trivial_augment=False))
    train = ClassificationTask(cfg).build_data().train
    loader = torch.utils.data.DataLoader(train, batch_size=C.BATCH_SIZE, shuffle=True, num_workers=0)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return (time.perf_counter() - start) / batches * 1000


def measure_steps(
    pairs: list[tuple[C.Contender, Any]], *, threads: int | None, rounds: int, device: str,
    precisions: tuple[str, ...], warmup: int, iters: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per contender x precision: fastest and median training-step time, step memory, MACs.

    The fastest step is the model's own cost on a machine that runs other work; it is what fixes the budgets."""
    from wavemixer.bench.runner import BenchSettings, aggregate, run_sweep

    settings = BenchSettings(
        batch_size=C.BATCH_SIZE, modes=("train",), precisions=precisions, warmup=warmup, iters=iters, rounds=rounds,
        threads=threads, device=device, timeout_s=1800.0,
    )  # fmt: skip
    records = run_sweep([e for _, e in pairs], settings, log=lambda t: print(t, flush=True))
    by_key = {(r["model"], r["precision"]): r for r in aggregate(records)}
    fastest: dict[tuple[str, str], float] = {}
    for rec in records:
        for t in rec.get("times_ms", []):
            key = (rec["label"], rec["precision"])
            fastest[key] = min(fastest.get(key, t), t)
    rows = []
    for c, e in pairs:
        for precision in precisions:
            r = by_key[(e.label, precision)]
            rows.append(
                dict(
                    budget=c.budget, key=c.key, kind=c.kind, published=int(c.published), params=r.get("params"),
                    macs=r.get("macs"), threads=threads or "",
                    precision=precision, ms_per_step=round(fastest[(e.label, precision)], 2) if r["runs"] else None,
                    ms_median=r["ms_median"], ms_p25=r["ms_p25"], ms_p75=r["ms_p75"],
                    step_mem_mb=r["peak_mem_mb"], runs=r["runs"], error=r["error"],
                )
            )  # fmt: skip
    return rows


def throughput_table(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown table of a sweep's rows: one line per contender, MACs exact from the definitions, and the
    steps (epochs) each time budget gives it at its 1-thread step time."""
    lines = [
        "| budget | contender | params | MMACs/image | ms/step (1 thread) | ms/step (2 threads) | img/s (1 thread) "
        "| step memory (MB) | " + " | ".join(f"steps (epochs) in {g}" for g in C.TIME_BUDGETS) + " |",
        "|---|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(C.TIME_BUDGETS),
    ]
    one = {(r["budget"], r["key"]): r for r in rows if r["threads"] == 1}
    two = {(r["budget"], r["key"]): r for r in rows if r["threads"] == 2}
    for (budget, key), r in one.items():
        epochs = []
        for b, minutes in C.TIME_BUDGETS.values():
            ok = b == budget and r["ms_per_step"]
            steps = C.steps_for_budget(float(r["ms_per_step"]), minutes) if ok else None
            epochs.append("" if steps is None else f"{steps:,} ({steps / C.STEPS_PER_EPOCH:.1f})")
        name = key + (" (published)" if r["published"] else "")
        lines.append(
            f"| {budget} | {name} | {r['params']:,} | {C.macs_per_image(budget, key) / 1e6:.2f} | {r['ms_per_step']} "
            f"| {two.get((budget, key), {}).get('ms_per_step', '–')} "
            f"| {C.BATCH_SIZE * 1000 / r['ms_per_step'] if r['ms_per_step'] else 0:.0f} "
            f"| {r['step_mem_mb']} | " + " | ".join(epochs) + " |"
        )
    return lines


def throughput_row(row: dict[str, str]) -> dict[str, Any]:
    """A throughput.csv row with its numbers as numbers (empty: None), as :func:`measure_steps` gives them."""
    out: dict[str, Any] = dict(row)
    for key in ("threads", "published", "params", "macs"):
        out[key] = int(row[key]) if row.get(key) else None
    for key in ("ms_per_step", "step_mem_mb"):
        out[key] = float(row[key]) if row.get(key) else None
    return out
