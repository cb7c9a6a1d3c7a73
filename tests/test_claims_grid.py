"""scripts/claims_grid.py end to end on its tiny digits grid: trains, resumes, summarises."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("timm")

REPO = Path(__file__).resolve().parents[1]
GRID = REPO / "scripts" / "claims_grid.py"


def _grid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(GRID), *args], capture_output=True, text=True, cwd=REPO, timeout=600, check=False
    )


def test_grid_trains_resumes_and_summarises(tmp_path: Path) -> None:
    common = ["--grid", "digits-smoke", "--runs", str(tmp_path)]
    first = _grid("run", *common, "--seeds", "0", "--lanes", "2", "--nice", "0")
    assert first.returncode == 0, first.stderr + first.stdout
    assert first.stdout.count("start ") == 2
    cells = tmp_path / "digits-smoke"
    assert (cells / "wavemix-dwt-haar-s0" / "results.json").is_file()
    rows = list(csv.DictReader((tmp_path / "digits-smoke.csv").open()))
    assert {r["cell"] for r in rows} == {"wavemix-dwt-haar", "convmixer"}
    peer = next(r for r in rows if r["cell"] == "convmixer")
    assert 2_900 < int(peer["params"]) < 4_300 and float(peer["peak_mem_mb"]) > 0  # solved to the 3,566 budget
    table = (tmp_path / "digits-smoke.md").read_text()
    assert "| convmixer |" in table and "| wavemix-dwt-haar | 3,566 | 1 |" in table
    assert (tmp_path / "digits-smoke-pareto.png").stat().st_size > 10_000

    # finished cells are not trained again; a cell without results.json but with a checkpoint is resumed
    (cells / "convmixer-s0" / "results.json").unlink()
    again = _grid("run", *common, "--seeds", "0", "--lanes", "1", "--nice", "0")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("start ") == 1 and "--resume" in again.stdout
    assert (cells / "convmixer-s0" / "results.json").is_file()


def test_grid_rejects_unknown_cells(tmp_path: Path) -> None:
    bad = _grid("run", "--grid", "digits-smoke", "--runs", str(tmp_path), "--only", "resnett")
    assert bad.returncode != 0 and "--only: unknown cell(s) ['resnett']" in bad.stderr


def _fake_run(folder: Path, seed: int, test: float, params: int) -> None:
    folder.mkdir(parents=True)
    results = dict(
        seed=seed, model="m", params=params, epochs=2, best_val={"top1": test + 1}, test={"top1": test},
        wall_time_s=600.0, peak_memory_mb=1500.0,
    )  # fmt: skip
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "summary.csv").write_text("epoch,time_s,val_top1\n1,300,45.0\n2,600,55.0\n")


BENCH_HEADER = (
    "model,group,mode,precision,input_size,batch_size,params,gmacs,mem_per_sample_mb,peak_mem_mb,ms_median,"
    "samples_per_s,mem_ratio_vs_wavemix,throughput_ratio_vs_wavemix,error\n"
)


def test_summary_takes_train_step_memory_from_the_peers_bench(tmp_path: Path) -> None:
    grid = tmp_path / "cifar10-40k-2ep"
    for seed, test in enumerate((50.0, 52.0, 54.0)):
        _fake_run(grid / f"wavemix-dwt-db2-s{seed}", seed, test, 37_058)
        _fake_run(grid / f"resnet-s{seed}", seed, test + 10, 36_000)
    bench = tmp_path / "peers.csv"
    bench.write_text(
        BENCH_HEADER
        + "WaveMix dwt/db2 [40k@32],40k@32,train,bf16,3x32x32,128,37058,0.01,3.4,436.5,700,180,1.1,0.6,\n"
        + "WaveMix dwt/db2 [40k@32],40k@32,infer,bf16,3x32x32,128,37058,0.01,0.4,51.0,70,1800,1.1,0.6,\n"
        + "resnet [40k@32],40k@32,train,bf16,3x32x32,128,36000,0.01,0.2,30.25,90,1400,0.07,8.0,\n"
        + "resnet [500k@32],500k@32,train,bf16,3x32x32,128,520000,0.1,0.5,64.0,90,1400,0.07,8.0,\n"
    )
    done = _grid("summarize", "--grid", "cifar10-40k-2ep", "--runs", str(tmp_path), "--memory", str(bench))
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "cifar10-40k-2ep.md").read_text().splitlines()
    assert table[0].endswith("| train-step memory (MB, batch 128, bf16) |")
    assert table[2] == (
        "| resnet | 36,000 | 3 | 62.00 ± 2.00 | 63.00 ± 2.00 | 10.0 ± 0.0 | 1500 ± 0 | 10.0 ± 0.0 | 30.2 |"
    )
    assert table[3].startswith("| wavemix-dwt-db2 | 37,058 | 3 | 52.00 ± 2.00 |") and table[3].endswith("| 436.5 |")
    rows = list(csv.DictReader((tmp_path / "cifar10-40k-2ep.csv").open()))
    assert {r["step_mem_mb"] for r in rows if r["cell"] == "resnet"} == {"30.25"}

    mixed = bench.read_text().replace(
        "resnet [40k@32],40k@32,train,bf16,3x32x32,128", "resnet [40k@32],40k@32,train,bf16,3x32x32,64"
    )
    bench.write_text(mixed)
    refused = _grid("summarize", "--grid", "cifar10-40k-2ep", "--runs", str(tmp_path), "--memory", str(bench))
    assert refused.returncode != 0 and "mixes batch sizes/precisions" in refused.stderr
