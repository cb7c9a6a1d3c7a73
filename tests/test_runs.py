"""``wavemixer runs`` and :mod:`wavemixer.runs`: run folders of every task and layout read into tables."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from wavemixer.cli import main
from wavemixer.runs import Job, collect_runs, group_runs, read_run
from wavemixer.runs.lanes import command, train_in_lanes

from .fake_runs import TASKS, fake_run

TINY = ["--model-arg", "final_dim=16", "--model-arg", "depth=1", "--threads", "1", "--quiet", "--epochs", "1"]


def _seg_data(root: Path) -> Path:
    """Two classes (a bright square on dark), images and masks per split."""
    rng = np.random.default_rng(0)
    (root / "classes.txt").parent.mkdir(parents=True)
    (root / "classes.txt").write_text("background\nthing\n")
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        for kind in ("images", "masks"):
            (root / kind / split).mkdir(parents=True)
        for i in range(n):
            mask = np.zeros((24, 32), np.uint8)
            y, x = rng.integers(0, 12, 2)
            mask[y : y + 10, x : x + 12] = 1
            image = (mask[..., None] * 200 + rng.integers(0, 40, (24, 32, 3))).astype(np.uint8)
            Image.fromarray(image).save(root / "images" / split / f"{i}.png")
            Image.fromarray(mask, mode="L").save(root / "masks" / split / f"{i}.png")
    return root


def _hr_data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 2), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(root / split / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny run of each task, trained here (about 10 s in all)."""
    tmp = tmp_path_factory.mktemp("real")
    runs = {task: tmp / "runs" / f"{task}-s0" for task in TASKS}
    common = ["train", *TINY, "--output"]
    assert main([*common, str(runs["classification"]), "--dataset", "digits", "--subset", "200"]) == 0
    seg = ["--task", "segmentation", "--dataset", "segfolder", "--data-dir", str(_seg_data(tmp / "seg"))]
    assert main([*common, str(runs["segmentation"]), *seg, "--batch-size", "4"]) == 0
    sr = ["--task", "super_resolution", "--dataset", "hrfolder", "--data-dir", str(_hr_data(tmp / "hr"))]
    assert main([*common, str(runs["super_resolution"]), *sr, "--input-size", "16", "--batch-size", "4"]) == 0
    return runs


def _keys(folder: Path) -> tuple[set[str], set[str], set[str], list[str]]:
    results = json.loads((folder / "results.json").read_text())
    header = (folder / "summary.csv").read_text().splitlines()[0].split(",")
    config = set(yaml.safe_load((folder / "config.yaml").read_text()))
    return set(results), set(results["best_val"]), config, header


@pytest.mark.parametrize("task", sorted(TASKS))
def test_fake_runs_have_the_files_and_fields_of_real_runs(task: str, real_runs, tmp_path: Path) -> None:
    real = _keys(real_runs[task])
    fake = _keys(fake_run(tmp_path / "fake-s0", seed=0, test=50.0, task=task))
    assert fake[0] == real[0] and fake[1] == real[1]  # results.json: top level, val metrics
    assert fake[2] <= real[2] and fake[3] == real[3]  # config.yaml options, summary.csv columns
    assert (real_runs[task] / "wavemixer-manifest.json").is_file()


def test_each_task_is_scored_by_its_own_metric(real_runs, capsys) -> None:
    expected = {
        "classification": ("top1", "test top-1 %", ()),
        "segmentation": ("miou", "test mIoU %", ("pixel_acc",)),
        "super_resolution": ("psnr", "test PSNR (dB)", ("ssim",)),
    }
    for task, (metric, header, scores) in expected.items():
        run = read_run(real_runs[task], task)
        results = json.loads((real_runs[task] / "results.json").read_text())
        assert (run.metric, run.seed, run.test) == (metric, 0, results["test"][metric])
        assert run.best_val == results["best_val"][metric] and tuple(run.scores) == scores
        assert run.params == results["params"] and run.steps == results["steps"]
        assert main(["runs", str(real_runs[task])]) == 0
        assert header in capsys.readouterr().out
    assert main(["runs", str(real_runs["classification"].parent)]) == 2  # three tasks: no one table
    assert "runs of different metrics (tasks) in one table" in capsys.readouterr().err


def _grid(root: Path) -> Path:
    for seed, test in enumerate((50.0, 52.0, 54.0)):
        fake_run(root / "grid" / f"wavemix-s{seed}", seed=seed, test=test, wall_s=600.0 + 60 * seed)
        fake_run(root / "grid" / f"resnet-s{seed}", seed=seed, test=test + 10, model="peer:resnet", params=3_000)
    return root / "grid"


def test_seeds_of_a_grid_give_mean_and_sample_std(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    done = main(["runs", str(_grid(tmp_path)), "--goal", "50", "--csv", str(out / "s.csv"), "--md",
                 str(out / "s.md"), "--plot", str(out / "s.png"), "--per-run"])  # fmt: skip
    assert done == 0
    printed = capsys.readouterr().out
    table = (out / "s.md").read_text().splitlines()
    assert printed.startswith("\n".join(table))
    assert table[0] == (
        "| run | params | epochs | seeds | test top-1 % | best val top-1 % | minutes per run | peak RSS (MB) "
        "| minutes to val ≥ 50 % |"
    )
    assert table[2] == "| resnet | 3,000 | 2 | 3 | 62.00 ± 2.00 | 63.00 ± 2.00 | 10.0 ± 0.0 | 1500 ± 0 | 10.0 ± 0.0 |"
    assert table[3] == "| wavemix | 3,566 | 2 | 3 | 52.00 ± 2.00 | 53.00 ± 2.00 | 11.0 ± 1.0 | 1500 ± 0 | 11.0 ± 1.0 |"
    assert "- wavemix seed 2: test top1 54.00, best val 55.00 at epoch 2/2, 12.0 min; val ≥ 50 % after 12.0" in printed
    rows = list(csv.DictReader((out / "s.csv").open()))
    assert [(r["group"], r["seed"], r["metric"], r["goal"]) for r in rows][:2] == [
        ("resnet", "0", "top1", "50.0"), ("resnet", "1", "top1", "50.0")
    ]  # fmt: skip
    assert (out / "s.png").stat().st_size > 10_000
    assert main(["runs", str(tmp_path / "grid"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["groups"]
    assert stats[1]["test"] == {"mean": 52.0, "std": 2.0, "n": 3} and stats[1]["seeds"] == [0, 1, 2]


def test_groups_come_from_folders_at_any_depth_or_from_the_recorded_options(tmp_path: Path) -> None:
    for key in ("resnet", "wavemix-s1-bilinear"):  # the contest's tuning layout: <contender>/<setting>-s0
        for setting in ("lr0.001-wu0.2", "lr0.01-wu1"):
            fake_run(tmp_path / "tune" / key / f"{setting}-s0", seed=0, test=50.0)
    groups = {r.group for r in collect_runs([tmp_path / "tune"])}
    assert groups == {f"{k}/{s}" for k in ("resnet", "wavemix-s1-bilinear") for s in ("lr0.001-wu0.2", "lr0.01-wu1")}
    (tmp_path / "single").mkdir()  # a run folder given itself, no -s<seed> suffix: its name, its recorded seed
    run = collect_runs([fake_run(tmp_path / "single" / "mnist", seed=4, test=1.0)])[0]
    assert (run.group, run.seed) == ("mnist", 4)

    for seed in (0, 1):  # folder names that say nothing; the options say which runs belong together
        fake_run(tmp_path / "any" / f"a{seed}", seed=seed, test=50.0, config=dict(lr=0.01, threads=2))
        fake_run(tmp_path / "any" / f"b{seed}", seed=seed, test=60.0, config=dict(lr=0.003))
    by_config = group_runs(collect_runs([tmp_path / "any"], by="config"))
    assert [(g.name, g.seeds) for g in by_config] == [
        ("wavemix_lite_8_10_mnist lr=0.003", 2), ("wavemix_lite_8_10_mnist lr=0.01", 2)
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"two runs of \S+ with seed 0"):
        group_runs(collect_runs([tmp_path / "any"], by="folder") + collect_runs([tmp_path / "any" / "a0"]))


def test_runs_that_are_not_one_training_are_refused(tmp_path: Path, capsys) -> None:
    fake_run(tmp_path / "g" / "m-s0", seed=0, test=50.0, epochs=2)
    fake_run(tmp_path / "g" / "m-s1", seed=1, test=50.0, epochs=3)
    assert main(["runs", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "(m seed 1) is model wavemix_lite_8_10_mnist, 3 epochs, 12 steps" in err and "not the same training" in err


def test_a_run_with_a_damaged_config_is_refused_in_one_line_naming_it(tmp_path: Path, capsys) -> None:
    """A config.yaml cut short (or not text) stopped ``wavemixer runs`` with PyYAML's traceback."""
    run = fake_run(tmp_path / "g" / "m-s0", seed=0, test=50.0)
    for content, fragment in ((b"{{\n", "is not valid YAML: expected the node content"),
                              (b"\xff\xfe", "is not a UTF-8 text file (byte 0xff at position 0)")):  # fmt: skip
        (run / "config.yaml").write_bytes(content)
        assert main(["runs", str(tmp_path / "g")]) == 2
        err = capsys.readouterr().err.strip()
        assert f"{run / 'config.yaml'} {fragment}" in err and len(err.splitlines()) == 1, err


def test_merge_keeps_earlier_runs_replaces_rerun_seeds_and_refuses_other_trainings(tmp_path: Path, capsys) -> None:
    earlier = tmp_path / "earlier.csv"
    assert main(["runs", str(_grid(tmp_path / "first")), "--goal", "50", "--csv", str(earlier)]) == 0
    fake_run(tmp_path / "later" / "resnet-s0", seed=0, test=70.0, model="peer:resnet", params=3_000)
    capsys.readouterr()
    assert main(["runs", str(tmp_path / "later"), "--merge", str(earlier), "--goal", "50"]) == 0
    table = capsys.readouterr().out
    assert "| resnet | 3,000 | 2 | 3 | 65.33 ± 4.16 |" in table  # 70 (trained here), 62, 64 (merged)
    assert "| wavemix | 3,566 | 2 | 3 | 52.00 ± 2.00 |" in table

    assert main(["runs", str(tmp_path / "later"), "--merge", str(earlier)]) == 2  # measured at another goal
    assert "timed val ≥ goal 50; this summary times val ≥ goal none" in capsys.readouterr().err
    fake_run(tmp_path / "longer" / "resnet-s0", seed=0, test=70.0, model="peer:resnet", params=3_000, epochs=11)
    assert main(["runs", str(tmp_path / "longer"), "--merge", str(earlier), "--goal", "50"]) == 2
    err = capsys.readouterr().err
    assert f"{earlier} line 3 (resnet seed 1) is model peer:resnet, 2 epochs, 8 steps" in err
    assert "is model peer:resnet, 11 epochs" in err
    assert main(["runs", str(tmp_path / "longer"), "--merge", str(earlier), "--goal", "50", "--only", "wavemix"]) == 0
    assert main(["runs", "--merge", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("nope.csv does not exist; give a CSV written by `wavemixer runs --csv`")
    assert main(["runs", "--merge", str(tmp_path)]) == 2  # said "does not exist" of a folder that does
    assert f"{tmp_path} is a folder; give a CSV written by `wavemixer runs" in capsys.readouterr().err
    binary = tmp_path / "plot.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    assert main(["runs", "--merge", str(binary)]) == 2
    not_text = f"{binary} is not a text CSV (it is not UTF-8): give a CSV written by --csv"
    assert capsys.readouterr().err.strip().endswith(not_text)
    bad = tmp_path / "bad.csv"
    bad.write_text(earlier.read_text().replace("\nresnet,0,", "\nresnet,zz,", 1))
    assert main(["runs", "--merge", str(bad)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{bad} line 2: column seed must be an integer, got 'zz'")


def test_segmentation_runs_merge_with_an_earlier_camvid_csv(tmp_path: Path, capsys) -> None:
    """A segmentation run folder beside a CSV of ``summarize_camvid.py`` from an earlier session (its own column
    names: ``model``, ``best_val_miou``, ``test_miou``, ``peak_rss_mb``): one table, mIoU as the metric."""
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(
        "model,seed,params,epochs,best_epoch,best_val_miou,test_miou,test_pixel_acc,wall_min,peak_rss_mb\n"
        "unet,0,926299,60,52,50.56,42.27,83.48,22.0,1119\nunet,1,926299,60,60,52.74,43.02,82.86,20.8,\n"
    )
    fake_run(tmp_path / "runs" / "unet-s1", seed=1, test=44.034, best_val=51.004, task="segmentation",
             model="unet", params=926_299, epochs=60, wall_s=1260.0, peak_mb=1126.4, curve=(30.0, 51.0))  # fmt: skip
    out = tmp_path / "all.csv"
    assert main(["runs", str(tmp_path / "runs"), "--merge", str(earlier), "--csv", str(out), "--label", "model"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["group"], r["seed"], r["test"], r["test_pixel_acc"], r["peak_mem_mb"]) for r in rows] == [
        ("unet", "0", "42.27", "83.48", "1119.0"),
        ("unet", "1", "44.034", "0.5", "1126.4"),  # the folder replaces the CSV's row of its seed
    ]
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("| model | params | epochs | seeds | test mIoU % | best val mIoU % |")
    row = next(line for line in table.splitlines() if line.startswith("| unet |"))
    assert row.startswith("| unet | 926,299 | 60 | 2 | 43.15 ± 1.25 | 50.78 ± 0.31 |")  # test, val mIoU
    assert row.endswith("| 21.5 ± 0.7 | 1123 ± 5 |")  # minutes (22.0, 21.0), peak RSS (1119, 1126.4)
    assert main(["runs", str(tmp_path / "runs"), "--goal", "40"]) == 0  # from the run's summary.csv
    assert "| 1126 | 21.0 |" in capsys.readouterr().out  # one seed, no spread; val 51 % (>= 40) at 21 minutes


def test_outputs_refuse_an_existing_file_unless_forced_but_extend_the_merged_csv(tmp_path: Path, capsys) -> None:
    grid = _grid(tmp_path)
    for option, name in (("--csv", "mine.csv"), ("--md", "mine.md"), ("--plot", "mine.png")):
        theirs = tmp_path / name
        theirs.write_text("the user's own file\n")
        assert main(["runs", str(grid), option, str(theirs)]) == 2
        err = capsys.readouterr().err.strip()
        refusal = f"{theirs} already exists; pass --force to overwrite it, or choose another path"
        assert err == f"wavemixer runs: error: {refusal}"
        assert theirs.read_bytes() == b"the user's own file\n"
        assert main(["runs", str(grid), option, str(theirs), "--force"]) == 0
        assert theirs.read_bytes() != b"the user's own file\n"
    summary = tmp_path / "summary.csv"
    assert main(["runs", str(grid), "--csv", str(summary)]) == 0
    fake_run(tmp_path / "later" / "vit-s0", seed=0, test=40.0, model="peer:vit", params=3_000)
    assert main(["runs", str(tmp_path / "later"), "--merge", str(summary), "--csv", str(summary)]) == 0
    assert {r["group"] for r in csv.DictReader(summary.open())} == {"resnet", "wavemix", "vit"}


def test_missing_and_empty_inputs_are_one_line_errors(tmp_path: Path, capsys) -> None:
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == f"wavemixer runs: error: {tmp_path / 'nope'} does not exist"
    assert main(["runs", str(tmp_path)]) == 2
    assert "no finished runs in" in capsys.readouterr().err
    assert main(["runs"]) == 2
    assert "give a PATH" in capsys.readouterr().err
    fake_run(tmp_path / "g" / "m-s0", seed=0, test=50.0)
    assert main(["runs", str(tmp_path / "g"), "--only", "n"]) == 2
    assert "--only: no runs of ['n']; the groups are ['m']" in capsys.readouterr().err


def test_lanes_skip_finished_runs_resume_interrupted_ones_and_start_the_rest(tmp_path: Path) -> None:
    args = ["train", "--dataset", "digits", "--output", str(tmp_path / "new")]
    assert command(Job(args, tmp_path / "new"), nice=0) == [sys.executable, "-m", "wavemixer.cli", *args]
    assert command(Job(args, tmp_path / "new"), nice=5)[:3] == ["nice", "-n", "5"]
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "checkpoint.pt").write_bytes(b"")
    resume = [sys.executable, "-m", "wavemixer.cli", "train", "--resume", str(tmp_path / "cut")]
    assert command(Job(args, tmp_path / "cut")) == resume
    assert command(Job(args, fake_run(tmp_path / "done", seed=0, test=1.0))) is None


def test_lanes_restart_a_run_stopped_before_its_first_checkpoint(tmp_path: Path) -> None:
    """A run killed while loading data leaves config.yaml and the manifest; the lane starts it again with
    --force (without it, train refuses the non-empty folder) and it finishes."""
    out = tmp_path / "run"
    args = ["train", "--dataset", "digits", "--epochs", "1", "--threads", "1", "--output", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "wavemixer.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out / "config.yaml").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert (out / "config.yaml").is_file() and not (out / "checkpoint.pt").exists()
    assert command(Job(args, out)) == [sys.executable, "-m", "wavemixer.cli", *args, "--force"]
    assert train_in_lanes([Job(args, out)], lanes=1, nice=0, log=lambda _: None) == []
    assert json.loads((out / "results.json").read_text())["epochs"] == 1


def test_a_grid_continues_from_the_records_of_its_finished_runs(tmp_path: Path) -> None:
    """A run that ends leaves its record; with the run folder gone (another machine), the lane restores the
    folder from the record instead of training it again, and every summary reads it as before."""
    from wavemixer.runs.records import DIVERGED, diverged, restore_record, save_record

    out, record = tmp_path / "runs" / "grid" / "digits-s0", tmp_path / "records" / "grid" / "digits-s0"
    args = ["train", "--dataset", "digits", "--subset", "200", *TINY, "--output", str(out)]
    assert train_in_lanes([Job(args, out, record)], lanes=1, nice=0, log=lambda _: None) == []
    assert sorted(p.name for p in record.iterdir()) == ["config.yaml", "results.json", "summary.csv"]
    assert (record.parent / "digits-s0.log").is_file()
    before = read_run(out, "digits").row()
    shutil.rmtree(out)
    bogus = ["train", "--no-such-flag", "--output", str(out)]  # would fail if it were started
    assert train_in_lanes([Job(bogus, out, record)], lanes=1, nice=0, log=lambda _: None) == []
    assert read_run(out, "digits").row() == before
    assert not restore_record(record, out)  # never over a folder that is there
    assert not save_record(tmp_path / "runs" / "grid" / "unfinished", tmp_path / "records" / "x")
    # a run that diverges is an outcome, not a failure: kept as tried (its log), and neither it nor its
    # restored folder is started again
    blown, blown_record = tmp_path / "runs" / "grid" / "blown-s0", tmp_path / "records" / "grid" / "blown-s0"
    lr_far_too_high = ["train", "--dataset", "digits", "--subset", "256", *TINY, "--lr", "1e4", "--output", str(blown)]
    said: list[str] = []
    assert train_in_lanes([Job(lr_far_too_high, blown, blown_record)], lanes=1, nice=0, log=said.append) == []
    assert f"DIVERGED {blown} (exit 1)" in said and diverged(blown) and command(Job(bogus, blown)) is None
    assert DIVERGED in (blown_record.parent / "blown-s0.log").read_text()
    assert not (blown_record / "results.json").exists()
    shutil.rmtree(blown, ignore_errors=True)  # (train removes a folder it saved nothing in)
    (blown.parent / "blown-s0.log").unlink()
    said.clear()
    assert train_in_lanes([Job(bogus, blown, blown_record)], lanes=1, nice=0, log=said.append) == []
    assert diverged(blown) and any(line.startswith(f"skip {blown}: it diverged") for line in said), said
    assert not (tmp_path / "runs" / "grid" / ".blown-s0.restoring").exists()


def test_camvid_encoder_init_table_of_the_docs_is_reproduced_from_the_committed_runs(capsys) -> None:
    """The CIFAR-10-initialised encoder against random initialisation (docs/claims.md, CamVid): the table that
    ``wavemixer runs --merge`` makes of the committed CSV is the one the docs show."""
    repo = Path(__file__).resolve().parents[1]
    csv_path = repo / "docs" / "bench" / "camvid-3seeds.csv"  # the earlier CamVid runs (scripts/train_camvid.sh)
    only = ["--only", "wavemix", "wavemix_cifar10_init"]
    assert main(["runs", "--merge", str(csv_path), "--label", "model", *only]) == 0
    out = capsys.readouterr().out.strip()
    lines = out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| model | params |")  # header, rule, 2 rows
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| wavemix", "| wavemix_cifar10_init"]
    assert out in (repo / "docs" / "claims.md").read_text()


def test_pareto_front_keeps_only_the_models_unbeaten_at_their_cost():
    from wavemixer.runs.plot import pareto_front

    points = [(1.0, 60.0), (2.0, 55.0), (2.0, 70.0), (3.0, 70.0), (5.0, 80.0), (0.5, 50.0), (6.0, 79.0)]
    # (2, 55): beaten at its cost; (3, 70): no better than a cheaper one; (6, 79): beaten by a cheaper one
    assert pareto_front(points) == [(0.5, 50.0), (1.0, 60.0), (2.0, 70.0), (5.0, 80.0)]
    assert pareto_front([]) == []
