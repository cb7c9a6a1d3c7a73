"""Finished training runs read into tables: mean ± std over seeds, CSV, markdown and a Pareto-style plot.

Entry point: ``wavemixer runs`` (:mod:`wavemixer.cli.runs`). The pieces: :mod:`~wavemixer.runs.record` (one
run, from its folder), :mod:`~wavemixer.runs.groups` (the seeds of one training, checked to be one),
:mod:`~wavemixer.runs.summary_csv` (the per-run CSV and merging an earlier one), :mod:`~wavemixer.runs.tables`
(markdown), :mod:`~wavemixer.runs.plot` (the figure), :mod:`~wavemixer.runs.lanes` (training a grid of runs
a few at a time, resumably) and :mod:`~wavemixer.runs.records` (a finished run's small files, kept so that a
grid continues on another machine).
"""

from .groups import GROUP_BY, Group, Stat, check_same_training, collect_runs, group_runs, read_runs
from .lanes import Job, add_lane_options, at_least, record_path, train_in_lanes
from .plot import DEFAULT_PANELS, pareto_plot, score_curves
from .record import METRICS, TASK_METRICS, Run, find_run_folders, read_run, seed_suffix
from .records import restore_record, save_record
from .summary_csv import merge_runs, read_summary_csv, write_summary_csv
from .tables import Column, curves_markdown, markdown_table, mean_std, run_lines, standard_columns

__all__ = [
    "DEFAULT_PANELS",
    "GROUP_BY",
    "METRICS",
    "TASK_METRICS",
    "Column",
    "Group",
    "Job",
    "Run",
    "Stat",
    "add_lane_options",
    "at_least",
    "check_same_training",
    "collect_runs",
    "curves_markdown",
    "find_run_folders",
    "group_runs",
    "markdown_table",
    "mean_std",
    "merge_runs",
    "pareto_plot",
    "read_run",
    "read_runs",
    "read_summary_csv",
    "record_path",
    "restore_record",
    "run_lines",
    "save_record",
    "score_curves",
    "seed_suffix",
    "standard_columns",
    "train_in_lanes",
    "write_summary_csv",
]
