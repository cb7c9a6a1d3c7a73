"""``wavemixer train``: train a model (WaveMix or a ``peer:`` baseline) for its task and report its test score.

With no arguments it trains on the embedded 8×8 digits set (offline, minutes on 2 CPU cores).
Options come from the defaults, the data set's defaults, ``--config file.yaml``, then the flags.

  wavemixer train                                      # embedded digits, prints test accuracy
  wavemixer train --dataset mnist --data-dir DATA
  wavemixer train --dataset imagefolder --data-dir my_images/      # <class>/<image>; defaults from the data
  wavemixer train --dataset imagefolder --data-dir pets.zip --model wavemix_lite_64_6_cifar10 --input-size 64
  torchrun --standalone --nproc_per_node=4 -m wavemixer.cli train --dataset cifar10 --download
  torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \\
      -m wavemixer.cli train --dataset cifar100 --sync-bn
"""

from __future__ import annotations

import argparse
import sys

from wavemixer.cli import CLIError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from wavemixer.train.config import add_config_arguments

    p = sub.add_parser(
        "train",
        help="train a model (default: the embedded digits set)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wavemixer.train.config import TrainConfig, config_from_args, load_yaml
    from wavemixer.train.engine import Diverged, train

    explicit = {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__ if hasattr(args, k)}
    if "model_args" in explicit:
        explicit["model_args"] = dict(explicit["model_args"])
    if getattr(args, "config", None):
        explicit = {**load_yaml(args.config), **explicit}
    cfg = config_from_args(args)
    try:
        train(cfg, explicit=explicit if cfg.resume else None)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from exc
    except Diverged as exc:  # not a usage error: the run started and failed, exit status 1
        print(f"wavemixer train: error: {exc}", file=sys.stderr)
        return 1
    return 0
