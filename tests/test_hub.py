"""Saving and loading: config.json + model.safetensors round trips, and clear errors for broken folders."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from wavemixer import WaveMix, WaveMixSegmentation, WaveMixSR
from wavemixer.hub import CONFIG_NAME, WEIGHTS_NAME, atomic_write, from_pretrained, save_pretrained

MODELS = [
    lambda: WaveMix(num_classes=4, depth=2, final_dim=16, level=3, stem="strided", stride=1, in_chans=1),
    lambda: WaveMixSegmentation(num_classes=3, depth=1, final_dim=16, level=2, decoder_dims=(12, 6)),
    lambda: WaveMixSR(scale=4, depth=1, final_dim=16, bicubic_residual=True, upsample="pixelshuffle"),
]


@pytest.mark.parametrize("make", MODELS)
def test_round_trip_gives_identical_outputs(tmp_path, make):
    model = make()
    model.train()
    model(torch.randn(2, model.in_chans, 16, 16))  # move BatchNorm statistics away from their init
    model.eval()
    save_pretrained(model, tmp_path, preprocessing={"mean": [0.5], "std": [0.25]}, labels=["a", "b", "c", "d"])
    loaded = from_pretrained(tmp_path)
    x = torch.randn(1, model.in_chans, 20, 24)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.pretrained_config["preprocessing"] == {"mean": [0.5], "std": [0.25]}
    assert loaded.pretrained_config["labels"] == ["a", "b", "c", "d"]
    assert not list(tmp_path.glob("*.tmp"))


def test_wrapped_models_save_clean_keys(tmp_path):
    model = WaveMix(num_classes=2, depth=1, final_dim=8, level=1)
    wrapped = torch.nn.DataParallel(model)
    save_pretrained(wrapped, tmp_path)
    keys = load_file(tmp_path / WEIGHTS_NAME).keys()
    assert set(keys) == set(model.state_dict())  # the inner model's own names, no wrapper prefixes
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert config["model_class"] == "WaveMix" and config["config"]["final_dim"] == 8


def test_broken_folders_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a model folder"):
        from_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"config\.json not found"):
        from_pretrained(tmp_path)
    save_pretrained(WaveMix(num_classes=2, depth=1, final_dim=8, level=1), tmp_path)
    (tmp_path / WEIGHTS_NAME).write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="corrupt"):
        from_pretrained(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        from_pretrained(tmp_path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a wavemixer model config"):
        from_pretrained(tmp_path)


def test_weights_that_do_not_fit_the_config(tmp_path):
    save_pretrained(WaveMix(num_classes=2, depth=1, final_dim=8, level=1), tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config["config"]["final_dim"] = 16
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="do not fit"):
        from_pretrained(tmp_path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")

    def failing(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, failing)
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_save_rejects_foreign_modules(tmp_path):
    with pytest.raises(TypeError, match="wavemixer model"):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path)


def test_atomic_write_gives_files_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "w.txt", lambda tmp: Path(tmp).write_text("x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "w.txt").stat().st_mode) == 0o644
