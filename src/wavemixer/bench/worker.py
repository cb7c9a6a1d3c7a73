"""Measure one model in one fresh process: ``python worker.py '<json job>'``.

This file is run by path, also by interpreters that do not have ``wavemixer`` installed (the reference
package's own virtual environment), so it imports only the standard library and ``torch`` at module
level. One process per (model, mode) keeps peak-memory numbers independent of what ran before.

The result is printed as one line ``WAVEMIXER_BENCH_RESULT <json>``. Exit status 3 means out of memory
(the runner retries with a smaller batch).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

RESULT_TAG = "WAVEMIXER_BENCH_RESULT"
EXIT_OOM = 3


# -- memory -----------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Linux >= 4.0 resets the VmHWM high-water mark when '5' is written to clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _exact_malloc() -> bool:
    """Make glibc return freed memory at once, so that RSS follows live tensors (memory phase only).

    glibc's default raises its mmap threshold after large frees and keeps the memory in the heap; that
    is good for speed (timing runs with it) but makes RSS a high-water mark of the heap, not of tensors.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 64 * 1024)
        libc.mallopt(m_trim_threshold, 128 * 1024)
        libc.malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def _persistent_mb(module, optimizer) -> float:
    """Bytes of parameters, buffers and optimizer state (what stays allocated between steps)."""
    import torch

    seen: set[int] = set()
    total = 0

    def add(t) -> None:
        nonlocal total
        if isinstance(t, torch.Tensor) and t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()

    for t in list(module.parameters()) + list(module.buffers()):
        add(t)
    if optimizer is not None:
        for state in optimizer.state.values():
            for t in state.values():
                add(t)
    return total / 2**20


def _allocator_peak_mb(step) -> float | None:
    """Peak of live CPU tensor bytes during ``step()``, above what was live before it (MiB).

    The CPU analogue of ``torch.cuda.max_memory_allocated``: every allocation and free of PyTorch's CPU
    allocator, as the profiler records them, summed in time order. Unlike RSS it does not depend on how
    glibc keeps freed pages, so two models that hold the same tensors read the same. Memory allocated
    outside the profiler's view (ONNX Runtime; inductor-compiled code) is not seen: callers use RSS there,
    and None is returned if nothing was seen at all.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    live = peak = allocated = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        delta = event.self_cpu_memory_usage
        live += delta
        peak = max(peak, live)
        allocated += max(delta, 0)
    return peak / 2**20 if allocated else None


def _rss_mb() -> float:
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- model construction -----------------------------------------------------------------------------
def build_model(job: dict[str, Any]) -> nn.Module:
    """The model named by ``job['source']`` / ``job['name']`` / ``job['kwargs']``."""
    source, kwargs = job["source"], dict(job.get("kwargs") or {})
    if source == "wavemixer":
        from wavemixer.registry import MODEL_CLASSES

        return MODEL_CLASSES[job["task"]](**kwargs)
    if source == "reference":
        if job["task"] == "classification":
            from wavemix.classification import WaveMix
        elif job["task"] == "segmentation":
            from wavemix.SemSegment import WaveMix
        else:
            from wavemix.sisr import WaveMix
        return WaveMix(**kwargs)
    if source == "timm":
        import timm

        try:
            return timm.create_model(job["name"], pretrained=False, img_size=job["input_size"][-1], **kwargs)
        except TypeError:
            return timm.create_model(job["name"], pretrained=False, **kwargs)
    if source == "torchvision":
        import torchvision

        return torchvision.models.get_model(job["name"], weights=None, **kwargs)
    if source == "peer":
        from wavemixer.bench.peers import PeerSpec

        return PeerSpec(**kwargs).build()
    raise ValueError(f"unknown model source {source!r}")


def _loss_fn(job: dict[str, Any], out, batch: int, device):
    """A synthetic target of the task's kind (timm benchmark convention)."""
    import torch
    import torch.nn.functional as F

    out = out.float()
    if job["task"] == "classification":
        target = torch.randint(0, out.shape[1], (batch,), device=device)
        return F.cross_entropy(out, target)
    if job["task"] == "segmentation":
        target = torch.randint(0, out.shape[1], (batch, *out.shape[-2:]), device=device)
        return F.cross_entropy(out, target)
    return F.l1_loss(out, torch.zeros_like(out))


def _count_macs(model, x) -> int | None:
    """MACs of one forward pass as ``torch.utils.flop_counter`` counts them (FLOPs / 2).

    Counted on a meta-device copy where the model allows it: that costs no memory, and it counts the
    architecture's ops rather than how a device executes them (our CPU bilinear upsampling runs as small
    matrix products, which the counter would otherwise add as MACs). Models that cannot run on the meta
    device (the reference builds its DWT filters on a real device) are counted where they are.
    """
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    for device in ("meta", None):
        counter = FlopCounterMode(display=False)
        try:
            target = copy.deepcopy(model).to(device) if device else model
            with counter, torch.no_grad():
                target(x.to(device) if device else x)
        except Exception:  # a model the counter cannot trace still gets timed
            continue
        return counter.get_total_flops() // 2
    return None


def _onnxruntime_step(model, x, job: dict[str, Any]):
    """The eval-time path through ONNX Runtime: BN-folded fp32 export, all graph optimisations."""
    import tempfile

    import onnxruntime as ort

    from wavemixer.optimize import export_onnx

    path = export_onnx(model, os.path.join(tempfile.mkdtemp(), "model.onnx"), job["input_size"], batch_size=len(x))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(job.get("threads") or 0)
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False  # per-run allocations, so the step's RSS growth shows its activations
    cuda = x.device.type == "cuda"
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    session = ort.InferenceSession(path, options, providers=providers)
    inputs = {"input": x.detach().cpu().numpy()}
    return lambda: session.run(None, inputs)


# -- measurement ------------------------------------------------------------------------------------
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc)
    return "out of memory" in text.lower() or "can't allocate memory" in text.lower()


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Time and measure the memory of one model in this process as ``job`` says; returns one result record."""
    import torch

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    torch.manual_seed(int(job.get("seed", 0)))
    device = torch.device(job.get("device", "cpu"))
    mode, precision, batch = job["mode"], job["precision"], int(job["batch_size"])
    channels_last = bool(job.get("channels_last"))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    model = build_model(job).to(device)
    result: dict[str, Any] = dict(
        params=sum(p.numel() for p in model.parameters()),
        torch_version=torch.__version__,
        python=platform.python_version(),
        threads=torch.get_num_threads(),
    )
    x = torch.randn(batch, *job["input_size"], device=device).contiguous(memory_format=fmt)
    if job.get("count_macs"):
        model.eval()
        result["macs"] = _count_macs(model, x[:1])
        if job["source"] == "wavemixer":
            from wavemixer.flops import count_dwt_flops

            result["dwt_flops"] = count_dwt_flops(model, job["input_size"])
    model = model.to(memory_format=fmt)
    if job.get("grad_checkpointing"):
        model.set_grad_checkpointing(True)
    if job.get("memory_efficient"):
        model.set_memory_efficient(True)

    optimizer = None
    if mode == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        runner = model
        if job.get("compile"):
            runner = torch.compile(model)

        def step() -> None:
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                loss = _loss_fn(job, runner(x), batch, device)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        context = torch.enable_grad
    else:
        model.eval()
        runner = model
        autocast_on = amp_dtype is not None
        if job.get("optimize"):
            from wavemixer.optimize import optimize_for_inference

            runner = optimize_for_inference(
                model, channels_last=channels_last, dtype=amp_dtype, compile=bool(job.get("compile"))
            )
            if amp_dtype is not None:  # the eval-time path casts weights once instead of autocasting each call
                x = x.to(amp_dtype)
                autocast_on = False
        elif job.get("compile"):
            runner = torch.compile(model)

        if job.get("onnx"):
            step = _onnxruntime_step(model, x, job)
        else:

            def step() -> None:
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=autocast_on):
                    runner(x)

        context = torch.inference_mode

    runner_module = getattr(runner, "_orig_mod", runner)
    with context():
        for _ in range(int(job.get("warmup", 3))):
            step()
        _sync(device)
        times = []
        for _ in range(int(job.get("iters", 10))):
            start = time.perf_counter()
            step()
            _sync(device)
            times.append(time.perf_counter() - start)
        # Memory phase, after timing so that its allocator settings cannot slow the timed steps.
        gc.collect()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            mem_method = "CUDA allocator peak (max_memory_allocated)"
        else:
            exact = _exact_malloc()
            reset = _reset_peak_rss()
            rss_start = _rss_mb()
            mem_method = "persistent tensors + peak RSS growth during a step" + (
                "" if exact and reset else " (glibc heap / lifetime peak: approximate)"
            )
        for _ in range(int(job.get("mem_iters", 1))):
            step()
        _sync(device)
        # ONNX Runtime and inductor's compiled code allocate where the profiler does not see it: RSS for those
        seen_by_profiler = not (job.get("onnx") or job.get("compile"))
        alloc_mb = _allocator_peak_mb(step) if device.type == "cpu" and seen_by_profiler else None
    rss_mb = None
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        # Like the CUDA number: weights, buffers and optimizer state, plus the transient peak of a step
        # (activations, gradients, workspaces): from the allocator where it sees everything, else from RSS
        # growth with freed memory returned at once.
        persistent = _persistent_mb(runner_module, optimizer)
        rss_mb = persistent + max(0.0, _peak_rss_mb() - rss_start)
        if alloc_mb is not None:
            peak_mb, mem_method = persistent + alloc_mb, "persistent tensors + CPU allocator peak during a step"
        else:
            peak_mb = rss_mb
    result.update(
        times_ms=[t * 1e3 for t in times],
        median_ms=statistics.median(times) * 1e3,
        peak_mem_mb=peak_mb,
        rss_peak_mb=rss_mb,
        mem_method=mem_method,
        batch_size=batch,
    )
    return result


def main(argv: list[str]) -> int:
    """Entry point: run the job given as JSON in ``argv[0]``, print its record (JSON) on one tagged line."""
    job = json.loads(argv[0])
    try:
        result = measure(job)
        status = 0
    except Exception as exc:  # reported, not raised: one failing model must not end a sweep
        oom = _is_oom(exc)
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        result = dict(error=f"{type(exc).__name__}: {first_line}"[:300], oom=oom)
        if os.environ.get("WAVEMIXER_BENCH_DEBUG"):
            traceback.print_exc()
        status = EXIT_OOM if oom else 1
    print(f"{RESULT_TAG} {json.dumps(result)}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
