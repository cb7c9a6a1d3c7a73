#!/usr/bin/env bash
# The data-derived defaults of `wavemixer train --dataset imagefolder` on three data sets of different shape,
# each run with no option but the data (and one CPU thread): MNIST written as <class>/<n>.png (70,000 28x28
# grayscale, splits carved), the CIFAR-10 JPEG zip (train/ test/, 32x32 colour) and CamVid frames cut into 60x60
# patches labelled by their dominant class (6 classes, unbalanced). Results: runs/data-defaults/*/results.json, the
# runs' logs and runs/data-defaults/summary.csv (copies of the last measurement: docs/bench/data-defaults/).
#   scripts/measure_data_defaults.sh ../shared/data /tmp/folders
set -euo pipefail
DATA=${1:-../shared/data}
WORK=${2:-/tmp/wavemixer-folders}
PY=${PYTHON:-python}
mkdir -p "$WORK" runs/data-defaults
[ -d "$WORK/mnist" ] || $PY scripts/export_image_folders.py mnist "$DATA" "$WORK/mnist"
[ -d "$WORK/camvid_patches" ] || $PY scripts/export_image_folders.py camvid-patches "$DATA" "$WORK/camvid_patches"
for pair in "mnist:$WORK/mnist" "cifar10:$DATA/CIFAR10/cifar10_jpeg_q75_imagefolder.zip" \
            "camvid_patches:$WORK/camvid_patches"; do
    name=${pair%%:*}
    src=${pair#*:}
    $PY -m wavemixer.cli train --dataset imagefolder --data-dir "$src" --threads 1 \
        --output "runs/data-defaults/$name" --force 2>&1 | grep --line-buffered -v '^  step' | tee "runs/data-defaults/$name.log"
done
$PY -m wavemixer.cli runs runs/data-defaults --per-run --csv runs/data-defaults/summary.csv --force
