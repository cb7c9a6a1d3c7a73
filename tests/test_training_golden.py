"""Classification training stays bit-identical: the same ``TrainConfig`` gives the same weights and summary.

Long comparison trainings are continued with later versions of the code, so data order, augmentation draws,
initialisation and the optimiser path must not move. ``tests/golden/train_classification.json`` holds the
checksums of the final weights, the ``summary.csv`` values, the test metrics and the split fingerprints of
small runs recorded before the training package was reorganised. On another torch version or CPU kind
floating-point results may differ in the last bits, so there the values are compared with a tolerance.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from wavemixer.train import TrainConfig, train

from .conftest import GOLDEN_DIR, SHARED_DATA

GOLDEN = json.loads((GOLDEN_DIR / "train_classification.json").read_text())
SAME_PLATFORM = GOLDEN["recorded_with"] == dict(
    torch=torch.__version__, cpu_capability=torch.backends.cpu.get_cpu_capability()
)


def weights_sha256(folder: Path) -> str:
    """A checksum of a saved model's tensors (names, dtypes, shapes and bytes), whatever the file layout."""
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def summary_values(run: Path) -> list[dict[str, str]]:
    rows = csv.DictReader((run / "summary.csv").open())
    return [{k: v for k, v in row.items() if k not in ("epoch_s", "time_s")} for row in rows]


def _close(got: dict, want: dict) -> bool:
    return got.keys() == want.keys() and all(math.isclose(float(got[k]), float(want[k]), rel_tol=1e-3, abs_tol=1e-3)
                                             for k in want)  # fmt: skip


@pytest.mark.parametrize("name", list(GOLDEN["runs"]))
def test_classification_training_is_unchanged(name, tmp_path, monkeypatch):
    golden = GOLDEN["runs"][name]
    config = dict(golden["config"])
    if config.get("data_dir"):
        if not SHARED_DATA.is_dir():
            pytest.skip(f"offline datasets not found at {SHARED_DATA}")
        config["data_dir"] = str(SHARED_DATA / Path(config["data_dir"]).relative_to("../shared/data"))
    monkeypatch.setenv("WAVEMIXER_DATA", str(tmp_path / "cache"))
    results = train(TrainConfig(**config, output=str(tmp_path / "run"), quiet=True))
    run = tmp_path / "run"
    saved = json.loads((run / "best" / "config.json").read_text())
    assert saved["metadata"]["data"]["split_hashes"] == golden["split_hashes"]
    assert results["params"] == golden["params"]
    if SAME_PLATFORM:
        assert summary_values(run) == golden["summary"]
        assert results["test"] == golden["test"]
        assert weights_sha256(run / "best") == golden["best"]
        assert weights_sha256(run / "last") == golden["last"]
    else:
        assert all(_close(g, w) for g, w in zip(summary_values(run), golden["summary"], strict=True))
        assert _close(results["test"], golden["test"])
