"""scripts/claims_grid.py end to end on its tiny digits grid: trains, resumes, summarises."""

from __future__ import annotations

import csv
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
