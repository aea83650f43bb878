#!/usr/bin/env bash
# CamVid from scratch, one recipe (bench/camvid_recipe.sh), at half resolution (~180×240), for
# squeezenas_lat_small and torchvision's LR-ASPP MobileNetV3-Large: train on train, select on val, report test
# mIoU. Resumable: run the same command again and each run continues from its last.pt.
#   bash bench/camvid_baselines.sh [DATA_ROOT] [OUT] [EPOCHS] [DEVICE]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/camvid}
OUT=${2:-runs/camvid_baselines}
EPOCHS=${3:-30}
RECIPE=${RECIPE:-v1}  # the recipe of the committed results (docs/RESULTS.md); v2: bench/camvid_recipe.sh
DEVICE=${4:-cpu}
BIN=${BIN:-.venv/bin}
SQ="$BIN/squeezenas"
THREADS=${THREADS:-1}   # per run; the two runs go side by side on a 2-core CPU
SIZE="180 240"
CROP="176 240"
lane_env=(env OMP_NUM_THREADS="$THREADS")
# shellcheck source=bench/camvid_recipe.sh
source bench/camvid_recipe.sh

camvid_train "$OUT/lat_small" squeezenas_lat_small >> "$OUT.lat_small.log" 2>&1 &
camvid_train "$OUT/mnv3" mobilenetv3_large_lraspp >> "$OUT.mnv3.log" 2>&1 &
wait
