"""What a new user meets first: honest short runs, the precision default, eval/predict that reuse a run's
data, and a command line without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wavemixer.cli import main
from wavemixer.train import TrainConfig, resolve_config, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory) -> Path:
    """A short digits run with a non-default seed (its val split is not seed 0's)."""
    run = tmp_path_factory.mktemp("first") / "run"
    argv = ["train", "--epochs", "2", "--model-arg", "depth=2", "--seed", "3", "--threads", "1", "--quiet"]
    assert main([*argv, "--output", str(run)]) == 0
    return run


def test_a_four_epoch_run_reports_the_accuracy_its_weights_have(tmp_path):
    results = train(TrainConfig(epochs=4, threads=1, output=str(tmp_path / "r"), quiet=True))
    # without BatchNorm recalibration the saved running statistics trail the weights: 8.91 % test top-1
    assert results["test"]["top1"] > 80.0  # about 90 % here (bf16)
    assert results["best_val"]["top1"] > 80.0


def test_precision_auto_uses_bf16_only_where_it_is_native(monkeypatch, caplog):
    from wavemixer import cpu
    from wavemixer.train import engine

    caplog.set_level("INFO", logger="wavemixer.train.engine")
    cfg = resolve_config(TrainConfig(subset=200, epochs=1, batch_size=32))
    monkeypatch.setattr(cpu, "cpu_flags", lambda: {"avx2", "fma"})
    trainer = engine.Trainer(cfg)
    assert trainer.amp_dtype is None
    assert caplog.messages[0].startswith("precision fp32 (--amp auto: this CPU has neither")
    monkeypatch.setattr(cpu, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert engine.Trainer(cfg).amp_dtype == torch.bfloat16
    monkeypatch.setattr(cpu, "cpu_flags", lambda: {"avx2"})
    caplog.clear()
    engine.Trainer(resolve_config(TrainConfig(subset=200, epochs=1, batch_size=32, amp="bf16")))
    assert "slower than fp32 here" in caplog.messages[0]


def test_cpu_flags_without_proc_cpuinfo_agree_with_it(monkeypatch):
    """Where ``/proc/cpuinfo`` is missing (macOS, Windows) the flags come from torch's probes; on Linux the two
    sources must name the same kernel-deciding flags, or ``--amp auto`` would choose otherwise there."""
    from wavemixer import cpu

    if not Path("/proc/cpuinfo").is_file():
        pytest.skip("needs /proc/cpuinfo as the independent reference")
    from_proc = cpu.cpu_flags() & set(cpu.KERNEL_FLAGS)
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: (None, None))
    assert cpu.cpu_flags() == from_proc


def test_eval_reuses_the_runs_data_and_its_exact_val_split(seeded_run, capsys):
    from wavemixer.data.splits import split_hash
    from wavemixer.tasks.classification import ClassificationTask

    val = ClassificationTask(resolve_config(TrainConfig(seed=3))).build_data().val
    best_val = json.loads((seeded_run / "results.json").read_text())["best_val"]["top1"]
    capsys.readouterr()
    for i, source in enumerate((seeded_run, seeded_run / "best")):  # a run folder and a saved model folder alike
        out = seeded_run / f"eval-out-{i}"
        assert main(["eval", str(source), "--split", "val", "--output-dir", str(out)]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        # seed 3's val split, not seed 0's (the same size): the score training selected on, and no note
        assert metrics["images"] == len(val) and metrics["top1"] == best_val
        assert "note:" not in capsys.readouterr().err
    stored = json.loads((seeded_run / "best" / "config.json").read_text())["metadata"]["data"]
    assert stored["seed"] == 3 and stored["split_hashes"]["val"] == split_hash(val)
    capsys.readouterr()
    out = seeded_run / "eval-out-seed0"
    assert main(["eval", str(seeded_run), "--split", "val", "--seed", "0", "--output-dir", str(out)]) == 0
    assert "--seed 0 is not the run's seed 3" in capsys.readouterr().err  # an explicit 0 is honoured


def test_eval_finds_an_image_folder_runs_data_and_names_classes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "emu"]):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(12):
            img = rng.integers(0, 60, (12, 12, 3), dtype=np.uint8)
            img[..., c] += 180
            Image.fromarray(img).save(tmp_path / "data" / name / f"{i}.png")
    run = tmp_path / "run"
    argv = ["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"), "--epochs", "1"]
    assert main([*argv, "--batch-size", "8", "--model-arg", "depth=1", "--output", str(run), "--quiet"]) == 0
    assert main(["eval", str(run)]) == 0  # no --dataset, no --data-dir: the run's own
    metrics = json.loads((run / "eval-imagefolder-test" / "metrics.json").read_text())
    assert metrics["labels"] == ["cat", "dog", "emu"] and set(metrics["per_class"]) == {"cat", "dog", "emu"}
    (tmp_path / "data" / "dog" / "3.png").unlink()  # the data changed: the rebuilt val split is not the run's
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "val"]) == 2
    assert "differs from the one it trained with" in capsys.readouterr().err


def test_predict_flags_inputs_unlike_the_training_images(seeded_run, tmp_path, capsys):
    from wavemixer.tasks.classification import ClassificationTask

    digit = ClassificationTask(resolve_config(TrainConfig())).build_data().test.images[0, 0].numpy()
    Image.fromarray(digit).save(tmp_path / "digit.png")
    Image.new("RGB", (64, 64), (255, 0, 0)).save(tmp_path / "red.png")
    assert main(["predict", str(seeded_run), str(tmp_path / "digit.png"), str(tmp_path / "red.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "file,label,index,probability,input_z,flag"
    digit_row, red_row = lines[1:]
    assert "unlike the training images" in red_row
    assert "unlike" not in digit_row


def test_models_filter_matches_substrings(capsys):
    assert main(["models", "mnist", "--format", "json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert "wavemix_lite_8_10_mnist" in names and all("mnist" in n for n in names)


def test_closed_pipe_ends_quietly():
    cmd = f"{sys.executable} -m wavemixer.cli models | head -3"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=_env(), timeout=120)
    assert len(proc.stdout.splitlines()) == 3
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


def test_offline_download_is_one_line(tmp_path, monkeypatch, capsys):
    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\nTried https://example/, got:\n"
            "<urlopen error [Errno -2] Name or service not known>"
        )

    monkeypatch.setattr(tvd, "MNIST", offline)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "d"), "--download"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--download could not fetch mnist" in err and "Traceback" not in err


def test_bench_does_not_create_the_reference_environment_unasked(tmp_path, monkeypatch):
    from wavemixer.bench.runner import ensure_reference_python

    monkeypatch.setenv("WAVEMIXER_REFERENCE_PYTHON", str(tmp_path / "venv" / "bin" / "python"))
    with pytest.raises(FileNotFoundError, match=r"--create-reference-env .*5\.5 GB"):
        ensure_reference_python(None, create=False)
    assert not (tmp_path / "venv").exists()
    import argparse

    from wavemixer.cli.bench import add_parser  # the command line asks before creating

    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    assert "--create-reference-env" in sub.choices["bench"].format_help()


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
