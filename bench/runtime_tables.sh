#!/usr/bin/env bash
# Latency tables of the Small space for every deployment runtime, built and checked with the DEFAULT flags
# (what a user runs): docs/LATENCY.md "Tables for the runtimes you ship".
#
#   bash bench/runtime_tables.sh            # each step waits until the 1-minute load average is < 0.5
#   FORCE=1 bash bench/runtime_tables.sh    # do not wait (figures from a busy machine are wrong)
#
# Per size and backend:
#   squeezenas lut build --space small --size H W --num-classes 11 --backend B --out OUT/small_HxW_B.json
#   squeezenas lut check --lut OUT/small_HxW_B.json --samples 24 --out OUT/small_HxW_B_check.json
# with the wall seconds of each build and check in OUT/build_wall.tsv and OUT/check_wall.tsv; then OUT/summary.md
# (build time, held-out calibrated share within ±5% and ±10%, raw τ, ...) and, per size,
# OUT/disagree_HxW.md with the figure PLOTS/lut_runtimes_HxW.png (where the runtimes disagree about which
# candidates are cheap). Every step is skipped when its output exists (a table build resumes from its partial
# file), so an interrupted run can simply be started again.
#
# Settings (environment): BACKENDS ("eager onnxruntime openvino executorch"), SIZES ("128x256 360x480"), CLASSES
# (11, CamVid's: the 360x480 tables then serve bench/runtime_search.py; the decoder's cost depends on the classes),
# SPACE (small; a name or a space file), SAMPLES (24), OUT (bench/results/lut/runtimes), PLOTS (docs/img),
# BUILD_FLAGS / CHECK_FLAGS (extra options, empty: the defaults), MAX_WAIT (s, 7200), THREADS (empty: the default,
# what a deployment here uses, torch's thread count; e.g. THREADS=1 for a table of one thread, OUT elsewhere).
# A tiny run that only shows the script works end to end (minutes, figures meaningless; tiny.json: a space file
# with one or two stages, e.g. tests/cli/test_lut_cli.py's TINY written out with MacroArch.to_dict):
#   FORCE=1 SPACE=tiny.json SIZES=32x64 SAMPLES=4 OUT=/tmp/rt PLOTS=/tmp/rt \
#     BUILD_FLAGS="--min-run-time 0.01 --max-other-cpu -1" CHECK_FLAGS="--max-other-cpu -1" bash bench/runtime_tables.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BACKENDS=${BACKENDS:-"eager onnxruntime openvino executorch"}
SIZES=${SIZES:-"128x256 360x480"}
SPACE=${SPACE:-small}
SAMPLES=${SAMPLES:-24}
OUT=${OUT:-bench/results/lut/runtimes}
PLOTS=${PLOTS:-docs/img}
CLASSES=${CLASSES:-11}
BUILD_FLAGS="--num-classes $CLASSES ${BUILD_FLAGS:-}${THREADS:+ --threads $THREADS}"
CHECK_FLAGS=${CHECK_FLAGS:-}
SQ="$PY -m squeezenas.cli.main"
name=$(basename "${SPACE%.*}")
mkdir -p "$OUT"

source bench/quiet.sh  # quiet: wait until nothing else runs
log="$OUT/experiment.log"
{
  echo "# $(date -u +%FT%TZ) $(uname -srm), load: $(cat /proc/loadavg)"
  $PY - <<'EOF'
import json
from squeezenas.cost.timing import BACKENDS, device_fingerprint
fp = device_fingerprint("cpu")
for name in ("openvino", "executorch"):
    try:
        fp[name] = BACKENDS.get(name).version()
    except Exception:  # the runtime is not installed: its rows will be missing too
        fp[name] = None
print(json.dumps({"fingerprint": fp}))
EOF
} | tee -a "$log"

for size in $SIZES; do
  h=${size%x*}; w=${size#*x}
  for backend in $BACKENDS; do
    t="$OUT/${name}_${size}_${backend}"
    if [[ ! -f "$t.json" ]]; then
      quiet
      start=$(date +%s)
      # shellcheck disable=SC2086  # BUILD_FLAGS is a list of options
      $SQ lut build --space "$SPACE" --size "$h" "$w" --backend "$backend" $BUILD_FLAGS --out "$t.json" | tee -a "$log"
      echo "build $name $size $backend: $(( $(date +%s) - start )) s wall" | tee -a "$log"
      printf '%s\t%s\t%s\n' "$size" "$backend" "$(( $(date +%s) - start ))" >> "$OUT/build_wall.tsv"
    fi
    if [[ ! -f "${t}_check.json" ]]; then
      quiet
      # shellcheck disable=SC2086
      start=$(date +%s)
      $SQ lut check --lut "$t.json" --samples "$SAMPLES" $CHECK_FLAGS --out "${t}_check.json" | tee -a "$log"
      printf '%s\t%s\t%s\n' "$size" "$backend" "$(( $(date +%s) - start ))" >> "$OUT/check_wall.tsv"
    fi
    echo "load after $name $size $backend: $(cat /proc/loadavg)" | tee -a "$log"
  done
done

$PY bench/runtime_tables.py --dir "$OUT" --plots "$PLOTS"  # OUT/summary.md, OUT/disagree_HxW.md, the figures
echo "# done $(date -u +%FT%TZ), load: $(cat /proc/loadavg)" | tee -a "$log"
