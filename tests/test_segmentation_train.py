"""Segmentation task: standard metrics with void ignored, joint augmentation, data sets, CLI, init-from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wavemixer.cli import main
from wavemixer.constants import IGNORE_INDEX
from wavemixer.data.bundle import DataInfo
from wavemixer.data.masks import SegArrayDataset
from wavemixer.data.transforms import SegmentationTransform as JointTransform
from wavemixer.factory import create_model
from wavemixer.loading import load_encoder_weights
from wavemixer.tasks.segmentation import SegmentationTask, colorize, predict_segmentation
from wavemixer.train.config import TrainConfig

COLORS = np.array([(20, 20, 20), (220, 40, 40), (40, 200, 60)], dtype=np.uint8)
TINY = ["--model-arg", "final_dim=16", "--model-arg", "depth=1", "--threads", "1", "--quiet"]


def _info(n: int = 3) -> DataInfo:
    return DataInfo("t", n, [f"c{i}" for i in range(n)], 3, (8, 8), (0.5,) * 3, (0.25,) * 3)


def _metrics(task: SegmentationTask, logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    m = task.make_metrics(_info(logits.shape[1]), torch.device("cpu"))
    task.update_metrics(m, logits, target)
    return task.compute_metrics(m)


def _scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Rectangles whose colour is their class (plus noise), a void band at the bottom."""
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(3):
        c = int(rng.integers(1, 3))
        y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
        mask[y : y + int(rng.integers(6, h // 2)), x : x + int(rng.integers(6, w // 2))] = c
    img = COLORS[mask].astype(np.int16) + rng.integers(-25, 26, (h, w, 3))
    mask[-3:] = IGNORE_INDEX
    img[-3:] = rng.integers(0, 256, (3, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), mask


def make_segfolder(root: Path, n_train: int = 32, n_test: int = 8, h: int = 31, w: int = 45) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("background\nred\ngreen\n")
    for split, n in (("train", n_train), ("val", n_test), ("test", n_test)):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(n):
            img, mask = _scene(rng, h, w)
            Image.fromarray(img).save(root / "images" / split / f"{i:03d}.png")
            Image.fromarray(mask, mode="L").save(root / "masks" / split / f"{i:03d}.png")
    return root


def _cfg(**kw):
    base = dict(dataset="segfolder", data_dir=None, trivial_augment=False, hflip=True, input_size=None, subset=None,
                val_fraction=0.25, seed=0)  # fmt: skip
    return TrainConfig(task="segmentation", **{**base, **kw})


def build_segmentation_datasets(cfg: TrainConfig):
    return SegmentationTask(cfg).build_data()


# ------------------------------------------------------------------------------------------------ metric
def test_miou_is_the_standard_per_class_iou():
    task = SegmentationTask()
    target = torch.tensor([[0, 0, 1, 1, 2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1, 2, 0, 2, 1]])
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 2, 1).float()[..., None]  # B×C×H×W with W=1
    out = _metrics(task, logits, target[..., None])
    # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: TP 1, FN 1 -> 1/2 (void pixels excluded)
    assert out["iou_c0"] == pytest.approx(100 / 3)
    assert out["iou_c1"] == pytest.approx(200 / 3)
    assert out["iou_c2"] == pytest.approx(50)
    assert out["miou"] == pytest.approx((100 / 3 + 200 / 3 + 50) / 3)
    assert out["pixel_acc"] == pytest.approx(100 * 4 / 6)


def test_void_pixels_are_really_ignored_by_metrics_and_loss():
    task = SegmentationTask()
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (2, 17, 23), generator=g)
    target[:, :5] = IGNORE_INDEX
    logits = torch.randn(2, 5, 17, 23, generator=g)
    flipped = logits.clone()
    void = (target == IGNORE_INDEX).unsqueeze(1).expand_as(logits)
    flipped[void] = -flipped[void] * 7 + 3  # different predictions on every void pixel
    assert not torch.equal(logits.argmax(1)[target == IGNORE_INDEX], flipped.argmax(1)[target == IGNORE_INDEX])
    assert _metrics(task, logits, target) == _metrics(task, flipped, target)
    assert float(task.loss(logits, target)) == pytest.approx(float(task.loss(flipped, target)))
    all_void = torch.full_like(target, IGNORE_INDEX)
    assert float(task.loss(logits.requires_grad_(), all_void).detach()) == 0.0


def test_absent_classes_do_not_count_in_the_mean():
    task = SegmentationTask()
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 4, 4, 4)
    logits[:, 0] = 1
    out = _metrics(task, logits, target)
    assert out["miou"] == pytest.approx(100.0) and np.isnan(out["iou_c3"])


# --------------------------------------------------------------------------------------------- transforms
def test_joint_augmentation_keeps_image_and_mask_aligned():
    torch.manual_seed(0)
    mask = torch.zeros(40, 56, dtype=torch.long)
    for k, (y, x) in enumerate([(2, 3), (20, 30), (10, 40)]):
        mask[y : y + 12, x : x + 14] = k + 1
    img = torch.from_numpy(COLORS[np.minimum(mask.numpy(), 2)]).permute(2, 0, 1).contiguous()
    img[2] = (mask * 60).to(torch.uint8)  # channel 2 encodes the class exactly
    tf = JointTransform((0.0,) * 3, (1 / 255,) * 3, train=True, crop_size=(32, 32), hflip=True)
    for _ in range(30):
        x, y = tf(img, mask)
        assert x.shape == (3, 32, 32) and y.shape == (32, 32)
        valid = y != IGNORE_INDEX
        decoded = (x[2] / 60).round().long()
        agree = (decoded[valid] == y[valid]).float().mean()
        assert agree > 0.9  # only bilinear edges of the image may disagree with the nearest-neighbour mask
        assert set(torch.unique(y).tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}  # nearest: no new label values
    exact = JointTransform((0.0,) * 3, (1 / 255,) * 3, train=True, crop_size=(24, 24), scale_range=None, hflip=True)
    for _ in range(10):  # crop + flip without rescaling is exact
        x, y = exact(img, mask)
        assert torch.equal((x[2] / 60).round().long(), y)


def test_eval_transform_is_deterministic_and_keeps_size():
    img = torch.randint(0, 256, (3, 33, 47), dtype=torch.uint8)
    mask = torch.randint(0, 3, (33, 47))
    tf = JointTransform((0.5,) * 3, (0.2,) * 3)
    a, b = tf(img, mask), tf(img, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[1], mask)
    assert a[0].shape == (3, 33, 47)


@pytest.mark.parametrize("size", [(31, 45), (37, 53), (64, 96)])
@pytest.mark.parametrize("name", ["wavemix_seg_64_6_l2_camvid", "wavemix_lite_seg_128_8"])
def test_output_size_equals_input_size_for_odd_sizes(name, size):
    model = create_model(name, final_dim=16, depth=1, num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 5, *size)


# ----------------------------------------------------------------------------------------------- inputs
def test_bad_inputs_get_clear_errors(tmp_path):
    tf = JointTransform((0.5,) * 3, (0.2,) * 3)
    with pytest.raises(ValueError, match="mask must have exactly the size"):
        tf(torch.zeros(3, 10, 12, dtype=torch.uint8), torch.zeros(10, 11, dtype=torch.long))
    with pytest.raises(ValueError, match=r"label value\(s\) \[7\] are outside 0..2"):
        SegArrayDataset(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.full((1, 4, 4), 7), ["a"], 3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_segmentation_datasets(_cfg(data_dir=str(tmp_path / "missing")))
    root = make_segfolder(tmp_path / "seg", n_train=2, n_test=1)
    (root / "classes.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"classes\.txt"):
        build_segmentation_datasets(_cfg(data_dir=str(root)))
    (root / "classes.txt").write_text("a\nb\n")  # 2 classes, masks hold 0..2 -> label 2 out of range
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        data = build_segmentation_datasets(_cfg(data_dir=str(root)))
        for i in range(len(data.train)):
            data.train[i]
    (root / "classes.txt").write_text("a\nb\nc\n")
    Image.fromarray(np.zeros((30, 45), np.uint8)).save(root / "masks" / "train" / "000.png")
    with pytest.raises(ValueError, match="a mask must have exactly the size of its image"):
        build_segmentation_datasets(_cfg(data_dir=str(root))).train[0]
    (root / "masks" / "train" / "001.png").unlink()
    with pytest.raises(ValueError, match="have no mask of the same name"):
        build_segmentation_datasets(_cfg(data_dir=str(root)))
    with pytest.raises(ValueError, match="unknown segmentation data set"):
        build_segmentation_datasets(_cfg(dataset="voc"))


def test_a_mask_that_fails_in_a_loader_worker_is_one_line(tmp_path, capsys):
    """A mask that does not decode fails mid-epoch, inside a DataLoader worker process, which torch re-raises
    with the worker's whole traceback as its message; the command line printed all of it."""
    root = make_segfolder(tmp_path / "seg", n_train=4, n_test=2)
    (root / "masks" / "train" / "002.png").write_bytes(b"not a png")
    data = ["--task", "segmentation", "--dataset", "segfolder", "--data-dir", str(root)]
    run = ["--workers", "1", "--epochs", "1", "--batch-size", "2", "--threads", "1", "--quiet"]
    code = main(["train", *data, *run, "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    mask = root / "masks" / "train" / "002.png"
    assert err == f"wavemixer train: error: cannot read mask {mask} (not an image format Pillow can read)", err


# -------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def seg_run(tmp_path_factory) -> tuple[Path, Path]:
    root = make_segfolder(tmp_path_factory.mktemp("segdata"))
    run = tmp_path_factory.mktemp("segrun") / "run"
    args = ["train", "--task", "segmentation", "--dataset", "segfolder", "--data-dir", str(root), *TINY, "--epochs",
            "8", "--batch-size", "8", "--eval-batch-size", "8", "--lr", "1e-2", "--output", str(run)]  # fmt: skip
    assert main(args) == 0
    return root, run


def test_short_run_learns_better_than_the_untrained_model(seg_run):
    root, run = seg_run
    results = json.loads((run / "results.json").read_text())
    data = build_segmentation_datasets(_cfg(data_dir=str(root)))
    task = SegmentationTask()
    torch.manual_seed(0)
    untrained = create_model("wavemix_seg_64_6_l2_camvid", final_dim=16, depth=1, num_classes=3).eval()
    metrics = task.make_metrics(data.info, torch.device("cpu"))
    with torch.no_grad():
        for i in range(len(data.test)):
            x, y = data.test[i]
            task.update_metrics(metrics, untrained(x[None]), y[None])
    before = task.compute_metrics(metrics)["miou"]
    assert results["test"]["miou"] > before + 20
    assert results["test"]["miou"] > 75  # about 83 here, from 13 untrained
    assert set(results["test"]) >= {"miou", "pixel_acc", "iou_background", "iou_red", "iou_green"}
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["task"] == "segmentation" and config["labels"] == ["background", "red", "green"]
    assert config["preprocessing"]["ignore_index"] == IGNORE_INDEX


def test_eval_and_predict_cli(seg_run, tmp_path, capsys):
    root, run = seg_run
    assert main(["eval", str(run), "--data-dir", str(root)]) == 0
    metrics = json.loads((run / "eval-segfolder-test" / "metrics.json").read_text())
    results = json.loads((run / "results.json").read_text())
    assert metrics["miou"] == results["test"]["miou"]  # one model, one score: eval and training's test in fp32
    img = root / "images" / "test" / "000.png"
    assert main(["predict", str(run), str(img), "--output-dir", str(tmp_path / "pred")]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index('{\n  "model"') :])["task"] == "segmentation"
    for kind in ("mask", "overlay", "labels"):
        with Image.open(tmp_path / "pred" / f"000_{kind}.png") as im:
            assert im.size == (45, 31)
    labels = np.asarray(Image.open(tmp_path / "pred" / "000_labels.png"))
    color = np.asarray(Image.open(tmp_path / "pred" / "000_mask.png"))
    palette = json.loads((run / "best" / "config.json").read_text())["preprocessing"]["palette"]
    assert np.array_equal(color, colorize(labels, palette))
    truth = np.asarray(Image.open(root / "masks" / "test" / "000.png"))
    scored = truth != IGNORE_INDEX
    assert (labels[scored] == truth[scored]).mean() > 0.85  # the predicted classes are right (about 94 %)


def test_predict_refuses_or_skips_unreadable_images(seg_run, tmp_path, capsys):
    """An unreadable input is named before anything is written; with --skip-corrupt the others are predicted."""
    root, run = seg_run
    img, bad = root / "images" / "test" / "000.png", tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "pred"
    assert main(["predict", str(run), str(img), str(bad), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wavemixer predict: error: 1 of 2 images cannot be read: ") and str(bad) in err
    assert "\n" not in err and not list(out.glob("*.png"))
    assert main(["predict", str(run), str(img), str(bad), "--output-dir", str(out), "--skip-corrupt"]) == 0
    assert f"skipped 1 unreadable image(s) (--skip-corrupt): {bad}" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")) == ["000_labels.png", "000_mask.png", "000_overlay.png"]


def test_init_from_a_classifier_loads_the_encoder(tmp_path):
    from wavemixer.hub import save_pretrained

    clf = create_model("wavemix_lite_64_6_cifar10", depth=2, stem="strided", stride=2, level=2)
    save_pretrained(clf, tmp_path / "clf", model_name="wavemix_lite_64_6_cifar10")
    seg = create_model("wavemix_seg_64_6_l2_camvid", depth=2)
    loaded = load_encoder_weights(seg, tmp_path / "clf")
    assert loaded and all(k.startswith(("stem.", "blocks.")) for k in loaded)
    for k in loaded:
        assert torch.equal(seg.state_dict()[k], clf.state_dict()[k])
    wrong = create_model("wavemix_seg_64_6_l2_camvid", depth=2, final_dim=32)
    with pytest.raises(ValueError, match="final_dim/level/stem/in_chans must match"):
        load_encoder_weights(wrong, tmp_path / "clf")
    with pytest.raises(FileNotFoundError):
        load_encoder_weights(seg, tmp_path / "nothing-here")


def test_predict_segmentation_writes_masks_for_odd_sizes(tmp_path):
    model = create_model("wavemix_seg_64_6_l2_camvid", final_dim=16, depth=1, num_classes=3)
    Image.fromarray(np.zeros((29, 41, 3), np.uint8)).save(tmp_path / "a.jpg")
    (rec,) = predict_segmentation(model, [tmp_path / "a.jpg"], tmp_path / "out", labels=["x", "y", "z"])
    assert Image.open(rec["overlay"]).size == (41, 29)
    assert abs(sum(rec["fractions"].values()) - 1) < 0.01


# ------------------------------------------------------------------------------------------ real CamVid
def test_camvid_npz_is_read_with_void_ignored(shared_data):
    data = build_segmentation_datasets(_cfg(dataset="camvid", data_dir=str(shared_data / "CamVid")))
    assert (len(data.train), len(data.val), len(data.test)) == (367, 101, 233)
    assert data.info.num_classes == 11 and data.info.labels[0] == "Sky"
    values = set(torch.unique(data.test.masks).tolist())
    assert values <= set(range(11)) | {IGNORE_INDEX} and IGNORE_INDEX in values
    x, y = data.test[0]
    assert x.shape == (3, 180, 240) and y.shape == (180, 240)


def test_cityscapes_ids_map_to_the_19_train_ids(tmp_path):
    for split in ("train", "val"):
        (tmp_path / "leftImg8bit" / split / "aachen").mkdir(parents=True)
        (tmp_path / "gtFine" / split / "aachen").mkdir(parents=True)
        stem = f"aachen_000000_00001{len(split)}"
        Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(
            tmp_path / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png"
        )
        ids = np.array([[7, 26, 0, 33, 1, 24]], dtype=np.uint8).repeat(8, 0).repeat(2, 1)  # road car void bike ...
        Image.fromarray(ids).save(tmp_path / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelIds.png")
    data = build_segmentation_datasets(_cfg(dataset="cityscapes", data_dir=str(tmp_path), val_fraction=0.5))
    assert data.info.num_classes == 19 and data.info.labels[0] == "road" and data.test is None
    _, mask = data.val[0]
    assert mask[0, ::2].tolist() == [0, 13, IGNORE_INDEX, 18, IGNORE_INDEX, 11]


def test_camvid_segnet_folder_layout(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (18, 24, 3), dtype=np.uint8)).save(tmp_path / split / f"f{i}.png")
            Image.fromarray(np.full((18, 24), 11 if i else 3, np.uint8)).save(tmp_path / f"{split}annot" / f"f{i}.png")
    data = build_segmentation_datasets(_cfg(dataset="camvid", data_dir=str(tmp_path)))
    assert (len(data.train), len(data.val), len(data.test)) == (2, 2, 2)
    assert set(data.test[0][1].unique().tolist()) == {3} and set(data.test[1][1].unique().tolist()) == {IGNORE_INDEX}
