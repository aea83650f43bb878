#!/usr/bin/env bash
# The training recipe's gain on one network (issue 14): squeezenas_lat_small trained from scratch on CamVid with
# the old recipe (v1) and the new one (v2, bench/camvid_recipe.sh), same seeds, two runs side by side (one
# thread each), then the before/after table of bench/camvid_recipe_gain.py.
#
#   bash bench/camvid_recipe_gain.sh     → runs/camvid_recipe/{v1,v2}_s{SEED}/, bench/results/camvid_recipe/
#
# Resumable: run the same command again; a finished run (test.json) is skipped, an interrupted one continues from
# its last.pt. Settings (environment): DATA, OUT (runs/camvid_recipe), MODEL (squeezenas_lat_small),
# SEEDS ("0 1"), V1_EPOCHS (30), V2_EPOCHS (120), SIZE ("180 240"), CROP ("176 240"), DEVICE (cpu), RESULTS (bench/results/camvid_recipe).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SQ="$BIN/squeezenas"
PY="$BIN/python"
DATA=${DATA:-../shared/data/camvid}
OUT=${OUT:-runs/camvid_recipe}
MODEL=${MODEL:-squeezenas_lat_small}
SEEDS=${SEEDS:-"0 1"}
V1_EPOCHS=${V1_EPOCHS:-30}
V2_EPOCHS=${V2_EPOCHS:-120}
SIZE=${SIZE:-"180 240"}
CROP=${CROP:-"176 240"}
DEVICE=${DEVICE:-cpu}
RESULTS=${RESULTS:-bench/results/camvid_recipe}
lane_env=(); [[ "$DEVICE" == cpu ]] && lane_env=(env OMP_NUM_THREADS=1)
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/recipe.log"; }

run() {  # run RECIPE SEED: one training in a subshell (the recipe file sets its flags from RECIPE)
  local recipe="$1" seed="$2" epochs dir="$OUT/${1}_s$2"
  epochs=$V2_EPOCHS; [[ "$recipe" == v1 ]] && epochs=$V1_EPOCHS
  [[ -f "$dir/test.json" ]] && return 0
  (
    RECIPE=$recipe EPOCHS=$epochs
    # shellcheck source=bench/camvid_recipe.sh
    source bench/camvid_recipe.sh
    log "train $MODEL, recipe $recipe, seed $seed, $epochs epochs"
    mkdir -p "$dir"
    camvid_train "$dir" "$MODEL" --seed "$seed" >> "$dir.log" 2>&1
    log "trained $recipe seed $seed: test mIoU $(camvid_test_miou "$dir")"
  )
}

log "start: $MODEL, seeds $SEEDS, v1 $V1_EPOCHS / v2 $V2_EPOCHS epochs, load $(cut -d' ' -f1-3 /proc/loadavg)"
jobs_list=()
for seed in $SEEDS; do jobs_list+=("v2 $seed" "v1 $seed"); done
# shellcheck source=bench/lanes.sh
source bench/lanes.sh
lanes_start 2
for j in "${jobs_list[@]}"; do
  # shellcheck disable=SC2086
  lane run $j
done
lanes_wait || exit 1
$PY bench/camvid_recipe_gain.py --dir "$OUT" --out "$RESULTS"
log "done"
