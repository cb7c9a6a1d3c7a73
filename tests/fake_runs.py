"""Run folders as ``wavemixer train`` writes them, without training: the files and fields the run summaries read.

``tests/test_runs.py`` checks these against the folders of real (tiny) runs of each task, so a change to what
training writes shows there first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TASKS: dict[str, dict[str, Any]] = {
    "classification": dict(metric="top1", val=("loss", "top1", "top5"), model="wavemix_lite_8_10_mnist"),
    "segmentation": dict(
        metric="miou", val=("loss", "miou", "pixel_acc", "iou_background", "iou_thing"),
        model="wavemix_seg_64_6_l2_camvid",
    ),
    "super_resolution": dict(
        metric="psnr", val=("loss", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim"), model="wavemix_sr_64_4_x2_residual"
    ),
}  # fmt: skip


def fake_run(
    folder: Path, *, seed: int, test: float, best_val: float | None = None, task: str = "classification",
    model: str | None = None, params: int = 3_566, epochs: int = 2, steps: int | None = None,
    wall_s: float = 600.0, peak_mb: float = 1500.0, curve: tuple[float, ...] = (45.0, 55.0),
    config: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
    """A finished run: ``results.json`` (``test`` and ``best_val`` in the task's metric), ``summary.csv``
    (``curve``: the val metric after each epoch, epochs evenly spread over ``wall_s``), ``config.yaml``."""
    spec = TASKS[task]
    metric, best_val = spec["metric"], test + 1 if best_val is None else best_val
    scores = {k: 0.5 for k in spec["val"]}
    folder.mkdir(parents=True)
    results = dict(
        model=model or spec["model"], dataset="digits", seed=seed, params=params, epochs=epochs,
        steps=steps if steps is not None else 4 * epochs, best_epoch=epochs, stop_reason="max epochs",
        best_val={**scores, metric: best_val}, test={**scores, metric: test}, wall_time_s=wall_s, world_size=1,
        device="cpu", cpu="Test CPU (avx2)", torch="2.0",
        rank_checksums=[1.0], peak_memory_mb=peak_mb, peak_memory_kind="process peak RSS",
    )  # fmt: skip
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    columns = ["epoch", "phase", "lr", "train_loss", *(f"val_{k}" for k in spec["val"]), "epoch_s", "time_s"]
    lines = [",".join(columns)]
    for epoch, value in enumerate(curve, start=1):
        row = dict(epoch=epoch, phase=1, lr=0.001, train_loss=1.0, epoch_s=wall_s / len(curve))
        row |= {f"val_{k}": 0.5 for k in spec["val"]} | {f"val_{metric}": value, "time_s": wall_s * epoch / len(curve)}
        lines.append(",".join(str(row[c]) for c in columns))
    (folder / "summary.csv").write_text("\n".join(lines) + "\n")
    options = dict(task=task, dataset="digits", model=results["model"], model_args={}, epochs=epochs, lr=0.002)
    options |= dict(warmup_epochs=1.0, seed=seed, output=str(folder), threads=1) | (config or {})
    (folder / "config.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in options.items()))
    return folder
