"""Accuracy at matched parameters and equal training: the claims grids (:mod:`wavemixer.bench.claims`).

The grid resumes where it stopped: a cell with ``results.json`` is done, one with a checkpoint is continued
with ``--resume``, the rest start. ``--lanes N`` trains N cells at a time, each on one thread under ``nice``.

  python scripts/claims_grid.py run --grid cifar10-40k \
      --data-dir ../shared/data/CIFAR10/cifar10_jpeg_q75_imagefolder.zip
  python scripts/claims_grid.py run --grid cifar10-40k --only wavemix-dwt-haar resnet --seeds 0 --lanes 1
  python scripts/claims_grid.py summarize --grid cifar10-40k           # CSV + markdown + plot of what finished
  python scripts/claims_grid.py summarize --grid cifar10-40k --memory RESULTS/peers.csv   # + train-step memory
  python scripts/claims_grid.py summarize --grid cifar10-40k-equal-time --merge docs/bench/claims/cifar10-40k-2ep.csv

A learning-rate tuning trains seed 0 of each cell at every rate of ``claims.TUNING_LRS`` (``run --seeds 0
--runs <tune>/lr<LR> --records <records>/lr<LR> -- --lr LR``), then ``edge --runs <tune> --records <records>``
applies the contest's edge rule (one rate x3 beyond a best that lies at the lowest or highest rate tried),
``tuning --records <records> --out DIR`` writes its table (tuning.csv/.md: val only), and ``run --tuned
<records>`` trains each cell at its best rate.

``summarize --merge CSV`` takes the runs of cells (and seeds) not trained here from an earlier summary CSV,
refusing any row that is not the run this grid makes (model, epochs, goal); ``--only`` limits a summary to
some cells. ``--memory`` takes the ``peers.csv`` of
``wavemixer bench --suite peers --scales 40k --mode train -b 128 --precision bf16``: each model's allocator
peak for one training step in the recipe's setting. Runs go to ``--runs`` (default ``runs/claims``),
``<grid>/<cell>-s<seed>/`` per cell; ``summarize`` writes ``<grid>.csv``, ``<grid>.md`` and
``<grid>-pareto.png`` into ``--out`` (default: the runs folder). The same tables of any folder of runs:
``wavemixer runs``. ``run --records DIR`` keeps each finished run's record (results, config, curve and log,
no weights; :mod:`wavemixer.runs.records`) under DIR and restores the run folders that are gone from it, so a
grid whose records are committed continues on another machine; ``--tuned`` and ``summarize --runs`` read such
a DIR as they read the runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from wavemixer.bench import claims
from wavemixer.bench.tuning import write_csv
from wavemixer.cli import OneLineParser
from wavemixer.files import atomic_write_text
from wavemixer.runs import Job, add_lane_options, at_least, record_path, train_in_lanes


def run(args: argparse.Namespace) -> int:
    grid = claims.GRIDS[args.grid]
    root = args.runs / args.grid
    lrs = claims.tuned_lrs(args.tuned, args.grid) if args.tuned else None
    if lrs is not None and not lrs:
        raise ValueError(f"--tuned {args.tuned}: no cell of {args.grid} has finished runs at every rate there")
    only = args.only
    if args.overlapping:
        if only:
            raise ValueError("--overlapping and --only choose the cells two ways: give one of them")
        if min(args.seeds) <= 3:
            raise ValueError(f"--overlapping trains seeds beyond 1-3, which decide the cells; got --seeds "
                             f"{' '.join(map(str, args.seeds))} (e.g. --seeds 4 5)")  # fmt: skip
        only = claims.overlapping_cells(args.records / args.grid if args.records else root)  # records: every run
        print(f"{args.grid}: cells whose test mean ± std overlaps another's after 3 seeds: {only or 'none'}")
        if not only:
            return summarize(args)
    jobs = claims.jobs(grid, root, args.seeds, only, lrs=lrs, epochs=args.epochs, data_dir=args.data_dir,
                       subset=args.subset, extra=args.extra)  # fmt: skip
    jobs = [Job(j.args, j.out, record_path(args.records, args.runs, j.out)) for j in jobs]
    failed = train_in_lanes(jobs, lanes=args.lanes, nice=args.nice, poll_s=0.2)
    if failed:
        names = [f.name for f in failed]
        print(f"{len(failed)} cell(s) failed: {names}; see their .log files in {root}", file=sys.stderr)
        return 1
    return summarize(args)


def edge(args: argparse.Namespace) -> int:
    """The edge rule after a tuning over :data:`~wavemixer.bench.claims.TUNING_LRS`: each cell whose best rate is
    the lowest or highest it tried trains (seed 0) one step beyond, into ``--runs``/lr<LR>, until none is left."""
    if args.records is None:
        raise ValueError("edge: give --records, the tuning's records (lr<LR>/<grid>/<cell>-s0): the rule reads them")
    grid, last = claims.GRIDS[args.grid], None
    while plan := claims.edge_lrs(args.records, args.grid):
        if plan == last:
            raise ValueError(f"edge: the runs of {plan} left no record in {args.records}; see their .log files")
        print(f"{args.grid}: edge rule, next rates {plan}")
        jobs = []
        for lr in sorted(set(plan.values())):
            cells = [cell for cell, rate in plan.items() if rate == lr]
            root = args.runs / f"lr{lr:g}" / args.grid
            jobs += claims.jobs(grid, root, [0], cells, epochs=args.epochs, data_dir=args.data_dir,
                                extra=[*args.extra, "--lr", f"{lr:g}"])  # fmt: skip
        jobs = [Job(j.args, j.out, record_path(args.records, args.runs, j.out)) for j in jobs]
        if train_in_lanes(jobs, lanes=args.lanes, nice=args.nice, poll_s=0.2):
            print(f"edge: a run failed; see the .log files under {args.runs}", file=sys.stderr)
            return 1
        last = plan
    print(f"{args.grid}: edge rule done; tuned rates {claims.tuned_lrs(args.records, args.grid)}")
    return 0


def tuning(args: argparse.Namespace) -> int:
    """tuning.csv/.md under --out: a learning-rate tuning's val metric per cell and rate, the chosen in bold."""
    if args.records is None or not args.records.is_dir():
        raise ValueError(f"tuning: --records {args.records} is not a folder: give the tuning's records (lr<LR>/...)")
    rows, table = claims.tuning_table(args.records, args.grid)
    if not rows:
        raise ValueError(f"tuning: no seed-0 tuning runs of {args.grid} under {args.records}")
    out = args.out or args.records
    write_csv(out / "tuning.csv", rows)
    text = [
        f"Learning-rate tuning of the {args.grid} grid: best val score % of the seed-0 run (20 epochs) at each rate; "
        "**bold**: the rate each model trains at (the best val; the contest's edge rule tried one step beyond a "
        "best at the lowest or highest rate). The tuning runs' test scores select nothing and are not shown. "
        f"Command: `python scripts/claims_grid.py tuning --grid {args.grid} --records DIR --out DIR`.",
        "",
        *table,
    ]
    atomic_write_text(out / "tuning.md", "\n".join(text) + "\n")
    print("\n".join(text))
    return 0


def summarize(args: argparse.Namespace) -> int:
    print(claims.summarize(args.grid, args.runs, args.out or args.runs, goal=args.goal, only=args.only,
                           merge=args.merge, memory=args.memory))  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("run", "edge", "tuning", "summarize"):
        p = sub.add_parser(name)
        p.add_argument("--grid", choices=sorted(claims.GRIDS), required=True)
        p.add_argument("--runs", type=Path, default=Path("runs/claims"))
        if name == "tuning":
            p.add_argument("--records", type=Path, metavar="DIR", help="the tuning's records (lr<LR>/<grid>/...)")
            p.add_argument("--out", type=Path, help="where tuning.csv/.md go (default: --records)")
        if name in ("run", "summarize"):
            p.add_argument("--out", type=Path, help="where summarize writes CSV/markdown/plot (default: --runs)")
            p.add_argument("--goal", type=float,
                           help="val top-1 %% of the time-to-accuracy column (default: the grid's)")  # fmt: skip
            p.add_argument("--memory", type=Path, help="peers.csv of `wavemixer bench --suite peers --mode train`")
            p.add_argument("--merge", type=Path,
                           help="summary CSV of earlier runs: adds this grid's cells/seeds not here")  # fmt: skip
            p.add_argument("--only", nargs="+", help=f"{name} only these cells of the grid")
        if name in ("run", "edge"):
            p.add_argument("--data-dir", help="the data set's --data-dir")
            p.add_argument("--epochs", type=at_least(1), help="override the grid's epoch budget (every cell alike)")
            add_lane_options(p)
        if name == "run":
            p.add_argument("--seeds", type=at_least(0), nargs="+", default=[0, 1, 2])
            p.add_argument("--subset", type=at_least(1), help="train on N images (quick checks only)")
            p.add_argument("--tuned", type=Path,
                           help="a learning-rate tuning (lr<LR>/<grid>/<cell>-s0): each cell at its best")  # fmt: skip
            p.add_argument("--overlapping", action="store_true",
                           help="only the cells whose test mean ± std overlaps another cell's after 3 seeds "
                                "(give the extra --seeds, e.g. 4 5)")  # fmt: skip
        if name in ("run", "edge"):
            p.add_argument("extra", nargs="*", help="further `wavemixer train` flags, after --")
    args = ap.parse_args(argv)
    try:
        return {"run": run, "edge": edge, "tuning": tuning, "summarize": summarize}[args.command](args)
    except (ValueError, OSError) as exc:
        print(f"claims_grid.py {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
