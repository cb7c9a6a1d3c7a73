"""Copy the best-on-validation weights of a training run into the package as a registry variant's weights.

    python scripts/package_weights.py runs/repro/mnist-lite_8_10-s0 wavemix_lite_8_10_mnist
    python scripts/package_weights.py runs/contest/40k-5min/wavemix-s2-convtranspose-s2 wavemix_lite_16_7_s2_cifar10 \
        --training "docs/claims.md, the contest's 40k-5min grid: the seed with the best val top-1 of seeds 1-3"

Writes ``src/wavemixer/weights/<name>/{config.json,model.safetensors}`` with the run's preprocessing, labels
and its validation/test accuracy, after checking that the architecture equals the registry variant's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wavemixer.hub import from_pretrained, save_pretrained
from wavemixer.registry import get_spec

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "wavemixer" / "weights"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("name", help="registry name")
    ap.add_argument(
        "--training", default="config.yaml of the run; see docs/results.md", help="where the training is documented"
    )
    args = ap.parse_args()
    spec = get_spec(args.name)
    model = from_pretrained(args.run_dir / "best")
    reference = spec.build()
    if model.config != reference.config:
        raise SystemExit(f"the run's model config {model.config} differs from {args.name}: {reference.config}")
    results = json.loads((args.run_dir / "results.json").read_text())
    cfg = model.pretrained_config
    meta = dict(
        dataset=results["dataset"], seed=results["seed"], epochs=results["epochs"], best_epoch=results["best_epoch"],
        val_top1=results["best_val"]["top1"], test_top1=results["test"]["top1"], test_top5=results["test"]["top5"],
        selection="best validation top-1 (val split held out of the training set); test evaluated once",
        training_config=args.training,
    )  # fmt: skip
    out = save_pretrained(
        model,
        WEIGHTS / args.name,
        model_name=args.name,
        preprocessing=cfg["preprocessing"],
        labels=cfg["labels"],
        metadata=meta,
        force=True,  # re-packaging a variant replaces its shipped weights
    )
    print(f"wrote {out}: test top-1 {meta['test_top1']:.2f} %")


if __name__ == "__main__":
    main()
