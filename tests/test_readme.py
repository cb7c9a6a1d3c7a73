"""The README as a new user reads it: its commands are checked or marked, its model table is the registry's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
CHECK = REPO / "scripts" / "check_readme_commands.py"


def _check(*args: str) -> subprocess.CompletedProcess:
    """``scripts/check_readme_commands.py``: every README command classified (an unclassified one fails)."""
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=900, cwd=REPO)


def test_every_readme_command_is_run_or_marked_and_the_cheap_ones_succeed():
    done = _check("--only", "wavemixer")  # each in a temporary folder; it must exit 0 and say what it did
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ran = [line for line in done.stdout.splitlines() if line.startswith("[ok] wavemixer")]
    assert ran, "the README should show at least one command anyone can run at once"


def test_readme_does_not_promise_what_does_not_work():
    assert not re.search(r"^pip install wavemixer", README, flags=re.M), "not on PyPI: install from a checkout"
    assert "--amp bf16" not in README, "bf16 is slower than fp32 without native support; the default decides"
    listed = _check("--list")
    assert listed.returncode == 0, listed.stderr
    commands = [line.split("] ", 1)[1] for line in listed.stdout.splitlines() if line.startswith("[")]
    bench = [c for c in commands if c.startswith("wavemixer bench")]
    assert bench and all("--no-reference" in c or "--reference-python" in c for c in bench)
    assert "5.5 GB" in README and "--create-reference-env" in README


def test_readme_model_table_is_the_registry():
    from wavemixer.cli.models import format_markdown, rows

    table = re.search(r"<!-- models-table.*?-->\n(.*?)<!-- /models-table -->", README, flags=re.S).group(1)
    assert table.strip() == format_markdown(rows()), "regenerate with `wavemixer models --format markdown`"


def test_readme_timm_example_runs_as_written():
    block = next(b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "timm.create_model" in b)
    assert block.index("import wavemixer") < block.index("timm.create_model")
    namespace: dict = {}
    exec(compile(block, "README timm example", "exec"), namespace)
    assert namespace["model"].num_classes == 10


def test_docs_state_the_default_jobs_split_sizes_as_the_run_prints_them():
    from wavemixer.tasks.classification import ClassificationTask
    from wavemixer.train import TrainConfig, resolve_config

    data = ClassificationTask(resolve_config(TrainConfig())).build_data()
    text = (REPO / "docs" / "training.md").read_text()
    assert f"{len(data.train):,} training images" in text
    assert f"{len(data.val):,} validation images" in text and f"{len(data.test):,} test images" in text
