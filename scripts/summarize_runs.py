"""Summarise training runs: mean ± std of test accuracy over seeds, wall-clock, time-to-accuracy.

python scripts/summarize_runs.py runs/repro              # markdown table
python scripts/summarize_runs.py runs/repro --json
python scripts/summarize_runs.py runs/repro --curves   # also val top-1 after each epoch, cumulative minutes
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
from pathlib import Path


def _time_to(rows: list[dict], goal: float | None) -> float | None:
    if goal is None:
        return None
    for r in rows:
        if float(r["val_top1"]) >= goal:
            return float(r["time_s"])
    return None


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def collect(root: Path) -> dict[str, list[dict]]:
    from wavemixer.registry import get_spec

    groups: dict[str, list[dict]] = {}
    for res_path in sorted(root.glob("*/results.json")):
        res = json.loads(res_path.read_text())
        rows = list(csv.DictReader((res_path.parent / "summary.csv").open()))
        spec = get_spec(res["model"])
        # a registry goal applies only on its own data set (Lite-64/6's 90 % is a CIFAR-10 number)
        goal = spec.published if _norm(spec.dataset) == _norm(res["dataset"]) else None
        res["run"] = res_path.parent.name
        res["val_time_to_goal_s"] = _time_to(rows, goal)
        res["goal"] = goal
        groups.setdefault(re.sub(r"-s\d+$", "", res_path.parent.name), []).append(res)
    return groups


def _ms(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} ({len(values)} seeds)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--curves", action="store_true", help="time-to-accuracy table of every run")
    args = ap.parse_args()
    groups = collect(args.root)
    if args.json:
        print(json.dumps(groups, indent=2))
        return
    print("| runs | model | params | epochs | goal | test top-1 % | best val top-1 % | wall-clock per run | seeds |")
    print("|---|---|---:|---:|---:|---|---|---|---|")
    for name, runs in groups.items():
        test = [r["test"]["top1"] for r in runs]
        val = [r["best_val"]["top1"] for r in runs]
        wall = [r["wall_time_s"] / 60 for r in runs]
        seeds = ", ".join(str(r["seed"]) for r in runs)
        goal = "–" if runs[0]["goal"] is None else f"≥ {runs[0]['goal']}"
        print(
            f"| {name} | `{runs[0]['model']}` | {runs[0]['params']:,} | {runs[0]['epochs']} | "
            f"{goal} | {_ms(test)} | {_ms(val)} | "
            f"{statistics.mean(wall):.1f} min | {seeds} |"
        )
    print()
    for runs in groups.values():
        for r in runs:
            ttg = r["val_time_to_goal_s"]
            reached = "not reached" if ttg is None else f"after {ttg / 60:.1f} min"
            goal = "" if r["goal"] is None else f"; val ≥ goal {reached}"
            print(
                f"- {r['run']}: test top-1 {r['test']['top1']:.2f} %, best val {r['best_val']['top1']:.2f} % at "
                f"epoch {r['best_epoch']}/{r['epochs']}, {r['wall_time_s'] / 60:.1f} min{goal}"
            )
    if args.curves:
        for runs in groups.values():
            for r in runs:
                rows = list(csv.DictReader((args.root / r["run"] / "summary.csv").open()))
                print(f"\n| {r['run']} (epoch) | " + " | ".join(row["epoch"] for row in rows) + " |")
                print("|---|" + "---|" * len(rows))
                print("| val top-1 % | " + " | ".join(f"{float(row['val_top1']):.1f}" for row in rows) + " |")
                print("| minutes | " + " | ".join(f"{float(row['time_s']) / 60:.1f}" for row in rows) + " |")


if __name__ == "__main__":
    main()
