"""The fair contest's definitions: contenders at their budgets and sensible at the input size, commands, epochs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytest.importorskip("timm")

from wavemixer.bench import contest as C
from wavemixer.bench import tuning as T
from wavemixer.bench.conv_audit import audit_convolutions
from wavemixer.runs.records import diverged


@pytest.mark.parametrize("budget", sorted(C.BUDGETS))
def test_every_contender_meets_its_budget(budget: str) -> None:
    """The published row is the registered model; the width steps of each family set how close the rest come."""
    for c in C.contenders(budget):
        params = sum(p.numel() for p in c.build().parameters())
        if c.published:
            assert params == C.BUDGETS[budget], c.key
        tolerance = 0.05 if c.kind == "wavemix" else 0.07  # worst today: WaveMix p2 4.2 %, PoolFormer 6.4 % (40k)
        assert abs(params / C.BUDGETS[budget] - 1) <= tolerance, (c.key, params)


@pytest.mark.parametrize("budget", sorted(C.BUDGETS))
@pytest.mark.parametrize("img_size", [32, 64])
def test_every_wavemix_cell_uses_its_parameters(budget: str, img_size: int) -> None:
    """The WaveMix cells pass the peers' check: <= 5 % of parameters in padding-only taps, no map under 4x4."""
    for c in C.contenders(budget):
        if c.kind != "wavemix":
            continue
        audit = audit_convolutions(c.build(), (3, img_size, img_size))
        assert audit.dead_fraction <= 0.05 and not audit.small_maps(4), (c.key, audit.dead_fraction)


def test_published_rows_are_the_registered_models() -> None:
    from wavemixer.registry import get_spec

    for budget, name in C.PUBLISHED.items():
        (pub,) = [c for c in C.contenders(budget) if c.published]
        assert pub.key == ("wavemix-s1-bilinear" if budget == "40k" else "wavemix-s1-convtranspose")
        reference = get_spec(name).build()
        model = pub.build()
        assert model.config == reference.config
        assert sum(p.numel() for p in model.parameters()) == get_spec(name).num_params


def test_the_registered_efficient_model_is_the_contests_40k_cell() -> None:
    from wavemixer.data.defaults import DEFAULT_MODEL
    from wavemixer.registry import get_spec

    cell = C.contender("40k", "wavemix-s2-convtranspose")
    registered = get_spec(DEFAULT_MODEL).build()
    assert registered.config == cell.build().config  # the weights shipped under the name are this cell's
    assert C.macs_per_image("40k", cell.key) == pytest.approx(get_spec(DEFAULT_MODEL).gmacs * 1e9, rel=1e-3)


def test_stride_two_cuts_macs_by_the_resolution_ratio() -> None:
    """Same parameters, blocks at 8x8 instead of 32x32: the blocks' MACs fall 16x (the stem's 4x and 16x)."""
    from wavemixer.flops import count_macs

    s1, s2 = (C.contender("40k", k).build() for k in ("wavemix-s1-bilinear", "wavemix-s2-bilinear"))
    assert sum(p.numel() for p in s1.parameters()) == sum(p.numel() for p in s2.parameters())
    # s1: the registry's 0.01434 GMACs; s2: the same blocks on 16x fewer pixels, the stem's second conv at 16x16
    assert (count_macs(s1, (3, 32, 32)), count_macs(s2, (3, 32, 32))) == (14_336_320, 979_264)


def test_train_command_and_steps(tmp_path: Path) -> None:
    c = C.contender("40k", "resnet")
    cmd = C.train_command(c, T.TUNING_GRID[0], steps=800, seed=1, output=tmp_path / "r", data_dir="D.zip")
    # the whole command: resuming a run depends on it staying exactly this; 800 steps of 351 per epoch are
    # 3 epochs, the last cut short
    assert cmd == ["train", "--dataset", "cifar10", "--no-trivial-augment", "--decode-once", "--batch-size", "128",
                   "--opt", "adamw", "--weight-decay", "0.05", "--sched", "cosine", "--threads", "1", "--workers", "0",
                   "--amp", "none", "--lr", "0.001", "--warmup-epochs", "0.2", "--model", "peer:resnet",
                   "--model-arg", "params=37058", "--epochs", "3", "--max-steps", "800", "--seed", "1",
                   "--output", str(tmp_path / "r"), "--data-dir", "D.zip"]  # fmt: skip
    # a tuning run selects on val: the same command, the test set left unevaluated
    tune = C.train_command(c, T.TUNING_GRID[0], steps=800, seed=1, output=tmp_path / "r", data_dir="D.zip",
                           tuning=True)  # fmt: skip
    at = cmd.index("--epochs")
    assert tune == [*cmd[:at], "--skip-test", *cmd[at:]]
    # 100 ms per step: 5 minutes are 3,000 steps; never fewer than one
    assert C.steps_for_budget(100.0, 5.0) == 3000
    assert C.steps_for_budget(10_000_000.0, 5.0) == 1


def test_tuning_table_picks_the_best_val_setting(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    # the tie's higher rate comes first: the rule decides, not the order of the rows
    rows = [("resnet", 1e-3, 0.2, 60.0), ("resnet", 1e-2, 0.2, 64.5), ("resnet", 3e-3, 1.0, 64.5),
            ("vit", 1e-3, 1.0, 50.0)]  # fmt: skip
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["key", "lr", "warmup", "val_top1"])
        w.writerows(rows)
    best = T.read_tuning(path)
    assert best["resnet"] == T.Setting(3e-3, 1.0)  # a tie goes to the lower learning rate
    assert best["vit"] == T.Setting(1e-3, 1.0)


def test_prescreen_keeps_the_best_upsampler_per_stem_and_the_published(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["key", "lr", "warmup", "val_top1"])
        for i, stem in enumerate(C.STEMS):
            for j, up in enumerate(C.UPSAMPLERS):
                best = j == (i + 1) % 3  # a different winner per stem
                w.writerow([f"wavemix-{stem}-{up}", C.PRESCREEN.lr, C.PRESCREEN.warmup, 50 + 10 * i + best])
        w.writerow(["wavemix-s1-bilinear", 1e-2, 1.0, 99.0])  # another setting: not part of the screen
    chosen = C.prescreen_selection(path)
    assert chosen == ["wavemix-s1-bilinear", "wavemix-s1-convtranspose", "wavemix-s2-pixelshuffle",
                      "wavemix-p2-bilinear"]  # fmt: skip
    rows = path.read_text().replace("wavemix-s1-convtranspose,0.003,0.2,51", "wavemix-s1-convtranspose,0.003,0.2,")
    path.write_text(rows)  # it diverged: screened, and s1's next best (bilinear, the published one) goes on
    assert C.prescreen_selection(path) == ["wavemix-s1-bilinear", "wavemix-s2-pixelshuffle", "wavemix-p2-bilinear"]
    path.write_text("key,lr,warmup,val_top1\nwavemix-s1-bilinear,0.003,0.2,50\n")
    with pytest.raises(ValueError, match=r"lacks .*; run it first \(tune --prescreen\)"):
        C.prescreen_selection(path)


def test_the_committed_tuning_followed_the_prescreen() -> None:
    """``tune --prescreened`` fully tunes the peers and the WaveMix cells the pre-screen chose: exactly the
    contenders the committed tuning tuned fully."""
    tuning = Path(__file__).resolve().parents[1] / "docs" / "bench" / "contest" / "tuning-40k.csv"
    peers = {c.key for c in C.contenders("40k") if c.kind != "wavemix"}
    assert set(T.read_tuning(tuning, complete=True)) == peers | set(C.prescreen_selection(tuning))


def test_runs_are_started_and_resumed_with_the_contests_own_commands(tmp_path: Path) -> None:
    """Runs in progress resume only if the command and folder stay what they were: ``<python> -m wavemixer.cli``
    with :func:`train_command`'s arguments, ``train --resume FOLDER`` once a checkpoint is there."""
    import sys

    from wavemixer.runs import Job
    from wavemixer.runs.lanes import command

    out = tmp_path / "40k-5min" / "resnet-s1"
    args = C.train_command(C.contender("40k", "resnet"), T.TUNING_GRID[0], steps=800, seed=1, output=out,
                           data_dir="D.zip")  # fmt: skip
    assert command(Job(args, out), nice=10) == ["nice", "-n", "10", sys.executable, "-m", "wavemixer.cli", *args]
    out.mkdir(parents=True)
    (out / "checkpoint.pt").write_bytes(b"")
    assert command(Job(args, out)) == [sys.executable, "-m", "wavemixer.cli", "train", "--resume", str(out)]


def test_edge_rule_steps_beyond_the_rates_tried_while_the_best_is_at_their_boundary(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"

    def write(extra: list[tuple[str, float, float, str]]) -> None:
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["key", "lr", "warmup", "val_top1"])
            for s in T.TUNING_GRID:
                w.writerow(["high", s.lr, s.warmup, 50 + 1000 * s.lr])  # best at lr 1e-2
                w.writerow(["low", s.lr, s.warmup, 50 - 1000 * s.lr])  # best at lr 1e-3
                w.writerow(["inside", s.lr, s.warmup, 60 if s.lr == 3e-3 else 50])
            w.writerows(extra)

    write([])
    assert T.edge_runs(path) == {"high": [T.Setting(0.03, 0.2), T.Setting(0.03, 1.0)],
                                 "low": [T.Setting(0.000333, 0.2), T.Setting(0.000333, 1.0)]}  # fmt: skip
    # "high" is better still at 3e-2: it steps again; "low" peaked inside what it tried, so it stops
    write([("high", 0.03, 0.2, 80.0), ("high", 0.03, 1.0, 99.0), ("low", 0.000333, 0.2, 40.0),
           ("low", 0.000333, 1.0, 41.0)])  # fmt: skip
    assert T.read_tuning(path, complete=True)["high"] == T.Setting(0.03, 1.0)  # the run grid takes the edge's best
    assert T.edge_runs(path) == {"high": [T.Setting(0.09, 0.2), T.Setting(0.09, 1.0)]}
    # a diverged step counts as tried: the best is then inside, and the rule ends
    write([("high", 0.03, 0.2, 80.0), ("high", 0.03, 1.0, 99.0), ("high", 0.09, 0.2, ""), ("high", 0.09, 1.0, "")])
    assert "high" not in T.edge_runs(path)
    # at most EDGE_MAX_STEPS steps beyond the grid
    far = [("high", lr, wu, 60 + lr) for lr in (0.03, 0.09, 0.27) for wu in (0.2, 1.0)]
    write(far)
    assert T.read_tuning(path, complete=True)["high"].lr == 0.27 and "high" not in T.edge_runs(path)


def test_a_diverged_tuning_run_counts_as_tried_and_is_never_chosen(tmp_path: Path) -> None:
    from .fake_runs import fake_run

    root = tmp_path / "tune-40k"
    for i, s in enumerate(T.TUNING_GRID[:-1]):
        fake_run(root / "vit" / f"{s.key}-s0", seed=0, test=0.0, best_val=50.0 + i)
    blown = root / "vit" / f"{T.TUNING_GRID[-1].key}-s0"  # lr 1e-2, warm-up 1: the loss went NaN
    blown.mkdir(parents=True)
    (blown / "checkpoint.pt").write_bytes(b"")
    (root / "vit" / f"{blown.name}.log").write_text("wavemixer train: error: training diverged: the loss is nan\n")
    assert diverged(blown) and not diverged(root / "vit" / f"{T.TUNING_GRID[0].key}-s0")
    rows = T.tuning_rows(root)
    assert [r["diverged"] for r in rows].count(1) == 1 and len(rows) == len(T.TUNING_GRID)
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    best = T.read_tuning(path, complete=True)
    assert best == {"vit": T.TUNING_GRID[-2]}  # complete, and the best of the runs that finished
    table = T.tuning_table(rows, best)
    assert table[2].endswith("| diverged |") and "**54.00**" in table[2]


@pytest.mark.parametrize(
    "committed", ["contest/tuning-40k.csv", "small-data/tuning-pc50.csv", "small-data/tuning-pc500.csv"]
)
def test_a_committed_tuning_csv_passes_through_a_merge_unchanged(committed: str, tmp_path: Path) -> None:
    """With no run on disk, rebuilding a tuning CSV writes back every committed row as it was (diverged runs,
    edge runs and pre-screens included), byte for byte."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "bench" / committed).read_text()
    text += "vit,0.03,1.0,,,,,,1\n"  # a diverged run: tried, no score
    (tmp_path / "in.csv").write_text(text)
    rows = T.merge_tuning(tmp_path / "in.csv", [])
    assert rows[-1]["diverged"] == 1 and rows[-1]["val_top1"] == "" and isinstance(rows[0]["steps"], int)
    T.write_csv(tmp_path / "out.csv", rows)
    assert (tmp_path / "out.csv").read_text() == text


def test_long_grids_keep_the_published_row_and_the_best_at_the_short_budget_by_val(tmp_path: Path) -> None:
    """Ranked on mean val top-1, never test; the published row stays whatever its rank; an unfinished short
    grid (a contender short of seeds) ranks nothing."""
    path = tmp_path / "40k-5min.csv"
    val = {"resnet": 70, "wavemix-p2-convtranspose": 69, "convnext": 50, "vit": 60, "wavemix-s1-bilinear": 40,
           "wavemix-s1-convtranspose": 55}  # fmt: skip
    test = {k: 100 - v for k, v in val.items()}  # the test set would rank them the other way round

    def write(rows: list[tuple[str, int]]) -> None:
        lines = ["group,seed,metric,best_val,test"]
        lines += [f"{k},{s},top1,{val[k] + s / 10},{test[k]}" for k, s in rows]
        path.write_text("\n".join(lines) + "\n")

    write([(k, s) for k in val for s in (1, 2, 3)])
    assert C.long_grid_selection(path, "40k", keep=3) == ["wavemix-s1-bilinear", "resnet", "wavemix-p2-convtranspose"]
    # at 0.5M the published row is the transposed-conv one; the 40k reference row ranks like any other
    assert C.long_grid_selection(path, "500k", keep=4) == [
        "wavemix-s1-convtranspose", "resnet", "wavemix-p2-convtranspose", "vit"]  # fmt: skip
    write([(k, s) for k in val for s in (1, 2, 3) if (k, s) != ("vit", 3)])
    with pytest.raises(ValueError, match=r"not finished \(\['vit'\]"):
        C.long_grid_selection(path, "40k")
    with pytest.raises(ValueError, match="at least 1"):
        C.long_grid_selection(path, "40k", keep=0)


def test_mixer_ablation_swaps_only_the_mixer_of_the_best_wavemix_configuration(tmp_path: Path) -> None:
    path = tmp_path / "40k-5min.csv"
    val = {"resnet": 72, "wavemix-p2-convtranspose": 69, "wavemix-s2-convtranspose": 70, "wavemix-s1-bilinear": 52}
    lines = ["group,seed,metric,best_val,test"] + [
        f"{k},{s},top1,{v},{100 - v}" for k, v in val.items() for s in (1, 2)
    ]
    path.write_text("\n".join(lines) + "\n")
    assert C.best_wavemix(path) == "wavemix-s2-convtranspose"  # the best WaveMix by val, not the best contender
    base = C.contender("40k", "wavemix-s2-convtranspose")
    assert C.mixer_variant(base, "haar") is base
    variants = {m: C.mixer_variant(base, m) for m in C.MIXERS if m != "haar"}
    for mixer, v in variants.items():
        assert v.key == f"wavemix-s2-convtranspose-{mixer}" and v.model == base.model
        changed = {k for k in v.model_args if v.model_args[k] != base.model_args.get(k)}
        assert changed == set(C.MIXERS[mixer])  # stem, stride, width, depth and upsampler stay
        config = v.build().config  # and the built model carries the swap
        assert {k: config[k] for k in C.MIXERS[mixer]} == C.MIXERS[mixer]
    counts = {m: sum(p.numel() for p in v.build().parameters()) for m, v in variants.items()}
    assert counts["db2"] == counts["random"] == counts["avgpool"] == 38_550  # parameter-free mixers
    # 7 blocks of width 16: a 2x2 conv 4 -> 16 with bias (272) each; 16 complex 16 x 9 filters (4,608) each
    assert (counts["conv"], counts["fourier"]) == (38_550 + 7 * 272, 38_550 + 7 * 4_608)
    with pytest.raises(ValueError, match="not a WaveMix"):
        C.mixer_variant(C.contender("40k", "resnet"), "db2")
    with pytest.raises(ValueError, match="unknown mixer"):
        C.mixer_variant(base, "sym4")


def test_grid_tables_take_exact_macs_from_the_definitions() -> None:
    """The sweep rounded MACs to 0.1 M; the tables count them from each contender as built (the published row
    matches the registry's checked figure)."""
    from wavemixer.registry import get_spec

    published = next(c for c in C.contenders("40k") if c.published)
    assert C.macs_per_image("40k", published.key) == pytest.approx(get_spec(published.model).gmacs * 1e9, rel=2e-3)
    s2, poolformer = C.macs_per_image("40k", "wavemix-s2-convtranspose"), C.macs_per_image("40k", "poolformer")
    assert (s2, poolformer) == (731_296, 739_616)  # both were "0.70 M" in the rounded sweep


def test_edge_rounds_train_until_no_best_rate_is_at_the_boundary(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rows = [("high", s.lr, s.warmup, 50 + 1000 * s.lr) for s in T.TUNING_GRID]  # best at 1e-2
    val = {0.03: 90.0, 0.09: 70.0}  # better one step beyond the grid, worse two steps beyond
    plans: list[dict[str, list[T.Setting]]] = []

    def write() -> None:
        path.write_text("key,lr,warmup,val_top1\n" + "".join(f"{k},{lr},{wu},{v}\n" for k, lr, wu, v in rows))

    def train_round(plan: dict[str, list[T.Setting]]) -> int | None:
        plans.append(plan)
        rows.extend(("high", s.lr, s.warmup, val[s.lr]) for s in plan.get("high", []))
        write()
        return 0 if plan else None

    write()
    assert T.edge_rounds(path, train_round) == 0
    assert [sorted({s.lr for s in p.get("high", [])}) for p in plans] == [[0.03], [0.09], []]
    assert T.read_tuning(path, complete=True)["high"].lr == 0.03
    rows[:] = rows[: len(T.TUNING_GRID)]
    write()
    assert T.edge_rounds(path, lambda plan: 1) == 1  # a failed round ends the rule with its status


def test_throughput_table_is_written_again_from_its_csv_with_exact_macs(tmp_path: Path) -> None:
    """``contest.py sweep --table-only`` measures nothing: the committed rows, the notes kept, MACs exact."""
    import os
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    for name in ("throughput.csv", "throughput.md"):
        shutil.copy(repo / "docs" / "bench" / "contest" / name, tmp_path / name)
    notes = (tmp_path / "throughput.md").read_text().split("| budget | contender |")[0]
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    cmd = [sys.executable, str(repo / "scripts" / "contest.py"), "sweep", "--table-only", "--out", str(tmp_path)]
    for _ in range(2):  # a second pass adds nothing
        subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=tmp_path)
    text = (tmp_path / "throughput.md").read_text()
    assert text.startswith(notes) and text.count("--table-only") == 1
    with (tmp_path / "throughput.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["threads"] == "1"]
    lines = [line for line in text.splitlines() if line.startswith(("| 40k |", "| 500k |"))]
    assert len(lines) == len(rows)
    s2 = next(line for line in lines if line.startswith("| 40k | wavemix-s2-convtranspose |"))
    assert s2.split(" | ")[3] == f"{C.macs_per_image('40k', 'wavemix-s2-convtranspose') / 1e6:.2f}" == "0.73"


def test_a_grid_continues_from_its_committed_summary_when_its_run_folders_are_gone(tmp_path: Path) -> None:
    """``<grid>.csv`` is the ledger: ``run`` trains none of the contenders and seeds it holds, ``summarize``
    keeps its rows, and a run folder that is here replaces its row (a grid outlives the machine it started on)."""
    import os
    import shutil
    import subprocess
    import sys

    from .fake_runs import fake_run

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    out.mkdir()
    for name in ("throughput.csv", "tuning-40k.csv", "40k-5min.csv"):
        shutil.copy(repo / "docs" / "bench" / "contest" / name, out / name)
    with (out / "40k-5min.csv").open() as fh:
        ledger = {(r["group"], r["seed"]): r for r in csv.DictReader(fh)}
    runs = tmp_path / "runs"
    fake_run(runs / "40k-5min" / "resnet-s1", seed=1, test=12.5, best_val=13.0, model="peer:resnet",
             params=36_741, epochs=10, steps=3_482, config=dict(lr=0.03, warmup_epochs=1.0))  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(repo / "scripts" / "contest.py"), "run", "--grid", "40k-5min", "--only", "resnet",
           "--seeds", "1", "2", "--data-dir", str(tmp_path), "--runs", str(runs), "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"skip {runs / '40k-5min' / 'resnet-s2'}: resnet seed 2 is in" in done.stdout
    assert sorted(p.name for p in (runs / "40k-5min").iterdir()) == ["resnet-s1"]  # nothing trained
    with (out / "40k-5min.csv").open() as fh:
        after = {(r["group"], r["seed"]): r for r in csv.DictReader(fh)}
    assert after.keys() == ledger.keys()  # every contender's rows kept, not only --only's
    assert float(after["resnet", "1"]["test"]) == 12.5  # the folder here replaces its row
    assert after["resnet", "2"] == ledger["resnet", "2"]
    assert "| resnet |" in (out / "40k-5min.md").read_text()
    # the machines the runs recorded, not the one writing the table
    assert (
        "Trained on AMD EPYC (avx2 avx512f avx512_bf16) (29 runs), Test CPU (avx2) (1 run), torch 2.0, 2.14.1"
        in (out / "40k-5min.md").read_text()
    )
    # a row trained at another setting than the grid's (a new tuning since) is refused, not mixed in
    text = (out / "40k-5min.csv").read_text()
    row = next(line for line in text.splitlines() if line.startswith("resnet,2,"))
    (out / "40k-5min.csv").write_text(text.replace(row, row.replace(",0.03,1.0,", ",0.01,1.0,")))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "resnet seed 2 trained at lr 0.01, warm-up 1.0, 3482 steps, but the grid now trains it at lr 0.03" in (
        done.stderr
    )


def test_the_docs_grid_comparisons_are_reproduced_from_the_committed_ledgers(tmp_path: Path) -> None:
    """``contest.py compare`` rebuilds, from the committed grid CSVs alone (no run folders), every table of
    docs/claims.md that sets a grid beside another; the published rows of two budgets are set side by side."""
    import os
    import re
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    claims = (repo / "docs" / "claims.md").read_text()
    pairs = re.findall(r"`compare --grid (\S+) --against (\S+)`", claims)
    assert {("40k-20min", "40k-5min"), ("500k-20min", "40k-20min")} <= set(pairs)
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    for grid, against in pairs:
        cmd = [sys.executable, str(repo / "scripts" / "contest.py"), "compare", "--grid", grid, "--against", against,
               "--runs", str(tmp_path / "none"), "--out", str(tmp_path)]  # fmt: skip
        for name in ("throughput.csv", f"{grid}.csv", f"{against}.csv"):
            (tmp_path / name).write_bytes((repo / "docs" / "bench" / "contest" / name).read_bytes())
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr
        table = [line for line in done.stdout.splitlines() if line.startswith("|")]
        assert len(table) > 3 and "\n".join(table) in claims, (grid, against)
        assert (tmp_path / f"{grid}-vs-{against}.md").read_text() == (
            repo / "docs" / "bench" / "contest" / f"{grid}-vs-{against}.md"
        ).read_text()
    assert C.title("500k", "wavemix-s1-convtranspose") == "WaveMix s1, transposed conv (published)"
    assert C.title("40k", "wavemix-s1-convtranspose") == "WaveMix s1, transposed conv"
    assert set(C.PEER_TITLES) == set(C.CONTEST_PEERS)  # a peer entered without a title shows its bare key


def test_throughput_table_gives_each_contender_the_steps_its_grids_train() -> None:
    """The sweep's table and the grids read one budget: the steps (epochs) in each time-budget column are
    :func:`~wavemixer.bench.contest.budget_steps` of the committed sweep, for every contender and grid."""
    from wavemixer.bench import contest_throughput as TP

    path = Path(__file__).resolve().parents[1] / "docs" / "bench" / "contest" / "throughput.csv"
    with path.open(newline="") as fh:
        rows = [TP.throughput_row(r) for r in csv.DictReader(fh)]
    assert all(isinstance(r["ms_per_step"], float) and isinstance(r["threads"], int) for r in rows)
    header, _, *lines = TP.throughput_table(rows)
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert len(lines) == sum(r["threads"] == 1 for r in rows)
    for grid, (budget, _) in C.TIME_BUDGETS.items():
        steps = C.budget_steps(path, grid)
        col = columns.index(f"steps (epochs) in {grid}")
        shown = {
            cells[1].removesuffix(" (published)"): cells[col]
            for line in lines
            if (cells := [c.strip() for c in line.strip("|").split("|")])[0] == budget
        }
        assert set(shown) == set(steps) == {c.key for c in C.contenders(budget)}
        for key, n in steps.items():
            assert shown[key] == f"{n:,} ({n / C.STEPS_PER_EPOCH:.1f})"


def test_bench_entries_time_every_contender_as_the_grids_build_it() -> None:
    """One entry per contender, labelled ``<budget>/<key>``, built from the contender's own config: peers
    through the peer source, WaveMix cells through the model registry, at the contest's input size."""
    import dataclasses
    import json

    from wavemixer.bench import contest_throughput as TP
    from wavemixer.bench.worker import build_model

    pairs = TP.bench_entries(["40k"])
    assert [e.label for _, e in pairs] == [f"40k/{c.key}" for c in C.contenders("40k")]
    for c, e in pairs:
        assert e.source == ("peer" if c.kind == "peer" else "wavemixer") and e.input_size == (3, C.IMG_SIZE, C.IMG_SIZE)
        assert e.group == "40k"
        model, timed = c.build(), build_model(json.loads(json.dumps(dataclasses.asdict(e))))  # as the worker gets it
        own = model.model if c.kind == "peer" else model  # a peer is timed as its bare library model
        assert type(timed) is type(own)
        assert {k: v.shape for k, v in timed.state_dict().items()} == {k: v.shape for k, v in own.state_dict().items()}


def test_fully_tuned_means_every_grid_setting_with_edge_runs_beside() -> None:
    """The one completeness rule that read_tuning(complete=True) and the small-data tables' wait share."""
    grid = list(T.TUNING_GRID)
    assert T.fully_tuned(grid) and T.fully_tuned([*grid, T.Setting(0.27, 1.0)])
    assert not T.fully_tuned(grid[1:]) and not T.fully_tuned([C.PRESCREEN])
