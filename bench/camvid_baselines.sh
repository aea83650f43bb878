#!/usr/bin/env bash
# CamVid from scratch, one recipe, at half resolution (~180×240), for squeezenas_lat_small and torchvision's
# LR-ASPP MobileNetV3-Large: train on train, select on val, report test mIoU and CPU batch-1 latency.
# Resumable: run the same command again and each run continues from its last.pt.
#   bash bench/camvid_baselines.sh [DATA_ROOT] [OUT] [EPOCHS] [DEVICE]
set -euo pipefail
DATA=${1:-../shared/data/camvid}
OUT=${2:-runs/camvid_baselines}
EPOCHS=${3:-30}
DEVICE=${4:-cpu}
BIN=${BIN:-.venv/bin}
THREADS=${THREADS:-1}   # per run; the two runs go side by side on a 2-core CPU

run() {  # name model
  local dir="$OUT/$1" resume=()
  [ -f "$dir/last.pt" ] && resume=(--resume)
  OMP_NUM_THREADS=$THREADS "$BIN/squeezenas" train --model "$2" --dataset camvid --data-root "$DATA" \
    --epochs "$EPOCHS" --batch-size 8 --lr 0.05 --schedule poly \
    --crop 176 240 --scale 0.25 1.0 --val-size 180 240 --val-every 5 \
    --workers 1 --device "$DEVICE" --no-progress --out "$dir" "${resume[@]}"
  OMP_NUM_THREADS=$THREADS "$BIN/squeezenas" eval --checkpoint "$dir/best.pt" --split test --size 180 240 \
    --device "$DEVICE" --no-progress --report "$dir/test.json"
}

run lat_small squeezenas_lat_small >> "$OUT.lat_small.log" 2>&1 &
run mnv3 mobilenetv3_large_lraspp >> "$OUT.mnv3.log" 2>&1 &
wait
