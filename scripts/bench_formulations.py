"""Cheaper-looking equivalent formulations of WaveMix's convolutions, measured inside whole training steps.

* ``bmm``: every 1x1 conv as one batched matrix multiply, ``y_b = W @ x_b + b`` (``torch.baddbmm``). A profile of
  ``wavemix_lite_32_7_cifar10_tiny`` put the backward of its 32→8 reduction conv at about 30 % of a bf16 step.
* ``phase``: every ConvTranspose2d(k4, s2, p1) as four 2x2 convolutions, one per output phase (row and column
  parity), interleaved afterwards: the same 16 taps per output pixel, so the same MACs, run by oneDNN's forward
  convolution instead of its deconvolution.

Part 1 times the 1x1 conv alone (forward + backward) at the shapes these models use. Part 2 times whole training
steps (forward, loss, backward, AdamW); the formulations alternate within one process (plain, bmm, phase, plain, ...)
so that load on the machine hits all alike. Eval-mode outputs are compared with the plain model's.

    python scripts/bench_formulations.py --out docs/bench/formulations-cpu-train-step.csv
    (part 1 goes to the same name with -op instead of -train-step)
    python scripts/bench_formulations.py --profile wavemix_192_16_tinyimagenet 16   # torch.profiler, plain vs bmm
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavemixer.bench.synthetic_step import synthetic_train_step
from wavemixer.registry import get_spec
from wavemixer.train.checkpoint import write_summary as write_csv  # atomic list-of-dicts CSV

CASES = (
    ("wavemix_lite_32_7_cifar10_tiny", 128),  # bilinear upsampling: no transposed conv
    ("wavemix_lite_144_7_cifar10", 32),
    ("wavemix_192_16_tinyimagenet", 16),
)
VARIANTS = ("plain", "bmm", "phase")
# (batch, in, out, map size) of the 1x1 convs in CASES: the C -> C/4 reduction at full resolution, the MLP's
# expansion and projection at the DWT's resolution, and the tiny model's 8- and 16-channel layers
POINTWISE_SHAPES = (
    (128, 32, 8, 32), (128, 32, 64, 16), (128, 64, 32, 16), (128, 8, 8, 28),
    (32, 144, 36, 32), (32, 144, 288, 16), (32, 288, 144, 16),
    (16, 192, 48, 64), (16, 192, 384, 32), (16, 384, 192, 32),
)  # fmt: skip


def _autocast_cast(x: Tensor, *params: Tensor) -> tuple[Tensor, ...]:
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
        return tuple(t.to(dtype) for t in (x, *params))
    return (x, *params)


def pointwise_bmm(conv: nn.Conv2d, x: Tensor) -> Tensor:
    batch, _, height, width = x.shape
    x, weight, bias = _autocast_cast(x, conv.weight.flatten(1), conv.bias)
    y = torch.baddbmm(bias[None, :, None], weight.expand(batch, -1, -1), x.flatten(2))
    return y.view(batch, -1, height, width)


# ConvTranspose2d(k4, s2, p1) along one axis: output 2m takes x[m-1]·w[3] + x[m]·w[1], output 2m+1 takes
# x[m]·w[2] + x[m+1]·w[0]; on the input padded by one, both are 2-tap windows starting at m (even) or m+1 (odd).
_PHASE_TAPS = ((3, 1), (2, 0))


def transposed_as_phases(convt: nn.ConvTranspose2d, x: Tensor) -> Tensor:
    batch, _, height, width = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    rows = []
    for a, row_taps in enumerate(_PHASE_TAPS):
        cols = []
        for b, col_taps in enumerate(_PHASE_TAPS):
            weight = convt.weight[:, :, row_taps][:, :, :, col_taps].transpose(0, 1)
            cols.append(F.conv2d(padded[:, :, a : a + height + 1, b : b + width + 1], weight))
        rows.append(torch.stack(cols, -1))  # B, C, H, W, 2 (column parity)
    y = torch.stack(rows, -3).reshape(batch, -1, 2 * height, 2 * width)  # B, C, H, 2, W, 2 -> interleaved
    return y + convt.bias.to(y.dtype)[:, None, None]


def _is_pointwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1 and m.bias is not None


def _is_k4s2p1(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.ConvTranspose2d)
        and m.kernel_size == (4, 4)
        and m.stride == (2, 2)
        and m.padding == (1, 1)
        and m.groups == 1
        and m.output_padding == (0, 0)
        and m.bias is not None
    )


_SWAPS: dict[str, tuple[Callable[[nn.Module], bool], Callable]] = {
    "bmm": (_is_pointwise, pointwise_bmm),
    "phase": (_is_k4s2p1, transposed_as_phases),
}


@contextmanager
def variant(model: nn.Module, name: str) -> Iterator[None]:
    """Inside the block, the layers that ``name`` replaces run its formulation (``plain``: none replaced)."""
    select, forward = _SWAPS.get(name, (lambda m: False, None))
    modules = [m for m in model.modules() if select(m)]
    for module in modules:
        module.forward = types.MethodType(forward, module)
    try:
        yield
    finally:
        for module in modules:
            del module.forward


def pointwise_op_ms(batch: int, c_in: int, c_out: int, size: int, precision: str, rounds: int) -> dict[str, float]:
    """Forward + backward of one 1x1 conv, conv2d and baddbmm alternating, median ms of each."""
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, c_out, 1)
    x = torch.randn(batch, c_in, size, size, requires_grad=True)
    grad = torch.randn(batch, c_out, size, size)
    forms = {"conv": lambda: conv(x), "bmm": lambda: pointwise_bmm(conv, x)}
    times: dict[str, list[float]] = {k: [] for k in forms}
    for _ in range(rounds):
        for name, form in forms.items():
            for i in range(4):
                start = time.perf_counter()
                with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                    out = form()
                out.backward(grad.to(out.dtype))
                if i:  # the first call after a switch is warm-up
                    times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def train_step_ms(name: str, batch: int, precision: str, rounds: int, iters: int) -> dict[str, float]:
    model, step = synthetic_train_step(name, batch, precision)
    result: dict[str, float] = {"transposed_convs": sum(map(_is_k4s2p1, model.modules()))}
    x = torch.randn(4, *get_spec(name).input_size)
    with torch.no_grad():
        model.eval()
        plain = model(x)
        for v in VARIANTS[1:]:
            with variant(model, v):
                result[f"{v}_diff"] = (model(x) - plain).abs().max().item()
        model.train()

    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for v in VARIANTS:
            if v == "phase" and not result["transposed_convs"]:
                continue
            with variant(model, v):
                step()  # warm-up after the switch
                for _ in range(iters):
                    start = time.perf_counter()
                    step()
                    times[v].append(time.perf_counter() - start)
    for v, ts in times.items():
        result[f"{v}_ms"] = statistics.median(ts) * 1e3 if ts else float("nan")
    return result


def profile_steps(name: str, batch: int) -> None:
    """Top ops by self CPU time over two fp32 training steps, plain and with the 1x1 convs as baddbmm."""
    from torch.profiler import ProfilerActivity, profile

    model, step = synthetic_train_step(name, batch)
    for v in ("plain", "bmm"):
        with variant(model, v):
            step()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step()
                step()
        print(f"== {name} b{batch} fp32, {v}: two training steps")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/bench/formulations-cpu-train-step.csv"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", nargs=2, metavar=("MODEL", "BATCH"), help="only profile MODEL's training step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.profile:
        profile_steps(args.profile[0], int(args.profile[1]))
        return
    op_rows = []
    for batch, c_in, c_out, size in POINTWISE_SHAPES:
        for precision in ("fp32", "bf16"):
            ms = pointwise_op_ms(batch, c_in, c_out, size, precision, args.rounds + 1)
            op_rows.append(
                dict(
                    batch=batch, c_in=c_in, c_out=c_out, size=size, precision=precision,
                    conv_ms=round(ms["conv"], 2), bmm_ms=round(ms["bmm"], 2), ratio=round(ms["bmm"] / ms["conv"], 2),
                )
            )  # fmt: skip
            print(op_rows[-1], flush=True)
    op_out = args.out.with_stem(args.out.stem.removesuffix("-train-step") + "-op")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(op_out, op_rows)
    print("\n| 1x1 conv (batch, in → out, map) | precision | conv2d ms | baddbmm ms | ratio |")
    print("|---|---|---:|---:|---:|")
    for r in op_rows:
        shape = f"b{r['batch']}, {r['c_in']} → {r['c_out']}, {r['size']}²"
        print(f"| {shape} | {r['precision']} | {r['conv_ms']} | {r['bmm_ms']} | {r['ratio']}× |")
    rows = []
    for name, batch in CASES:
        for precision in ("fp32", "bf16"):
            r = train_step_ms(name, batch, precision, args.rounds, args.iters)
            has_phase = bool(r["transposed_convs"])
            rows.append(
                dict(
                    model=name,
                    batch=batch,
                    precision=precision,
                    plain_ms=round(r["plain_ms"], 1),
                    bmm_ms=round(r["bmm_ms"], 1),
                    bmm_ratio=round(r["bmm_ms"] / r["plain_ms"], 2),
                    bmm_eval_max_abs_diff=f"{r['bmm_diff']:.1e}",
                    phase_ms=round(r["phase_ms"], 1) if has_phase else "",
                    phase_ratio=round(r["phase_ms"] / r["plain_ms"], 2) if has_phase else "",
                    phase_eval_max_abs_diff=f"{r['phase_diff']:.1e}" if has_phase else "",
                )
            )
            print(rows[-1], flush=True)
    write_csv(args.out, rows)
    print("\n| model (batch) | precision | plain ms | 1x1 as baddbmm ms (ratio) | ConvT as 4 phase convs ms (ratio) |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        phase = f"{r['phase_ms']} ({r['phase_ratio']}×)" if r["phase_ms"] != "" else "no ConvT"
        bmm = f"{r['bmm_ms']} ({r['bmm_ratio']}×)"
        print(f"| `{r['model']}` (b{r['batch']}) | {r['precision']} | {r['plain_ms']} | {bmm} | {phase} |")
    print(f"torch {torch.__version__}, {args.threads} thread(s); CSV: {args.out}")


if __name__ == "__main__":
    main()
