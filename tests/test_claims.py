"""The claims grids (:mod:`wavemixer.bench.claims`): trained in lanes, resumed, summarised; the committed tables
of docs/claims.md reproduced from the committed per-run CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from wavemixer.bench import claims
from wavemixer.runs import train_in_lanes

from .fake_runs import fake_run

REPO = Path(__file__).resolve().parents[1]
CLAIMS = REPO / "docs" / "bench" / "claims"
PEERS = REPO / "docs" / "bench" / "peers"


def test_grid_trains_resumes_and_summarises(tmp_path: Path) -> None:
    pytest.importorskip("timm")
    grid, root, said = claims.GRIDS["digits-smoke"], tmp_path / "digits-smoke", []
    assert train_in_lanes(claims.jobs(grid, root, [0], subset=300), lanes=2, nice=0, log=said.append, poll_s=0.1) == []
    assert sum(line.startswith("start ") for line in said) == 2
    assert (root / "wavemix-dwt-haar-s0" / "results.json").is_file()
    table = claims.summarize("digits-smoke", tmp_path, tmp_path)
    rows = list(csv.DictReader((tmp_path / "digits-smoke.csv").open()))
    assert {r["group"] for r in rows} == {"wavemix-dwt-haar", "convmixer"}
    peer = next(r for r in rows if r["group"] == "convmixer")
    # solved to the 3,566 budget at 1x28x28: ConvMixer width 18, depth 4, kernel 5, patch 1 (by hand:
    # embed 18 + 18, its BatchNorm 36, 4 x (depthwise 468 + BN 36 + pointwise 342 + BN 36), head 190)
    assert int(peer["params"]) == 18 + 18 + 36 + 4 * (468 + 36 + 342 + 36) + 190 == 3_790
    assert (tmp_path / "digits-smoke.md").read_text() == table + "\n"
    assert "| convmixer |" in table and "| wavemix-dwt-haar | 3,566 | 1 | 1 |" in table
    assert (tmp_path / "digits-smoke-pareto.png").stat().st_size > 10_000

    # finished cells are not trained again; a cell without results.json but with a checkpoint is resumed
    (root / "convmixer-s0" / "results.json").unlink()
    said.clear()
    assert train_in_lanes(claims.jobs(grid, root, [0], subset=300), lanes=1, nice=0, log=said.append, poll_s=0.1) == []
    (start,) = [line for line in said if line.startswith("start ")]
    assert f"train --resume {root / 'convmixer-s0'}" in start
    assert (root / "convmixer-s0" / "results.json").is_file()


def test_unknown_cells_are_refused_with_the_grids_cells() -> None:
    with pytest.raises(ValueError, match=r"--only: unknown cell\(s\) \['resnett'\]; the grid has .*'resnet'"):
        claims.select(claims.GRIDS["cifar10-40k-equal-time"], ["resnett"])


BENCH_HEADER = (
    "model,group,mode,precision,input_size,batch_size,params,gmacs,mem_per_sample_mb,peak_mem_mb,ms_median,"
    "samples_per_s,mem_ratio_vs_wavemix,throughput_ratio_vs_wavemix,error\n"
)


def _cells(root: Path, name: str, cells: dict[str, str], tests: tuple[float, ...] = (50.0, 52.0, 54.0)) -> None:
    for cell, model in cells.items():
        for seed, test in enumerate(tests):
            bonus = 10 if cell == "resnet" else 0
            params = 36_000 if cell == "resnet" else 37_058
            fake_run(root / name / f"{cell}-s{seed}", seed=seed, test=test + bonus, model=model, params=params,
                     curve=(45.0, 55.0))  # fmt: skip


def test_summary_takes_train_step_memory_from_the_peers_bench(tmp_path: Path) -> None:
    _cells(tmp_path, "cifar10-40k-2ep", {"wavemix-dwt-db2": "wavemix_lite_32_7_cifar10_tiny", "resnet": "peer:resnet"})
    bench = tmp_path / "peers.csv"
    bench.write_text(
        BENCH_HEADER
        + "WaveMix dwt/db2 [40k@32],40k@32,train,bf16,3x32x32,128,37058,0.01,3.4,436.5,700,180,1.1,0.6,\n"
        + "WaveMix dwt/db2 [40k@32],40k@32,infer,bf16,3x32x32,128,37058,0.01,0.4,51.0,70,1800,1.1,0.6,\n"
        + "resnet [40k@32],40k@32,train,bf16,3x32x32,128,36000,0.01,0.2,30.25,90,1400,0.07,8.0,\n"
        + "resnet [500k@32],500k@32,train,bf16,3x32x32,128,520000,0.1,0.5,64.0,90,1400,0.07,8.0,\n"
    )
    table = claims.summarize("cifar10-40k-2ep", tmp_path, tmp_path, memory=bench).splitlines()
    assert table[0].endswith("| minutes to val ≥ 50 % | train-step memory (MB, batch 128, bf16) |")
    assert table[2] == (
        "| resnet | 36,000 | 2 | 3 | 62.00 ± 2.00 | 63.00 ± 2.00 | 10.0 ± 0.0 | 1500 ± 0 | 10.0 ± 0.0 | 30.2 |"
    )
    assert table[3].startswith("| wavemix-dwt-db2 | 37,058 | 2 | 3 | 52.00 ± 2.00 |") and table[3].endswith("| 436.5 |")
    rows = list(csv.DictReader((tmp_path / "cifar10-40k-2ep.csv").open()))
    assert {r["step_mem_mb"] for r in rows if r["group"] == "resnet"} == {"30.25"}

    bench.write_text(bench.read_text().replace("train,bf16,3x32x32,128,36000", "train,bf16,3x32x32,64,36000"))
    with pytest.raises(ValueError, match="mixes batch sizes/precisions"):
        claims.summarize("cifar10-40k-2ep", tmp_path, tmp_path, memory=bench)


def test_merge_adds_earlier_runs_of_the_same_cells_and_refuses_others(tmp_path: Path) -> None:
    first, later = tmp_path / "first", tmp_path / "later"
    _cells(first, "cifar10-40k-2ep", {"wavemix-dwt-haar": "wavemix_lite_32_7_cifar10_tiny", "resnet": "peer:resnet"})
    claims.summarize("cifar10-40k-2ep", first, first)
    earlier = first / "cifar10-40k-2ep.csv"

    # one seed trained anew, the other two from the earlier CSV: the new run wins for its seed
    fake_run(later / "cifar10-40k-2ep" / "resnet-s0", seed=0, test=70.0, model="peer:resnet", params=36_000)
    table = claims.summarize("cifar10-40k-2ep", later, later, merge=earlier)
    assert "| resnet | 36,000 | 2 | 3 | 65.33 ± 4.16 |" in table  # 70 (new), 62, 64
    assert "| wavemix-dwt-haar | 37,058 | 2 | 3 | 52.00 ± 2.00 |" in table

    # the equal-time grid trains ResNet for 11 epochs: 2-epoch ResNet rows are not its runs
    with pytest.raises(ValueError) as refused:
        claims.summarize("cifar10-40k-equal-time", later, later, merge=earlier)
    assert "(resnet seed 0) is model peer:resnet, 2 epochs, 8 steps, metric top1, goal 50; this grid's cell is " in (
        str(refused.value)
    )
    assert "cell is model peer:resnet, 11 epochs, goal 50: not the same training" in str(refused.value)
    # --only picks the cells that are the same runs in both grids (WaveMix trains 2 epochs in each)
    picked = claims.summarize("cifar10-40k-equal-time", later, later, merge=earlier, only=["wavemix-dwt-haar"])
    assert "| wavemix-dwt-haar | 37,058 | 2 | 3 | 52.00 ± 2.00 |" in picked and "resnet" not in picked
    with pytest.raises(ValueError, match="timed val ≥ goal 50; this grid's cell times val ≥ goal 60"):
        claims.summarize("cifar10-40k-2ep", later, later, merge=earlier, goal=60)


@pytest.mark.parametrize(
    ("grid", "memory"),
    [
        ("cifar10-40k-2ep", "peers-40k-32-cpu-bf16-b128-train.csv"),
        ("cifar10-40k-equal-time", "peers-40k-32-cpu-bf16-b128-train.csv"),
        ("cifar10-40k-11ep", "peers-40k-32-cpu-bf16-b128-train.csv"),
        ("cifar10-500k-2ep", "peers-500k-32-cpu-bf16-b128-train.csv"),
    ],
)
def test_committed_tables_are_reproduced_from_the_committed_runs(grid: str, memory: str, tmp_path: Path) -> None:
    """docs/bench/claims/<grid>.md (and the tables of docs/claims.md) from <grid>.csv, the runs themselves gone."""
    table = claims.summarize(grid, tmp_path / "no-runs", tmp_path, merge=CLAIMS / f"{grid}.csv", memory=PEERS / memory)
    assert (CLAIMS / f"{grid}.md").read_text() == table + "\n"
    assert (tmp_path / f"{grid}.csv").read_text() == (CLAIMS / f"{grid}.csv").read_text()
    assert table in (REPO / "docs" / "claims.md").read_text()


def _epochs(commands: dict[str, list[str]]) -> dict[str, int]:
    return {k: int(cmd[cmd.index("--epochs") + 1]) for k, cmd in commands.items()}


def _commands(name: str, tmp_path: Path) -> dict[str, list[str]]:
    """Each cell's `wavemixer train` command (seed 0), as the grid issues it."""
    grid = claims.GRIDS[name]
    return {c.key: claims.train_command(grid, c, 0, tmp_path / c.key) for c in grid.cells}


def test_equal_time_grid_gives_each_peer_its_own_epochs(tmp_path: Path) -> None:
    peers = dict(resnet=11, convmixer=2, mlp_mixer=11, poolformer=17, vit=5, convnext=15)
    assert _epochs(_commands("cifar10-40k-equal-time", tmp_path)) == {"wavemix-dwt-haar": 2, **peers}


def test_eleven_epoch_grid_trains_its_peers_exactly_as_the_equal_time_grid(tmp_path: Path) -> None:
    """The 11-epoch grid merges ResNet and MLP-Mixer from the equal-time CSV: the commands must be the same."""
    eleven, equal = _commands("cifar10-40k-11ep", tmp_path), _commands("cifar10-40k-equal-time", tmp_path)
    for peer in ("resnet", "mlp_mixer"):
        assert eleven[peer] == equal[peer]
    haar, expected = eleven["wavemix-dwt-haar"], list(equal["wavemix-dwt-haar"])
    assert haar[haar.index("--epochs") + 1] == "11"
    expected[expected.index("--epochs") + 1] = "11"  # WaveMix differs from its equal-time run in epochs only
    assert haar == expected


def test_grid_commands_are_those_of_the_committed_runs(tmp_path: Path) -> None:
    """The commands that trained docs/claims.md's runs (a changed command would not resume them)."""
    cmd = claims.train_command(claims.GRIDS["cifar10-40k-2ep"], claims.GRIDS["cifar10-40k-2ep"].cells[1], 2,
                               tmp_path / "r", data_dir="D.zip")  # fmt: skip
    assert cmd == [
        "train", "--dataset", "cifar10", "--no-trivial-augment", "--batch-size", "128", "--lr", "1e-2", "--threads",
        "1", "--workers", "0", "--warmup-epochs", "0.2", "--model", "wavemix_lite_32_7_cifar10_tiny", "--seed", "2",
        "--output", str(tmp_path / "r"), "--epochs", "2", "--model-arg", "wavelet=db2", "--data-dir", "D.zip",
    ]  # fmt: skip


def test_camvid_grid_trains_every_segmentation_model_through_the_engine_with_one_recipe(tmp_path: Path) -> None:
    """Every CamVid cell is a `wavemixer train --task segmentation` run with the same recipe; the efficient WaveMix
    and the peers sit at the published model's parameter count, and a tuning run's `-- --lr X` wins."""
    import argparse

    from wavemixer.bench.peers import create_peer
    from wavemixer.registry import get_spec
    from wavemixer.train.config import add_config_arguments, config_from_args

    grid = claims.GRIDS["camvid"]
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    configs = {}
    for cell in grid.cells:
        cmd = claims.train_command(grid, cell, 1, tmp_path / cell.key, extra=["--lr", "1e-2"])
        configs[cell.key] = config_from_args(parser.parse_args(cmd[1:]))
    assert set(configs) == {"wavemix", "wavemix-p8", "unet", "lraspp_mobilenet_v3", "deeplabv3_mobilenet_v3"}
    recipe = ("task", "dataset", "batch_size", "eval_batch_size", "input_size", "lr", "amp", "epochs", "warmup_epochs",
              "threads", "weight_decay", "opt", "sched")  # fmt: skip
    first = configs["wavemix"]
    assert (first.task, first.dataset, first.epochs, first.amp) == ("segmentation", "camvid", 60, "none")
    assert first.lr == 1e-2  # the tuning flag after the recipe
    for key, cfg in configs.items():
        assert all(getattr(cfg, k) == getattr(first, k) for k in recipe), key
    published = get_spec("wavemix_seg_64_6_l2_camvid")
    assert published.num_params == claims.CAMVID_PARAMS
    efficient = published.build(**configs["wavemix-p8"].model_args)
    assert sum(p.numel() for p in efficient.parameters()) == 871_651  # within 2 % of the published model's
    # the blocks at 1/8 instead of 1/4 resolution: 0.38 against 0.67 GMACs on a whole 180x240 CamVid image
    from wavemixer.flops import count_macs

    assert (count_macs(published.build(), (3, 180, 240)), count_macs(efficient, (3, 180, 240))) == (
        669_427_200,
        380_228_352,
    )
    for family in ("unet", "lraspp_mobilenet_v3", "deeplabv3_mobilenet_v3"):
        peer = create_peer(configs[family].model, task="segmentation", num_classes=11, in_chans=3, img_size=128,
                           model_args=configs[family].model_args)  # fmt: skip
        assert abs(sum(p.numel() for p in peer.parameters()) / claims.CAMVID_PARAMS - 1) < 0.1, family


def test_tuned_learning_rates_pick_each_cells_best_val_and_enter_its_command(tmp_path: Path) -> None:
    root = tmp_path / "camvid-tune"

    def tuning_run(lr: str, cell: str, val: float, seed: int = 0) -> None:
        fake_run(root / f"lr{lr}" / "camvid" / f"{cell}-s{seed}", seed=seed, test=0.0, best_val=val,
                 task="segmentation", config={"lr": float(lr)})  # fmt: skip

    for lr, (unet, wavemix) in (("0.001", (40.0, 30.0)), ("0.003", (45.0, 30.0)), ("0.01", (42.0, 35.0))):
        tuning_run(lr, "unet", unet)
        tuning_run(lr, "wavemix", wavemix)
        tuning_run(lr, "lraspp_mobilenet_v3", 20.0)  # a tie at every rate: the lowest rate
    tuning_run("0.01", "wavemix", 99.0, seed=1)  # not a tuning run
    # the U-Net's best lies inside the rates; WaveMix's at the highest and LRASPP's (a tie) at the lowest: the
    # contest's edge rule tries one step beyond before either is tuned
    assert claims.tuned_lrs(root, "camvid") == {"unet": 0.003}
    assert claims.edge_lrs(root, "camvid") == {"wavemix": 0.03, "lraspp_mobilenet_v3": 0.000333}
    _, table = claims.tuning_table(root, "camvid")
    assert table[0] == "| model | lr 0.001 | lr 0.003 | lr 0.01 |"
    assert table[2:] == [  # grid order, val only, the tuned rate in bold, the cells still at an edge marked
        "| wavemix (edge rule: 0.03 next) | 30.00 | 30.00 | 35.00 |",
        "| unet | 40.00 | **45.00** | 42.00 |",
        "| lraspp_mobilenet_v3 (edge rule: 0.000333 next) | 20.00 | 20.00 | 20.00 |",
    ]
    tuning_run("0.03", "wavemix", 34.0)  # worse than at 0.01: WaveMix's best is no longer at an edge
    blown = root / "lr0.000333" / "camvid" / "lraspp_mobilenet_v3-s0"  # diverged: tried, never chosen
    blown.mkdir(parents=True)
    (blown.parent / f"{blown.name}.log").write_text("wavemixer train: error: training diverged: the loss is nan\n")
    assert claims.edge_lrs(root, "camvid") == {}
    assert claims.tuned_lrs(root, "camvid") == {"unet": 0.003, "wavemix": 0.01, "lraspp_mobilenet_v3": 0.001}
    rows, table = claims.tuning_table(root, "camvid")
    assert table[2] == "| wavemix | – | 30.00 | 30.00 | **35.00** | 34.00 |"  # lr 0.000333 ... 0.03
    assert table[4] == "| lraspp_mobilenet_v3 | diverged | **20.00** | 20.00 | 20.00 | – |"
    assert {"cell": "lraspp_mobilenet_v3", "lr": "0.000333", "best_val": ""} in rows
    tuning_run("0.001", "deeplabv3_mobilenet_v3", 10.0)
    tuning_run("0.003", "deeplabv3_mobilenet_v3", 10.0)
    for lr, val in (("0.01", 50.0), ("0.03", 51.0), ("0.09", 52.0), ("0.27", 53.0)):  # better at every step up
        tuning_run(lr, "deeplabv3_mobilenet_v3", val)
        assert ("deeplabv3_mobilenet_v3" in claims.tuned_lrs(root, "camvid")) is (lr == "0.27"), lr
    assert claims.tuned_lrs(root, "camvid")["deeplabv3_mobilenet_v3"] == 0.27  # 3 steps beyond the grid at most
    assert claims.edge_lrs(root, "camvid") == {}
    lrs = {"unet": 0.003, "wavemix": 0.01}
    grid = claims.GRIDS["camvid"]
    jobs = claims.jobs(grid, tmp_path / "runs", [1], ["unet", "wavemix"], lrs=lrs)
    assert [job.out.name for job in jobs] == ["wavemix-s1", "unet-s1"]  # grid order: wavemix, then unet
    for job, lr in zip(jobs, ("0.01", "0.003"), strict=True):
        args = list(job.args)
        assert args[len(args) - 1 - args[::-1].index("--lr") + 1] == lr  # the last --lr given wins
    with pytest.raises(ValueError, match="no tuned learning rate for"):
        claims.jobs(grid, tmp_path / "runs", [1], ["deeplabv3_mobilenet_v3"], lrs=lrs)


def test_cells_whose_test_spread_overlaps_another_get_more_seeds(tmp_path: Path) -> None:
    """CamVid's rule: 3 seeds, 5 where two rows lie within each other's mean ± std (judged on the first 3)."""
    root = tmp_path / "camvid"
    tests = {"wavemix": (40.0, 42.0, 44.0), "unet": (43.5, 44.5, 45.5), "lraspp": (30.0, 31.0, 32.0)}
    for cell, scores in tests.items():
        for seed, score in enumerate(scores, start=1):
            fake_run(root / f"{cell}-s{seed}", seed=seed, test=score, task="segmentation")
    assert claims.overlapping_cells(root) == ["unet", "wavemix"]  # 42 ± 2 and 44.5 ± 1 overlap; 31 ± 1 stands apart
    fake_run(root / "lraspp-s4", seed=4, test=43.0, task="segmentation")  # an extra seed does not change the answer
    assert claims.overlapping_cells(root) == ["unet", "wavemix"]
    fake_run(root / "deeplab-s1", seed=1, test=29.0, task="segmentation")
    with pytest.raises(ValueError, match=r"seeds 1-3 finished first \(\['deeplab'\]"):
        claims.overlapping_cells(root)


CAMVID_BENCH = Path(__file__).resolve().parents[1] / "docs" / "bench" / "camvid"


def _claims_grid_writes(tmp_path: Path, *args: str) -> None:
    """Run ``scripts/claims_grid.py ARGS --out tmp_path`` as a user would, from the checkout's sources."""
    import os
    import subprocess
    import sys

    repo = CAMVID_BENCH.parents[2]
    cmd = [sys.executable, str(repo / "scripts" / "claims_grid.py"), *args, "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_the_committed_camvid_tuning_table_is_rebuilt_from_its_records(tmp_path: Path) -> None:
    """``claims_grid.py tuning`` rebuilds bench/camvid/tuning.md from the committed tuning records, and
    docs/claims.md shows that table."""
    _claims_grid_writes(tmp_path, "tuning", "--grid", "camvid", "--records", str(CAMVID_BENCH / "records" / "tune"))
    rebuilt = (tmp_path / "tuning.md").read_text()
    assert rebuilt == (CAMVID_BENCH / "tuning.md").read_text()
    table = [line for line in rebuilt.splitlines() if line.startswith("|")]
    cells = {run.name.rsplit("-s", 1)[0] for run in (CAMVID_BENCH / "records" / "tune").glob("lr*/camvid/*-s0")}
    assert len(table) == 2 + len(cells) and "\n".join(table) in (CAMVID_BENCH.parents[1] / "claims.md").read_text()


def test_the_committed_camvid_seed_table_is_rebuilt_from_its_records(tmp_path: Path) -> None:
    """``claims_grid.py summarize`` rebuilds bench/camvid/camvid.md (every model's seeds at its tuned rate) from
    the committed seed records, and docs/claims.md shows that table."""
    _claims_grid_writes(tmp_path, "summarize", "--grid", "camvid", "--runs", str(CAMVID_BENCH / "records" / "seeds"))
    rebuilt = (tmp_path / "camvid.md").read_text()
    assert rebuilt == (CAMVID_BENCH / "camvid.md").read_text()
    table = rebuilt.strip().splitlines()
    assert len(table) == 2 + len(claims.GRIDS["camvid"].cells)  # header, rule, one row per model
    assert "\n".join(table) in (CAMVID_BENCH.parents[1] / "claims.md").read_text()
