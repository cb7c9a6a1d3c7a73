"""``bench --suite peers`` pieces end to end on a tiny sweep: matched parameters, ratios, table, plot."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytest.importorskip("timm")

from wavemixer.bench.peers import PEER_FAMILIES, PeerSpec
from wavemixer.bench.peers_suite import suite_entries
from wavemixer.cli import main
from wavemixer.registry import get_spec


def test_suite_peers_match_the_wavemix_parameter_count() -> None:
    entries = suite_entries(["40k"], mixers=["dwt/haar"])
    wavemix = get_spec("wavemix_lite_32_7_cifar10_tiny").build()
    budget = sum(p.numel() for p in wavemix.parameters())
    assert budget == 37_058
    assert [e.name for e in entries if e.source == "peer"] == list(PEER_FAMILIES)
    for entry in entries:
        if entry.source == "peer":
            params = sum(p.numel() for p in PeerSpec(**entry.kwargs).build(device="meta").parameters())
            assert abs(params / budget - 1) < 0.1, (entry.label, params)
        assert entry.input_size == (3, 32, 32) and entry.group == "40k@32"


def test_suite_resolution_sweep_and_bad_names() -> None:
    entries = suite_entries(["40k"], families=["resnet"], mixers=["dwt/haar"], resolutions=[48, 32])
    assert [(e.source, e.input_size[-1]) for e in entries] == [
        ("wavemixer", 32), ("peer", 32), ("wavemixer", 48), ("peer", 48)
    ]  # fmt: skip
    with pytest.raises(ValueError, match="--scales: unknown scale '1m'"):
        suite_entries(["1m"])
    with pytest.raises(ValueError, match="--families: unknown peer family 'resnt'"):
        suite_entries(["40k"], families=["resnt"])


def test_suite_peers_cli_end_to_end(tmp_path: Path, capsys) -> None:
    status = main([
        "bench", "--suite", "peers", "--scales", "40k", "--mixers", "dwt/haar", "--families", "convmixer",
        "--resolutions", "24", "--mode", "train", "-b", "2", "--warmup", "0", "--iters", "1", "--rounds", "1",
        "--threads", "1", "--out", str(tmp_path),
    ])  # fmt: skip
    assert status == 0
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("bench-peers-cpu-fp32")
    rows = list(csv.DictReader((folder / "peers.csv").open()))
    assert len(rows) == 4 and not any(r["error"] for r in rows)
    base = [r for r in rows if r["model"].startswith("WaveMix dwt/haar")]
    assert [float(r["mem_ratio_vs_wavemix"]) for r in base] == [1.0, 1.0]
    assert {r["model"]: int(r["params"]) for r in rows if r["model"].startswith("convmixer")} == {
        "convmixer [40k@32]": 37_530,  # the contest's 40k ConvMixer
        "convmixer [40k@24]": 36_810,  # solved again at 24 px
    }
    for peer in (r for r in rows if r["model"].startswith("convmixer")):  # each against its own group's WaveMix
        (own,) = [r for r in base if r["group"] == peer["group"]]
        ratio = float(peer["mem_per_sample_mb"]) / float(own["mem_per_sample_mb"])
        assert float(peer["mem_ratio_vs_wavemix"]) == pytest.approx(ratio, rel=1e-2) and float(peer["gmacs"]) > 0
    table = (folder / "peers.md").read_text()
    assert "**40k@32 — training step**" in table and "| convmixer [40k@24] | fp32 | 2 |" in table
    assert (folder / "peers.png").stat().st_size > 10_000
    assert "memory ÷ WaveMix" in capsys.readouterr().out


def test_suite_and_model_names_are_exclusive(tmp_path: Path, capsys) -> None:
    for args in ([], ["wavemix_lite_8_10_mnist", "--suite", "peers"]):
        assert main(["bench", *args, "--out", str(tmp_path)]) == 2
        assert "give model names or --suite peers (one of the two)" in capsys.readouterr().err
