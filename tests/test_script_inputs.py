"""The grid scripts refuse bad input in one line (``<script> <command>: error: ...``, exit status 2) before they
measure, train or write anything: the contest's, small-data, claims and priors drivers run for hours, and a
typo must not cost a grid or overwrite a committed table."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTEST_CSVS = REPO / "docs" / "bench" / "contest"


def _script(args: list[str], cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stderr.strip()


RUN_40K_20MIN = ["contest.py", "run", "--grid", "40k-20min", "--data-dir", "{tmp}", "--runs", "{tmp}/runs"]
SMALL_DATA_RUN = ["small_data.py", "run", "--regime", "pc50", "--data-dir", "{tmp}", "--runs", "{tmp}/runs",
                  "--out", "{out}", "--contest-tuning", "{out}/tuning-40k.csv"]  # fmt: skip


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A copy of the committed contest tables (and the small-data tuning at 50 per class), as a grid's --out."""
    folder = tmp_path / "out"
    folder.mkdir()
    for name in ("throughput.csv", "tuning-40k.csv", "compile-check.csv", "compile-check.md"):
        shutil.copy(CONTEST_CSVS / name, folder / name)
    shutil.copy(REPO / "docs" / "bench" / "small-data" / "tuning-pc50.csv", folder)  # small_data.py run's input
    return folder


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        # measured nothing and rewrote the committed compile-check tables as empty ones, exit 0
        (
            ["contest.py", "compile-check", "--out", "{out}", "--only", "bogus"],
            "contest.py compile-check: error: --only: unknown contender(s) ['bogus']",
        ),
        (["contest.py", "compile-check", "--out", "{out}", "--rounds", "0"], "argument --rounds: must be at least 1"),
        # measured every contender again over the committed sweep: new step budgets, every finished run refused
        (
            ["contest.py", "sweep", "--out", "{out}"],
            "contest.py sweep: error: {out}/throughput.csv exists and fixes the step budgets of every grid",
        ),
        # the pre-screen chooses its own contenders: an --only beside it would be silently dropped
        (
            [
                "contest.py",
                "tune",
                "--prescreen",
                "--only",
                "resnet",
                "--data-dir",
                "{tmp}",
                "--out",
                "{out}",
                "--runs",
                "{tmp}/runs",
            ],
            "contest.py tune: error: --prescreen chooses its contenders and settings itself; give it without --only",
        ),
        (
            [
                "contest.py",
                "tune",
                "--prescreened",
                "--data-dir",
                "{tmp}",
                "--out",
                "{foreign_tuning}",
                "--runs",
                "{tmp}/runs",
            ],
            "contest.py tune: error: --prescreened: {foreign_tuning}/tuning-40k.csv is not a tuning CSV",
        ),
        # a header-only throughput CSV ended in KeyError: 'resnet'
        (
            [*RUN_40K_20MIN, "--out", "{empty_sweep}", "--only", "resnet"],
            "throughput.csv has no 1-thread ms_per_step for ['resnet']",
        ),
        # a tuning CSV of other columns ended in KeyError: 'lr'
        (
            [*RUN_40K_20MIN, "--out", "{foreign_tuning}"],
            "tuning-40k.csv is not a tuning CSV: it lacks the column(s) ['key', 'lr', 'warmup', 'val_top1']",
        ),
        (
            [
                "contest.py",
                "run",
                "--grid",
                "40k-20min",
                "--data-dir",
                "{tmp}/none",
                "--out",
                "{out}",
                "--runs",
                "{tmp}/runs",
            ],
            "contest.py run: error: --data-dir {tmp}/none does not exist",
        ),
        # did nothing and exited 0
        (
            [
                "small_data.py",
                "tune",
                "--regime",
                "pc50",
                "--data-dir",
                "{tmp}",
                "--out",
                "{tmp}/sd",
                "--runs",
                "{tmp}/runs",
                "--contest-tuning",
                "{foreign_tuning}/header-only.csv",
            ],
            "holds no fully tuned contender",
        ),
        # two ways of choosing the entries
        (
            [*SMALL_DATA_RUN, "--seeds", "4", "5", "--overlapping", "--only", "40k-resnet"],
            "small_data.py run: error: --overlapping and --only choose the entries two ways: give one of them",
        ),
        (
            [*SMALL_DATA_RUN, "--seeds", "4", "5", "--overlapping", "--records", "{tmp}/none"],
            "small_data.py run: error: --overlapping: {tmp}/none/pc50: no finished runs; every cell needs seeds 1-3",
        ),
        # retrained seeds 1-3 (restored from their records): the seeds that decide
        (
            [*SMALL_DATA_RUN, "--overlapping"],
            "small_data.py run: error: --overlapping trains seeds beyond 1-3, which decide the entries; got --seeds "
            "1 2 3 (e.g. --seeds 4 5)",
        ),
        (
            [
                "claims_grid.py",
                "run",
                "--grid",
                "digits-smoke",
                "--runs",
                "{tmp}/runs",
                "--seeds",
                "3",
                "4",
                "--overlapping",
            ],
            "claims_grid.py run: error: --overlapping trains seeds beyond 1-3, which decide the cells; got --seeds 3 4",
        ),
        # the edge rule reads the tuning's records: without them it would see no tuning and say it is done
        (
            ["claims_grid.py", "edge", "--grid", "camvid", "--runs", "{tmp}/runs"],
            "claims_grid.py edge: error: edge: give --records, the tuning's records",
        ),
        (
            ["claims_grid.py", "tuning", "--grid", "camvid", "--records", "{tmp}/none"],
            "claims_grid.py tuning: error: tuning: --records {tmp}/none is not a folder",
        ),
        # fell back to the grid's own epochs and trained
        (
            ["claims_grid.py", "run", "--grid", "digits-smoke", "--runs", "{tmp}/runs", "--epochs", "0"],
            "argument --epochs: must be at least 1, got 0",
        ),
        # dropped one image (a [:-1] slice) and reported the accuracy of the rest
        (["priors.py", "a={tmp}", "--out", "{tmp}/p", "--images", "-1"], "--images must be an integer >= 1, got -1"),
        (["priors.py", "a={tmp}/none", "--out", "{tmp}/p"], "{tmp}/none is not a folder"),
    ],
)
def test_a_grid_script_refuses_bad_input_before_any_work(args, fragment, out, tmp_path):
    empty_sweep = tmp_path / "empty-sweep"
    shutil.copytree(out, empty_sweep)
    (empty_sweep / "throughput.csv").write_text((out / "throughput.csv").read_text().splitlines()[0] + "\n")
    foreign = tmp_path / "foreign"
    shutil.copytree(out, foreign)
    (foreign / "tuning-40k.csv").write_text("foo,bar\n1,2\n")
    (foreign / "header-only.csv").write_text("key,lr,warmup,val_top1\n")
    paths = dict(out=out, tmp=tmp_path, empty_sweep=empty_sweep, foreign_tuning=foreign)
    before = {p: p.read_bytes() for p in out.iterdir()}
    code, err = _script([str(REPO / "scripts" / args[0]), *(a.format(**paths) for a in args[1:])], tmp_path)
    assert code == 2, err
    assert fragment.format(**paths) in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in out.iterdir()} == before  # nothing of --out rewritten
    assert not (tmp_path / "runs").exists()  # no job started


def test_a_grid_script_ends_quietly_when_its_reader_closes_the_pipe(out: Path, tmp_path: Path) -> None:
    """``summarize ... | head -2`` (the ledger note and the table's caption) ends without a BrokenPipeError
    traceback."""
    shutil.copy(CONTEST_CSVS / "40k-5min.csv", out / "40k-5min.csv")  # the grid's ledger: the rows to tabulate
    cmd = f"{sys.executable} {REPO / 'scripts' / 'contest.py'} summarize --grid 40k-5min --out {out} | head -2"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith("CIFAR-10, 40k parameters, 5 minutes"), (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


def test_the_reproduction_script_names_only_commands_the_grid_scripts_have(tmp_path: Path) -> None:
    """``scripts/reproduce_claims.sh`` (dry run) prints every step; each is a sub-command its script has, given
    only options that sub-command knows (a renamed option would stop the real run hours in)."""
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(["bash", str(REPO / "scripts" / "reproduce_claims.sh")], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    steps = [line[2:].split() for line in done.stdout.splitlines() if line.startswith("+ ")]
    assert {s[1] for s in steps} >= {"scripts/contest.py", "scripts/small_data.py", "scripts/claims_grid.py"}
    used: dict[tuple[str, str], set[str]] = {}
    for step in steps:
        if step[1].startswith("scripts/"):
            mine = step[3 : step.index("--")] if "--" in step else step[3:]  # after "--": wavemixer train's flags
            used.setdefault((step[1], step[2]), set()).update(a for a in mine if a.startswith("--"))
    for (script, command), options in used.items():
        helptext = subprocess.run([sys.executable, str(REPO / script), command, "--help"], env=env,
                                  capture_output=True, text=True, timeout=120, cwd=REPO)  # fmt: skip
        assert helptext.returncode == 0, (script, command, helptext.stderr)
        unknown = sorted(o for o in options if not re.search(rf"(^|[\s\[,]){re.escape(o)}\b(?!-)", helptext.stdout))
        assert not unknown, (script, command, unknown)


def test_the_reproduction_script_runs_the_parts_asked_for_and_refuses_an_unknown_one() -> None:
    """``reproduce_claims.sh camvid`` runs the CamVid steps alone (a machine can take one part); an unknown part
    is refused in one line before anything runs."""
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "PYTHONPATH": str(REPO / "src")}

    def dry_run(*parts: str) -> tuple[int, list[str], str]:
        done = subprocess.run(["bash", str(REPO / "scripts" / "reproduce_claims.sh"), *parts], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        scripts = [line.split()[2] for line in done.stdout.splitlines() if line.startswith("+ ")]
        return done.returncode, scripts, done.stderr.strip()

    rc, scripts, _ = dry_run("camvid")
    assert rc == 0 and set(scripts) == {"scripts/claims_grid.py"}, scripts
    rc, scripts, _ = dry_run("contest", "small-data")
    assert rc == 0 and set(scripts) == {"scripts/contest.py", "scripts/small_data.py"}, scripts
    rc, scripts, error = dry_run("cifar")
    assert (rc, scripts) == (2, [])
    assert error == "reproduce_claims.sh: unknown part 'cifar'; the parts are: contest small-data camvid"
