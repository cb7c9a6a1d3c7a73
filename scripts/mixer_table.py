"""Parameters and MACs of one registry model with every token mixer (the table in docs/wavelets.md).

    python scripts/mixer_table.py [--model wavemix_lite_32_7_cifar10_tiny] [--img-size 32]

MACs: convolutions, transposed convolutions and matrix products (wavemixer.flops.count_macs, batch 1);
Haar DWT arithmetic (count_dwt_flops) is listed apart; FFTs and pooling are counted by neither.
"""

from __future__ import annotations

import argparse

from wavemixer import create_model, get_spec
from wavemixer.flops import count_dwt_flops, count_macs
from wavemixer.mixers import mixer_wavelet_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="wavemix_lite_32_7_cifar10_tiny")
    parser.add_argument("--img-size", type=int)
    args = parser.parse_args()
    spec = get_spec(args.model)
    size = (spec.input_size[0], args.img_size, args.img_size) if args.img_size else spec.input_size
    print(f"{args.model} at {size[0]}x{size[1]}x{size[2]}\n")
    print("| mixer | wavelet | parameters | MACs (conv/matmul) | Haar DWT flops |")
    print("|---|---|---:|---:|---:|")
    for mixer, wavelet in mixer_wavelet_pairs():
        model = create_model(args.model, mixer=mixer, wavelet=wavelet)
        params = sum(p.numel() for p in model.parameters())
        print(f"| {mixer} | {wavelet} | {params:,} | {count_macs(model, size):,} | "
              f"{count_dwt_flops(model, size):,} |")  # fmt: skip


if __name__ == "__main__":
    main()
