"""Training options taken from libraries: TensorBoard, logging, MixUp/CutMix, RandAugment, timm's EMA."""

from __future__ import annotations

import csv
import logging
import sys

import pytest
import torch

from wavemixer.cli import main
from wavemixer.data.transforms import Preprocess
from wavemixer.train import TrainConfig, Trainer, resolve_config, train

FAST = dict(model_args={"depth": 1}, batch_size=32, subset=128, threads=1, quiet=True)


def test_tensorboard_gets_the_summary_csv_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(TrainConfig(output=str(tmp_path / "run"), epochs=2, log="tensorboard", **FAST))
    rows = list(csv.DictReader((tmp_path / "run" / "summary.csv").open()))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert len(rows) == 2  # one row per epoch
    for key in ("train_loss", "val_loss", "val_top1", "lr"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert logged == [(int(r["epoch"]), pytest.approx(float(r[key]), rel=1e-6)) for r in rows], key


def test_library_messages_go_through_logging_not_print(tmp_path, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="wavemixer"):
        train(TrainConfig(output=str(tmp_path / "run"), epochs=1, **{**FAST, "quiet": False}))
    messages = [r.getMessage() for r in caplog.records if r.name == "wavemixer.train.engine"]
    assert any(m.startswith("epoch   1/1") for m in messages) and any("best val top1" in m for m in messages)
    assert capsys.readouterr().out == ""  # a library call prints nothing by itself


def test_cli_prints_the_library_messages(tmp_path, capsys):
    argv = ["train", "--subset", "128", "--epochs", "1", "--batch-size", "32", "--model-arg", "depth=1"]
    assert main([*argv, "--threads", "1", "--output", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "epoch   1/1" in out and "best val top1" in out


def test_mixup_and_cutmix_come_from_torchvision(tmp_path):
    from torchvision.transforms import v2

    trainer = Trainer(resolve_config(TrainConfig(mixup=0.4, cutmix=1.0, **FAST)))
    assert isinstance(trainer.batch_mix, v2.RandomChoice)
    assert {type(t) for t in trainer.batch_mix.transforms} == {v2.MixUp, v2.CutMix}
    x, y = next(iter(trainer.train_loader))
    mixed, soft = trainer.batch_mix(x, y)
    assert mixed.shape == x.shape and not torch.equal(mixed, x)
    assert soft.shape == (len(y), trainer.info.num_classes) and torch.allclose(soft.sum(1), torch.ones(len(y)))
    assert trainer.train_one_epoch() > 0
    with pytest.raises(ValueError, match="--mixup, --cutmix and --rand-augment apply to classification"):
        resolve_config(TrainConfig(task="segmentation", dataset="camvid", mixup=0.2))


def test_rand_augment_comes_from_torchvision():
    from torchvision.transforms import v2

    pre = Preprocess((0.5,), (0.5,), train=True, rand_augment_magnitude=9)
    assert isinstance(pre._rand, v2.RandAugment) and pre._rand.magnitude == 9
    img = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8)
    torch.manual_seed(0)
    outs = [pre(img) for _ in range(8)]
    assert any(not torch.equal(o, outs[0]) for o in outs)
    trainer = Trainer(resolve_config(TrainConfig(rand_augment=True, **FAST)))
    assert isinstance(trainer.data.train.transform._rand, v2.RandAugment)


def test_ema_is_timm_model_ema_v3_with_warmup():
    from timm.utils import ModelEmaV3

    kw = dict(ema=True, ema_decay=0.999, **FAST)
    for warmup in (False, True):
        trainer = Trainer(resolve_config(TrainConfig(ema_warmup=warmup, **kw)))
        assert isinstance(trainer.ema, ModelEmaV3)
        start = [p.detach().clone() for p in trainer.ema.module.parameters()]
        trainer.train_one_epoch()  # 4 optimizer steps
        moved = sum(float((e - s).abs().sum()) for e, s in zip(trainer.ema.module.parameters(), start))
        trained = sum(float((m.detach() - s).abs().sum()) for m, s in zip(trainer.model.parameters(), start))
        if warmup:  # decay 0 at step 1 (a copy), then 1 - (1 + step)^(-2/3): close to the trained weights
            assert moved > 0.3 * trained
        else:  # 4 steps at decay 0.999 barely move the average
            assert moved < 0.01 * trained
        for e, m in zip(trainer.ema.module.buffers(), trainer.model.buffers()):
            assert torch.equal(e, m)  # BatchNorm statistics copied, as before


@pytest.mark.parametrize(
    "flags, module, extra",
    [(["--log", "tensorboard"], "tensorboard", "tensorboard"), (["--ema"], "timm", "timm")],
)
def test_missing_optional_dependency_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch, flags, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, "timm.utils", raising=False)
    argv = ["train", "--subset", "128", "--epochs", "1", "--batch-size", "32", "--output", str(tmp_path / "run")]
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f'pip install "wavemixer[{extra}]"' in err
    assert not (tmp_path / "run").exists()  # no empty run folder left behind
