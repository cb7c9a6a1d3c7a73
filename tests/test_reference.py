"""Same weights, same outputs: our models against golden outputs captured from the reference package.

The goldens are made by ``scripts/make_reference_goldens.py`` (runs ``wavemix==0.2.4`` in its own
virtual environment, since it needs numpy<2).
"""

from __future__ import annotations

import pytest
import torch

from wavemixer.cli import main as cli_main
from wavemixer.hub import from_pretrained
from wavemixer.reference import from_reference, reference_kwargs_to_config

from .conftest import GOLDEN_DIR

GOLDENS = sorted(GOLDEN_DIR.glob("reference_*.pt"))


def _load(path):
    return torch.load(path, weights_only=True)


def test_goldens_cover_every_level_and_family():
    records = [_load(p) for p in GOLDENS]
    covered = {(r["task"], r["kwargs"].get("level", 1)) for r in records}
    for task in ("classification", "segmentation", "super_resolution"):
        for level in (1, 2, 3, 4):
            assert (task, level) in covered, f"no golden for {task} level {level}"
    stems = {r["kwargs"].get("initial_conv") for r in records if r["task"] == "classification"}
    assert {"pachify", "strided"} <= stems


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.stem)
def test_same_weights_same_outputs(path):
    record = _load(path)
    model = from_reference(record["state_dict"], task=record["task"], **record["kwargs"]).eval()
    with torch.no_grad():
        out = model(record["input"])
    assert out.shape == record["output"].shape
    assert (out - record["output"]).abs().max().item() <= 1e-5


def test_accepts_wrapped_and_prefixed_state_dicts():
    record = _load(GOLDEN_DIR / "reference_cls_l1_patchify.pt")
    wrapped = {"state_dict": {f"module._orig_mod.{k}": v for k, v in record["state_dict"].items()}}
    model = from_reference(wrapped, task="classification", **record["kwargs"]).eval()
    with torch.no_grad():
        assert (model(record["input"]) - record["output"]).abs().max().item() <= 1e-5


def test_wrong_constructor_arguments_are_named():
    record = _load(GOLDEN_DIR / "reference_cls_l2_strided_s2.pt")
    kwargs = {**record["kwargs"], "final_dim": 32}
    with pytest.raises(ValueError, match="pass the constructor arguments"):
        from_reference(record["state_dict"], task="classification", **kwargs)
    with pytest.raises(ValueError, match="unexpected key"):
        from_reference(record["state_dict"], task="classification", **{**record["kwargs"], "level": 1})
    with pytest.raises(TypeError, match="no argument"):
        from_reference(record["state_dict"], task="classification", embed_dim=16)
    with pytest.raises(ValueError, match="task must be one of"):
        from_reference(record["state_dict"], task="detection")


def test_reference_quirks_are_mirrored():
    with pytest.warns(UserWarning, match="silently builds level-1"):
        config = reference_kwargs_to_config("classification", level=7)
    assert config["level"] == 1
    assert reference_kwargs_to_config("classification", initial_conv="typo")["stem"] == "patchify"
    # the reference head always upsamples x4, so only stride 2 returns the input size
    assert reference_kwargs_to_config("segmentation", stride=1)["resize_to_input"] is False


def test_convert_command_writes_a_loadable_model(tmp_path, capsys):
    record = _load(GOLDEN_DIR / "reference_sr_l2.pt")
    ckpt = tmp_path / "ref.pth"
    torch.save(record["state_dict"], ckpt)
    out = tmp_path / "converted"
    args = ["convert", str(ckpt), str(out), "--task", "super_resolution"]
    args += [f"--arg={k}={v}" for k, v in record["kwargs"].items()]
    assert cli_main(args) == 0
    model = from_pretrained(out)
    with torch.no_grad():
        assert (model(record["input"]) - record["output"]).abs().max().item() <= 1e-5
    assert cli_main(args) == 2  # refuses to overwrite without --force
    assert cli_main([*args, "--force"]) == 0
    assert cli_main(["convert", str(tmp_path / "missing.pth"), str(out)]) == 2
    assert cli_main(["convert", str(tmp_path), str(out)]) == 2  # a folder: was "does not exist"
    assert f"checkpoint {tmp_path} is a folder; give the reference .pth file" in capsys.readouterr().err
