"""Manifests: a ``.csv`` (columns ``path,label[,split]``) or ``.json`` file naming the images of a data set.

Paths are relative to the manifest's folder and must stay inside it; every row is checked before anything
is decoded, so a typo is reported as one line naming the row.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_SUFFIXES", "is_absolute", "read_manifest"]

MANIFEST_SUFFIXES = (".csv", ".json")
_MANIFEST_SPLITS = ("train", "val", "valid", "validation", "test")


def read_manifest(path: Path) -> list[tuple[str, str, str | None]]:
    """``(file, label, split or None)`` rows of a CSV (columns path,label[,split]) or JSON manifest, checked:
    every row names a file inside the manifest's folder (relative path), a label and a known split, and no file
    is listed twice. A UTF-8 byte-order mark and Windows line ends are read as plain text."""
    import csv
    import json

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"manifest {path} lists {twice[0]!r} twice as a key; each file once")
        return dict(pairs)

    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                cols = {c.strip().lower(): c for c in reader.fieldnames or []}
                if "path" not in cols or "label" not in cols:
                    raise ValueError(f"manifest {path} needs a header with columns path,label[,split]")
                raw = [
                    (f"row {reader.line_num}", r[cols["path"]], r[cols["label"]], r.get(cols.get("split", "")))
                    for r in reader
                ]
        else:
            data = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=unique_keys)
            if isinstance(data, dict):
                raw = [(f"key {k!r}", k, v, None) for k, v in data.items()]
            elif isinstance(data, list) and all(isinstance(r, dict) and "path" in r and "label" in r for r in data):
                raw = [(f"entry {i + 1}", r["path"], r["label"], r.get("split")) for i, r in enumerate(data)]
            else:
                raise ValueError(
                    f"manifest {path}: expected a list of {{path, label[, split]}} objects or a {{path: label}} map"
                )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)  # the path is named once
        raise ValueError(f"cannot read manifest {path} ({reason})") from exc
    rows: list[tuple[str, str, str | None]] = []
    first: dict[str, tuple[str, str]] = {}  # normalised path -> (where, label)
    for where, file, label, split in raw:
        file = "" if file is None else str(file).strip()
        label = "" if label is None else str(label).strip()
        split = str(split).strip().lower() if split not in (None, "") else None
        at = f"manifest {path} {where}"
        if not file or not label:
            raise ValueError(f"{at}: empty {'path' if not file else 'label'}; every row needs a path and a label")
        if split is not None and split not in _MANIFEST_SPLITS:
            raise ValueError(f"{at}: split {split!r} is not one of {', '.join(_MANIFEST_SPLITS)} (or empty for train)")
        norm = os.path.normpath(file.replace("\\", "/"))
        absolute = is_absolute(file)
        if absolute or norm == ".." or norm.startswith("../"):
            raise ValueError(
                f"{at}: path {file} is {'absolute' if absolute else 'outside the manifest folder'}; "
                f"paths are relative to the manifest's folder ({path.parent}) and stay inside it"
            )
        if norm in first:
            was, was_label = first[norm]
            if was_label != label:
                raise ValueError(f"{at}: {file} is listed with label {was_label!r} ({was}) and {label!r}; give one")
            raise ValueError(f"{at}: {file} is listed twice ({was} too): a duplicate would be trained and tested on")
        first[norm] = (where, label)
        rows.append((file, label, split))
    return rows


def is_absolute(name: str) -> bool:
    """An absolute path on any system: ``/x``, ``\\\\server\\x``, ``C:/x`` or ``C:\\x``."""
    return name.startswith(("/", "\\")) or bool(re.match(r"[A-Za-z]:[/\\]", name))
