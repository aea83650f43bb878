#!/usr/bin/env bash
# One search step's throughput, mixture vs path supernet, same batch, crop and threads, one after the other:
#   bash bench/supernet_modes.sh   → bench/results/supernet/modes_{mixture,path}.json
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench/results/supernet}
ARGS=${ARGS:---device cpu --batch-size 8 --crop 128 256 --channels-last --threads 2 --warmup 2 --steps 8}
mkdir -p "$OUT"
for mode in mixture path; do
  $PY bench/supernet_throughput.py $ARGS --supernet $mode --json "$OUT/modes_$mode.json" > /dev/null
  $PY -c "import json; d = json.load(open('$OUT/modes_$mode.json')); print('$mode', round(d['images_per_s'], 2), 'img/s, median step', round(d['step_s_median'], 3), 's, load', d['load_average'])"
done
