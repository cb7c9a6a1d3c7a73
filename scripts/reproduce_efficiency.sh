#!/usr/bin/env bash
# Reproduce the reference README's parameter-efficiency table on CPU (3 seeds per model), in two parallel
# lanes of one thread each, then summarise: wavemixer runs "$RUNS".
#
#   DATA=../shared/data RUNS=runs/repro bash scripts/reproduce_efficiency.sh
#
# MNIST and Fashion-MNIST read the IDX files in $DATA/{MNIST,FashionMNIST}/raw; CIFAR-10 reads the
# ImageFolder zip $DATA/CIFAR10/cifar10_jpeg_q75_imagefolder.zip (JPEG q75 copy of CIFAR-10).
set -euo pipefail
DATA=${DATA:-../shared/data}
RUNS=${RUNS:-runs/repro}
PY=${PYTHON:-python}
MNIST_EPOCHS=${MNIST_EPOCHS:-30}
FMNIST_EPOCHS=${FMNIST_EPOCHS:-40}
CIFAR_EPOCHS=${CIFAR_EPOCHS:-15}
COMMON=(--amp bf16 --threads 1 --workers 0 --batch-size 128 --lr 3e-3 --warmup-epochs 1 --log-interval 200)

run() { nice -n "${NICE:-10}" "$PY" -m wavemixer train "${COMMON[@]}" "$@"; }

mnist() { run --dataset mnist --data-dir "$DATA" --model wavemix_lite_8_10_mnist --epochs "$MNIST_EPOCHS" \
  --crop-padding 0 --seed "$1" --output "$RUNS/mnist-lite_8_10-s$1" --force "${@:2}"; }
fmnist() { run --dataset fashion_mnist --data-dir "$DATA" --model wavemix_lite_8_5_fmnist --epochs "$FMNIST_EPOCHS" \
  --crop-padding 0 --seed "$1" --output "$RUNS/fmnist-lite_8_5-s$1" --force "${@:2}"; }
cifar() { run --dataset cifar10 --data-dir "$DATA/CIFAR10/cifar10_jpeg_q75_imagefolder.zip" \
  --model wavemix_lite_32_7_cifar10_tiny --epochs "$CIFAR_EPOCHS" --no-trivial-augment --seed "$1" \
  --output "$RUNS/cifar10-lite_32_7-s$1" --force "${@:2}"; }

# Stronger models (aims: MNIST >= 99.6 %, Fashion-MNIST >= 93.5 %): WaveMix-Lite-64/6 (520k parameters) with the
# data sets' default augmentation (random crop, padding 2); one seed each, for time to accuracy.
STRONG_EPOCHS=${STRONG_EPOCHS:-6}
mnist_strong() { run --dataset mnist --data-dir "$DATA" --model wavemix_lite_64_6_cifar10 --epochs "$STRONG_EPOCHS" \
  --seed "$1" --output "$RUNS/mnist-lite_64_6-s$1" --force; }
fmnist_strong() { run --dataset fashion_mnist --data-dir "$DATA" --model wavemix_lite_64_6_cifar10 \
  --epochs "$STRONG_EPOCHS" --seed "$1" --output "$RUNS/fmnist-lite_64_6-s$1" --force; }

# Another peak learning rate (the 3e-3 recipe under-fits Lite-8/5): JOBS="fmnist_lr 1e-2 0" runs seed 0 at lr 1e-2
# into $RUNS/fmnist-lite_8_5-lr1e-2-s0 (mnist_lr likewise); arguments after the seed are passed on to
# `wavemixer train` and $TAG is appended to the folder name (the learning-rate pilots: FMNIST_EPOCHS=12 RUNS=runs/pilot).
fmnist_lr() { local lr=$1 seed=$2; shift 2; fmnist "$seed" --lr "$lr" "$@" --output "$RUNS/fmnist-lite_8_5-lr$lr${TAG:-}-s$seed"; }
mnist_lr() { local lr=$1 seed=$2; shift 2; mnist "$seed" --lr "$lr" "$@" --output "$RUNS/mnist-lite_8_10-lr$lr${TAG:-}-s$seed"; }
cifar_lr() { local lr=$1 seed=$2; shift 2; cifar "$seed" --lr "$lr" "$@" --output "$RUNS/cifar10-lite_32_7-lr$lr${TAG:-}-s$seed"; }

# Continue a finished run to more epochs in a copy (the cosine schedule is re-laid over the longer length, so the
# learning rate restarts at that schedule's value); the original run is kept.
extend() {
  local src=$1 dst=$2 epochs=$3
  if [[ -e $dst ]]; then echo "$dst exists; remove it to extend again" >&2; return 1; fi
  cp -r "$src" "$dst"
  nice -n "${NICE:-10}" "$PY" -m wavemixer train --resume "$dst" --epochs "$epochs"
}
FMNIST_EXTEND=${FMNIST_EXTEND:-70}
fmnist_extend() { extend "$RUNS/fmnist-lite_8_5-s$1" "$RUNS/fmnist-lite_8_5-e$FMNIST_EXTEND-s$1" "$FMNIST_EXTEND"; }
# CIFAR-10 at peak lr 1e-2 (JOBS="cifar_lr 1e-2 <seed>" CIFAR_EPOCHS=40), continued to $CIFAR_EXTEND epochs
CIFAR_EXTEND=${CIFAR_EXTEND:-60}
cifar_extend() {
  extend "$RUNS/cifar10-lite_32_7-lr1e-2-s$1" "$RUNS/cifar10-lite_32_7-lr1e-2-e$CIFAR_EXTEND-s$1" "$CIFAR_EXTEND"
}

# two lanes; LANES=a or LANES=b runs only one of them; JOBS="fmnist 2" runs just that (model seed) pair,
# JOBS="mnist_strong 0" one stronger-model run, JOBS="fmnist_extend 0" one extension,
# JOBS="fmnist_lr 1e-2 0" one Fashion-MNIST run at another learning rate (mnist_lr and cifar_lr likewise),
# JOBS="cifar_extend 0" one CIFAR-10 extension
if [[ -n ${JOBS:-} ]]; then mkdir -p "$RUNS"; $JOBS; exit; fi
# CIFAR=1 appends the three CIFAR-10 runs (crop + flip, no TrivialAugment: a 37k-parameter model
# under-fits; about 2.5 min per epoch on one idle core)
lane_a() { mnist 0; mnist 1; mnist 2; if [[ ${CIFAR:-0} == 1 ]]; then cifar 1; fi; }
lane_b() { fmnist 0; fmnist 1; fmnist 2; if [[ ${CIFAR:-0} == 1 ]]; then cifar 0; cifar 2; fi; }
LANES=${LANES:-ab}

mkdir -p "$RUNS"
if [[ $LANES == *a* ]]; then lane_a > "$RUNS/lane_a.log" 2>&1 & fi
if [[ $LANES == *b* ]]; then lane_b > "$RUNS/lane_b.log" 2>&1 & fi
wait
