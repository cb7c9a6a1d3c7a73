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


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"num_classes": 5}, "2 of another shape (first: head.weight, [2, 8] in the weights, [5, 8] in the model)"),
        # a level-1 block: reduction, two MLP convs and the transposed conv (weight, bias each), BatchNorm's 5
        ({"depth": 2}, "13 missing (first: blocks.1.reduction.weight)"),
        ({"depth": 1, "final_dim": 8}, None),  # the same model: it loads
    ],
)
def test_weights_that_do_not_fit_the_config(change, why, tmp_path):
    """One line that counts what differs (torch's own message lists every key, over several lines)."""
    save_pretrained(WaveMix(num_classes=2, depth=1, final_dim=8, level=1), tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config["config"].update(change)
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    if why is None:
        assert from_pretrained(tmp_path).config == config["config"]
        return
    with pytest.raises(ValueError, match="do not fit") as info:
        from_pretrained(tmp_path)
    assert str(info.value) == f"the weights in {tmp_path} do not fit the model in its {CONFIG_NAME}: {why}"


@pytest.mark.parametrize(
    ("part", "value", "fragment"),
    [
        ("format_version", 99, "format_version 99 is not one this wavemixer reads (1 to 2)"),
        ("preprocessing", {"input_size": "big"}, "preprocessing input_size must be [channels, height, width]"),
        ("preprocessing", [1, 2], "preprocessing must be a mapping, got [1, 2]"),
        ("metadata", {"data": "x"}, "metadata data (the training data's settings) must be a mapping, got 'x'"),
    ],
)
def test_a_damaged_part_of_config_json_is_named_in_one_line(part, value, fragment, tmp_path):
    """These parts reached timm's pretrained_cfg or the data settings unchecked and failed deep inside."""
    save_pretrained(WaveMix(num_classes=2, depth=1, final_dim=8, level=1), tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config[part] = value
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ValueError) as info:
        from_pretrained(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / CONFIG_NAME}: ") and fragment in str(info.value)


def test_force_replaces_a_wavemixer_model_but_not_a_users_own_config_json(tmp_path):
    model = WaveMix(num_classes=2, depth=1, final_dim=8, level=1)
    save_pretrained(model, tmp_path / "m")
    save_pretrained(model, tmp_path / "m", force=True)  # a model of ours: replaced
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / CONFIG_NAME).write_text('{"my": "own config"}')
    with pytest.raises(FileExistsError, match="is not a wavemixer model config, so force=True does not replace it"):
        save_pretrained(model, tmp_path / "u", force=True)
    assert (tmp_path / "u" / CONFIG_NAME).read_text() == '{"my": "own config"}'
    assert not (tmp_path / "u" / WEIGHTS_NAME).exists()


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
