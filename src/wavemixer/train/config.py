"""Training configuration: one dataclass, exposed on the command line and in YAML files.

Every field is a command-line option (``--batch-size``) and a YAML key (``batch_size``). Precedence, as in
timm's ``train.py``: built-in defaults < per-dataset defaults < ``--config`` file < explicit flags.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavemixer.checks import DEVICE_PATTERN, MAX_INPUT_SIDE, Range

from .config_checks import check_option, flag, validate_config

__all__ = ["TrainConfig", "add_config_arguments", "config_from_args", "default_lr", "load_yaml"]


def _opt(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    pattern: str | None = None,
    pattern_help: str | None = None,
    **argparse_kwargs: Any,
) -> Any:
    """A config field: its help, its valid range (checked by :mod:`.config_checks`) and extra argparse options."""
    meta: dict[str, Any] = dict(help=help, **argparse_kwargs)
    if (ge, gt, le, lt) != (None, None, None, None):
        meta["range"] = Range(ge=ge, gt=gt, le=le, lt=lt)
    if pattern is not None:
        meta.update(pattern=pattern, pattern_help=pattern_help or pattern)
    return field(default=default, metadata=meta)


_VALIDATION_KEYS = ("range", "pattern", "pattern_help")
_MAX_RATE = 1e4  # learning rates and weight decay: far above any that trains, far below float32's overflow


@dataclass
class TrainConfig:
    """All options of ``wavemixer train``. ``None`` means "use the data set's default"."""

    # task
    task: str = _opt(
        "classification",
        "what to train: classification, segmentation (camvid, cityscapes, segfolder) "
        "or super_resolution (hrfolder, div2k, camvid frames); any task registered in wavemixer.tasks",
    )
    init_from: str | None = _opt(
        None,
        "initialise the encoder (stem + blocks) from a classification model: a saved "
        "model folder, run folder, checkpoint.pt or .safetensors file",
    )
    # data
    dataset: str = _opt(
        "digits",
        "data set: digits (embedded, offline), mnist, fashion_mnist, emnist_<split>, "
        "kmnist, cifar10, cifar100, svhn, imagefolder (a folder or .zip of <class>/<image> or "
        "train/ [val/] [test/] <class>/<image>, or a .csv/.json manifest of path,label)",
    )
    data_dir: str | None = _opt(
        None,
        "where the data set lives (torchvision root, or the image folder / zip / manifest); "
        "default ~/.cache/wavemixer/data",
    )
    download: bool = _opt(False, "download torchvision data sets into --data-dir if missing")
    val_fraction: float = _opt(
        0.1,
        "fraction of the training split held out for model selection and early "
        "stopping (ignored when the data set has its own val split)",
        gt=0,
        lt=1,
    )
    test_fraction: float = _opt(
        0.1,
        "image folders without a test split: fraction held out as test, with a fixed seed (the same for every "
        "--seed); 0 = no test split",
        ge=0,
        lt=1,
    )
    skip_test: bool = _opt(
        False,
        "leave the test split unevaluated: tuning runs choose a setting on val, and only the chosen model is tested",
    )
    skip_corrupt: bool = _opt(False, "image folders: train without the unreadable images the up-front scan reports")
    subset: int | None = _opt(
        None,
        "use a random N training and N//4 val/test images (fixed by --seed): quick experiments and tests",
        ge=1,
    )
    per_class: int | None = _opt(
        None,
        "classification: train on N images of every class (a class-balanced subset fixed by --seed); the val "
        "split is carved class-balanced from the remaining training images (--val-fraction of the two together), "
        "the test split is whole",
        ge=1,
    )
    input_size: int | None = _opt(
        None, "resize images to this square size (default: the data set's native size)", ge=1, le=MAX_INPUT_SIDE
    )
    crop_padding: int | None = _opt(None, "random-crop augmentation: pad by this many pixels then crop (0 = off)", ge=0)
    hflip: bool | None = _opt(None, "random horizontal flip augmentation")
    trivial_augment: bool | None = _opt(None, "TrivialAugmentWide augmentation (as in the reference recipes)")
    rand_augment: bool = _opt(False, "RandAugment augmentation (torchvision.transforms.v2.RandAugment, 2 ops)")
    rand_augment_magnitude: int = _opt(9, "RandAugment magnitude (0-30)", ge=0, le=30)
    mixup: float = _opt(0.0, "MixUp alpha (torchvision.transforms.v2.MixUp) on training batches; 0 = off", ge=0)
    cutmix: float = _opt(
        0.0, "CutMix alpha (torchvision.transforms.v2.CutMix); with --mixup, one of the two per batch", ge=0
    )
    workers: int | None = _opt(None, "data-loader worker processes per rank (default: 0 for in-memory data sets)", ge=0)
    decode_once: bool | None = _opt(
        None,
        "image folders: decode every image once into memory before training instead of at every access "
        "(default: when the decoded images take at most 2 GiB)",
    )
    # model
    model: str | None = _opt(
        None,
        "registry model name (see `wavemixer models`), or peer:FAMILY for a library baseline at a parameter budget "
        "(`wavemixer models --peers`); default depends on --dataset",
    )
    model_args: dict[str, Any] = field(
        default_factory=dict, metadata=dict(help="override a constructor argument, e.g. dropout=0.1 (repeatable)")
    )
    # optimisation
    epochs: int | None = _opt(None, "maximum number of epochs (default depends on --dataset)", ge=1)
    max_steps: int | None = _opt(
        None,
        "stop after this many optimizer steps in all, the schedule spanning them (the last epoch may be partial): "
        "a compute budget finer than whole epochs",
        ge=1,
    )
    batch_size: int = _opt(128, "global batch size (split over ranks and accumulation steps)", ge=1)
    eval_batch_size: int = _opt(512, "batch size for validation and test", ge=1)
    grad_accum: int = _opt(1, "gradient-accumulation steps per optimizer step", ge=1)
    recipe: str = _opt(
        "standard",
        "standard: one optimizer with warm-up + schedule; dualopt: the reference's "
        "two phases (AdamW until --patience epochs without a better val metric, then SGD from "
        "the best checkpoint)",
        choices=["standard", "dualopt"],
    )
    opt: str = _opt("adamw", "optimizer of the standard recipe", choices=["adamw", "sgd"])
    # the upper bounds keep lr x weight decay within float32: beyond, the optimizer step overflows
    lr: float | None = _opt(
        None,
        "peak learning rate (default 2e-3 for adamw, 0.05 for sgd, 1e-3 for dualopt; image folders with no "
        "--model, adamw and the standard recipe: 1e-2, the rate the contest tuned the default model to)",
        gt=0,
        le=_MAX_RATE,
    )
    weight_decay: float = _opt(0.01, "decoupled weight decay (AdamW) / L2 (SGD)", ge=0, le=_MAX_RATE)
    momentum: float = _opt(0.9, "SGD momentum", ge=0, lt=1)
    sched: str = _opt("cosine", "learning-rate schedule per step", choices=["cosine", "constant"])
    warmup_epochs: float = _opt(1.0, "linear warm-up length in epochs", ge=0)
    min_lr_ratio: float = _opt(0.01, "cosine schedule floor as a fraction of --lr", ge=0, le=1)
    patience: int | None = _opt(
        None,
        "stop after this many epochs without a better val metric (standard: default off; dualopt: default 5 per phase)",
        ge=1,
    )
    sgd_lr: float = _opt(1e-3, "dualopt phase-2 SGD learning rate", gt=0, le=_MAX_RATE)
    label_smoothing: float = _opt(0.0, "cross-entropy label smoothing", ge=0, lt=1)
    clip_grad: float | None = _opt(None, "clip the gradient norm to this value", gt=0)
    # speed / precision
    amp: str = _opt(
        "auto",
        "mixed precision: auto (bf16 where the device runs it natively: CUDA with bf16, CPUs with AVX512_BF16 or "
        "AMX; fp32 elsewhere), none, bf16, or fp16 (GPU, with a GradScaler)",
        choices=["auto", "none", "bf16", "fp16"],
    )
    channels_last: bool = _opt(False, "channels-last memory format")
    compile: bool = _opt(False, "torch.compile the model")
    grad_checkpointing: bool = _opt(False, "recompute block activations in the backward pass to save memory")
    memory_efficient: bool = _opt(
        False, "keep fewer activations (recompute the MLPs, rebuild BatchNorm inputs): same gradients, less memory"
    )
    bn_recalibrate: int = _opt(
        50,
        "precise BatchNorm: before each validation and save, recompute BatchNorm statistics over this many "
        "training batches (0 = off; keeps short runs' reported accuracy honest)",
        ge=0,
    )
    ema: bool = _opt(False, "keep an exponential moving average of the weights and evaluate/save it")
    ema_decay: float = _opt(0.999, "EMA decay per optimizer step", ge=0, lt=1)
    ema_warmup: bool = _opt(
        False, "warm the EMA decay up as 1 - (1 + step)^(-2/3), capped at --ema-decay (timm ModelEmaV3)"
    )
    sync_bn: bool = _opt(False, "synchronise BatchNorm statistics across ranks (distributed runs)")
    threads: int | None = _opt(None, "torch CPU threads per rank (default: torch's choice)", ge=1)
    device: str = _opt(
        "auto", "auto, cpu, cuda, cuda:N, mps", pattern=DEVICE_PATTERN, pattern_help="auto, cpu, cuda, cuda:N, xpu, mps"
    )
    # run folder
    output: str | None = _opt(
        None, "run folder (default runs/<dataset>-<model>-<time>); never overwritten without --force"
    )
    force: bool = _opt(False, "overwrite an existing run folder")
    resume: str | None = _opt(None, "continue the interrupted run in this folder exactly where it stopped")
    seed: int = _opt(0, "random seed (data split, initialisation, shuffling, augmentation)", ge=0, le=2**32 - 1)
    log_interval: int = _opt(50, "optimizer steps between log lines (non-interactive output)", ge=0)
    log: str = _opt(
        "none",
        "also log the summary.csv scalars to tensorboard (event files in <run folder>/tensorboard; "
        "needs the tensorboard extra)",
        choices=["none", "tensorboard"],
    )
    stop_after_steps: int | None = _opt(
        None,
        "simulate an interruption: exit after this many optimizer steps (the run can then be continued with --resume)",
        ge=1,
    )
    quiet: bool = _opt(False, "only print the final result")

    def __post_init__(self) -> None:
        validate_config(self)  # every field typed and range-checked from its declaration
        from wavemixer.tasks import TASKS

        if self.task not in TASKS:  # the registry, not a fixed list: a task module may add itself
            raise ValueError(f"--task must be one of {', '.join(TASKS)}; got {self.task!r}")
        for name in ("init_from", "data_dir", "output", "resume"):  # "" would mean the current folder, or the default
            if isinstance(getattr(self, name), str) and not getattr(self, name).strip():
                raise ValueError(f"{flag(name)} must name a path, got {getattr(self, name)!r}")
        self._check_recipe_options()

    def _check_recipe_options(self) -> None:
        """An option the chosen recipe never reads would be recorded in config.yaml as if it had been used."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        only = ("sgd_lr",) if self.recipe == "standard" else ("opt", "sched", "warmup_epochs", "min_lr_ratio")
        unused = [flag(name) for name in only if getattr(self, name) != defaults[name]]
        if unused:
            other = "dualopt" if self.recipe == "standard" else "standard"
            raise ValueError(
                f"{', '.join(unused)} {'applies' if len(unused) == 1 else 'apply'} only to --recipe {other}; "
                f"--recipe {self.recipe} never reads {'it' if len(unused) == 1 else 'them'} (drop "
                f"{'it' if len(unused) == 1 else 'them'}, or choose --recipe {other})"
            )

    def to_dict(self) -> dict[str, Any]:
        """The options as plain data (``config.yaml`` and checkpoints)."""
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _parse_model_arg(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not key.strip() or not sep:
        raise argparse.ArgumentTypeError(f"--model-arg takes key=value, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`TrainConfig` field; defaults are ``SUPPRESS`` so only explicit flags override."""
    parser.add_argument("--config", metavar="YAML", help="YAML file of options (keys as in the run's config.yaml)")
    for name, f in _FIELDS.items():
        flag = "--" + name.replace("_", "-")
        meta = {k: v for k, v in f.metadata.items() if k not in _VALIDATION_KEYS}
        help_text = meta.pop("help")
        default = f.default if f.default is not dataclasses.MISSING else None  # type: ignore[misc]
        notes = [f"default: {default}"] if default is not None and default is not False else []
        notes += [f.metadata["range"].describe()] if "range" in f.metadata else []
        shown = f" ({'; '.join(notes)})" if notes else ""
        common = dict(dest=name, default=argparse.SUPPRESS, help=help_text + shown, **meta)
        if name == "model_args":
            parser.add_argument(
                "--model-arg",
                type=_parse_model_arg,
                action="append",
                metavar="KEY=VALUE",
                **{k: v for k, v in common.items() if k != "help"},
                help=help_text,
            )
        elif str(f.type).startswith("bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        else:
            # values stay text here: TrainConfig converts and range-checks them with one message format
            parser.add_argument(flag, metavar=name.upper() if "choices" not in meta else None, **common)


def default_lr(cfg: TrainConfig) -> float:
    """The peak learning rate when ``--lr`` is not given: the recipe's and the optimizer's usual one."""
    return 1e-3 if cfg.recipe == "dualopt" else (2e-3 if cfg.opt == "adamw" else 0.05)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Options from a YAML mapping; unknown keys are an error (they are usually typos)."""
    from wavemixer.files import read_yaml

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--config {path} is a folder; give a YAML file of option: value")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of option: value")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {unknown}; see `wavemixer train --help`")
    return {key: check_option(_FIELDS[key], value, f"{path}: {key}") for key, value in data.items()}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then the ``--config`` file, then the flags given on the command line."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(load_yaml(args.config))
    for name in _FIELDS:
        if hasattr(args, name):
            value = getattr(args, name)
            if name == "model_args":
                value = {**values.get("model_args", {}), **dict(value)}
            values[name] = value
    return TrainConfig(**values)
