"""Short runs and BatchNorm statistics: precise-BN recalibration vs a higher BN momentum, on the digits set.

For each variant and seed, trains the default digits job for a few epochs and records the test top-1 of the
best-on-val weights as saved (running statistics) and, for the same weights, with batch statistics.
Writes docs/bench/bn_recalibration.csv.

  python scripts/bench_bn_recalibration.py --epochs 4 --seeds 0 1 --variants "none (momentum 0.1)" \
      "momentum 0.3" "momentum = 1/steps-in-epoch (per-epoch average)" "precise BN, 50 batches"
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from wavemixer.train import TrainConfig, resolve_config
from wavemixer.train.engine import Trainer

VARIANTS = {
    "none (momentum 0.1)": dict(bn_recalibrate=0, momentum=0.1),
    "momentum 0.3": dict(bn_recalibrate=0, momentum=0.3),
    "momentum 0.6": dict(bn_recalibrate=0, momentum=0.6),
    "momentum = 1/steps-in-epoch (per-epoch average)": dict(bn_recalibrate=0, momentum="epoch"),
    "precise BN, 50 batches": dict(bn_recalibrate=50, momentum=0.1),
}


class _Trainer(Trainer):
    momentum: float | str = 0.1

    def _bns(self) -> list[nn.Module]:
        return [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train_one_epoch(self) -> float:
        if self.momentum == "epoch":  # cumulative average that restarts every epoch: the epoch's own statistics
            for m in self._bns():
                m.reset_running_stats()
                m.momentum = None
        else:
            for m in self._bns():
                m.momentum = self.momentum
        return super().train_one_epoch()


def batch_stats_top1(trainer: Trainer) -> float:
    """Test top-1 of the evaluated weights with BatchNorm in batch-statistics mode (one pass over test)."""
    model = trainer.eval_model()
    correct = total = 0
    model.train()
    with torch.no_grad():
        for x, y in trainer.eval_loader(trainer.data.test):
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    model.eval()
    return 100 * correct / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, nargs="+", default=[4, 25])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--out", default="docs/bench/bn_recalibration.csv", help="appended to, one row per run")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for epochs in args.epochs:
        for name in args.variants:
            v = VARIANTS[name]
            for seed in args.seeds:
                cfg = resolve_config(
                    TrainConfig(epochs=epochs, seed=seed, bn_recalibrate=v["bn_recalibrate"], amp="none", quiet=True)
                )
                with tempfile.TemporaryDirectory() as tmp:
                    trainer = _Trainer(cfg)
                    trainer.momentum = v["momentum"]
                    t0 = time.perf_counter()
                    res = trainer.fit(Path(tmp))
                    wall = time.perf_counter() - t0
                row = dict(
                    epochs=epochs, variant=name, seed=seed, best_val_top1=round(res["best_val"]["top1"], 2),
                    test_top1=round(res["test"]["top1"], 2), test_top1_batch_stats=round(batch_stats_top1(trainer), 2),
                    wall_s=round(wall, 1),
                )  # fmt: skip
                print(row, flush=True)
                new = not out.is_file()
                with open(out, "a", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=list(row))
                    if new:
                        w.writeheader()
                    w.writerow(row)


if __name__ == "__main__":
    main()
