"""The embedded default data set loads with numpy alone and is scikit-learn's digits, image for image."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("torchvision")

from wavemixer.data.builtin import load_digits as _digits


def test_digits_load_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # any `import sklearn` now raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    xtr, ytr, xte, yte, labels = _digits()
    assert xtr.shape == (1438, 1, 16, 16) and xte.shape == (359, 1, 16, 16) and xtr.dtype == torch.uint8
    counts = np.bincount(torch.cat([ytr, yte]).numpy())
    # per-class counts of the UCI test set that scikit-learn ships (its DESCR: 1,797 instances)
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert labels == [str(i) for i in range(10)]


def test_digits_match_scikit_learn_exactly():
    datasets = pytest.importorskip("sklearn.datasets")
    from torchvision.transforms.v2 import functional as TF

    ref = datasets.load_digits()
    x = torch.from_numpy(np.round(ref.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    x = TF.resize(x, [16, 16], antialias=True)
    y = torch.from_numpy(ref.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1234))
    xtr, ytr, xte, yte, _ = _digits()
    n_test = len(y) // 5
    assert torch.equal(xte, x[perm[:n_test]]) and torch.equal(yte, y[perm[:n_test]])
    assert torch.equal(xtr, x[perm[n_test:]]) and torch.equal(ytr, y[perm[n_test:]])
