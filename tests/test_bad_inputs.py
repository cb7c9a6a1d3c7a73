"""Bad or edge-case input → one clear error (option, value, what is allowed), never a traceback or a silent
fallback; outputs never overwritten without --force; --force removes only what wavemixer wrote; a diverged
run stops; a run killed while saving resumes exactly."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from wavemixer import WaveMix, WaveMixSegmentation, create_model
from wavemixer.cli import main
from wavemixer.hub import save_pretrained
from wavemixer.train import Diverged, TrainConfig, train
from wavemixer.train.checkpoint import MANIFEST, load_train_state, write_json
from wavemixer.train.config import load_yaml

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
        (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
        (["--threads", "0"], "--threads must be an integer >= 1"),
        (["--threads", "-2"], "--threads must be an integer >= 1"),
        (["--device", "tpu"], "--device must be auto, cpu, cuda, cuda:N"),
        (["--label-smoothing", "2"], "--label-smoothing must be a finite number in [0, 1)"),
        (["--crop-padding", "-3"], "--crop-padding must be an integer >= 0"),
        (["--input-size", "-8"], "--input-size must be an integer >= 1"),
        (["--epochs", "1.5"], "--epochs must be an integer >= 1 (or unset), got '1.5'"),
        (["--lr", "nan"], "--lr must be a finite number > 0"),
        (["--lr", "inf"], "--lr must be a finite number > 0"),
        (["--momentum", "1"], "--momentum must be a finite number in [0, 1)"),
        (["--val-fraction", "0"], "--val-fraction must be a finite number in (0, 1)"),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
        (["--ema-decay", "1"], "--ema-decay must be a finite number in [0, 1)"),
        (["--warmup-epochs", "-1"], "--warmup-epochs must be a finite number >= 0"),
        (["--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
        (["--workers", "-1"], "--workers must be an integer >= 0"),
        (["--patience", "0"], "--patience must be an integer >= 1"),
        (["--grad-accum", "0"], "--grad-accum must be an integer >= 1"),
        (["--seed", "-1"], "--seed must be an integer >= 0"),
        (["--subset", "0"], "--subset must be an integer >= 1"),
        (["--sgd-lr", "0"], "--sgd-lr must be a finite number > 0"),
        (["--model-arg", "final_dim=-16", "--subset", "128"], "final_dim must be an integer >= 4, got -16"),
        (["--model-arg", "dropout=nan", "--subset", "128"], "dropout must be a number in [0, 1), got 'nan'"),
        (["--model-arg", "depth=2.5", "--subset", "128"], "depth must be an integer >= 1, got 2.5"),
        (["--resume", "{tmp}/a", "--output", "{tmp}/b"], "--output {tmp}/b contradicts it"),
        (["--resume", "{tmp}/a", "--force"], "--force contradicts it"),
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
        ("lr: .nan\n", "lr must be a finite number > 0"),
        ("amp: fp8\n", "amp must be one of auto, none, bf16, fp16"),
        ("model_args: [1, 2]\n", "model_args must be a mapping"),
        ("batch_size: true\n", "batch_size must be an integer >= 1, got True"),
    ],
)
def test_yaml_values_are_type_checked(yaml_text, fragment, tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(yaml_text)
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


def test_divergence_keeps_the_last_good_epoch(tmp_path, monkeypatch):
    from wavemixer.train.tasks import ClassificationTask

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
        ("predict", ["--threads", "0"], "--threads must be at least 1"),
        ("predict", ["--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
        ("predict", ["--pretrained"], "--pretrained takes the weights shipped for --model NAME"),
        ("eval", ["--pretrained"], "--pretrained takes the weights shipped for --model NAME"),
        ("eval", ["--model", "wavemix_lite_8_10_mnist", "--pretrained"], "not both"),
        ("eval", ["--device", "tpu"], "--device must be one of auto, cpu, cuda"),
        ("eval", ["--batch-size", "-1"], "--batch-size must be an integer >= 1, got -1"),
        ("eval", ["--subset", "0"], "--subset must be an integer >= 1"),
        ("eval", ["--val-fraction", "1.5"], "--val-fraction must be a finite number in (0, 1)"),
        ("eval", ["--seed", "-1"], "--seed must be an integer >= 0"),
        ("bench", ["--device", "tpu"], "--device must be one of cpu, cuda"),
        ("bench", ["-b", "-1"], "--batch-size must be an integer >= 1, got -1"),
        ("bench", ["--iters", "0"], "--iters must be an integer >= 1"),
        ("bench", ["--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_eval_predict_bench_flags(command, flags, fragment, model_dir, image, capsys):
    inputs = {"predict": [str(model_dir), str(image)], "eval": [str(model_dir)]}
    inputs["bench"] = ["wavemix_lite_32_7_cifar10_tiny", "--no-reference"]
    code, err = _cli([command, *inputs[command], *flags], capsys)
    _assert_one_line_error(code, err, fragment)


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
    assert main([*argv, "--force"]) == 0
    assert (tmp_path / "pred" / "a_mask.png").read_bytes() != b"mine"


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
    assert (folder / "results.csv").read_text() == "old\n"


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


# ------------------------------------------------------------------------------- crash safety
def test_a_run_killed_while_saving_its_checkpoint_resumes_exactly(tmp_path):
    """SIGKILL while checkpoint.pt's temporary is on disk: the old checkpoint is intact, the temporary is
    never read, it is removed on resume, and the resumed run ends with an uninterrupted run's weights."""
    cfg = dict(epochs=3, **TINY)
    full = train(TrainConfig(output=str(tmp_path / "full"), **cfg))
    run = tmp_path / "killed"
    argv = ["train", "--output", str(run), "--epochs", "3", *TINY_FLAGS]
    env = {
        **os.environ,
        "WAVEMIXER_TEST_PAUSE_BEFORE_RENAME": "1",
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
    }
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


# =============================================================================== issue: pictures
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
