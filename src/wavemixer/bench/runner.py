"""Benchmark sweep: resolve model names, run one fresh worker process per measurement, aggregate.

Every wavemixer model is paired with the reference ``wavemix`` package's model of the same
configuration, run by another interpreter (the reference needs ``numpy<2``). Rounds interleave ours and
the reference, process by process, so that load from other jobs on the machine hits both alike; the
reported time is the median over all timed steps of all rounds.
"""

from __future__ import annotations

import ast
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .worker import EXIT_OOM, RESULT_TAG

__all__ = [
    "BenchEntry",
    "BenchSettings",
    "aggregate",
    "default_reference_python",
    "ensure_reference_python",
    "reference_kwargs",
    "resolve_models",
    "run_sweep",
]

WORKER = Path(__file__).with_name("worker.py")
REFERENCE_REQUIREMENTS = ("wavemix==0.2.4", "numpy<2")
VARIANTS = ("opt", "ckpt", "lowmem", "ckpt+lowmem", "onnx", "compile")
"""Extra rows for wavemixer models: ``opt`` = eval-time path (inference only), ``ckpt`` = gradient
checkpointing, ``lowmem`` = ``set_memory_efficient()``, ``ckpt+lowmem`` = both (training only),
``onnx`` = ONNX Runtime on the BN-folded export (fp32 inference), ``compile`` = ``torch.compile``."""


@dataclass
class BenchEntry:
    """One row group of the report: a model built from ``source`` in a worker process."""

    label: str
    source: str  # wavemixer | reference | timm | torchvision | peer
    task: str
    name: str
    kwargs: dict[str, Any]
    input_size: tuple[int, int, int]
    group: str  # our model this row compares with (ratios are taken within a group)
    variant: str = ""


@dataclass
class BenchSettings:
    """How a sweep measures: batch, modes, precisions, layout, device, and warm-up/timed iterations per round."""

    batch_size: int = 32
    modes: tuple[str, ...] = ("infer", "train")
    precisions: tuple[str, ...] = ("fp32",)
    channels_last: bool = False
    device: str = "cpu"
    warmup: int = 2
    iters: int = 5
    rounds: int = 2
    threads: int | None = None
    reference_python: str | None = None
    timeout_s: float = 1800.0
    extra_env: dict[str, str] = field(default_factory=dict)


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _split_overrides(name: str) -> tuple[str, dict[str, Any]]:
    """``name:k=v,k=v`` -> (name, {k: v})."""
    if ":" not in name:
        return name, {}
    base, _, rest = name.partition(":")
    if base == "peer":  # train's peer:FAMILY is not a model name here
        raise ValueError(f"{name!r}: bench measures the peers with --suite peers (--families to choose them)")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"model override {item!r} in {name!r} is not key=value")
        overrides[key.strip()] = _parse_value(value.strip())
    return base, overrides


def _norm(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def reference_kwargs(task: str, config: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of the reference ``wavemix`` model equal to our ``config``.

    Raises ValueError when the reference cannot build it (other upsamplers, boundary modes, input
    channels, ...): the round trip through :func:`wavemixer.reference.reference_kwargs_to_config`
    must give back ``config``.
    """
    from wavemixer.reference import REFERENCE_DEFAULTS, reference_kwargs_to_config

    if task not in REFERENCE_DEFAULTS:
        raise ValueError(f"the reference package has no {task} model")
    candidate = {k: config[k] for k in REFERENCE_DEFAULTS[task] if k in config}
    if candidate.get("ff_channel") is None:
        candidate["ff_channel"] = config["final_dim"]
    if task == "classification":
        candidate["initial_conv"] = "strided" if config.get("stem") == "strided" else "pachify"
    back = reference_kwargs_to_config(task, **candidate)
    ours = {**config, "ff_channel": candidate["ff_channel"]}
    fixed = dict(in_chans=3, upsample="convtranspose", mode="zero", global_pool="avg", drop_rate=0.0,
                 bicubic_residual=False, mixer="dwt", wavelet="haar")  # fmt: skip
    mismatch = [k for k, v in back.items() if k in ours and _norm(ours[k]) != _norm(v) and k != "stem"]
    mismatch += [k for k, v in fixed.items() if k in ours and ours[k] not in (v, None)]
    if task == "classification" and back["stem"] != ours.get("stem", "patchify"):
        mismatch.append("stem")
    if task == "super_resolution":  # the reference SR model is x2 with one C/2 decoder stage
        if ours.get("scale") != 2:
            mismatch.append("scale")
        if _norm(ours.get("decoder_dims") or (config["final_dim"] // 2,)) != (config["final_dim"] // 2,):
            mismatch.append("decoder_dims")
    if mismatch:
        raise ValueError(f"the reference package cannot build this configuration (differs in {sorted(mismatch)})")
    return candidate


def _check_library_model(prefix: str, name: str, raw: str) -> None:
    """A ``timm:``/``tv:`` name the library knows, checked before any worker starts (a typo failed only after
    the sweep had started and written its results folder)."""
    if prefix == "timm":
        from timm.models import is_model

        known = is_model(name)  # with or without a pretrained tag (resnet18.a1_in1k)
    else:
        import torchvision.models as tvm

        known = name.lower() in tvm.list_models()  # get_model lower-cases the name too
    if not known:
        library = "timm (timm.list_models())" if prefix == "timm" else "torchvision.models.list_models()"
        raise ValueError(f"{raw}: {name!r} is not a model of {library}")


def resolve_models(
    names: Sequence[str], *, img_size: int | None = None, reference: bool = True, variants: Sequence[str] = ()
) -> list[BenchEntry]:
    """Turn command-line names into entries; each of ours is followed by its reference and variants.

    Names: a registry name (optionally ``name:key=value,...`` overrides), ``ref:<name>`` (the reference
    model only), ``timm:<name>`` or ``tv:<name>`` (baselines, ``num_classes`` etc. as overrides).
    """
    from wavemixer.registry import get_spec

    entries: list[BenchEntry] = []
    for raw in names:
        prefix, _, rest = raw.partition(":") if raw.split(":", 1)[0] in ("ref", "timm", "tv") else ("", "", raw)
        name, overrides = _split_overrides(rest)
        if prefix in ("timm", "tv"):
            _check_library_model(prefix, name, raw)
            size = img_size or 224
            classes = overrides.pop("num_classes", 1000)
            entries.append(
                BenchEntry(
                    raw,
                    "timm" if prefix == "timm" else "torchvision",
                    "classification",
                    name,
                    {"num_classes": classes, **overrides},
                    (3, size, size),
                    raw,
                )
            )
            continue
        spec = get_spec(name)
        config = {**spec.build(**overrides).config} if overrides else None
        if config is None:
            config = dict(spec.build().config)
        size = (spec.input_size[0], img_size, img_size) if img_size else tuple(spec.input_size)
        ours = BenchEntry(raw if prefix == "" else name, "wavemixer", spec.task, name, config, size, rest)  # type: ignore[arg-type]
        if prefix != "ref":
            entries.append(ours)
        if reference or prefix == "ref":
            try:
                ref_kwargs = reference_kwargs(spec.task, config)
            except ValueError as exc:
                if prefix == "ref":
                    raise ValueError(f"{raw}: {exc}") from None
                print(f"note: {rest}: no reference equivalent ({exc})", file=sys.stderr)
            else:
                entries.append(BenchEntry(f"reference {rest}", "reference", spec.task, name, ref_kwargs, size, rest))  # type: ignore[arg-type]
        if prefix != "ref":
            for variant in variants:
                if variant not in VARIANTS:
                    raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
                entries.append(BenchEntry(f"{rest} [{variant}]", "wavemixer", spec.task, name, config, size, rest,  # type: ignore[arg-type]
                                          variant))  # fmt: skip
    return entries


# -- reference interpreter --------------------------------------------------------------------------
#: disk use of the created reference environment (torch with its CUDA wheels, wavemix 0.2.4, numpy<2)
REFERENCE_ENV_SIZE = "about 5.5 GB"


def default_reference_python() -> Path:
    """``$WAVEMIXER_REFERENCE_PYTHON`` or the cached venv ``~/.cache/wavemixer/reference-venv``."""
    env = os.environ.get("WAVEMIXER_REFERENCE_PYTHON")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "wavemixer" / "reference-venv" / "bin" / "python"


def ensure_reference_python(python: str | os.PathLike | None, *, create: bool = True) -> Path:
    """An interpreter that imports ``wavemix`` and ``torch``; creates the default venv when allowed."""
    path = Path(python) if python else default_reference_python()
    check = [str(path), "-c", "import torch, wavemix"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    if path.exists() and subprocess.run(check, capture_output=True, env=env).returncode == 0:
        return path
    if not python and not create:
        raise FileNotFoundError(
            f"the reference package's environment {path.parent.parent} is not set up: pass "
            f"--create-reference-env to create it ({REFERENCE_ENV_SIZE}, several minutes, needs PyPI), "
            "--reference-python PYTHON for one that imports wavemix, or --no-reference"
        )
    if python:
        raise FileNotFoundError(
            f"{path} cannot import the reference package; install it there with "
            f"`pip install torch wavemix==0.2.4 'numpy<2'`, or pass --no-reference"
        )
    import torch

    venv = path.parent.parent
    print(
        f"creating the reference environment in {venv} (torch {torch.__version__}, wavemix 0.2.4; "
        f"{REFERENCE_ENV_SIZE})",
        file=sys.stderr,
    )
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    torch_req = f"torch=={torch.__version__.split('+')[0]}"
    subprocess.run([str(path), "-m", "pip", "install", "-q", torch_req, *REFERENCE_REQUIREMENTS], check=True)
    return path


# -- running ----------------------------------------------------------------------------------------
def _job(entry: BenchEntry, settings: BenchSettings, mode: str, precision: str, batch: int) -> dict[str, Any]:
    return dict(
        source=entry.source, task=entry.task, name=entry.name, kwargs=entry.kwargs, input_size=list(entry.input_size),
        batch_size=batch, mode=mode, precision=precision, channels_last=settings.channels_last,
        device=settings.device, warmup=settings.warmup, iters=settings.iters, threads=settings.threads,
        optimize=entry.variant == "opt", grad_checkpointing=entry.variant in ("ckpt", "ckpt+lowmem"),
        compile=entry.variant == "compile", memory_efficient=entry.variant in ("lowmem", "ckpt+lowmem"),
        onnx=entry.variant == "onnx",
    )  # fmt: skip


def run_job(job: dict[str, Any], python: str, *, env: dict[str, str], timeout_s: float) -> tuple[int, dict[str, Any]]:
    """Run one worker; returns (exit status, result dict)."""
    try:
        proc = subprocess.run(
            [python, str(WORKER), json.dumps(job)], capture_output=True, text=True, env=env, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return 1, dict(error=f"timed out after {timeout_s:.0f} s")
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return proc.returncode, json.loads(line[len(RESULT_TAG) :])
    if proc.returncode in (-9, 137):  # killed, most likely by the kernel's OOM killer
        return EXIT_OOM, dict(error="killed (out of memory)", oom=True)
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return proc.returncode or 1, dict(error=f"worker failed: {tail}"[:300])


def _worker_env(settings: BenchSettings, python: str) -> dict[str, str]:
    env = {**os.environ, **settings.extra_env}
    if settings.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the reference pins its DWT to cuda:0 whenever it sees a GPU
    src = str(Path(__file__).resolve().parents[2])
    if python == sys.executable:  # our interpreter must import this very checkout of wavemixer
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def run_sweep(
    entries: Sequence[BenchEntry],
    settings: BenchSettings,
    *,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Measure every entry × mode × precision ``settings.rounds`` times; returns raw per-process records.

    Out of memory (exception or OOM kill) retries that job with half the batch, down to 1.
    """
    ours_python = sys.executable
    ref_python = settings.reference_python or ours_python
    records: list[dict[str, Any]] = []
    batch_for: dict[tuple[str, str, str], int] = {}
    macs_done: set[str] = set()
    for round_index in range(settings.rounds):
        for entry in entries:
            python = ref_python if entry.source == "reference" else ours_python
            env = _worker_env(settings, python)
            for mode in settings.modes:
                train_only = entry.variant in ("ckpt", "lowmem", "ckpt+lowmem")
                infer_only = entry.variant in ("opt", "onnx")
                if (infer_only and mode == "train") or (train_only and mode == "infer"):
                    continue
                for precision in settings.precisions:
                    if entry.variant == "onnx" and precision != "fp32":
                        continue  # the exported graph is fp32
                    key = (entry.label, mode, precision)
                    batch = batch_for.get(key, settings.batch_size)
                    while True:
                        job = _job(entry, settings, mode, precision, batch)
                        first_mode = mode == "infer" or "infer" not in settings.modes  # a train-only sweep counts too
                        job["count_macs"] = entry.label not in macs_done and first_mode and entry.variant == ""
                        status, result = run_job(job, python, env=env, timeout_s=settings.timeout_s)
                        if status == EXIT_OOM and batch > 1:
                            log(f"  {entry.label} {mode} {precision}: out of memory at batch {batch}, retrying")
                            batch //= 2
                            continue
                        break
                    batch_for[key] = batch
                    if job["count_macs"] and "error" not in result:
                        macs_done.add(entry.label)
                    record = dict(label=entry.label, group=entry.group, source=entry.source, variant=entry.variant,
                                  mode=mode, precision=precision, round=round_index, batch_size=batch,
                                  input_size="x".join(map(str, entry.input_size)))  # fmt: skip
                    record.update(result)
                    records.append(record)
                    shown = (
                        f"{result['median_ms']:.1f} ms, {result['peak_mem_mb']:.0f} MB"
                        if "median_ms" in result
                        else result.get("error")
                    )
                    log(
                        f"[{round_index + 1}/{settings.rounds}] {entry.label:48s} {mode:5s} {precision:4s} "
                        f"b{batch}: {shown}"
                    )
    return records


def aggregate(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (label, mode, precision): medians over rounds and steps, spread, ratios to the reference."""
    keys: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for rec in records:
        keys.setdefault((rec["label"], rec["mode"], rec["precision"]), []).append(rec)
    static: dict[str, dict[str, Any]] = {}
    for rec in records:
        for k in ("params", "macs", "dwt_flops"):
            if rec.get(k) is not None:
                static.setdefault(rec["label"], {})[k] = rec[k]
    rows = []
    for (label, mode, precision), recs in keys.items():
        ok = [r for r in recs if "median_ms" in r]
        first = recs[0]
        row: dict[str, Any] = dict(
            model=label, group=first["group"], source=first["source"], variant=first["variant"], mode=mode,
            precision=precision, input_size=first["input_size"], batch_size=(ok or recs)[-1]["batch_size"],
            params_m=None, macs=None, gmacs=None, dwt_mflops=None, ms_median=None, ms_p25=None, ms_p75=None,
            samples_per_s=None, peak_mem_mb=None, rss_peak_mb=None, runs=len(ok), error="",
        )  # fmt: skip
        info = static.get(label, {})
        if "params" in info:
            row["params"] = info["params"]
            row["params_m"] = round(info["params"] / 1e6, 3)
        if info.get("macs") is not None:
            row["macs"] = info["macs"]  # exact: the rounded GMACs lose tiny models' differences
            row["gmacs"] = round(info["macs"] / 1e9, 4)
        if info.get("dwt_flops") is not None:
            row["dwt_mflops"] = round(info["dwt_flops"] / 1e6, 3)
        if ok:
            times = sorted(t for r in ok for t in r["times_ms"])
            q = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else [times[0]] * 3
            row.update(
                ms_median=round(statistics.median(times), 2), ms_p25=round(q[0], 2), ms_p75=round(q[2], 2),
                peak_mem_mb=round(statistics.median(r["peak_mem_mb"] for r in ok), 1),
                rss_peak_mb=_median_or_none([r.get("rss_peak_mb") for r in ok]),
                torch_version=ok[0].get("torch_version"), threads=ok[0].get("threads"),
                mem_method=ok[0].get("mem_method"),
            )  # fmt: skip
            row["samples_per_s"] = round(row["batch_size"] * 1000 / row["ms_median"], 2)
        else:
            row["error"] = first.get("error", "")
        rows.append(row)
    by_key = {(r["source"], r["group"], r["mode"], r["precision"]): r for r in rows if r["source"] == "reference"}
    for row in rows:
        ref = by_key.get(("reference", row["group"], row["mode"], row["precision"]))
        ref32 = by_key.get(("reference", row["group"], row["mode"], "fp32"))
        row["ms_ratio_vs_ref"] = _ratio(row, ref, "ms_median")
        row["mem_ratio_vs_ref"] = _ratio(row, ref, "peak_mem_mb")
        row["ms_ratio_vs_ref_fp32"] = _ratio(row, ref32, "ms_median")
        row["mem_ratio_vs_ref_fp32"] = _ratio(row, ref32, "peak_mem_mb")
    return rows


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def _ratio(row: dict[str, Any], ref: dict[str, Any] | None, key: str) -> float | None:
    if row["source"] == "reference" or ref is None or not ref.get(key) or row.get(key) is None:
        return None
    if ref["batch_size"] != row["batch_size"]:  # per-sample ratio when an OOM retry changed a batch
        return round((row[key] / row["batch_size"]) / (ref[key] / ref["batch_size"]), 3)
    return round(row[key] / ref[key], 3)


def machine_description(device: str) -> str:
    """CPU model and core count, or the GPU name, for the report and the results folder."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    from wavemixer.cpu import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} logical CPUs"
