"""Splitting a data set: the val/test hold-out, ``--subset``, ``--per-class`` and split fingerprints.

One implementation for every task. A data set takes part through four members (:class:`SplittableDataset`):
``len``, ``subset(indices)`` (a new data set of those items), ``ids`` (what a fingerprint hashes: indices in
the source or file names) and, for class-balanced subsets, ``targets``.

Class-balanced subsets (for sample-efficiency curves: accuracy at 50, 500, ... images per class) must be
fixed per seed, balanced (so that a small subset does not also change the class prior), and reproducible on
any machine and Python version. Every image gets one key from ``random.Random(seed).random()`` in index
order (the one stream Python promises not to change across versions); a class's subset is its
``per_class`` images with the smallest keys. So the same seed gives the same indices everywhere, and a
seed's subsets are nested: its 50-per-class subset lies inside its 500-per-class one.
"""

from __future__ import annotations

import hashlib
import operator
import random
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import torch

__all__ = [
    "SUBSET_MIN",
    "TEST_SPLIT_SEED",
    "LabelledDataset",
    "SplittableDataset",
    "carve_validation",
    "check_split_fingerprint",
    "class_balanced_subset",
    "hold_out",
    "make_splits",
    "split_hash",
    "take_subset",
]


class SplittableDataset(Protocol):
    """What splitting asks of a data set; every task's data sets provide it (a new source must too)."""

    def __len__(self) -> int: ...

    def subset(self, indices: torch.Tensor | Sequence[int]) -> SplittableDataset:
        """A new data set of those items, in that order, with the same transform."""
        ...

    @property
    def ids(self) -> Sequence[Any] | torch.Tensor:
        """One id per item, stable across machines (index in the source, or file name): the fingerprints'."""
        ...


class LabelledDataset(SplittableDataset, Protocol):
    """A splittable data set with classes: what ``--per-class`` (class-balanced subsets) needs."""

    @property
    def targets(self) -> list[int]:
        """The class id of each item."""
        ...


TEST_SPLIT_SEED = 20_260_101  # fixed: a carved test split must not move with --seed, or seeds are not comparable
SUBSET_MIN = 10  # --subset N keeps N training and max(N // 4, SUBSET_MIN) val/test images


def hold_out(
    ds: SplittableDataset, fraction: float, seed: int, what: str = "--val-fraction"
) -> tuple[SplittableDataset, SplittableDataset]:
    """``(rest, held)``: a random ``fraction`` of ``ds`` held out with ``seed`` (both in source order)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{what} must be in (0, 1), got {fraction}")
    n = len(ds)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * fraction))
    if n_val >= n:
        held = "val" if what == "--val-fraction" else "test"
        raise ValueError(
            f"{what} {fraction:g} holds out {n_val:,} of the {n:,} training images as {held}, leaving none to train "
            f"on; lower {what}"
        )
    return ds.subset(perm[n_val:].sort().values), ds.subset(perm[:n_val].sort().values)


def take_subset(ds: SplittableDataset, n: int | None, seed: int) -> SplittableDataset:
    """A random ``n`` items of ``ds`` (source order), fixed by ``seed``; all of it when it has no more."""
    if n is None or n >= len(ds):
        return ds
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed + 17))
    return ds.subset(perm[:n].sort().values)


def split_hash(ds: SplittableDataset) -> str:
    """A short fingerprint of which images a split holds (their file names or indices in the source)."""
    return hashlib.sha256("\n".join(map(str, ds.ids)).encode()).hexdigest()[:16]


def make_splits(
    train: SplittableDataset,
    val: SplittableDataset | None,
    test: SplittableDataset | None,
    *,
    val_fraction: float,
    seed: int,
    subset: int | None = None,
    per_class: int | None = None,
) -> tuple[SplittableDataset, SplittableDataset, SplittableDataset | None]:
    """Train/val/test from a source's splits: val held out of train unless the source has one, then
    ``--subset`` (a random ``subset`` training and ``subset // 4`` val/test images) or ``--per-class``
    (``per_class`` training images of every class, so ``train`` must be a :class:`LabelledDataset`; the val
    split, when the source has none, carved class-balanced from the remaining training images,
    ``val_fraction`` of the two together; test whole)."""
    if subset is not None and per_class is not None:
        raise ValueError("--subset and --per-class both choose the training images; give one")
    if per_class is not None:
        labels = train.targets
        try:
            chosen = class_balanced_subset(labels, per_class, seed)
            if val is None:
                n_val = max(1, round(per_class * val_fraction / (1 - val_fraction)))
                val = train.subset(carve_validation(labels, chosen, seed, per_class=n_val))
        except ValueError as exc:
            raise ValueError(f"--per-class {per_class}: {exc}") from None
        return train.subset(chosen), val, test
    if val is None:
        train, val = hold_out(train, val_fraction, seed)
    if subset is not None:
        if subset < SUBSET_MIN:
            raise ValueError(f"--subset must be at least {SUBSET_MIN}, got {subset}")
        small = max(subset // 4, SUBSET_MIN)
        train, val = take_subset(train, subset, seed), take_subset(val, small, seed)
        test = take_subset(test, small, seed) if test is not None else None
    return train, val, test


def _as_labels(labels: Sequence[int] | Any) -> list[int]:
    if hasattr(labels, "tolist"):  # tensor or array: plain ints in one call; 2-D input fails below
        labels = labels.tolist()
    try:
        return [operator.index(v) for v in labels]
    except TypeError:
        raise ValueError("labels must be a 1-D sequence of integer class ids") from None


def _ranked(labels: list[int], seed: int, exclude: Iterable[int]) -> dict[int, list[int]]:
    """Per class, its indices not in ``exclude``, in the order of the seed's keys (smallest first)."""
    rng = random.Random(seed)
    keys = [rng.random() for _ in labels]  # one key per image in index order, whatever is excluded
    skip = set(exclude)
    if skip and (min(skip) < 0 or max(skip) >= len(labels)):
        raise ValueError(f"exclude holds indices outside 0..{len(labels) - 1}")
    by_class: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        if i not in skip:
            by_class.setdefault(c, []).append(i)
    return {c: sorted(idx, key=keys.__getitem__) for c, idx in sorted(by_class.items())}


def _classes(labels: list[int], num_classes: int | None) -> list[int]:
    if num_classes is None:
        return sorted(set(labels))
    outside = sorted(c for c in set(labels) if not 0 <= c < num_classes)
    if outside:
        raise ValueError(f"labels hold class {outside[0]}, outside 0..{num_classes - 1}")
    return list(range(num_classes))


def _take(ranked: dict[int, list[int]], counts: dict[int, int], what: str) -> list[int]:
    chosen: list[int] = []
    for c, n in counts.items():
        have = len(ranked.get(c, []))
        if have < n:
            raise ValueError(f"class {c} has {have} images available, fewer than the {n} {what} asks for")
        chosen += ranked[c][:n]
    return sorted(chosen)


def class_balanced_subset(
    labels: Sequence[int] | Any,
    per_class: int,
    seed: int,
    *,
    exclude: Iterable[int] = (),
    num_classes: int | None = None,
) -> list[int]:
    """Sorted indices of exactly ``per_class`` images of every class, fixed by ``seed``.

    ``exclude``: indices never drawn (e.g. a held-out split). ``num_classes``: the classes expected
    (``0 .. num_classes-1``), so that a class absent from ``labels`` is an error rather than silently
    missing; without it the classes are those present. A class with too few images raises a ValueError
    naming it.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    ys = _as_labels(labels)
    ranked = _ranked(ys, seed, exclude)
    return _take(ranked, {c: per_class for c in _classes(ys, num_classes)}, f"per_class={per_class}")


def carve_validation(
    labels: Sequence[int] | Any,
    subset: Iterable[int],
    seed: int,
    *,
    per_class: int | None = None,
    fraction: float | None = None,
) -> list[int]:
    """Sorted validation indices drawn from the images *not* in ``subset``, so the two never overlap.

    Give exactly one of ``per_class`` (that many of every class: a balanced split) or ``fraction`` (that
    share, rounded, of each class's remaining images: stratified). The draw follows the same per-seed keys
    as :func:`class_balanced_subset`, so with the subset's own seed the split is the next images in the
    seed's order, and the whole carving is fixed by the seed.
    """
    if (per_class is None) == (fraction is None):
        raise ValueError("give exactly one of per_class or fraction")
    ys = _as_labels(labels)
    if per_class is not None:
        return class_balanced_subset(ys, per_class, seed, exclude=subset, num_classes=None)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction!r}")
    ranked = _ranked(ys, seed, subset)
    counts = {c: round(fraction * len(idx)) for c, idx in ranked.items()}
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise ValueError(f"fraction={fraction} leaves class {empty[0]} with no validation image")
    return _take(ranked, counts, f"fraction={fraction}")


def check_split_fingerprint(split: str, hashes: dict[str, str], stored: dict[str, Any], seed: int) -> None:
    """Refuse a rebuilt val split that is not the run's own (it would score training images): its fingerprint
    must be the one the run stored, unless another ``seed`` was asked for (then a note says it overlaps)."""
    want = (stored.get("split_hashes") or {}).get(split)
    if want is None or hashes.get(split) == want:
        return
    if stored.get("seed") is not None and seed != stored["seed"]:
        print(
            f"note: --seed {seed} is not the run's seed {stored['seed']}: this {split} split is not the run's and "
            "overlaps its training images",
            file=sys.stderr,
        )
        return
    raise ValueError(
        f"the {split} split rebuilt from the run's settings differs from the one it trained with (fingerprint "
        f"{hashes.get(split)} vs {want}): the images changed since the run; restore them or retrain"
    )
