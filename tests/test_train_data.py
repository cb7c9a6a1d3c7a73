"""Data sets: real offline copies (tiny subsets), image folders and zips, and clear errors."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wavemixer.data.transforms import Preprocess
from wavemixer.tasks.classification import ClassificationTask
from wavemixer.train import TrainConfig, train


def _cfg(**kw) -> TrainConfig:
    from wavemixer.train import resolve_config

    return resolve_config(TrainConfig(**kw))


def _write_folder(root: Path, splits=("train", "val", "test"), per_class=12, size=12) -> None:
    rng = np.random.default_rng(0)
    for split in splits:
        for c, name in enumerate(["cat", "dog", "emu"]):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                img[..., c] += 180  # the class is the dominant colour
                Image.fromarray(img).save(d / f"{i}.png")


@pytest.mark.slow  # a training reproduction; tests/test_training_golden.py trains on MNIST in the default run
def test_mnist_subset_trains_well_above_chance(shared_data, tmp_path):
    results = train(
        TrainConfig(
            dataset="mnist",
            data_dir=str(shared_data),
            subset=2000,
            epochs=4,
            lr=5e-3,
            batch_size=64,
            model="wavemix_lite_32_7_cifar10_tiny",
            model_args={"depth": 2},
            threads=1,
            output=str(tmp_path / "m"),
            quiet=True,
        )
    )
    assert results["params"] < 40_000
    assert results["test"]["top1"] > 35.0  # chance is 10 %; 125 steps on 2,000 images


def test_fashion_mnist_and_cifar10_zip_load(shared_data):
    data = ClassificationTask(_cfg(dataset="fashion_mnist", data_dir=str(shared_data), subset=200)).build_data()
    assert data.info.labels[9] == "Ankle boot" and data.info.in_chans == 1 and len(data.train) == 200
    x, y = data.train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= y < 10
    full = ClassificationTask(_cfg(dataset="mnist", data_dir=str(shared_data))).build_data()
    assert (len(full.train), len(full.val), len(full.test)) == (54_000, 6_000, 10_000)
    zip_path = shared_data / "CIFAR10" / "cifar10_jpeg_q75_imagefolder.zip"
    c = ClassificationTask(_cfg(dataset="cifar10", data_dir=str(zip_path), subset=100)).build_data()
    assert c.info.labels == sorted(c.info.labels) and "airplane" in c.info.labels and c.info.in_chans == 3
    assert c.train[0][0].shape == (3, 32, 32) and len(c.test) == 25


def test_imagefolder_tree_and_zip_train(tmp_path):
    _write_folder(tmp_path / "tree")
    with zipfile.ZipFile(tmp_path / "tree.zip", "w") as z:
        for p in sorted((tmp_path / "tree").rglob("*.png")):
            z.write(p, "pets/" + p.relative_to(tmp_path / "tree").as_posix())
    for src in ("tree", "tree.zip"):
        data = ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(tmp_path / src), input_size=16)).build_data()
        assert data.info.labels == ["cat", "dog", "emu"]
        assert (len(data.train), len(data.val), len(data.test)) == (36, 36, 36)  # own val split is used
        assert data.train[0][0].shape == (3, 16, 16)
    results = train(
        TrainConfig(
            dataset="imagefolder",
            data_dir=str(tmp_path / "tree.zip"),
            input_size=16,
            model="wavemix_lite_32_7_cifar10_tiny",
            model_args={"depth": 1},
            epochs=3,
            batch_size=12,
            workers=0,
            output=str(tmp_path / "run"),
            quiet=True,
        )
    )
    assert results["test"]["top1"] >= 90.0  # colour-coded classes (100 % here); chance is 33 %


def test_bad_data_inputs_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download"):
        ClassificationTask(_cfg(dataset="mnist", data_dir=str(tmp_path))).build_data()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(tmp_path / "missing"))).build_data()
    (tmp_path / "empty" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images found"):
        ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(tmp_path / "empty"))).build_data()
    with pytest.raises(ValueError, match="needs --data-dir"):
        ClassificationTask(_cfg(dataset="imagefolder")).build_data()
    with pytest.raises(ValueError, match="unknown data set"):
        _cfg(dataset="mnistt")
    _write_folder(tmp_path / "one_each", splits=("all",), per_class=1, size=8)  # 3 classes, one image each
    with pytest.raises(ValueError, match=r"training split holds 1 image\(s\) of 1 class after the val and test "
                                         r"splits; classification needs at least 2 classes"):  # fmt: skip
        ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(tmp_path / "one_each" / "all"))).build_data()


def test_statistics_of_a_single_image_have_no_spread_and_no_warning():
    from wavemixer.data.datasets import ArrayDataset
    from wavemixer.data.defaults import image_statistics

    one = ArrayDataset(torch.full((1, 3, 8, 8), 128, dtype=torch.uint8), torch.zeros(1, dtype=torch.long))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "degrees of freedom <= 0" must not reach the user
        stats = image_statistics(one, (8, 8))
    assert stats["std"] == (0.001, 0.001, 0.001) and stats["input_stats"]["sigma"] == [0.001] * 6


def test_preprocess_augments_only_in_training():
    img = torch.arange(64, dtype=torch.uint8).view(1, 8, 8)
    plain = Preprocess((0.0,), (1.0,))
    assert torch.equal(plain(img), img.float() / 255)
    aug = Preprocess((0.0,), (1.0,), train=True, crop_padding=2, hflip=True)
    outs = {tuple(aug(img).flatten().tolist()) for _ in range(20)}
    padded = torch.nn.functional.pad(img.float() / 255, (2, 2, 2, 2))  # every 8x8 crop of it, either way round
    crops = [padded[:, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
    candidates = {tuple(c.flatten().tolist()) for crop in crops for c in (crop, crop.flip(-1))}
    assert len(outs) > 1 and outs <= candidates
    assert Preprocess((0.0,), (1.0,), (4, 4))(img).shape == (1, 4, 4)


def test_gzipped_idx_files_are_decompressed_into_the_cache_not_beside_them(shared_data, tmp_path, monkeypatch):
    from wavemixer.data.builtin import load_builtin, mnist_family_root

    monkeypatch.setenv("WAVEMIXER_DATA", str(tmp_path / "cache"))
    before = sorted(p.name for p in (shared_data / "MNIST" / "raw").iterdir())
    root = mnist_family_root("mnist", shared_data)
    assert root is not None and root.is_relative_to(tmp_path / "cache")
    assert sorted(p.name for p in (shared_data / "MNIST" / "raw").iterdir()) == before
    xtr, _, xte, _, labels = load_builtin("mnist", shared_data, download=False)
    assert xtr.shape == (60_000, 1, 28, 28) and xte.dtype == torch.uint8 and labels[3] == "3"
    assert mnist_family_root("mnist", shared_data) == root  # decompressed once
    assert mnist_family_root("kmnist", shared_data) is None  # not there: the caller says what to do
