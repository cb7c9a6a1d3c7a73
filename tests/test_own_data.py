"""A user's own images: every common layout, the up-front scan, defaults derived from the data, splits that
belong to the run."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wavemixer.data.scan import scan_folder
from wavemixer.tasks.classification import ClassificationTask
from wavemixer.train import TrainConfig, Trainer, resolve_config, train

CLASSES = ["cat", "dog", "emu"]


def _cfg(**kw) -> TrainConfig:
    return resolve_config(TrainConfig(**kw))


def _colour_image(rng, c: int, size: int = 16) -> Image.Image:
    img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    img[..., c] += 180  # the class is the dominant colour
    return Image.fromarray(img)


def _glyph_image(rng, c: int, size: int = 28) -> Image.Image:
    """A white bar on black whose position is the class: grayscale, glyph-like."""
    img = np.zeros((size, size), dtype=np.uint8)
    col = 4 + 8 * c + int(rng.integers(0, 3))
    img[4:-4, col : col + 3] = 255
    return Image.fromarray(img, mode="L")


def _class_folders(root: Path, per_class: int = 20, make=_colour_image, **kw) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            make(rng, c, **kw).save(root / name / f"{i:03d}.png")
    return root


# -------------------------------------------------------------------------------------------- layouts
def test_class_folder_layout_is_split_with_the_seed(tmp_path):
    root = _class_folders(tmp_path / "flat")
    data = ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(root))).build_data()
    assert data.info.labels == CLASSES and data.info.in_chans == 3
    assert (len(data.train), len(data.val), len(data.test)) == (49, 5, 6)  # 60 images: 10 % test, 10 % of the rest val
    other = ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(root), seed=5)).build_data()
    assert set(other.test.ids) == set(data.test.ids), "a carved test split must not move with --seed"
    assert set(other.val.ids) != set(data.val.ids)
    assert any("found 3 classes (class folders)" in n for n in data.notes)


def test_zip_symlinks_and_manifests(tmp_path):
    root = _class_folders(tmp_path / "flat", per_class=10)
    with zipfile.ZipFile(tmp_path / "flat.zip", "w") as z:  # a zip with a wrapping folder
        for p in sorted(root.rglob("*.png")):
            z.write(p, "mydata/" + p.relative_to(root).as_posix())
    linked = tmp_path / "linked"
    linked.mkdir()
    for name in CLASSES:
        os.symlink(root / name, linked / name, target_is_directory=True)
    os.symlink(linked, linked / "cat" / "loop", target_is_directory=True)  # a cycle is walked once
    rows = [(f"flat/{p.parent.name}/{p.name}", p.parent.name) for p in sorted(root.rglob("*.png"))]
    (tmp_path / "m.csv").write_text("path,label\n" + "".join(f"{f},{c}\n" for f, c in rows))
    (tmp_path / "m.json").write_text(json.dumps([{"path": f, "label": c} for f, c in rows]))
    for src in ("flat.zip", "linked", "m.csv", "m.json"):
        data = ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(tmp_path / src))).build_data()
        assert data.info.labels == CLASSES, src
        assert len(data.train) + len(data.val) + len(data.test) == 30, src


def test_manifest_errors_are_one_line(tmp_path):
    (tmp_path / "bad.csv").write_text("file,class\na.png,cat\n")
    with pytest.raises(ValueError, match="path,label"):
        ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(tmp_path / "bad.csv"))).build_data()


# ------------------------------------------------------------------------------------- up-front scan
def test_colour_mode_and_size_come_from_the_whole_set(tmp_path):
    root = _class_folders(tmp_path / "mixed", per_class=6)
    Image.new("L", (16, 16), 128).save(root / "cat" / "000.png")  # grayscale and sorted first
    Image.new("RGB", (24, 20), (255, 0, 0)).save(root / "dog" / "000.png")  # another size
    Image.new("RGB", (24, 20), (255, 0, 0)).save(root / "dog" / "001.png")
    scan = scan_folder(root)
    assert scan.color_mode == "RGB" and scan.modes == {"L": 1, "RGB": 17}
    assert scan.size == (16, 16)  # median height and width
    assert any("colour mode RGB because 17 of 18" in n for n in scan.notes)
    assert any("resized to 16x16" in n for n in scan.notes)
    gray = _class_folders(tmp_path / "gray", per_class=4, make=_glyph_image)
    assert scan_folder(gray).color_mode == "L"


def test_corrupt_files_are_reported_together_and_can_be_skipped(tmp_path):
    root = _class_folders(tmp_path / "c", per_class=8)
    (root / "dog" / "005.png").write_bytes(b"not a png")
    (root / "emu" / "007.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ValueError, match="2 of 24 images") as err:
        ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(root))).build_data()
    assert "dog/005.png" in str(err.value) and "emu/007.png" in str(err.value) and "--skip-corrupt" in str(err.value)
    data = ClassificationTask(_cfg(dataset="imagefolder", data_dir=str(root), skip_corrupt=True)).build_data()
    assert len(data.train) + len(data.val) + len(data.test) == 22
    assert any("skipped 2 unreadable" in n for n in data.notes)


# ------------------------------------------------------------------------------ data-derived defaults
def test_defaults_follow_the_data(tmp_path):
    gray = _class_folders(tmp_path / "glyphs", per_class=10, make=_glyph_image)
    cfg = _cfg(dataset="imagefolder", data_dir=str(gray))
    data = ClassificationTask(cfg).build_data()
    d = data.derived
    assert d["hflip"] is False and d["trivial_augment"] is False  # glyphs: no mirror images
    assert d["model"] == "wavemix_lite_16_7_s2_cifar10" and d["model_args"] == {"final_dim": 8}  # 28 px, few images
    assert d["lr"] == 1e-2  # the contest's tuned rate for the efficient WaveMix cells
    assert d["epochs"] == 30 and d["crop_padding"] == 2  # few images: the most epochs; 28 px: pad 2
    # every glyph is 60 white pixels of 784, whichever images the split keeps: p = 60/784, std sqrt(p(1 - p))
    p = 60 / 784
    assert data.info.mean[0] == pytest.approx(p, abs=1e-3)  # the data's own, not ImageNet's
    assert data.info.std[0] == pytest.approx((p * (1 - p)) ** 0.5, abs=1e-3)
    assert all(n.startswith(("chose", "found", "no test")) for n in data.notes)
    colour = ClassificationTask(
        _cfg(dataset="imagefolder", data_dir=str(_class_folders(tmp_path / "photos")))
    ).build_data()
    assert colour.derived["hflip"] is True and colour.derived["model_args"] == {"stride": 1, "final_dim": 8}  # 16 px
    explicit = ClassificationTask(
        _cfg(dataset="imagefolder", data_dir=str(gray), hflip=True, epochs=2, model="x", lr=3e-3)
    ).build_data()
    assert not {"hflip", "epochs", "model", "model_args", "lr"} & set(explicit.derived)  # every choice overridable


def test_only_the_data_rules_model_gets_the_contest_learning_rate(tmp_path):
    root = str(_class_folders(tmp_path / "photos"))
    assert _cfg(dataset="imagefolder", data_dir=root).lr is None  # decided with the model, from the data
    given = ClassificationTask(_cfg(dataset="imagefolder", data_dir=root, model="wavemix_lite_8_10_mnist"))
    assert given.cfg.lr == 2e-3 and "lr" not in given.build_data().derived  # a chosen model: the recipe's rate
    derived = ClassificationTask(_cfg(dataset="imagefolder", data_dir=root)).build_data()
    assert derived.derived["lr"] == 1e-2
    assert any(n.startswith("chose learning rate 0.01 because the contest") for n in derived.notes)
    sgd = ClassificationTask(_cfg(dataset="imagefolder", data_dir=root, opt="sgd")).build_data()
    assert sgd.derived["lr"] == 0.05  # the contest tuned AdamW with the standard recipe only
    dualopt = ClassificationTask(_cfg(dataset="imagefolder", data_dir=root, recipe="dualopt")).build_data()
    assert dualopt.derived["lr"] == 1e-3 and not any("learning rate" in n for n in dualopt.notes)
    digits = _cfg()
    assert digits.lr == 2e-3  # built-in data sets keep their recipe
    unresolved = Trainer(
        TrainConfig(dataset="digits", model="wavemix_lite_8_10_mnist", epochs=1, threads=1), out=io.StringIO()
    )
    assert unresolved.cfg.lr == 2e-3  # an API caller's config without resolve_config still gets a rate


def test_large_images_are_resized_and_the_run_records_its_choices(tmp_path):
    root = _class_folders(tmp_path / "big", per_class=6, size=100)
    out = tmp_path / "log.txt"
    with open(out, "w") as f:
        results = train(
            TrainConfig(
                dataset="imagefolder", data_dir=str(root), epochs=1, batch_size=8, threads=1,
                model_args={"depth": 1}, output=str(tmp_path / "run"),
            ),
            out=f,
        )  # fmt: skip
    log = out.read_text().splitlines()
    assert log[0].startswith("precision ")
    assert any("chose input size 64x64" in line for line in log)
    import yaml

    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"] == "wavemix_lite_16_7_s2_cifar10" and saved["model_args"] == {"depth": 1, "final_dim": 8}
    assert saved["lr"] == 1e-2
    assert saved["hflip"] is True and results["epochs"] == 1
    pre = json.loads((tmp_path / "run" / "best" / "config.json").read_text())["preprocessing"]
    assert pre["input_size"] == [3, 64, 64] and pre["mean"] != [0.485, 0.456, 0.406]


# ------------------------------------------------------------------------------------------- splits
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_val_and_test_never_overlap_train(tmp_path, seed):
    digits = ClassificationTask(_cfg(seed=seed)).build_data()
    folder = ClassificationTask(
        _cfg(dataset="imagefolder", data_dir=str(_class_folders(tmp_path / "f")), seed=seed)
    ).build_data()
    for data in (digits, folder):
        train_ids = {str(i) for i in data.train.ids}
        val_ids = {str(i) for i in data.val.ids}
        assert not train_ids & val_ids
        if data is folder:
            assert not (train_ids | val_ids) & {str(i) for i in data.test.ids}
    assert len(set(digits.train.ids.tolist())) == len(digits.train)


def test_model_width_follows_the_data_set_size():
    from wavemixer.data.defaults import width_for as _width_for

    assert [_width_for(n)[0] for n in (500, 1_999, 2_000, 45_000, 99_999, 100_000, 600_000)] == [
        8, 8, 16, 16, 16, 32, 32
    ]  # fmt: skip
