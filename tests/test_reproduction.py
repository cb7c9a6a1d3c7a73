"""Slow: the parameter-efficiency reproductions of docs/results.md, one seed each (``pytest -m slow``).

Each runs ``scripts/reproduce_efficiency.sh`` (the recipe of the results table) and checks the goal of the
reference README on the test split, with the model selected on the validation split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT

GOALS = [
    ("mnist", "mnist-lite_8_10-s0", 99.0),  # WaveMix-Lite-8/10, 3,566 parameters
    ("fmnist_lr 1e-2", "fmnist-lite_8_5-lr1e-2-s0", 90.0),  # WaveMix-Lite-8/5, 7,156 parameters, peak lr 1e-2
]


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
@pytest.mark.parametrize(("job", "run", "goal"), GOALS, ids=[g[0].split()[0] for g in GOALS])
def test_parameter_efficiency_goal(job: str, run: str, goal: float, shared_data, tmp_path) -> None:
    env = dict(os.environ, DATA=str(shared_data), RUNS=str(tmp_path), PYTHON=sys.executable, JOBS=f"{job} 0", NICE="0")
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "reproduce_efficiency.sh")], env=env, check=True)
    results = json.loads((tmp_path / run / "results.json").read_text())
    assert results["test"]["top1"] >= goal, results["test"]
