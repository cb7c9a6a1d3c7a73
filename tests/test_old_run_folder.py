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

import pytest

from wavemixer.cli import main

from .conftest import GOLDEN_DIR
from .goldens import exact_values, weights_sha256
from .record_goldens import copy_old_run, eval_values, predict_values, resume_values

OLD = GOLDEN_DIR / "old_run"
EXPECTED = json.loads((OLD / "expected.json").read_text())
EXACT = exact_values(EXPECTED)


@pytest.fixture
def old_run(tmp_path):
    return copy_old_run(tmp_path)


def _want(key: str):
    """This platform's recorded value where there is one, else the first platform's with a tolerance."""
    if EXACT is not None:
        return EXACT[key]
    return _approx(EXPECTED[key])


def _approx(value):
    if isinstance(value, float):
        return pytest.approx(value, abs=1e-4)
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return value


def test_old_run_evaluates_as_before(old_run, capsys):
    assert weights_sha256(old_run / "best") == EXPECTED["best_before_resume"]
    for split in ("test", "val"):
        assert eval_values(old_run, split) == _want(f"eval_{split}")


def test_old_run_predicts_as_before(old_run, tmp_path, capsys):
    assert predict_values(old_run, tmp_path / "p.json") == _want("predict")


def test_old_run_exports(old_run, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["export", str(old_run), str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1000


def test_old_run_resumes_to_the_same_weights(old_run, capsys):
    got = resume_values(old_run)
    assert json.loads((old_run / "results.json").read_text())["epochs"] == 2
    if EXACT is not None:
        assert got == EXACT["resumed"]
    else:
        assert got["test"]["top1"] == pytest.approx(EXPECTED["resumed"]["test"]["top1"], abs=2.0)
