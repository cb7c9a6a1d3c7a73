"""The manifest of what wavemixer wrote in a folder: what ``--force`` may replace or remove, and nothing else."""

from __future__ import annotations

import json

import pytest

from wavemixer.written_files import (
    MANIFEST,
    holds_outputs,
    record_outputs,
    recorded,
    refuse_replacing_unrecorded,
    remove_recorded,
)


def test_recorded_names_are_replaceable_and_others_are_not(tmp_path):
    (tmp_path / "a.csv").write_text("ours")
    (tmp_path / "b.csv").write_text("the user's")
    record_outputs(tmp_path, ["a.csv"])
    record_outputs(tmp_path, ["a.csv", "c.png"])  # names recorded before their files exist
    assert json.loads((tmp_path / MANIFEST).read_text()) == {
        "format": "wavemixer-run-manifest", "files": ["a.csv", "c.png", MANIFEST]
    }  # fmt: skip
    refuse_replacing_unrecorded(tmp_path, ["a.csv", "c.png", "d.png"], what="--output-dir", option="--force")
    with pytest.raises(FileExistsError, match=r"b\.csv was not written by wavemixer .* choose another --output-dir"):
        refuse_replacing_unrecorded(tmp_path, ["a.csv", "b.csv"], what="--output-dir", option="--force")


def test_a_subfolders_files_may_be_recorded_in_the_parents_manifest(tmp_path):
    """``eval`` records the reports it writes into ``RUN/eval-x/`` in the run's manifest."""
    record_outputs(tmp_path, ["eval-x/metrics.json", "eval-xy/other.csv"])
    (tmp_path / "eval-x").mkdir()
    assert recorded(tmp_path / "eval-x") == {"metrics.json"}
    assert recorded(tmp_path / "eval") == set()  # a prefix of another folder's name is not that folder


def test_a_file_under_the_manifests_name_that_is_not_one_stops_the_writes(tmp_path):
    (tmp_path / MANIFEST).write_text("my notes")
    for call in (lambda: record_outputs(tmp_path, ["a.csv"]), lambda: recorded(tmp_path)):
        with pytest.raises(FileExistsError, match="is not a wavemixer manifest"):
            call()
    assert (tmp_path / MANIFEST).read_text() == "my notes"


def test_removal_stays_inside_the_folder(tmp_path):
    folder = tmp_path / "run"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.png").write_text("ours")
    (folder / "keep.txt").write_text("the user's")
    (tmp_path / "outside.txt").write_text("the user's")
    remove_recorded(folder, ["sub/x.png", "../outside.txt", str(tmp_path / "outside.txt"), ""])
    assert not (folder / "sub").exists() and (folder / "keep.txt").exists() and (tmp_path / "outside.txt").exists()


def test_a_folder_with_only_a_manifest_holds_no_outputs(tmp_path):
    assert not holds_outputs(tmp_path / "missing")
    record_outputs(tmp_path, ["a.csv"])
    assert not holds_outputs(tmp_path)
    (tmp_path / "a.csv").write_text("ours")
    assert holds_outputs(tmp_path)
