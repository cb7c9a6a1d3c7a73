#!/usr/bin/env bash
# x2 super-resolution on CamVid frames used as HR images (367 train / 101 val / 233 test, 180x240) on a small CPU.
# LR = antialiased bicubic downscale of the HR (made on the fly); PSNR/SSIM on Y with a 2-pixel border crop,
# the bicubic baseline measured on the same test images. Model selection on val PSNR, test evaluated once.
# Usage: scripts/train_sr_camvid.sh [extra wavemixer train flags]   (DATA defaults to ../shared/data/CamVid)
set -euo pipefail
DATA=${DATA:-../shared/data/CamVid}
OUT=${OUT:-runs/camvid-sr-x2}
exec nice -n 19 wavemixer train --task super_resolution --dataset camvid --data-dir "$DATA" \
  --model wavemix_sr_64_4_x2_residual --epochs 40 --batch-size 8 --eval-batch-size 8 --input-size 96 \
  --lr 1e-3 --warmup-epochs 1 --amp bf16 --threads 1 --log-interval 20 --output "$OUT" "$@"
