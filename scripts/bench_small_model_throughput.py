"""Training throughput of the small default models on one CPU thread: the fit behind the epoch-budget rule
(``estimated_seconds_per_image`` in wavemixer/data/defaults.py) and the stem-stride rule.

  python scripts/bench_small_model_throughput.py          # prints img/s per model, stride, size; batch 64
"""

from __future__ import annotations

import time

import torch

import wavemixer
from wavemixer.flops import count_macs

CASES = [
    ("wavemix_lite_32_7_cifar10_tiny", dict(stride=1), 28, 1),
    ("wavemix_lite_32_7_cifar10_tiny", dict(stride=2), 28, 1),
    ("wavemix_lite_32_7_cifar10_tiny", dict(stride=1), 32, 3),
    ("wavemix_lite_32_7_cifar10_tiny", dict(stride=2), 32, 3),
    ("wavemix_lite_32_7_cifar10_tiny", dict(stride=2), 64, 3),
    ("wavemix_lite_8_10_mnist", {}, 28, 1),
    ("wavemix_lite_64_6_cifar10", dict(stride=2), 32, 3),
]


def main() -> None:
    torch.set_num_threads(1)
    for name, kw, size, chans in CASES:
        model = wavemixer.create_model(name, in_chans=chans, num_classes=10, **kw)
        macs = count_macs(model, (chans, size, size))
        opt = torch.optim.AdamW(model.parameters())
        x, y = torch.randn(64, chans, size, size), torch.randint(0, 10, (64,))
        for i in range(6):
            if i == 2:
                t0 = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        per_step = (time.perf_counter() - t0) / 4
        rate = 64 / per_step
        print(f"{name} {kw} {chans}x{size}x{size}: {macs / 1e6:.2f} MMACs/image, {rate:,.0f} img/s", flush=True)


if __name__ == "__main__":
    main()
