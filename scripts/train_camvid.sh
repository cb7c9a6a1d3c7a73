#!/usr/bin/env bash
# WaveMix segmentation on CamVid (SegNet split, 180x240, 11 classes + void ignored) on a small CPU.
# Model selection on CamVid val; the test split is evaluated once, at the end, with the best-on-val weights.
# Training: random 0.75-1.5x rescale, random 128x128 crop, horizontal flip (image and mask jointly);
# val/test: whole 180x240 images, no randomness.
# Usage: scripts/train_camvid.sh [extra wavemixer train flags]   (DATA defaults to ../shared/data/CamVid)
set -euo pipefail
DATA=${DATA:-../shared/data/CamVid}
OUT=${OUT:-runs/camvid-wavemix}
exec nice -n 19 wavemixer train --task segmentation --dataset camvid --data-dir "$DATA" \
  --model wavemix_seg_64_6_l2_camvid --epochs 30 --batch-size 8 --eval-batch-size 8 --input-size 128 \
  --lr 2e-3 --warmup-epochs 1 --amp bf16 --threads 1 --log-interval 10 --output "$OUT" "$@"
