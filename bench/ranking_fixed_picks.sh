#!/usr/bin/env bash
# Every search configuration's supernet scoring the same retrained picks (bench/ranking_fixed_picks.py): the table
# of bench/ranking_fidelity.sh (built by it if absent, on an idle machine), then the configurations in two lanes of
# one thread each (path searches in one, the slower mixture searches in the other). Each step resumes.
#   bash bench/ranking_fixed_picks.sh   → bench/results/ranking/fixed_picks.json, runs/ranking/fixed_picks_*.log
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/ranking}
DATA=${DATA:-../shared/data/camvid}
RESULTS=${RESULTS:-bench/results/ranking}
GT=${GT:-"$RESULTS/new_path_v2_s0-1.json $RESULTS/old_mixture_v2.json"}
TARGET=${TARGET:-7.77}  # ms in the table; on a day the machine runs slow, scale it (docs/SEARCH.md)
LANES=${LANES:-"new_path,new_path_alternate,old_path,new_path_drive old_mixture,new_mixture"}
pids=()
PY=$PY OUT=$OUT CONFIGURATIONS= bash bench/ranking_fidelity.sh  # the table only
for lane in $LANES; do
  OMP_NUM_THREADS=1 $PY bench/ranking_fixed_picks.py --configurations ${lane//,/ } --ground-truth $GT \
    --lut "$OUT/lut.json" --target "$TARGET" --data-root "$DATA" --out "$OUT" --results "$RESULTS/fixed_picks.json" \
    > "$OUT/fixed_picks_${lane//,/_}.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
grep -h "picks scored" "$OUT"/fixed_picks_*.log || true
[ "$status" = 0 ] || { echo "a lane failed: see $OUT/fixed_picks_*.log" >&2; exit 1; }
