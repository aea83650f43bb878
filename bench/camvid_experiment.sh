#!/usr/bin/env bash
# The paper's central experiment on CamVid for one target device (SPEC §2-3; docs/RESULTS.md):
#   (a) a MAC-aware search of the Small space,
#   (b) a latency-aware search whose target is the latency of (a)'s chosen network on the target device,
#   (c) torchvision's LR-ASPP MobileNetV3-Large (architecture transfer),
# each chosen network retrained from scratch with one recipe (that of bench/camvid_baselines.sh), then test mIoU,
# batch-1 latency measured on the target (PyTorch eager and onnxruntime), MACs, params, and the plots of
# bench/camvid_experiment.py (paper Figures 5, 6 and 10).
#
#   bash bench/camvid_experiment.sh                      # CPU target, ~2 h on a 2-core CPU
#   DEVICE=cuda SIZE="360 480" THREADS=0 bash bench/camvid_experiment.sh   # a GPU target (see docs/RESULTS.md)
#
# Every step is skipped when its output exists and long steps resume from their checkpoints, so an interrupted
# run is continued by starting the same command again. Settings (environment):
#   DATA (../shared/data/camvid), OUT (runs/camvid_experiment), DEVICE (cpu), SIZE ("180 240": deployment and
#   scoring size), CROP ("176 240"), SEARCH_EPOCHS (6), EPOCHS (30: retraining), ALPHA (0.5: MAC weight of (a),
#   per mean network's GMACs), N (200 samples), VAL_LIMIT (24 validation images to score a path),
#   CALIB (4 batches per path on which BatchNorm statistics are re-estimated), BACKEND (eager: the latency table's backend),
#   THREADS (1: threads of the deployed network; 0 = torch default), STATISTIC (min: the latency table's per-call
#   figure, docs/LATENCY.md), EXPORTER (torchscript: ONNX exporter of the onnxruntime figures; ~10x faster than
#   dynamo), LANES (2: retrainings side by side), PLOTS (OUT/plots: where the figures go).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SQ="$BIN/squeezenas"
PY="$BIN/python"
DATA=${DATA:-../shared/data/camvid}
OUT=${OUT:-runs/camvid_experiment}
DEVICE=${DEVICE:-cpu}
SIZE=${SIZE:-"180 240"}
CROP=${CROP:-"176 240"}
SEARCH_EPOCHS=${SEARCH_EPOCHS:-6}
EPOCHS=${EPOCHS:-30}
RECIPE=${RECIPE:-v1}  # the recipe of the committed results (bench/results/camvid_*); v2: bench/camvid_recipe.sh
ALPHA=${ALPHA:-0.5}
N=${N:-200}
VAL_LIMIT=${VAL_LIMIT:-24}
CALIB=${CALIB:-4}
BACKEND=${BACKEND:-eager}
THREADS=${THREADS:-1}
LANES=${LANES:-2}
STATISTIC=${STATISTIC:-min}
EXPORTER=${EXPORTER:-torchscript}
PLOTS=${PLOTS:-$OUT/plots}
CLASSES=11
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/experiment.log"; }
threads_flag=(); [[ "$THREADS" != 0 ]] && threads_flag=(--threads "$THREADS")
# one thread per process when runs go side by side (two threads each would oversubscribe the cores)
lane_env=(); [[ "$DEVICE" == cpu && "$LANES" -gt 1 ]] && lane_env=(env OMP_NUM_THREADS=1)

log "start: device $DEVICE, size $SIZE, search epochs $SEARCH_EPOCHS, retrain epochs $EPOCHS, load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. latency table of the target (built and checked before anything else runs: timings need a quiet device)
LUT="$OUT/lut_${BACKEND}.json"
if [[ ! -f "$LUT" ]]; then
  log "latency table ($BACKEND)"
  # shellcheck disable=SC2086
  $SQ lut build --space small --size $SIZE --num-classes $CLASSES --device "$DEVICE" --backend "$BACKEND" \
    "${threads_flag[@]}" --min-run-time 0.3 --rounds 5 --statistic "$STATISTIC" \
    --onnx-exporter "$EXPORTER" --quiet --out "$LUT.tmp.json"
  $SQ lut check --lut "$LUT.tmp.json" --samples 24 --calibrate --min-run-time 0.3 --rounds 5 --quiet \
    --out "$OUT/lut_${BACKEND}_check.json" > /dev/null
  mv "$LUT.tmp.json" "$LUT"
fi

search() {  # dir, extra search flags...
  local dir="$1"; shift
  if [[ ! -f "$dir/genotype.json" ]]; then
    local resume=(); [[ -f "$dir/checkpoint.pt" ]] && resume=(--resume)
    log "search $dir"
    # shellcheck disable=SC2086
    $SQ search --space small --dataset camvid --data-root "$DATA" --size $SIZE --epochs "$SEARCH_EPOCHS" \
      --batch-size 8 --crop $CROP --scale 0.25 1.0 --workers 1 --device "$DEVICE" --no-progress \
      --out "$dir" "${resume[@]}" "$@" >> "$dir.log" 2>&1
  fi
}
sample() {  # dir, extra sample flags...
  local dir="$1"; shift
  if [[ ! -f "$dir/chosen_genotype.json" ]]; then
    log "sample $dir"
    # shellcheck disable=SC2086
    $SQ sample --search "$dir" --n "$N" --lut "$LUT" --bn-batches "$CALIB" --val-limit "$VAL_LIMIT" \
      --val-size $SIZE --device "$DEVICE" --workers 1 --no-progress "$@" >> "$dir.log" 2>&1
  fi
}

# 2. (a) MAC-aware search, then the knee of its MAC-vs-mIoU front
search "$OUT/search_mac" --cost mac --alpha "$ALPHA"
sample "$OUT/search_mac"
# 3. (b) latency-aware search, its expected latency held at (a)'s network's calibrated predicted latency,
#    then the most accurate sample within that latency
TARGET=$($PY -c "import json,sys; print(round(json.load(open(sys.argv[1]))['meta']['latency_ms'], 4))" \
  "$OUT/search_mac/chosen_genotype.json")
log "target latency for (b): $TARGET ms (predicted, calibrated, for (a)'s network)"
search "$OUT/search_lat" --cost latency --lut "$LUT" --target-latency "$TARGET"
sample "$OUT/search_lat" --budget-ms "$TARGET"

# 4. retrain the three networks from scratch, one recipe (bench/camvid_recipe.sh), side by side
# shellcheck source=bench/camvid_recipe.sh
source bench/camvid_recipe.sh
train() {  # name model
  if [[ ! -f "$OUT/$1/test.json" ]]; then
    log "train $1 ($2)"
    camvid_train "$OUT/$1" "$2" >> "$OUT/$1.log" 2>&1
    log "trained $1"
  fi
}
jobs_=("mac:$OUT/search_mac/chosen_genotype.json" "lat:$OUT/search_lat/chosen_genotype.json"
       "mnv3:mobilenetv3_large_lraspp")
# shellcheck source=bench/lanes.sh
source bench/lanes.sh
lanes_start "$LANES"
for j in "${jobs_[@]}"; do
  lane train "${j%%:*}" "${j#*:}"
done
lanes_wait || exit 1

# 5. batch-1 latency of the three on the target (alone on the device), both backends
for name in mac lat mnv3; do
  for backend in eager onnxruntime; do
    [[ "$DEVICE" == cuda && "$backend" == onnxruntime ]] && continue
    f="$OUT/$name/latency_${backend}.json"
    if [[ ! -f "$f" ]]; then
      log "latency $name $backend"
      # shellcheck disable=SC2086
      $SQ bench "$OUT/$name/best.pt" --size $SIZE --device "$DEVICE" --backend "$backend" "${threads_flag[@]}" \
        --min-run-time 3 --onnx-exporter "$EXPORTER" --no-memory --json > "$f.tmp" && mv "$f.tmp" "$f"
    fi
  done
done

# 6. table and figures
$PY bench/camvid_experiment.py --dir "$OUT" --lut "$LUT" --plots "$PLOTS" | tee "$OUT/summary.md"
log "done"
