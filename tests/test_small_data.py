"""The sample-efficiency grid (:mod:`wavemixer.bench.small_data`): its commands, regimes and tables."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wavemixer.bench import contest as C
from wavemixer.bench import small_data as S
from wavemixer.bench import tuning as T
from wavemixer.runs import collect_runs, group_runs
from wavemixer.train.config import add_config_arguments, config_from_args

from .fake_runs import fake_run


def _config(cmd: list[str]):
    assert cmd[0] == "train"
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(cmd[1:]))


@pytest.mark.parametrize("name", list(S.REGIMES))
def test_a_command_is_the_contest_recipe_on_the_subset_with_early_stopping(name: str, tmp_path: Path) -> None:
    regime = S.REGIMES[name]
    entry = S.entries(["resnet", "wavemix-s2-convtranspose"], "wavemix-s2-convtranspose")
    assert [e.key for e in entry] == ["40k-resnet", "40k-wavemix-s2-convtranspose", "500k-wavemix-s2-convtranspose"]
    cfg = _config(S.train_command(entry[2], T.Setting(3e-3, 1.0), regime, seed=2, output=tmp_path / "r",
                                  data_dir="D.zip"))  # fmt: skip
    assert (cfg.per_class, cfg.val_fraction, cfg.patience) == (regime.per_class, 0.2, regime.patience)
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.warmup_epochs) == (regime.max_epochs, regime.batch_size, 3e-3, 1.0)
    assert (cfg.seed, cfg.data_dir, cfg.max_steps, cfg.skip_test) == (2, "D.zip", None, False)
    tune = _config(S.train_command(entry[2], T.Setting(3e-3, 1.0), regime, seed=0, output=tmp_path / "r",
                                   data_dir="D.zip", tuning=True))  # fmt: skip
    assert tune.skip_test and tune == dataclasses.replace(cfg, seed=0, skip_test=True)  # nothing else differs
    # the rest is the contest's run, untouched: model, optimizer, precision, threads, data path
    contest = _config(C.train_command(entry[2].contender, T.Setting(3e-3, 1.0), steps=10, seed=2,
                                      output=tmp_path / "r", data_dir="D.zip"))  # fmt: skip
    for key in ("model", "model_args", "opt", "weight_decay", "sched", "amp", "threads", "decode_once", "dataset"):
        assert getattr(cfg, key) == getattr(contest, key), key
    assert (cfg.model_args["stride"], cfg.model_args["upsample"]) == (2, "convtranspose")


def test_regimes_give_whole_batches_and_name_their_folders() -> None:
    small, big = S.REGIMES["pc50"], S.REGIMES["pc500"]
    assert (small.train_images, small.steps_per_epoch) == (500, 15)  # 500 // 32; the loader drops the rest
    assert (big.train_images, big.steps_per_epoch) == (5_000, 39)
    assert small.max_epochs > small.patience and big.max_epochs > big.patience


def test_entries_refuse_unknown_contenders_and_a_peer_at_500k() -> None:
    with pytest.raises(ValueError, match="unknown 40k contender"):
        S.entries(["resnet", "resnet50"], None)
    with pytest.raises(ValueError, match="is a peer"):
        S.entries(["resnet"], "resnet")
    with pytest.raises(ValueError, match="unknown contender"):
        S.entries(["resnet"], "wavemix-s9-bilinear")


def test_seeds_stopped_early_group_as_one_training_and_the_table_joins_the_full_data_figures(tmp_path: Path) -> None:
    root = tmp_path / "pc50"
    for seed, test, epochs in ((1, 40.0, 31), (2, 42.0, 57), (3, 44.0, 44)):
        fake_run(root / f"40k-resnet-s{seed}", seed=seed, test=test, epochs=epochs, params=36_741, model="peer:resnet")
    for seed, test, epochs in ((1, 50.0, 90), (2, 51.0, 77), (3, 52.0, 120)):
        fake_run(root / f"40k-wavemix-s2-convtranspose-s{seed}", seed=seed, test=test, epochs=epochs, params=38_550,
                 model="wavemix_lite_32_7_cifar10_tiny")  # fmt: skip
    runs = collect_runs([root])
    with pytest.raises(ValueError, match="not the same training"):
        group_runs(runs)  # the default check: the seeds trained different epochs
    groups = group_runs(runs, same=("model", "metric", "goal"))
    scores = S.scores_of(groups)
    assert scores["40k-resnet"] == pytest.approx((42.0, 2.0, 3))
    long_csv, short_csv = tmp_path / "40k-20min.csv", tmp_path / "40k-5min.csv"
    for path, rows in (
        (long_csv, [("resnet", 1, 80.0), ("resnet", 2, 82.0)]),  # the 20-minute grid did not keep WaveMix s2
        (
            short_csv,
            [("resnet", 1, 70.0), ("wavemix-s2-convtranspose", 1, 68.5), ("wavemix-s2-convtranspose", 2, 69.5)],
        ),
    ):
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["group", "seed", "test"])
            w.writerows(rows)
    full = {"40k": [(p.stem, S.full_data_scores(p)) for p in (long_csv, short_csv)]}
    params = {g.name: int(g.first("params")) for g in groups}
    lines = S.sample_efficiency_table({"pc50": scores}, full, params)
    assert lines[0] == "| contender | params | 50 per class | full data (4,500 per class) | full-data grid |"
    assert "| 40k-resnet | 36,741 | 42.00 ± 2.00 | 81.00 ± 1.41 | 40k-20min |" in lines  # the first grid given
    assert "| 40k-wavemix-s2-convtranspose | 38,550 | 51.00 ± 1.00 | 69.00 ± 0.71 | 40k-5min |" in lines
    assert S.full_data_figure(full, "500k-resnet") is None
    S.sample_efficiency_plot({"pc50": scores}, full, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    both = {"pc500": {"40k-resnet": (60.0, 1.0, 3)}, "pc50": scores}  # columns follow REGIMES, not the dict
    lines = S.sample_efficiency_table(both, full, params)
    assert lines[0].startswith("| contender | params | 50 per class | 500 per class | full data")
    assert "| 40k-resnet | 36,741 | 42.00 ± 2.00 | 60.00 ± 1.00 | 81.00 ± 1.41 | 40k-20min |" in lines
    assert "| 40k-wavemix-s2-convtranspose | 38,550 | 51.00 ± 1.00 | – | 69.00 ± 0.71 | 40k-5min |" in lines
    S.sample_efficiency_plot(both, full, tmp_path / "both.png")
    assert (tmp_path / "both.png").read_bytes()[:4] == b"\x89PNG"


def test_tuning_rows_and_table_from_tuning_runs(tmp_path: Path) -> None:
    root = tmp_path / "tune"
    for setting, val, epochs in ((T.TUNING_GRID[0], 30.0, 40), (T.TUNING_GRID[3], 36.0, 25)):
        fake_run(root / "40k-resnet" / f"{setting.key}-s0", seed=0, test=0.0, best_val=val, epochs=epochs)
    fake_run(root / "40k-resnet" / "smoke-s0", seed=0, test=0.0, best_val=99.0)  # not a setting: left out
    rows = T.tuning_rows(root)
    assert sorted((r["lr"], r["warmup"], r["val_top1"], r["epochs"]) for r in rows) == [
        (1e-3, 0.2, 30.0, 40), (3e-3, 1.0, 36.0, 25)
    ]  # fmt: skip
    table = T.tuning_table(rows, {"40k-resnet": T.TUNING_GRID[3]})
    assert table[2] == "| 40k-resnet | 30.00 | – | – | **36.00** | – | – |"
    capped = T.tuning_table(rows, {"40k-resnet": T.TUNING_GRID[3]}, max_epochs=40)
    assert capped[2] == "| 40k-resnet | 30.00 † | – | – | **36.00** | – | – |"  # trained all 40 epochs
    assert T.tuning_table(rows, {})[2].startswith("| 40k-resnet (2 of 6) |")


def test_tuning_one_entry_on_a_fresh_checkout_keeps_the_committed_rows_of_the_others(tmp_path: Path) -> None:
    """``tune --only 40k-resnet`` where only that entry's run folders exist (``runs/`` is not committed): the
    tuning CSV keeps every other entry's committed rows, and the runs on disk replace the resnet rows."""
    repo = Path(__file__).resolve().parents[1]
    committed = repo / "docs" / "bench" / "small-data" / "tuning-pc50.csv"
    out, runs = tmp_path / "out", tmp_path / "runs"
    out.mkdir()
    (out / committed.name).write_text(committed.read_text())
    with committed.open(newline="") as fh:
        before = list(csv.DictReader(fh))
    for i, setting in enumerate(T.TUNING_GRID):  # every grid setting finished: nothing trains
        fake_run(runs / "pc50" / "tune" / "40k-resnet" / f"{setting.key}-s0", seed=0, test=0.0, best_val=90.0 + i)
    cmd = [sys.executable, str(repo / "scripts" / "small_data.py"), "tune", "--regime", "pc50", "--data-dir",
           str(tmp_path), "--only", "40k-resnet", "--runs", str(runs), "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=repo, timeout=300)
    assert done.returncode == 0, done.stderr
    with (out / committed.name).open(newline="") as fh:
        after = list(csv.DictReader(fh))
    others = [r for r in before if r["key"] != "40k-resnet"]
    assert others and all(r in after for r in others)  # every other entry's rows, unchanged
    resnet = sorted(float(r["val_top1"]) for r in after if r["key"] == "40k-resnet")
    assert resnet == [90.0 + i for i in range(len(T.TUNING_GRID))]  # replaced by the runs on disk, not doubled
    assert len(after) == len(others) + len(T.TUNING_GRID)
    table = (out / "tuning-pc50.md").read_text()
    assert all(f"| {k} |" in table for k in {r["key"] for r in others})


def test_entries_three_seeds_cannot_tell_apart_get_seeds_4_5_judged_on_seeds_1_3(tmp_path: Path) -> None:
    """The entries of ``run --seeds 4 5 --overlapping``: those whose test mean ± std over seeds 1-3 overlaps
    another's, among the grid's current entries, tuning runs left out; an extra seed does not change them."""
    root = tmp_path / "records" / "pc50"
    tests = {"40k-resnet": (40.0, 42.0, 44.0), "40k-wavemix-s2-convtranspose": (43.5, 44.5, 45.5),
             "40k-vit": (30.0, 31.0, 32.0)}  # fmt: skip
    for entry, scores in tests.items():
        for seed, test in enumerate(scores, start=1):
            fake_run(root / f"{entry}-s{seed}", seed=seed, test=test, epochs=40 + seed)  # early stopping
    fake_run(root / "tune" / "40k-resnet" / "lr0.001-wu0.2-s0", seed=0, test=10.0)  # not a row
    assert S.overlapping_entries(root) == ["40k-resnet", "40k-wavemix-s2-convtranspose"]
    fake_run(root / "40k-vit-s4", seed=4, test=43.0)  # an extra seed does not change the answer
    assert S.overlapping_entries(root) == ["40k-resnet", "40k-wavemix-s2-convtranspose"]
    assert S.overlapping_entries(root, ["40k-resnet", "40k-vit"]) == []  # an entry the grid no longer has
    fake_run(root / "40k-convnext-s1", seed=1, test=29.0)
    fake_run(root / "40k-convnext-s4", seed=4, test=29.5)  # seed 4 does not stand in for the missing 2 and 3
    fake_run(root / "40k-convnext-s5", seed=5, test=28.5)
    with pytest.raises(ValueError, match=r"seeds 1-3 finished first \(\['40k-convnext'\]"):
        S.overlapping_entries(root)
    fake_run(root / "40k-convnext-s2", seed=2, test=29.0, config={"lr": 0.01, "warmup_epochs": 1.0})
    with pytest.raises(ValueError, match="40k-convnext: its seeds trained at different settings"):
        S.seed_groups(root)


def test_the_committed_tables_and_claims_are_rebuilt_from_the_committed_records(tmp_path: Path) -> None:
    """``small_data.py summarize`` rebuilds the committed regime tables and sample-efficiency.md from the run
    records alone, and each row of docs/claims.md's small-data table is one entry's row of them."""
    repo = Path(__file__).resolve().parents[1]
    committed = repo / "docs" / "bench" / "small-data"
    full = ["40k=docs/bench/contest/40k-20min.csv", "40k=docs/bench/contest/40k-5min.csv",
            "500k=docs/bench/contest/500k-20min.csv"]  # fmt: skip
    cmd = [sys.executable, str(repo / "scripts" / "small_data.py"), "summarize", "--runs",
           "docs/bench/small-data/records", "--out", str(tmp_path), "--full", *full]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=repo, timeout=300)
    assert done.returncode == 0, done.stderr
    tables = [p.name for p in committed.glob("pc*.md")] + ["sample-efficiency.md"]
    assert "pc50.md" in tables
    for name in tables:
        assert (tmp_path / name).read_text() == (committed / name).read_text(), name
    claims = (repo / "docs" / "claims.md").read_text()
    section = claims[claims.index("**Measured at 50 images per class**") : claims.index("What it says, at 50 images")]

    def rows(text: str) -> list[list[str]]:
        return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line[:2] == "| "]

    # contender | params | then "N per class" | "epochs trained" for each regime with a committed table | full data
    header, *table = rows(section)
    regimes = sorted(int(p.stem[2:]) for p in committed.glob("pc*.md"))
    pairs = [c for n in regimes for c in (f"{n} per class", "epochs trained")]
    assert header == ["contender", "params", *pairs, "full data, equal time"]
    efficiency_header, *efficiency = rows((tmp_path / "sample-efficiency.md").read_text())
    assert efficiency_header[2 : 2 + len(regimes)] == [f"{n} per class" for n in regimes]
    regime_rows = {n: rows((tmp_path / f"pc{n}.md").read_text())[1:] for n in regimes}
    assert len(table) == len(efficiency) == 11 and all(len(r) == 11 for r in regime_rows.values())
    for label, params, *cells, full in table:
        figure, minutes = re.fullmatch(r"(.+) \((\d+) min\)", full).groups()
        scores, epochs = cells[0::2], cells[1::2]
        same = [
            r
            for r in efficiency
            if r[1] == params and r[2:-1] == [*scores, figure] and r[-1].endswith(f"-{minutes}min")
        ]
        assert len(same) == 1, label  # one entry has these parameters, these scores and the grid
        for n, score, trained in zip(regimes, scores, epochs, strict=True):
            (entry,) = [r for r in regime_rows[n] if r[0] == same[0][0]]
            assert entry[4] == score and entry[6].startswith(f"{trained} ± "), (label, n)


def test_the_regime_table_counts_the_runs_the_epoch_cap_stopped(tmp_path: Path) -> None:
    """A run that trained all 60 epochs of pc500 ended at the cap, not on a val plateau: the table says how many."""
    root = tmp_path / "records" / "pc500"
    config = {"lr": 0.01, "warmup_epochs": 1.0}
    for seed, epochs in ((1, 60), (2, 44), (3, 60)):
        fake_run(root / f"40k-resnet-s{seed}", seed=seed, test=60.0 + seed, epochs=epochs, params=36_741,
                 model="peer:resnet", config=config)  # fmt: skip
    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, str(repo / "scripts" / "small_data.py"), "summarize", "--runs", str(tmp_path / "records"),
           "--out", str(tmp_path / "out")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=repo, timeout=300)
    assert done.returncode == 0, done.stderr
    header, _, row = (tmp_path / "out" / "pc500.md").read_text().splitlines()[2:5]
    cells = dict(zip(header.strip("|").split("|"), row.strip("|").split("|"), strict=True))
    assert cells[" runs stopped by the 60-epoch cap "].strip() == "2 of 3"
    assert cells[" epochs trained "].strip() == "55 ± 9"


def test_a_regime_table_waits_for_seeds_1_3_of_every_tuned_entry(tmp_path: Path) -> None:
    """Records of finished seed runs are committed as they come; a table of some entries (or some seeds) would
    rank what was not measured alike, so the regime's table waits for every fully tuned entry's seeds 1-3."""
    root = tmp_path / "records" / "pc500"
    entries = {"40k-resnet": "peer:resnet", "40k-convmixer": "peer:convmixer"}
    for key, model in entries.items():
        for setting in T.TUNING_GRID:
            fake_run(root / "tune" / key / f"{setting.key}-s0", seed=0, test=0.0, best_val=50.0, model=model)
    fake_run(root / "tune" / "40k-vit" / f"{T.TUNING_GRID[0].key}-s0", seed=0, test=0.0, best_val=40.0)  # not tuned
    config = {"lr": 0.01, "warmup_epochs": 1.0}
    for key, model in entries.items():
        for seed in (1, 2) if key == "40k-convmixer" else (1, 2, 3):
            fake_run(root / f"{key}-s{seed}", seed=seed, test=60.0 + seed, epochs=40, model=model, config=config)
    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, str(repo / "scripts" / "small_data.py"), "summarize", "--runs", str(tmp_path / "records"),
           "--out", str(tmp_path / "out")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=repo, timeout=300)
    assert done.returncode == 1 and not (tmp_path / "out" / "pc500.md").exists()
    assert "pc500: no table until every tuned entry has seeds 1-3; waiting for 40k-convmixer" in done.stderr
    fake_run(root / "40k-convmixer-s3", seed=3, test=63.0, epochs=40, model="peer:convmixer", config=config)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=repo, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in (tmp_path / "out" / "pc500.md").read_text().splitlines() if line.startswith("| 40k-")]
    assert len(rows) == 2


@pytest.mark.parametrize("regime", ["pc50", "pc500"])
def test_the_committed_tuning_tables_are_rebuilt_from_the_committed_records(regime: str, tmp_path: Path) -> None:
    """Each tuning run's record is committed with its row: ``summarize-tuning`` over the records alone writes
    the committed tuning CSV and table byte for byte (no row without its record, no record without its row)."""
    repo = Path(__file__).resolve().parents[1]
    committed = repo / "docs" / "bench" / "small-data"
    cmd = [sys.executable, str(repo / "scripts" / "small_data.py"), "summarize-tuning", "--regime", regime,
           "--runs", "docs/bench/small-data/records", "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=repo, timeout=300)
    assert done.returncode == 0, done.stderr
    for name in (f"tuning-{regime}.csv", f"tuning-{regime}.md"):
        assert (tmp_path / name).read_text() == (committed / name).read_text(), name
