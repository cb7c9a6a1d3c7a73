"""Slow: the parameter-efficiency reproductions of docs/results.md, one seed each (``pytest -m slow``).

Each runs ``scripts/reproduce_efficiency.sh`` with the recipe that meets the reference README's goal in the
results table (the goal holds for its mean over 3 seeds) and checks that seed 0, selected on the validation split,
is a draw from that result: test top-1 at least the documented mean minus two standard deviations. One seed cannot
check a goal stated for a mean, and its last digits move with the CPU's bf16 kernels: seed 0 of the MNIST 3e-3
recipe gave 99.00 % on an AMD EPYC and 98.93 % on a Sapphire Rapids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT

# (job, run folder, the goal, the documented test top-1 mean and std over seeds 0-2), from docs/results.md
GOALS = [
    ("mnist_lr 1e-2", "mnist-lite_8_10-lr1e-2-s0", 99.0, 99.10, 0.14),  # WaveMix-Lite-8/10, 3,566 parameters
    ("fmnist_lr 1e-2", "fmnist-lite_8_5-lr1e-2-s0", 90.0, 90.33, 0.30),  # WaveMix-Lite-8/5, 7,156 parameters
]


def test_documented_means_meet_the_goals() -> None:
    """The table's rows this file draws from are the ones that meet the goals (in the mean)."""
    table = (REPO_ROOT / "docs" / "results.md").read_text()
    for _, run, goal, mean, std in GOALS:
        row = f"| **{run.removesuffix('-s0')}** "
        assert row in table and f"**{mean:.2f} ± {std:.2f} (3 seeds)**" in table.split(row, 1)[1].split("\n", 1)[0]
        assert mean >= goal


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
@pytest.mark.parametrize(("job", "run", "goal", "mean", "std"), GOALS, ids=[g[0].split()[0] for g in GOALS])
def test_parameter_efficiency_goal(job: str, run: str, goal: float, mean: float, std: float, shared_data, tmp_path):
    env = dict(os.environ, DATA=str(shared_data), RUNS=str(tmp_path), PYTHON=sys.executable, JOBS=f"{job} 0", NICE="0")
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "reproduce_efficiency.sh")], env=env, check=True)
    results = json.loads((tmp_path / run / "results.json").read_text())
    assert results["test"]["top1"] >= mean - 2 * std, (results["test"], f"documented {mean} ± {std}, goal {goal}")
