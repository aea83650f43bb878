#!/usr/bin/env bash
# Ranking fidelity on CamVid with this CPU as the target: one latency table (Small at 180×240, eager, one thread,
# min of 3 rounds), then every configuration of bench/ranking_fidelity.py in turn. Each step resumes: run it again
# after an interruption.   bash bench/ranking_fidelity.sh   → bench/results/ranking/<configuration>.json
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/ranking}
DATA=${DATA:-../shared/data/camvid}
CONFIGURATIONS=${CONFIGURATIONS-"new_path old_mixture new_mixture old_path"}  # set but empty: the table only
ARGS=${ARGS:---target 7.77 --search-epochs 8 --n 80 --val-limit 40 --k 10 --train-epochs 8 --crop 176 240 --size 180 240}
mkdir -p "$OUT"
if [ ! -f "$OUT/lut.json" ]; then
  $PY -m squeezenas.cli.main lut build --space small --size 180 240 --num-classes 11 --threads 1 --statistic min \
    --rounds 3 --min-run-time 0.1 --out "$OUT/lut.json" --quiet
fi
for c in $CONFIGURATIONS; do
  $PY bench/ranking_fidelity.py --configuration "$c" --data-root "$DATA" --lut "$OUT/lut.json" --out "$OUT" $ARGS \
    2>&1 | grep -v -e Warning -e atomic_write_json | tee -a "$OUT/ranking.log"
done
