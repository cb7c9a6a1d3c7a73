#!/usr/bin/env bash
# The CPU tables of docs/benchmarks.md: a level-1, a level-3 and a level-4 WaveMix against the reference
# package (same configuration), fp32 and bf16 autocast, with the eval-time path and gradient checkpointing.
# One torch thread per process: on a shared 2-core machine two threads suffer from other jobs far more.
# Usage: scripts/bench_cpu.sh [--reference-python PATH] [extra wavemixer bench options]
set -euo pipefail
common=(--precision fp32 bf16 --variants opt ckpt lowmem ckpt+lowmem onnx --threads 1 --warmup 2 --iters 3 --rounds 2 "$@")
wavemixer bench wavemix_lite_144_7_cifar10 timm:resnet18:num_classes=10 -b 32 --tag l1 "${common[@]}"
wavemixer bench wavemix_192_16_tinyimagenet -b 16 --tag l3 "${common[@]}"
wavemixer bench 'wavemix_256_16_l4:final_dim=128,depth=8,num_classes=200' --img-size 128 -b 16 --tag l4 "${common[@]}"
# Memory layout: the level-1 and level-3 models in channels_last (NHWC), ours and the reference alike.
wavemixer bench wavemix_lite_144_7_cifar10 -b 32 --tag l1 --channels-last --precision fp32 bf16 --threads 1 \
  --warmup 2 --iters 3 --rounds 1 "$@"
