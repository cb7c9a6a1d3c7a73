"""The three WaveMix networks: a classifier, a segmenter and a super-resolver on one body (:mod:`wavemixer.body`).

What each is trained for, with which data, loss and metrics, is a task (:mod:`wavemixer.tasks`).
"""

from .classification import WaveMix
from .segmentation import WaveMixSegmentation
from .super_resolution import WaveMixSR

__all__ = ["WaveMix", "WaveMixSR", "WaveMixSegmentation"]
