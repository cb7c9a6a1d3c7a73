"""Super-resolution task: the bicubic-LR protocol, PSNR/SSIM on Y with border crop, data sets, CLI, learning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wavemixer.cli import main
from wavemixer.data.hr_images import bicubic_downscale, bicubic_upscale, rgb_to_y
from wavemixer.factory import create_model
from wavemixer.tasks.super_resolution import SRDataInfo, SuperResolutionTask, predict_super_resolution, psnr_y
from wavemixer.train.config import TrainConfig

TINY = ["--model-arg", "final_dim=16", "--model-arg", "depth=1", "--threads", "1", "--quiet"]


def _pattern(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Mid-frequency waves plus sharp-edged rectangles: detail that bicubic upsampling blurs."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.full((h, w, 3), 0.5)
    for _ in range(3):
        fy, fx = rng.uniform(-0.2, 0.2, 2)
        img += 0.12 * np.sin(2 * np.pi * (fy * yy + fx * xx) + rng.uniform(0, 6.3))[..., None] * rng.uniform(0.3, 1, 3)
    for _ in range(4):
        y, x = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
        img[y : y + int(rng.integers(4, h // 2)), x : x + int(rng.integers(4, w // 2))] += rng.uniform(-0.3, 0.3, 3)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def make_hr_folder(root: Path, n: int = 24, h: int = 48, w: int = 64, splits: bool = True) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        split = ("train", "train", "val", "test")[i % 4] if splits else ""
        (root / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(_pattern(rng, h, w)).save(root / split / f"{i:03d}.png")
    return root


def _cfg(**kw):
    base = dict(dataset="hrfolder", data_dir=None, trivial_augment=False, hflip=True, input_size=32, subset=None,
                val_fraction=0.25, seed=0, model="wavemix_sr_64_4_x2_residual", model_args={},
                eval_batch_size=4)  # fmt: skip
    return TrainConfig(task="super_resolution", **{**base, **kw})


def build_super_resolution_datasets(cfg: TrainConfig):
    return SuperResolutionTask(cfg).build_data()


def _metrics(task: SuperResolutionTask, out: torch.Tensor, hr: torch.Tensor, scale: int = 2) -> dict[str, float]:
    info = SRDataInfo("t", 0, [], 3, (8, 8), (0.0,) * 3, (1.0,) * 3, scale=scale)
    m = task.make_metrics(info, torch.device("cpu"))
    task.update_metrics(m, out, hr)
    return task.compute_metrics(m)


# ------------------------------------------------------------------------------------------- protocol
def test_lr_is_antialiased_bicubic_rounded_to_8_bits():
    hr = torch.rand(2, 3, 24, 36)
    lr = bicubic_downscale(hr, 2)
    assert lr.shape == (2, 3, 12, 18) and lr.min() >= 0 and lr.max() <= 1
    assert torch.equal(lr, (lr * 255).round() / 255)
    # the independent reference: PIL's antialiased bicubic on the same 8-bit image (differs by at most 2 levels)
    hr8 = torch.randint(0, 256, (1, 3, 48, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pil = Image.fromarray(hr8[0].permute(1, 2, 0).numpy()).resize((32, 24), Image.BICUBIC, reducing_gap=None)
    ref = torch.from_numpy(np.array(pil)).permute(2, 0, 1)[None].float() / 255
    assert torch.allclose(bicubic_downscale(hr8.float() / 255, 2), ref, atol=2 / 255 + 1e-6)
    flat = torch.full((1, 3, 16, 16), 0.4)
    assert torch.allclose(bicubic_downscale(flat, 4), torch.full((1, 3, 4, 4), round(0.4 * 255) / 255))
    with pytest.raises(ValueError, match="not a multiple of the scale"):
        bicubic_downscale(torch.rand(1, 3, 25, 36), 2)


def test_y_channel_is_bt601():
    rgb = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 3)
    y = rgb_to_y(rgb).flatten() * 255
    assert y.tolist() == pytest.approx([16.0, 235.0, 16 + 65.481], abs=1e-4)


def test_border_of_width_scale_is_excluded_and_psnr_matches_the_formula():
    task = SuperResolutionTask()
    hr = (torch.rand(2, 3, 20, 24) * 255).round() / 255
    out = hr.clone()
    out[..., :2, :] = 1 - out[..., :2, :]  # damage only the 2-pixel border
    out[..., :, -2:] = 0
    assert _metrics(task, out, hr)["psnr"] == float("inf")
    assert _metrics(task, out, hr)["ssim"] == pytest.approx(1.0)
    noisy = (hr + 0.02 * torch.randn_like(hr)).clamp(0, 1)
    got = _metrics(task, noisy, hr)["psnr"]
    q = lambda t: (t * 255).round() / 255  # noqa: E731
    per_image = [10 * torch.log10(1 / (rgb_to_y(q(noisy[i : i + 1])) - rgb_to_y(hr[i : i + 1]))[..., 2:-2, 2:-2]
                 .pow(2).mean()) for i in range(2)]  # fmt: skip
    assert got == pytest.approx(float(torch.stack(per_image).mean()), abs=1e-3)
    assert psnr_y(noisy[:1], hr[:1], 2) == pytest.approx(float(per_image[0]), abs=1e-3)


def test_untrained_residual_model_is_exactly_bicubic():
    task = SuperResolutionTask()
    model = create_model("wavemix_sr_64_4_x2_residual").eval()
    hr = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        out = model(bicubic_downscale(hr, 2))
    assert torch.allclose(out.clamp(0, 1), bicubic_upscale(bicubic_downscale(hr, 2), 2), atol=1e-6)
    m = _metrics(task, out, hr)
    assert m["psnr"] == pytest.approx(m["bicubic_psnr"], abs=1e-4)
    assert m["ssim"] == pytest.approx(m["bicubic_ssim"], abs=1e-5)


@pytest.mark.parametrize("size", [(17, 23), (31, 45)])
@pytest.mark.parametrize("scale", [2, 4])
def test_output_is_scale_times_the_input_for_odd_sizes(size, scale):
    model = create_model("wavemix_sr_64_4_x2_residual", scale=scale, final_dim=16, depth=1).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, *size)).shape == (1, 3, size[0] * scale, size[1] * scale)


# --------------------------------------------------------------------------------------------- datasets
def test_datasets_give_aligned_lr_hr_pairs(tmp_path):
    root = make_hr_folder(tmp_path / "hr", h=47, w=63)  # odd sizes: evaluation mod-crops to 46x62
    data = build_super_resolution_datasets(_cfg(data_dir=str(root)))
    lr, hr = data.train[0]
    assert hr.shape == (3, 32, 32) and lr.shape == (3, 16, 16)
    assert torch.equal(lr, bicubic_downscale(hr, 2))
    lr, hr = data.test[0]
    assert hr.shape == (3, 46, 62) and lr.shape == (3, 23, 31)
    a, b = data.val[0], data.val[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # evaluation is never random
    x4 = build_super_resolution_datasets(_cfg(data_dir=str(root), model_args={"scale": 4}))
    assert x4.info.scale == 4 and x4.test[0][1].shape == (3, 44, 60)


def test_bad_inputs_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_super_resolution_datasets(_cfg(data_dir=str(tmp_path / "missing")))
    root = make_hr_folder(tmp_path / "hr", n=8, splits=False)
    with pytest.raises(ValueError, match="must be a positive multiple of the scale 2"):
        build_super_resolution_datasets(_cfg(data_dir=str(root), input_size=31))
    data = build_super_resolution_datasets(_cfg(data_dir=str(root), input_size=64))  # eval reads no train crops
    with pytest.raises(ValueError, match="is 48x64, smaller than the training crop 64; lower --input-size"):
        data.train.check_crop(64)  # what training checks before any worker starts
    argv = ["train", "--task", "super_resolution", "--dataset", "hrfolder", "--data-dir", str(root), "--input-size",
            "64", "--output", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2 and not (tmp_path / "run").exists()
    for scale in (0, 3, -2):  # 0 was a ZeroDivisionError from the crop check
        with pytest.raises(
            ValueError, match=rf"--model-arg scale must be a power of two >= 2 \(2, 4, 8\), got {scale}"
        ):
            build_super_resolution_datasets(_cfg(data_dir=str(root), model_args={"scale": scale}))
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "odd_one.png")
    with pytest.raises(ValueError, match="--eval-batch-size 1"):
        build_super_resolution_datasets(_cfg(data_dir=str(root), val_fraction=0.9))
    with pytest.raises(ValueError, match="is a segmentation model"):
        build_super_resolution_datasets(_cfg(data_dir=str(root), model="wavemix_seg_64_6_l2_camvid"))
    with pytest.raises(FileNotFoundError, match="DIV2K_train_HR"):
        build_super_resolution_datasets(_cfg(dataset="div2k", data_dir=str(root)))


# --------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def sr_run(tmp_path_factory) -> tuple[Path, Path]:
    root = make_hr_folder(tmp_path_factory.mktemp("hrdata"), n=64)
    run = tmp_path_factory.mktemp("srrun") / "run"
    args = ["train", "--task", "super_resolution", "--dataset", "hrfolder", "--data-dir", str(root), *TINY,
            "--epochs", "8", "--batch-size", "8", "--eval-batch-size", "4", "--input-size", "32", "--lr", "3e-3",
            "--output", str(run)]  # fmt: skip
    assert main(args) == 0
    return root, run


def test_short_run_beats_bicubic(sr_run):
    _, run = sr_run
    test = json.loads((run / "results.json").read_text())["test"]
    assert test["psnr"] > test["bicubic_psnr"] + 1.0  # about +1.35 dB here
    assert test["ssim"] > test["bicubic_ssim"] + 0.01  # about +0.016
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["task"] == "super_resolution" and config["preprocessing"]["scale"] == 2


def test_eval_and_predict_cli(sr_run, tmp_path, capsys):
    root, run = sr_run
    assert main(["eval", str(run), "--data-dir", str(root)]) == 0
    metrics = json.loads((run / "eval-hrfolder-test" / "metrics.json").read_text())
    test = json.loads((run / "results.json").read_text())["test"]
    assert metrics["bicubic_psnr"] == pytest.approx(test["bicubic_psnr"], abs=1e-3)
    assert metrics["psnr"] == pytest.approx(test["psnr"], abs=1e-4)  # one model, one score: both in fp32
    assert metrics["ssim"] == pytest.approx(test["ssim"], abs=1e-6)
    img = root / "test" / "003.png"
    assert main(["predict", str(run), str(img), "--from-hr", "--output-dir", str(tmp_path / "p")]) == 0
    assert Image.open(tmp_path / "p" / "003_x2.png").size == (64, 48)
    assert Image.open(tmp_path / "p" / "003_compare.png").size == (3 * 64 + 2 * 4, 48)
    assert main(["predict", str(run), str(img), "--output-dir", str(tmp_path / "q")]) == 0
    assert Image.open(tmp_path / "q" / "003_x2.png").size == (128, 96)  # an LR input is upscaled as it is


def test_predict_reports_psnr_against_ground_truth(tmp_path):
    model = create_model("wavemix_sr_64_4_x2_residual", final_dim=16, depth=1)
    Image.fromarray(_pattern(np.random.default_rng(1), 33, 41)).save(tmp_path / "a.png")
    (rec,) = predict_super_resolution(model, [tmp_path / "a.png"], tmp_path / "out", from_hr=True)
    assert rec["psnr"] == pytest.approx(rec["bicubic_psnr"], abs=1e-3)  # untrained residual model = bicubic
    assert Image.open(rec["output"]).size == (40, 32)


def test_camvid_frames_as_hr_images(shared_data):
    data = build_super_resolution_datasets(_cfg(dataset="camvid", data_dir=str(shared_data / "CamVid"), input_size=96))
    assert (len(data.train), len(data.val), len(data.test)) == (367, 101, 233)
    lr, hr = data.test[0]
    assert hr.shape == (3, 180, 240) and lr.shape == (3, 90, 120)
