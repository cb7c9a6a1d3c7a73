"""A run folder written by an earlier version (``tests/golden/old_run/digits-run``, interrupted after its first
epoch) still evaluates, predicts, exports and resumes, with the numbers that version gave.

The folder was made with ``wavemixer train --model-arg depth=1 --model-arg final_dim=16 --batch-size 64
--epochs 2 --threads 1 --amp none --seed 4 --stop-after-steps 25``; ``expected.json`` holds what ``eval``,
``predict`` and ``train --resume`` of that version produced from it, on a 2-core machine with torch's default
thread count. The exact comparisons pin ``--threads 2``: a convolution's sums are split by thread, so the last
bits of a probability depend on the thread count (``OMP_NUM_THREADS=1`` changes them by about 1e-8).
"""

from __future__ import annotations

import json
import shutil

import pytest

from wavemixer.cli import main

from .conftest import GOLDEN_DIR
from .test_training_golden import SAME_PLATFORM, summary_values, weights_sha256

OLD = GOLDEN_DIR / "old_run"
EXPECTED = json.loads((OLD / "expected.json").read_text())
THREADS = ["--threads", "2"]  # what expected.json was recorded with


@pytest.fixture
def old_run(tmp_path):
    run = tmp_path / "digits-run"
    shutil.copytree(OLD / "digits-run", run)  # the committed folder is never written
    return run


def _approx(value: float) -> object:
    return value if SAME_PLATFORM else pytest.approx(value, abs=1e-4)


def test_old_run_evaluates_as_before(old_run, capsys):
    assert weights_sha256(old_run / "best") == EXPECTED["best_before_resume"]
    for split in ("test", "val"):
        assert main(["eval", str(old_run), "--split", split, *THREADS]) == 0
        metrics = json.loads((old_run / f"eval-digits-{split}" / "metrics.json").read_text())
        want = EXPECTED[f"eval_{split}"]
        assert metrics["images"] == want["images"]
        assert metrics["top1"] == _approx(want["top1"]) and metrics["top5"] == _approx(want["top5"])


def test_old_run_predicts_as_before(old_run, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["predict", str(old_run), str(OLD / "images"), "--format", "json", "--output", str(out), *THREADS]) == 0
    rows = json.loads(out.read_text())["predictions"]
    assert [r["label"] for r in rows] == [p["label"] for p in EXPECTED["predict"]]
    assert [r["input_z"] for r in rows] == [p["input_z"] for p in EXPECTED["predict"]]
    assert [r["probability"] for r in rows] == [_approx(p["probability"]) for p in EXPECTED["predict"]]


def test_old_run_exports(old_run, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["export", str(old_run), str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1000


def test_old_run_resumes_to_the_same_weights(old_run, capsys):
    assert main(["train", "--resume", str(old_run), "--quiet"]) == 0
    resumed = EXPECTED["resumed"]
    results = json.loads((old_run / "results.json").read_text())
    assert results["epochs"] == 2
    if SAME_PLATFORM:
        assert summary_values(old_run) == resumed["summary"]
        assert results["test"] == resumed["test"]
        assert weights_sha256(old_run / "best") == resumed["best"]
        assert weights_sha256(old_run / "last") == resumed["last"]
    else:
        assert results["test"]["top1"] == pytest.approx(resumed["test"]["top1"], abs=2.0)
