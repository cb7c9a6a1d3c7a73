"""The task interface: everything of training, evaluation and prediction that depends on what is predicted.

The engine (:mod:`wavemixer.train.engine`), ``wavemixer eval`` and ``wavemixer predict`` know nothing about
labels, masks or pixels: they call these methods only. A task knows nothing about the loop, precision,
distribution or run folders. A new task is one module with a subclass of :class:`Task`, registered with
:func:`wavemixer.tasks.register_task`; see docs/architecture.md.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from wavemixer.data.bundle import DataBundle, DataInfo
from wavemixer.data.splits import SplittableDataset, make_splits, split_hash

if TYPE_CHECKING:
    from wavemixer.loading import LoadedModel
    from wavemixer.registry import ModelSpec
    from wavemixer.train.config import TrainConfig

__all__ = ["PredictOptions", "Task", "image_outputs"]


@dataclass
class PredictOptions:
    """What ``wavemixer predict`` asks of a task's :meth:`Task.predict`."""

    device: str | torch.device = "cpu"
    batch_size: int = 256
    top_k: int | None = None  # None: 5, or every class of a model with fewer
    out_dir: Path | None = None  # tasks that write images write them here
    from_hr: bool = False  # super-resolution: the inputs are ground truth to downscale first
    #: unreadable inputs to leave out as ``(file, reason)``; ``None``: refuse them in one error
    skipped: list[tuple[str, str]] | None = None
    #: lines for standard error, added by the task (skipped files, missing statistics)
    notes: list[str] = field(default_factory=list)

    def note_skipped(self) -> None:
        """Add the note naming the unreadable inputs left out (``--skip-corrupt``), if any were."""
        if self.skipped:
            from wavemixer.data.images import list_unreadable

            self.notes.append(
                f"skipped {len(self.skipped)} unreadable image(s) (--skip-corrupt): {list_unreadable(self.skipped)}"
            )


class Task(ABC):
    """The task-specific half of training, evaluation and prediction, set up for one configuration."""

    #: ``--task`` name, also recorded in every saved model
    name: ClassVar[str]
    #: the kind of registry model it trains (``wavemixer models``); ``None``: the task's own name
    model_task: ClassVar[str | None] = None
    #: metric (a key of :meth:`compute_metrics`) whose val value selects the best checkpoint
    select_metric: ClassVar[str]
    #: ``"max"`` or ``"min"``: which direction of ``select_metric`` is better
    select_mode: ClassVar[str] = "max"
    #: metrics the final result line shows, the selecting one first
    report_metrics: ClassVar[tuple[str, ...]] = ()
    #: data set name -> its defaults (``model``, ``epochs``, ``crop_padding``, ``hflip``, ``trivial_augment``;
    #: ``None``: decided from the data when it is read)
    datasets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: the keys of a data set's defaults that fill training options left unset (the rest, e.g. normalisation
    #: statistics, are the task's own to apply when it reads the data)
    config_defaults: ClassVar[tuple[str, ...]] = ("model", "epochs", "crop_padding", "hflip", "trivial_augment")
    #: other spellings of data set names
    aliases: ClassVar[dict[str, str]] = {}
    #: appended to the unknown-data-set error
    dataset_hint: ClassVar[str] = ""
    #: files ``wavemixer eval`` writes into its report folder
    eval_reports: ClassVar[tuple[str, ...]] = ("metrics.json",)
    #: evaluation batches are capped at this many images (large outputs); ``None``: no cap
    max_eval_batch: ClassVar[int | None] = None
    #: ``predict`` writes image files into ``--output-dir`` (else it only returns records)
    predicts_images: ClassVar[bool] = False

    def __init__(self, cfg: TrainConfig | None = None) -> None:
        from wavemixer.train.config import TrainConfig

        self.cfg = cfg if cfg is not None else TrainConfig(task=self.name)

    # ------------------------------------------------------------------------------- data sets and defaults
    @classmethod
    def canonical_dataset(cls, name: str) -> str:
        """The :attr:`datasets` key of a user-typed data set name (case, ``-`` vs ``_`` and aliases forgiven)."""
        key = name.lower().replace("-", "_")
        key = cls.aliases.get(name.lower(), cls.aliases.get(key, key))
        if key not in cls.datasets:
            from wavemixer.registry import did_you_mean

            what = "data set" if cls.name == "classification" else f"{cls.name.replace('_', '-')} data set"
            raise ValueError(
                f"unknown {what} {name!r}{did_you_mean(key, cls.datasets)}; choose one of "
                f"{', '.join(cls.datasets)}{cls.dataset_hint}"
            )
        return key

    @classmethod
    def dataset_defaults(cls, name: str) -> tuple[str, dict[str, Any]]:
        """The canonical data set name and its defaults."""
        key = cls.canonical_dataset(name)
        return key, dict(cls.datasets[key])

    def check_config(self) -> None:
        """Refuse options that do not apply to this task, in one line, before anything is built."""
        cfg = self.cfg
        if cfg.mixup or cfg.cutmix or cfg.rand_augment:
            raise ValueError(f"--mixup, --cutmix and --rand-augment apply to classification, not --task {self.name}")
        if cfg.per_class is not None:
            raise ValueError(f"--per-class applies to classification, not --task {self.name}; use --subset")

    def build_data(self) -> DataBundle:
        """Train/val/test of the configured data set, each split fingerprinted (see :meth:`load_data`)."""
        self.check_config()
        data = self.load_data()
        splits = (("train", data.train), ("val", data.val), ("test", data.test))
        data.split_hashes = {k: split_hash(d) for k, d in splits if d is not None}
        return data

    @abstractmethod
    def load_data(self) -> DataBundle:
        """Read the data set, split it with :meth:`split` and attach the transforms."""

    def split(
        self, train: SplittableDataset, val: SplittableDataset | None, test: SplittableDataset | None
    ) -> tuple[SplittableDataset, SplittableDataset, SplittableDataset | None]:
        """Train/val/test from a source's own splits by the configuration's val fraction, seed, ``--subset``
        and ``--per-class``: the one splitting rule of every task (:func:`wavemixer.data.splits.make_splits`)."""
        cfg = self.cfg
        return make_splits(train, val, test, val_fraction=cfg.val_fraction, seed=cfg.seed, subset=cfg.subset,
                           per_class=cfg.per_class)  # fmt: skip

    # ------------------------------------------------------------------------------------------------ model
    def build_model(self, info: DataInfo) -> nn.Module:
        """The configured model adapted to the data: a registry model, or a comparison peer (``peer:<family>``,
        :mod:`wavemixer.bench.peers`)."""
        name, model_args = self.cfg.model, dict(self.cfg.model_args)
        if name is None:
            raise ValueError("no --model given and the data set has no default model")
        from wavemixer.bench.peers import create_peer, is_peer_name

        if is_peer_name(name):
            return create_peer(name, task=self.name, model_args=model_args, **self.peer_arguments(info))
        from wavemixer.factory import create_model
        from wavemixer.registry import get_spec

        spec = get_spec(name, task=self.model_task or self.name)
        if not self.cfg.resume:  # a saved run rebuilds as it trained, even with an argument then ignored
            _check_stem_arguments(name, spec, model_args)
        try:
            model = create_model(name, **self.model_arguments(spec, info, model_args))
        except (TypeError, ValueError) as exc:  # the constructor names the argument; the command line says where
            given = [f"{k}={v}" for k, v in model_args.items() if re.match(rf"(unknown )?{re.escape(k)}\b", str(exc))]
            origin = f" --model-arg {given[0]}" if given else ""
            raise ValueError(f"--model {name}{origin}: {exc}") from None
        patch, (h, w) = int(getattr(model, "min_input_size", 1)), info.input_size[-2:]
        if patch > min(h, w):  # said now, not by the first forward pass inside the training loop
            origin = f" --model-arg patch_size={patch}" if "patch_size" in model_args else ""
            raise ValueError(
                f"--model {name}{origin}: the patchify stem's {patch}x{patch} patch is larger than the {h}x{w} "
                f"training images; use a patch of at most {min(h, w)}"
            )
        return model

    @abstractmethod
    def model_arguments(self, spec: ModelSpec, info: DataInfo, model_args: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments of a registry model for this data: ``model_args`` plus what the data fixes."""

    def peer_arguments(self, info: DataInfo) -> dict[str, Any]:
        """What a peer model needs to know of the data (its classes, channels and square input side)."""
        return dict(num_classes=info.num_classes, in_chans=info.in_chans, img_size=info.input_size[0])

    # --------------------------------------------------------------------------------------------- training
    @abstractmethod
    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Mean training loss of a batch."""

    def batch_transform(self, info: DataInfo) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None:
        """A transform of whole training batches (MixUp/CutMix), or ``None``."""
        return None

    # -------------------------------------------------------------------------------------------- metrics
    @abstractmethod
    def make_metrics(self, info: DataInfo, device: torch.device, *, detailed: bool = False) -> Any:
        """A fresh metric state (torchmetrics objects; they synchronise across ranks in ``compute``);
        ``detailed`` adds what ``wavemixer eval`` reports beyond the scalars."""

    @abstractmethod
    def update_metrics(self, metrics: Any, outputs: Tensor, targets: Tensor) -> None:
        """Accumulate one evaluation batch."""

    @abstractmethod
    def compute_metrics(self, metrics: Any) -> dict[str, Any]:
        """Scalar metrics (same value on every rank), and the detailed ones when asked for."""

    def result_text(self, values: dict[str, Any]) -> str:
        """``top1 97.10, top5 99.80``: the :attr:`report_metrics` of an evaluation, for the result line."""
        return ", ".join(f"{k} {values[k]:.2f}" for k in self.report_metrics or (self.select_metric,) if k in values)

    # ------------------------------------------------------------------------------- saving and evaluating
    @abstractmethod
    def preprocessing(self, info: DataInfo) -> dict[str, Any]:
        """What ``predict`` needs to reproduce the evaluation input (stored with the weights)."""

    def model_settings(self, model: nn.Module) -> dict[str, Any]:
        """``model_args`` that rebuilding the data for a saved model needs (the super-resolution scale)."""
        return {}

    def check_model_fits(self, loaded: LoadedModel, info: DataInfo) -> None:
        """Refuse to evaluate a model on data it cannot predict (class count, channels), in one line."""
        n = getattr(loaded.model, "num_classes", None)
        if info.num_classes and n is not None and n != info.num_classes:
            raise ValueError(f"the model predicts {n} classes but {info.name} has {info.num_classes}")

    def evaluation_transform(self, preprocessing: dict[str, Any]) -> Any | None:
        """The transform that gives a saved model the input it was evaluated on in training (``None``: the
        data set's own)."""
        return None

    def eval_result(self, loaded: LoadedModel, values: dict[str, Any]) -> dict[str, Any]:
        """What ``metrics.json`` records of an evaluation's metric values."""
        return values

    def eval_summary(self, loaded: LoadedModel, result: dict[str, Any]) -> list[str]:
        """The lines ``wavemixer eval`` prints."""
        values = ", ".join(f"{k} {v:.4g}" for k, v in result.items() if isinstance(v, float))
        return [f"{loaded.name} on {result['dataset']} {result['split']} ({result['images']:,} images): {values}"]

    def write_eval_reports(self, loaded: LoadedModel, result: dict[str, Any], out_dir: Path) -> None:
        """Reports beyond ``metrics.json`` (listed in :attr:`eval_reports`); none by default."""
        return None

    # ------------------------------------------------------------------------------------------- predicting
    @abstractmethod
    def predict(self, loaded: LoadedModel, files: list[Path], options: PredictOptions) -> list[dict[str, Any]]:
        """One record per input image (and, for :attr:`predicts_images`, files in ``options.out_dir``)."""

    def image_names(self, loaded: LoadedModel, path: Path) -> tuple[str, ...]:
        """The files :meth:`predict` writes into ``options.out_dir`` for the input ``path`` (tasks that
        :attr:`predicts_images`), known before it runs so an output folder can be checked first and the
        manifest lists them (else ``--force`` would later refuse them as a user's files)."""
        if self.predicts_images:
            raise NotImplementedError(f"{type(self).__name__} predicts images: it must name them in image_names()")
        return ()

    def predictions_text(self, loaded: LoadedModel, records: list[dict[str, Any]], fmt: str) -> str:
        """``predict``'s output: the records as JSON (tasks with a table format override this)."""
        from wavemixer.files import strict_json

        return strict_json(dict(model=loaded.name, source=loaded.source, task=self.name, outputs=records))


def image_outputs(files: Sequence[Path], names_of: Callable[[Path], Sequence[str]]) -> list[str]:
    """Every file name that predicting ``files`` writes into the output folder. Two inputs that would write the
    same name (images of one stem in different folders) are refused: the second would replace the first."""
    owner: dict[str, Path] = {}
    for path in files:
        for name in names_of(path):
            if owner.setdefault(name, path) != path:
                raise ValueError(
                    f"inputs {owner[name]} and {path} would both be written as {name}; predict them into separate "
                    "output folders (--output-dir)"
                )
    return list(owner)


# the stem argument each stem reads; the other stem's argument would be ignored without a word
_STEM_ARGUMENTS = {"patch_size": "patchify", "stride": "strided"}


def _check_stem_arguments(name: str, spec: ModelSpec, model_args: dict[str, Any]) -> None:
    """Refuse ``--model-arg patch_size=`` on a strided stem and ``stride=`` on a patchify stem."""
    import inspect

    from wavemixer.registry import MODEL_CLASSES

    default = inspect.signature(MODEL_CLASSES[spec.task].__init__).parameters.get("stem")
    if default is None:
        return  # a model without a choice of stem (super-resolution): its constructor refuses unknown arguments
    stem = model_args.get("stem", spec.kwargs.get("stem", default.default))
    for arg, needs in _STEM_ARGUMENTS.items():
        if arg in model_args and stem != needs:
            raise ValueError(
                f"--model {name} --model-arg {arg}={model_args[arg]} applies only to stem={needs}, and this "
                f"model's stem is {stem}; add --model-arg stem={needs} or drop {arg}"
            )
