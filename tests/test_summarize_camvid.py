"""scripts/summarize_camvid.py: runs found here are merged with an earlier CSV of runs, run folders winning."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "summarize_camvid.py"
HEADER = "model,seed,params,epochs,best_epoch,best_val_miou,test_miou,test_pixel_acc,wall_min,peak_rss_mb\n"


def _summarize(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_merge_keeps_earlier_runs_and_replaces_rerun_seeds(tmp_path: Path) -> None:
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(
        HEADER + "unet,0,926299,60,52,50.56,42.27,83.48,22.0,1119\nunet,1,926299,60,60,52.74,43.02,82.86,20.8,\n"
    )
    run = tmp_path / "runs" / "unet-s1"
    run.mkdir(parents=True)
    results = dict(params=926299, epochs=60, best_epoch=58, best_val={"miou": 51.004}, wall_time_s=1260.0)
    results["test"] = {"miou": 44.034, "pixel_acc": 84.0}
    (run / "results.json").write_text(json.dumps(results))
    (tmp_path / "runs" / "unet-s1.maxrss").write_text("1153433\n")  # KiB, from /usr/bin/time -f %M

    out = tmp_path / "all.csv"
    done = _summarize(str(tmp_path / "runs"), "--merge", str(earlier), "--csv", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [(r["model"], r["seed"], r["test_miou"], r["peak_rss_mb"]) for r in rows] == [
        ("unet", "0", "42.27", "1119"),
        ("unet", "1", "44.03", "1126"),
    ]
    assert "| unet | 926,299 | 2 | 43.15 ± 1.24 |" in done.stdout  # mean ± sample std of 42.27 and 44.03


def test_missing_merge_file_and_empty_runs_are_one_line_errors(tmp_path: Path) -> None:
    missing = _summarize(str(tmp_path), "--merge", str(tmp_path / "nope.csv"))
    assert missing.returncode != 0 and missing.stderr.strip().endswith("nope.csv does not exist")
    empty = _summarize(str(tmp_path))
    assert empty.returncode != 0 and "no finished runs under" in empty.stderr
