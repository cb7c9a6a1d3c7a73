"""Shift, scale and receptive-field measurements of trained classifiers (issue 24), one table for all.

  python scripts/priors.py NAME=RUN_DIR [NAME=RUN_DIR ...] --out docs/bench/priors/40k
  python scripts/priors.py --grid runs/contest/40k-20min --out docs/bench/priors/40k-20min   # every run of a grid

Each RUN_DIR is a training run folder (its ``best/``) or a saved model folder; every model is measured on
its own run's test split with its own preprocessing (as ``wavemixer eval`` finds them). Writes to ``--out``:

* ``priors-full.csv`` / ``.md``: per model, clean accuracy; circular and pad-and-crop shift consistency and
  accuracy (per shift 1-4 over the h/v/diagonal directions, and over odd and even shifts); accuracy and
  consistency at 0.75x and 1.25x; ERF radii (50 %, 90 % of the mass) of the trained and of the untrained
  network (the same architecture freshly initialised with ``--init-seed`` plus the run's seed, so that
  the untrained ERFs of a model's seeds vary as its trained ones do).
* ``priors.csv`` / ``.md``: the columns a reader compares first (:data:`COLUMNS`).
* ``erf.png`` and ``erf-untrained.png``: the ERF maps side by side.
* ``per-run/<name>.pt``: each run's measurement, so that an interrupted call continues where it stopped.
* ``priors-mean.csv`` / ``.md`` and ``erf-mean.png``: the runs of one model over seeds (names ``<model>-s<seed>``,
  as ``--grid`` names them) as mean ± std, and their ERF maps averaged (each scaled to unit mass first).

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
from wavemixer.cli import OneLineParser

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


def grid_runs(folder: Path, only: list[str] | None) -> list[str]:
    """``NAME=RUN_DIR`` for every finished run ``<model>-s<seed>`` in ``folder`` (sorted), or of ``only``'s models."""
    from wavemixer.runs import seed_suffix

    if not folder.is_dir():
        raise SystemExit(f"priors.py: error: --grid {folder}: not a folder")
    runs = sorted(f for f in folder.iterdir() if (f / "results.json").is_file() and seed_suffix(f.name)[1] is not None)
    models = {seed_suffix(f.name)[0] for f in runs}
    unknown = sorted(set(only or ()) - models)
    if unknown:
        raise SystemExit(f"priors.py: error: --only {unknown}: no finished runs in {folder}; it has {sorted(models)}")
    return [f"{f.name}={f}" for f in runs if not only or seed_suffix(f.name)[0] in only]


def _erf_state(erf: priors.Erf) -> dict[str, Any]:
    return dict(map=erf.map, unit=list(erf.unit), feature_size=list(erf.feature_size), images=erf.images)


def _erf_from(state: dict[str, Any]) -> priors.Erf:
    return priors.Erf(state["map"], tuple(state["unit"]), tuple(state["feature_size"]), state["images"])


def _number(value: Any) -> Any:
    """A NumPy or tensor scalar as the Python number it holds (what ``torch.load(weights_only=True)`` reads)."""
    return value.item() if hasattr(value, "item") else value


def measured_before(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """A run's measurement saved by an earlier, interrupted call with the same options, if any: a grid's
    30 runs take hours on a CPU, and a stopped call continues where it stopped."""
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=True)
    return state if state.get("key") == key else None


def untrained_copy(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """The same architecture (from its saved config), freshly initialised."""
    torch.manual_seed(seed)
    return type(model)(**model.pretrained_config["config"]).to(model_device(model))


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", metavar="NAME=RUN_DIR", help="a row name and its run or model folder")
    p.add_argument("--grid", type=Path, help="every finished run folder <model>-s<seed> in this folder, too")
    p.add_argument("--only", nargs="+", help="with --grid: these models only")
    p.add_argument("--out", type=Path, required=True, help="folder for priors.csv/.md and the ERF PNGs")
    p.add_argument("--data-dir", help="data location, if not the one the runs recorded")
    p.add_argument("--images", type=int, help="test images for shift/scale (default: the whole test split)")
    p.add_argument("--erf-images", type=int, default=500, help="test images the ERF averages over (default: 500)")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument(
        "--init-seed",
        type=int,
        default=0,
        help="seed of the untrained networks' initialisation (plus the seed of a NAME-s<seed> run)",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    for option, value in (
        ("--images", args.images),
        ("--erf-images", args.erf_images),
        ("--batch-size", args.batch_size),
    ):
        if value is not None and value < 1:
            p.error(f"{option} must be an integer >= 1, got {value}")
    try:
        torch.device(args.device)
    except RuntimeError:
        p.error(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out} is a file; give a folder for the tables and maps")

    from wavemixer.files import atomic_write
    from wavemixer.loading import load_model
    from wavemixer.runs import seed_suffix

    specs = list(args.models)
    if args.grid is not None:
        specs += grid_runs(args.grid, args.only)
    elif args.only:
        p.error("--only chooses among the runs of --grid; give --grid")
    if not specs:
        where = f" ({args.grid} holds no finished run folder <model>-s<seed>)" if args.grid is not None else ""
        p.error(f"give NAME=RUN_DIR arguments or --grid with finished runs{where}")
    names = [spec.partition("=")[0] for spec in specs]
    for spec, name in zip(specs, names, strict=True):
        folder = spec.partition("=")[2]
        if "=" not in spec or not name:
            p.error(f"{spec!r}: give NAME=RUN_DIR (a row name, then a run or model folder)")
        if names.count(name) > 1:
            p.error(f"row name {name!r} is given twice; every NAME=RUN_DIR needs its own name")
        if not Path(folder).is_dir() and not (args.out / "per-run" / f"{name}.pt").is_file():  # nor measured before
            p.error(f"{spec!r}: {folder} is not a folder (a training run or saved model folder)")
    rows: dict[str, dict[str, Any]] = {}
    erfs: dict[str, priors.Erf] = {}
    untrained: dict[str, priors.Erf] = {}
    for spec in specs:
        name, _, folder = spec.partition("=")
        saved = args.out / "per-run" / f"{name}.pt"
        key = dict(folder=str(Path(folder).resolve()), images=args.images, erf_images=args.erf_images,
                   init_seed=args.init_seed, data_dir=args.data_dir)  # fmt: skip
        before = measured_before(saved, key)
        if before is not None:
            rows[name] = before["row"]
            erfs[name], untrained[name] = _erf_from(before["erf"]), _erf_from(before["untrained"])
            print(f"{name}: measured before ({saved})", flush=True)
            continue
        try:
            loaded = load_model(folder, device=args.device)
            loader = split_loader(loaded, args)
        except (OSError, ValueError) as exc:  # not a model folder, its data missing: one line, naming the run
            p.error(f"{spec}: {exc}")
        measured, erf = priors.measure_priors(
            {name: loaded.model}, loader, max_images=args.images, erf_images=args.erf_images
        )
        fresh = priors.effective_receptive_field(
            untrained_copy(loaded.model, args.init_seed + (seed_suffix(name)[1] or 0)),
            loader,
            max_images=args.erf_images,
        )
        rows[name] = {**measured[name], **{k.replace("erf_", "erf_untrained_"): v for k, v in fresh.summary().items()}}
        erfs[name], untrained[name] = erf[name], fresh
        state = dict(key=key, row={k: _number(v) for k, v in rows[name].items()}, erf=_erf_state(erf[name]),
                     untrained=_erf_state(fresh))  # fmt: skip
        atomic_write(saved, lambda tmp, state=state: torch.save(state, tmp))
        print(f"{name}: " + ", ".join(f"{k} {rows[name][k]:.2f}" for k in COLUMNS), flush=True)
    priors.write_table(rows, args.out / "priors-full")
    csv_path, md_path = priors.write_table(rows, args.out / "priors", columns=COLUMNS)
    priors.plot_erfs(erfs, args.out / "erf.png", title="effective receptive field, trained")
    priors.plot_erfs(untrained, args.out / "erf-untrained.png", title="effective receptive field, untrained")
    means = priors.seed_means(rows)
    priors.write_seed_table(means, args.out / "priors-mean", columns=COLUMNS)
    priors.plot_erfs(priors.mean_erf_maps(erfs), args.out / "erf-mean.png",
                     title="effective receptive field, trained (mean map over seeds)")  # fmt: skip
    priors.plot_erfs(priors.mean_erf_maps(untrained), args.out / "erf-untrained-mean.png",
                     title="effective receptive field, untrained (mean map over seeds)")  # fmt: skip
    print(f"wrote {csv_path}, {md_path} (and priors-full.csv/.md, priors-mean.csv/.md, erf[-untrained][-mean].png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
