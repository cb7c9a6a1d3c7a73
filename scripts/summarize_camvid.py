"""Summarise the CamVid comparison: WaveMix against the U-Net and torchvision's LRASPP/DeepLabV3 baselines.

Reads ``<runs>/<model>-s<seed>/results.json`` (written by ``wavemixer train --task segmentation`` or by
``scripts/camvid_cnn_baseline.py``) and, where present, ``<runs>/<model>-s<seed>.maxrss`` (peak resident set
in KiB, from ``/usr/bin/time -f %M``); prints a markdown table of mean ± std over seeds and writes a CSV.

  python scripts/summarize_camvid.py runs/camvid3 --csv docs/bench/camvid-3seeds.csv
  python scripts/summarize_camvid.py runs/camvid3 --merge docs/bench/camvid-3seeds.csv \
      --csv docs/bench/camvid-3seeds.csv

``--merge`` adds the runs of an earlier CSV (runs trained on another machine or in another session, whose folders
are not here); a run folder present here replaces the CSV row of the same model and seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path


def collect(root: Path) -> list[dict]:
    rows = []
    for path in sorted(root.glob("*-s*/results.json")):
        res = json.loads(path.read_text())
        name, seed = path.parent.name.rsplit("-s", 1)
        val = res["best_val"]["miou"] if isinstance(res.get("best_val"), dict) else res["best_val_miou"]
        rss = path.parent.with_suffix(".maxrss")
        rows.append(
            dict(
                model=name, seed=int(seed), params=res["params"], epochs=res["epochs"], best_epoch=res["best_epoch"],
                best_val_miou=round(val, 2), test_miou=round(res["test"]["miou"], 2),
                test_pixel_acc=round(res["test"]["pixel_acc"], 2), wall_min=round(res["wall_time_s"] / 60, 1),
                peak_rss_mb=round(int(rss.read_text().split()[-1]) / 1024) if rss.is_file() else None,
            )
        )  # fmt: skip
    return rows


_NUMBERS = {"seed": int, "params": int, "epochs": int, "best_epoch": int, "peak_rss_mb": int}


def read_rows(path: Path) -> list[dict]:
    """Rows of a CSV written by ``--csv``, with their numbers parsed."""
    rows = []
    for raw in csv.DictReader(path.open()):
        row: dict = {k: (_NUMBERS.get(k, float)(v) if v else None) for k, v in raw.items() if k != "model"}
        rows.append({"model": raw["model"], **row})
    return rows


def merge(earlier: list[dict], here: list[dict]) -> list[dict]:
    """Earlier rows, except those of a (model, seed) that ``here`` has, then ``here``; sorted."""
    have = {(r["model"], r["seed"]) for r in here}
    rows = [r for r in earlier if (r["model"], r["seed"]) not in have] + here
    return sorted(rows, key=lambda r: (r["model"], r["seed"]))


def _pm(values: list[float], digits: int = 2) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path)
    ap.add_argument("--csv", type=Path, help="also write every run as a CSV row here")
    ap.add_argument("--merge", type=Path, help="a CSV of earlier runs (from --csv) to include")
    args = ap.parse_args()
    if args.merge and not args.merge.is_file():
        raise SystemExit(f"--merge: {args.merge} does not exist")
    rows = merge(read_rows(args.merge) if args.merge else [], collect(args.runs))
    if not rows:
        raise SystemExit(f"no finished runs under {args.runs} (looked for <model>-s<seed>/results.json)")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    header = "| model | params | seeds | test mIoU % | best val mIoU % | test pixel acc % | minutes per run"
    print(header + " | peak RSS (MB) |")
    print("|---|---:|---:|---|---|---|---|---|")
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for name, runs in sorted(by_model.items(), key=lambda kv: -statistics.mean(r["test_miou"] for r in kv[1])):
        rss = [r["peak_rss_mb"] for r in runs if r["peak_rss_mb"] is not None]
        print(
            f"| {name} | {runs[0]['params']:,} | {len(runs)} | {_pm([r['test_miou'] for r in runs])} "
            f"| {_pm([r['best_val_miou'] for r in runs])} | {_pm([r['test_pixel_acc'] for r in runs])} "
            f"| {_pm([r['wall_min'] for r in runs], 1)} | {_pm(rss, 0)} |"
        )


if __name__ == "__main__":
    main()
