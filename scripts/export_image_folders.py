"""Write offline data sets as plain image folders, to measure ``--dataset imagefolder`` as a new user meets it.

  python scripts/export_image_folders.py mnist ../shared/data /tmp/mnist_folder      # <class>/<n>.png, 70,000
  python scripts/export_image_folders.py camvid-patches ../shared/data /tmp/camvid_patches

mnist: every train and test image in one class-folder tree (``<digit>/<n>.png``), so the splits are carved by
wavemixer. camvid-patches: each 180x240 CamVid frame cut into 3x4 patches of 60x60, labelled with the patch's
most frequent non-void class when it covers at least half of the patch (others dropped), as
``<class>/<split>_<frame>_<patch>.png``; classes with fewer than 50 patches are dropped.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image


def export_mnist(data: Path, out: Path) -> int:
    from wavemixer.data.builtin import load_builtin

    xtr, ytr, xte, yte, labels = load_builtin("mnist", data, download=False)
    n = 0
    for x, y in ((xtr, ytr), (xte, yte)):
        for img, lab in zip(x[:, 0].numpy(), y.tolist()):
            d = out / labels[lab] if labels else out / str(lab)
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{n:05d}.png")
            n += 1
    return n


def export_camvid_patches(data: Path, out: Path, patch: int = 60, min_per_class: int = 50) -> int:
    z = np.load(data / "CamVid" / "camvid_segnet_180x240.npz")
    names = [str(c) for c in z["classes"]]
    items = []
    for split in ("train", "val", "test"):
        xs, ys = z[f"x_{split}"], z[f"y_{split}"]
        for f, (img, lab) in enumerate(zip(xs, ys)):
            for i in range(img.shape[0] // patch):
                for j in range(img.shape[1] // patch):
                    cut = (slice(i * patch, (i + 1) * patch), slice(j * patch, (j + 1) * patch))
                    counts = np.bincount(lab[cut].ravel(), minlength=len(names))[: len(names) - 1]  # void last
                    c = int(counts.argmax())
                    if counts[c] >= patch * patch / 2:
                        items.append((names[c], f"{split}_{f:03d}_{i}{j}", img[cut]))
    keep = {c for c, k in Counter(c for c, _, _ in items).items() if k >= min_per_class}
    n = 0
    for c, stem, img in items:
        if c in keep:
            (out / c).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(out / c / f"{stem}.png")
            n += 1
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["mnist", "camvid-patches"])
    p.add_argument("data", type=Path, help="the offline data folder (../shared/data)")
    p.add_argument("out", type=Path, help="folder to write (must not exist)")
    args = p.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; give a new folder")
    n = (export_mnist if args.what == "mnist" else export_camvid_patches)(args.data, args.out)
    print(f"wrote {n:,} images to {args.out}")


if __name__ == "__main__":
    main()
