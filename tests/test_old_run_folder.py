"""A run folder written by an earlier version (``tests/golden/old_run/digits-run``, interrupted after its first
epoch) still evaluates, predicts, exports and resumes, with the numbers that version gave.

The folder was made with ``wavemixer train --model-arg depth=1 --model-arg final_dim=16 --batch-size 64
--epochs 2 --threads 1 --amp none --seed 4 --stop-after-steps 25``; ``expected.json`` holds what ``eval``,
``predict`` and ``train --resume`` of that version produced from it, on a 2-core machine with torch's default
thread count. The exact comparisons pin ``--threads 2``: a convolution's sums are split by thread, so the last
bits of a probability depend on the thread count (``OMP_NUM_THREADS=1`` changes them by about 1e-8). They
also depend on the CPU platform: ``expected.json`` lists exact values per platform, recorded by that version
(``goldens.py``); elsewhere the numbers are compared with a tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wavemixer.cli import main

from .conftest import GOLDEN_DIR
from .goldens import OLD_RUN_KEYS, RECORDING_VERSION, exact_values, old_run_within_tolerance, weights_sha256
from .record_goldens import copy_old_run, eval_values, predict_values, resume_values

OLD = GOLDEN_DIR / "old_run"
EXPECTED = json.loads((OLD / "expected.json").read_text())
EXACT = exact_values(EXPECTED)


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    return copy_old_run(tmp_path)


def _as_before(key: str, got: object) -> bool:
    """Exactly this platform's record where there is one, else near the recording platform's values."""
    if EXACT is not None:
        return got == EXACT[key]
    return old_run_within_tolerance(key, got, EXPECTED[key])


def test_old_run_evaluates_as_before(old_run, capsys):
    assert weights_sha256(old_run / "best") == EXPECTED["best_before_resume"]
    for split in ("test", "val"):
        got = eval_values(old_run, split)
        assert _as_before(f"eval_{split}", got), got


def test_old_run_predicts_as_before(old_run, tmp_path, capsys):
    got = predict_values(old_run, tmp_path / "p.json")
    assert _as_before("predict", got), got


def test_old_run_platform_records_are_the_recording_version_within_tolerance():
    """Each added platform was recorded with the version the folder pins, and within what an unlisted one meets."""
    for record in EXPECTED.get("exact", []):
        assert record["code"] == RECORDING_VERSION, record["platform"]
        assert all(old_run_within_tolerance(k, record[k], EXPECTED[k]) for k in OLD_RUN_KEYS), record["platform"]


def test_old_run_exports(old_run, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["export", str(old_run), str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1000


def test_old_run_resumes_to_the_same_weights(old_run, capsys):
    got = resume_values(old_run)
    assert json.loads((old_run / "results.json").read_text())["epochs"] == 2
    assert _as_before("resumed", got), got
