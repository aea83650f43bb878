#!/usr/bin/env bash
# Latency lookup tables on this machine, checked end to end: every figure of docs/LATENCY.md.
#
#   bench/lut_experiment.sh              # each step waits until the 1-minute load average is < 0.5
#   FORCE=1 bench/lut_experiment.sh      # do not wait (figures from a busy machine are wrong)
#
# Settings (environment): THREADS (1: on this 2-vCPU VM one thread is as fast as two at batch 1 and far steadier,
# docs/LATENCY.md), STATISTIC (min: the per-call figure of tables and checks; median on a quiet dedicated machine), SAMPLES (24 check networks), FRESH (12 networks of another seed, to test
# the stored calibration on networks it was not fitted on), MRT (0.3 s of sampling per part/network and round),
# ROUNDS (5: every part and network timed in 5 round-robin rounds; the median round kept, the fastest with STATISTIC=min), SIZES,
# BACKENDS ("eager onnxruntime onnxruntime-alone"; -alone: ops timed without the adapter, for comparison),
# EXPORTER (dynamo; torchscript exports ~10x faster), OUT (bench/results/lut), ZOO_SIZES, ZOO_MRT (2 s),
# PLOTS (docs/img). Every step is skipped when its output exists (and a table build resumes from its partial
# file), so an interrupted run can simply be started again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
THREADS=${THREADS:-1}
STATISTIC=${STATISTIC:-min}
SAMPLES=${SAMPLES:-24}
FRESH=${FRESH:-12}
MRT=${MRT:-0.3}
ROUNDS=${ROUNDS:-5}
SIZES=${SIZES:-"128x256 360x480"}
BACKENDS=${BACKENDS:-"eager onnxruntime onnxruntime-alone"}
OUT=${OUT:-bench/results/lut}
EXPORTER=${EXPORTER:-dynamo}
ZOO_SIZES=${ZOO_SIZES:-"360x480 1024x2048"}
ZOO_MRT=${ZOO_MRT:-2}
PLOTS=${PLOTS:-docs/img}
SQ="$PY -m squeezenas.cli.main"
mkdir -p "$OUT"

source bench/quiet.sh  # quiet: wait until nothing else runs (FORCE=1: do not)

log="$OUT/experiment.log"
{
  echo "# $(date -u +%FT%TZ) $(uname -srm), load: $(cat /proc/loadavg)"
  $PY - <<'EOF'
import json, torch, onnxruntime, numpy
from squeezenas.cost.timing import device_fingerprint
print(json.dumps({"fingerprint": device_fingerprint("cpu"), "numpy": numpy.__version__}))
EOF
} | tee -a "$log"

for size in $SIZES; do
  h=${size%x*}; w=${size#*x}
  for variant in $BACKENDS; do
    # "onnxruntime-alone": ops timed alone instead of after an adapter (to show what the adapter corrects)
    backend=${variant%-alone}; context=auto; [[ "$variant" == *-alone ]] && context=alone
    t="$OUT/small_${size}_${variant}"
    if [[ ! -f "$t.json" ]]; then
      quiet
      start=$(date +%s)
      $SQ lut build --space small --size "$h" "$w" --backend "$backend" --threads "$THREADS" --min-run-time "$MRT" \
        --onnx-exporter "$EXPORTER" --context "$context" --rounds "$ROUNDS" --statistic "$STATISTIC" --out "$t.json"
      echo "build small $size $variant: $(( $(date +%s) - start )) s wall" | tee -a "$log"
    fi
    if [[ ! -f "${t}_check.json" ]]; then
      quiet
      # 24 networks spanning the range; the calibration (fit on all 24) is stored in the table; the errors
      # reported as calibrated are leave-one-out (each network predicted by a fit on the other 23)
      $SQ lut check --lut "$t.json" --samples "$SAMPLES" --seed 0 --calibrate --min-run-time "$MRT" \
        --rounds "$ROUNDS" --out "${t}_check.json" | tee -a "$log"
    fi
    if [[ "$FRESH" -gt 0 && ! -f "${t}_fresh.json" ]]; then
      quiet
      # networks of another seed: the stored calibration has never seen them
      $SQ lut check --lut "$t.json" --samples "$FRESH" --seed 1 --min-run-time "$MRT" \
        --rounds "$ROUNDS" --out "${t}_fresh.json" | tee -a "$log"
    fi
    echo "load after small $size $variant: $(cat /proc/loadavg)" | tee -a "$log"
  done
done

$PY bench/lut_experiment.py summary --dir "$OUT" | tee "$OUT/summary.md"
for size in $SIZES; do
  if [[ -f "$OUT/small_${size}_eager.json" && -f "$OUT/small_${size}_onnxruntime.json" ]]; then
    $PY bench/lut_experiment.py compare --eager "$OUT/small_${size}_eager.json" \
      --ort "$OUT/small_${size}_onnxruntime.json" --positions 0 4 8 12 16 \
      --plot "$PLOTS/lut_ort_vs_eager_${size}.png" | tee "$OUT/compare_${size}.md"
  fi
done

quiet
$PY bench/zoo_latency.py --sizes $ZOO_SIZES --backends eager onnxruntime --threads "$THREADS" \
  --min-run-time "$ZOO_MRT" --onnx-exporter "$EXPORTER" --out "$OUT/zoo_latency.json" | tee "$OUT/zoo_latency.md"
echo "# done $(date -u +%FT%TZ), load: $(cat /proc/loadavg)" | tee -a "$log"
