"""The wheel carries the licence, SPDX metadata and the embedded data; missing extras give one line, exit 2."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# a core install: the train extra's modules cannot be imported
_BLOCK_TRAIN_EXTRA = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torchvision", "torchmetrics", "yaml", "PIL", "tqdm", "matplotlib"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from wavemixer.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_wheel_ships_licence_metadata_and_data(tmp_path):
    pytest.importorskip("setuptools", minversion="77")
    tree = tmp_path / "tree"
    shutil.copytree(SRC, tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    build = "import setuptools.build_meta as b, sys; print(b.build_wheel(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", build, str(tmp_path)], cwd=tree, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = tmp_path / out.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(f"{dist_info}/METADATA"))
        licence = z.read(f"{dist_info}/licenses/LICENSE").decode()
    assert meta["License-Expression"] == "MIT" and "The wavemixer authors" in licence and "MIT License" in licence
    assert "wavemixer/data/digits.npz" in names and "wavemixer/data/digits.LICENSE" in names
    assert any(u.startswith("Paper, https://arxiv.org/abs/2205.14375") for u in meta.get_all("Project-URL"))
    train = [r for r in meta.get_all("Requires-Dist") if 'extra == "train"' in r]
    assert train and not any(r.startswith(("scikit-learn", "scipy")) for r in train)


def test_core_install_train_names_the_extra(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _BLOCK_TRAIN_EXTRA, "train", "--output", str(tmp_path / "run")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        'wavemixer train: error: this command needs torchvision, which is not installed: pip install "wavemixer[train]"'
    ]
