"""Image classification: data sets and their defaults, models, cross-entropy, top-1/top-5, eval reports, labels.

Data: the built-in sets (:mod:`wavemixer.data.builtin`) or an image folder / zip / manifest
(:mod:`wavemixer.data.scan`), whose unset options are derived from the data (:mod:`wavemixer.data.defaults`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from wavemixer import constants
from wavemixer.data.builtin import EMNIST_SPLITS, default_data_dir, load_builtin
from wavemixer.data.bundle import DataBundle, DataInfo
from wavemixer.data.datasets import ArrayDataset
from wavemixer.data.defaults import decode_once, derive_defaults, image_statistics
from wavemixer.data.images import UnreadableImage, image_features, load_image, settle_unreadable
from wavemixer.data.manifest import MANIFEST_SUFFIXES
from wavemixer.data.scan import folder_splits, scan_summary
from wavemixer.data.splits import TEST_SPLIT_SEED, hold_out
from wavemixer.data.transforms import Preprocess

from .base import PredictOptions, Task

if TYPE_CHECKING:
    from wavemixer.loading import LoadedModel
    from wavemixer.registry import ModelSpec

__all__ = ["DATASETS", "ClassificationTask", "input_z", "predict_files"]

#: predictions below this top-1 probability are flagged "low confidence"
LOW_CONFIDENCE = 0.5


def _small(model: str, mean_std: dict[str, Any], hflip: bool = False) -> dict[str, Any]:
    """Defaults of a 28×28 grayscale set."""
    return dict(model=model, epochs=20, crop_padding=2, hflip=hflip, trivial_augment=False, **mean_std)


#: per-data-set defaults: model, epochs, normalisation, augmentation (crop padding, flip, TrivialAugmentWide)
DATASETS: dict[str, dict[str, Any]] = {
    "digits": dict(model="wavemix_lite_32_7_cifar10_tiny", epochs=25, crop_padding=1, hflip=False,
                   trivial_augment=False, **constants.DIGITS_MEAN_STD),
    "mnist": _small("wavemix_lite_8_10_mnist", constants.MNIST_MEAN_STD),
    "fashion_mnist": _small("wavemix_lite_8_5_fmnist", constants.FASHION_MNIST_MEAN_STD, hflip=True),
    "kmnist": _small("wavemix_lite_8_10_mnist", constants.KMNIST_MEAN_STD),
    **{f"emnist_{s}": _small("wavemix_lite_8_10_mnist", constants.EMNIST_MEAN_STD) for s in EMNIST_SPLITS},
    "cifar10": dict(model="wavemix_lite_64_6_cifar10", epochs=100, crop_padding=4, hflip=True, trivial_augment=True,
                    **constants.CIFAR10_MEAN_STD),
    "cifar100": dict(model="wavemix_lite_256_7_cifar100", epochs=100, crop_padding=4, hflip=True,
                     trivial_augment=True, **constants.CIFAR100_MEAN_STD),
    "svhn": dict(model="wavemix_lite_64_6_cifar10", epochs=30, crop_padding=2, hflip=False, trivial_augment=False,
                 **constants.SVHN_MEAN_STD),
    # image folders: model, epochs, augmentation and normalisation are derived from the data (derive_defaults)
    "imagefolder": dict(model=None, epochs=None, crop_padding=None, hflip=None, trivial_augment=None, mean=None,
                        std=None),
}  # fmt: skip
#: torchvision sets that may also come as an image folder, zip or manifest (``--data-dir``)
_ALSO_AS_FOLDERS = ("cifar10", "cifar100", "svhn")


class ClassificationTask(Task):
    """Cross-entropy (label smoothing, MixUp/CutMix), top-1/top-5 accuracy (torchmetrics); best = val top-1."""

    name = "classification"
    select_metric = "top1"
    report_metrics = ("top1", "top5")
    datasets = DATASETS
    aliases = {"fmnist": "fashion_mnist", "fashionmnist": "fashion_mnist", "cifar_10": "cifar10",
               "cifar-10": "cifar10", "cifar_100": "cifar100", "cifar-100": "cifar100", "folder": "imagefolder",
               "image_folder": "imagefolder", "emnist": "emnist_balanced"}  # fmt: skip
    eval_reports = ("metrics.json", "per_class.csv", "confusion_matrix.png")

    def check_config(self) -> None:
        """Every option applies to classification."""

    # ------------------------------------------------------------------------------------------------ data
    def load_data(self) -> DataBundle:
        """The val split is held out from the training split with ``--seed`` unless the data set has one; image
        folders without a test split get one carved with a fixed seed (``--test-fraction``)."""
        cfg = self.cfg
        name = self.canonical_dataset(cfg.dataset)
        defaults = self.datasets[name]
        if name == "digits" and cfg.data_dir and not cfg.resume:  # a saved run resumes as it trained
            raise ValueError(
                f"--data-dir {cfg.data_dir} does not apply to --dataset digits (embedded in the package); to train "
                "on those images give --dataset imagefolder (or the data set they are)"
            )
        data_dir = Path(cfg.data_dir).expanduser() if cfg.data_dir else default_data_dir()
        notes: list[str] = []
        folder = name == "imagefolder" or (
            name in _ALSO_AS_FOLDERS
            and cfg.data_dir
            and (data_dir.suffix.lower() in (".zip", *MANIFEST_SUFFIXES) or (data_dir / "train").is_dir())
        )
        scan = None
        if folder:
            if name == "imagefolder" and not cfg.data_dir:
                raise ValueError(
                    "--dataset imagefolder needs --data-dir: a folder of <class>/<image> or train/<class>/<image>, "
                    "a .zip of one, or a .csv/.json manifest of path,label"
                )
            splits, scan = folder_splits(data_dir, skip_corrupt=cfg.skip_corrupt, input_size=cfg.input_size)
            notes += scan.notes
            labels, in_chans, size = scan.classes, 1 if scan.color_mode == "L" else 3, scan.size
            train, val, test = splits["train"], splits.get("val"), splits.get("test")
            if test is None and cfg.test_fraction:
                train, test = hold_out(train, cfg.test_fraction, TEST_SPLIT_SEED, "--test-fraction")
                notes.append(
                    f"no test split in the data: held out {len(test):,} images ({cfg.test_fraction:g}, fixed seed, "
                    "the same for every --seed) as test"
                )
        else:
            xtr, ytr, xte, yte, labels = load_builtin(name, data_dir, cfg.download)
            train, val, test = ArrayDataset(xtr, ytr), None, ArrayDataset(xte, yte)
            in_chans = xtr.shape[1]
            size = (cfg.input_size, cfg.input_size) if cfg.input_size else tuple(xtr.shape[-2:])
        train, val, test = self.split(train, val, test)
        if len(present := set(train.targets)) < 2:  # the whole folder's check passes a set too small to split
            raise ValueError(
                f"the training split holds {len(train)} image(s) of {len(present)} class after the val and test "
                "splits; classification needs at least 2 classes: add images, or lower --val-fraction / "
                "--test-fraction"
            )
        in_memory = scan is None or decode_once(
            cfg.decode_once, scan, [d for d in (train, val, test) if d is not None], notes
        )
        derived: dict[str, Any] = {}
        if name == "imagefolder" and scan is not None:
            derived, size, rule_notes = derive_defaults(cfg, scan, len(train))
            notes += rule_notes
        stats = image_statistics(train, (int(size[0]), int(size[1])))
        if defaults.get("mean") is None:  # normalisation from the data's own statistics, stored with the run
            mean, std = stats["mean"], stats["std"]
            notes.append(
                f"chose normalisation mean {list(mean)} std {list(std)} because they are this training data's own"
            )
        else:
            mean, std = (tuple(defaults[k]) if len(defaults[k]) == in_chans else tuple(defaults[k][:1]) * in_chans
                         for k in ("mean", "std"))  # fmt: skip
        info = DataInfo(name, len(labels), list(labels), int(in_chans), (int(size[0]), int(size[1])), mean, std)
        info.input_stats = stats["input_stats"]
        aug = {k: derived.get(k, getattr(cfg, k)) for k in ("crop_padding", "hflip", "trivial_augment")}
        train.transform = Preprocess(
            mean,
            std,
            info.input_size,
            train=True,
            crop_padding=aug["crop_padding"] or 0,
            hflip=bool(aug["hflip"]),
            trivial_augment=bool(aug["trivial_augment"]),
            rand_augment_magnitude=cfg.rand_augment_magnitude if cfg.rand_augment else None,
        )
        for split in (val, test):
            if split is not None:
                split.transform = Preprocess(mean, std, info.input_size)
        if scan is not None:
            counts = {k: len(d) for k, d in (("train", train), ("val", val), ("test", test)) if d is not None}
            notes.insert(0, scan_summary(scan, counts))
        return DataBundle(train, val, test, info, in_memory, notes, derived)

    # ----------------------------------------------------------------------------------------------- model
    def model_arguments(self, spec: ModelSpec, info: DataInfo, model_args: dict[str, Any]) -> dict[str, Any]:
        overrides = dict(model_args)
        for key, value in (("num_classes", info.num_classes), ("in_chans", info.in_chans)):
            if spec.kwargs.get(key, {"num_classes": 1000, "in_chans": 3}[key]) != value:
                overrides.setdefault(key, value)
        return overrides

    # -------------------------------------------------------------------------------------------- training
    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return nn.functional.cross_entropy(outputs.float(), targets, label_smoothing=self.cfg.label_smoothing)

    def batch_transform(self, info: DataInfo) -> Any:
        """MixUp and/or CutMix on training batches (torchvision v2; one of the two per batch when both)."""
        cfg = self.cfg
        if not (cfg.mixup or cfg.cutmix):
            return None
        from torchvision.transforms import v2

        mixers = []
        if cfg.mixup:
            mixers.append(v2.MixUp(alpha=cfg.mixup, num_classes=info.num_classes))
        if cfg.cutmix:
            mixers.append(v2.CutMix(alpha=cfg.cutmix, num_classes=info.num_classes))
        return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)

    # --------------------------------------------------------------------------------------------- metrics
    def make_metrics(self, info: DataInfo, device: torch.device, *, detailed: bool = False) -> Any:
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

        n = info.num_classes
        metrics: dict[str, Any] = {"top1": MulticlassAccuracy(n, top_k=1, average="micro")}
        if n > 5:  # with 5 classes or fewer every image is in the top 5: no information
            metrics["top5"] = MulticlassAccuracy(n, top_k=5, average="micro")
        if detailed:
            metrics.update(per_class=MulticlassAccuracy(n, average=None), confusion=MulticlassConfusionMatrix(n))
        return MetricCollection(metrics).to(device)

    def update_metrics(self, metrics: Any, outputs: Tensor, targets: Tensor) -> None:
        metrics.update(outputs.float(), targets)

    def compute_metrics(self, metrics: Any) -> dict[str, Any]:
        """``top1``, ``top5`` (percent); detailed: ``per_class`` accuracies and the ``confusion`` matrix."""
        values = metrics.compute()
        out: dict[str, Any] = {k: 100.0 * float(values[k]) for k in ("top1", "top5") if k in values}
        if "per_class" in values:
            out.update(per_class=(100 * values["per_class"]).tolist(), confusion=values["confusion"].cpu())
        return out

    # ------------------------------------------------------------------------------ saving and evaluating
    def preprocessing(self, info: DataInfo) -> dict[str, Any]:
        return dict(
            mean=list(info.mean),
            std=list(info.std),
            input_size=[info.in_chans, *info.input_size],
            color_mode=info.color_mode,
            resize="bilinear-antialias",
            **({"input_stats": info.input_stats} if info.input_stats else {}),
        )

    def check_model_fits(self, loaded: LoadedModel, info: DataInfo) -> None:
        chans = int(loaded.preprocessing["input_size"][0])
        if info.in_chans != chans:
            raise ValueError(f"the model takes {chans}-channel images but {info.name} has {info.in_chans}")
        if info.num_classes != len(loaded.labels):
            raise ValueError(f"the model predicts {len(loaded.labels)} classes but {info.name} has {info.num_classes}")

    def evaluation_transform(self, preprocessing: dict[str, Any]) -> Preprocess:
        p = preprocessing
        return Preprocess(p["mean"], p["std"], p["input_size"][1:])

    def eval_result(self, loaded: LoadedModel, values: dict[str, Any]) -> dict[str, Any]:
        top5 = {"top5": values["top5"]} if "top5" in values else {}
        return dict(top1=values["top1"], **top5, labels=list(loaded.labels),
                    per_class=dict(zip(loaded.labels, values["per_class"])),
                    confusion_matrix=values["confusion"].tolist())  # fmt: skip

    def eval_summary(self, loaded: LoadedModel, result: dict[str, Any]) -> list[str]:
        top5 = f"  top-5 {result['top5']:.2f}%" if "top5" in result else ""
        worst = sorted((acc, lab) for lab, acc in result["per_class"].items())[:3]
        return [
            f"{loaded.name} on {result['dataset']} {result['split']} ({result['images']:,} images): "
            f"top-1 {result['top1']:.2f}%{top5}",
            "lowest per-class accuracy: " + ", ".join(f"{lab} {acc:.1f}%" for acc, lab in worst),
        ]

    def write_eval_reports(self, loaded: LoadedModel, result: dict[str, Any], out_dir: Path) -> None:
        """``per_class.csv`` and ``confusion_matrix.png``."""
        from wavemixer.files import atomic_write_text
        from wavemixer.train.plots import plot_confusion_matrix

        confusion = torch.tensor(result["confusion_matrix"])
        table = io.StringIO()
        w = csv.writer(table)
        w.writerow(["class", "label", "images", "accuracy"])
        for i, (lab, acc) in enumerate(result["per_class"].items()):
            w.writerow([i, lab, int(confusion[i].sum()), f"{acc:.2f}"])
        atomic_write_text(out_dir / "per_class.csv", table.getvalue())
        title = f"{loaded.name} on {result['dataset']} {result['split']} (top-1 {result['top1']:.2f}%)"
        plot_confusion_matrix(confusion.numpy(), loaded.labels, out_dir / "confusion_matrix.png", title=title)

    # ------------------------------------------------------------------------------------------ predicting
    def predict(self, loaded: LoadedModel, files: list[Path], options: PredictOptions) -> list[dict[str, Any]]:
        rows = predict_files(loaded, files, batch_size=options.batch_size, top_k=options.top_k,
                             device=options.device, skipped=options.skipped)  # fmt: skip
        options.note_skipped()
        if not loaded.preprocessing.get("input_stats"):
            options.notes.append(
                f"note: input_z is empty: {loaded.source} stores no statistics of its training images (weights saved "
                "before wavemixer recorded them, packaged or converted weights), so inputs unlike them are not flagged"
            )
        return rows

    def predictions_text(self, loaded: LoadedModel, records: list[dict[str, Any]], fmt: str) -> str:
        """CSV (``file,label,index,probability,input_z,flag``) or JSON with the top-k."""
        from wavemixer.files import strict_json

        if fmt == "json":
            return strict_json(dict(model=loaded.name, source=loaded.source, predictions=records))
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "label", "index", "probability", "input_z", "flag"])
        for r in records:
            z = "" if r["input_z"] is None else f"{r['input_z']:g}"
            w.writerow([r["file"], r["label"], r["index"], f"{r['probability']:.6f}", z, r["flag"]])
        return buf.getvalue()


#: input batches are cut to about this many bytes, whatever --batch-size asks (large input sizes)
_BATCH_BYTES = 2**30


@torch.no_grad()
def predict_files(
    loaded: LoadedModel,
    files: list[Path],
    *,
    batch_size: int = 256,
    top_k: int | None = None,
    device: str | torch.device = "cpu",
    skipped: list[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Label, probability and top-k for each image, with the checkpoint's own preprocessing.

    ``flag`` warns of answers not to trust: an input whose statistics lie far from the training images'
    (``input_z``: the largest z-score of its per-channel mean/std against those stored at training time), or
    a top-1 probability under :data:`LOW_CONFIDENCE`. ``top_k`` defaults to 5, or every class of a model with
    fewer; more than the model's classes is refused rather than cut. Unreadable files raise one ``ValueError``
    naming them all, before anything is returned; given a ``skipped`` list, they are left out and listed there
    instead as ``(file, reason)``.
    """
    model = loaded.model.to(device).eval()
    p = loaded.preprocessing
    tf = Preprocess(p["mean"], p["std"], p["input_size"][1:])
    size = tuple(loaded.preprocessing["input_size"][1:])
    stats = loaded.preprocessing.get("input_stats")
    classes = len(loaded.labels)
    if top_k is not None and not 1 <= top_k <= classes:
        raise ValueError(f"--top-k (top_k) must be 1 to {classes}, the model's classes; got {top_k}")
    k = min(5, classes) if top_k is None else top_k
    per_image = 4 * math.prod(loaded.preprocessing["input_size"])
    batch_size = max(1, min(batch_size, _BATCH_BYTES // per_image))
    rows: list[dict[str, Any]] = []
    unreadable: list[tuple[str, str]] = []
    for start in range(0, len(files), batch_size):
        chunk, images = [], []
        for f in files[start : start + batch_size]:
            try:
                images.append(load_image(f, loaded.color_mode))
                chunk.append(f)
            except UnreadableImage as exc:
                unreadable.append((os.fspath(f), exc.reason))
        if not chunk or (unreadable and skipped is None):
            continue  # only reading on, to name every unreadable file at once
        x = torch.stack([tf(img) for img in images]).to(device)
        probs = model(x).float().softmax(-1).cpu()
        top_p, top_i = probs.topk(k, dim=-1)
        for f, img, p, i in zip(chunk, images, top_p.tolist(), top_i.tolist()):
            z = input_z(img, size, stats)
            rows.append(
                dict(
                    file=os.fspath(f),
                    label=loaded.labels[i[0]],
                    index=i[0],
                    probability=p[0],
                    input_z=z,
                    flag=_flag(z, p[0], stats),
                    top_k=[dict(label=loaded.labels[j], probability=q) for j, q in zip(i, p)],
                )
            )
    settle_unreadable(unreadable, len(files), skipped)
    return rows


def input_z(img: torch.Tensor, size: tuple[int, ...], stats: dict[str, Any] | None) -> float | None:
    """How far the image's statistics lie from the training images' (largest |z|), or None if not stored."""
    if not stats:
        return None
    if tuple(img.shape[-2:]) != tuple(size):
        from torchvision.transforms.v2 import functional as TF

        img = TF.resize(img, list(size), antialias=True)
    mu, sigma = torch.tensor(stats["mu"], dtype=torch.float64), torch.tensor(stats["sigma"], dtype=torch.float64)
    return round(float(((image_features(img) - mu) / sigma).abs().max()), 2)


def _flag(z: float | None, probability: float, stats: dict[str, Any] | None) -> str:
    if z is not None and stats and z > stats["z_threshold"]:
        return f"unlike the training images (input z {z:g} > {stats['z_threshold']:g})"
    if probability < LOW_CONFIDENCE:
        return f"low confidence (p < {LOW_CONFIDENCE:g})"
    return ""
