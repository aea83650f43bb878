#!/usr/bin/env bash
# Retrain the CamVid experiment's networks with more seeds, same recipe (bench/camvid_recipe.sh): how much of a
# test-mIoU difference between two networks is retraining noise. Seed 0 is the experiment's own run (EXP/NAME).
#
#   bash bench/camvid_seeds.sh                                   # mac, lat, mnv3 of runs/camvid_experiment
#   EXP=runs/camvid_experiment_ort NETS=lat bash bench/camvid_seeds.sh
#
# Writes EXP/seeds/NAME_sSEED/ (checkpoints, test.json); `python bench/camvid_experiment.py --dir EXP` then adds
# the mean and spread over seeds to its table. Resumable like the experiment: run the same command again.
# Settings (environment): EXP (runs/camvid_experiment), NETS ("mac lat mnv3"), SEEDS ("1 2"), and as in
# camvid_experiment.sh: DATA, DEVICE, SIZE, CROP, EPOCHS, LANES (2 runs side by side on a CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SQ="$BIN/squeezenas"
EXP=${EXP:-runs/camvid_experiment}
NETS=${NETS:-"mac lat mnv3"}
SEEDS=${SEEDS:-"1 2"}
DATA=${DATA:-../shared/data/camvid}
DEVICE=${DEVICE:-cpu}
SIZE=${SIZE:-"180 240"}
CROP=${CROP:-"176 240"}
EPOCHS=${EPOCHS:-30}
RECIPE=${RECIPE:-v1}  # the recipe of the committed results (bench/results/camvid_*); v2: bench/camvid_recipe.sh
LANES=${LANES:-2}
lane_env=(); [[ "$DEVICE" == cpu && "$LANES" -gt 1 ]] && lane_env=(env OMP_NUM_THREADS=1)
# shellcheck source=bench/camvid_recipe.sh
source bench/camvid_recipe.sh

model_of() {  # name → what `squeezenas train --model` takes
  case "$1" in
    mac) echo "$EXP/search_mac/chosen_genotype.json" ;;
    lat) echo "$EXP/search_lat/chosen_genotype.json" ;;
    mnv3) echo mobilenetv3_large_lraspp ;;
    *) echo "unknown network '$1' (mac, lat, mnv3)" >&2; return 1 ;;
  esac
}
mkdir -p "$EXP/seeds"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$EXP/seeds/seeds.log"; }
train_seed() {  # name model seed
  local dir="$EXP/seeds/${1}_s$3"
  mkdir -p "$dir"
  log "train $1 seed $3"
  camvid_train "$dir" "$2" --seed "$3" >> "$dir.log" 2>&1
  log "trained $1 seed $3: test mIoU $(camvid_test_miou "$dir")"
}
# shellcheck source=bench/lanes.sh
source bench/lanes.sh
lanes_start "$LANES"
for name in $NETS; do
  model=$(model_of "$name")
  [[ "$model" == *.json && ! -f "$model" ]] && { echo "$model is missing: run bench/camvid_experiment.sh first" >&2; exit 1; }
  for seed in $SEEDS; do
    [[ -f "$EXP/seeds/${name}_s$seed/test.json" ]] && continue
    lane train_seed "$name" "$model" "$seed"
  done
done
lanes_wait || exit 1
log "done"
