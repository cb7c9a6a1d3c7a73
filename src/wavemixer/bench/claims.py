"""The claims grids: accuracy at matched parameters and equal training, WaveMix mixer variants against peers.

Every cell is one ``wavemixer train`` run with one recipe (the same flags for every model), selected on the
validation split carved from the training set, tested once; a grid is cells x seeds in
``<runs>/<grid>/<cell>-s<seed>/``. Training goes through :func:`wavemixer.runs.train_in_lanes` (resumable),
tables through :mod:`wavemixer.runs`; ``scripts/claims_grid.py`` is the command line, docs/claims.md the results.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wavemixer.bench.tuning import GRID_LRS, Setting, edge_settings
from wavemixer.runs import (
    Column,
    Job,
    collect_runs,
    group_runs,
    markdown_table,
    pareto_plot,
    standard_columns,
    write_summary_csv,
)

__all__ = [
    "GRIDS",
    "RECIPE",
    "TUNING_LRS",
    "Cell",
    "Grid",
    "bench_memory",
    "edge_lrs",
    "jobs",
    "overlapping_cells",
    "overlapping_groups",
    "select",
    "summarize",
    "train_command",
    "tuned_lrs",
    "tuning_table",
]


@dataclass(frozen=True)
class Cell:
    """One model of a grid: ``key`` names its run folders (``<key>-s<seed>``)."""

    key: str
    model: str  # --model
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None  # this cell's budget where it differs from the grid's (equal-time grids)
    flags: tuple[str, ...] = ()  # its own training flags after the grid's recipe (a tuned learning rate)


@dataclass(frozen=True)
class Grid:
    """Cells trained alike: the data flags, the epochs, the warm-up, the time-to-accuracy goal (val top-1 %)."""

    data: tuple[str, ...]
    epochs: int
    goal: float
    recipe: tuple[str, ...]
    cells: tuple[Cell, ...]
    bench_group: str | None = None  # the `wavemixer bench --suite peers` scale of its models (step memory)
    base: tuple[str, ...] = ()  # the recipe the grid's own flags complete (default: RECIPE)

    def epochs_of(self, cell: Cell) -> int:
        return cell.epochs or self.epochs


def _wavemix_variants(base: str) -> list[Cell]:
    return [
        Cell("wavemix-dwt-haar", base),
        Cell("wavemix-dwt-db2", base, {"wavelet": "db2"}),
        Cell("wavemix-random", base, {"mixer": "random"}),
        Cell("wavemix-conv", base, {"mixer": "conv"}),
        Cell("wavemix-avgpool", base, {"mixer": "avgpool"}),
        Cell("wavemix-fourier", base, {"mixer": "fourier"}),
    ]


def _peers(params: int, families: Sequence[str]) -> list[Cell]:
    return [Cell(f, f"peer:{f}", {"params": params}) for f in families]


CLAIMS_PEERS = ("resnet", "convmixer", "mlp_mixer", "poolformer", "vit", "convnext")
"""The peer families of the claims grids (each a ``wavemixer.bench.peers.PEER_FAMILIES`` name)."""
CIFAR10 = ("--dataset", "cifar10", "--no-trivial-augment")
RECIPE = ("--batch-size", "128", "--lr", "1e-2", "--threads", "1", "--workers", "0")
"""The one recipe of every cell: AdamW, peak lr 1e-2 (the CIFAR-10 WaveMix-Lite-32/7 recipe of docs/results.md),
cosine schedule, batch 128, crop + flip; precision is wavemixer's ``auto``. A grid adds its warm-up length
(``recipe``), the same for every cell of that grid."""

CELLS_40K = (*_wavemix_variants("wavemix_lite_32_7_cifar10_tiny"), *_peers(37_058, CLAIMS_PEERS))
CELLS_500K = (Cell("wavemix-dwt-haar", "wavemix_lite_64_6_cifar10"), *_peers(520_106, CLAIMS_PEERS))
EPOCHS_IN_WAVEMIX_TIME_40K = dict(resnet=11, mlp_mixer=11, convnext=15, poolformer=17, vit=5, convmixer=2)
"""Epochs each 40k peer trains in the wall-clock time of WaveMix's 2 epochs (6.2 min): WaveMix's minutes per run
over the peer's minutes per epoch, both from the cifar10-40k-2ep table of docs/claims.md (2 lanes on 2 cores)."""

CAMVID_PARAMS = 881_867  # wavemix_seg_64_6_l2_camvid
CAMVID_RECIPE = (
    "--batch-size", "8", "--eval-batch-size", "8", "--input-size", "128", "--lr", "2e-3", "--amp", "none",
    "--threads", "1", "--workers", "0", "--log-interval", "10",
)  # fmt: skip
"""CamVid (SegNet split, 180x240, 11 classes, void ignored): random 0.75-1.5x rescale, 128x128 crop and flip
(image and mask jointly), whole images for val/test; AdamW, cosine, batch 8; fp32 so that runs continued on
a CPU of another kind compute the same thing."""
CELLS_CAMVID = (
    Cell("wavemix", "wavemix_seg_64_6_l2_camvid"),
    # the efficient configuration: a patch-8 stem puts the blocks at 1/8 resolution (the published one: 1/4),
    # width and depth re-solved to the budget (871,651 parameters, 0.38 against 0.67 GMACs at 180x240)
    Cell("wavemix-p8", "wavemix_seg_64_6_l2_camvid", dict(stem="patchify", patch_size=8, final_dim=56, depth=7)),
    # the U-Net at its four levels (the original's; deepest at 1/16, 8x8 on a 128-px crop): smp's five-level
    # layout, deepest at 1/32, reached 9 points less val mIoU than a hand-written four-level U-Net (docs/claims.md)
    Cell("unet", "peer:unet", {"params": CAMVID_PARAMS, "design": "small-input"}),
    *(Cell(f, f"peer:{f}", {"params": CAMVID_PARAMS}) for f in ("lraspp_mobilenet_v3", "deeplabv3_mobilenet_v3")),
)

_SHORT = ("--warmup-epochs", "0.2")
GRIDS: dict[str, Grid] = {
    "cifar10-40k": Grid(CIFAR10, 20, 70.0, ("--warmup-epochs", "1"), CELLS_40K, "40k@32"),
    # the 40k grid cut to what one 3-hour session of 2 CPU cores trains (3 seeds kept, epochs cut; docs/claims.md)
    "cifar10-40k-2ep": Grid(CIFAR10, 2, 50.0, _SHORT, CELLS_40K, "40k@32"),
    "cifar10-500k": Grid(CIFAR10, 20, 80.0, ("--warmup-epochs", "1"), CELLS_500K, "500k@32"),
    # the 500k grid cut like the 40k one; docs/claims.md runs WaveMix and the strongest 40k peers (--only)
    "cifar10-500k-2ep": Grid(CIFAR10, 2, 50.0, _SHORT, CELLS_500K, "500k@32"),
    # equal wall-clock: WaveMix-tiny's 2 epochs against each peer trained for as long (the same recipe otherwise)
    "cifar10-40k-equal-time": Grid(
        CIFAR10, 2, 50.0, _SHORT,
        (
            Cell("wavemix-dwt-haar", "wavemix_lite_32_7_cifar10_tiny"),
            *(replace(c, epochs=EPOCHS_IN_WAVEMIX_TIME_40K[c.key]) for c in _peers(37_058, CLAIMS_PEERS)),
        ),
        "40k@32",
    ),
    # equal epochs at that longer budget: WaveMix for the 11 epochs ResNet and MLP-Mixer had in the equal-time grid
    # (their runs are the same runs: summarize with --merge of the equal-time CSV)
    "cifar10-40k-11ep": Grid(
        CIFAR10, 11, 50.0, _SHORT,
        (Cell("wavemix-dwt-haar", "wavemix_lite_32_7_cifar10_tiny"), *_peers(37_058, ("resnet", "mlp_mixer"))),
        "40k@32",
    ),
    # CamVid segmentation on one engine: every model through `wavemixer train --task segmentation`, one recipe
    # (docs/claims.md); tune with --epochs 20 --seeds 0 and `-- --lr X` per learning rate into its own --runs
    "camvid": Grid(
        ("--task", "segmentation", "--dataset", "camvid"), 60, 40.0, ("--warmup-epochs", "1"), CELLS_CAMVID,
        base=CAMVID_RECIPE,
    ),
    # a tiny grid on the embedded digits: the tests' grid, and a smoke test for users
    "digits-smoke": Grid(
        ("--dataset", "digits"), 1, 50.0, ("--warmup-epochs", "1"),
        (Cell("wavemix-dwt-haar", "wavemix_lite_8_10_mnist"), Cell("convmixer", "peer:convmixer", {"params": 3_566})),
    ),
}  # fmt: skip


def select(grid: Grid, only: Sequence[str] | None = None) -> list[Cell]:
    """The grid's cells, or those named in ``only`` (an unknown name is an error listing the grid's)."""
    if not only:
        return list(grid.cells)
    unknown = sorted(set(only) - {c.key for c in grid.cells})
    if unknown:
        raise ValueError(f"--only: unknown cell(s) {unknown}; the grid has {[c.key for c in grid.cells]}")
    return [c for c in grid.cells if c.key in only]


def train_command(
    grid: Grid, cell: Cell, seed: int, out: Path, *, epochs: int | None = None, data_dir: str | None = None,
    subset: int | None = None, extra: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """The ``wavemixer`` arguments that start one cell's run (``epochs`` overrides every cell's budget)."""
    cmd = ["train", *grid.data, *(grid.base or RECIPE), *grid.recipe, *cell.flags, "--model", cell.model]
    cmd += ["--seed", str(seed)]
    cmd += ["--output", str(out), "--epochs", str(epochs or grid.epochs_of(cell))]
    for key, value in cell.model_args.items():
        cmd += ["--model-arg", f"{key}={value}"]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    if subset:
        cmd += ["--subset", str(subset)]
    return cmd + list(extra)


def jobs(
    grid: Grid, root: Path, seeds: Sequence[int], only: Sequence[str] | None = None,
    lrs: dict[str, float] | None = None, **kw: Any,
) -> list[Job]:  # fmt: skip
    """Every selected cell x seed, seed-major (every model has a run early); ``lrs``: each cell's tuned learning
    rate (:func:`tuned_lrs`), after the recipe's; ``kw``: :func:`train_command`'s."""
    cells = select(grid, only)
    missing = [c.key for c in cells if lrs is not None and c.key not in lrs]
    if missing:
        raise ValueError(f"no tuned learning rate for {missing}: tune those cells first")
    out = []
    for seed in seeds:
        for cell in cells:
            if lrs is not None:
                cell = replace(cell, flags=(*cell.flags, "--lr", f"{lrs[cell.key]:g}"))
            folder = root / f"{cell.key}-s{seed}"
            out.append(Job(train_command(grid, cell, seed, folder, **kw), folder))
    return out


TUNING_LRS = GRID_LRS
"""The learning rates every cell of a tuned grid (CamVid) trains at first (seed 0, val), then the contest's
edge rule (:func:`edge_lrs`): the same rates and the same rule as the contest's tuning."""


def _tuning(root: Path, grid: str) -> tuple[dict[str, dict[float, float]], dict[str, set[float]]]:
    """Best val metric per cell and rate of the seed-0 runs ``<root>/lr<LR>/<grid>/<cell>-s0``, and the rates
    each cell has tried (a diverged run counts: tried, never chosen)."""
    from wavemixer.runs import read_runs
    from wavemixer.runs.records import diverged

    scores: dict[str, dict[float, float]] = {}
    tried: dict[str, set[float]] = {}
    for folder in sorted(f for f in root.glob("lr*") if (f / grid).is_dir()):
        for run in read_runs([folder / grid]):
            if run.seed == 0 and run.best_val is not None and run.config.get("lr") is not None:
                scores.setdefault(run.group, {})[float(run.config["lr"])] = run.best_val
                tried.setdefault(run.group, set()).add(float(run.config["lr"]))
        for blown in (folder / grid).glob("*-s0"):  # a diverged run: that rate was tried, and is never chosen
            if blown.is_dir() and diverged(blown):
                tried.setdefault(blown.name.removesuffix("-s0"), set()).add(float(folder.name.removeprefix("lr")))
    return scores, tried


def _best_and_edge(by_lr: dict[float, float], rates: set[float]) -> tuple[float, float | None]:
    """The best rate (ties: the lower) and the edge rule's next rate for it (``None``: the tuning is done)."""
    best = min(by_lr, key=lambda lr: (-by_lr[lr], lr))
    edge = edge_settings({"cell": Setting(best, 1.0)}, {"cell": rates}).get("cell")
    return best, edge[0].lr if edge else None


def _tuned_cells(
    scores: dict[str, dict[float, float]], tried: dict[str, set[float]]
) -> dict[str, tuple[float, float | None]]:
    """Best rate and the edge rule's next one (:func:`_best_and_edge`) of every cell that tried each base rate."""
    return {
        cell: _best_and_edge(by_lr, tried[cell])
        for cell, by_lr in scores.items()
        if all(any(math.isclose(lr, r, rel_tol=1e-3) for r in tried[cell]) for lr in TUNING_LRS)
    }


def edge_lrs(root: Path, grid: str) -> dict[str, float]:
    """The edge rule's next rate per cell: for a cell that has tried every :data:`TUNING_LRS` rate and whose best
    is the lowest or highest rate it tried, that rate / or x the contest's ``EDGE_STEP`` (at most
    ``EDGE_MAX_STEPS`` steps beyond the grid, never a rate tried). Empty once every such cell is done."""
    return {cell: edge for cell, (_, edge) in _tuned_cells(*_tuning(root, grid)).items() if edge is not None}


def tuned_lrs(root: Path, grid: str) -> dict[str, float]:
    """Each cell's learning rate from a tuning over rates: the seed-0 runs ``<root>/lr<LR>/<grid>/<cell>-s0``
    (``claims_grid.py run --seeds 0 --runs <root>/lr<LR> -- --lr LR``, then ``claims_grid.py edge``), the best
    val metric winning (ties: the lower rate). A cell enters once it has tried every :data:`TUNING_LRS` rate
    (a diverged run: tried, never chosen) and the edge rule has nothing left for it (:func:`edge_lrs`); the
    rate is the one its run recorded."""
    return {cell: best for cell, (best, edge) in _tuned_cells(*_tuning(root, grid)).items() if edge is None}


def tuning_table(root: Path, grid: str) -> tuple[list[dict[str, Any]], list[str]]:
    """A learning-rate tuning's rows (cell, lr, best val metric; diverged runs without one) and its markdown
    table: cells x rates, the val metric of each seed-0 run, each tuned cell's rate (:func:`tuned_lrs`) in
    bold; a cell the edge rule is not done with is marked. Val only: the tuning runs' test scores select
    nothing and are left out."""
    scores, tried = _tuning(root, grid)  # read once; tuned and pending as tuned_lrs and edge_lrs give them
    state = _tuned_cells(scores, tried)
    tuned = {cell: best for cell, (best, edge) in state.items() if edge is None}
    pending = {cell: edge for cell, (_, edge) in state.items() if edge is not None}
    order = [c.key for c in GRIDS[grid].cells]
    cells = sorted(tried, key=lambda c: (order.index(c) if c in order else len(order), c))
    rates = sorted({lr for rs in tried.values() for lr in rs})

    def val(cell: str, lr: float) -> str:
        return f"{scores[cell][lr]:.2f}" if lr in scores.get(cell, {}) else ""  # "": diverged

    rows = [{"cell": cell, "lr": f"{lr:g}", "best_val": val(cell, lr)} for cell in cells for lr in sorted(tried[cell])]
    lines = ["| model | " + " | ".join(f"lr {lr:g}" for lr in rates) + " |", "|---|" + "---:|" * len(rates)]
    for cell in cells:
        texts = []
        for lr in rates:
            if lr not in tried[cell]:
                text = "–"
            else:
                text = val(cell, lr) or "diverged"
                text = f"**{text}**" if tuned.get(cell) == lr else text
            texts.append(text)
        name = f"{cell} (edge rule: {pending[cell]:g} next)" if cell in pending else cell
        lines.append(f"| {name} | " + " | ".join(texts) + " |")
    return rows, lines


def overlapping_groups(
    groups: Sequence[Any], seeds: int = 3, where: str = "", keys: Collection[str] | None = None
) -> list[str]:
    """The groups (:func:`wavemixer.runs.group_runs`; with ``keys``, those named there) whose test mean ± std
    over seeds 1..``seeds`` overlaps another's: the rows that ``seeds`` seeds cannot tell apart, which get more
    seeds (3, and 5 where two rows lie within each other's spread). Every group must have finished seeds
    1..``seeds`` first, and only they count, so that the answer stays the same once the extra seeds are in.
    ``where`` names the runs in the error."""
    from wavemixer.runs import Group

    first = {g.name: [r for r in g.runs if 1 <= r.seed <= seeds] for g in groups if keys is None or g.name in keys}
    if not first:
        raise ValueError(f"{where}: no finished runs; every cell needs seeds 1-{seeds} finished first")
    short = sorted(name for name, runs in first.items() if len(runs) < seeds)
    if short:
        raise ValueError(f"{where}: every cell needs seeds 1-{seeds} finished first ({short} lack them)")
    stats = {name: Group(name, runs).stat("test") for name, runs in first.items()}
    spans = {k: (s.mean - s.std, s.mean + s.std) for k, s in stats.items() if s is not None}
    return sorted(
        a for a in spans if any(b != a and spans[a][0] <= spans[b][1] and spans[b][0] <= spans[a][1] for b in spans)
    )


def overlapping_cells(folder: Path, seeds: int = 3) -> list[str]:
    """:func:`overlapping_groups` of a finished grid (``folder``: ``<cell>-s<seed>`` runs), e.g. CamVid's."""
    from wavemixer.runs import read_runs

    return overlapping_groups(group_runs(read_runs([folder])), seeds, where=str(folder))


def bench_memory(path: Path, group: str) -> tuple[dict[str, float], str]:
    """Training-step allocator peak (MB) per grid cell, from a ``wavemixer bench --suite peers`` CSV.

    Process RSS (what ``results.json`` records on CPU) is mostly the interpreter, torch and the data set,
    so it hardly tells models apart; the bench's allocator peak of one training step does. Returns the
    peaks of the ``group`` rows (e.g. ``40k@32``) by cell key and a label naming batch and precision.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"--memory: {path} does not exist; write it with `wavemixer bench --suite peers --mode train`"
        )
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("mode") == "train" and r.get("group") == group]
    rows = [r for r in rows if r.get("peak_mem_mb")]
    if not rows:
        raise ValueError(f"--memory: {path} has no measured training rows of group {group!r}")
    settings = {(r["batch_size"], r["precision"]) for r in rows}
    if len(settings) > 1:
        raise ValueError(f"--memory: {path} mixes batch sizes/precisions {sorted(settings)}; measure one setting")
    batch, precision = settings.pop()
    peaks = {}
    for r in rows:
        name = r["model"].rsplit(" [", 1)[0]  # "WaveMix dwt/haar [40k@32]" / "resnet [40k@32]"
        key = "wavemix-" + name.removeprefix("WaveMix ").replace("/", "-") if name.startswith("WaveMix ") else name
        peaks[key] = float(r["peak_mem_mb"])
    return peaks, f"train-step memory (MB, batch {batch}, {precision})"


def summarize(
    name: str, runs: Path, out: Path, *, goal: float | None = None, only: Sequence[str] | None = None,
    merge: Path | None = None, memory: Path | None = None,
) -> str:  # fmt: skip
    """``<out>/<name>.csv`` (every run), ``.md`` (mean ± std per cell) and ``-pareto.png`` from the runs in
    ``<runs>/<name>/`` and, with ``merge``, an earlier summary CSV's runs of the selected cells not trained
    there (each must be the run this grid makes: model, epochs, goal). Returns the markdown table."""
    grid = GRIDS[name]
    goal = grid.goal if goal is None else goal
    cells = {c.key: c for c in select(grid, only)}
    root = runs / name
    found = collect_runs([root] if root.is_dir() else [], goal=goal, merge=merge)
    selected = [r for r in found if r.group in cells]
    if not selected:
        raise ValueError(f"no finished runs of the selected cells under {root}" + (f" or in {merge}" if merge else ""))
    expected = None
    if merge is not None:  # a merged row must be the run this grid makes
        expected = {
            k: dict(model=c.model, epochs=grid.epochs_of(c), goal=goal, source="this grid's cell")
            for k, c in cells.items()
        }
    step_memory, step_label = _step_memory(grid, name, memory)
    for run in selected:
        run.extra["step_mem_mb"] = step_memory.get(run.group)
    groups = group_runs(selected, goal=goal, expected=expected)
    extra = [Column(step_label, lambda g: _mb(g.first("step_mem_mb")), "---:")] if step_memory else []
    table = markdown_table(groups, standard_columns(groups, label="model", goal=goal, extra=extra))
    out.mkdir(parents=True, exist_ok=True)
    write_summary_csv(out / f"{name}.csv", selected)
    from wavemixer.files import atomic_write_text

    atomic_write_text(out / f"{name}.md", table + "\n")
    memory_panel = ("step_mem_mb", step_label, True) if step_memory else ("peak_mem_mb", "peak process RSS (MB)", True)
    panels = [memory_panel, ("wall_min", "training time per run (min)", False)]  # parameters are matched
    pareto_plot(groups, out / f"{name}-pareto.png", title=name, panels=panels)
    return table


def _step_memory(grid: Grid, name: str, memory: Path | None) -> tuple[dict[str, float], str]:
    if memory is None:
        return {}, ""
    if grid.bench_group is None:
        raise ValueError(f"--memory: grid {name!r} has no `wavemixer bench --suite peers` scale")
    return bench_memory(memory, grid.bench_group)


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"
