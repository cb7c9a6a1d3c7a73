"""``wavemixer train / eval / predict`` end to end, the torchrun 2-process run, and one-line errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wavemixer.cli import main
from wavemixer.hub import packaged_weights_dir

TINY = ["--model-arg", "depth=2", "--batch-size", "64", "--lr", "5e-3", "--threads", "1"]


@pytest.fixture(scope="module", params=["none", "bf16"])
def cli_run(request, tmp_path_factory) -> Path:
    """One small run per training precision: bf16 (what --amp auto picks on CPUs with AVX512-BF16 or AMX,
    emulated elsewhere) and fp32, so that train/eval/predict agreement is checked on every CPU kind."""
    run_dir = tmp_path_factory.mktemp(f"cli-{request.param}") / "run"
    assert main(["train", *TINY, "--epochs", "6", "--amp", request.param, "--output", str(run_dir), "--quiet"]) == 0
    return run_dir


def test_train_help_documents_every_option(capsys):
    from wavemixer.train.config import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for name in TrainConfig.__dataclass_fields__:
        flag = "--model-arg" if name == "model_args" else "--" + name.replace("_", "-")
        assert flag in text, flag
    assert "torchrun" in text


def test_yaml_config_and_flags(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("epochs: 1\nbatch_size: 64\nsubset: 256\nmodel_args: {depth: 1}\n")
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--threads", "1", "--output", str(tmp_path / "r")]) == 0
    import yaml

    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert (saved["epochs"], saved["batch_size"], saved["model_args"]) == (1, 64, {"depth": 1})
    assert "test top1" in capsys.readouterr().out
    # a tuning run: the same training, the test split left unevaluated (results and result line say so)
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--threads", "1", "--skip-test",
                 "--output", str(tmp_path / "tune")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "best val top1" in out and "; test top1" not in out
    assert json.loads((tmp_path / "tune" / "results.json").read_text())["test"] is None
    assert json.loads((tmp_path / "r" / "results.json").read_text())["test"]["top1"] >= 0
    (tmp_path / "bad.yaml").write_text("epoch: 1\n")
    assert main(["train", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "unknown option(s) ['epoch']" in capsys.readouterr().err


def test_predict_on_saved_images_matches_eval(cli_run, tmp_path, capsys):
    assert main(["eval", str(cli_run)]) == 0
    metrics = json.loads((cli_run / "eval-digits-test" / "metrics.json").read_text())
    assert (cli_run / "eval-digits-test" / "confusion_matrix.png").stat().st_size > 1000
    results = json.loads((cli_run / "results.json").read_text())
    assert metrics["top1"] == results["test"]["top1"]  # one model, one score: train evaluates in fp32 as eval does
    assert len(metrics["per_class"]) == 10
    # save the test split as PNG files; predict must reproduce eval's confusion matrix exactly
    from wavemixer.tasks.classification import ClassificationTask
    from wavemixer.train import TrainConfig, resolve_config

    test = ClassificationTask(resolve_config(TrainConfig())).build_data().test
    truth = {}
    for i in range(len(test)):
        img, label = test.images[i], int(test.labels[i])
        name = f"{i:04d}.png"
        Image.fromarray(img[0].numpy()).save(tmp_path / name)
        truth[name] = label
    capsys.readouterr()
    assert main(["predict", str(cli_run), str(tmp_path), "--output", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == len(test)
    confusion = np.zeros((10, 10), dtype=int)
    for r in rows:
        confusion[truth[Path(r["file"]).name], int(r["index"])] += 1
        assert 0.0 < float(r["probability"]) <= 1.0
    assert confusion.tolist() == metrics["confusion_matrix"]
    assert main(["predict", str(cli_run), str(tmp_path / "0000.png"), "--format", "json", "--top-k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["predictions"][0]["top_k"]) == 3
    assert main(["predict", str(cli_run), str(tmp_path / "0000.png"), "--format", "json", "--top-k", "11"]) == 2
    assert capsys.readouterr().err.strip().endswith("--top-k (top_k) must be 1 to 10, the model's classes; got 11")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--dataset", "nosuchdata"], "unknown data set 'nosuchdata'"),
        (["train", "--model", "wavemix_nosuch", "--subset", "128", "--epochs", "1"], "unknown model"),
        (["train", "--dataset", "mnist", "--data-dir", "{tmp}/nodata"], "pass --download"),
        (["train", "--dataset", "imagefolder", "--data-dir", "{tmp}/nodata"], "does not exist"),
        (["predict", "{tmp}/nomodel", "x.png"], "not found"),
        (["predict", "--model", "wavemix_lite_8_10_mnist", "x.png"], "--pretrained"),
        (["eval", "{tmp}"], "config.json"),
        (["train", "--subset", "128", "--epochs", "1", "--model-arg", "mode=foo"], "unknown boundary mode='foo'"),
        (["train", "--subset", "128", "--epochs", "1", "--model-arg", "wavelet=db99"], "unknown wavelet 'db99'"),
        (["train", "--subset", "128", "--epochs", "1", "--model-arg", "stride=0"], "--model-arg stride=0: stride must"),
        (["eval", "{tmp}", "--threads", "0"], "--threads must be at least 1"),
        (["predict", "{tmp}/nomodel", "x.png", "--threads", "-2"], "--threads must be at least 1"),
    ],
)
def test_bad_inputs_get_one_line_errors(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a default run folder (runs/...) would appear
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not any((tmp_path / "runs").glob("*")), "a failed start must not leave a run folder behind"


def test_train_eval_predict_another_mixer_and_wavelet(tmp_path, capsys):
    """--model-arg mixer=/wavelet= reach the model, its saved config.json, eval and predict."""
    from wavemixer.hub import from_pretrained

    run = tmp_path / "run"
    argv = ["train", *TINY, "--model-arg", "mixer=random", "--model-arg", "wavelet=db2", "--epochs", "1",
            "--subset", "256", "--output", str(run), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    saved = json.loads((run / "best" / "config.json").read_text())["config"]
    assert (saved["mixer"], saved["wavelet"]) == ("random", "db2")
    model = from_pretrained(run / "best")
    assert (model.blocks[0].mixer, model.blocks[0].wavelet, model.blocks[0].mixers[0].weight.shape[-1]) == (
        "random", "db2", 4)  # fmt: skip
    assert main(["eval", str(run)]) == 0
    assert 0 <= json.loads((run / "eval-digits-test" / "metrics.json").read_text())["top1"] <= 100
    from wavemixer.tasks.classification import ClassificationTask
    from wavemixer.train import TrainConfig, resolve_config

    image = ClassificationTask(resolve_config(TrainConfig())).build_data().test.images[0]
    Image.fromarray(image[0].numpy()).save(tmp_path / "0.png")
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "0.png"), "--format", "json"]) == 0
    assert "0.png" in capsys.readouterr().out


def test_predict_rejects_empty_folder_and_corrupt_checkpoint(cli_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(cli_run), str(tmp_path / "empty")]) == 2
    assert "no images" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((cli_run / "best" / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"\x00" * 100)
    (tmp_path / "img.png").write_bytes((cli_run / "curves.png").read_bytes())
    assert main(["predict", str(broken), str(tmp_path / "img.png")]) == 2
    assert "corrupt" in capsys.readouterr().err
    (broken / "config.json").write_text("{not json")
    assert main(["eval", str(broken)]) == 2
    assert "corrupt" in capsys.readouterr().err


@pytest.mark.skipif(packaged_weights_dir("wavemix_lite_8_10_mnist") is None, reason="weights not packaged")
def test_predict_with_packaged_pretrained_weights(shared_data, tmp_path, capsys):
    from wavemixer.data.builtin import load_builtin

    _, _, test_images, test_labels, _ = load_builtin("mnist", shared_data, download=False)
    images, labels = test_images[:40, 0].numpy(), test_labels[:40].numpy()
    for i, img in enumerate(images):
        Image.fromarray(img).save(tmp_path / f"{i:02d}.png")
    threads = torch.get_num_threads()
    try:
        argv = ["predict", "--model", "wavemix_lite_8_10_mnist", "--pretrained", str(tmp_path), "--format", "json"]
        assert main([*argv, "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    preds = json.loads(capsys.readouterr().out)["predictions"]
    correct = sum(int(p["label"]) == int(labels[int(Path(p["file"]).stem)]) for p in preds)
    assert len(preds) == 40 and correct >= 37


def _torchrun_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_torchrun_two_processes_match_one_process(tmp_path):
    args = [*TINY, "--epochs", "6", "--quiet"]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        str(Path(__file__).with_name("ddp_entry.py")),
        "train",
        *args,
        "--output",
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, env=_torchrun_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("test top1") == 1  # only rank 0 prints
    assert proc.stderr.count("DDP modules alive at process-group teardown: 0") == 2, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert ddp["world_size"] == 2
    assert len(ddp["rank_checksums"]) == 2 and ddp["rank_checksums"][0] == ddp["rank_checksums"][1]
    assert main(["train", *args, "--output", str(tmp_path / "one")]) == 0
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    assert one["world_size"] == 1
    # same global batch (64 = 2 x 32), same sample order; BatchNorm sees per-rank batches, so not bit-equal
    assert ddp["test"]["top1"] > 60.0 and one["test"]["top1"] > 60.0
    assert abs(ddp["test"]["top1"] - one["test"]["top1"]) < 15.0
    assert abs(ddp["best_val"]["loss"] - one["best_val"]["loss"]) < 0.5


PACKAGED = {
    "wavemix_lite_8_10_mnist": "mnist",
    "wavemix_lite_8_5_fmnist": "fashion_mnist",
    "wavemix_lite_32_7_cifar10_tiny": "cifar10",
    "wavemix_lite_16_7_s2_cifar10": "cifar10",
}


def test_every_packaged_weight_has_a_reproduction_below():
    from wavemixer.registry import names_with_weights

    assert set(names_with_weights()) <= set(PACKAGED)  # new weights join the test of their recorded accuracy


@pytest.mark.parametrize(
    "name",
    [  # reproductions of recorded accuracy: MNIST's in the default run, the others (CIFAR-10: 10,000 JPEGs) slow
        pytest.param(n, marks=[] if PACKAGED[n] == "mnist" else [pytest.mark.slow])
        for n in PACKAGED
        if packaged_weights_dir(n) is not None
    ],
)
def test_packaged_weights_reproduce_their_recorded_test_accuracy(name, shared_data, tmp_path, capsys):
    from wavemixer.hub import load_config

    meta = load_config(packaged_weights_dir(name))["metadata"]
    data_dir = (
        shared_data / "CIFAR10" / "cifar10_jpeg_q75_imagefolder.zip" if PACKAGED[name] == "cifar10" else shared_data
    )
    assert (
        main(
            [
                "eval",
                "--model",
                name,
                "--pretrained",
                "--dataset",
                PACKAGED[name],
                "--data-dir",
                str(data_dir),
                "--output-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    top1 = json.loads((tmp_path / "metrics.json").read_text())["top1"]
    assert top1 == pytest.approx(meta["test_top1"], abs=0.3)  # recorded under bf16 autocast, evaluated in fp32
