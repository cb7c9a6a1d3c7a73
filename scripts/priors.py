"""Shift, scale and receptive-field measurements of trained classifiers (issue 24), one table for all.

  python scripts/priors.py NAME=RUN_DIR [NAME=RUN_DIR ...] --out docs/bench/priors/40k

Each RUN_DIR is a training run folder (its ``best/``) or a saved model folder; every model is measured on
its own run's test split with its own preprocessing (as ``wavemixer eval`` finds them). Writes to ``--out``:

* ``priors-full.csv`` / ``.md``: per model, clean accuracy; circular and pad-and-crop shift consistency and
  accuracy (per shift 1-4 over the h/v/diagonal directions, and over odd and even shifts); accuracy and
  consistency at 0.75x and 1.25x; ERF radii (50 %, 90 % of the mass) of the trained and of the untrained
  network (the same architecture freshly initialised with ``--init-seed``).
* ``priors.csv`` / ``.md``: the columns a reader compares first (:data:`COLUMNS`).
* ``erf.png`` and ``erf-untrained.png``: the ERF maps side by side.

The definitions are in :mod:`wavemixer.bench.priors`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from wavemixer.bench import priors
from wavemixer.bench.priors.common import model_device

COLUMNS = [
    "accuracy",
    "circular_consistency_odd",
    "circular_consistency_even",
    "circular_accuracy_odd",
    "circular_accuracy_even",
    "pad_zeros_consistency_odd",
    "pad_zeros_consistency_even",
    "scale_0.75_accuracy",
    "scale_1.25_accuracy",
    "erf_r50",
    "erf_r90",
    "erf_untrained_r50",
    "erf_untrained_r90",
]


def split_loader(loaded: Any, args: argparse.Namespace) -> DataLoader:
    """The run's own test split, preprocessed as the model expects (what ``wavemixer eval`` scores)."""
    from wavemixer.evaluation import eval_config, evaluation_split

    try:
        cfg, stored = eval_config(loaded, data_dir=args.data_dir, batch_size=args.batch_size)
        data = evaluation_split(loaded, cfg, stored, "test")
    except (ValueError, OSError) as exc:
        raise SystemExit(f"priors.py: error: {loaded.source}: {exc}") from None
    return DataLoader(data.dataset, batch_size=args.batch_size)


def untrained_copy(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """The same architecture (from its saved config), freshly initialised."""
    torch.manual_seed(seed)
    return type(model)(**model.pretrained_config["config"]).to(model_device(model))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="NAME=RUN_DIR", help="a row name and its run or model folder")
    p.add_argument("--out", type=Path, required=True, help="folder for priors.csv/.md and the ERF PNGs")
    p.add_argument("--data-dir", help="data location, if not the one the runs recorded")
    p.add_argument("--images", type=int, help="test images for shift/scale (default: the whole test split)")
    p.add_argument("--erf-images", type=int, default=500, help="test images the ERF averages over (default: 500)")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--init-seed", type=int, default=0, help="seed of the untrained networks' initialisation")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)

    from wavemixer.loading import load_model

    rows: dict[str, dict[str, Any]] = {}
    erfs: dict[str, priors.Erf] = {}
    untrained: dict[str, priors.Erf] = {}
    for spec in args.models:
        name, sep, folder = spec.partition("=")
        if not sep:
            p.error(f"{spec!r}: give NAME=RUN_DIR")
        loaded = load_model(folder, device=args.device)
        loader = split_loader(loaded, args)
        measured, erf = priors.measure_priors(
            {name: loaded.model}, loader, max_images=args.images, erf_images=args.erf_images
        )
        fresh = priors.effective_receptive_field(
            untrained_copy(loaded.model, args.init_seed), loader, max_images=args.erf_images
        )
        rows[name] = {**measured[name], **{k.replace("erf_", "erf_untrained_"): v for k, v in fresh.summary().items()}}
        erfs[name], untrained[name] = erf[name], fresh
        print(f"{name}: " + ", ".join(f"{k} {rows[name][k]:.2f}" for k in COLUMNS), flush=True)
    priors.write_table(rows, args.out / "priors-full")
    csv_path, md_path = priors.write_table(rows, args.out / "priors", columns=COLUMNS)
    priors.plot_erfs(erfs, args.out / "erf.png", title="effective receptive field, trained")
    priors.plot_erfs(untrained, args.out / "erf-untrained.png", title="effective receptive field, untrained")
    print(f"wrote {csv_path}, {md_path} (and priors-full.csv/.md, erf.png, erf-untrained.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
