"""The command line: `wavemixer models` and argument errors."""

from __future__ import annotations

import json
import subprocess
import sys

from wavemixer.cli import main
from wavemixer.registry import list_models


def test_models_table_lists_every_variant(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out


def test_models_json_and_filters(capsys):
    assert main(["models", "wavemix_lite*", "--task", "classification", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["name"].startswith("wavemix_lite") and r["task"] == "classification" for r in rows)
    assert {"params", "gmacs", "published", "dataset"} <= set(rows[0])


def test_models_markdown(capsys):
    assert main(["models", "wavemix_sr*", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| name | task | params")


def test_entry_point_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "wavemixer", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("wavemixer ")
    bad = subprocess.run([sys.executable, "-m", "wavemixer", "models", "--task", "detection"], capture_output=True,
                         text=True)  # fmt: skip
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
