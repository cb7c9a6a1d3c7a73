"""Measurements of the priors WaveMix claims: shift and scale robustness and the effective receptive field, as
functions over models and test tensors (sample efficiency's class-balanced subsets are training's
``--per-class``, :func:`wavemixer.data.splits.class_balanced_subset`).

Nothing here trains or loads a data set: the functions take labels, models and normalised image batches,
so they apply alike to trained run folders, untrained networks and the tiny models of the tests.
"""

from .common import eval_mode, iter_batches
from .erf import Erf, effective_receptive_field, feature_extractor, mass_centroid, mass_radius
from .report import mean_erf_maps, measure_priors, plot_erfs, seed_means, write_seed_table, write_table
from .robustness import (
    DIRECTIONS,
    SHIFT_MODES,
    Perturbed,
    Robustness,
    perturbation_robustness,
    rescale_images,
    scale_robustness,
    shift_images,
    shift_robustness,
)

__all__ = [
    "DIRECTIONS",
    "SHIFT_MODES",
    "Erf",
    "Perturbed",
    "Robustness",
    "effective_receptive_field",
    "eval_mode",
    "feature_extractor",
    "iter_batches",
    "mass_centroid",
    "mass_radius",
    "mean_erf_maps",
    "measure_priors",
    "perturbation_robustness",
    "plot_erfs",
    "rescale_images",
    "scale_robustness",
    "seed_means",
    "shift_images",
    "shift_robustness",
    "write_seed_table",
    "write_table",
]
