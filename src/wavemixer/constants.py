"""Normalisation statistics and label conventions, in one place: the model registry, the data sets, the
tasks and prediction all read them from here, so a value is never written twice."""

from __future__ import annotations

__all__ = [
    "CIFAR10_MEAN_STD",
    "CIFAR100_MEAN_STD",
    "DIGITS_MEAN_STD",
    "EMNIST_MEAN_STD",
    "FASHION_MNIST_MEAN_STD",
    "IGNORE_INDEX",
    "IMAGENET_MEAN_STD",
    "KMNIST_MEAN_STD",
    "MNIST_MEAN_STD",
    "SVHN_MEAN_STD",
    "TINY_IMAGENET_MEAN_STD",
]

#: ``dict(mean=..., std=...)`` of each data set's training images, per channel on the [0, 1] scale
IMAGENET_MEAN_STD = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
CIFAR10_MEAN_STD = dict(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
CIFAR100_MEAN_STD = dict(mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))
SVHN_MEAN_STD = dict(mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970))
TINY_IMAGENET_MEAN_STD = dict(mean=(0.4803, 0.4481, 0.3975), std=(0.2764, 0.2689, 0.2816))
MNIST_MEAN_STD = dict(mean=(0.1307,), std=(0.3081,))
FASHION_MNIST_MEAN_STD = dict(mean=(0.2860,), std=(0.3530,))
KMNIST_MEAN_STD = dict(mean=(0.1918,), std=(0.3483,))
EMNIST_MEAN_STD = dict(mean=(0.1736,), std=(0.3317,))
DIGITS_MEAN_STD = dict(mean=(0.2,), std=(0.35,))  # the embedded 16x16 digits (rounded)

#: the mask value that segmentation losses and metrics ignore (void, unlabelled pixels)
IGNORE_INDEX = 255
