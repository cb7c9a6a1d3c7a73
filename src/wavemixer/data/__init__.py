"""Data for training, evaluation and prediction (needs the ``train`` extra).

One concept per module:

* :mod:`.images` decodes image files; :mod:`.datasets` holds classification data sets (arrays, folders);
* sources: :mod:`.builtin` (embedded digits, torchvision sets), :mod:`.scan` and :mod:`.manifest` (image
  folders, zips, manifests), :mod:`.masks` (segmentation pairs), :mod:`.hr_images` (super-resolution);
* :mod:`.splits` holds out val/test, takes ``--subset`` / ``--per-class`` subsets and fingerprints splits;
* :mod:`.transforms` preprocesses and augments; :mod:`.defaults` derives options from an image folder;
* :mod:`.bundle` is what a task's data hands the engine (:class:`DataBundle`, :class:`DataInfo`).

Which data sets a task offers, and their defaults, belong to the task (:mod:`wavemixer.tasks`).
"""

from .builtin import default_data_dir
from .bundle import DataBundle, DataInfo
from .images import IMAGE_EXTENSIONS, UnreadableImage, find_images, list_unreadable, load_image
from .scan import FolderScan, scan_folder, scan_summary
from .splits import carve_validation, class_balanced_subset, make_splits, split_hash

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataBundle",
    "DataInfo",
    "FolderScan",
    "UnreadableImage",
    "carve_validation",
    "class_balanced_subset",
    "default_data_dir",
    "find_images",
    "list_unreadable",
    "load_image",
    "make_splits",
    "scan_folder",
    "scan_summary",
    "split_hash",
]
