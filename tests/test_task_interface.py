"""The seams of the training package: a fourth task added in one module (here, this file) trains, evaluates
and predicts through the public interface; ``--per-class`` subsets; ``peer:`` models for segmentation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from wavemixer.cli import main
from wavemixer.data.bundle import DataBundle, DataInfo
from wavemixer.data.datasets import ArrayDataset
from wavemixer.data.transforms import Preprocess
from wavemixer.tasks import TASKS, register_task, task_class
from wavemixer.tasks.base import PredictOptions, Task
from wavemixer.train import TrainConfig, train

TINY = dict(model_args={"depth": 1, "final_dim": 16}, batch_size=32, threads=1, quiet=True, amp="none")


# ------------------------------------------------------------------------------------------ a fourth task
class BrightnessTask(Task):
    """Regress an image's mean brightness with a one-output WaveMix classifier body: MSE loss, MAE metric."""

    name = "brightness"
    model_task = "classification"  # it trains the registry's classifiers, with one output
    select_metric = "mae"
    select_mode = "min"
    report_metrics = ("mae",)
    datasets = {"ramps": dict(model="wavemix_lite_32_7_cifar10_tiny", epochs=2, crop_padding=0, hflip=False,
                              trivial_augment=False)}  # fmt: skip

    def load_data(self) -> DataBundle:
        g = torch.Generator().manual_seed(0)
        levels = torch.rand(160, generator=g)
        images = (levels.view(-1, 1, 1, 1) * 255 + torch.randn(160, 1, 12, 12, generator=g) * 8).clamp(0, 255)
        source = ArrayDataset(images.to(torch.uint8), torch.arange(160))
        train, val, test = self.split(source.subset(range(120)), None, source.subset(range(120, 160)))
        info = DataInfo("ramps", 1, ["brightness"], 1, (12, 12), (0.5,), (0.25,))
        for split in (train, val, test):
            split.transform = Preprocess(info.mean, info.std)
            split.labels = levels[split.ids].mul(1000).long()  # targets in thousandths
        return DataBundle(train, val, test, info)

    def model_arguments(self, spec: Any, info: DataInfo, model_args: dict[str, Any]) -> dict[str, Any]:
        return dict(model_args, num_classes=1, in_chans=1)

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return torch.nn.functional.mse_loss(outputs.float()[:, 0], targets.float() / 1000)

    def make_metrics(self, info: DataInfo, device: torch.device, *, detailed: bool = False) -> Any:
        from torchmetrics import MeanAbsoluteError

        return MeanAbsoluteError().to(device)

    def update_metrics(self, metrics: Any, outputs: Tensor, targets: Tensor) -> None:
        metrics.update(outputs.float()[:, 0], targets.float() / 1000)

    def compute_metrics(self, metrics: Any) -> dict[str, Any]:
        return {"mae": float(metrics.compute())}

    def preprocessing(self, info: DataInfo) -> dict[str, Any]:
        return dict(mean=list(info.mean), std=list(info.std), input_size=[1, *info.input_size], color_mode="L")

    def evaluation_transform(self, preprocessing: dict[str, Any]) -> Preprocess:
        return Preprocess(preprocessing["mean"], preprocessing["std"])

    def predict(self, loaded: Any, files: list[Path], options: PredictOptions) -> list[dict[str, Any]]:
        from wavemixer.data.images import load_image

        tf = self.evaluation_transform(loaded.preprocessing)
        x = torch.stack([tf(load_image(f, "L")) for f in files])
        with torch.no_grad():
            values = loaded.model.eval()(x)[:, 0].tolist()
        return [dict(file=str(f), brightness=v) for f, v in zip(files, values)]


@pytest.fixture
def brightness_task():
    register_task(BrightnessTask)
    yield BrightnessTask
    TASKS.pop("brightness")


def test_a_fourth_task_trains_evaluates_and_predicts_through_the_interface(brightness_task, tmp_path, capsys):
    assert task_class("brightness") is BrightnessTask
    run = tmp_path / "run"
    results = train(TrainConfig(task="brightness", dataset="ramps", output=str(run), epochs=6, lr=5e-3, **TINY))
    # targets uniform on [0, 1]: always answering 0.5 gives an MAE of 0.25; the model reaches about 0.05
    assert results["test"]["mae"] < 0.12 and results["best_val"]["mae"] < 0.12
    saved = json.loads((run / "best" / "config.json").read_text())
    assert saved["metadata"]["task"] == "brightness" and saved["metadata"]["data"]["split_hashes"]["val"]
    assert main(["eval", str(run), "--split", "val"]) == 0
    metrics = json.loads((run / "eval-ramps-val" / "metrics.json").read_text())
    assert metrics["task"] == "brightness" and metrics["mae"] == pytest.approx(results["best_val"]["mae"], abs=1e-6)
    Image.fromarray(np.full((12, 12), 200, np.uint8)).save(tmp_path / "bright.png")
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "bright.png")]) == 0
    (record,) = json.loads(capsys.readouterr().out)["outputs"]
    assert record["brightness"] == pytest.approx(200 / 255, abs=0.1)


def test_options_of_another_task_are_refused_in_one_line(brightness_task, tmp_path):
    with pytest.raises(ValueError, match="--mixup, --cutmix and --rand-augment apply to classification"):
        train(TrainConfig(task="brightness", dataset="ramps", mixup=0.2, output=str(tmp_path / "r"), **TINY))
    with pytest.raises(ValueError, match="unknown brightness data set 'digits'"):
        train(TrainConfig(task="brightness", dataset="digits", output=str(tmp_path / "r"), **TINY))
    with pytest.raises(ValueError, match="--task must be one of"):
        TrainConfig(task="nosuchtask")


# ----------------------------------------------------------------------------------------------- per class
def test_per_class_subsets_are_balanced_fixed_and_rebuilt_by_eval(tmp_path, capsys):
    from wavemixer.tasks.classification import ClassificationTask

    cfg = TrainConfig(dataset="digits", per_class=20, seed=3)
    data = ClassificationTask(cfg).build_data()
    assert np.bincount(data.train.targets).tolist() == [20] * 10
    assert np.bincount(data.val.targets).tolist() == [2] * 10  # val_fraction 0.1 of train + val, per class
    assert not set(data.train.ids.tolist()) & set(data.val.ids.tolist())
    assert len(data.test) == 359  # whole
    again = ClassificationTask(TrainConfig(dataset="digits", per_class=20, seed=3)).build_data()
    assert data.split_hashes == again.split_hashes
    other = ClassificationTask(TrainConfig(dataset="digits", per_class=20, seed=4)).build_data()
    assert other.split_hashes["train"] != data.split_hashes["train"]
    larger = ClassificationTask(TrainConfig(dataset="digits", per_class=40, seed=3)).build_data()
    assert set(data.train.ids.tolist()) <= set(larger.train.ids.tolist())  # a seed's subsets are nested

    run = tmp_path / "run"
    train(TrainConfig(dataset="digits", per_class=20, seed=3, epochs=1, output=str(run), **TINY))
    assert json.loads((run / "best" / "config.json").read_text())["metadata"]["data"]["per_class"] == 20
    assert main(["eval", str(run), "--split", "val"]) == 0  # the same val split, checked by its fingerprint
    assert json.loads((run / "eval-digits-val" / "metrics.json").read_text())["images"] == 20


def test_per_class_errors(tmp_path):
    from wavemixer.tasks.classification import ClassificationTask

    with pytest.raises(ValueError, match=r"--per-class 200: class \d has \d+ images available, fewer than"):
        ClassificationTask(TrainConfig(dataset="digits", per_class=200)).build_data()
    with pytest.raises(ValueError, match="--subset and --per-class both choose the training images"):
        ClassificationTask(TrainConfig(dataset="digits", per_class=20, subset=100)).build_data()
    with pytest.raises(ValueError, match="--per-class applies to classification, not --task segmentation"):
        train(TrainConfig(task="segmentation", dataset="segfolder", per_class=5, output=str(tmp_path / "r")))


# -------------------------------------------------------------------------------------- segmentation peers
def test_segmentation_trains_a_unet_peer_end_to_end(tmp_path, capsys):
    pytest.importorskip("segmentation_models_pytorch")
    from .test_segmentation_train import make_segfolder

    root = make_segfolder(tmp_path / "seg", n_train=16, n_test=4)
    run = tmp_path / "run"
    argv = ["train", "--task", "segmentation", "--dataset", "segfolder", "--data-dir", str(root), "--model",
            "peer:unet", "--model-arg", "params=72000", "--epochs", "1", "--batch-size", "8", "--threads", "1",
            "--amp", "none", "--output", str(run), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["params"] == 70_911  # the smallest four-level U-Net (width 32, step 16): 60k is refused, 18 % off
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["config"]["family"] == "unet" and config["metadata"]["task"] == "segmentation"
    assert main(["eval", str(run)]) == 0
    (report,) = run.glob("eval-*/metrics.json")
    assert json.loads(report.read_text())["miou"] == results["test"]["miou"]  # fp32 both times: one score
    image = root / "images" / "test" / "000.png"
    assert main(["predict", str(run), str(image), "--output-dir", str(tmp_path / "p")]) == 0
    assert Image.open(tmp_path / "p" / "000_mask.png").size == Image.open(image).size


def test_a_classification_peer_is_refused_for_segmentation(tmp_path, capsys):
    from .test_segmentation_train import make_segfolder

    root = make_segfolder(tmp_path / "seg", n_train=8, n_test=2)
    argv = ["train", "--task", "segmentation", "--dataset", "segfolder", "--data-dir", str(root), "--model",
            "peer:resnet", "--model-arg", "params=40000", "--output", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--model peer:resnet is a classification peer; --task segmentation takes" in err and "peer:unet" in err


# ------------------------------------------------------------------------------------ the data-set tables
def test_every_data_set_a_task_names_has_its_loader_defaults_and_help():
    """A data set added to a task's table without its loader, statistics, model or help fails here, not in a
    user's first run (a bare KeyError, a silently derived normalisation, a misleading 'needs --data-dir')."""
    import dataclasses

    from wavemixer.data.builtin import BUILTIN_LOADERS
    from wavemixer.registry import get_spec

    fields = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}
    help_text = fields["dataset"] + fields["task"]
    for task_name in ("classification", "segmentation", "super_resolution"):
        task = task_class(task_name)
        for name, defaults in task.datasets.items():
            spelled = "emnist_<split>" if name.startswith("emnist_") else name
            assert spelled in help_text, f"--dataset/--task help does not name {task_name} data set {name!r}"
            if defaults["model"] is not None:
                model_task = get_spec(defaults["model"]).task
                assert model_task == task_name, (name, defaults["model"], model_task)
    from wavemixer.tasks.classification import DATASETS

    for name, defaults in DATASETS.items():
        if name == "imagefolder":  # everything derived from the data
            assert all(v is None for v in defaults.values())
            continue
        assert name in BUILTIN_LOADERS, f"classification data set {name!r} has no loader in BUILTIN_LOADERS"
        mean, std = defaults["mean"], defaults["std"]  # else the data's own statistics would be used silently
        assert len(mean) == len(std) in (1, 3) and all(s > 0 for s in std), name


@pytest.mark.parametrize("task_name", ["segmentation", "super_resolution"])
def test_a_data_set_named_without_its_loader_is_one_line(task_name, monkeypatch, tmp_path):
    # before, segmentation read it as a segfolder ("needs --data-dir") and super-resolution as an hrfolder
    table = task_class(task_name).datasets
    monkeypatch.setitem(table, "newset", dict(table["camvid"]))
    config = TrainConfig(task=task_name, dataset="newset", output=str(tmp_path / "run"), **TINY)
    what = task_name.replace("_", "-")
    with pytest.raises(ValueError, match=rf"--dataset newset: {what} has no loader for it \("):
        train(config)


def test_a_task_that_writes_images_must_name_them(brightness_task):
    class ImageWritingTask(BrightnessTask):
        predicts_images = True

    assert BrightnessTask().image_names(None, Path("a.png")) == ()  # writes no files: nothing to name
    with pytest.raises(NotImplementedError, match="ImageWritingTask predicts images: it must name them"):
        ImageWritingTask().image_names(None, Path("a.png"))
