"""Write src/wavemixer/data/digits.npz from scikit-learn's bundled digits, once.

The embedded default data set then loads with numpy alone, so ``wavemixer train`` without a data set
does not need scikit-learn (and SciPy). Rerun only to regenerate the file; its licence notice is
src/wavemixer/data/digits.LICENSE.

    python scripts/make_digits_npz.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parents[1] / "src" / "wavemixer" / "data" / "digits.npz"


def main() -> None:
    digits = load_digits()
    images = digits.images.astype(np.uint8)  # integer counts 0..16, stored exactly
    assert np.array_equal(images, digits.images) and images.max() == 16
    np.savez_compressed(OUT, images=images, labels=digits.target.astype(np.uint8))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(images)} images)")


if __name__ == "__main__":
    main()
