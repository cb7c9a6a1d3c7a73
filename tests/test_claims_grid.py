"""scripts/claims_grid.py end to end on its tiny digits grid: trains, resumes, summarises."""

from __future__ import annotations

import argparse
import csv
import importlib.util
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
        "| resnet | 36,000 | 2 | 3 | 62.00 ± 2.00 | 63.00 ± 2.00 | 10.0 ± 0.0 | 1500 ± 0 | 10.0 ± 0.0 | 30.2 |"
    )
    assert table[3].startswith("| wavemix-dwt-db2 | 37,058 | 2 | 3 | 52.00 ± 2.00 |") and table[3].endswith("| 436.5 |")
    rows = list(csv.DictReader((tmp_path / "cifar10-40k-2ep.csv").open()))
    assert {r["step_mem_mb"] for r in rows if r["cell"] == "resnet"} == {"30.25"}

    mixed = bench.read_text().replace(
        "resnet [40k@32],40k@32,train,bf16,3x32x32,128", "resnet [40k@32],40k@32,train,bf16,3x32x32,64"
    )
    bench.write_text(mixed)
    refused = _grid("summarize", "--grid", "cifar10-40k-2ep", "--runs", str(tmp_path), "--memory", str(bench))
    assert refused.returncode != 0 and "mixes batch sizes/precisions" in refused.stderr


def test_merge_adds_earlier_runs_of_the_same_cells_and_refuses_others(tmp_path: Path) -> None:
    first, later = tmp_path / "first", tmp_path / "later"
    for seed, test in enumerate((50.0, 52.0, 54.0)):
        _fake_run(first / "cifar10-40k-2ep" / f"wavemix-dwt-haar-s{seed}", seed, test, 37_058)
        _fake_run(first / "cifar10-40k-2ep" / f"resnet-s{seed}", seed, test + 10, 36_000)
    for row in ("wavemix-dwt-haar", "resnet"):  # the fake runs name their model "m"; make them this grid's
        for seed in range(3):
            path = first / "cifar10-40k-2ep" / f"{row}-s{seed}" / "results.json"
            model = "wavemix_lite_32_7_cifar10_tiny" if row.startswith("wavemix") else "peer:resnet"
            path.write_text(path.read_text().replace('"model": "m"', f'"model": "{model}"'))
    assert _grid("summarize", "--grid", "cifar10-40k-2ep", "--runs", str(first)).returncode == 0
    earlier = first / "cifar10-40k-2ep.csv"

    # one seed trained anew, the other two from the earlier CSV: the new run wins for its seed
    _fake_run(later / "cifar10-40k-2ep" / "resnet-s0", 0, 70.0, 36_000)
    path = later / "cifar10-40k-2ep" / "resnet-s0" / "results.json"
    path.write_text(path.read_text().replace('"model": "m"', '"model": "peer:resnet"'))
    done = _grid("summarize", "--grid", "cifar10-40k-2ep", "--runs", str(later), "--merge", str(earlier))
    assert done.returncode == 0, done.stderr
    table = (later / "cifar10-40k-2ep.md").read_text()
    assert "| resnet | 36,000 | 2 | 3 | 65.33 ± 4.16 |" in table  # 70 (new), 62, 64
    assert "| wavemix-dwt-haar | 37,058 | 2 | 3 | 52.00 ± 2.00 |" in table

    # the equal-time grid trains ResNet for 11 epochs: 2-epoch ResNet rows are not its runs
    refused = _grid("summarize", "--grid", "cifar10-40k-equal-time", "--runs", str(later), "--merge", str(earlier))
    assert refused.returncode != 0
    assert "(resnet seed 0) is model peer:resnet, 2 epochs, goal 50 %; this grid's cell is peer:resnet, 11" in (
        refused.stderr
    )
    # --only picks the cells that are the same runs in both grids (WaveMix trains 2 epochs in each)
    picked = _grid("summarize", "--grid", "cifar10-40k-equal-time", "--runs", str(later), "--merge", str(earlier),
                   "--only", "wavemix-dwt-haar")  # fmt: skip
    assert picked.returncode == 0, picked.stderr
    table = (later / "cifar10-40k-equal-time.md").read_text()
    assert "| wavemix-dwt-haar | 37,058 | 2 | 3 | 52.00 ± 2.00 |" in table and "resnet" not in table
    other_goal = _grid("summarize", "--grid", "cifar10-40k-2ep", "--runs", str(later), "--merge", str(earlier),
                       "--goal", "60")  # fmt: skip
    assert other_goal.returncode != 0 and "goal 50 %; this grid's cell is" in other_goal.stderr


@pytest.fixture
def grid_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``grid_commands(name)``: each cell's ``wavemixer train`` command (seed 0) as the script builds it."""
    spec = importlib.util.spec_from_file_location("claims_grid", GRID)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "claims_grid", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    args = argparse.Namespace(epochs=None, data_dir=None, subset=None, extra=[])

    def commands(name: str) -> dict[str, list[str]]:
        grid = module.GRIDS[name]
        return {c.key: module._command(c, 0, tmp_path / c.key, args, grid) for c in grid["cells"]}

    return commands


def test_equal_time_grid_gives_each_peer_its_own_epochs(tmp_path: Path, grid_commands) -> None:
    listed = _grid("run", "--grid", "cifar10-40k-equal-time", "--runs", str(tmp_path), "--only", "nonesuch")
    assert "'resnet'" in listed.stderr  # the grid's cells are listed
    commands = grid_commands("cifar10-40k-equal-time")
    epochs = {k: int(cmd[cmd.index("--epochs") + 1]) for k, cmd in commands.items()}
    peers = dict(resnet=11, convmixer=2, mlp_mixer=11, poolformer=17, vit=5, convnext=15)
    assert epochs == {"wavemix-dwt-haar": 2, **peers}


def test_eleven_epoch_grid_trains_its_peers_exactly_as_the_equal_time_grid(grid_commands) -> None:
    """The 11-epoch grid merges ResNet and MLP-Mixer from the equal-time CSV: the commands must be the same."""
    eleven, equal = grid_commands("cifar10-40k-11ep"), grid_commands("cifar10-40k-equal-time")
    for peer in ("resnet", "mlp_mixer"):
        assert eleven[peer] == equal[peer]
    haar, expected = eleven["wavemix-dwt-haar"], list(equal["wavemix-dwt-haar"])
    assert haar[haar.index("--epochs") + 1] == "11"
    expected[expected.index("--epochs") + 1] = "11"  # WaveMix differs from its equal-time run in epochs only
    assert haar == expected
