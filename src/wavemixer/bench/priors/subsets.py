"""Class-balanced subsets and the validation split carved from what they leave: they live in
:mod:`wavemixer.data.splits` (training uses them for ``--per-class``); re-exported here for the priors."""

from wavemixer.data.splits import carve_validation, class_balanced_subset

__all__ = ["carve_validation", "class_balanced_subset"]
