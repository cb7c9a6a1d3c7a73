"""Figures of a run: loss/metric curves and a confusion matrix (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wavemixer.hub import atomic_write

__all__ = ["plot_confusion_matrix", "plot_curves"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    rows: Sequence[dict[str, Any]],
    path: Path,
    metric: str = "top1",
    *,
    title: str = "",
    best_epoch: int | None = None,
) -> None:
    """Train/val loss and the val selection metric per epoch, titled with the run, the selected (best) epoch
    marked on both panels."""
    if not rows:
        return
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
    ax1.plot(epochs, [r["train_loss"] for r in rows], marker=".", label="train")
    ax1.plot(epochs, [r["val_loss"] for r in rows], marker=".", label="val")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    values = [r[f"val_{metric}"] for r in rows]
    ax2.plot(epochs, values, marker=".", label=f"val {metric}", color="C2")
    ax2.set(xlabel="epoch", ylabel=metric, title=f"val {metric}")
    if best_epoch in epochs:
        best = values[epochs.index(best_epoch)]
        ax1.axvline(best_epoch, color="0.5", linestyle=":", linewidth=1, label=f"best epoch {best_epoch}")
        ax2.axvline(best_epoch, color="0.5", linestyle=":", linewidth=1)
        ax2.plot([best_epoch], [best], "*", color="C3", markersize=11, label=f"best epoch {best_epoch}: {best:.2f}")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
    if title:
        fig.suptitle(_wrap(title, 100), fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def _wrap(text: str, width: int) -> str:
    """Long titles (model names with arguments) on several lines, never cut off at the figure's edges."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False)) or text


def plot_confusion_matrix(matrix: Any, labels: Sequence[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix (rows: true class, columns: predicted); cells show image counts."""
    import numpy as np

    plt = _pyplot()
    m = np.asarray(matrix, dtype=np.float64)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(labels)
    size = min(4 + 0.4 * n, 30)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), layout="constrained")
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    step = max(1, -(-n // 150))  # class names on the axes; beyond 150 classes every step-th one
    font = max(4.0, min(10.0, 400 / n))
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=font)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=font)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    int(m[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set(xlabel="predicted", ylabel="true")
    # the figure is as wide as the matrix: a long title wraps to that width instead of running off both edges
    chars = max(20, int(size * 72 / 7.5))
    ax.set_title(_wrap(title or "confusion matrix", chars), fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.046)
    bar.set_label("fraction of the true class's images (row-normalised)")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
