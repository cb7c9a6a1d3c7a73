"""Bad or edge-case input → one clear error (option, value, what is allowed), never a traceback or a silent
fallback; outputs never overwritten without --force; --force removes only what wavemixer wrote; a diverged
run stops; a run killed while saving resumes exactly."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from wavemixer import WaveMix, WaveMixSegmentation, create_model
from wavemixer.cli import main
from wavemixer.files import refuse_overwrite
from wavemixer.hub import save_pretrained
from wavemixer.train import Diverged, TrainConfig, train
from wavemixer.train.checkpoint import MANIFEST, load_train_state, write_json
from wavemixer.train.config import load_yaml
from wavemixer.written_files import record_outputs

TINY = dict(model_args={"depth": 1}, batch_size=64, subset=256, threads=1, quiet=True)
TINY_FLAGS = ["--model-arg", "depth=1", "--batch-size", "64", "--subset", "256", "--threads", "1", "--quiet"]


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and stderr of an in-process CLI call (argparse errors exit through SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip()


def _assert_one_line_error(code: int, err: str, fragment: str, status: int = 2) -> None:
    assert code == status, err
    assert fragment in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err


def _env(**extra: str) -> dict[str, str]:
    """The environment of a ``wavemixer`` subprocess: this checkout's sources, no bytecode files written (a
    file-size limit must meet the outputs, not the interpreter's caches)."""
    return {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _tiny_model_folder(folder: Path, *, labels: list[str] | None = None, preprocessing: dict | None = None) -> Path:
    model = WaveMix(num_classes=10, depth=1, final_dim=16, level=1, in_chans=1, stem="strided", stride=1)
    pre = {"mean": [0.5], "std": [0.5], "input_size": [1, 16, 16]} if preprocessing is None else preprocessing
    return save_pretrained(model, folder, preprocessing=pre, labels=labels or [str(i) for i in range(10)])


# ------------------------------------------------------------------------------- 3: training options
@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--clip-grad", "-1"], "--clip-grad must be a finite number > 0"),
        (["--min-lr-ratio", "-5"], "--min-lr-ratio must be a finite number in [0, 1], got '-5'"),
        (["--weight-decay", "-1"], "--weight-decay must be a finite number in [0, 10000], got '-1'"),
        (["--threads", "0"], "--threads must be an integer >= 1"),
        (["--threads", "-2"], "--threads must be an integer >= 1"),
        (["--device", "tpu"], "--device must be auto, cpu, cuda, cuda:N"),
        (["--label-smoothing", "2"], "--label-smoothing must be a finite number in [0, 1)"),
        (["--crop-padding", "-3"], "--crop-padding must be an integer >= 0"),
        (["--input-size", "-8"], "--input-size must be an integer in [1, 4096]"),
        (["--epochs", "1.5"], "--epochs must be an integer >= 1 (or unset), got '1.5'"),
        (["--lr", "nan"], "--lr must be a finite number in (0, 10000]"),
        (["--lr", "inf"], "--lr must be a finite number in (0, 10000]"),
        (["--momentum", "1"], "--momentum must be a finite number in [0, 1)"),
        (["--val-fraction", "0"], "--val-fraction must be a finite number in (0, 1)"),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
        (["--ema-decay", "1"], "--ema-decay must be a finite number in [0, 1)"),
        (["--warmup-epochs", "-1"], "--warmup-epochs must be a finite number >= 0"),
        (["--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
        (["--workers", "-1"], "--workers must be an integer >= 0"),
        (["--patience", "0"], "--patience must be an integer >= 1"),
        (["--grad-accum", "0"], "--grad-accum must be an integer >= 1"),
        (["--seed", "-1"], "--seed must be an integer in [0, 4294967295], got '-1'"),
        (["--seed", "99999999999999999999"], "--seed must be an integer in [0, 4294967295]"),
        (["--bn-recalibrate", "-1"], "--bn-recalibrate must be an integer >= 0, got '-1'"),  # it wiped the stats
        (["--test-fraction", "1.5"], "--test-fraction must be a finite number in [0, 1), got '1.5'"),
        (["--data-dir", "{tmp}/a"], "--data-dir {tmp}/a does not apply to --dataset digits (embedded"),
        (["--model-arg", "patch_size=2"], "--model-arg patch_size=2 applies only to stem=patchify, and this"),
        (
            ["--model-arg", "stem=patchify", "--model-arg", "stride=2"],
            "--model-arg stride=2 applies only to stem=strided",
        ),
        (
            ["--model", "peer:resnet", "--model-arg", "params=40000", "--model-arg", "depth=0"],
            "--model-arg depth must be a positive integer, got 0",
        ),
        (
            ["--model", "peer:vit", "--model-arg", "params=40000", "--model-arg", "depth=abc"],
            "--model-arg depth must be a positive integer, got 'abc'",
        ),
        (
            ["--model", "peer:resnet", "--model-arg", "params=10"],
            "params=10 cannot be met by peer:resnet at depth 1: the closest width gives 1,472 parameters",
        ),
        (
            ["--model", "peer:vit", "--model-arg", "width=7", "--model-arg", "depth=1"],
            "--model peer:vit --model-arg width must be a multiple of 2 of at least 8",
        ),
        (["--subset", "0"], "--subset must be an integer >= 1"),
        (
            ["--model-arg", "stem=patchify", "--model-arg", "patch_size=100"],
            "--model-arg patch_size=100: the patchify stem's 100x100 patch is larger than the 16x16 training images",
        ),
        # said "--download could not fetch cifar10 (... use download=True ...)" though --download was not given
        (
            ["--dataset", "cifar10", "--data-dir", "{tmp}/a"],
            "cifar10 not found (or incomplete) in {tmp}/a; pass --download",
        ),
        (["--sgd-lr", "0"], "--sgd-lr must be a finite number in (0, 10000]"),
        (["--model-arg", "final_dim=-16", "--subset", "128"], "final_dim must be an integer >= 4, got -16"),
        (["--model-arg", "dropout=nan", "--subset", "128"], "dropout must be a number in [0, 1), got 'nan'"),
        (["--model-arg", "depth=2.5", "--subset", "128"], "depth must be an integer >= 1, got 2.5"),
        (["--model-arg", "depth=abc"], "--model-arg depth=abc: depth must be an integer >= 1, got 'abc'"),  # unnamed
        (["--resume", "{tmp}/a", "--output", "{tmp}/b"], "--output {tmp}/b contradicts it"),
        (["--resume", "{tmp}/a", "--force"], "--force contradicts it"),
        # recorded in config.yaml, never read by the recipe
        (["--recipe", "dualopt", "--opt", "sgd"], "--opt applies only to --recipe standard; --recipe dualopt never"),
        (["--sgd-lr", "0.1"], "--sgd-lr applies only to --recipe dualopt; --recipe standard never reads it"),
        (["--model-arg", "=3"], "--model-arg takes key=value, got '=3'"),
        (["--output", ""], "--output must name a path, got ''"),  # trained into runs/<default> instead
    ],
)
def test_bad_training_options_are_refused_before_anything_runs(flags, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    code, err = _cli(["train", *flags], capsys)
    _assert_one_line_error(code, err, fragment.replace("{tmp}", str(tmp_path)))
    assert not any(tmp_path.glob("runs/*")) and not (tmp_path / "b").exists()  # no run folder left behind


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ('channels_last: "no"\n', "channels_last must be true or false, got 'no'"),
        ("epochs: 1.5\n", "epochs must be an integer >= 1 (or unset), got 1.5"),
        ('epochs: "two"\n', "epochs must be an integer >= 1 (or unset), got 'two'"),
        ("lr: .nan\n", "lr must be a finite number in (0, 10000]"),
        ("amp: fp8\n", "amp must be one of auto, none, bf16, fp16"),
        ("model_args: [1, 2]\n", "model_args must be a mapping"),
        ("batch_size: true\n", "batch_size must be an integer >= 1, got True"),
        ("bn_recalibrate: -5\n", "bn_recalibrate must be an integer >= 0, got -5"),
        # PyYAML's own message took five lines
        ("lr: 0.1\nepochs: {\n", "is not valid YAML: expected the node content, but found '<stream end>' (line 3,"),
        (b"\xff\xfelr: 0.1\n", "is not a UTF-8 text file (byte 0xff at position 0)"),  # said only "'utf-8' codec"
        ("epochs: 1\nlr: 0.1\nepochs: 3\n", "is not valid YAML: the key 'epochs' is given twice (line 3, column 1)"),
    ],
)
def test_yaml_values_are_type_checked(yaml_text, fragment, tmp_path, capsys):
    (tmp_path / "c.yaml").write_bytes(yaml_text if isinstance(yaml_text, bytes) else yaml_text.encode())
    code, err = _cli(["train", "--config", str(tmp_path / "c.yaml")], capsys)
    _assert_one_line_error(code, err, fragment)
    assert str(tmp_path / "c.yaml") in err  # the message names the file too


def test_numeric_strings_are_numbers_because_yaml_1_1_reads_1e_3_as_text(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nweight_decay: 5e-4\nepochs: 3\n")
    values = load_yaml(tmp_path / "c.yaml")
    assert values == {"lr": 0.001, "weight_decay": 0.0005, "epochs": 3}
    cfg = TrainConfig(lr="2e-3", epochs="4", channels_last=False)  # the API follows the same rules
    assert (cfg.lr, cfg.epochs) == (0.002, 4)
    with pytest.raises(ValueError, match="--channels-last must be true or false"):
        TrainConfig(channels_last="yes")


# ------------------------------------------------------------------------------- 6: model constructors
@pytest.mark.parametrize(
    ("build", "error", "fragment"),
    [
        (lambda: WaveMix(num_classes=10.0), TypeError, "num_classes must be an integer >= 0, got 10.0 (float)"),
        (lambda: WaveMix(num_classes=float("nan")), TypeError, "num_classes must be an integer >= 0, got nan"),
        (lambda: WaveMix(final_dim=16.0, depth=1), TypeError, "final_dim must be an integer >= 4, got 16.0"),
        (lambda: WaveMix(final_dim=-16, depth=1), ValueError, "final_dim must be an integer >= 4, got -16"),
        (lambda: WaveMix(mult=2.0, depth=1), TypeError, "mult must be an integer >= 1, got 2.0"),
        (lambda: WaveMix(stride=2.0, depth=1), TypeError, "stride must be an integer >= 1, got 2.0"),
        (lambda: WaveMix(in_chans=3.0, depth=1), TypeError, "in_chans must be an integer >= 1, got 3.0"),
        (lambda: WaveMix(in_chans=True, depth=1), TypeError, "in_chans must be an integer >= 1, got True"),
        (lambda: WaveMix(drop_rate=float("nan"), depth=1), ValueError, "drop_rate must be in [0, 1), got nan"),
        (lambda: WaveMix(dropout=float("nan"), depth=1), ValueError, "dropout must be in [0, 1), got nan"),
        (lambda: WaveMix(depth=2.5), TypeError, "depth must be an integer >= 1, got 2.5"),
        (lambda: create_model(None), TypeError, "create_model takes a registry model name"),
        (
            lambda: WaveMixSegmentation(decoder_dims=[8], stride=2, depth=1, final_dim=16, level=1),
            ValueError,
            "needs at least 2 x2 decoder stage(s)",
        ),
        (
            lambda: WaveMixSegmentation(decoder_dims=[8, 4.5], depth=1, final_dim=16, level=1),
            TypeError,
            "decoder_dims[1] must be an integer >= 1, got 4.5",
        ),
    ],
)
def test_constructor_arguments_are_type_checked(build, error, fragment):
    with pytest.raises(error) as info:
        build()
    assert fragment in str(info.value) and "\n" not in str(info.value)


def _tiny_classifier() -> WaveMix:
    return WaveMix(num_classes=3, depth=1, final_dim=16, in_chans=1).eval()


@pytest.mark.parametrize(
    ("make_input", "fragment"),
    [
        (lambda: torch.zeros(1, 1, 8, 8, dtype=torch.uint8), "expected floating-point images, got dtype torch.uint8"),
        (lambda: torch.zeros(1, 1, 8, 8, dtype=torch.int64), "convert and scale them first"),
        (lambda: torch.zeros(1, 1, 8, 8, dtype=torch.bool), "expected floating-point images, got dtype torch.bool"),
        (lambda: torch.zeros(1, 1, 8, 8, dtype=torch.float64), "differs from the model's weights (torch.float32)"),
        (lambda: torch.zeros(1, 1, 8, 8, dtype=torch.float16), "call model.to(torch.float16) or pass x.to"),
        (lambda: [[0.0] * 8] * 8, "expected a torch.Tensor image batch (B, C, H, W), got list"),
    ],
)
def test_inputs_of_the_wrong_type_are_refused_with_what_to_do(make_input, fragment):
    with pytest.raises(TypeError) as info:
        _tiny_classifier()(make_input())
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_typo_in_the_boundary_mode_is_refused_not_read_as_smooth():
    with pytest.raises(ValueError, match="unknown boundary mode='foo'; expected one of"):
        WaveMix(num_classes=3, depth=1, final_dim=16, mode="foo")


def test_levels_beyond_the_input_size_warn_as_pywavelets_does():
    from wavemixer import wavedec2

    with pytest.warns(UserWarning, match="Level value of 10 is too high"):
        wavedec2(torch.randn(1, 1, 4, 4), level=10)
    model = WaveMix(num_classes=3, depth=1, final_dim=16, level=3, in_chans=1).eval()
    with pytest.warns(UserWarning, match="too high"):
        model(torch.randn(1, 1, 4, 4))


def test_nan_num_classes_no_longer_removes_the_head_silently():
    assert isinstance(WaveMix(num_classes=0, depth=1, final_dim=16).head, torch.nn.Identity)  # 0 still does
    with pytest.raises(TypeError):
        WaveMix(num_classes=float("nan"), depth=1, final_dim=16)


# ------------------------------------------------------------------------------- 1: --force and the manifest
def test_force_never_deletes_a_folder_wavemixer_did_not_write(tmp_path, capsys):
    user = tmp_path / "project"
    (user / "src").mkdir(parents=True)
    (user / "config.yaml").write_text("mine: 1\n")  # a run-marker name, but the user's file
    (user / "src" / "a.py").write_text("print('mine')\n")
    code, err = _cli(["train", "--output", str(user), "--force", *TINY_FLAGS, "--epochs", "1"], capsys)
    _assert_one_line_error(code, err, "--force removes only files wavemixer wrote")
    assert (user / "src" / "a.py").read_text() == "print('mine')\n"
    assert (user / "config.yaml").read_text() == "mine: 1\n"


def test_force_replaces_a_run_but_keeps_the_users_files_in_its_folder(tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(output=str(run), epochs=1, **TINY))
    manifest = json.loads((run / MANIFEST).read_text())["files"]
    assert {"config.yaml", "checkpoint.pt", "best/model.safetensors", "results.json", MANIFEST} <= set(manifest)
    (run / "notes.txt").write_text("keep me\n")
    (run / ".draft.tmp").write_text("keep me too\n")
    (run / "best" / "my_plot.png").write_bytes(b"png")
    with pytest.raises(ValueError, match="--force"):
        train(TrainConfig(output=str(run), epochs=1, **TINY))
    train(TrainConfig(output=str(run), epochs=1, force=True, seed=1, **TINY))
    assert (run / "notes.txt").read_text() == "keep me\n" and (run / "best" / "my_plot.png").read_bytes() == b"png"
    assert (run / ".draft.tmp").read_text() == "keep me too\n"
    assert json.loads((run / "results.json").read_text())["seed"] == 1


# ------------------------------------------------------------------------------- 2: divergence
def test_diverged_training_stops_with_exit_1_and_writes_no_nan_model(tmp_path, capsys):
    run = tmp_path / "run"
    code, err = _cli(["train", "--output", str(run), "--lr", "10000", "--epochs", "3", *TINY_FLAGS], capsys)
    _assert_one_line_error(code, err, "training diverged", status=1)
    assert not (run / "results.json").exists()
    for weights in run.glob("*/model.safetensors"):
        assert all(torch.isfinite(t).all() for t in load_file(weights).values()), weights


def test_an_overflowed_statistic_is_divergence_even_while_the_losses_stay_finite(tmp_path, capsys):
    """At lr 1e4 one epoch leaves a BatchNorm running variance infinite while the losses stay finite; it was
    saved as best and only failed later, at the test evaluation, as a corrupt model."""
    from wavemixer.train.engine import _first_non_finite

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    assert _first_non_finite(net) is None
    net[1].running_var[1] = math.inf
    assert _first_non_finite(net) == "1.running_var"
    run = tmp_path / "run"
    flags = ["--model-arg", "final_dim=16", "--model-arg", "depth=1", "--subset", "256", "--threads", "1", "--quiet"]
    code, err = _cli(["train", "--output", str(run), "--lr", "1e4", "--epochs", "1", *flags], capsys)
    _assert_one_line_error(code, err, "of the model is no longer finite", status=1)
    assert not (run / "results.json").exists()


def test_divergence_keeps_the_last_good_epoch(tmp_path, monkeypatch):
    from wavemixer.tasks.classification import ClassificationTask

    loss, calls = ClassificationTask.loss, {"train": 0}

    def loss_turning_nan(self, outputs, targets):  # finite for the first epoch (4 steps), then NaN
        value = loss(self, outputs, targets)
        if outputs.requires_grad:
            calls["train"] += 1
            if calls["train"] > 4:
                return value * float("nan")
        return value

    monkeypatch.setattr(ClassificationTask, "loss", loss_turning_nan)
    with pytest.raises(Diverged, match=r"training diverged: the training loss is nan at step 5 .*epoch \(1\)"):
        train(TrainConfig(output=str(tmp_path / "run"), epochs=3, **TINY))
    state = load_train_state(tmp_path / "run" / "checkpoint.pt")
    assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values())
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()


def test_json_outputs_are_strict(tmp_path):
    write_json(tmp_path / "r.json", {"loss": float("nan"), "rows": [float("inf"), 1.5]})

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    assert json.loads((tmp_path / "r.json").read_text(), parse_constant=refuse) == {"loss": None, "rows": [None, 1.5]}


# ------------------------------------------------------------------------------- 7: outputs and flags
@pytest.fixture
def model_dir(tmp_path) -> Path:
    return _tiny_model_folder(tmp_path / "model")


@pytest.fixture
def image(tmp_path) -> Path:
    Image.new("L", (16, 16), 128).save(tmp_path / "img.png")
    return tmp_path / "img.png"


@pytest.mark.parametrize(
    ("command", "flags", "fragment"),
    [
        ("predict", ["--device", "tpu"], "--device must be one of cpu, cuda"),
        ("predict", ["--device", "auto"], "--device must be one of cpu, cuda"),
        ("predict", ["--batch-size", "-1"], "--batch-size must be an integer >= 1, got -1"),
        ("predict", ["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
        ("predict", ["--top-k", "0"], "--top-k must be at least 1"),
        # three flags a classifier ignored without a word
        ("predict", ["--top-k", "3"], "--top-k lists classes in JSON output; add --format json"),
        ("predict", ["--output-dir", "masks"], "--output-dir is for models that predict images (segmentation,"),
        ("predict", ["--from-hr"], "--from-hr applies to super-resolution models, not classification"),
        ("predict", ["--threads", "0"], "--threads must be at least 1"),
        ("predict", ["--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
        ("predict", ["--pretrained"], "--pretrained takes the weights shipped for --model NAME"),
        ("eval", ["--pretrained"], "--pretrained takes the weights shipped for --model NAME"),
        ("eval", ["--model", "wavemix_lite_8_10_mnist", "--pretrained"], "not both"),
        ("eval", ["--device", "tpu"], "--device must be one of auto, cpu, cuda"),
        ("eval", ["--batch-size", "-1"], "--batch-size must be an integer >= 1, got -1"),
        ("eval", ["--subset", "0"], "--subset must be an integer >= 1"),
        ("eval", ["--val-fraction", "1.5", "--split", "val"], "--val-fraction must be a finite number in (0, 1)"),
        ("eval", ["--val-fraction", "0.5"], "--val-fraction shapes the val split, not --split test; add --split val"),
        ("eval", ["--seed", "-1"], "--seed must be an integer in [0, 4294967295]"),
        ("bench", ["--device", "tpu"], "--device must be one of cpu, cuda"),
        ("bench", ["-b", "-1"], "--batch-size must be an integer >= 1, got -1"),
        ("bench", ["--iters", "0"], "--iters must be an integer >= 1"),
        ("bench", ["--threads", "0"], "--threads must be at least 1"),
        ("bench", ["--tag", "a/b"], "--tag must be a word of letters, digits, '.', '_' or '-', got 'a/b'"),
        ("bench", ["--out", "{image}"], "--out {image} is a file; give the folder that holds the results folders"),
    ],
)
def test_eval_predict_bench_flags(command, flags, fragment, model_dir, image, capsys):
    inputs = {"predict": [str(model_dir), str(image)], "eval": [str(model_dir)]}
    inputs["bench"] = ["wavemix_lite_32_7_cifar10_tiny", "--no-reference"]
    flags = [f.replace("{image}", str(image)) for f in flags]
    code, err = _cli([command, *inputs[command], *flags], capsys)
    _assert_one_line_error(code, err, fragment.replace("{image}", str(image)))


@pytest.mark.parametrize(
    ("command", "output", "fragment"),
    [
        (["export", "{model}"], "{model}/model.safetensors", "OUTPUT {model}/model.safetensors is one of the files"),
        (["export", "{model}"], "{model}/config.json", "OUTPUT {model}/config.json is one of the files"),
        (["predict", "{model}", "{image}", "--output"], "{image}", "--output {image} is one of the files"),
        (["predict", "{model}", "{tmp}", "--output"], "{image}", "--output {image} is one of the files"),
        (["predict", "{model}", "{image}", "--output"], "{model}/config.json", "--output {model}/config.json is one"),
    ],
)
def test_force_never_overwrites_what_the_command_reads(command, output, fragment, model_dir, image, tmp_path, capsys):
    """``--force`` replaces an earlier output, never the model, run files or images a command works from."""
    paths = dict(model=str(model_dir), image=str(image), tmp=str(tmp_path))
    before = {p: p.read_bytes() for p in (model_dir / "model.safetensors", model_dir / "config.json", image)}
    argv = [a.format(**paths) for a in (*command, output)]
    fmt = ["--format", "pt2"] if command[0] == "export" else []
    code, err = _cli([*argv, *fmt, "--force"], capsys)
    _assert_one_line_error(code, err, fragment.format(**paths), status=2)
    assert {p: p.read_bytes() for p in before} == before


def test_runs_tables_never_overwrite_a_runs_files(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--epochs", "1", "--bn-recalibrate", "0", "--output", str(run)]) == 0
    for flags, fragment in (
        (
            ["--metric", "bogus"],
            f"--metric bogus: no run has this score; {run}/results.json has ['loss', 'top1', 'top5']",
        ),
        (["--goal", "nan"], "argument --goal: expected a finite number, got 'nan'"),  # read as "not comparable"
    ):
        code, err = _cli(["runs", str(run), *flags], capsys)
        _assert_one_line_error(code, err, fragment)
    results = (run / "results.json").read_bytes()
    for option in ("--md", "--csv", "--plot"):
        target = run / ("summary.csv" if option == "--csv" else "results.json")
        code, err = _cli(["runs", str(run), option, str(target), "--force"], capsys)
        _assert_one_line_error(code, err, f"{option} {target} is one of the files this command works from")
    assert (run / "results.json").read_bytes() == results


@pytest.mark.parametrize(("opset", "fragment"), [("5", "got 5"), ("-1", "got -1"), ("99", "got 99")])
def test_export_refuses_an_opset_it_would_not_write(opset, fragment, model_dir, tmp_path, capsys):
    """Asked for opset 5, torch's exporter printed a traceback and wrote opset 18 (exit 0); 99 ended in an
    onnxruntime traceback."""
    pytest.importorskip("onnx")
    code, err = _cli(["export", str(model_dir), str(tmp_path / "m.onnx"), "--opset", opset], capsys)
    _assert_one_line_error(code, err, "--opset must be an integer in [18, ")
    assert fragment in err and not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    ("output", "extra", "fragment"),
    [
        # wrote a pt2 archive named .onnx (exit 0), with torch's warning about the suffix
        ("m.onnx", ["--format", "pt2"], "--format pt2 contradicts OUTPUT {tmp}/m.onnx; drop one or rename the file"),
        ("afile/m.onnx", [], "the folder {tmp}/afile of OUTPUT {tmp}/afile/m.onnx is not a folder"),  # "does not exist"
        ("none/m.onnx", [], "the folder {tmp}/none of OUTPUT {tmp}/none/m.onnx does not exist"),
    ],
)
def test_export_refuses_an_output_it_cannot_write_as_asked(output, extra, fragment, model_dir, tmp_path, capsys):
    (tmp_path / "afile").write_text("a file of the user's")
    code, err = _cli(["export", str(model_dir), str(tmp_path / output), *extra], capsys)
    _assert_one_line_error(code, err, fragment.format(tmp=tmp_path))
    assert not (tmp_path / output).exists() and (tmp_path / "afile").read_text() == "a file of the user's"


def test_an_onnx_graph_too_large_for_one_file_is_refused(model_dir, tmp_path, capsys, monkeypatch):
    """Weights beyond torch's single-file threshold went to an external-data file named after the temporary the
    export is written to (``.m.onnx.XXXX.tmp.onnx.data``), which the renamed graph then pointed at. The limit is
    set here around the tiny model's exported weights (its graph's initializers, which torch weighs), so the test
    needs no 1.5 GiB model."""
    pytest.importorskip("onnx")
    import onnx_ir as ir

    from wavemixer import optimize
    from wavemixer.hub import from_pretrained

    code, err = _cli(["export", str(model_dir), str(tmp_path / "m.onnx")], capsys)
    assert code == 0, err
    size = sum(v.const_value.nbytes for v in ir.load(tmp_path / "m.onnx").graph.initializers.values())
    monkeypatch.setattr(optimize, "ONNX_SINGLE_FILE_BYTES", size - 1)
    code, err = _cli(["export", str(model_dir), str(tmp_path / "big.onnx")], capsys)
    _assert_one_line_error(code, err, f"the exported graph's weights take {size:,} bytes; an ONNX file is saved")
    assert "export the model as pt2 or torchscript instead" in err
    model = from_pretrained(model_dir)
    with pytest.raises(ValueError, match="export the model as pt2 or torchscript instead"):
        optimize.export_onnx(model, tmp_path / "big.onnx", (model.in_chans, 16, 16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "model"]  # no graph, data file or temporary
    monkeypatch.setattr(optimize, "ONNX_SINGLE_FILE_BYTES", size)  # exactly at the limit: one file
    code, err = _cli(["export", str(model_dir), str(tmp_path / "big.onnx")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "m.onnx", "model"]


def test_export_into_a_pipe_or_device_is_refused(model_dir, tmp_path, capsys):
    """The export is written to a temporary and renamed over OUTPUT: over ``/dev/null`` (a FIFO here, never the
    machine's device) that rename would replace the device with a file."""
    os.mkfifo(tmp_path / "m.onnx")
    code, err = _cli(["export", str(model_dir), str(tmp_path / "m.onnx"), "--force"], capsys)
    _assert_one_line_error(code, err, "is a device or pipe; give a file to write")
    assert stat.S_ISFIFO(os.stat(tmp_path / "m.onnx").st_mode)


def test_a_peer_name_where_a_registry_name_belongs_says_where_peers_go(tmp_path, capsys):
    """``export --model peer:resnet`` said "unknown model"; ``bench peer:nosuch`` said "not key=value"."""
    code, err = _cli(["export", "--model", "peer:resnet", str(tmp_path / "m.onnx")], capsys)
    _assert_one_line_error(code, err, "--model peer:resnet: a peer is exported from its trained run")
    code, err = _cli(["bench", "peer:resnet", "--no-reference", "--out", str(tmp_path / "b")], capsys)
    _assert_one_line_error(code, err, "'peer:resnet': bench measures the peers with --suite peers")
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, a folder that takes no new files")
def test_an_unwritable_output_is_named_with_its_option_before_any_work(model_dir, tmp_path, capsys):
    """An export into /proc failed at its end naming its own temporary (/proc/.m.tmp.onnx); a bench sweep ran
    whole before failing to write its results."""
    code, err = _cli(["export", str(model_dir), "/proc/m.onnx"], capsys)
    _assert_one_line_error(code, err, "cannot write in the folder of OUTPUT /proc: ")
    (tmp_path / "afile").write_text("a file of the user's")
    code, err = _cli(["runs", str(model_dir.parent), "--md", str(tmp_path / "afile" / "x.md")], capsys)
    _assert_one_line_error(code, err, f"cannot write --md {tmp_path}/afile/x.md: {tmp_path}/afile is a file")
    code, err = _cli(["bench", "wavemix_lite_8_10_mnist", "--no-reference", "--out", "/proc/bo"], capsys)
    _assert_one_line_error(code, err, "cannot write in the folder of --out /proc: ")


def test_predict_checks_the_saved_labels_and_preprocessing(tmp_path, image, capsys):
    short = _tiny_model_folder(tmp_path / "short", labels=["a", "b"])
    code, err = _cli(["predict", str(short), str(image)], capsys)
    _assert_one_line_error(code, err, "lists 2 labels but the model predicts 10 classes")
    no_size = _tiny_model_folder(tmp_path / "nosize", preprocessing={"mean": [0.5], "std": [0.5]})
    code, err = _cli(["predict", str(no_size), str(image)], capsys)
    _assert_one_line_error(code, err, "preprocessing lacks input_size")


def test_predict_output_is_not_overwritten_without_force(model_dir, image, tmp_path, capsys):
    out = tmp_path / "p.csv"
    out.write_text("my spreadsheet\n")
    code, err = _cli(["predict", str(model_dir), str(image), "-o", str(out)], capsys)
    _assert_one_line_error(code, err, "already exists; pass --force")
    assert out.read_text() == "my spreadsheet\n"
    assert main(["predict", str(model_dir), str(image), "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("file,label,index,probability")


def test_eval_reports_are_not_overwritten_without_force(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", str(model_dir), "--dataset", "digits", "--threads", "1"]) == 0
    metrics = tmp_path / "eval-digits-test" / "metrics.json"
    metrics.write_text("{}")
    code, err = _cli(["eval", str(model_dir), "--dataset", "digits"], capsys)
    _assert_one_line_error(code, err, "metrics.json already exists; pass --force")
    code, err = _cli(["eval", str(model_dir), "--output-dir", str(metrics.parent)], capsys)
    _assert_one_line_error(code, err, "metrics.json already exists; pass --force")
    assert metrics.read_text() == "{}"
    assert main(["eval", str(model_dir), "--dataset", "digits", "--force"]) == 0
    assert json.loads(metrics.read_text())["images"] > 0


def test_dense_predictions_are_not_written_into_a_full_folder_without_force(tmp_path, capsys):
    model = WaveMixSegmentation(num_classes=3, depth=1, final_dim=16, level=1)
    folder = save_pretrained(model, tmp_path / "seg", preprocessing={"mean": [0.5] * 3, "std": [0.5] * 3})
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "a_mask.png").write_bytes(b"mine")
    argv = ["predict", str(folder), str(tmp_path / "a.png"), "--output-dir", str(tmp_path / "pred")]
    code, err = _cli(argv, capsys)
    _assert_one_line_error(code, err, "is not empty; pass --force")
    assert (tmp_path / "pred" / "a_mask.png").read_bytes() == b"mine"
    code, err = _cli([*argv, "--force"], capsys)  # a file of the user's that shares a name is never replaced
    _assert_one_line_error(code, err, "a_mask.png was not written by wavemixer")
    assert (tmp_path / "pred" / "a_mask.png").read_bytes() == b"mine"
    (tmp_path / "pred" / "notes.txt").write_text("mine")
    (tmp_path / "pred" / "a_mask.png").unlink()
    assert main([*argv, "--force"]) == 0  # beside the user's other files
    first = (tmp_path / "pred" / "a_overlay.png").read_bytes()
    assert first.startswith(b"\x89PNG") and (tmp_path / "pred" / "notes.txt").read_text() == "mine"
    Image.new("RGB", (16, 16), "white").save(tmp_path / "a.png")
    assert main([*argv, "--force"]) == 0  # what wavemixer wrote is replaced
    assert (tmp_path / "pred" / "a_overlay.png").read_bytes() != first
    assert sorted(p.name for p in (tmp_path / "pred").iterdir() if p.suffix == ".png") == [
        "a_labels.png",
        "a_mask.png",
        "a_overlay.png",
    ]  # no temporaries left


def test_dense_predictions_of_two_images_of_one_name_are_refused(tmp_path, capsys):
    """``x/a.png`` and ``y/a.png`` would both be written as ``a_mask.png``: the second would replace the first."""
    model = WaveMixSegmentation(num_classes=3, depth=1, final_dim=16, level=1)
    folder = save_pretrained(model, tmp_path / "seg", preprocessing={"mean": [0.5] * 3, "std": [0.5] * 3})
    for sub in ("x", "y"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        Image.new("RGB", (16, 16)).save(tmp_path / "in" / sub / "a.png")
    out = tmp_path / "pred"
    code, err = _cli(["predict", str(folder), str(tmp_path / "in"), "--output-dir", str(out)], capsys)
    _assert_one_line_error(code, err, "would both be written as a_mask.png")
    assert not out.exists()


def test_a_failed_prediction_leaves_no_folder_that_blocks_the_retry(tmp_path, capsys):
    model = WaveMixSegmentation(num_classes=3, depth=1, final_dim=16, level=1)
    folder = save_pretrained(model, tmp_path / "seg", preprocessing={"mean": [0.5] * 3, "std": [0.5] * 3})
    (tmp_path / "bad.png").write_bytes(b"not an image")
    out = tmp_path / "pred"
    out.mkdir()
    code, err = _cli(["predict", str(folder), str(tmp_path / "bad.png"), "--output-dir", str(out)], capsys)
    assert "bad.png" in err and code != 0
    assert out.is_dir() and not list(out.iterdir())  # the manifest went with the failure


def test_an_interrupted_folder_swap_is_undone_and_temporaries_removed(tmp_path):
    from wavemixer.files import remove_stale_temporaries

    (tmp_path / ".best.old.abc123.tmp").mkdir()  # cut between "best -> old" and "new -> best"
    (tmp_path / ".best.old.abc123.tmp" / "config.json").write_text("{}")
    (tmp_path / ".last.xyz789.tmp").mkdir()  # a new folder that never got renamed into place
    (tmp_path / ".checkpoint.pt.q1w2e3.tmp").write_bytes(b"partial")
    (tmp_path / ".notes.draft.tmp").write_text("not ours")
    remove_stale_temporaries(tmp_path, ["best", "last", "checkpoint.pt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.draft.tmp", "best"]
    assert (tmp_path / "best" / "config.json").read_text() == "{}"


def test_bench_results_folder_is_not_overwritten_without_force(tmp_path, capsys):
    from wavemixer.bench import results_dir_name

    folder = tmp_path / results_dir_name("cpu", ["fp32"], False, torch.__version__, "x")
    folder.mkdir()
    (folder / "results.csv").write_text("old\n")
    argv = ["bench", "wavemix_lite_32_7_cifar10_tiny", "--no-reference", "--device", "cpu", "--tag", "x"]
    code, err = _cli([*argv, "--out", str(tmp_path)], capsys)
    _assert_one_line_error(code, err, "already exists; pass --force")
    code, err = _cli([*argv, "--out", str(tmp_path), "--force"], capsys)  # not a file wavemixer wrote
    _assert_one_line_error(code, err, "results.csv was not written by wavemixer")
    assert (folder / "results.csv").read_text() == "old\n"


def test_eval_force_replaces_its_own_reports_only(model_dir, tmp_path, capsys):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "metrics.json").write_text("mine")
    argv = ["eval", str(model_dir), "--dataset", "digits", "--threads", "1", "--output-dir", str(out), "--force"]
    code, err = _cli(argv, capsys)
    _assert_one_line_error(code, err, "metrics.json was not written by wavemixer")
    assert (out / "metrics.json").read_text() == "mine"
    (out / "metrics.json").unlink()
    assert main(argv) == 0 and main(argv) == 0  # the second replaces what the first wrote
    recorded = json.loads((out / MANIFEST).read_text())["files"]
    assert {"metrics.json", "per_class.csv", "confusion_matrix.png"} <= set(recorded)
    (out / MANIFEST).write_text("my notes")  # a file of the user's under the manifest's name stays too
    code, err = _cli(argv, capsys)
    _assert_one_line_error(code, err, "is not a wavemixer manifest")
    assert (out / MANIFEST).read_text() == "my notes"


def test_save_pretrained_is_all_or_nothing_and_never_overwrites(tmp_path):
    model = WaveMix(num_classes=2, depth=1, final_dim=16, level=1)
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        save_pretrained(model, tmp_path / "m", metadata={"path": Path("x")})
    assert not (tmp_path / "m").exists() and not list(tmp_path.iterdir())  # no weights, no temp folder
    save_pretrained(model, tmp_path / "m")
    with pytest.raises(FileExistsError, match="force"):
        save_pretrained(model, tmp_path / "m")
    (tmp_path / "m" / "README.md").write_text("mine")
    save_pretrained(model, tmp_path / "m", force=True, labels=["a", "b"], metadata={"val": float("nan")})
    assert (tmp_path / "m" / "README.md").read_text() == "mine"
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["labels"] == ["a", "b"] and config["metadata"] == {"val": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_convert_refuses_a_folder_holding_only_weights(tmp_path, capsys):
    (tmp_path / "ref.pth").write_bytes(b"x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.safetensors").write_bytes(b"weights")
    code, err = _cli(["convert", str(tmp_path / "ref.pth"), str(tmp_path / "out")], capsys)
    _assert_one_line_error(code, err, "already holds a model")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == b"weights"


def test_convert_never_writes_a_model_into_a_training_run_folder(tmp_path, capsys):
    """It wrote config.json and model.safetensors beside the run's own files (a run owns its folder)."""
    (tmp_path / "ref.pth").write_bytes(b"x")
    run = tmp_path / "run"
    run.mkdir()
    (run / "wavemixer-manifest.json").write_text('{"format": "wavemixer-run-manifest", "files": []}')
    for force in ([], ["--force"]):
        code, err = _cli(["convert", str(tmp_path / "ref.pth"), str(run), *force], capsys)
        _assert_one_line_error(code, err, f"{run} holds wavemixer-manifest.json: it is a folder of other wavemixer")
    assert sorted(p.name for p in run.iterdir()) == ["wavemixer-manifest.json"]


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
def test_a_run_folder_without_its_weights_is_named_as_one(command, image, tmp_path, capsys):
    """A run restored from its record (results, config, curve; no best/) is not read as a broken saved model."""
    from wavemixer.runs import restore_record

    from .fake_runs import fake_run

    record = fake_run(tmp_path / "records" / "r-s0", seed=0, test=50.0)
    run = tmp_path / "runs" / "r-s0"
    assert restore_record(record, run)
    args = {"eval": [str(run)], "predict": [str(run), str(image)], "export": [str(run), str(tmp_path / "m.onnx")]}
    code, err = _cli([command, *args[command]], capsys)
    _assert_one_line_error(code, err, f"{run} is a training run folder without its weights ({run / 'best'} is missing")
    assert not (tmp_path / "m.onnx").exists()
    (run / "best").write_text("a file where the saved model belongs\n")  # was "best is missing"
    code, err = _cli([command, *args[command]], capsys)
    _assert_one_line_error(code, err, f"{run} is a training run folder whose saved model is damaged ({run / 'best'} is")
    (run / "best").unlink()
    (run / "best" / "config.json").mkdir(parents=True)
    code, err = _cli([command, *args[command]], capsys)
    _assert_one_line_error(code, err, f"saved model is damaged ({run / 'best' / 'config.json'} is not a file)")
    (run / "checkpoint.pt").mkdir()
    code, err = _cli(["train", "--resume", str(run)], capsys)
    _assert_one_line_error(code, err, f"{run / 'checkpoint.pt'} is not a file: --resume needs a run folder with a")


# ------------------------------------------------------------------------------- crash safety
def test_a_run_killed_while_saving_its_checkpoint_resumes_exactly(tmp_path):
    """SIGKILL while checkpoint.pt's temporary is on disk: the old checkpoint is intact, the temporary is
    never read, it is removed on resume, and the resumed run ends with an uninterrupted run's weights."""
    cfg = dict(epochs=3, **TINY)
    full = train(TrainConfig(output=str(tmp_path / "full"), **cfg))
    run = tmp_path / "killed"
    argv = ["train", "--output", str(run), "--epochs", "3", *TINY_FLAGS]
    env = _env(WAVEMIXER_TEST_PAUSE_BEFORE_RENAME="1")
    proc = subprocess.Popen([sys.executable, "-m", "wavemixer.cli", *argv], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the second epoch's checkpoint save: a finished one already exists
            if (run / "checkpoint.pt").is_file() and list(run.glob(".checkpoint.pt.*.tmp")):
                break
            assert proc.poll() is None, "the training ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint save was seen in progress")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(run.glob(".checkpoint.pt.*.tmp")), "the kill should leave the temporary behind"
    assert load_train_state(run / "checkpoint.pt")["epoch"] == 1  # the last complete save, not the partial one
    resumed = train(TrainConfig(resume=str(run), quiet=True))
    assert not list(run.glob(".*.tmp")) and not list(run.glob("*/.*.tmp"))
    a, b = load_file(tmp_path / "full" / "last" / "model.safetensors"), load_file(run / "last" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test"] == full["test"] and math.isfinite(resumed["test"]["top1"])


# =============================================================================== issue: one owner per output
def _hold(path: Path, *, folder: bool = True) -> int:
    """Hold ``path`` as another process would: ``flock`` on the folder itself, or on a file's ``.NAME.lock``
    (an open file description of our own conflicts with the CLI's exactly as another process's does)."""
    import fcntl

    target = path if folder else path.parent / f".{path.name}.lock"
    fd = os.open(target, os.O_RDONLY) if folder else os.open(target, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_two_trainings_started_together_into_one_folder_one_owns_it(tmp_path):
    """Both start at once: exactly one trains (exit 0), the other is refused in one line (exit 2); the
    folder's results are the winner's own."""
    run = tmp_path / "run"
    env = _env()
    argv = [sys.executable, "-m", "wavemixer.cli", "train", "--output", str(run), "--epochs", "1", *TINY_FLAGS]
    procs = [
        subprocess.Popen([*argv, "--seed", str(seed)], env=env, stderr=subprocess.PIPE, text=True) for seed in (1, 2)
    ]
    ends = [(p.wait(120), p.stderr.read().strip()) for p in procs]
    assert sorted(code for code, _ in ends) == [0, 2], ends
    winner = [1, 2][[code for code, _ in ends].index(0)]
    (loser_err,) = [err for code, err in ends if code == 2]
    assert len(loser_err.splitlines()) == 1 and "Traceback" not in loser_err
    assert "in use by another wavemixer process" in loser_err or "already exists and is not empty" in loser_err
    assert json.loads((run / "results.json").read_text())["seed"] == winner
    assert load_train_state(run / "checkpoint.pt")["config"]["seed"] == winner


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("train --output", "run folder {path} is in use by another wavemixer process"),
        ("train --resume", "run folder {path} is in use by another wavemixer process"),
        ("eval --output-dir", "output folder {path} is in use by another wavemixer process"),
        ("eval into its run folder", "run folder {path} is in use by another wavemixer process"),
        ("predict -o", "--output {path} is in use by another wavemixer process"),
        ("predict --output-dir", "--output-dir {path} is in use by another wavemixer process"),
    ],
)
def test_an_output_another_process_holds_is_refused(case, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("L", (16, 16), 90).save(tmp_path / "img.png")
    if case in ("train --resume", "eval into its run folder"):
        train(TrainConfig(output=str(tmp_path / "run"), epochs=2, stop_after_steps=5, **TINY))
    if case.startswith("train"):
        held = tmp_path / "run"
        flags = ["--resume", str(held)] if case == "train --resume" else ["--output", str(held), *TINY_FLAGS]
        argv = ["train", *flags, "--epochs", "2"]
    elif case == "eval into its run folder":
        held, argv = tmp_path / "run", ["eval", str(tmp_path / "run"), "--threads", "1"]
    elif case == "eval --output-dir":
        held = tmp_path / "reports"
        argv = ["eval", str(_tiny_model_folder(tmp_path / "m")), "--dataset", "digits", "--output-dir", str(held)]
    elif case == "predict -o":
        held = tmp_path / "p.csv"
        argv = ["predict", str(_tiny_model_folder(tmp_path / "m")), str(tmp_path / "img.png"), "-o", str(held)]
    else:
        model = WaveMixSegmentation(num_classes=3, depth=1, final_dim=16, level=1)
        folder = save_pretrained(model, tmp_path / "seg", preprocessing={"mean": [0.5] * 3, "std": [0.5] * 3})
        held = tmp_path / "pred"
        argv = ["predict", str(folder), str(tmp_path / "img.png"), "--output-dir", str(held)]
    is_folder = case != "predict -o"
    if is_folder:
        held.mkdir(exist_ok=True)
    fd = _hold(held, folder=is_folder)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    try:
        code, err = _cli(argv, capsys)
    finally:
        os.close(fd)
    _assert_one_line_error(code, err, fragment.format(path=held))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written meanwhile


# =============================================================================== issue: images deeper than 8 bits
def _deep_images(tmp_path: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """16-bit PNG and TIFF and 32-bit float TIFF files, with the [0, 1] values each stands for."""
    rng = np.random.default_rng(0)
    u16 = rng.integers(0, 65536, (12, 10), dtype=np.uint16)
    f32 = rng.random((12, 10), dtype=np.float32)
    files = {}
    for name, arr, value in (("a16.png", u16, u16 / 65535), ("a16.tif", u16, u16 / 65535), ("f32.tif", f32, f32)):
        Image.fromarray(arr).save(tmp_path / name)
        files[name] = (tmp_path / name, value.astype(np.float32))
    return files


@pytest.mark.parametrize("name", ["a16.png", "a16.tif", "f32.tif"])
def test_16_bit_and_float_images_are_read_at_full_range(name, tmp_path):
    from wavemixer.data.images import load_image

    path, value = _deep_images(tmp_path)[name]
    gray = load_image(path, "L")
    assert gray.dtype == torch.float32 and torch.equal(gray[0], torch.from_numpy(value))
    rgb = load_image(path, "RGB")
    assert rgb.shape == (3, 12, 10) and all(torch.equal(rgb[c], gray[0]) for c in range(3))
    eight_bit = load_image(path, "L", full_range=False)  # the 8-bit pipelines: scaled, never clipped
    assert torch.equal(eight_bit[0], torch.from_numpy(np.round(value * 255).astype(np.uint8)))


def test_a_16_bit_data_set_keeps_its_contrast(tmp_path):
    """Two classes at 16-bit levels 3,000 and 40,000 (both 'white' once clipped to 8 bits): the statistics and
    the model inputs tell them apart."""
    from wavemixer.tasks.classification import ClassificationTask

    rng = np.random.default_rng(1)
    for c, level in (("dark", 3_000), ("bright", 40_000)):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(12):
            arr = (level + rng.integers(-500, 500, (16, 16))).astype(np.uint16)
            Image.fromarray(arr).save(tmp_path / "d" / c / f"{i}.png")
    data = ClassificationTask(
        TrainConfig(dataset="imagefolder", data_dir=str(tmp_path / "d"), model="x", epochs=1)
    ).build_data()
    pixels = np.concatenate([np.asarray(Image.open(tmp_path / "d" / f)).ravel() / 65535 for f in data.train.files])
    assert data.info.mean[0] == pytest.approx(pixels.mean(), abs=1e-3)
    assert data.info.std[0] == pytest.approx(pixels.std(), abs=1e-3) and data.info.std[0] > 0.2
    data.train.transform.train = False
    means = {data.train.labels[i]: float(data.train[i][0].mean()) for i in range(len(data.train))}
    assert abs(means[0] - means[1]) > 1.5  # in units of the data's std: far apart, not both at the clip


# =============================================================================== issue: manifests
def _class_images(root: Path, classes=("cat", "dog"), n: int = 5) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("L", (12, 12), 30 + 100 * classes.index(c) + i).save(root / c / f"{i}.png")
    return root


def _manifest_rows() -> list[str]:
    return [f"img/{c}/{i}.png,{c}" for c in ("cat", "dog") for i in range(6)]


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        (["img/cat/0.png,cat,tset"], "row 14: split 'tset' is not one of train, val, valid, validation, test"),
        (["img/cat/0.png,cat"], "row 14: img/cat/0.png is listed twice (row 2 too)"),
        (["./img/cat/0.png,cat"], "row 14: ./img/cat/0.png is listed twice (row 2 too)"),
        (["img/cat/0.png,dog"], "row 14: img/cat/0.png is listed with label 'cat' (row 2) and 'dog'"),
        (["img/cat/9.png,"], "row 14: empty label; every row needs a path and a label"),
        (["../img/cat/0.png,cat"], "row 14: path ../img/cat/0.png is outside the manifest folder"),
        (["img/../../x.png,cat"], "row 14: path img/../../x.png is outside the manifest folder"),
        (["/etc/hostname.png,cat"], "row 14: path /etc/hostname.png is absolute"),
    ],
)
def test_manifest_rows_that_would_be_dropped_leaked_or_misread_are_refused(lines, fragment, tmp_path, capsys):
    _class_images(tmp_path / "img", n=6)
    header = "path,label,split" if lines[0].count(",") == 2 else "path,label"
    rows = [r + ("," if header.endswith("split") else "") for r in _manifest_rows()]
    (tmp_path / "m.csv").write_text("\n".join([header, *rows, *lines]) + "\n")
    code, err = _cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "m.csv")], capsys)
    _assert_one_line_error(code, err, f"manifest {tmp_path / 'm.csv'} {fragment}")
    assert not (tmp_path / "runs").exists()


def test_a_json_manifest_with_a_key_twice_is_refused(tmp_path, capsys):
    _class_images(tmp_path / "img", n=6)
    (tmp_path / "m.json").write_text('{"img/cat/0.png": "cat", "img/dog/0.png": "dog", "img/cat/0.png": "dog"}')
    code, err = _cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "m.json")], capsys)
    _assert_one_line_error(code, err, "lists 'img/cat/0.png' twice as a key")


def test_an_excel_csv_with_a_byte_order_mark_and_crlf_reads_as_plain_csv(tmp_path):
    from wavemixer.data.scan import scan_folder

    _class_images(tmp_path / "img", n=6)
    text = "\r\n".join(["Path,Label", *_manifest_rows()]) + "\r\n"
    (tmp_path / "m.csv").write_bytes(text.encode("utf-8-sig"))  # Excel's "CSV UTF-8"
    scan = scan_folder(tmp_path / "m.csv")
    assert scan.classes == ["cat", "dog"] and len(scan.splits["train"][0]) == 12
    assert all(f.startswith("img/") and not f.endswith("\r") for f in scan.splits["train"][0])


# =============================================================================== issue: model folders
def _nan_weights(folder: Path) -> None:
    from safetensors.torch import save_file

    state = load_file(folder / "model.safetensors")
    state[next(k for k, v in state.items() if v.is_floating_point())][0] = float("nan")
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})


def _forged_header(folder: Path) -> None:
    """A header claiming a 40 GB tensor in a file of a few hundred bytes."""
    header = json.dumps({"head.weight": {"dtype": "F32", "shape": [10_000_000_000], "data_offsets": [0, 40 * 10**9]}})
    (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header.encode() + b"\0" * 64)


def _edit_preprocessing(**changes):
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config["preprocessing"].update(changes)
        (folder / "config.json").write_text(json.dumps(config))  # json writes NaN as the non-standard NaN

    return edit


@pytest.mark.parametrize(
    ("command", "corrupt", "fragment"),
    [
        ("predict", _edit_preprocessing(std=[0]), "std must be > 0 for every channel (it divides the image), got [0]"),
        ("eval", _edit_preprocessing(std=[0.0]), "std must be > 0 for every channel"),
        ("predict", _edit_preprocessing(mean=[float("nan")]), "mean must be a list of finite numbers, got [nan]"),
        ("predict", _edit_preprocessing(input_size=[1, 100000, 100000]), "input_size [1, 100000, 100000] is out of"),
        ("predict", _edit_preprocessing(input_size=[4, 16, 16]), "1 or 3 channels"),
        ("predict", _edit_preprocessing(color_mode="RGB"), "color_mode 'RGB' does not match 1-channel input_size"),
        ("predict", _edit_preprocessing(mean=[0.5, 0.5]), "mean has 2 values for 1-channel images; give 1"),
        ("predict", _nan_weights, "holds non-finite weights (NaN or infinity in"),
        ("eval", _nan_weights, "holds non-finite weights"),
        ("predict", _forged_header, "the header says tensor 'head.weight' is F32 [10000000000] (40,000,000,000 bytes"),
    ],
)
def test_a_model_folder_is_checked_before_it_is_used(command, corrupt, fragment, model_dir, image, capsys):
    corrupt(model_dir)
    argv = [str(image)] if command == "predict" else ["--dataset", "digits"]
    code, err = _cli([command, str(model_dir), *argv], capsys)
    _assert_one_line_error(code, err, fragment)
    assert str(model_dir) in err


# =============================================================================== issue: data folders
@pytest.mark.timeout(120)  # the old scan blocked on the pipe forever
def test_a_named_pipe_among_the_images_is_reported_not_read(tmp_path, capsys):
    root = _class_images(tmp_path / "d")
    os.mkfifo(root / "cat" / "x.png")
    argv = ["train", "--dataset", "imagefolder", "--data-dir", str(root), "--output", str(tmp_path / "run")]
    code, err = _cli([*argv, "--epochs", "1", "--batch-size", "4", "--threads", "1"], capsys)
    _assert_one_line_error(code, err, "1 of 11 images in")
    assert "cat/x.png (not a regular file: a named pipe)" in err and "--skip-corrupt" in err
    from wavemixer.data.scan import scan_folder

    assert scan_folder(root, skip_corrupt=True).corrupt == [("cat/x.png", "not a regular file: a named pipe")]
    code, err = _cli(["predict", str(_tiny_model_folder(tmp_path / "m")), str(root / "cat")], capsys)
    _assert_one_line_error(code, err, f"1 of 6 images cannot be read: {root / 'cat' / 'x.png'} (not a regular file")


@pytest.mark.timeout(120)  # the zip check blocked on the pipe forever
def test_a_named_pipe_as_the_data_set_is_refused_not_opened(tmp_path, capsys):
    os.mkfifo(tmp_path / "d.zip")
    code, err = _cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "d.zip")], capsys)
    _assert_one_line_error(code, err, f"{tmp_path / 'd.zip'} is neither a folder, a zip file nor a .csv/.json manifest")


def test_an_empty_class_folder_is_an_error_not_a_missing_class(tmp_path, capsys):
    root = _class_images(tmp_path / "d")
    (root / "emu").mkdir()
    (root / "emu" / "notes.txt").write_text("photos to come\n")
    code, err = _cli(["train", "--dataset", "imagefolder", "--data-dir", str(root)], capsys)
    _assert_one_line_error(code, err, f"class folder emu in {root} has no images")
    split = _class_images(tmp_path / "s" / "train")
    (split / "emu").mkdir()
    _class_images(tmp_path / "s" / "test")
    code, err = _cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "s")], capsys)
    _assert_one_line_error(code, err, "class folder train/emu in")


def test_a_zip_whose_directory_is_damaged_is_one_line(tmp_path, capsys):
    """zipfile.is_zipfile reads only the end record; a damaged central directory then ended in a BadZipFile
    traceback."""
    import zipfile

    root = _class_images(tmp_path / "d")
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        for p in sorted(root.rglob("*.png")):
            z.write(p, p.relative_to(root).as_posix())
    data = (tmp_path / "d.zip").read_bytes()
    end = data.rfind(b"PK\x05\x06")
    directory = int.from_bytes(data[end + 16 : end + 20], "little")  # the end record's offset of the directory
    (tmp_path / "d.zip").write_bytes(data[:directory] + b"XX" + data[directory + 2 :])
    code, err = _cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "d.zip")], capsys)
    _assert_one_line_error(code, err, f"{tmp_path / 'd.zip'} is a damaged zip file (Bad magic number for central")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("summary.csv", "is not a run's per-epoch table (CSV text)"),
        ("results.json", "is not JSON text (invalid start byte at byte 1)"),
    ],
)
def test_run_files_that_are_not_text_are_named(name, fragment, tmp_path, capsys):
    """A summary.csv or results.json that is not UTF-8 gave only "'utf-8' codec can't decode byte 0xff ...",
    without the file; a segmentation folder's classes.txt likewise."""
    from .fake_runs import fake_run

    run = fake_run(tmp_path / "run-s0", seed=0, test=50.0)
    (run / name).write_bytes(b"\x00\xff\xfe not text\n")
    code, err = _cli(["runs", str(run)], capsys)
    _assert_one_line_error(code, err, f"{run / name} {fragment}")
    if name == "summary.csv":
        from wavemixer.data.masks import load_segfolder

        (tmp_path / "seg").mkdir()
        (tmp_path / "seg" / "classes.txt").write_bytes(b"road\n\xff\xfe\n")
        with pytest.raises(ValueError, match=r"classes\.txt is not UTF-8 text \(invalid start byte at byte 5\)"):
            load_segfolder(tmp_path / "seg")


@pytest.mark.parametrize("entry", ["/abs/cat/x.png", "data/../../cat/x.png", "C:/data/cat/x.png"])
def test_a_zip_entry_outside_the_tree_is_refused_not_made_a_class(entry, tmp_path, capsys):
    import zipfile

    root = _class_images(tmp_path / "d")
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        for p in sorted(root.rglob("*.png")):
            z.write(p, p.relative_to(root).as_posix())
        z.writestr(entry, (root / "cat" / "0.png").read_bytes())
    code, err = _cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "d.zip")], capsys)
    _assert_one_line_error(code, err, f"has the entry {entry!r}, an absolute path or one with '..'")


# =============================================================================== issue: OS faults
@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write in, root included: chmod for other users; for root (tests run as root in
    containers) the immutable attribute, which binds root too. Skips, saying why, where neither works."""
    folder = tmp_path / "locked"
    folder.mkdir()
    undo = None
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        undo = ["chattr", "-i", str(folder)]
    try:
        (folder / "probe").touch()
    except OSError:
        yield folder
    else:
        (folder / "probe").unlink()
        pytest.skip("cannot make a folder read-only here (root without chattr +i on this file system)")
    finally:
        if undo:
            subprocess.run(undo, check=True)


@pytest.fixture
def unprivileged():
    """A context manager under which file permissions bind this thread. Root (tests run as root in containers)
    reads any file; without ``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH`` it is held to the permission bits
    like any user, while the files and folders it owns stay readable (the venv, ``tmp_path``). A user other than
    root is held to them already. Skips, saying why, where the capabilities cannot be dropped."""
    import ctypes

    if os.geteuid() != 0:
        yield contextlib.nullcontext
        return
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, caps = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    if not hasattr(libc, "capget") or libc.capget(ctypes.byref(header), caps) != 0:
        pytest.skip("cannot read this thread's capabilities (capget), so cannot drop root's file-permission override")
    effective = caps[0].effective

    @contextlib.contextmanager
    def held_to_permissions():
        caps[0].effective = effective & ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.capset(ctypes.byref(header), caps) != 0:
            pytest.skip(f"cannot drop root's file-permission override (capset: errno {ctypes.get_errno()})")
        try:
            yield
        finally:
            caps[0].effective = effective
            assert libc.capset(ctypes.byref(header), caps) == 0

    probe = Path(tempfile.mkdtemp()) / "probe"
    probe.write_text("x")
    probe.chmod(0)
    with held_to_permissions(), pytest.raises(PermissionError):
        probe.read_text()
    shutil.rmtree(probe.parent)
    yield held_to_permissions


@pytest.mark.parametrize("what", ["a class folder", "the data zip"])
def test_a_data_set_the_user_may_not_read_is_said_to_be_unreadable(what, unprivileged, tmp_path, capsys):
    """An unreadable class folder was reported as a class without images, and an unreadable zip as "neither a
    folder, a zip file nor a manifest": os.walk and zipfile.is_zipfile take the permission error for an answer."""
    import zipfile

    root = _class_images(tmp_path / "d")
    locked = root / "dog"
    if what == "the data zip":
        with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
            for f in sorted(root.rglob("*.png")):
                z.write(f, f.relative_to(root).as_posix())
        root = locked = tmp_path / "d.zip"
    locked.chmod(0)
    argv = ["train", "--dataset", "imagefolder", "--data-dir", str(root), "--output", str(tmp_path / "run")]
    with unprivileged():
        code, err = _cli(argv, capsys)
    _assert_one_line_error(code, err, f"{locked}: Permission denied (permission denied: change the permissions")
    assert not (tmp_path / "run").exists()


def test_images_the_user_may_not_read_are_named_not_skipped(unprivileged, model_dir, tmp_path, capsys):
    """``predict FOLDER`` searched it with Path.rglob, which skips a sub-folder it cannot list: its images went
    unpredicted, and the command succeeded. An unreadable image, weights file or config is named too."""
    from wavemixer.data.images import image_files_under

    images = tmp_path / "images"
    for sub in ("a", "b"):
        (images / sub).mkdir(parents=True)
        Image.new("L", (16, 16), 7).save(images / sub / "x.png")
    (images / "b").chmod(0)
    (tmp_path / "one.png").write_bytes((images / "a" / "x.png").read_bytes())
    (tmp_path / "one.png").chmod(0)
    weights = _tiny_model_folder(tmp_path / "locked-model") / "model.safetensors"
    weights.chmod(0)
    (tmp_path / "c.yaml").write_text("epochs: 1\n")
    (tmp_path / "c.yaml").chmod(0)
    with unprivileged():
        with pytest.raises(PermissionError) as raised:
            image_files_under(images)
        assert raised.value.filename == str(images / "b")
        results = [
            _cli(["predict", str(model_dir), str(images)], capsys),
            _cli(["predict", str(model_dir), str(tmp_path / "one.png")], capsys),
            _cli(["predict", str(weights.parent), str(images / "a")], capsys),
            _cli(["train", "--config", str(tmp_path / "c.yaml")], capsys),
        ]
    (images / "b").chmod(0o755)
    assert image_files_under(images) == [images / "a" / "x.png", images / "b" / "x.png"]
    hint = "Permission denied (permission denied: change the permissions or choose another path)"
    for (code, err), fragment in zip(
        results,
        [
            f"{images / 'b'}: {hint}",
            f"1 of 1 images cannot be read: {tmp_path / 'one.png'} (Permission denied)",
            f"{weights}: {hint}",
            f"{tmp_path / 'c.yaml'}: {hint}",
        ],
        strict=True,
    ):
        _assert_one_line_error(code, err, fragment)


def test_a_run_the_user_may_not_read_is_not_called_corrupt_or_foreign(unprivileged, tmp_path, capsys):
    """An unreadable checkpoint was "corrupt — start a new run", and an unreadable manifest "not a wavemixer
    manifest: move the file away": advice that loses a sound run. The OS's reason is the message now."""
    run = tmp_path / "run"
    train(TrainConfig(output=str(run), epochs=2, stop_after_steps=5, **TINY))
    hint = "Permission denied (permission denied: change the permissions or choose another path)"
    for name, argv in (
        ("checkpoint.pt", ["train", "--resume", str(run)]),
        (MANIFEST, ["train", "--resume", str(run)]),
        ("checkpoint.pt", ["train", "--init-from", str(run / "checkpoint.pt"), "--output", str(tmp_path / "new")]),
    ):
        before = (run / name).read_bytes()
        (run / name).chmod(0)
        with unprivileged():
            code, err = _cli(argv, capsys)
        (run / name).chmod(0o644)
        _assert_one_line_error(code, err, f"{run / name}: {hint}")
        assert (run / name).read_bytes() == before
    assert not (tmp_path / "new").exists()


def test_a_manifest_or_gzip_file_that_cannot_be_read_says_why_in_one_line(unprivileged, tmp_path, capsys, monkeypatch):
    """A CSV manifest with a field over the csv module's limit ended in a ``_csv.Error`` traceback; an MNIST
    ``.gz`` the user may not read was "not a valid gzip-compressed IDX file; delete it and download again"."""
    import gzip

    from wavemixer.data.builtin import mnist_family_root

    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n" + "a" * 200_000 + ",cat\n")
    argv = ["train", "--dataset", "imagefolder", "--data-dir", str(manifest), "--output", str(tmp_path / "run")]
    code, err = _cli(argv, capsys)
    _assert_one_line_error(code, err, f"cannot read manifest {manifest} (field larger than field limit (131072))")
    manifest.write_text("path,label\n")
    manifest.chmod(0)
    with unprivileged():
        code, err = _cli(argv, capsys)
    _assert_one_line_error(code, err, f"cannot read manifest {manifest} (Permission denied)")

    monkeypatch.setenv("WAVEMIXER_DATA", str(tmp_path / "cache"))
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    stems = [f"{kind}-{part}" for kind in ("train", "t10k") for part in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    for stem in stems:
        (raw / f"{stem}.gz").write_bytes(gzip.compress(b"idx"))
    (raw / f"{stems[0]}.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="is not a valid gzip-compressed IDX file"):
        mnist_family_root("mnist", tmp_path / "data")
    (raw / f"{stems[0]}.gz").write_bytes(gzip.compress(b"idx"))
    (raw / f"{stems[0]}.gz").chmod(0)
    with unprivileged(), pytest.raises(PermissionError) as raised:
        mnist_family_root("mnist", tmp_path / "data")
    assert raised.value.filename == str(raw / f"{stems[0]}.gz")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")]  # no temporary left


def _immutable(path: Path, on: bool) -> None:
    subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)


def test_an_output_below_a_regular_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("mine\n")
    code, err = _cli(["train", "--output", str(tmp_path / "file" / "run"), *TINY_FLAGS, "--epochs", "1"], capsys)
    _assert_one_line_error(code, err, f"cannot create run folder {tmp_path / 'file' / 'run'}")
    assert "Not a directory (a part of the path is a file, not a folder" in err
    assert (tmp_path / "file").read_text() == "mine\n"


def test_a_read_only_output_folder_is_refused_before_any_work(read_only_folder, tmp_path, capsys, model_dir, image):
    code, err = _cli(["train", "--output", str(read_only_folder), *TINY_FLAGS, "--epochs", "1"], capsys)
    _assert_one_line_error(code, err, f"cannot write in run folder {read_only_folder}:")
    code, err = _cli(["eval", str(model_dir), "--dataset", "digits", "--output-dir", str(read_only_folder)], capsys)
    _assert_one_line_error(code, err, f"cannot write in output folder {read_only_folder}:")
    code, err = _cli(["predict", str(model_dir), str(image), "-o", str(read_only_folder / "p.csv")], capsys)
    _assert_one_line_error(code, err, f"cannot write --output {read_only_folder / 'p.csv'}:")
    assert not any(read_only_folder.iterdir())


def test_resuming_in_a_read_only_run_folder_loses_no_epoch(read_only_folder, tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("the run is made in place, then made immutable: needs root's chattr")
    run = read_only_folder
    _immutable(run, False)
    train(TrainConfig(output=str(run), epochs=2, stop_after_steps=5, **TINY))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    _immutable(run, True)
    code, err = _cli(["train", "--resume", str(run)], capsys)
    _assert_one_line_error(code, err, f"cannot write in run folder {run}: Operation not permitted")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


_FSIZE_TRAIN = """
import resource, sys
from wavemixer.train.engine import Trainer
from wavemixer.cli import main

epoch = Trainer.train_one_epoch
def limited(self):  # the second epoch's saves meet a file-size limit: a real EFBIG from the kernel
    if self.epoch == 1:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
    return epoch(self)
Trainer.train_one_epoch = limited
sys.exit(main(sys.argv[1:]))
"""


def test_a_file_size_limit_while_saving_stops_in_one_line_and_resumes_exactly(tmp_path):
    run = tmp_path / "run"
    env = _env()
    argv = ["train", "--output", str(run), "--epochs", "2", *TINY_FLAGS]
    done = subprocess.run([sys.executable, "-c", _FSIZE_TRAIN, *argv], env=env, capture_output=True, text=True)
    err = done.stderr.strip()
    _assert_one_line_error(done.returncode, err, "training stopped: ")
    assert f"{run}/" in err and "File too large (over the file-size limit" in err and f"--resume {run}" in err
    assert not [p for p in run.rglob("*") if p.name.startswith(".")]  # no temporaries, no half-written file
    assert load_train_state(run / "checkpoint.pt")["epoch"] == 1
    resumed = train(TrainConfig(resume=str(run), quiet=True))
    full = train(TrainConfig(output=str(tmp_path / "full"), epochs=2, **TINY))
    a, b = load_file(tmp_path / "full" / "last" / "model.safetensors"), load_file(run / "last" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a) and resumed["test"] == full["test"]


_FSIZE_PREDICT = """
import resource, sys
from wavemixer.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (10, resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""


def test_a_file_size_limit_on_predictions_leaves_no_partial_file(model_dir, image, tmp_path):
    out = tmp_path / "p.csv"
    env = _env()
    argv = ["predict", str(model_dir), str(image), "-o", str(out)]
    done = subprocess.run([sys.executable, "-c", _FSIZE_PREDICT, *argv], env=env, capture_output=True, text=True)
    _assert_one_line_error(done.returncode, done.stderr.strip(), f"{out}: File too large (over the file-size limit")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "model"]  # no output, temporary or lock


_OUT_OF_MEMORY = """
import resource, sys
import torch  # noqa: F401  (its libraries map gigabytes of address space: imported before the limit)
from wavemixer.cli import main
vm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 2**31, resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc to size the limit")
def test_an_allocation_that_fails_is_one_line(tmp_path, image):
    """A model input size within bounds (4096²) that this process's memory (limited to 2 GB more) cannot hold."""
    big = _tiny_model_folder(
        tmp_path / "big", preprocessing={"mean": [0.5], "std": [0.5], "input_size": [1, 4096, 4096]}
    )
    env = _env()
    done = subprocess.run(
        [sys.executable, "-c", _OUT_OF_MEMORY, "predict", str(big), str(image)], env=env, capture_output=True, text=True
    )
    _assert_one_line_error(done.returncode, done.stderr.strip(), "out of memory (an allocation of ")
    assert "lower --batch-size, or the input size" in done.stderr


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and header for a width x height image, with one tiny data chunk: a bomb's shape."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--val-fraction", "0.9999"], "--val-fraction 0.9999 holds out 1,438 of the 1,438 training images as val"),
        (["--lr", "1e308"], "--lr must be a finite number in (0, 10000] (or unset), got '1e308'"),
        (["--sgd-lr", "1e308"], "--sgd-lr must be a finite number in (0, 10000], got '1e308'"),
        (["--weight-decay", "1e308"], "--weight-decay must be a finite number in [0, 10000], got '1e308'"),
        (["--input-size", "100000"], "--input-size must be an integer in [1, 4096] (or unset), got '100000'"),
        (["--model", "wavemix_lite_32_7_cifar10_tin"], "did you mean wavemix_lite_32_7_cifar10_tiny"),
        (["--dataset", "cifar"], "unknown data set 'cifar' (did you mean cifar10 or cifar100?)"),
    ],
)
def test_values_that_failed_deep_inside_are_one_line(flags, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _cli(["train", *flags, "--epochs", "1", "--threads", "1"], capsys)
    _assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("-o a folder", "--output {tmp}/out is a folder; give a file to write"),
        (
            "decompression bomb",
            "1 of 1 images cannot be read: {tmp}/bomb.png (Image size (2500000000 pixels) exceeds limit of",
        ),
        ("checkpoint without config", "{tmp}/run/checkpoint.pt is not a complete wavemixer training checkpoint"),
    ],
)
def test_os_and_file_faults_are_one_line(case, fragment, tmp_path, capsys, model_dir, image):
    if case == "-o a folder":
        (tmp_path / "out").mkdir()
        argv = ["predict", str(model_dir), str(image), "-o", str(tmp_path / "out"), "--force"]
    elif case == "decompression bomb":
        (tmp_path / "bomb.png").write_bytes(_png_claiming(50_000, 50_000))
        argv = ["predict", str(model_dir), str(tmp_path / "bomb.png")]
    else:
        train(TrainConfig(output=str(tmp_path / "run"), epochs=2, stop_after_steps=5, **TINY))
        state = load_train_state(tmp_path / "run" / "checkpoint.pt")
        del state["config"]
        torch.save(state, tmp_path / "run" / "checkpoint.pt")
        argv = ["train", "--resume", str(tmp_path / "run")]
    code, err = _cli(argv, capsys)
    _assert_one_line_error(code, err, fragment.format(tmp=tmp_path))
    if case == "decompression bomb":
        assert "refused as a possible decompression bomb" in err


# =============================================================================== issue: the first hour
def test_predict_skip_corrupt_lists_the_unreadable_with_whole_names(model_dir, image, tmp_path, capsys):
    deep = tmp_path / ("a_rather_long_folder_name_" * 4) / "with" / "nested" / "levels"
    deep.mkdir(parents=True)
    for name in ("broken_one.png", "broken_two.png"):
        (deep / name).write_bytes(b"not an image at all")
    code, err = _cli(["predict", str(model_dir), str(image), str(deep)], capsys)
    _assert_one_line_error(code, err, "2 of 3 images cannot be read: ")
    for name in ("broken_one.png", "broken_two.png"):  # whole paths, not cut mid-way
        assert f"{deep / name} (not an image format Pillow can read)" in err
    assert main(["predict", str(model_dir), str(image), str(deep), "--skip-corrupt"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0].startswith("file,label") and len(out.out.splitlines()) == 2
    assert "skipped 2 unreadable image(s) (--skip-corrupt): " in out.err and str(deep / "broken_two.png") in out.err
    code, err = _cli(["predict", str(model_dir), str(deep), "--skip-corrupt"], capsys)  # was a header-only table
    _assert_one_line_error(code, err, "none of the 2 images could be read (--skip-corrupt): ")


def test_predict_to_a_file_says_what_it_wrote_and_predicts_a_file_given_twice_once(model_dir, image, tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert main(["predict", str(model_dir), str(image), str(image), str(tmp_path / "."), "-o", str(out)]) == 0
    assert f"wrote 1 prediction to {out}" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 2  # the header and one row


def test_packaged_weights_explain_their_empty_input_z(image, capsys):
    assert main(["predict", "--model", "wavemix_lite_8_10_mnist", "--pretrained", str(image)]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[1].split(",")[4] == ""  # input_z
    assert "input_z is empty" in out.err and "stores no statistics of its training images" in out.err


def test_the_python_api_names_its_own_overwrite_option(tmp_path):
    model = WaveMix(num_classes=2, depth=1, final_dim=16, level=1)
    save_pretrained(model, tmp_path / "m")
    with pytest.raises(FileExistsError, match="pass force=True to overwrite it") as info:
        save_pretrained(model, tmp_path / "m")
    assert "--force" not in str(info.value)


def test_top5_is_left_out_with_five_classes_or_fewer(tmp_path, capsys):
    from wavemixer.data.bundle import DataInfo
    from wavemixer.tasks.classification import ClassificationTask

    info = lambda n: DataInfo("x", n, [str(i) for i in range(n)], 1, (8, 8), (0.5,), (0.5,))  # noqa: E731
    assert set(ClassificationTask().make_metrics(info(5), torch.device("cpu")).keys()) == {"top1"}
    assert set(ClassificationTask().make_metrics(info(6), torch.device("cpu")).keys()) == {"top1", "top5"}
    root = _class_images(tmp_path / "d", classes=("cat", "dog", "emu"), n=4)
    model = WaveMix(num_classes=3, depth=1, final_dim=16, level=1, in_chans=1, stem="strided", stride=1)
    pre = {"mean": [0.5], "std": [0.5], "input_size": [1, 12, 12]}
    folder = save_pretrained(model, tmp_path / "m", preprocessing=pre, labels=["cat", "dog", "emu"])
    argv = [
        "eval",
        str(folder),
        "--dataset",
        "imagefolder",
        "--data-dir",
        str(root),
        "--output-dir",
        str(tmp_path / "e"),
    ]
    assert main(argv) == 0
    assert "top-1" in capsys.readouterr().out.splitlines()[0] and "top-5" not in capsys.readouterr().out
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert "top1" in metrics and "top5" not in metrics


def test_one_epoch_is_not_one_epochs(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        train(TrainConfig(output=str(tmp_path / "run"), epochs=1, **{**TINY, "quiet": False}), out=f)
    text = log.read_text()
    assert "params, 1 epoch) on digits" in text and "1 epochs" not in text


def test_the_choice_lines_say_what_was_decided_and_why(tmp_path):
    from wavemixer.tasks.classification import ClassificationTask

    root = tmp_path / "d"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (32, 32), (20 + 200 * (c == "dog"), 80, i)).save(root / c / f"{i}.png")
    notes = ClassificationTask(TrainConfig(dataset="imagefolder", data_dir=str(root))).build_data().notes
    stride = next(n for n in notes if "stem stride" in n)
    assert "stem stride 2 because the images are 32x32, at least 24 px: " in stride and "28 px" not in stride
    assert "x fewer MACs per image than stride 1 at 32x32" in stride
    epochs = next(n for n in notes if n.startswith("chose 30 epochs"))  # 16 training images: the cap decides
    assert epochs.startswith("chose 30 epochs, the most the default allows: the ~5 min budget would hold ~")
    assert "these take ~" in epochs and "s estimated" in epochs


def test_bench_tables_and_plots_leave_out_what_has_no_data(tmp_path):
    from wavemixer.bench.report import _plot, format_markdown

    def row(model, mode, ratio=None, params=0.04):
        return dict(model=model, mode=mode, precision="fp32", source="wavemixer", params_m=params, gmacs=0.01,
                    batch_size=8, ms_median=5.0, ms_p25=4.0, ms_p75=6.0, samples_per_s=100.0, peak_mem_mb=20.0,
                    ms_ratio_vs_ref=ratio, mem_ratio_vs_ref=None, ms_ratio_vs_ref_fp32=None,
                    mem_ratio_vs_ref_fp32=None)  # fmt: skip

    alone = [row("a", "train"), row("a", "infer")]  # --no-reference, one model
    assert "÷ ref" not in format_markdown(alone)
    assert not _plot(alone, tmp_path / "plot.png") and not (tmp_path / "plot.png").exists()
    compared = [row("a", "infer", ratio=0.5), row("b", "infer", params=0.2)]
    table = format_markdown(compared)
    assert "| time ÷ ref |" in table and "mem ÷ ref" not in table and "| 0.50 |" in table
    assert _plot(compared, tmp_path / "plot.png")


def test_the_confusion_matrix_title_and_colour_bar_fit_the_figure(tmp_path, monkeypatch):
    from wavemixer.train import plots

    figures = []
    monkeypatch.setattr(plots, "atomic_write", lambda path, write: figures.append(plots._pyplot().gcf()))
    monkeypatch.setattr(plots._pyplot(), "close", lambda fig: None)
    title = "wavemix_lite_32_7_cifar10_tiny [depth=1, final_dim=16, stride=2] on imagefolder test (top-1 88.86%)"
    for n in (3, 10):
        plots.plot_confusion_matrix(np.eye(n, dtype=int) * 5, [str(i) for i in range(n)], tmp_path / "c.png", title)
    for fig in figures:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = fig.axes[0].title.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, (box, fig.bbox)
        assert "".join(fig.axes[0].get_title().split()) == "".join(title.split())  # wrapped, not cut
        assert fig.axes[1].get_ylabel().startswith("fraction of the true class")
        plots._pyplot().close(fig)


def test_warnings_print_as_one_line_like_the_errors(monkeypatch, capsys) -> None:
    import warnings

    import wavemixer.cli.models as models_command

    def warn_and_finish(args) -> int:
        warnings.warn("a token map of 1x1\nsupports level 0 only", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(models_command, "run", warn_and_finish)
    assert main(["models"]) == 0
    assert capsys.readouterr().err == "wavemixer models: warning: a token map of 1x1 supports level 0 only\n"
    with pytest.warns(UserWarning, match="supports level 0"):  # --debug keeps Python's own warning
        assert main(["--debug", "models"]) == 0


def test_a_torn_training_checkpoint_is_one_short_line(tmp_path: Path) -> None:
    torn = tmp_path / "checkpoint.pt"
    buf = io.BytesIO()
    torch.save({"epoch": 1}, buf)
    torn.write_bytes(buf.getvalue()[:100])  # the zip's central directory is gone, as after a torn copy
    with pytest.raises(ValueError) as caught:
        load_train_state(torn)
    message = str(caught.value)
    assert message.startswith(f"{torn} is not a readable training checkpoint (RuntimeError: ")
    assert message.endswith("); the file is corrupt — start a new run or restore it")
    assert "\n" not in message and "If you are seeing this error" not in message  # torch's advice left out


def test_a_stop_before_the_first_checkpoint_does_not_advise_a_resume_that_fails(tmp_path, capsys):
    """``--stop-after-steps`` inside the first epoch: there is no checkpoint.pt, so ``--resume`` cannot work."""
    run = tmp_path / "run"
    flags = [*TINY_FLAGS[:-1], "--epochs", "2", "--bn-recalibrate", "0", "--output", str(run)]
    assert main(["train", *flags, "--stop-after-steps", "1"]) == 0  # 256 images at batch 64: 4 steps an epoch
    out = capsys.readouterr().out
    assert (
        f"nothing saved yet (a checkpoint is written at the end of each epoch); start again with --output {run} --force"
        in out
    )
    assert "--resume" not in out and not (run / "checkpoint.pt").exists()
    assert main(["train", *flags, "--force", "--stop-after-steps", "5"]) == 0  # in epoch 2
    assert f"continue with --resume {run}" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--quiet"]) == 0


def test_a_resume_refuses_options_that_change_what_the_run_trains(tmp_path, capsys):
    """``--resume DIR --lr 5`` trained on at the checkpoint's rate (the optimiser state restores it) and said
    nothing; ``--model-arg depth=3`` failed deep in load_state_dict. Options of where and how it runs stay free."""
    run = tmp_path / "run"
    flags = [*TINY_FLAGS, "--epochs", "2", "--bn-recalibrate", "0", "--lr", "0.002", "--output", str(run)]
    assert main(["train", *flags, "--stop-after-steps", "5"]) == 0  # in epoch 2: checkpoint.pt holds epoch 1
    capsys.readouterr()
    for extra, fragment in (
        (["--lr", "5"], f"--resume {run} continues the run as it was configured, but --lr 5.0 differs from its 0.002"),
        (
            ["--model-arg", "depth=3", "--opt", "sgd"],
            "but --model-arg {'depth': 3} differs from its {'depth': 1} (and --opt)",
        ),
        (["--lr", "2e-3", "--epochs", "3"], "but --epochs 3 differs from its 2; drop them, or start a new run"),
    ):
        code, err = _cli(["train", "--resume", str(run), *extra], capsys)
        _assert_one_line_error(code, err, fragment)
    checkpoint = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match=r"--lr 5\.0 differs"):
        train(TrainConfig(resume=str(run), lr=5.0))  # the API refuses it too
    assert (run / "checkpoint.pt").read_bytes() == checkpoint  # nothing was trained
    assert main(["train", "--resume", str(run), "--lr", "0.002", "--threads", "1", "--device", "cpu", "--quiet"]) == 0


@pytest.mark.parametrize("linked", ["summary.csv", "best"])
def test_a_resume_refuses_a_run_file_replaced_by_a_link(linked, tmp_path, capsys):
    """A run writes its own folder: through a link, the file (and a cut write's temporary, which the resume's
    clean-up never finds) would land outside it, in whatever the link names."""
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    flags = [*TINY_FLAGS, "--epochs", "2", "--bn-recalibrate", "0", "--output", str(run)]
    assert main(["train", *flags, "--stop-after-steps", "5"]) == 0  # in epoch 2: checkpoint.pt holds epoch 1
    capsys.readouterr()
    (run / linked).rename(elsewhere)
    (run / linked).symlink_to(elsewhere)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = _cli(["train", "--resume", str(run)], capsys)
    _assert_one_line_error(code, err, f"--resume {run}: {run / linked} is a link to {elsewhere}; a run writes its")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written beside what the link names
    code, err = _cli(["train", *flags, "--force"], capsys)  # nor removed through it
    _assert_one_line_error(code, err, f"--output {run}: {run / linked} is a link to {elsewhere}; a run writes")
    assert sorted(p.name for p in tmp_path.iterdir()) == before and elsewhere.exists()
    (run / linked).unlink()
    (elsewhere).rename(run / linked)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "an empty file (0 bytes)"), (b"\x89PNG\r\n", "not a PyTorch checkpoint: neither the zip archive")],
)
def test_a_file_that_is_not_a_checkpoint_is_named_without_torchs_unsafe_advice(content, reason, tmp_path, capsys):
    """torch.load's message advised ``weights_only=False``, which runs whatever code a foreign file holds."""
    bad = tmp_path / "x.pt"
    bad.write_bytes(content)
    code, err = _cli(["train", *TINY_FLAGS, "--init-from", str(bad), "--output", str(tmp_path / "r")], capsys)
    _assert_one_line_error(code, err, f"--init-from {bad} is not a readable checkpoint ({reason}", status=2)
    code, err = _cli(["convert", str(bad), str(tmp_path / "c")], capsys)
    _assert_one_line_error(code, err, f"cannot read reference checkpoint '{bad}': {reason}", status=2)
    assert "weights_only" not in err


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing_to_force_away(tmp_path, capsys, monkeypatch):
    """It left config.yaml and the manifest, so the corrected command was refused without --force."""
    from wavemixer.train import engine

    def fail(self, run_dir):
        raise ValueError("a failure inside the first epoch")

    made, kept = tmp_path / "made", tmp_path / "kept"
    kept.mkdir()  # the user's empty folder stays, empty
    with monkeypatch.context() as m:
        m.setattr(engine.Trainer, "fit", fail)
        for out in (made, kept):
            code, err = _cli(["train", *TINY_FLAGS, "--epochs", "1", "--output", str(out)], capsys)
            _assert_one_line_error(code, err, "a failure inside the first epoch")
    assert not made.exists() and kept.is_dir() and not any(kept.iterdir())
    assert main(["train", *TINY_FLAGS, "--epochs", "1", "--bn-recalibrate", "0", "--output", str(made)]) == 0


def test_predict_takes_its_format_from_the_output_suffix_and_refuses_a_contradiction(
    model_dir, image, tmp_path, capsys
):
    """``-o p.json`` wrote CSV into a .json file, and a segmentation ``-o p.csv`` wrote JSON (export already
    took its format from the suffix)."""
    out = tmp_path / "p.json"
    assert main(["predict", str(model_dir), str(image), "-o", str(out)]) == 0
    assert json.loads(out.read_text())["predictions"][0]["file"] == str(image)
    capsys.readouterr()
    code, err = _cli(["predict", str(model_dir), str(image), "-o", str(tmp_path / "q.json"), "--format", "csv"], capsys)
    _assert_one_line_error(code, err, f"--format csv contradicts --output {tmp_path / 'q.json'}")
    seg = save_pretrained(
        WaveMixSegmentation(num_classes=3, depth=1, final_dim=16, level=1),
        tmp_path / "seg",
        preprocessing={"mean": [0.5] * 3, "std": [0.5] * 3},
    )
    argv = ["predict", str(seg), str(image), "--output-dir", str(tmp_path / "masks"), "-o", str(tmp_path / "s.csv")]
    code, err = _cli(argv, capsys)
    _assert_one_line_error(code, err, "segmentation predictions are written as JSON only; use --format json")
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "masks").exists()


def test_bench_takes_torchvision_names_in_any_case_as_get_model_does():
    from wavemixer.bench.runner import resolve_models

    assert resolve_models(["tv:ResNet18"], img_size=32)[0].name == "ResNet18"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("timm:resnet99", "timm:resnet99: 'resnet99' is not a model of timm"),
        ("tv:resnet99", "tv:resnet99: 'resnet99' is not a model of torchvision.models.list_models()"),
    ],
)
def test_bench_checks_library_model_names_before_it_starts(name, fragment, tmp_path, capsys):
    """A typo failed only after the workers had started and the results folder was written."""
    code, err = _cli(["bench", name, "--no-reference", "--out", str(tmp_path)], capsys)
    _assert_one_line_error(code, err, fragment)
    assert not any(tmp_path.iterdir())


def test_an_early_failure_keeps_the_manifest_while_unrecorded_files_remain(tmp_path, capsys, monkeypatch):
    """A file the run made but did not record (a logger's folder) stays, so the manifest stays too: without it
    the advised ``--force`` retry was refused."""
    from wavemixer.train import engine

    def fail(self, run_dir):
        (run_dir / "tensorboard").mkdir()
        raise ValueError("a failure inside the first epoch")

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(engine.Trainer, "fit", fail)
        code, err = _cli(["train", *TINY_FLAGS, "--epochs", "1", "--output", str(run)], capsys)
    _assert_one_line_error(code, err, "a failure inside the first epoch")
    assert sorted(p.name for p in run.iterdir()) == ["tensorboard", "wavemixer-manifest.json"]
    assert main(["train", *TINY_FLAGS, "--epochs", "1", "--bn-recalibrate", "0", "--output", str(run), "--force"]) == 0


# ----------------------------------------------------------------- report folders: what their manifests may name
def test_eval_reports_inside_a_run_are_recorded_under_the_real_folder_name(tmp_path, capsys, monkeypatch):
    """``--output-dir .`` from a subfolder, or a link into the run: the run's manifest names ``notes/metrics.json``,
    never ``/metrics.json`` (which once made ``train --force`` clean hidden files all over the run folder)."""
    run = tmp_path / "run"
    train(TrainConfig(output=str(run), epochs=1, **TINY))
    (run / "notes").mkdir()
    (run / ".draft.tmp").write_text("mine")
    monkeypatch.chdir(run / "notes")
    for _ in range(2):  # the second replaces what the first wrote
        assert main(["eval", "..", "--output-dir", ".", "--force", "--threads", "1"]) == 0
    (run / "ev").mkdir()
    (tmp_path / "link").symlink_to(run / "ev")
    for _ in range(2):
        assert main(["eval", str(run), "--output-dir", str(tmp_path / "link"), "--force", "--threads", "1"]) == 0
    files = json.loads((run / MANIFEST).read_text())["files"]
    assert {"notes/metrics.json", "ev/metrics.json"} <= set(files) and not [f for f in files if f.startswith("/")]
    assert not (run / "notes" / MANIFEST).exists()
    monkeypatch.chdir(tmp_path)
    train(TrainConfig(output=str(run), epochs=1, force=True, **TINY))
    assert (run / ".draft.tmp").read_text() == "mine" and not (run / "notes" / "metrics.json").exists()


def test_a_manifest_entry_outside_its_folder_is_ignored(tmp_path):
    from wavemixer.train.checkpoint import clean_run_dir

    (tmp_path / MANIFEST).write_text(json.dumps({"format": "wavemixer-run-manifest", "files": ["/x", "../y", "a"]}))
    (tmp_path / ".draft.tmp").write_text("mine")
    clean_run_dir(tmp_path)
    assert (tmp_path / ".draft.tmp").exists()
    with pytest.raises(ValueError, match="not a path inside"):
        record_outputs(tmp_path, ["/metrics.json"])


def test_names_of_images_left_unwritten_are_forgotten(tmp_path, capsys):
    """``--skip-corrupt`` leaves ``c.png`` out: its output names must not stay recorded, or ``--force`` would later
    replace a file of the user's that takes one of them."""
    model = WaveMixSegmentation(num_classes=3, depth=1, final_dim=16, level=1)
    folder = save_pretrained(model, tmp_path / "seg", preprocessing={"mean": [0.5] * 3, "std": [0.5] * 3})
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    (tmp_path / "c.png").write_bytes(b"broken")
    out = tmp_path / "pred"
    first = ["predict", str(folder), str(tmp_path / "a.png"), str(tmp_path / "c.png"), "--output-dir", str(out)]
    assert main([*first, "--skip-corrupt"]) == 0
    capsys.readouterr()
    assert not [f for f in json.loads((out / MANIFEST).read_text())["files"] if f.startswith("c_")]
    (out / "c_mask.png").write_text("my ground truth")
    Image.new("RGB", (16, 16)).save(tmp_path / "c.png")
    code, err = _cli(["predict", str(folder), str(tmp_path / "c.png"), "--output-dir", str(out), "--force"], capsys)
    _assert_one_line_error(code, err, "c_mask.png was not written by wavemixer")
    assert (out / "c_mask.png").read_text() == "my ground truth"


def test_a_failed_eval_in_a_run_keeps_the_users_file_named_like_a_manifest(tmp_path, capsys):
    run = tmp_path / "run"
    train(TrainConfig(output=str(run), epochs=1, **TINY))
    before = json.loads((run / MANIFEST).read_text())["files"]
    (run / "eval-mnist-test").mkdir()
    (run / "eval-mnist-test" / MANIFEST).write_text("my notes")
    code, err = _cli(["eval", str(run), "--dataset", "mnist", "--data-dir", str(tmp_path / "none")], capsys)
    assert code != 0 and "none" in err
    assert (run / "eval-mnist-test" / MANIFEST).read_text() == "my notes"
    assert json.loads((run / MANIFEST).read_text())["files"] == before  # the reports it never wrote are forgotten


def test_force_over_a_folder_without_a_manifest_says_so(tmp_path, model_dir, capsys):
    out = tmp_path / "old"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    code, err = _cli(["eval", str(model_dir), "--dataset", "digits", "--output-dir", str(out), "--force"], capsys)
    _assert_one_line_error(code, err, f"{out} has no {MANIFEST}, as folders written before report folders kept")


def test_a_bench_results_path_that_is_a_file_is_refused_before_the_sweep(tmp_path, capsys):
    from wavemixer.bench import results_dir_name

    (tmp_path / results_dir_name("cpu", ["fp32"], False, torch.__version__, "x")).write_text("mine")
    argv = ["bench", "wavemix_lite_32_7_cifar10_tiny", "--no-reference", "--device", "cpu", "--tag", "x"]
    code, err = _cli([*argv, "--out", str(tmp_path)], capsys)
    _assert_one_line_error(code, err, "exists and is not a folder")
    assert "rounds" not in err  # refused before the sweep announced itself


def test_a_pipe_or_device_is_written_in_place(tmp_path):
    """``predict -o /dev/null``: renaming a temporary over a device would replace it with a file. A FIFO stands in
    for the device here (a test must never risk the machine's /dev/null)."""
    import threading

    from wavemixer.files import atomic_write_text, claim, is_stream

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    refuse_overwrite([fifo], force=False)  # nothing to overwrite in a stream
    with claim(fifo, "--output", "choose another --output", folder=False):
        atomic_write_text(fifo, "predictions\n")
    reader.join(timeout=10)
    if reader.is_alive():  # the text went elsewhere: unblock the reader so the test ends
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    assert got == ["predictions\n"] and is_stream(fifo) and sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_descriptor_name_is_written_through_even_when_it_leads_to_a_file(tmp_path):
    """``-o /dev/stdout`` with stdout sent to a file: the name leads through ``/proc/self/fd/N`` to a regular file,
    which is written in place (no temporary beside the link, no ``--force``), and the link stays a link."""
    from wavemixer.files import atomic_write_text, is_stream

    target = tmp_path / "captured.csv"
    with target.open("w") as fh:
        link = tmp_path / "stdout"
        link.symlink_to(f"/proc/self/fd/{fh.fileno()}")
        assert is_stream(link)
        refuse_overwrite([link], force=False)
        atomic_write_text(link, "a,b\n")
    assert target.read_text() == "a,b\n" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["captured.csv", "stdout"]
    log = tmp_path / "app.log"  # ``-o /dev/stdout >> app.log``: appended, never truncated
    log.write_text("an earlier line\n")
    with log.open("a") as fh:
        fh.write("a line of ours\n")
        fh.flush()
        for name in (f"/proc/self/fd/{fh.fileno()}", f"/proc/self/task/{threading.get_native_id()}/fd/{fh.fileno()}"):
            (tmp_path / "out").unlink(missing_ok=True)
            (tmp_path / "out").symlink_to(name)
            atomic_write_text(tmp_path / "out", "x\n")
    assert log.read_text() == "an earlier line\na line of ours\nx\nx\n"


def test_a_link_to_a_file_is_written_through_and_stays_a_link(tmp_path):
    from wavemixer.files import atomic_write_text

    (tmp_path / "real.csv").write_text("old\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    atomic_write_text(tmp_path / "link.csv", "new\n")
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "real.csv").read_text() == "new\n"


def test_export_leaves_files_named_like_its_old_temporary_alone_and_refuses_a_folder(model_dir, tmp_path, capsys):
    (tmp_path / ".m.tmp.pt2").write_text("a file of the user's")  # the fixed temporary name export once used
    assert main(["export", str(model_dir), str(tmp_path / "m.pt2"), "--no-verify"]) == 0
    assert (tmp_path / ".m.tmp.pt2").read_text() == "a file of the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.tmp.pt2", "m.pt2", "model"]
    (tmp_path / "d.onnx").mkdir()
    code, err = _cli(["export", str(model_dir), str(tmp_path / "d.onnx"), "--force"], capsys)
    _assert_one_line_error(code, err, f"OUTPUT {tmp_path / 'd.onnx'} is a folder")


def test_bench_force_forgets_the_files_of_the_last_sweep_it_removed(tmp_path):
    """A sweep with ``--suite peers`` wrote peers.md; the next sweep (no suite) removes it and must stop listing
    it, or a peers.md of the user's, put there later, would pass for wavemixer's and be deleted."""
    from wavemixer.bench import results_dir_name

    folder = tmp_path / results_dir_name("cpu", ["fp32"], False, torch.__version__, "x")
    folder.mkdir()
    for name in ("results.csv", "peers.md"):
        (folder / name).write_text("an earlier sweep's\n")
    record_outputs(folder, ["results.csv", "peers.md"])
    argv = ["bench", "wavemix_lite_64_6_cifar10:depth=1,final_dim=16", "--img-size", "32", "-b", "2", "--mode",
            "infer", "--warmup", "0", "--iters", "1", "--rounds", "1", "--threads", "1", "--no-reference",
            "--device", "cpu", "--tag", "x", "--out", str(tmp_path), "--force"]  # fmt: skip
    assert main(argv) == 0
    files = json.loads((folder / MANIFEST).read_text())["files"]
    assert "peers.md" not in files and not (folder / "peers.md").exists() and "results.csv" in files


def test_save_pretrained_through_a_link_replaces_the_folder_it_names(tmp_path):
    model = WaveMix(num_classes=2, depth=1, final_dim=16, level=1)
    save_pretrained(model, tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    save_pretrained(model, tmp_path / "link", force=True, labels=["a", "b"])
    assert (tmp_path / "link").is_symlink()
    assert json.loads((tmp_path / "real" / "config.json").read_text())["labels"] == ["a", "b"]  # the new save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]  # no temporaries left
