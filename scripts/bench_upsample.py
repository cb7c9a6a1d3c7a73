"""x2 bilinear upsampling: F.interpolate against the matrix form (``wavemixer.upsampling``).

Part 1, the op alone (forward + backward) at several map sizes: the thresholds in the module come from it.
Part 2, a whole training step (forward, loss, backward, AdamW) of the registry's bilinear models with the
matrix form switched on and off, alternating A/B within one process so that load hits both alike.
Writes two CSVs and prints markdown tables.
    python scripts/bench_upsample.py --out results/bench-upsample.csv
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from wavemixer.bench.synthetic_step import synthetic_train_step
from wavemixer.train.checkpoint import write_summary as write_csv  # atomic list-of-dicts CSV
from wavemixer.upsampling import BilinearUpsample2x, upsample_bilinear2x_matmul

SHAPES = ((128, 8, 14), (128, 32, 16), (32, 64, 32), (16, 64, 48), (16, 64, 64), (8, 64, 96), (8, 64, 128))


def interpolate(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def time_fwd_bwd(fn, x: torch.Tensor, iters: int) -> float:
    grad = torch.randn_like(interpolate(x))
    for _ in range(2):
        fn(x).backward(grad)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn(x).backward(grad)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def train_step_ms(name: str, batch: int, precision: str, rounds: int, iters: int) -> dict[str, float]:
    """Median ms per training step with the matrix form on and off, measured in alternating blocks."""
    _, step = synthetic_train_step(name, batch, precision)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for use_matmul in (True, False):
            BilinearUpsample2x.matmul_on_cpu = use_matmul
            step()  # warm-up after the switch
            for _ in range(iters):
                start = time.perf_counter()
                step()
                times[use_matmul].append(time.perf_counter() - start)
    BilinearUpsample2x.matmul_on_cpu = True
    return {"matrix_ms": statistics.median(times[True]) * 1e3, "interpolate_ms": statistics.median(times[False]) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench-upsample.csv"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=7)
    parser.add_argument("--models", nargs="*", default=["wavemix_lite_8_10_mnist", "wavemix_lite_32_7_cifar10_tiny"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for batch, channels, side in SHAPES:
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(batch, channels, side, side, dtype=dtype, requires_grad=True)
            ref_ms = time_fwd_bwd(interpolate, x, args.iters)
            mm_ms = time_fwd_bwd(upsample_bilinear2x_matmul, x, args.iters)
            rows.append(
                dict(
                    shape=f"{batch}x{channels}x{side}x{side}",
                    dtype=str(dtype).removeprefix("torch."),
                    interpolate_ms=round(ref_ms, 2),
                    matmul_ms=round(mm_ms, 2),
                    ratio=round(mm_ms / ref_ms, 2),
                )
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.out, rows)
    print("| input | dtype | F.interpolate ms | matrix form ms | ratio |\n|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['shape']} | {r['dtype']} | {r['interpolate_ms']} | {r['matmul_ms']} | {r['ratio']} |")
    steps = []
    for name in args.models:
        for precision in ("fp32", "bf16"):
            ms = train_step_ms(name, args.batch_size, precision, args.rounds, args.iters)
            steps.append(
                dict(
                    model=name,
                    batch=args.batch_size,
                    precision=precision,
                    interpolate_ms=round(ms["interpolate_ms"], 1),
                    matrix_ms=round(ms["matrix_ms"], 1),
                    ratio=round(ms["matrix_ms"] / ms["interpolate_ms"], 2),
                )
            )
    step_csv = args.out.with_name(args.out.stem + "-train-step.csv")
    if steps:
        write_csv(step_csv, steps)
        print("\n| model (batch) | precision | train step, F.interpolate ms | matrix form ms | ratio |")
        print("|---|---|---:|---:|---:|")
        for r in steps:
            print(
                f"| `{r['model']}` (b{r['batch']}) | {r['precision']} | {r['interpolate_ms']} | {r['matrix_ms']} "
                f"| {r['ratio']} |"
            )
    print(f"torch {torch.__version__}, {args.threads} thread(s); CSVs: {args.out}, {step_csv}")


if __name__ == "__main__":
    main()
