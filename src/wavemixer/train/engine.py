"""The training engine: loop, precision, EMA, distribution, checkpoints, resume, logging — task-agnostic.

The task (:mod:`wavemixer.tasks`) supplies the data, model, loss and metrics; the engine never asks which
task it runs. Randomness is re-seeded from ``(seed, epoch, rank)`` at the start of every epoch, so a run
continued with ``--resume`` from its last epoch checkpoint takes exactly the same path as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from wavemixer.cpu import cpu_description
from wavemixer.data.bundle import DataBundle
from wavemixer.evaluation import evaluate
from wavemixer.files import OutputError, atomic_write_text, describe_os_error
from wavemixer.hub import clean_state_dict, save_pretrained, state_dict_mismatch
from wavemixer.tasks import get_task, task_class
from wavemixer.tasks.base import Task

from . import checkpoint as ckpt
from .config import TrainConfig, default_lr
from .distributed import (
    DistContext,
    ShardSampler,
    all_reduce_sum,
    barrier,
    broadcast_object,
    cleanup_distributed,
    setup_distributed,
)
from .optim import build_optimizer
from .plots import plot_curves
from .resume import check_resume_flags, resumable, resumed_config

__all__ = ["Diverged", "Trainer", "build_ema", "resolve_config", "train"]

logger = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised by ``--stop-after-steps`` to imitate an interruption."""


class Diverged(RuntimeError):
    """The loss became NaN or infinite: the run stops, keeping the checkpoints of the last good epoch."""


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Fill ``None`` options from the data set's defaults and the recipe; refuse options the task has no use for."""
    task_type = task_class(cfg.task)
    name, d = task_type.dataset_defaults(cfg.dataset)
    changes: dict[str, Any] = {"dataset": name}
    for key in task_type.config_defaults:
        if getattr(cfg, key) is None and d.get(key) is not None:  # None: derived from the data when it is read
            changes[key] = d[key]
    if cfg.lr is None and changes.get("model", cfg.model) is not None:  # else the data's model decides it too
        changes["lr"] = default_lr(cfg)
    if cfg.patience is None and cfg.recipe == "dualopt":
        changes["patience"] = 5
    cfg = dataclasses.replace(cfg, **changes)  # TrainConfig checks every value, the filled-in ones too
    get_task(cfg).check_config()
    return cfg


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` computes bf16 natively (else autocast emulates it, several times slower), and why."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported(including_emulation=False)
        return ok, f"{torch.cuda.get_device_name(device)} {'has' if ok else 'lacks'} native bf16"
    if device.type == "cpu":
        from wavemixer.cpu import cpu_flags

        flags = cpu_flags()
        found = sorted(f for f in ("avx512_bf16", "amx_bf16") if f in flags)
        if found:
            return True, f"this CPU has {' and '.join(found)}"
        return False, "this CPU has neither avx512_bf16 nor amx_bf16, so bf16 would be emulated (slower)"
    return False, f"bf16 autocast is not assumed native on {device.type}"


def build_ema(model: nn.Module, decay: float, warmup: bool) -> nn.Module:
    """timm's ``ModelEmaV3``: parameters averaged, buffers (BatchNorm statistics) copied.

    Without ``warmup`` the decay is constant (updates pass no step); with it, ``1 - (1 + step)^(-2/3)``
    capped at ``decay``, the first update copying the weights.
    """
    from timm.utils import ModelEmaV3

    ema = ModelEmaV3(model, decay=decay, use_warmup=warmup, exclude_buffers=True)
    for p in ema.module.parameters():
        p.requires_grad_(False)
    return ema


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Trains one model on one data bundle according to a resolved :class:`TrainConfig`."""

    def __init__(
        self, cfg: TrainConfig, *, ctx: DistContext | None = None, data: DataBundle | None = None, out: Any = None
    ) -> None:
        self.cfg = cfg
        self.ctx = ctx or DistContext()
        self.out = out or sys.stdout
        self._echo = out is not None  # an explicit stream also gets the messages (the API's own redirect)
        self.task: Task = get_task(cfg)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.data = data or self.task.build_data()
        if hasattr(self.data.train, "check_crop"):  # training crops (super-resolution): checked before any worker
            self.data.train.check_crop(self.data.train.crop)
        if self.data.derived:  # options the data decided (image folders): the run records them as its own
            self.cfg = cfg = dataclasses.replace(cfg, **self.data.derived)
            self.task.cfg = cfg
        if cfg.lr is None:  # left to the data's model rule, which the data did not apply
            self.cfg = cfg = dataclasses.replace(cfg, lr=default_lr(cfg))
            self.task.cfg = cfg
        self.info = self.data.info
        self.device = self.ctx.device
        self._setup_precision()
        self.log(self.precision_note)
        for note in self.data.notes:
            self.log(note)
        _seed_everything(cfg.seed)
        model = self.task.build_model(self.info)
        if cfg.init_from:
            from wavemixer.loading import load_encoder_weights

            loaded = load_encoder_weights(model, cfg.init_from)
            self.log(f"initialised {len(loaded)} encoder tensors from {cfg.init_from}")
        for option, method in (
            ("grad_checkpointing", "set_grad_checkpointing"),
            ("memory_efficient", "set_memory_efficient"),
        ):
            if getattr(cfg, option):
                if not hasattr(model, method):
                    raise ValueError(
                        f"--{option.replace('_', '-')} needs a WaveMix model; {cfg.model} has no {method}()"
                    )
                getattr(model, method)(True)
        if cfg.sync_bn and self.ctx.distributed:
            if self.device.type not in ("cuda", "xpu"):
                raise ValueError(
                    "--sync-bn needs GPU ranks (torch's SyncBatchNorm has no CPU kernel); drop it for CPU runs"
                )
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model  # the plain module: saved, averaged, evaluated
        self.ema = build_ema(model, cfg.ema_decay, cfg.ema_warmup) if cfg.ema else None
        self.batch_mix = self.task.batch_transform(self.info)
        # a compiled step cannot check BatchNorm invertibility itself without a graph break: do it eagerly
        self._refresh_memory_plan = cfg.compile and cfg.memory_efficient
        net: nn.Module = torch.compile(model) if cfg.compile else model  # compile before DDP
        if self.ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        self.net = net
        self._build_loaders()
        self.phase = 1
        self.optimizer, self.scheduler = self._build_optimizer(self.phase)
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0
        self.history: list[dict[str, Any]] = []
        self.run_dir: Path | None = None
        self.tensorboard: Any = None
        if cfg.log == "tensorboard" and self.ctx.is_main:
            import tensorboard  # noqa: F401  (torch.utils.tensorboard's own error for a missing package is vaguer)

    # ------------------------------------------------------------------------------------------ setup
    def _setup_precision(self) -> None:
        amp, dev = self.cfg.amp, self.device.type
        if amp == "fp16" and dev != "cuda":
            raise ValueError("--amp fp16 needs a CUDA GPU (it uses a GradScaler); on CPU use --amp bf16")
        reason = f"--amp {amp}"
        if amp == "auto":
            native, why = native_bf16(self.device)
            amp, reason = ("bf16" if native else "none"), f"--amp auto: {why}"
        elif amp == "bf16" and not native_bf16(self.device)[0]:
            reason += f" (slower than fp32 here: {native_bf16(self.device)[1]})"
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
        self.precision_note = f"precision {'fp32' if amp == 'none' else amp} ({reason})"

    def autocast(self) -> Any:
        """The mixed-precision context of ``--amp`` (none for fp32)."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _build_loaders(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        per_rank = cfg.batch_size // (ctx.world_size * cfg.grad_accum)
        if per_rank < 1 or per_rank * ctx.world_size * cfg.grad_accum != cfg.batch_size:
            raise ValueError(
                f"--batch-size {cfg.batch_size} must be a multiple of ranks × --grad-accum "
                f"({ctx.world_size} × {cfg.grad_accum})"
            )
        if len(self.data.train) < cfg.batch_size:
            raise ValueError(
                f"the training split has {len(self.data.train)} images, fewer than --batch-size "
                f"{cfg.batch_size}; lower --batch-size"
            )
        workers = cfg.workers if cfg.workers is not None else (0 if self.data.in_memory else 2)
        pin = self.device.type == "cuda"
        self.train_sampler = DistributedSampler(
            self.data.train, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.seed, drop_last=True
        )
        self.train_loader = DataLoader(
            self.data.train,
            batch_size=per_rank,
            sampler=self.train_sampler,
            num_workers=workers,
            pin_memory=pin,
            drop_last=True,
        )
        self.eval_workers, self.pin = workers, pin
        self.steps_per_epoch = len(self.train_loader) // cfg.grad_accum
        self.total_steps = cfg.epochs * self.steps_per_epoch  # type: ignore[operator]
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.total_epochs = math.ceil(self.total_steps / self.steps_per_epoch)  # the last may be partial

    def eval_loader(self, dataset: Any) -> DataLoader:
        """A loader that shards ``dataset`` across ranks without padding: every image is scored once."""
        sampler = ShardSampler(len(dataset), self.ctx.rank, self.ctx.world_size)
        return DataLoader(
            dataset,
            batch_size=self.cfg.eval_batch_size,
            sampler=sampler,
            num_workers=self.eval_workers,
            pin_memory=self.pin,
        )

    def _build_optimizer(self, phase: int) -> tuple[torch.optim.Optimizer, Any]:
        return build_optimizer(self.model, self.cfg, phase, self.steps_per_epoch, self.total_steps)

    # ------------------------------------------------------------------------------------------ logging
    def log(self, text: str) -> None:
        """Progress messages go to the ``wavemixer.train.engine`` logger (the CLI prints them to stdout), and
        to ``out`` when the caller gave one."""
        if self.ctx.is_main and not self.cfg.quiet:
            logger.info(text)
            if self._echo:
                print(text, file=self.out, flush=True)

    def _log_scalars(self, row: dict[str, Any]) -> None:
        """The numbers of one summary.csv row, as TensorBoard scalars at step = epoch."""
        if self.cfg.log != "tensorboard" or not self.ctx.is_main or self.run_dir is None:
            return
        if self.tensorboard is None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events an interrupted run wrote after the epoch it resumes from
            self.tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.epoch)
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.tensorboard.add_scalar(key, value, row["epoch"])
        self.tensorboard.flush()

    def _progress(self, iterable: Any, total: int, desc: str) -> Any:
        if self.ctx.is_main and not self.cfg.quiet and getattr(self.out, "isatty", lambda: False)():
            from tqdm import tqdm

            return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, file=self.out)
        return iterable

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue bit-exactly: weights, optimizer, schedule, RNG, history."""
        return dict(
            format="wavemixer-train", version=1, config=self.cfg.to_dict(),
            model=clean_state_dict(self.model.state_dict()),
            ema=clean_state_dict(self.ema.module.state_dict()) if self.ema else None,
            optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(), epoch=self.epoch, global_step=self.global_step, phase=self.phase,
            best=self.best, best_epoch=self.best_epoch, bad_epochs=self.bad_epochs, history=self.history,
            sampler=dict(seed=self.cfg.seed, next_epoch=self.epoch), rng_torch=torch.get_rng_state(),
            rng_cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        )  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (refusing a checkpoint whose weights do not fit the model)."""
        self.phase = int(state["phase"])
        if self.phase != 1:
            self.optimizer, self.scheduler = self._build_optimizer(self.phase)
        for name, module in (("model", self.model), ("ema", self.ema.module if self.ema is not None else None)):
            if module is None or state.get(name) is None:
                continue
            try:
                module.load_state_dict(state[name])
            except RuntimeError as exc:
                why = state_dict_mismatch(module, state[name])
                raise ValueError(f"the checkpoint's {name} weights do not fit this model configuration: {why}") from exc
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"the checkpoint's optimizer state does not fit this configuration: {first}") from exc
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.best, self.best_epoch = state["best"], int(state["best_epoch"])
        self.bad_epochs, self.history = int(state["bad_epochs"]), list(state["history"])
        torch.set_rng_state(state["rng_torch"])

    def data_settings(self) -> dict[str, Any]:
        """What ``eval``/``predict`` need to rebuild this run's data and splits exactly."""
        cfg = self.cfg
        data_dir = str(Path(cfg.data_dir).expanduser().resolve()) if cfg.data_dir else None
        return dict(
            dataset=cfg.dataset, data_dir=data_dir, seed=cfg.seed, val_fraction=cfg.val_fraction,
            test_fraction=cfg.test_fraction, subset=cfg.subset, input_size=cfg.input_size,
            skip_corrupt=cfg.skip_corrupt, per_class=cfg.per_class, split_hashes=dict(self.data.split_hashes),
        )  # fmt: skip

    def eval_model(self) -> nn.Module:
        """The model that is scored and saved: the EMA copy when ``--ema`` is on."""
        return self.ema.module if self.ema is not None else self.model

    def _save_model(self, folder: Path) -> None:
        save_pretrained(
            self.eval_model(),
            folder,
            model_name=self.cfg.model,
            preprocessing=self.task.preprocessing(self.info),
            labels=self.info.labels,
            force=True,  # best/ and last/ are this run's own folders, rewritten every epoch
            metadata=dict(
                task=self.task.name,
                dataset=self.info.name,
                epoch=self.epoch,
                seed=self.cfg.seed,
                val=self.history[-1] if self.history else None,
                data=self.data_settings(),
            ),
        )

    # ------------------------------------------------------------------------------------------ loops
    def train_one_epoch(self) -> float:
        """One pass over the training split; returns the mean training loss."""
        cfg, ctx = self.cfg, self.ctx
        self.net.train()
        _seed_everything(cfg.seed * 1_000_003 + self.epoch * 7919 + ctx.rank)
        self.train_sampler.set_epoch(self.epoch)
        loss_sum, count = 0.0, 0
        accum = cfg.grad_accum
        it = self._progress(self.train_loader, len(self.train_loader), f"epoch {self.epoch + 1}/{self.total_epochs}")
        self.optimizer.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(it):
            if i >= self.steps_per_epoch * accum:
                break
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.batch_mix is not None:
                x, y = self.batch_mix(x, y)
            if self._refresh_memory_plan:
                self.model.refresh_memory_plan()
            last_micro = (i + 1) % accum == 0
            sync = nullcontext() if (last_micro or not ctx.distributed) else self.net.no_sync()  # type: ignore[operator]
            with sync:
                with self.autocast():
                    loss = self.task.loss(self.net(x), y)
                self.scaler.scale(loss / accum).backward()
            loss_value = float(loss.detach())  # the one host sync per micro-batch the loop already had
            if not math.isfinite(loss_value) and not ctx.distributed:  # ranks stop together, at the epoch's end
                raise Diverged(f"the training loss is {loss_value} at step {self.global_step + 1}")
            loss_sum += loss_value * len(y)
            count += len(y)
            if not last_micro:
                continue
            if cfg.clip_grad:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            self.global_step += 1
            if self.ema is not None:
                self.ema.update(self.model, step=self.global_step if cfg.ema_warmup else None)
            if hasattr(it, "set_postfix"):
                it.set_postfix(loss=f"{loss.item():.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            elif cfg.log_interval and self.global_step % cfg.log_interval == 0:
                rate = count / (time.perf_counter() - t0)
                self.log(
                    f"  step {self.global_step} loss {loss.item():.4f} "
                    f"lr {self.scheduler.get_last_lr()[0]:.2e} {rate * ctx.world_size:.0f} img/s"
                )
            if cfg.stop_after_steps is not None and self.global_step >= cfg.stop_after_steps:
                raise Interrupted(self.global_step)
            if self.global_step >= self.total_steps:  # --max-steps: the last epoch ends early
                break
        total_loss, total_n = all_reduce_sum([loss_sum, count], self.device)
        return total_loss / max(total_n, 1)

    @torch.no_grad()
    def recalibrate_bn(self) -> None:
        """Precise BatchNorm: recompute the running statistics of the evaluated weights over training batches.

        During training the running averages trail the weights (momentum 0.1 spans ~10 steps of fast-moving
        weights), so a short run evaluates and saves statistics of weights it no longer has.
        """
        model = self.eval_model()
        bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        n_batches = self.cfg.bn_recalibrate
        if not bns or not n_batches:
            return
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
        was_training = model.training
        model.train()
        loader = DataLoader(
            self.data.train,
            batch_size=self.train_loader.batch_size,
            sampler=self.train_sampler,
            num_workers=self.eval_workers,
            pin_memory=self.pin,
            drop_last=True,
        )
        for i, (x, _) in enumerate(loader):
            if i >= n_batches:
                break
            x = x.to(self.device, non_blocking=True)
            if self.cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            model(x)  # fp32, as every evaluation: the statistics are those the evaluated forward sees
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
        model.train(was_training)
        if self.ctx.distributed:  # every rank measured its own batches: share one average
            import torch.distributed as dist

            for m in bns:
                for buf in (m.running_mean, m.running_var):
                    dist.all_reduce(buf)
                    buf.div_(self.ctx.world_size)

    def evaluate(self, dataset: Any, model: nn.Module | None = None) -> dict[str, float]:
        """Loss and task metrics over the whole ``dataset`` (sharded over ranks, reduced), in fp32 whatever
        ``--amp`` trained in (:func:`wavemixer.evaluation.evaluate`)."""
        return evaluate(model or self.eval_model(), self.eval_loader(dataset), self.task, self.info, self.device,
                        channels_last=self.cfg.channels_last,
                        reduce_sum=lambda values: all_reduce_sum(values, self.device))  # fmt: skip

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.task.select_mode == "max" else value < self.best

    def _switch_to_sgd(self) -> None:
        """DualOpt phase 2: reload the best weights, continue with SGD (patience counter reset)."""
        assert self.run_dir is not None
        best = ckpt.load_train_state(self.run_dir / "best_state.pt")
        self.model.load_state_dict(best["model"])
        if self.ema is not None and best.get("ema") is not None:
            self.ema.module.load_state_dict(best["ema"])
        self.phase, self.bad_epochs = 2, 0
        self.optimizer, self.scheduler = self._build_optimizer(2)
        self.log(
            f"dualopt: val {self.task.select_metric} stalled for {_count(self.cfg.patience, 'epoch')}; "
            f"phase 2 (SGD lr {self.cfg.sgd_lr}) from the best checkpoint (epoch {self.best_epoch})"
        )

    def _length_text(self) -> str:
        epochs = _count(self.total_epochs, "epoch")
        if self.total_steps == self.total_epochs * self.steps_per_epoch:
            return epochs
        return f"{self.total_steps:,} steps: {epochs}, the last partial"

    # ------------------------------------------------------------------------------------------ fit
    def fit(self, run_dir: Path) -> dict[str, Any]:
        """Train to the end (or resume to it), keeping ``best/`` and ``last/``, then test once; returns
        ``results.json``'s content."""
        cfg, task = self.cfg, self.task
        self.run_dir = run_dir
        sel = task.select_metric
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log(
            f"{cfg.model}{_args_text(cfg.model_args)} ({n_params:,} params, {self._length_text()}) on "
            f"{self.info.name}: {len(self.data.train):,} train / "
            f"{len(self.data.val):,} val / {len(self.data.test) if self.data.test else 0:,} test images, "
            f"{self.ctx.world_size} rank(s) on {self.device}, run folder {run_dir}"
        )
        if self.history and self.ctx.is_main:  # resumed: a save cut short may have missed the last epoch's rows
            ckpt.write_summary(run_dir / "summary.csv", self.history)
            self._plot(run_dir)
        start = time.perf_counter() - (self.history[-1]["time_s"] if self.history else 0.0)
        stop_reason = "max steps" if self.total_steps < cfg.epochs * self.steps_per_epoch else "max epochs"  # type: ignore[operator]
        while self.epoch < self.total_epochs:
            if cfg.patience is not None and self.bad_epochs >= cfg.patience:
                if cfg.recipe == "dualopt" and self.phase == 1:
                    self._switch_to_sgd()
                else:
                    stop_reason = f"no better val {sel} for {_count(cfg.patience, 'epoch')}"
                    break
            t0 = time.perf_counter()
            train_loss = self.train_one_epoch()
            self.recalibrate_bn()  # before validation, so what is validated and saved is what the weights do
            val = self.evaluate(self.data.val)
            if not (math.isfinite(train_loss) and math.isfinite(val["loss"])):  # the reduced values: every rank
                raise Diverged(f"the epoch's mean training loss is {train_loss}, val loss {val['loss']}")
            if (tensor := _first_non_finite(self.eval_model())) is not None:  # e.g. a BatchNorm variance overflowed
                raise Diverged(f"{tensor!r} of the model is no longer finite")
            self.epoch += 1
            row = dict(
                epoch=self.epoch,
                phase=self.phase,
                lr=self.optimizer.param_groups[0]["lr"],
                train_loss=train_loss,
                **{f"val_{k}": v for k, v in val.items()},
                epoch_s=time.perf_counter() - t0,
                time_s=time.perf_counter() - start,
            )
            self.history.append(row)
            self._log_scalars(row)
            improved = self._improved(val[sel])
            if improved:
                self.best, self.best_epoch, self.bad_epochs = val[sel], self.epoch, 0
            else:
                self.bad_epochs += 1
            self.log(
                f"epoch {self.epoch:3d}/{self.total_epochs} phase {self.phase} train_loss {train_loss:.4f} "
                f"val_loss {val['loss']:.4f} val_{sel} {val[sel]:.2f}{' *' if improved else ''} "
                f"({row['epoch_s']:.1f}s)"
            )
            if self.ctx.is_main:
                state = self.state_dict()
                written = [ckpt.TRAIN_STATE, "summary.csv", "curves.png", *_model_files("last")]
                written += [*_model_files("best"), *(["best_state.pt"] if cfg.recipe == "dualopt" else [])]
                ckpt.record_outputs(run_dir, written)  # before writing: the manifest never misses a file
                if improved:
                    self._save_model(run_dir / "best")
                    if cfg.recipe == "dualopt":
                        ckpt.save_train_state(run_dir / "best_state.pt", state)
                self._save_model(run_dir / "last")
                ckpt.save_train_state(run_dir / ckpt.TRAIN_STATE, state)
                ckpt.write_summary(run_dir / "summary.csv", self.history)
                self._plot(run_dir)
            barrier()
        return self._finish(run_dir, time.perf_counter() - start, stop_reason)

    def _plot(self, run_dir: Path) -> None:
        cfg = self.cfg
        title = f"{cfg.model}{_args_text(cfg.model_args)} on {self.info.name}, seed {cfg.seed} ({run_dir.name})"
        plot_curves(
            self.history, run_dir / "curves.png", self.task.select_metric, title=title, best_epoch=self.best_epoch
        )

    def _finish(self, run_dir: Path, wall: float, stop_reason: str) -> dict[str, Any]:
        """Evaluate the best-on-val weights once on the test split (unless ``--skip-test``) and write
        ``results.json``."""
        from wavemixer.hub import from_pretrained

        best = from_pretrained(run_dir / "best") if self.ctx.is_main else None
        state = broadcast_object(clean_state_dict(best.state_dict()) if best is not None else None)
        self.eval_model().load_state_dict(state)
        test = self.evaluate(self.data.test) if self.data.test is not None and not self.cfg.skip_test else None
        best_row = self.history[self.best_epoch - 1]
        results = dict(
            model=self.cfg.model, dataset=self.info.name, seed=self.cfg.seed,
            params=sum(p.numel() for p in self.model.parameters()), epochs=self.epoch, steps=self.global_step,
            best_epoch=self.best_epoch,
            stop_reason=stop_reason, best_val={k[4:]: v for k, v in best_row.items() if k.startswith("val_")},
            test=test, wall_time_s=round(wall, 1), world_size=self.ctx.world_size, device=str(self.device),
            cpu=cpu_description(), torch=torch.__version__, rank_checksums=_gather_checksums(self.model, self.ctx),
            **_peak_memory(self.device),
        )  # fmt: skip
        if self.ctx.is_main:
            ckpt.record_outputs(run_dir, ["results.json"])
            ckpt.write_json(run_dir / "results.json", results)
        sel = self.task.select_metric
        msg = f"best val {sel} {self.best:.2f} (epoch {self.best_epoch})"
        if test is not None:
            msg += f"; test {self.task.result_text(test)}"
        if self.ctx.is_main:  # the result line, --quiet or not
            logger.info(f"{msg}; {wall:.1f}s; run folder {run_dir}")
            if self._echo:
                print(f"{msg}; {wall:.1f}s; run folder {run_dir}", file=self.out, flush=True)
        if self.tensorboard is not None:
            self.tensorboard.close()
        return results


def _first_non_finite(model: nn.Module) -> str | None:
    """The name of the model's first parameter or buffer holding NaN or infinity (``None`` when all are
    finite): losses can stay finite while a statistic overflows, and such weights would be saved as best."""
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def _count(n: int, noun: str) -> str:
    """``1 epoch``, ``25 epochs``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _args_text(model_args: dict[str, Any]) -> str:
    return f" [{', '.join(f'{k}={v}' for k, v in model_args.items())}]" if model_args else ""


def _peak_memory(device: torch.device) -> dict[str, Any]:
    """The run's peak memory: CUDA allocator peak on a GPU, else the process's peak resident set (data included)."""
    if device.type == "cuda":
        return dict(peak_memory_mb=round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                    peak_memory_kind="cuda max_memory_allocated")  # fmt: skip
    try:
        import resource
    except ImportError:  # not on POSIX
        return {}
    per_mb = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss is bytes on macOS, KiB on Linux
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / per_mb
    return dict(peak_memory_mb=round(peak, 1), peak_memory_kind="process peak RSS")


def _gather_checksums(model: nn.Module, ctx: DistContext) -> list[float]:
    """A weight checksum per rank: DDP keeps replicas identical, so these must all be equal."""
    total = sum(float(p.detach().double().abs().sum()) for p in model.parameters())
    if not ctx.distributed:
        return [total]
    import torch.distributed as dist

    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, total)
    return [float(v) for v in out]


def _model_files(folder: str) -> list[str]:
    from wavemixer.hub import CONFIG_NAME, WEIGHTS_NAME

    return [f"{folder}/{CONFIG_NAME}", f"{folder}/{WEIGHTS_NAME}"]


def _default_run_dir(cfg: TrainConfig) -> Path:
    return Path("runs") / f"{cfg.dataset}-{cfg.model or 'auto'}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(cfg: TrainConfig, *, out: Any = None, explicit: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Run (or, with ``cfg.resume``, continue) a training run. Returns the results, or ``None`` when
    ``--stop-after-steps`` stopped it early.

    The run folder is claimed for the whole run: a second run into the same folder is refused, never allowed
    to replace this one's files. An OS fault while saving (disk full, file-size limit, read-only folder) stops
    the run with one line; what was saved before stays complete and ``--resume`` continues from it.
    """
    ctx = setup_distributed(cfg.device)
    trainer: Trainer | None = None
    try:
        with contextlib.ExitStack() as claims:
            if cfg.resume:
                check_resume_flags(cfg)
                run_dir = Path(cfg.resume)
                state = ckpt.load_train_state(run_dir / ckpt.TRAIN_STATE)
                _on_main(ctx, lambda: claims.enter_context(ckpt.own_run_dir(run_dir, force=False, resume=True)))
                if ctx.is_main:
                    ckpt.clean_run_dir(run_dir)  # temporaries of a save that was cut short
                cfg = resumed_config(run_dir, state["config"], cfg, explicit)
                trainer = Trainer(resolve_config(cfg), ctx=ctx, out=out)
                trainer.load_state_dict(state)
                trainer.run_dir = run_dir
                trainer.log(f"resuming {run_dir} after epoch {trainer.epoch} (step {trainer.global_step})")
            else:
                cfg = resolve_config(cfg)
                run_dir = Path(cfg.output) if cfg.output else _default_run_dir(cfg)
                run_dir = Path(broadcast_object(str(run_dir)))
                _on_main(ctx, lambda: claims.enter_context(ckpt.own_run_dir(run_dir, force=cfg.force)))
                trainer = Trainer(cfg, ctx=ctx, out=out)  # a bad model or data set leaves no empty folder behind
            try:
                if ctx.is_main and not cfg.resume:
                    import yaml

                    resolved = {**trainer.cfg.to_dict(), "output": str(run_dir)}
                    ckpt.record_outputs(run_dir, ["config.yaml"])
                    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
                results = trainer.fit(run_dir)
            except Diverged as exc:
                last = (
                    f"the last good epoch ({trainer.epoch}) is kept in {run_dir}" if trainer.epoch else "nothing saved"
                )
                raise Diverged(
                    f"training diverged: {exc.args[0]} (epoch {trainer.epoch + 1}, --lr {trainer.cfg.lr}); stopped, "
                    f"{last}; lower --lr or set --clip-grad"
                ) from None
            except Interrupted as exc:
                steps = _count(exc.args[0], "step")
                then = (
                    f"continue with --resume {run_dir}"
                    if (run_dir / ckpt.TRAIN_STATE).is_file()
                    else f"nothing saved yet (a checkpoint is written at the end of each epoch); start again with "
                    f"--output {run_dir} --force"
                )
                trainer.log(f"stopped after {steps} (--stop-after-steps); {then}")
                results = None
            except OSError as exc:
                if exc.errno is None:  # already one line of ours
                    raise
                raise OutputError(f"training stopped: {describe_os_error(exc)}; {resumable(run_dir)}") from exc
            barrier()  # no rank tears the process group down while another still writes or prints
            return results
    finally:
        # DDP's reducer holds the process group: release it while the interpreter is fully alive, or the
        # backend's threads are torn down during interpreter finalisation (an intermittent SIGABRT under gloo)
        trainer = None
        cleanup_distributed()


def _on_main(ctx: DistContext, action: Any) -> None:
    """Run ``action`` on the main rank; an error there stops every rank with the same one-line error (an
    occupied or claimed run folder as ``ValueError``, as ``train`` has always reported it)."""
    error: Exception | None = None
    if ctx.is_main:
        try:
            action()
        except FileExistsError as exc:
            error = ValueError(str(exc))
        except (OSError, ValueError) as exc:
            error = exc
    error = broadcast_object(error)
    if error is not None:
        raise error
