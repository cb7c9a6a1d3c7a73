"""Classification training stays bit-identical: the same ``TrainConfig`` gives the same weights and summary.

Long comparison trainings are continued with later versions of the code, so data order, augmentation draws,
initialisation and the optimiser path must not move. ``tests/golden/train_classification.json`` holds the
checksums of the final weights, the ``summary.csv`` values, the test metrics and the split fingerprints of
small runs recorded before the training package was reorganised, on the platforms it lists (``goldens.py``). On a
platform it does not list the values are compared with a tolerance: there the last bits differ.
"""

from __future__ import annotations

import json

import pytest

from .conftest import GOLDEN_DIR, SHARED_DATA
from .goldens import RECORDING_VERSION, exact_values, training_within_tolerance
from .record_goldens import train_values

GOLDEN = json.loads((GOLDEN_DIR / "train_classification.json").read_text())
EXACT = exact_values(GOLDEN)


@pytest.mark.parametrize("name", list(GOLDEN["runs"]))
def test_classification_training_is_unchanged(name, tmp_path):
    golden = GOLDEN["runs"][name]
    if golden["config"].get("data_dir") and not SHARED_DATA.is_dir():
        pytest.skip(f"offline datasets not found at {SHARED_DATA}")
    got = train_values(golden["config"], tmp_path)
    assert got["split_hashes"] == golden["split_hashes"]
    assert got["params"] == golden["params"]
    if EXACT is not None:
        exact = EXACT["runs"][name]
        assert got["summary"] == exact["summary"]
        assert got["test"] == exact["test"]
        assert got["best"] == exact["best"]
        assert got["last"] == exact["last"]
    else:
        assert training_within_tolerance(got, golden), (got["summary"], golden["summary"])


def test_every_platform_record_is_the_recording_version_within_tolerance():
    """Each added platform was recorded with the version the goldens pin, for every run, and lies within the
    tolerance an unlisted platform must meet: the tolerance covers the measured spread between platforms."""
    for record in GOLDEN.get("exact", []):
        assert record["code"] == RECORDING_VERSION, record["platform"]
        assert record["runs"].keys() == GOLDEN["runs"].keys(), record["platform"]
        for name, exact in record["runs"].items():
            assert training_within_tolerance(exact, GOLDEN["runs"][name]), (record["platform"], name)
