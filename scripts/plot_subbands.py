"""Draw docs/wavelet_subbands.png: one DWT level of a real image (CamVid test frame 0) for two wavelets.

    python scripts/plot_subbands.py [--data ../shared/data] [--wavelets haar db2] [--out docs/wavelet_subbands.png]

Rows are wavelets; columns are PyWavelets' sub-bands cA, cH (change along the height: horizontal
edges), cV (change along the width: vertical edges) and cD, computed by :func:`wavemixer.dwt2`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from wavemixer import dwt2
from wavemixer.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--wavelets", nargs="+", default=["haar", "db2"])
    parser.add_argument("--mode", default="symmetric")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "wavelet_subbands.png")
    args = parser.parse_args()
    with np.load(args.data / "CamVid" / "camvid_segnet_180x240.npz") as data:
        rgb = data["x_test"][0].astype(np.float64) / 255.0
    luma = torch.from_numpy(rgb @ np.array([0.299, 0.587, 0.114]))  # (180, 240)
    names = ["cA (approximation)", "cH (horizontal edges)", "cV (vertical edges)", "cD (diagonal)"]
    fig, axes = plt.subplots(len(args.wavelets), 4, figsize=(13, 3.0 * len(args.wavelets)), squeeze=False)
    for row, wavelet in zip(axes, args.wavelets):
        approx, details = dwt2(luma, args.mode, wavelet)
        for k, (ax, band) in enumerate(zip(row, (approx, *details))):
            band = band.numpy()
            if k == 0:
                ax.imshow(band, cmap="gray", interpolation="nearest")
            else:
                limit = np.percentile(np.abs(band), 99.5)
                ax.imshow(band, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_title(f"{wavelet}: {names[k]} {band.shape[0]}x{band.shape[1]}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"One DWT level of CamVid test frame 0 (luma, 180x240), mode={args.mode!r}", fontsize=10)
    fig.tight_layout()
    atomic_write(args.out, lambda tmp: fig.savefig(tmp, format="png", dpi=72))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
