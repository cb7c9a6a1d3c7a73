"""Record this CPU platform's exact golden values, with whatever ``wavemixer`` is importable.

The goldens pin what the code *before* the training package was reorganised gave, so record them with that
version on a new platform::

    git worktree add --detach /tmp/wavemixer-ff3dc7e ff3dc7e
    PYTHONPATH=/tmp/wavemixer-ff3dc7e/src python -m tests.record_goldens

It runs what ``test_training_golden.py`` and ``test_old_run_folder.py`` run (the same functions below) and adds
or replaces this platform's entry in each golden file's ``exact`` list; the shared values (configs, split
fingerprints, parameter counts, the first platform's numbers) are never rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from .conftest import GOLDEN_DIR, SHARED_DATA
from .goldens import (
    OLD_RUN_KEYS,
    PLATFORM,
    RECORDING_VERSION,
    old_run_within_tolerance,
    summary_values,
    training_within_tolerance,
    weights_sha256,
)

TRAIN_GOLDEN = GOLDEN_DIR / "train_classification.json"
OLD = GOLDEN_DIR / "old_run"
THREADS = ["--threads", "2"]  # what old_run/expected.json was recorded with
T = TypeVar("T")


def train_values(config: dict, workdir: Path) -> dict:
    """Train one golden config in ``workdir``; what the golden pins of it."""
    from wavemixer.train import TrainConfig, train

    config = dict(config)
    if config.get("data_dir"):
        config["data_dir"] = str(SHARED_DATA / Path(config["data_dir"]).relative_to("../shared/data"))
    run = workdir / "run"
    before = os.environ.get("WAVEMIXER_DATA")
    os.environ["WAVEMIXER_DATA"] = str(workdir / "cache")  # a fresh data cache, as on a new machine
    try:
        results = train(TrainConfig(**config, output=str(run), quiet=True))
    finally:
        if before is None:
            del os.environ["WAVEMIXER_DATA"]
        else:
            os.environ["WAVEMIXER_DATA"] = before
    saved = json.loads((run / "best" / "config.json").read_text())
    return dict(
        split_hashes=saved["metadata"]["data"]["split_hashes"],
        params=results["params"],
        summary=summary_values(run),
        test=results["test"],
        best=weights_sha256(run / "best"),
        last=weights_sha256(run / "last"),
    )


def copy_old_run(workdir: Path) -> Path:
    """A copy of the committed old run folder in ``workdir``: eval, predict and resume write into their folder."""
    run = workdir / "digits-run"
    shutil.copytree(OLD / "digits-run", run)
    return run


def eval_values(run: Path, split: str) -> dict:
    """``wavemixer eval`` of the folder on one split: its image count and scores."""
    from wavemixer.cli import main

    assert main(["eval", str(run), "--split", split, *THREADS]) == 0
    metrics = json.loads((run / f"eval-digits-{split}" / "metrics.json").read_text())
    return {k: metrics[k] for k in ("images", "top1", "top5")}


def predict_values(run: Path, out: Path) -> list[dict]:
    """``wavemixer predict`` of the folder on the committed images: label, probability, input z-score each."""
    from wavemixer.cli import main

    assert main(["predict", str(run), str(OLD / "images"), "--format", "json", "--output", str(out), *THREADS]) == 0
    rows = json.loads(out.read_text())["predictions"]
    return [{k: r[k] for k in ("label", "probability", "input_z")} for r in rows]


def resume_values(run: Path) -> dict:
    """``wavemixer train --resume`` of the interrupted folder to its end: weights, curve and test scores."""
    from wavemixer.cli import main

    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    results = json.loads((run / "results.json").read_text())
    return dict(
        best=weights_sha256(run / "best"),
        last=weights_sha256(run / "last"),
        summary=summary_values(run),
        test=results["test"],
    )


def _fresh(fn: Callable[[Path], T]) -> T:
    """A value computed in a fresh temporary folder, after the seed the test suite's fixture sets."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        return fn(Path(tmp))


def _code_version() -> str | None:
    """The short commit of the imported ``wavemixer``'s checkout, or None if it has uncommitted changes or is
    not a git checkout (then what it gives cannot be named)."""
    import wavemixer

    src = Path(wavemixer.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "."], capture_output=True, text=True)
    except OSError:
        return None
    if head.returncode or dirty.returncode or dirty.stdout.strip():
        return None
    return head.stdout.strip()


def _put(golden: dict, entry: dict) -> None:
    golden["exact"] = [e for e in golden.get("exact", []) if e["platform"] != PLATFORM] + [entry]


def main() -> int:
    if not SHARED_DATA.is_dir():
        print(f"error: the offline datasets are needed at {SHARED_DATA}", file=sys.stderr)
        return 2
    version = _code_version()
    if version != RECORDING_VERSION:
        print(
            f"error: wavemixer is imported from a checkout at {version or 'an unnamed or modified version'}; the "
            f"goldens pin {RECORDING_VERSION}: set PYTHONPATH to a clean checkout of it (see this file's docstring)",
            file=sys.stderr,
        )
        return 2
    golden = json.loads(TRAIN_GOLDEN.read_text())
    expected = json.loads((OLD / "expected.json").read_text())
    if golden["recorded_with"] == PLATFORM:
        print("this platform recorded the goldens themselves; nothing to add")
        return 0
    runs: dict[str, dict] = {}
    for name, want in golden["runs"].items():
        got = _fresh(lambda w, c=want["config"]: train_values(c, w))
        if got["split_hashes"] != want["split_hashes"] or got["params"] != want["params"]:
            print(f"error: {name}: the data split or model differs from the golden; not recording", file=sys.stderr)
            return 1
        if not training_within_tolerance(got, want):
            print(f"error: {name}: beyond the tolerance of the recorded platform; not recording", file=sys.stderr)
            return 1
        runs[name] = {k: got[k] for k in ("summary", "test", "best", "last")}
    entry: dict[str, object] = dict(platform=PLATFORM, code=version)
    entry["eval_test"] = _fresh(lambda w: eval_values(copy_old_run(w), "test"))
    entry["eval_val"] = _fresh(lambda w: eval_values(copy_old_run(w), "val"))
    entry["predict"] = _fresh(lambda w: predict_values(copy_old_run(w), w / "p.json"))
    entry["resumed"] = _fresh(lambda w: resume_values(copy_old_run(w)))
    for key in OLD_RUN_KEYS:
        if not old_run_within_tolerance(key, entry[key], expected[key]):
            print(f"error: old run folder, {key}: beyond the tolerance of the recorded platform", file=sys.stderr)
            return 1
    _put(golden, dict(platform=PLATFORM, code=version, runs=runs))
    _put(expected, entry)
    TRAIN_GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")
    (OLD / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"recorded {PLATFORM} with {version}: {', '.join(runs)} and the old run folder")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
