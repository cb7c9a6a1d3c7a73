"""The fair contest's command line: throughput sweep, tuning grid, equal-compute grids, summaries.

Definitions (contenders, recipe, budgets) live in :mod:`wavemixer.bench.contest`, the tuning grid in
:mod:`wavemixer.bench.tuning`, the throughput measurement in :mod:`wavemixer.bench.contest_throughput`. Steps, each
resumable and each writing committed result files under ``--out`` (default ``docs/bench/contest``):

  python scripts/contest.py sweep                         # throughput.csv/.md: one interleaved sweep, fixes the steps
                                                          # (refuses to measure over it again without --force)
  python scripts/contest.py tune --data-dir ZIP           # tuning-40k.csv/.md: lr x warm-up, seed 0, val only
  python scripts/contest.py run --grid 40k-5min --data-dir ZIP   # 3 seeds at each contender's tuned setting
  python scripts/contest.py summarize --grid 40k-5min     # <grid>.csv/.md/-pareto.png from the runs (see below)
  python scripts/contest.py run --grid 40k-20min --keep-best 6 --data-dir ZIP   # the published row + 5 best at 5 min
  python scripts/contest.py ablation --data-dir ZIP       # token mixers swapped in the best WaveMix cell at 5 min
  python scripts/contest.py compare --grid 40k-20min --against 40k-5min   # <grid>-vs-<against>.md: rows side by side

ZIP is ``../shared/data/CIFAR10/cifar10_jpeg_q75_imagefolder.zip`` here (CIFAR-10 as JPEGs, 45,000 train /
5,000 val / 10,000 test). Runs go to ``--runs`` (default ``runs/contest``), one folder per run; a run with
``results.json`` is done, one with a checkpoint is continued with ``--resume``. ``--lanes N`` trains N runs
at a time, each on one thread under ``nice``. Training and tables go through :mod:`wavemixer.runs`
(``wavemixer runs runs/contest/40k-5min`` gives the plain table of a grid's runs).

A grid outlives the machine it started on in two ways. Each finished run's record (results, config, curve and
log; no weights) is kept under ``--records`` (default ``OUT/records``), and a run folder that is gone is
restored from it before its grid would train it (:mod:`wavemixer.runs.records`). And ``<grid>.csv`` under
``--out`` is the grid's committed ledger, one row per finished run: ``summarize`` keeps its rows whose run
folders are not under ``--runs`` (a folder that is there replaces its row), and ``run`` does not train a
contender and seed it already holds. Delete a row (and its record) to train that run again.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wavemixer.bench import contest as C
from wavemixer.bench import contest_throughput as TP
from wavemixer.bench import tuning as T
from wavemixer.cli import OneLineParser
from wavemixer.files import atomic_write_text
from wavemixer.runs import (
    Column,
    Group,
    Job,
    Run,
    Stat,
    add_lane_options,
    at_least,
    collect_runs,
    group_runs,
    markdown_table,
    mean_std,
    merge_runs,
    pareto_plot,
    read_summary_csv,
    record_path,
    score_curves,
    train_in_lanes,
    write_summary_csv,
)

OUT = Path("docs/bench/contest")
RUNS = Path("runs/contest")


# ------------------------------------------------------------------------------------------ sweep
def _render_table_only(args: argparse.Namespace) -> int:
    """``sweep --table-only``: throughput.md's table written again from throughput.csv, its notes kept."""
    csv_path, md_path = args.out / "throughput.csv", args.out / "throughput.md"
    if not csv_path.is_file() or not md_path.is_file():
        raise SystemExit(f"--table-only rewrites the table of {md_path} from {csv_path}; both must exist")
    with csv_path.open(newline="") as fh:
        rows = [TP.throughput_row(r) for r in csv.DictReader(fh)]
    text = md_path.read_text()
    notes = text[: text.index("| budget | contender |")] if "| budget | contender |" in text else text
    note = "The table was written again from throughput.csv (`sweep --table-only`), MACs exact from the definitions."
    if note not in notes:
        notes += note + "\n\n"
    atomic_write_text(md_path, notes + "\n".join(TP.throughput_table(rows)) + "\n")
    print(f"wrote {md_path}")
    return 0


def sweep(args: argparse.Namespace) -> int:
    """Training-step time (batch 128, fp32) at 1 and 2 threads, step memory and MACs of every contender.

    ``--two-threads-only`` measures the 2-thread rows again and keeps the committed 1-thread rows, which fix
    the step budgets (on an otherwise idle machine: 2 threads need both cores)."""
    if args.table_only:
        return _render_table_only(args)
    out = args.out / "throughput.csv"
    if out.exists() and not (args.force or args.two_threads_only):
        raise SystemExit(
            f"{out} exists and fixes the step budgets of every grid: a new sweep changes them, and `run` then refuses "
            "the grids' finished runs (trained at the old budgets); give --force to measure again, or --out another "
            "folder"
        )
    pairs = TP.bench_entries(args.budgets)
    info = TP.machine_info()
    kept: list[dict[str, Any]] = []
    if args.two_threads_only:
        if not out.is_file():
            raise SystemExit(f"--two-threads-only keeps the 1-thread rows of {out}, which does not exist")
        with out.open(newline="") as fh:
            kept = [r for r in csv.DictReader(fh) if r["threads"] == "1" and r["budget"] in args.budgets]
        kept = [TP.throughput_row(r) for r in kept]
    rows: list[dict[str, Any]] = list(kept)
    for threads, rounds in ((1, args.rounds), (2, 1)):
        if threads == 1 and args.two_threads_only:
            continue
        rows += TP.measure_steps(
            pairs, threads=threads, rounds=rounds, device="cpu", precisions=("fp32",), warmup=args.warmup,
            iters=args.iters,
        )  # fmt: skip
    data_ms = TP.data_loading_ms(args.data_dir) if args.data_dir else None
    if data_ms is None and kept:
        data_ms = float(kept[0]["data_ms_per_step"]) if kept[0].get("data_ms_per_step") else None
    for row in rows:
        row["data_ms_per_step"] = round(data_ms, 2) if data_ms is not None else None
    T.write_csv(out, rows)
    lines = [
        f"Training-step time of the contenders: batch {C.BATCH_SIZE}, fp32, CIFAR-10-sized inputs (3x32x32), "
        f"{kept[0]['runs'] if kept else args.rounds} interleaved rounds x {args.iters} steps (1 thread) and 1 round "
        "(2 threads), each "
        "measurement in a fresh process (`wavemixer.bench.runner`). **ms/step is the fastest step seen** (the "
        "machine runs other work; the fastest step is the model's own cost), the basis of the step budgets; the "
        "median is in throughput.csv.",
        "",
        f"Machine: {info['cpu']}, {info['cpus']} CPUs, flags {info['flags'] or 'none of avx2/avx512'}, "
        f"torch {info['torch']}. Command: `python scripts/contest.py sweep --data-dir ZIP`.",
        "",
    ]
    if args.two_threads_only:
        lines += [
            f"The 2-thread column was measured again on {time.strftime('%Y-%m-%d')} with the machine otherwise idle "
            "(`sweep --two-threads-only`); the 1-thread column, which fixes the step budgets, is the first sweep's.",
            "",
        ]
    if data_ms is not None:
        lines += [
            f"Input pipeline (decoded images, crop + flip + normalise, one thread): {data_ms:.1f} ms per batch of "
            f"{C.BATCH_SIZE}, {data_ms * C.STEPS_PER_EPOCH / 1000:.1f} s per epoch — the same for every model and "
            "not counted in the time budgets.",
            "",
        ]
    lines += TP.throughput_table(rows)
    atomic_write_text(args.out / "throughput.md", "\n".join(lines) + "\n")
    atomic_write_text(args.out / "machine.json", json.dumps(info, indent=1) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}, {args.out / 'throughput.md'}")
    return 0


def compile_check(args: argparse.Namespace) -> int:
    """Eager against ``torch.compile`` training steps of every contender (1 thread, fp32, batch 128, interleaved
    in one run): whether the contest should train everything compiled. Writes compile-check.csv/.md."""
    import dataclasses

    _check_only(args.budgets, args.only)  # before anything is measured or written
    pairs = [(c, e) for c, e in TP.bench_entries(args.budgets) if not args.only or c.key in args.only]
    compiled = [(c, dataclasses.replace(e, label=f"{e.label} [compile]", variant="compile")) for c, e in pairs]
    interleaved = [p for pair in zip(pairs, compiled) for p in pair]
    rows = TP.measure_steps(
        interleaved, threads=1, rounds=args.rounds, device="cpu", precisions=("fp32",), warmup=args.warmup,
        iters=args.iters,
    )  # fmt: skip
    for row, (_, e) in zip(rows, interleaved):
        row["variant"] = e.variant or "eager"
    T.write_csv(args.out / "compile-check.csv", rows)
    info = TP.machine_info()
    lines = [
        f"Training step (batch {C.BATCH_SIZE}, fp32, one thread) eager and under `torch.compile` (inductor, default "
        f"mode), interleaved, {args.rounds} round(s) x {args.iters} steps after {args.warmup} warm-up step(s) (the "
        "compilation), each in a fresh process; fastest step. Machine: "
        f"{info['cpu']}, {info['cpus']} CPUs, flags {info['flags']}, torch {info['torch']}. Command: "
        "`python scripts/contest.py compile-check`.",
        "",
        "| budget | contender | eager (ms/step) | compiled (ms/step) | compiled / eager |",
        "|---|---|---:|---:|---:|",
    ]
    for eager, comp in zip(rows[::2], rows[1::2]):
        a, b = eager["ms_per_step"], comp["ms_per_step"]
        ratio = f"{b / a:.2f}" if a and b else "–"
        lines.append(f"| {eager['budget']} | {eager['key']} | {a or '–'} | {b or comp['error'] or '–'} | {ratio} |")
    atomic_write_text(args.out / "compile-check.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def gpu_sweep(args: argparse.Namespace) -> int:
    """The same training steps on a CUDA device, fp32 and bf16: throughput-cuda.csv/.md (one round, ~5 min)."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu-sweep needs a CUDA device; torch sees none (the CPU sweep is `contest.py sweep`)")
    _check_only(args.budgets, args.only)  # before anything is measured or written
    pairs = TP.bench_entries(args.budgets)
    if args.only:
        pairs = [(c, e) for c, e in pairs if c.key in args.only]
    name = torch.cuda.get_device_name(0)
    rows = TP.measure_steps(
        pairs, threads=None, rounds=1, device="cuda", precisions=("fp32", "bf16"), warmup=args.warmup,
        iters=args.iters,
    )  # fmt: skip
    for row in rows:
        row["device"] = name
    T.write_csv(args.out / "throughput-cuda.csv", rows)
    by = {(r["budget"], r["key"], r["precision"]): r for r in rows}
    lines = [
        f"Training-step time of the contenders on {name} (torch {torch.__version__}): batch {C.BATCH_SIZE}, "
        f"3x32x32 inputs, median of {args.iters} steps after {args.warmup} warm-up, fresh process each. "
        "Command: `python scripts/contest.py gpu-sweep`.",
        "",
        "| budget | contender | params | MMACs/image | ms/step fp32 | ms/step bf16 | memory fp32 (MB) "
        "| memory bf16 (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c, _ in pairs:
        f32, b16 = by[(c.budget, c.key, "fp32")], by[(c.budget, c.key, "bf16")]
        lines.append(
            f"| {c.budget} | {c.key} | {f32['params']:,} | {C.macs_per_image(c.budget, c.key) / 1e6:.2f} "
            f"| {f32['ms_per_step']} "
            f"| {b16['ms_per_step']} | {f32['step_mem_mb']} | {b16['step_mem_mb']} |"
        )
    atomic_write_text(args.out / "throughput-cuda.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------------------------------ training
def _run_jobs(jobs: list[tuple[list[str], Path]], args: argparse.Namespace) -> list[str]:
    """Train ``(arguments, run folder)`` jobs, ``--lanes`` at a time (:func:`wavemixer.runs.train_in_lanes`:
    finished folders are skipped, interrupted ones resumed, records kept under ``--records``, by default
    ``OUT/records``). Returns the runs that failed."""
    records = args.records or args.out / "records"
    jobs_ = [Job(cmd, out, record_path(records, args.runs, out)) for cmd, out in jobs]
    failed = train_in_lanes(jobs_, lanes=args.lanes, nice=args.nice)
    return [str(out) for out in failed]


def _steps(args: argparse.Namespace, grid: str, keys: Sequence[str] | None = None) -> dict[str, int]:
    """Each contender's steps for ``grid``; refuses when one that will train (``keys``, else the selected
    contenders) has no measured step time."""
    path = args.out / "throughput.csv"
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: run `python scripts/contest.py sweep` first (it fixes the steps)")
    steps = C.budget_steps(path, grid)
    wanted = keys if keys is not None else [c.key for c in _selected(C.TIME_BUDGETS[grid][0], args.only)]
    unmeasured = [key for key in wanted if key not in steps]
    if unmeasured:
        raise SystemExit(
            f"{path} has no 1-thread ms_per_step for {unmeasured}: time every contender in one sweep (`python "
            "scripts/contest.py sweep --force`; new budgets for all, so the grids train again)"
        )
    return steps


def _check_only(budgets: Sequence[str], only: Sequence[str] | None) -> None:
    """``--only`` names contenders of at least one of ``budgets``."""
    known = sorted({c.key for budget in budgets for c in C.contenders(budget)})
    unknown = sorted(set(only or ()) - set(known))
    if unknown:
        raise SystemExit(f"--only: unknown contender(s) {unknown}; the contenders of {list(budgets)} are {known}")


def _selected(budget: str, only: Sequence[str] | None) -> list[C.Contender]:
    every = C.contenders(budget)
    if not only:
        return every
    unknown = sorted(set(only) - {c.key for c in every})
    if unknown:
        raise SystemExit(
            f"--only: unknown contender(s) {unknown}; the {budget} contenders are {[c.key for c in every]}"
        )
    return [c for c in every if c.key in only]


def tune(args: argparse.Namespace) -> int:
    """Every selected 40k contender at every setting of the tuning grid, seed 0, at the short budget."""
    budget, _ = C.TIME_BUDGETS[C.TUNING_BUDGET]
    steps = _steps(args, C.TUNING_BUDGET)
    settings = list(T.TUNING_GRID)
    if args.settings:
        known = {s.key: s for s in T.TUNING_GRID}
        unknown = sorted(set(args.settings) - set(known))
        if unknown:
            raise SystemExit(f"--settings: unknown setting(s) {unknown}; the grid's are {list(known)}")
        settings = [known[k] for k in args.settings]
    if args.edge and args.settings:
        raise SystemExit("--edge chooses its own settings; give it without --settings")
    selected = _selected(budget, args.only)
    if args.prescreen or args.prescreened:
        flag = "--prescreen" if args.prescreen else "--prescreened"
        given = [o for o, v in (("--only", args.only), ("--settings", args.settings)) if v]
        if args.prescreen and args.edge:
            given.append("--edge")
        if given:
            raise SystemExit(f"{flag} chooses its contenders and settings itself; give it without {', '.join(given)}")
    if args.prescreen:  # every WaveMix cell at the one screening setting
        settings = [C.PRESCREEN]
        selected = [c for c in selected if c.kind == "wavemix"]
    elif args.prescreened:  # the peers and the WaveMix cells the pre-screen chose
        try:
            chosen = C.prescreen_selection(args.out / f"tuning-{budget}.csv", budget)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--prescreened: {exc}") from None
        selected = [c for c in selected if c.kind != "wavemix" or c.key in chosen]

    def jobs_for(plan: dict[str, list[T.Setting]]) -> list[tuple[list[str], Path]]:
        jobs = []
        for c in selected:
            for setting in plan.get(c.key, []):
                out = args.runs / f"tune-{budget}" / c.key / f"{setting.key}-s0"
                if T.tried(out):
                    continue
                cmd = C.train_command(
                    c, setting, steps=steps[c.key], seed=0, output=out, data_dir=args.data_dir, tuning=True
                )
                jobs.append((cmd, out))
        return jobs

    def train_round(plan: dict[str, list[T.Setting]]) -> int | None:
        jobs = jobs_for(plan)
        failed = _run_jobs(jobs, args) if jobs else []
        summarize_tuning(args)
        return (1 if failed else 0) if jobs else None

    if not args.edge:
        return train_round({c.key: settings for c in selected}) or 0
    try:  # the edge rule: a step beyond the rates tried while a best rate is at their boundary
        return T.edge_rounds(args.out / f"tuning-{budget}.csv", train_round)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


def summarize_tuning(args: argparse.Namespace) -> int:
    """tuning-<budget>.csv (every run's best val top-1) and .md (contenders x settings, the best marked)."""
    budget, _ = C.TIME_BUDGETS[C.TUNING_BUDGET]
    root = args.runs / f"tune-{budget}"
    rows = T.tuning_rows(root)
    if not rows:
        print(f"no finished tuning runs under {root}", file=sys.stderr)
        return 1
    csv_path = args.out / f"tuning-{budget}.csv"
    rows = T.merge_tuning(csv_path, rows)  # runs trained elsewhere stay
    T.write_csv(csv_path, rows)
    best = T.read_tuning(csv_path, complete=True)

    def steps(rows_of_key: list[dict[str, Any]]) -> str:
        n = next((r["steps"] for r in rows_of_key if r["steps"]), None)
        return "–" if n is None else f"{n:,} ({n / C.STEPS_PER_EPOCH:.1f})"

    lines = [
        f"Tuning at {budget} parameters, {C.TIME_BUDGETS[C.TUNING_BUDGET][1]:g} minutes of training steps "
        "(steps from throughput.csv), seed 0: best val top-1 % (45,000 train / 5,000 val images of CIFAR-10's "
        "training set). **Bold**: the setting each fully tuned contender trains with. Rows marked *pre-screen* "
        f"trained only at lr {C.PRESCREEN.lr:g}, warm-up {C.PRESCREEN.warmup:g}: the WaveMix configurations not "
        "selected for tuning (per stem, the best upsampler goes on, and the published configuration). Commands: "
        "`python scripts/contest.py tune --prescreen --data-dir ZIP`, then `tune --prescreened` and `tune --edge` "
        "with the same options.",
        "",
        *T.tuning_table(rows, best, size=("steps (epochs)", steps), prescreen=C.PRESCREEN),
    ]
    atomic_write_text(args.out / f"tuning-{budget}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def run(args: argparse.Namespace) -> int:
    """Seeds 1-3 of every selected contender at its tuned setting and the grid's fixed steps."""
    budget, _ = C.TIME_BUDGETS[args.grid]
    tuning = args.out / f"tuning-{C.TIME_BUDGETS[C.TUNING_BUDGET][0]}.csv"
    if not tuning.is_file():
        raise SystemExit(f"{tuning} does not exist: run `python scripts/contest.py tune` first")
    best, steps = T.read_tuning(tuning, complete=True), _steps(args, args.grid)
    only = args.only
    if args.keep_best is not None:
        if only:
            raise SystemExit("--keep-best and --only choose the contenders two ways: give one of them")
        if args.grid == C.TUNING_BUDGET:
            raise SystemExit(f"--keep-best ranks by {C.TUNING_BUDGET}; it cannot choose that grid's own contenders")
        short = args.out / f"{C.TUNING_BUDGET}.csv"
        if not short.is_file():
            raise SystemExit(f"--keep-best: {short} does not exist; run `--grid {C.TUNING_BUDGET}` first")
        try:
            only = C.long_grid_selection(short, budget, args.keep_best)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--keep-best {args.keep_best}: {exc}") from None
        print(f"{args.grid}: the published row and the best at {C.TUNING_BUDGET} (mean val top-1): {' '.join(only)}")
    ledger = {(r.group, r.seed): r for r in _ledger(args.out / f"{args.grid}.csv")}
    chosen = _selected(budget, only)
    if not only:  # every contender the tuning finished; the pre-screen's other WaveMix cells are not contenders
        untuned = [c.key for c in chosen if c.tuning_key not in best]
        chosen = [c for c in chosen if c.tuning_key in best]
        if untuned:
            print(f"{args.grid}: not tuned (pre-screen only), so not trained: {' '.join(untuned)}")
    jobs = []
    for seed in args.seeds:  # seed-major: every contender has a run early
        for c in chosen:
            if c.tuning_key not in best:
                raise SystemExit(f"{c.key} is not tuned at every setting in {tuning}: tune --only {c.key} first")
            out = args.runs / args.grid / f"{c.key}-s{seed}"
            if (c.key, seed) in ledger and not out.exists():
                _check_ledger_row(ledger[c.key, seed], best[c.tuning_key], steps[c.key], args.out / f"{args.grid}.csv")
                print(f"skip {out}: {c.key} seed {seed} is in {args.out / f'{args.grid}.csv'} (trained earlier)")
                continue
            cmd = C.train_command(c, best[c.tuning_key], steps=steps[c.key], seed=seed, output=out,
                                  data_dir=args.data_dir)  # fmt: skip
            jobs.append((cmd, out))
    failed = _run_jobs(jobs, args)
    if failed:
        print(f"{len(failed)} run(s) failed: {failed}; see their .log files", file=sys.stderr)
    return 1 if failed else summarize(args)


# ------------------------------------------------------------------------------------------ mixer ablation
def ablation(args: argparse.Namespace) -> int:
    """The token-mixer ablation inside the block, on the WaveMix configuration best at the short budget (mean val
    top-1, or ``--config``): each other mixer of :data:`~wavemixer.bench.contest.MIXERS` swapped in, trained
    like the configuration's own grid runs (its tuned setting, its steps, seeds 1-3). The Haar rows are those
    grid runs themselves."""
    grid = C.TUNING_BUDGET
    budget, _ = C.TIME_BUDGETS[grid]
    short = args.out / f"{grid}.csv"
    if args.config is None and not short.is_file():
        raise SystemExit(f"ablation: {short} does not exist; run `--grid {grid}` first, or give --config")
    try:
        key = args.config or C.best_wavemix(short)
        base = C.contender(budget, key)
        variants = [C.mixer_variant(base, m) for m in C.MIXERS if m != "haar"]
    except (OSError, ValueError) as exc:
        raise SystemExit(f"ablation: {exc}") from None
    tuning = args.out / f"tuning-{budget}.csv"
    if not tuning.is_file():
        raise SystemExit(f"{tuning} does not exist: run `python scripts/contest.py tune` first")
    setting, steps = T.read_tuning(tuning, complete=True).get(base.key), _steps(args, grid, [base.key])[base.key]
    if setting is None:
        raise SystemExit(f"ablation: {base.key} is not tuned at every setting in {tuning}")
    print(f"mixer ablation on {base.key} ({setting.key}, {steps:,} steps, seeds {args.seeds})")
    root = args.runs / f"ablation-{grid}"
    jobs = []
    for seed in args.seeds:
        for v in variants:
            out = root / f"{v.key}-s{seed}"
            jobs.append((C.train_command(v, setting, steps=steps, seed=seed, output=out, data_dir=args.data_dir), out))
    failed = _run_jobs(jobs, args)
    if failed:
        print(f"{len(failed)} run(s) failed: {failed}; see their .log files", file=sys.stderr)
    haar = [f for seed in args.seeds if (f := args.runs / grid / f"{base.key}-s{seed}").is_dir()]
    runs = collect_runs([root, *haar]) if root.is_dir() else []
    runs = [r for r in runs if r.group == base.key or r.group.startswith(f"{base.key}-")]
    if not runs:
        print(f"no finished runs under {root}", file=sys.stderr)
        return 1
    groups = group_runs(runs)
    haar_test = next((g.stat("test") for g in groups if g.name == base.key), None)

    def mixer(g: Group) -> str:
        return "haar (the configuration itself)" if g.name == base.key else g.name.removeprefix(f"{base.key}-")

    def delta(g: Group) -> str:
        stat = g.stat("test")
        return "–" if stat is None or haar_test is None else f"{stat.mean - haar_test.mean:+.2f}"

    columns = [
        Column("mixer", mixer),
        Column("params", lambda g: f"{g.first('params'):,}", "---:"),
        Column("seeds", lambda g: str(g.seeds), "---:"),
        Column("test top-1 %", lambda g: mean_std(g, "test")),
        Column("val top-1 %", lambda g: mean_std(g, "best_val")),
        Column("test − haar", delta, "---:"),
    ]
    write_summary_csv(args.out / f"ablation-{base.key}.csv", runs)
    lines = [
        f"Token mixers inside the block of {base.key} (CIFAR-10, {budget} parameters): each trained like the "
        f"configuration's {grid} runs ({setting.key}, {steps:,} steps, seeds {', '.join(map(str, args.seeds))}); "
        "only the mixer differs. Best epoch on val, test once. Command: `python scripts/contest.py ablation "
        "--data-dir ZIP` (the configuration: the WaveMix cell with the best mean val top-1 at "
        f"{grid}).",
        "",
        markdown_table(groups, columns),
    ]
    atomic_write_text(args.out / f"ablation-{base.key}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------ summary
def collect(root: Path, budget: str, throughput: Path) -> list[Run]:
    """The grid's finished runs, each with its learning rate and warm-up (config.yaml) and its contender's
    resources from the sweep (MACs, step memory, step time at 1 and 2 threads, minutes of training steps)."""
    runs = collect_runs([root]) if root.is_dir() else []
    resources = C.read_throughput(throughput) if throughput.is_file() else {}
    keys = {c.key for c in C.contenders(budget)}
    for run in runs:
        one, two = resources.get((budget, run.group, 1), {}), resources.get((budget, run.group, 2), {})
        ms = _float(one.get("ms_per_step"))
        run.extra.update(
            lr=run.config.get("lr"), warmup=run.config.get("warmup_epochs"),
            macs=float(C.macs_per_image(budget, run.group)) if run.group in keys else _float(one.get("macs")),
            step_mem_mb=_float(one.get("step_mem_mb")), ms_per_step_1t=ms,
            ms_per_step_2t=_float(two.get("ms_per_step")),
            train_min=None if ms is None or run.steps is None else ms / 1000 * run.steps / 60,
        )  # fmt: skip
    return runs


def _check_ledger_row(row: Run, setting: T.Setting, steps: int, path: Path) -> None:
    """A ledger row stands for a run only if it trained what the grid trains now (the tuned setting and the
    steps fixed by the sweep); after a new tuning or sweep it is refused, not mixed with the new seeds."""
    recorded = (_float(row.extra.get("lr")), _float(row.extra.get("warmup")), row.steps)
    if recorded != (setting.lr, setting.warmup, steps):
        raise SystemExit(
            f"{path}: {row.group} seed {row.seed} trained at lr {recorded[0]}, warm-up {recorded[1]}, "
            f"{recorded[2]} steps, but the grid now trains it at lr {setting.lr:g}, warm-up {setting.warmup:g}, "
            f"{steps} steps: delete its row (and its record) to train it again"
        )


def _ledger(path: Path) -> list[Run]:
    """The finished runs recorded in a grid's committed summary CSV (none when there is none yet)."""
    if not path.is_file():
        return []
    try:
        return read_summary_csv(path)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: {exc}") from None


def _grid_runs(args: argparse.Namespace, grid: str) -> tuple[list[Run], list[Run]]:
    """The grid's finished runs under ``--runs``, and those with the rest of its ledger's rows."""
    here = collect(args.runs / grid, C.TIME_BUDGETS[grid][0], args.out / "throughput.csv")
    try:
        return here, merge_runs(here, _ledger(args.out / f"{grid}.csv"))
    except ValueError as exc:
        raise SystemExit(f"{args.out / f'{grid}.csv'}: {exc}") from None


def _float(value: Any) -> float | None:
    return float(value) if value not in (None, "") else None


def _fixed(header: str, column: str, digits: int, scale: float = 1.0) -> Column:
    """A column that is the same for every run of a contender (its resources from the sweep)."""

    def cell(g: Group) -> str:
        value = g.first(column)
        return "–" if value is None else f"{value * scale:,.{digits}f}"

    return Column(header, cell, "---:")


def summarize(args: argparse.Namespace) -> int:
    """<grid>.csv (one row per run) and .md (mean ± std over seeds, with resources), <grid>-pareto.png."""
    budget, minutes = C.TIME_BUDGETS[args.grid]
    here, runs = _grid_runs(args, args.grid)
    if not runs:
        print(f"no finished runs under {args.runs / args.grid} or in {args.out / f'{args.grid}.csv'}", file=sys.stderr)
        return 1
    if len(runs) > len(here):
        print(f"{len(runs) - len(here)} run(s) from {args.out / f'{args.grid}.csv'} whose folders are not here")
    groups = group_runs(runs)
    write_summary_csv(args.out / f"{args.grid}.csv", runs)

    def steps(g: Group) -> str:
        n = g.first("steps")
        return "–" if n is None else f"{n:,} ({n / C.STEPS_PER_EPOCH:.1f})"

    def setting(g: Group) -> str:
        return f"{g.first('lr'):g}, {g.first('warmup'):g}" if g.first("lr") is not None else "–"

    columns = [
        Column("contender", lambda g: g.name),
        Column("params", lambda g: f"{g.first('params'):,}", "---:"),
        _fixed("MMACs/image", "macs", 2, 1e-6),
        Column("steps (epochs)", steps, "---:"),
        Column("lr, warm-up", setting),
        Column("seeds", lambda g: str(g.seeds), "---:"),
        Column("test top-1 %", lambda g: mean_std(g, "test")),
        Column("val top-1 %", lambda g: mean_std(g, "best_val")),
        _fixed("step time 1 thread (ms)", "ms_per_step_1t", 0),
        _fixed("2 threads (ms)", "ms_per_step_2t", 0),
        _fixed("step memory (MB)", "step_mem_mb", 1),
        _fixed("training steps (min)", "train_min", 1),
        Column("wall per run (min)", lambda g: mean_std(g, "wall_min", 1), "---:"),
    ]
    # the longer grids train the contenders the committed rule keeps (contest.long_grid_selection)
    keep = "" if args.grid == "40k-5min" else f" --keep-best {C.LONG_GRID_KEEP}"
    lines = [
        f"CIFAR-10, {budget} parameters, {minutes:g} minutes of one thread's training steps per run (steps fixed "
        "from throughput.csv), each contender at its tuned setting (tuning-40k.md), seeds 1-3; best epoch on val, "
        f"test once. Command: `python scripts/contest.py run --grid {args.grid}{keep} --data-dir ZIP`. "
        f"{_trained_on(runs)}.",
        "",
        markdown_table(groups, columns),
    ]
    atomic_write_text(args.out / f"{args.grid}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    panels = [  # every run of a grid trains the same minutes: time is the budget, plotted across grids below
        ("step_mem_mb", f"step memory (MB, batch {C.BATCH_SIZE}, fp32)", True),
        ("macs", "MACs per image", True),
    ]
    title = f"CIFAR-10, {budget} parameters, {minutes:g} min per run"
    pareto_plot(groups, args.out / f"{args.grid}-pareto.png", title=title, panels=panels)
    time_plot(args, budget)
    return 0


def _trained_on(runs: Sequence[Run]) -> str:
    """``Trained on <CPU> (<flags>), torch <version>`` from what the runs recorded (each CPU's run count when
    they differ), not from the machine that writes the table: a grid continued elsewhere names both."""
    cpus: dict[str, int] = {}
    for r in runs:
        cpu = str(r.extra.get("cpu") or "a CPU it did not record")
        cpus[cpu] = cpus.get(cpu, 0) + 1
    ranked = sorted(cpus.items(), key=lambda item: (-item[1], item[0]))  # most runs first
    where = ", ".join(cpu if len(cpus) == 1 else f"{cpu} ({n} run{'s' * (n != 1)})" for cpu, n in ranked)
    torches = sorted({str(r.extra["torch"]) for r in runs if r.extra.get("torch")})
    return f"Trained on {where}" + (f", torch {', '.join(torches)}" if torches else "")


def compare(args: argparse.Namespace) -> int:
    """<grid>-vs-<against>.md: each contender of ``--grid`` beside its own row in ``--against`` (the two
    budgets' published rows beside each other), the change in mean test top-1, its MACs, step memory and steps;
    the table the docs quote when a grid is set against a shorter or smaller one."""
    budget, minutes = C.TIME_BUDGETS[args.grid]
    other_budget, other_minutes = C.TIME_BUDGETS[args.against]
    if args.against == args.grid:
        raise SystemExit(f"--against {args.against}: give another grid than --grid {args.grid}")
    groups = group_runs(_grid_runs(args, args.grid)[1])
    others = {g.name: g for g in group_runs(_grid_runs(args, args.against)[1])}
    if not groups:
        raise SystemExit(f"--grid {args.grid}: no finished runs under {args.runs / args.grid} or in its ledger")
    published = {b: next(c.key for c in C.contenders(b) if c.published) for b in (budget, other_budget)}
    here, there = f"{budget}, {minutes:g} min", f"{other_budget}, {other_minutes:g} min"
    lines = [
        f"CIFAR-10: each contender of the {here} grid beside its row in the {there} grid (mean ± std over "
        f"seeds, best epoch on val, test once). Command: `python scripts/contest.py compare --grid {args.grid} "
        f"--against {args.against}`.",
        "",
        f"| contender | seeds | test top-1 %, {here} | val top-1 %, {here} | test top-1 %, {there} | change | "
        "M MACs / image | step memory (MB) | steps (epochs) |",
        "|---|---:|---|---|---|---:|---:|---:|---:|",
    ]
    marked = False
    for g in sorted(groups, key=lambda g: -(g.stat("test").mean if g.stat("test") else -1)):
        key = g.name if g.name in others else published[other_budget] if g.name == published[budget] else None
        other = others.get(key) if key else None
        mark = " †" if other is not None and key != g.name else ""
        marked |= bool(mark)
        test, before = g.stat("test"), other.stat("test") if other is not None else None
        change = f"{test.mean - before.mean:+.2f}" if test and before else "–"
        macs, mem, steps = g.first("macs"), g.first("step_mem_mb"), g.first("steps")
        lines.append(
            f"| {C.title(budget, g.name)} | {g.seeds} | {mean_std(g, 'test')} | {mean_std(g, 'best_val')} | "
            f"{mean_std(other, 'test') + mark if other is not None else '–'} | {change} | "
            f"{'–' if macs is None else f'{macs / 1e6:,.2f}'} | {'–' if mem is None else f'{mem:,.1f}'} | "
            f"{'–' if steps is None else f'{steps:,} ({steps / C.STEPS_PER_EPOCH:.1f})'} |"
        )
    if marked:
        lines += [
            "",
            f"† the published configuration at {other_budget}: {C.title(other_budget, published[other_budget])}.",
        ]
    path = args.out / f"{args.grid}-vs-{args.against}.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def time_plot(args: argparse.Namespace, budget: str) -> Path | None:
    """``<budget>-time.png``: test top-1 against the minutes of training steps, one line per contender, over the
    grids of ``budget`` that have finished runs, here or in their ledgers (accuracy against time; needs two
    grids)."""
    series: dict[str, list[tuple[float, Stat]]] = {}
    grids = []
    for grid, (b, minutes) in C.TIME_BUDGETS.items():
        runs = _grid_runs(args, grid)[1] if b == budget else []
        if not runs:
            continue
        grids.append(grid)
        for group in group_runs(runs):
            if (stat := group.stat("test")) is not None:
                series.setdefault(group.name, []).append((minutes, stat))
    if len(grids) < 2 or not series:
        return None
    path = args.out / f"{budget}-time.png"
    score_curves(series, path, xlabel="minutes of training steps per run (1 thread)",
                 ylabel="test top-1 % (mean ± std over seeds)",
                 title=f"CIFAR-10, {budget} parameters: accuracy against training time")  # fmt: skip
    return path


# ------------------------------------------------------------------------------------------ main
def main(argv: Sequence[str] | None = None) -> int:
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sweep", help="interleaved throughput sweep of every contender (fixes the epoch budgets)")
    p.add_argument("--budgets", nargs="+", default=list(C.BUDGETS), choices=list(C.BUDGETS))
    p.add_argument("--rounds", type=at_least(1), default=2, help="interleaved rounds at 1 thread (default 2)")
    p.add_argument("--warmup", type=at_least(0), default=1)
    p.add_argument("--iters", type=at_least(1), default=4)
    p.add_argument("--data-dir", help="CIFAR-10 data (also measures the input pipeline's share of an epoch)")
    p.add_argument("--two-threads-only", action="store_true",
                   help="measure the 2-thread rows again, keeping the 1-thread rows (the budgets)")  # fmt: skip
    p.add_argument("--table-only", action="store_true",
                   help="measure nothing: write throughput.md's table again from throughput.csv")  # fmt: skip
    p.add_argument("--force", action="store_true",
                   help="measure again over an existing throughput.csv (new step budgets for every grid)")  # fmt: skip
    p.add_argument("--out", type=Path, default=OUT)
    p.set_defaults(func=sweep)
    p = sub.add_parser("compile-check", help="eager against torch.compile training steps (decides the execution path)")
    p.add_argument("--budgets", nargs="+", default=["40k"], choices=list(C.BUDGETS))
    p.add_argument("--only", nargs="+", help="these contender keys only")
    p.add_argument("--rounds", type=at_least(1), default=1)
    p.add_argument("--warmup", type=at_least(1), default=2, help="warm-up steps (the first compiles)")
    p.add_argument("--iters", type=at_least(1), default=5)
    p.add_argument("--out", type=Path, default=OUT)
    p.set_defaults(func=compile_check)
    p = sub.add_parser("gpu-sweep", help="the throughput sweep on a CUDA device, fp32 and bf16")
    p.add_argument("--budgets", nargs="+", default=list(C.BUDGETS), choices=list(C.BUDGETS))
    p.add_argument("--only", nargs="+", help="these contender keys only")
    p.add_argument("--warmup", type=at_least(1), default=3)
    p.add_argument("--iters", type=at_least(1), default=10)
    p.add_argument("--out", type=Path, default=OUT)
    p.set_defaults(func=gpu_sweep)
    p = sub.add_parser("ablation", help="the token-mixer ablation on the best WaveMix configuration at 40k-5min")
    p.add_argument("--data-dir", required=True, help="CIFAR-10 (torchvision root, or the image folder/zip)")
    p.add_argument("--config", help="the WaveMix contender key (default: the best mean val top-1 at 40k-5min)")
    p.add_argument("--seeds", type=at_least(0), nargs="+", default=[1, 2, 3])
    add_lane_options(p, records="OUT/records")
    p.add_argument("--runs", type=Path, default=RUNS)
    p.add_argument("--out", type=Path, default=OUT)
    p.set_defaults(func=ablation)
    for name, func, helptext in (
        ("tune", tune, "the tuning grid: every setting for every selected 40k contender, seed 0"),
        ("run", run, "a time-budget grid: 3 seeds of every selected contender at its tuned setting"),
        ("summarize", summarize, "tables and plots of a grid's finished runs"),
        ("compare", compare, "a grid's contenders beside their rows in another grid (--against)"),
        ("summarize-tuning", summarize_tuning, "the tuning table of the finished tuning runs"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name in ("run", "summarize", "compare"):
            p.add_argument("--grid", choices=list(C.TIME_BUDGETS), required=True)
        if name == "compare":
            p.add_argument("--against", choices=list(C.TIME_BUDGETS), required=True)
        if name in ("tune", "run"):
            p.add_argument("--data-dir", required=True, help="CIFAR-10 (torchvision root, or the image folder/zip)")
            p.add_argument("--only", nargs="+", help="these contender keys only")
            add_lane_options(p, records="OUT/records")
        if name == "run":
            p.add_argument("--seeds", type=at_least(0), nargs="+", default=[1, 2, 3])
            p.add_argument("--keep-best", type=int, metavar="N",
                           help=f"train the published row and the N-1 contenders best at {C.TUNING_BUDGET} "
                                f"(mean val top-1 in OUT/{C.TUNING_BUDGET}.csv); the contest uses "
                                f"{C.LONG_GRID_KEEP}")  # fmt: skip
        if name == "tune":
            p.add_argument("--settings", nargs="+", help="these settings of the grid only (e.g. lr0.003-wu0.2)")
            p.add_argument("--edge", action="store_true",
                           help="the edge rule: contenders whose best lr is the grid's lowest or highest train one "
                                "step beyond it (both warm-ups)")  # fmt: skip
            screen = p.add_mutually_exclusive_group()
            screen.add_argument(
                "--prescreen", action="store_true", help=f"the pre-screen: every WaveMix cell at {C.PRESCREEN.key} only"
            )
            screen.add_argument("--prescreened", action="store_true",
                                help="the peers and the WaveMix cells the pre-screen chose: the published one and "
                                     "each stem's best upsampler (OUT/tuning-40k.csv)")  # fmt: skip
        p.add_argument("--runs", type=Path, default=RUNS)
        p.add_argument("--out", type=Path, default=OUT)
        p.set_defaults(func=func)
    return ap.run_command(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
