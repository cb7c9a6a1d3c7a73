"""The summary CSV: one row per run, written by ``wavemixer runs --csv`` and read back by ``--merge``.

Merging keeps the runs of an earlier summary whose folders are not here (trained on another machine or in
another session): a run folder found here replaces the row of the same group and seed. Whether a row is the
same training as the runs beside it (model, epochs, steps, metric, goal) is checked when the runs are grouped
(:func:`wavemixer.runs.group_runs`). CSVs of the earlier scripts (``claims_grid.py``: a ``cell`` column;
``summarize_camvid.py``: ``best_val_miou``) are read too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from wavemixer.files import atomic_write_text
from wavemixer.runs.record import Run

__all__ = ["merge_runs", "read_summary_csv", "write_summary_csv"]

_INTS = ("seed", "params", "epochs", "steps", "best_epoch")
_FLOATS = ("goal", "best_val", "test", "wall_min", "peak_mem_mb", "time_to_goal_min")
_LEGACY = {
    # claims_grid.py: the group was the grid's cell; classification only
    "cell": dict(rename={"cell": "group"}, metric="top1"),
    # summarize_camvid.py: the group was called model; segmentation only
    "best_val_miou": dict(
        rename={"model": "group", "best_val_miou": "best_val", "test_miou": "test",
                "test_pixel_acc": "test_pixel_acc", "peak_rss_mb": "peak_mem_mb"},
        metric="miou",
    ),
}  # fmt: skip


def write_summary_csv(path: Path, runs: Iterable[Run]) -> None:
    """Every run as a row, sorted by group and seed (written atomically: a reader never sees half a file)."""
    rows = [r.row() for r in sorted(runs, key=lambda r: (r.group, r.seed))]
    fields = list(dict.fromkeys(k for r in rows for k in r))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def read_summary_csv(path: Path) -> list[Run]:
    """The runs of a summary CSV (this module's, or an earlier script's; see the module)."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"{path} {what}; give a CSV written by `wavemixer runs --csv`")
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            legacy = next((spec for column, spec in _LEGACY.items() if column in header), None)
            if legacy is None and not {"group", "seed", "metric"} <= set(header):
                raise ValueError(
                    f"{path} is not a summary CSV (no group, seed and metric columns): give one from --csv"
                )
            return [_run(raw, legacy, f"{path} line {i}") for i, raw in enumerate(reader, start=2)]
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text CSV (it is not UTF-8): give a CSV written by --csv") from None


def merge_runs(here: Sequence[Run], earlier: Sequence[Run]) -> list[Run]:
    """``here`` and the runs of ``earlier`` whose (group, seed) ``here`` does not have."""
    have = {(r.group, r.seed) for r in here}
    seen: dict[tuple[str, int], Run] = {}
    for run in earlier:
        key = (run.group, run.seed)
        if key in seen:
            raise ValueError(f"{seen[key].source} and {run.source} are both {run.group} seed {run.seed}")
        seen[key] = run
    return [*here, *(r for key, r in seen.items() if key not in have)]


def _run(raw: dict[str, str], legacy: dict[str, Any] | None, source: str) -> Run:
    if legacy is not None:
        raw = {legacy["rename"].get(k, k): v for k, v in raw.items()}
        raw.setdefault("metric", legacy["metric"])
    if not raw.get("group") or not raw.get("seed"):
        raise ValueError(f"{source}: no group or seed")
    values: dict[str, Any] = {}
    for kind, keys in ((int, _INTS), (float, _FLOATS)):
        for key in keys:
            try:
                values[key] = kind(raw[key]) if raw.get(key) else None
            except ValueError:
                raise ValueError(f"{source}: column {key} must be {'an integer' if kind is int else 'a number'}, "
                                 f"got {raw[key]!r}") from None  # fmt: skip
    known = {"group", "model", "metric", *_INTS, *_FLOATS}
    scores = {k[5:]: float(v) for k, v in raw.items() if k.startswith("test_") and k not in known and v}
    extra = {k: _parse(v) for k, v in raw.items() if k not in known and not k.startswith("test_")}
    return Run(
        group=raw["group"], model=raw.get("model") or None, metric=raw["metric"], scores=scores, extra=extra,
        source=source, **values,
    )  # fmt: skip


def _parse(text: str | None) -> Any:
    """A joined column's value: a number where it is one, else the text (``None`` when empty)."""
    if text in (None, ""):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
