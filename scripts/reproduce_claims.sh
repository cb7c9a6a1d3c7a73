#!/usr/bin/env bash
# Every training behind docs/claims.md's fair contest and its priors part, in order: the contest's grids, the
# small-data grids, the CamVid grid. Each step skips what is finished -- the grids' committed ledgers
# (docs/bench/contest/<grid>.csv) and run records (<out>/records: results, config, curve and log of every
# finished run) -- and resumes what was cut, so the script continues where it stopped, on any machine with the
# data. Two runs train at once, one thread each, under nice. Hours to days on a 2-core CPU.
#
#   bash scripts/reproduce_claims.sh               # everything still to train, then the tables
#   bash scripts/reproduce_claims.sh camvid        # only these parts, in the script's order: contest,
#                                                  # small-data, camvid
#   DRY_RUN=1 bash scripts/reproduce_claims.sh     # print the commands only
#
# Inputs, not retrained here: the contest's throughput sweep and tuning (docs/bench/contest/throughput.csv,
# tuning-40k.csv; `scripts/contest.py sweep` and `tune` made them). DATA (default ../shared/data) holds the
# offline CIFAR-10 zip and CamVid; PYTHON (default python) is the interpreter with wavemixer installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DATA=${DATA:-../shared/data}
ZIP=$DATA/CIFAR10/cifar10_jpeg_q75_imagefolder.zip
CAMVID=$DATA/CamVid
PARTS="contest small-data camvid"
for PART in "$@"; do
    case " $PARTS " in
    *" $PART "*) ;;
    *) echo "reproduce_claims.sh: unknown part '$PART'; the parts are: $PARTS" >&2; exit 2 ;;
    esac
done
ARGS="$*"
part() {  # whether the part named $1 runs: every part when none is given
    [ -z "$ARGS" ] || case " $ARGS " in *" $1 "*) true ;; *) false ;; esac
}
step() {
    echo "+ $*"
    if [ -z "${DRY_RUN:-}" ]; then "$@"; fi
}

# the fair contest: 40k at 5 and 20 minutes, 0.5M at 20 minutes
if part contest; then
    step "$PYTHON" scripts/contest.py run --grid 40k-5min --data-dir "$ZIP"
    step "$PYTHON" scripts/contest.py run --grid 40k-20min --keep-best 6 --data-dir "$ZIP"
    step "$PYTHON" scripts/contest.py run --grid 500k-20min --keep-best 6 --data-dir "$ZIP"
    step "$PYTHON" scripts/contest.py compare --grid 40k-20min --against 40k-5min
    step "$PYTHON" scripts/contest.py compare --grid 500k-20min --against 40k-20min
fi

# small data: every 40k contender and the best WaveMix at 0.5M (mean val top-1 of the 0.5M grid); seeds 1-3,
# then 4-5 of the entries whose test mean ± std overlaps another's
best_wavemix() {
    "$PYTHON" -c "import sys; from pathlib import Path; from wavemixer.bench import contest as C
try: print(C.best_wavemix(Path('docs/bench/contest/500k-20min.csv')))
except (OSError, ValueError) as e: sys.exit(f'reproduce_claims.sh: {e}')"
}
if part small-data; then
    if [ -n "${DRY_RUN:-}" ]; then  # the 0.5M grid may still be open: nothing has trained in a dry run
        KEY=$(best_wavemix 2>/dev/null) || KEY="<the best WaveMix of 500k-20min, once that grid is finished>"
    else
        KEY=$(best_wavemix)
    fi
    for REGIME in pc50 pc500; do
        step "$PYTHON" scripts/small_data.py tune --regime $REGIME --data-dir "$ZIP" --wavemix-500k "$KEY"
        step "$PYTHON" scripts/small_data.py tune --regime $REGIME --edge --data-dir "$ZIP" --wavemix-500k "$KEY"
        step "$PYTHON" scripts/small_data.py run --regime $REGIME --data-dir "$ZIP" --wavemix-500k "$KEY"
        step "$PYTHON" scripts/small_data.py run --regime $REGIME --seeds 4 5 --overlapping --data-dir "$ZIP" \
            --wavemix-500k "$KEY"
    done
    step "$PYTHON" scripts/small_data.py summarize --runs docs/bench/small-data/records \
        --full 40k=docs/bench/contest/40k-20min.csv 40k=docs/bench/contest/40k-5min.csv \
        500k=docs/bench/contest/500k-20min.csv
fi

# CamVid on one engine: each model's learning rate on val (seed 0, 20 epochs; the contest's edge rule where the
# best lies at the lowest or highest rate tried), then seeds 1-3 at it, and seeds 4-5 where two rows lie within
# each other's spread
if part camvid; then
    R=docs/bench/camvid/records
    for LR in 0.001 0.003 0.01; do
        step "$PYTHON" scripts/claims_grid.py run --grid camvid --seeds 0 --epochs 20 --runs runs/camvid-tune/lr$LR \
            --records $R/tune/lr$LR --data-dir "$CAMVID" -- --skip-test --lr $LR
    done
    step "$PYTHON" scripts/claims_grid.py edge --grid camvid --epochs 20 --runs runs/camvid-tune --records $R/tune \
        --data-dir "$CAMVID" -- --skip-test
    step "$PYTHON" scripts/claims_grid.py tuning --grid camvid --records $R/tune --out docs/bench/camvid
    step "$PYTHON" scripts/claims_grid.py run --grid camvid --seeds 1 2 3 --tuned $R/tune --runs runs/camvid \
        --records $R/seeds --out docs/bench/camvid --data-dir "$CAMVID"
    step "$PYTHON" scripts/claims_grid.py run --grid camvid --seeds 4 5 --overlapping --tuned $R/tune \
        --runs runs/camvid --records $R/seeds --out docs/bench/camvid --data-dir "$CAMVID"
fi
