"""Sample efficiency's command line: tuning and seeds at 50 and 500 CIFAR-10 images per class, and the tables.

Definitions live in :mod:`wavemixer.bench.small_data`; the contenders are the fair contest's (its tuning table
names the 40k contenders it tuned). Each step is resumable and writes committed result files under ``--out``
(default ``docs/bench/small-data``):

  python scripts/small_data.py tune --regime pc500 --data-dir ZIP --wavemix-500k wavemix-s2-convtranspose
  python scripts/small_data.py tune --regime pc500 --edge --data-dir ZIP --wavemix-500k wavemix-s2-convtranspose
  python scripts/small_data.py run --regime pc500 --data-dir ZIP --wavemix-500k wavemix-s2-convtranspose
  python scripts/small_data.py run --regime pc500 --seeds 4 5 --overlapping --data-dir ZIP \\
      --wavemix-500k wavemix-s2-convtranspose
  python scripts/small_data.py summarize --full 40k=docs/bench/contest/40k-20min.csv \\
      40k=docs/bench/contest/40k-5min.csv 500k=docs/bench/contest/500k-20min.csv

``tune`` trains every entry at every lr x warm-up setting (seed 0, val only) and writes
``tuning-<regime>.csv/.md``, ``tune --edge`` the contest's edge runs; ``run`` trains seeds 1-3 of every entry
at its best setting and writes ``<regime>.csv/.md``, ``run --seeds 4 5 --overlapping`` seeds 4-5 of the entries
whose test mean ± std overlaps another's; ``summarize`` writes those of every regime with finished runs and
``sample-efficiency.md/.png`` (test top-1 against training images per class, with the contest's full-data
figures). ZIP is ``../shared/data/CIFAR10/cifar10_jpeg_q75_imagefolder.zip`` here. Runs go to ``--runs``
(default ``runs/small-data``). Each finished run's record (results, config, curve and log; no weights) is kept
under ``--records`` (default ``OUT/records``), and ``tune`` and ``run`` restore a run folder that is gone from
it instead of training it again, so a grid continues from committed records on another machine
(:mod:`wavemixer.runs.records`); ``summarize --runs OUT/records`` reads the records alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from wavemixer.bench import contest as C
from wavemixer.bench import small_data as S
from wavemixer.bench import tuning as T
from wavemixer.cli import OneLineParser
from wavemixer.files import atomic_write_text
from wavemixer.runs import (
    Group,
    Job,
    add_lane_options,
    at_least,
    markdown_table,
    mean_std,
    record_path,
    train_in_lanes,
    write_summary_csv,
)
from wavemixer.runs.tables import Column

OUT = Path("docs/bench/small-data")
RUNS = Path("runs/small-data")
CONTEST_TUNING = Path("docs/bench/contest/tuning-40k.csv")


def _entries(args: argparse.Namespace) -> list[S.Entry]:
    if not args.contest_tuning.is_file():
        what = "is a folder" if args.contest_tuning.is_dir() else "does not exist"
        raise SystemExit(f"--contest-tuning {args.contest_tuning} {what}: the contest's tuning CSV names the entries")
    tuned = sorted(T.read_tuning(args.contest_tuning, complete=True))
    if not tuned:
        raise SystemExit(
            f"--contest-tuning {args.contest_tuning} holds no fully tuned contender (a row at every setting of "
            "the contest's tuning grid); the small-data grids take their entries from it"
        )
    try:
        every = S.entries(tuned, args.wavemix_500k)
    except ValueError as exc:
        raise SystemExit(f"--wavemix-500k {args.wavemix_500k}: {exc}" if args.wavemix_500k else str(exc)) from None
    if not args.only:
        return every
    unknown = sorted(set(args.only) - {e.key for e in every})
    if unknown:
        raise SystemExit(f"--only: unknown entries {unknown}; the entries are {[e.key for e in every]}")
    return [e for e in every if e.key in args.only]


def _train(jobs: list[Job], args: argparse.Namespace) -> int:
    """Train the jobs (:func:`wavemixer.runs.train_in_lanes`), each run's record kept under ``--records``
    (default ``OUT/records``)."""
    records = args.records or args.out / "records"
    jobs = [Job(j.args, j.out, record_path(records, args.runs, j.out)) for j in jobs]
    failed = train_in_lanes(jobs, lanes=args.lanes, nice=args.nice)
    if failed:
        print(f"{len(failed)} run(s) failed: {[str(f) for f in failed]}; see their .log files", file=sys.stderr)
    return 1 if failed else 0


def tune(args: argparse.Namespace) -> int:
    """Every entry at every setting of the tuning grid on the regime's subset, seed 0; with ``--edge``, the
    contest's edge rule on this regime's own tuning, repeated while a best rate is at the boundary."""
    regime = S.REGIMES[args.regime]
    root = args.runs / regime.name / "tune"
    entries = _entries(args)

    def jobs_for(plan: dict[str, list[T.Setting]]) -> list[Job]:
        folders = [(e, s, root / e.key / f"{s.key}-s0") for e in entries for s in plan.get(e.key, [])]
        return [
            Job(S.train_command(e, s, regime, seed=0, output=out, data_dir=args.data_dir, tuning=True), out)
            for e, s, out in folders
            if not T.tried(out)
        ]

    def train_round(plan: dict[str, list[T.Setting]]) -> int | None:
        jobs = jobs_for(plan)
        failed = _train(jobs, args) if jobs else 0
        summarize_tuning(args)
        return failed if jobs else None

    if not args.edge:
        return train_round({e.key: list(T.TUNING_GRID) for e in entries}) or 0
    try:  # the contest's edge rule on this regime's own tuning
        return T.edge_rounds(args.out / f"tuning-{regime.name}.csv", train_round)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


def summarize_tuning(args: argparse.Namespace) -> int:
    """tuning-<regime>.csv (every finished tuning run) and .md (entries x settings, the chosen in bold)."""
    regime = S.REGIMES[args.regime]
    rows = T.tuning_rows(args.runs / regime.name / "tune")
    if not rows:
        print(f"no finished tuning runs under {args.runs / regime.name / 'tune'}", file=sys.stderr)
        return 1
    path = args.out / f"tuning-{regime.name}.csv"
    rows = T.merge_tuning(path, rows)  # runs trained elsewhere stay
    T.write_csv(path, rows)
    best = T.read_tuning(path, complete=True)

    lines = [
        f"Tuning on {regime.per_class} CIFAR-10 images per class ({regime.train_images:,} training images, batch "
        f"{regime.batch_size}, early stopping after {regime.patience} epochs without a better val top-1, at most "
        f"{regime.max_epochs} epochs), seed 0: best val top-1 % on the val split carved from the remaining "
        f"training images (epochs trained: tuning-{regime.name}.csv). **Bold**: the setting each entry trains with. "
        f"†: the run trained all {regime.max_epochs} epochs, stopped by the cap and not by early stopping. Command: "
        f"`python scripts/small_data.py tune --regime {regime.name}{_entry_flags(r['key'] for r in rows)} "
        "--data-dir ZIP` (then `tune --edge` with the same options).",
        "",
        *T.tuning_table(rows, best, max_epochs=regime.max_epochs),
    ]
    atomic_write_text(args.out / f"tuning-{regime.name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def run(args: argparse.Namespace) -> int:
    """Seeds 1-3 of every entry at its best setting on the regime's subset; with ``--overlapping``, the given
    seeds (4 5) of the entries whose test mean ± std over seeds 1-3 overlaps another entry's."""
    regime = S.REGIMES[args.regime]
    tuning = args.out / f"tuning-{regime.name}.csv"
    if not tuning.is_file():
        raise SystemExit(f"{tuning} does not exist: run `python scripts/small_data.py tune` first")
    best = T.read_tuning(tuning, complete=True)
    entries = _entries(args)
    if args.overlapping:
        if args.only:
            raise SystemExit("--overlapping and --only choose the entries two ways: give one of them")
        if min(args.seeds) <= 3:
            raise SystemExit(f"--overlapping trains seeds beyond 1-3, which decide the entries; got --seeds "
                             f"{' '.join(map(str, args.seeds))} (e.g. --seeds 4 5)")  # fmt: skip
        records = (args.records or args.out / "records") / regime.name  # records: every finished run
        try:
            overlapping = S.overlapping_entries(records, [e.key for e in entries])
        except ValueError as exc:
            raise SystemExit(f"--overlapping: {exc}") from None
        print(f"{regime.name}: entries whose test mean ± std overlaps another's after 3 seeds: {overlapping or 'none'}")
        entries = [e for e in entries if e.key in overlapping]
    jobs = []
    for seed in args.seeds:
        for e in entries:
            if e.key not in best:
                raise SystemExit(f"{e.key} is not tuned at every setting in {tuning}: tune --only {e.key} first")
            out = args.runs / regime.name / f"{e.key}-s{seed}"
            jobs.append(Job(S.train_command(e, best[e.key], regime, seed=seed, output=out, data_dir=args.data_dir),
                            out))  # fmt: skip
    failed = _train(jobs, args)
    if not failed:
        _regime_summary(args, regime)  # the regime's own table; `summarize --full ...` writes the joint one
    return failed


def _setting(group: Group) -> str:
    config = group.runs[0].config
    return f"{config.get('lr'):g}, {config.get('warmup_epochs'):g}"


def _entry_flags(keys: Iterable[str]) -> str:
    """The entry option of the commands that trained these entries: ``--wavemix-500k KEY`` where one is at 0.5M
    (the 40k entries come from the contest's tuning)."""
    big = sorted({k.removeprefix("500k-") for k in keys if k.startswith("500k-")})
    return "".join(f" --wavemix-500k {k}" for k in big)


def _at_cap(group: Group, regime: S.Regime) -> str:
    """How many of the group's runs trained to the epoch cap rather than stopping on a val plateau."""
    capped = sum(1 for r in group.runs if (r.value("epochs") or 0) >= regime.max_epochs)
    return f"{capped} of {group.seeds}"


def _regime_summary(args: argparse.Namespace, regime: S.Regime) -> tuple[dict, dict[str, int]] | None:
    """<regime>.csv/.md of its finished runs; returns the test scores and parameter counts per entry."""
    try:
        groups, runs = S.seed_groups(args.runs / regime.name)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if not groups:
        return None
    waiting = S.waiting_entries(args.runs / regime.name, groups)
    if waiting:
        print(f"{regime.name}: no table until every tuned entry has seeds 1-3; waiting for {', '.join(waiting)}",
              file=sys.stderr)  # fmt: skip
        return None
    args.out.mkdir(parents=True, exist_ok=True)
    write_summary_csv(args.out / f"{regime.name}.csv", runs)
    columns = [
        Column("entry", lambda g: g.name),
        Column("params", lambda g: f"{g.first('params'):,}", "---:"),
        Column("lr, warm-up", _setting),
        Column("seeds", lambda g: str(g.seeds), "---:"),
        Column("test top-1 %", lambda g: mean_std(g, "test")),
        Column("val top-1 %", lambda g: mean_std(g, "best_val")),
        Column("epochs trained", lambda g: mean_std(g, "epochs", 0), "---:"),
        Column(f"runs stopped by the {regime.max_epochs}-epoch cap", lambda g: _at_cap(g, regime), "---:"),
        Column("wall per run (min)", lambda g: mean_std(g, "wall_min", 1), "---:"),
    ]
    text = [
        f"CIFAR-10 with {regime.per_class} training images per class (a class-balanced subset per seed), the "
        f"whole test set; each entry at its tuned setting (tuning-{regime.name}.md), seeds 1-3 and 4-5 where its "
        "test mean ± std over seeds 1-3 overlaps another entry's; early stopping on val. Commands: "
        f"`python scripts/small_data.py run --regime {regime.name}{_entry_flags(g.name for g in groups)} "
        "--data-dir ZIP`, then `run --seeds 4 5 --overlapping` with the same options.",
        "",
        markdown_table(groups, columns),
    ]
    atomic_write_text(args.out / f"{regime.name}.md", "\n".join(text) + "\n")
    return S.scores_of(groups), {g.name: int(g.first("params") or 0) for g in groups}


def summarize(args: argparse.Namespace) -> int:
    """<regime>.csv/.md of every regime with finished runs, and sample-efficiency.md/.png over the regimes."""
    by_regime, params = {}, {}
    for regime in S.REGIMES.values():
        found = _regime_summary(args, regime)
        if found is not None:
            by_regime[regime.name], more = found
            params |= more
    if not by_regime:
        print(f"no regime under {args.runs} has a table yet (it needs seeds 1-3 of every tuned entry)", file=sys.stderr)
        return 1
    full: S.FullData = {}
    given = []
    for spec in args.full or []:
        budget, _, path = spec.partition("=")
        if budget not in C.BUDGETS or not Path(path).is_file():
            raise SystemExit(f"--full {spec!r}: expected BUDGET=CSV with BUDGET in {sorted(C.BUDGETS)} and an "
                             "existing contest grid CSV")  # fmt: skip
        full.setdefault(budget, []).append((Path(path).stem, S.full_data_scores(Path(path))))
        given.append(f"{budget}: {path}")
    sources = ", ".join(given) or "none given"
    lines = [
        "CIFAR-10 test top-1 % (mean ± std over seeds 1-3, and 4-5 where rows overlap: the seeds column of "
        "pc50.md and pc500.md) against training images per class; the full-data column is the contest's,"
        " at equal time rather than to a plateau, from the first grid given for the budget that "
        f"trained the contender ({sources}). Command: `python scripts/small_data.py summarize --full ...`.",
        "",
        *S.sample_efficiency_table(by_regime, full, params),
    ]
    atomic_write_text(args.out / "sample-efficiency.md", "\n".join(lines) + "\n")
    S.sample_efficiency_plot(by_regime, full, args.out / "sample-efficiency.png")
    print("\n".join(lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name, func, helptext in (
        ("tune", tune, "every entry at every setting of the tuning grid on a regime's subset, seed 0"),
        ("run", run, "seeds 1-3 of every entry at its tuned setting"),
        ("summarize", summarize, "tables and the plot of the finished runs"),
        ("summarize-tuning", summarize_tuning, "the tuning table of a regime's finished tuning runs"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name != "summarize":
            p.add_argument("--regime", choices=list(S.REGIMES), required=True)
        if name in ("tune", "run"):
            p.add_argument("--data-dir", required=True, help="CIFAR-10 (torchvision root, or the image folder/zip)")
            p.add_argument("--contest-tuning", type=Path, default=CONTEST_TUNING,
                           help="the contest's tuning CSV: its fully tuned 40k contenders are the entries")  # fmt: skip
            p.add_argument("--wavemix-500k", help="the WaveMix configuration entered at 0.5M (a contest key)")
            p.add_argument("--only", nargs="+", help="these entries only (e.g. 40k-resnet)")
            add_lane_options(p, records="OUT/records")
        if name == "run":
            p.add_argument("--seeds", type=at_least(0), nargs="+", default=[1, 2, 3])
            p.add_argument("--overlapping", action="store_true",
                           help="only the entries whose test mean ± std over seeds 1-3 overlaps another entry's "
                                "(give --seeds 4 5): the rows 3 seeds cannot tell apart")  # fmt: skip
        if name == "tune":
            p.add_argument(
                "--edge",
                action="store_true",
                help="the contest's edge rule: one lr step beyond the grid where the best is at its edge",
            )
        if name == "run":
            p.set_defaults(full=None)
        if name == "summarize":
            full_help = (
                "BUDGET=CSV: a contest grid's summary CSV (full-data figures); of several for a budget, "
                "a contender's comes from the first that trained it"
            )
            p.add_argument("--full", nargs="+", help=full_help)
        p.add_argument("--runs", type=Path, default=RUNS)
        p.add_argument("--out", type=Path, default=OUT)
        p.set_defaults(func=func)
    return ap.run_command(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
