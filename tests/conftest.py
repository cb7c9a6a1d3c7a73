"""Shared fixtures: seeded RNG, the offline data folder, and the cores shared among the test workers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _share_cores() -> None:
    """pytest-xdist runs one worker per core; each worker (and the processes its tests start) takes its share of
    the cores, not all of them, so that two workers on a 2-core machine do not fight over each other's threads."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        share = max(1, cores // workers)
        torch.set_num_threads(share)
        os.environ.setdefault("OMP_NUM_THREADS", str(share))


_share_cores()
_THREADS = torch.get_num_threads()  # before any test changes it


@pytest.fixture(autouse=True)
def _restore_threads():
    """Training with --threads sets torch's global thread count; give the rest of the run its own back."""
    yield
    torch.set_num_threads(_THREADS)


@pytest.fixture(autouse=True)
def _fresh_compile_caches() -> None:
    """Each test compiles from scratch: dynamo's per-code-object recompile limit (8) is process-wide, so
    compiled tests of the same forward would otherwise fail depending on what ran before them."""
    if "torch._dynamo" in sys.modules:
        torch._dynamo.reset()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only offline datasets beside the checkout; tests that need them skip without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"offline datasets not found at {SHARED_DATA} (expected ../shared/data beside the repo)")
    return SHARED_DATA
