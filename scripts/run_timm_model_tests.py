"""Run timm's own model test suite (tests/test_models.py of the installed timm version) on wavemixer's models.

The suite comes from the timm sdist on PyPI at the installed version (fetched once with ``pip download``
into a cache folder, never copied into this repository); wavemixer is imported first, so its classifiers
are registered when the suite collects, and ``-k wavemix`` keeps only their test cases.

    python scripts/run_timm_model_tests.py                 # every wavemixer case of the suite
    python scripts/run_timm_model_tests.py -- -x -q        # arguments after -- go to pytest

Exit status: pytest's (0 when every selected case passes). Cache: $WAVEMIXER_TIMM_TESTS_CACHE, else
~/.cache/wavemixer/timm-tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# Cases of the suite that cannot pass for a documented reason, as pytest node-id substrings -> reason.
EXCLUDED: dict[str, str] = {}


def suite_folder(version: str, cache: Path) -> Path:
    """``<cache>/timm-<version>`` holding the sdist's ``tests/`` and ``pyproject.toml`` (its pytest markers)."""
    root = cache / f"timm-{version}"
    if (root / "tests" / "test_models.py").is_file():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", tmp]
        subprocess.run([*cmd, f"timm=={version}"], check=True)
        (sdist,) = Path(tmp).glob("timm-*.tar.gz")
        staging = Path(tmp) / "extract"
        with tarfile.open(sdist) as tar:
            prefix = f"timm-{version}/"
            wanted = [m for m in tar.getmembers() if m.name.startswith((prefix + "tests/", prefix + "pyproject.toml"))]
            tar.extractall(staging, members=wanted, filter="data")
        os.replace(staging / f"timm-{version}", root)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=None, help="where the timm test suite is kept")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    import pytest
    import timm

    import wavemixer  # noqa: F401  (registers the models with timm)

    default_cache = Path(os.environ.get("WAVEMIXER_TIMM_TESTS_CACHE", Path.home() / ".cache/wavemixer/timm-tests"))
    root = suite_folder(timm.__version__, args.cache or default_cache)
    deselect = [f"--deselect={node}" for node in EXCLUDED]
    print(f"timm {timm.__version__} test suite from {root}; excluded: {EXCLUDED or 'none'}", flush=True)
    return int(
        pytest.main(
            [
                str(root / "tests" / "test_models.py"),
                f"--rootdir={root}",
                "-c",
                str(root / "pyproject.toml"),
                "-p",
                "no:cacheprovider",
                "-k",
                "wavemix",
                *deselect,
                *args.pytest_args,
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
