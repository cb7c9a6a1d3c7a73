#!/usr/bin/env bash
# Accuracy and time of fp32 against bf16-autocast training, same model and recipe, 3 seeds each, on the
# embedded digits set (offline). Table: wavemixer runs runs/precision --csv docs/bench/precision-digits.csv
set -euo pipefail
RUNS=${RUNS:-runs/precision}
PY=${PYTHON:-python}
for seed in 0 1 2; do
  for amp in none bf16; do
    "$PY" -m wavemixer train --threads 1 --amp "$amp" --seed "$seed" --quiet --output "$RUNS/digits-$amp-s$seed" --force
  done
done
