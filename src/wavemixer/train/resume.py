"""Continuing a run (``wavemixer train --resume``): which options it may take anew, and what to tell a user
whose run stopped. The run's own config decides what it trains; a resumed run changes only where and how it
runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from .config import TrainConfig
from .config_checks import flag

__all__ = ["RESUME_MAY_CHANGE", "check_resume_flags", "resumable", "resumed_config"]


def check_resume_flags(cfg: TrainConfig) -> None:
    """``--resume DIR`` continues DIR in place: another ``--output`` or ``--force`` contradicts it."""
    if cfg.output is not None and Path(cfg.output).resolve() != Path(cfg.resume).resolve():  # type: ignore[arg-type]
        raise ValueError(
            f"--resume {cfg.resume} continues that run in its own folder; --output {cfg.output} contradicts it "
            "(copy the run folder first to continue it elsewhere)"
        )
    if cfg.force:
        raise ValueError(f"--resume {cfg.resume} keeps the run's files; --force contradicts it (drop one)")


RESUME_MAY_CHANGE = frozenset({
    "resume", "output", "force", "stop_after_steps", "data_dir", "download", "workers", "decode_once",
    "eval_batch_size", "threads", "device", "compile", "channels_last", "grad_checkpointing", "memory_efficient",
    "log_interval", "log", "quiet",
})  # fmt: skip
"""Options a resumed run may take anew: where and how it runs (the data's place, threads, device, execution
path, logging), never what it trains. The rest come from the run's own config, and a different value given
with ``--resume`` would be ignored where the checkpoint restores the optimiser and schedule, so it is refused."""


def _check_resume_changes(run_dir: Path, saved: TrainConfig, cfg: TrainConfig) -> None:
    changed = [
        f.name
        for f in dataclasses.fields(cfg)
        if f.name not in RESUME_MAY_CHANGE and getattr(cfg, f.name) != getattr(saved, f.name)
    ]
    if changed:
        first = changed[0]
        raise ValueError(
            f"--resume {run_dir} continues the run as it was configured, but {flag(first)} "
            f"{getattr(cfg, first)!r} differs from its {getattr(saved, first)!r}"
            + (f" (and {', '.join(flag(c) for c in changed[1:])})" if changed[1:] else "")
            + "; drop them, or start a new run from its weights with --init-from"
        )


def resumed_config(
    run_dir: Path, saved_config: dict[str, Any], cfg: TrainConfig, explicit: dict[str, Any] | None
) -> TrainConfig:
    """The config a resumed run trains with: the run's own (``saved_config``, from its checkpoint), with the
    options given now (``explicit``; ``None`` from the API: those off their defaults) where
    :data:`RESUME_MAY_CHANGE` allows; any other difference is refused in one line."""
    keep = {"stop_after_steps": None, "resume": str(run_dir), "output": str(run_dir), "force": False}
    names = [f.name for f in dataclasses.fields(cfg)]
    saved = {k: v for k, v in saved_config.items() if k in names}
    if explicit is None:
        default = TrainConfig()
        explicit = {n: getattr(cfg, n) for n in names if getattr(cfg, n) != getattr(default, n)}
    resumed = TrainConfig(**{**saved, **keep, **explicit})
    _check_resume_changes(run_dir, TrainConfig(**{**saved, **keep}), resumed)
    return resumed


def resumable(run_dir: Path) -> str:
    """What an interrupted run left to continue from: the last checkpoint that was saved completely."""
    if (run_dir / ckpt.TRAIN_STATE).is_file():
        return (
            f"{run_dir / ckpt.TRAIN_STATE} holds the last completely saved epoch: fix this, then continue with "
            f"wavemixer train --resume {run_dir}"
        )
    return f"no epoch was saved yet: fix this, then start again with --output {run_dir} --force"
