"""Run timm's own model test suite (tests/test_models.py of the installed timm version) on wavemixer's models.

The suite comes from the timm sdist on PyPI at the installed version (fetched once with ``pip download``
into a cache folder, never copied into this repository); wavemixer is imported first, so its classifiers
are registered when the suite collects, and ``-k wavemix`` keeps only their test cases.

    python scripts/run_timm_model_tests.py                 # every wavemixer case of the suite
    python scripts/run_timm_model_tests.py -k fx -- -x -q  # only the FX cases; arguments after -- go to pytest

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

# Tests of the suite that cannot pass for a documented reason: test function -> reason.
EXCLUDED: dict[str, str] = {
    "test_model_forward_torchscript": (
        "torch.jit.script is deprecated in torch 2.x (FutureWarning) and cannot compile the blocks' forward: "
        "it reads Python-level switches (LevelMLP.recompute_mlp, BilinearUpsample2x.matmul_on_cpu) and "
        "branches on them; a TorchScript graph comes from torch.jit.trace instead"
    ),
    "test_model_forward_fx_torchscript": "scripts the FX graph: needs FX tracing and TorchScript both (see above)",
}


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
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python < 3.10.12 lacks it
            tar.extractall(staging, members=wanted, **safe)
        os.replace(staging / f"timm-{version}", root)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=None, help="where the timm test suite is kept")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression, ANDed with the wavemixer selection")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --; not -k)")
    args = parser.parse_args(argv)

    import pytest
    import timm

    import wavemixer  # noqa: F401  (registers the models with timm)

    default_cache = Path(os.environ.get("WAVEMIXER_TIMM_TESTS_CACHE", Path.home() / ".cache/wavemixer/timm-tests"))
    root = suite_folder(timm.__version__, args.cache or default_cache)
    select = " and ".join(
        ["wavemix", *(f"not {test}" for test in EXCLUDED), *([f"({args.keyword})"] * bool(args.keyword))]
    )
    print(f"timm {timm.__version__} test suite from {root}; -k {select!r}", flush=True)
    for test, reason in EXCLUDED.items():
        print(f"excluded {test}: {reason}", flush=True)
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
                select,
                *args.pytest_args,
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
