#!/usr/bin/env bash
# The released Cityscapes lat_small scored on CamVid without CamVid training (class map cityscapes-camvid):
#   bash bench/zero_shot_camvid.sh   → bench/results/zero_shot/lat_small_camvid_test20.json
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
mkdir -p bench/results/zero_shot
.venv/bin/squeezenas eval --model squeezenas_lat_small --checkpoint "$SHARED/weights/squeezenas-official/lat_small.pth" \
  --dataset camvid --data-root "$SHARED/data/camvid" --split test --max-images 20 --class-map cityscapes-camvid \
  --workers 0 --no-progress --report bench/results/zero_shot/lat_small_camvid_test20.json
