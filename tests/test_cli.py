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


def test_models_peers_lists_every_family_and_filters(capsys):
    from wavemixer.bench.peers import PEER_FAMILIES, SEGMENTATION_PEER_FAMILIES

    assert main(["models", "--peers", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {f"peer:{f}" for f in [*PEER_FAMILIES, *SEGMENTATION_PEER_FAMILIES]}
    assert rows["peer:resnet"]["depths"] == [1, 2, 2] and rows["peer:lraspp_mobilenet_v3"]["depths"] is None
    assert main(["models", "--peers", "--task", "segmentation"]) == 0
    out = capsys.readouterr().out
    assert "peer:unet" in out and "peer:resnet" not in out and "fixed" in out
    for pattern in ("mlp", "mlp*", "peer:mlp*"):  # a word, or a pattern with or without the prefix
        assert main(["models", "--peers", pattern, "--format", "markdown"]) == 0
        assert capsys.readouterr().out.splitlines()[2:] == [
            "| `peer:mlp_mixer` | classification | timm.models.mlp_mixer.MlpMixer | 4/8/8 |"
        ]
    assert main(["models", "--peers", "--task", "super_resolution"]) == 0
    assert capsys.readouterr().err == "wavemixer models: no peer matches --task super_resolution\n"
    assert main(["models", "zzz", "--pretrained", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert captured.err == "wavemixer models: no model matches pattern 'zzz' and --pretrained\n"
    assert main(["models", "--peers", "--pretrained"]) == 2
    assert capsys.readouterr().err.strip() == (
        "wavemixer models: error: --pretrained does not apply to --peers: peers ship no weights"
    )


def test_entry_point_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "wavemixer", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("wavemixer ")
    bad = subprocess.run([sys.executable, "-m", "wavemixer", "models", "--task", "detection"], capture_output=True,
                         text=True)  # fmt: skip
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
