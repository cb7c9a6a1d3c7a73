"""Run folders and training checkpoints (atomic writes, corrupt-file detection, a manifest of what was written).

A run folder holds ``config.yaml`` (resolved options), ``summary.csv`` (one row per epoch), ``curves.png``,
``checkpoint.pt`` (everything needed to resume), ``best/`` and ``last/`` (``save_pretrained`` folders:
safetensors weights + config + preprocessing + labels), at the end ``results.json``, and
``wavemixer-manifest.json``: every file wavemixer wrote there, the only files ``--force`` ever removes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from wavemixer.files import atomic_write, atomic_write_text, refuse_overwrite, remove_stale_temporaries, strict_json

__all__ = [
    "MANIFEST",
    "TRAIN_STATE",
    "clean_run_dir",
    "load_train_state",
    "prepare_output_dir",
    "prepare_run_dir",
    "record_outputs",
    "save_train_state",
    "write_json",
    "write_summary",
]

TRAIN_STATE = "checkpoint.pt"
MANIFEST = "wavemixer-manifest.json"
_MANIFEST_FORMAT = "wavemixer-run-manifest"
#: what every run writes (also in folders from before the manifest)
_RUN_FILES = (
    MANIFEST, "config.yaml", TRAIN_STATE, "best_state.pt", "summary.csv", "curves.png", "results.json",
    "best/config.json", "best/model.safetensors", "last/config.json", "last/model.safetensors",
)  # fmt: skip


def _read_manifest(run_dir: Path) -> list[str] | None:
    """The relative paths wavemixer wrote in ``run_dir``, or ``None`` when it has no (valid) manifest."""
    try:
        data = json.loads((run_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT or not isinstance(data.get("files"), list):
        return None
    return [str(p) for p in data["files"]]


def record_outputs(run_dir: Path, names: Iterable[str]) -> None:
    """Add ``names`` (paths relative to ``run_dir``) to the manifest; rewritten only when something is new."""
    files = _read_manifest(run_dir) or []
    new = [n for n in names if n not in files]
    if new or not (run_dir / MANIFEST).is_file():
        text = strict_json(dict(format=_MANIFEST_FORMAT, files=sorted({*files, *new, MANIFEST})))
        atomic_write_text(run_dir / MANIFEST, text)


def _remove_recorded(run_dir: Path, files: list[str]) -> None:
    """Delete the manifest's files (only plain relative paths inside ``run_dir``), then folders left empty."""
    folders = set()
    for name in files:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            continue  # a manifest never names anything outside its run folder
        path = run_dir.joinpath(*rel.parts)
        if path.is_file() or path.is_symlink():
            path.unlink()
        folders.update(run_dir.joinpath(*rel.parts[:i]) for i in range(1, len(rel.parts)))
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def clean_run_dir(run_dir: Path) -> None:
    """Remove what an interrupted save left behind (``.NAME.*.tmp``) for the files a run writes, wherever
    they are in the run folder; temporaries of other names are not ours and stay."""
    names: dict[tuple[str, ...], set[str]] = {}
    for rel in [*(_read_manifest(run_dir) or []), *_RUN_FILES]:
        parts = PurePosixPath(rel).parts
        for i, part in enumerate(parts):
            names.setdefault(parts[:i], set()).add(part)
    for parts, folder_names in names.items():
        if ".." not in parts:
            remove_stale_temporaries(run_dir.joinpath(*parts), sorted(folder_names))


def prepare_run_dir(path: Path, *, force: bool) -> Path:
    """Create the run folder. An existing non-empty one is an error unless ``force``; then only the files its
    manifest lists (what an earlier run wrote) are removed, never anything else the folder holds."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"--output {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise FileExistsError(
                f"run folder {path} already exists and is not empty; use --resume {path} to continue it, "
                "--force to replace the run in it, or another --output"
            )
        files = _read_manifest(path)
        if files is None:
            raise FileExistsError(
                f"--force removes only files wavemixer wrote, as listed in {path / MANIFEST}, and {path} has no "
                "such manifest; choose another --output"
            )
        clean_run_dir(path)
        _remove_recorded(path, files)
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare_output_dir(folder: Path, files: list[str], *, force: bool, run_dir: Path | None = None) -> Path:
    """A folder for reports (``eval``): refuses to overwrite ``files`` without ``force``; inside a run folder
    they are added to its manifest, so ``train --force`` removes them with the run."""
    refuse_overwrite([folder / f for f in files], force=force)
    folder.mkdir(parents=True, exist_ok=True)
    if run_dir is not None and folder.resolve().parent == run_dir.resolve() and _read_manifest(run_dir) is not None:
        record_outputs(run_dir, [f"{folder.name}/{f}" for f in files])
    return folder


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
    atomic_write_text(path, strict_json(data))
