"""Side-by-side benchmark of wavemixer models, the reference ``wavemix`` package and timm/torchvision baselines.

Entry point: ``wavemixer bench`` (:mod:`wavemixer.cli.bench`); the pieces are importable for scripts.
"""

from .report import format_markdown, results_dir_name, write_results
from .runner import (
    BenchEntry,
    BenchSettings,
    aggregate,
    default_reference_python,
    ensure_reference_python,
    reference_kwargs,
    resolve_models,
    run_sweep,
)

__all__ = [
    "BenchEntry",
    "BenchSettings",
    "aggregate",
    "default_reference_python",
    "ensure_reference_python",
    "format_markdown",
    "reference_kwargs",
    "resolve_models",
    "results_dir_name",
    "run_sweep",
    "write_results",
]
