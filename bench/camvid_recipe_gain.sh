#!/usr/bin/env bash
# The training recipe's gain on one network (issue 14): squeezenas_lat_small trained from scratch on CamVid with
# each recipe of bench/camvid_recipe.sh (v1: the old one, v2: the default, v3: milder class weights), same
# seeds, two runs side by side (one thread each), then the before/after table of bench/camvid_recipe_gain.py.
#
#   bash bench/camvid_recipe_gain.sh                 → runs/camvid_recipe/{v1,v2}_s{SEED}/, bench/results/camvid_recipe/
#   RECIPES="v3" bash bench/camvid_recipe_gain.sh    → adds v3 beside the committed v1 and v2 runs
#
# Resumable: run the same command again; a finished run (test.json) is skipped, an interrupted one continues from
# its last.pt, and the runs whose results are committed in RESULTS ({recipe}_s{seed}_test.json, log.csv) are
# restored, not retrained. Settings (environment): DATA, OUT (runs/camvid_recipe), MODEL (squeezenas_lat_small),
# RECIPES ("v2 v1"), SEEDS ("0 1"), V1_EPOCHS (30), EPOCHS_NEW (120: v2, v3), SIZE ("180 240"), CROP ("176 240"),
# DEVICE (cpu), RESULTS (bench/results/camvid_recipe).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SQ="$BIN/squeezenas"
PY="$BIN/python"
DATA=${DATA:-../shared/data/camvid}
OUT=${OUT:-runs/camvid_recipe}
MODEL=${MODEL:-squeezenas_lat_small}
SEEDS=${SEEDS:-"0 1"}
RECIPES=${RECIPES:-"v2 v1"}
V1_EPOCHS=${V1_EPOCHS:-30}
EPOCHS_NEW=${EPOCHS_NEW:-${V2_EPOCHS:-120}}
SIZE=${SIZE:-"180 240"}
CROP=${CROP:-"176 240"}
DEVICE=${DEVICE:-cpu}
RESULTS=${RESULTS:-bench/results/camvid_recipe}
lane_env=(); [[ "$DEVICE" == cpu ]] && lane_env=(env OMP_NUM_THREADS=1)
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/recipe.log"; }

run() {  # run RECIPE SEED: one training in a subshell (the recipe file sets its flags from RECIPE)
  local recipe="$1" seed="$2" epochs dir="$OUT/${1}_s$2"
  epochs=$EPOCHS_NEW; [[ "$recipe" == v1 ]] && epochs=$V1_EPOCHS
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

log "start: $MODEL, recipes $RECIPES, seeds $SEEDS, v1 $V1_EPOCHS / newer $EPOCHS_NEW epochs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for f in "$RESULTS"/v*_s*_test.json; do  # committed runs: restored, not retrained
  [[ -f "$f" ]] || continue
  run_name=$(basename "${f%_test.json}")
  [[ -f "$OUT/$run_name/test.json" ]] && continue
  mkdir -p "$OUT/$run_name"
  for part in test.json log.csv class_weights.json; do
    if [[ -f "$RESULTS/${run_name}_$part" ]]; then cp "$RESULTS/${run_name}_$part" "$OUT/$run_name/$part"; fi
  done
done
jobs_list=()
for seed in $SEEDS; do for recipe in $RECIPES; do jobs_list+=("$recipe $seed"); done; done
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
