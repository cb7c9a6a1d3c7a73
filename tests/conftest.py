"""Shared fixtures: seeded RNG, the offline data folder, small thread count for a 2-core CI."""

from __future__ import annotations

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
