"""Training engine on the embedded digits set: learning, run folder, resume, DualOpt, EMA, errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from wavemixer.hub import from_pretrained
from wavemixer.train import TrainConfig, Trainer, resolve_config, train
from wavemixer.train.checkpoint import load_train_state

FAST = dict(model_args={"depth": 2}, batch_size=64, lr=5e-3, threads=1, quiet=True)


def _run(tmp: Path, name: str, **kw) -> dict | None:
    return train(TrainConfig(output=str(tmp / name), **{**FAST, **kw}))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("runs")
    results = _run(tmp, "digits", epochs=8)
    return tmp / "digits", results


def test_short_run_learns_and_writes_a_self_describing_folder(digits_run):
    run_dir, results = digits_run
    # 10 classes: chance is 10 %; 8 epochs reach about 94 % (AMD EPYC Zen 4, bf16), 2 epochs about 66 %
    assert results["test"]["top1"] > 85.0
    assert results["best_val"]["top1"] > 85.0
    for name in (
        "config.yaml",
        "summary.csv",
        "curves.png",
        "checkpoint.pt",
        "results.json",
        "best/config.json",
        "best/model.safetensors",
        "last/model.safetensors",
    ):
        assert (run_dir / name).is_file(), name
    rows = list(csv.DictReader((run_dir / "summary.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    assert {"train_loss", "val_loss", "val_top1", "val_top5", "lr"} <= set(rows[0])
    best_epoch = max(range(8), key=lambda i: (float(rows[i]["val_top1"]), -i)) + 1
    assert results["best_epoch"] == best_epoch  # selected on validation, not on test
    assert json.loads((run_dir / "results.json").read_text())["test"] == results["test"]


def test_checkpoint_round_trips_with_preprocessing_and_labels(digits_run):
    run_dir, results = digits_run
    model = from_pretrained(run_dir / "best")
    cfg = model.pretrained_config
    assert cfg["labels"] == [str(i) for i in range(10)]
    assert cfg["preprocessing"]["input_size"] == [1, 16, 16]
    assert cfg["metadata"]["dataset"] == "digits"
    state = load_file(run_dir / "best" / "model.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    # the best weights reproduce the recorded test accuracy
    trainer = Trainer(resolve_config(TrainConfig(**FAST)))
    trainer.model.load_state_dict(model.state_dict())
    assert trainer.evaluate(trainer.data.test)["top1"] == pytest.approx(results["test"]["top1"], abs=1e-6)


def test_resume_after_interruption_ends_with_identical_weights(tmp_path):
    # timm's EMA with warm-up and torchvision's MixUp/CutMix (random per batch) must resume exactly too
    kw = dict(epochs=3, ema=True, ema_decay=0.9, ema_warmup=True, mixup=0.2, cutmix=1.0, subset=640)
    full = _run(tmp_path, "full", **kw)
    assert _run(tmp_path, "cut", stop_after_steps=13, **kw) is None  # 10 steps per epoch: stops in epoch 2
    state = load_train_state(tmp_path / "cut" / "checkpoint.pt")
    assert state["epoch"] == 1 and state["global_step"] == 10
    resumed = train(TrainConfig(resume=str(tmp_path / "cut"), quiet=True))
    a = load_file(tmp_path / "full" / "last" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "last" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = load_train_state(tmp_path / "full" / "checkpoint.pt")
    sb = load_train_state(tmp_path / "cut" / "checkpoint.pt")
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    assert sa["ema"].keys() == sb["ema"].keys()
    for k in sa["ema"]:
        assert torch.equal(sa["ema"][k], sb["ema"][k]), k
    assert sa["optimizer"]["state"][0]["exp_avg"].equal(sb["optimizer"]["state"][0]["exp_avg"])
    assert resumed["test"] == full["test"]
    rows = list(csv.DictReader((tmp_path / "cut" / "summary.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]


def test_max_steps_ends_a_partial_epoch_and_resumes_exactly(tmp_path):
    """--max-steps 25 at 10 steps per epoch: three epochs, the last of 5 steps, the cosine schedule spanning the
    25 steps (the last step's learning rate is the floor's neighbourhood, not mid-schedule); an interruption in
    the partial epoch resumes to the same weights."""
    kw = dict(epochs=9, max_steps=25, subset=640, warmup_epochs=0.0)
    full = _run(tmp_path, "full", **kw)
    assert (full["epochs"], full["steps"], full["stop_reason"]) == (3, 25, "max steps")
    rows = list(csv.DictReader((tmp_path / "full" / "summary.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    # the schedule spans the 25 steps: after the last one it sits at the floor (1 % of 5e-3); spanning 9 epochs
    # (90 steps) it would still be at cos(pi * 25 / 90)
    assert float(rows[-1]["lr"]) == pytest.approx(5e-3 * 0.01, rel=1e-9)
    assert float(rows[1]["lr"]) == pytest.approx(5e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 20 / 25))))
    assert _run(tmp_path, "cut", stop_after_steps=23, **kw) is None
    train(TrainConfig(resume=str(tmp_path / "cut"), quiet=True))
    a = load_file(tmp_path / "full" / "last" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "last" / "model.safetensors")
    assert a and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_dualopt_switches_to_sgd_from_the_best_checkpoint(tmp_path, monkeypatch):
    switched: list[tuple[dict, dict]] = []
    switch = Trainer._switch_to_sgd

    def watched(self: Trainer) -> None:  # the weights phase 2 starts from, against the best epoch's
        switch(self)
        best = load_train_state(self.run_dir / "best_state.pt")["model"]
        switched.append(({k: v.clone() for k, v in self.model.state_dict().items()}, best))

    monkeypatch.setattr(Trainer, "_switch_to_sgd", watched)
    # a learning rate too small to improve makes the val metric stall at once
    results = _run(tmp_path, "dual", recipe="dualopt", lr=1e-7, sgd_lr=1e-7, patience=1, epochs=6, subset=320)
    rows = list(csv.DictReader((tmp_path / "dual" / "summary.csv").open()))
    # AdamW until val stalls for one epoch (patience 1; here epoch 2), then SGD from the best epoch's weights
    phases = [int(r["phase"]) for r in rows]
    assert phases == sorted(phases) and phases[0] == 1 and phases[-1] == 2 and phases.count(2) <= 2
    assert results["best_epoch"] < phases.index(2) + 1 == results["epochs"] - phases.count(2) + 1
    ((now, best),) = switched  # epoch 2's weights moved (lr 1e-7): only the reload makes these equal
    assert now.keys() == best.keys() and all(torch.equal(now[k], best[k]) for k in now)
    assert results["stop_reason"].startswith("no better val top1")
    state = load_train_state(tmp_path / "dual" / "checkpoint.pt")
    assert state["phase"] == 2 and "momentum_buffer" in state["optimizer"]["state"][0]


def test_existing_run_folder_is_not_overwritten_without_force(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.yaml").write_text("x: 1\n")
    with pytest.raises(ValueError, match="--force"):
        _run(tmp_path, "taken", epochs=1, subset=128)
    assert (tmp_path / "taken" / "config.yaml").read_text() == "x: 1\n"


def test_corrupt_training_checkpoint_is_reported(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt"):
        train(TrainConfig(resume=str(tmp_path / "run"), quiet=True))
    with pytest.raises(FileNotFoundError, match="--resume"):
        train(TrainConfig(resume=str(tmp_path / "nowhere"), quiet=True))


def test_config_validation_and_defaults():
    cfg = resolve_config(TrainConfig(dataset="MNIST"))
    assert (cfg.dataset, cfg.model, cfg.hflip) == ("mnist", "wavemix_lite_8_10_mnist", False)
    assert resolve_config(TrainConfig(dataset="cifar10")).trivial_augment is True
    with pytest.raises(ValueError, match="unknown data set 'imagenette'"):
        resolve_config(TrainConfig(dataset="imagenette"))
    with pytest.raises(ValueError, match="--batch-size"):
        resolve_config(TrainConfig(batch_size=0))
    with pytest.raises(ValueError, match="unknown model"):
        Trainer(resolve_config(TrainConfig(model="wavemix_nonexistent")))
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        Trainer(resolve_config(TrainConfig(amp="fp16", device="cpu")))


def test_speed_and_memory_options_run_together(tmp_path):
    results = _run(
        tmp_path,
        "opts",
        epochs=1,
        subset=256,
        amp="bf16",
        channels_last=True,
        grad_checkpointing=True,
        grad_accum=2,
        clip_grad=1.0,
        label_smoothing=0.1,
        sched="constant",
    )
    state = load_train_state(tmp_path / "opts" / "checkpoint.pt")
    assert state["global_step"] == 256 // 64  # one optimizer step per global batch of 64 (2 x 32)
    rows = list(csv.DictReader((tmp_path / "opts" / "summary.csv").open()))
    assert float(rows[0]["lr"]) == 5e-3 and math.isfinite(results["test"]["loss"])  # the constant schedule
    tr = Trainer(resolve_config(TrainConfig(**{**FAST, "subset": 256, "epochs": 1, "grad_accum": 2})))
    assert (tr.train_loader.batch_size, tr.steps_per_epoch) == (32, 4)  # micro-batches of 32, two per step


def test_memory_efficient_training_follows_the_same_trajectory(tmp_path):
    plain = _run(tmp_path, "plain", epochs=1, subset=256)
    lean = _run(tmp_path, "lean", epochs=1, subset=256, memory_efficient=True)
    assert Trainer(
        resolve_config(TrainConfig(**FAST, subset=256, epochs=1, memory_efficient=True))
    ).model.memory_efficient
    # Identical maths up to rounding: after a few optimizer steps the losses agree closely (equal here).
    assert lean["test"]["loss"] == pytest.approx(plain["test"]["loss"], rel=1e-4)
    assert lean["best_val"]["top1"] == pytest.approx(plain["best_val"]["top1"], abs=1.0)
