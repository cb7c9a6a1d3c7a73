"""``wavemixer runs``: finished training runs as a table, mean ± sample std over seeds.

PATH is a run folder, or a folder holding run folders at any depth (a grid). Runs are grouped by folder
name less its ``-s<seed>`` suffix (``runs/grid/resnet-s0``, ``resnet-s1`` -> ``resnet``) or, with
``--by config``, by the recorded training options less the seed. The score is the task's own metric:
top-1 (classification), mIoU (segmentation), PSNR (super-resolution). Examples::

    wavemixer runs runs/repro                                    # the table of every group
    wavemixer runs runs/repro --goal 99 --per-run --curves       # + minutes to val >= 99 %, each run, each epoch
    wavemixer runs runs/camvid3 --merge docs/bench/camvid-3seeds.csv --csv docs/bench/camvid-3seeds.csv

``--merge CSV`` adds the runs of an earlier ``--csv`` (trained elsewhere, folders not here); a run folder here
replaces the row of its group and seed, and a row that is not the same training as the rest of its group
(another model, epochs, steps, metric or goal) is refused. ``--csv``, ``--md`` and ``--plot`` refuse an
existing file unless ``--force``; ``--csv`` may name the ``--merge`` CSV itself, which it extends.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wavemixer.runs import Group


def add_parser(sub: argparse._SubParsersAction) -> None:
    from wavemixer.runs.groups import GROUP_BY

    p = sub.add_parser(
        "runs", help="tables of finished training runs: mean ± std over seeds, CSV, markdown, plot",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="run folders or folders of them")
    p.add_argument("--merge", type=Path, metavar="CSV", help="an earlier --csv: its runs not found here join")
    p.add_argument(
        "--by", choices=GROUP_BY, default="folder",
        help="group by folder name less -s<seed> (default) or by the recorded options less the seed",
    )  # fmt: skip
    p.add_argument("--only", nargs="+", metavar="GROUP", help="only these groups")
    p.add_argument("--metric", help="score by this metric of results.json (default: the task's)")
    p.add_argument("--goal", type=_finite, help="add minutes until the val score first reached GOAL")
    p.add_argument("--label", default="run", help="header of the group column (default: run)")
    p.add_argument("--csv", type=Path, help="write every run as a row here (what --merge reads)")
    p.add_argument("--md", type=Path, help="write the markdown table here")
    p.add_argument("--plot", type=Path, help="write the Pareto-style figure here (PNG; needs matplotlib)")
    p.add_argument("--title", default="", help="the figure's title")
    p.add_argument("--force", action="store_true", help="overwrite existing --csv/--md/--plot files")
    p.add_argument("--per-run", action="store_true", help="also list every run")
    p.add_argument("--curves", action="store_true", help="also the val score and minutes after each epoch")
    p.add_argument("--json", action="store_true", help="print runs and group statistics as JSON instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wavemixer.files import atomic_write_text, check_can_create, refuse_overwrite, refuse_overwriting_inputs
    from wavemixer.runs import (
        collect_runs,
        curves_markdown,
        group_runs,
        markdown_table,
        pareto_plot,
        run_lines,
        standard_columns,
        write_summary_csv,
    )
    from wavemixer.train.checkpoint import run_files

    if not args.paths and args.merge is None:
        raise ValueError("give a PATH (a run folder, or a folder of them) or --merge CSV")
    refuse_overwrite(_outputs(args), force=args.force)  # before any work
    for option, path in (("--csv", args.csv), ("--md", args.md), ("--plot", args.plot)):
        if path is not None:
            check_can_create(path, option)
    runs = collect_runs(args.paths, by=args.by, metric=args.metric, goal=args.goal, merge=args.merge)
    if args.metric and runs and all(r.test is None and r.best_val is None for r in runs):
        raise ValueError(f"--metric {args.metric}: {_metric_hint(runs)}")
    refuse_overwriting_inputs(
        [("--csv", args.csv), ("--md", args.md), ("--plot", args.plot)],
        [f for r in runs if r.folder is not None for f in run_files(r.folder)],
    )
    if args.only:
        unknown = sorted(set(args.only) - {r.group for r in runs})
        if unknown:
            raise ValueError(f"--only: no runs of {unknown}; the groups are {sorted({r.group for r in runs})}")
        runs = [r for r in runs if r.group in args.only]
    if not runs:
        where = ", ".join(map(str, args.paths)) or str(args.merge)
        raise ValueError(f"no finished runs in {where} (a run folder has results.json)")
    groups = group_runs(runs, goal=args.goal)
    table = markdown_table(groups, standard_columns(groups, label=args.label, goal=args.goal))
    if args.csv:
        write_summary_csv(args.csv, runs)
    if args.md:
        atomic_write_text(args.md, table + "\n")
    if args.plot:
        pareto_plot(groups, args.plot, title=args.title)
    if args.json:
        print(json.dumps(dict(runs=[r.row() for r in runs], groups=[_stats(g) for g in groups]), indent=1))
        return 0
    print(table)
    if args.per_run:
        print("\n" + "\n".join(run_lines(runs)))
    if args.curves:
        print("\n".join(curves_markdown(runs)))
    return 0


def _metric_hint(runs: list[Any]) -> str:
    """What a misspelt ``--metric`` could have been: the test metrics of the first run's results.json."""
    for run in runs:
        try:
            test = json.loads((run.folder / "results.json").read_text()).get("test") or {}
        except (OSError, ValueError, TypeError):
            continue
        return f"no run has this score; {run.folder}/results.json has {sorted(test)}"
    return "no run has this score"


def _outputs(args: argparse.Namespace) -> list[Path]:
    """The output files that must not overwrite what is there: a ``--csv`` that is the ``--merge`` CSV is
    extended with its own rows (the documented way to add runs to a summary), so it is not among them."""
    merged = args.merge is not None and args.csv is not None and args.csv.resolve() == args.merge.resolve()
    return [p for p in (None if merged else args.csv, args.md, args.plot) if p is not None]


def _stats(group: Group) -> dict[str, Any]:
    columns = ("test", "best_val", "wall_min", "peak_mem_mb", "time_to_goal_min")
    out = dict(group=group.name, seeds=[r.seed for r in group.runs], model=group.first("model"))
    out |= dict(params=group.first("params"), epochs=group.first("epochs"), metric=group.runs[0].metric)
    for column in columns:
        stat = group.stat(column)
        out[column] = None if stat is None else dict(mean=stat.mean, std=stat.std, n=stat.n)
    return out


def _finite(text: str) -> float:
    """A ``--goal``: a finite number (``nan`` compared false with every score and read as "not comparable")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value
