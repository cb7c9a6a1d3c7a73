"""Run folders and training checkpoints (atomic writes, corrupt-file detection).

A run folder holds ``config.yaml`` (resolved options), ``summary.csv`` (one row per epoch), ``curves.png``,
``checkpoint.pt`` (everything needed to resume), ``best/`` and ``last/`` (``save_pretrained`` folders:
safetensors weights + config + preprocessing + labels) and, at the end, ``results.json``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from wavemixer.hub import atomic_write

__all__ = ["TRAIN_STATE", "load_train_state", "prepare_run_dir", "save_train_state", "write_json", "write_summary"]

TRAIN_STATE = "checkpoint.pt"
_RUN_MARKERS = ("config.yaml", TRAIN_STATE, "summary.csv", "best", "last", "results.json")


def prepare_run_dir(path: Path, *, force: bool) -> Path:
    """Create the run folder; an existing non-empty one is an error unless ``force`` (then it is emptied)."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"--output {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise FileExistsError(
                f"run folder {path} already exists and is not empty; use --resume {path} to continue it, "
                "--force to overwrite it, or another --output"
            )
        if not any((path / m).exists() for m in _RUN_MARKERS):
            raise FileExistsError(f"--force refuses to empty {path}: it does not look like a wavemixer run folder")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_train_state(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))


def load_train_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --resume needs a run folder with a {TRAIN_STATE}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file raises many kinds of errors
        raise ValueError(
            f"{path} is not a readable training checkpoint ({type(exc).__name__}: {exc}); "
            "the file is corrupt — start a new run or restore it"
        ) from exc
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise ValueError(f"{path} is not a wavemixer training checkpoint (missing model/epoch)")
    return state


def write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite ``summary.csv`` from the full history (so a resumed run has no duplicated rows)."""
    if not rows:
        return
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))
