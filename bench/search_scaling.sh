#!/usr/bin/env bash
# Search step throughput on 2 CPU processes against 1, same global batch (the real loop under torchrun):
#   bash bench/search_scaling.sh   → bench/results/search_scaling/cpu_{1thread,shared}_{mixture,path}.json
# Run it on an otherwise idle machine: other jobs on the cores decide the figure (docs/SEARCH.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench/results/search_scaling}
ARGS=${ARGS:---crop 128 256 --batch-size 8 --epochs 3 --steps 8}
mkdir -p "$OUT"
for mode in mixture path; do
  # one thread per process (1 process: 1 thread, 2 processes: 1 thread each)
  $PY bench/search_scaling.py --procs 1 2 --threads-per-proc 1 --supernet $mode $ARGS --json "$OUT/cpu_1thread_$mode.json"
  # the cores shared out (1 process: all threads, 2 processes: half each)
  $PY bench/search_scaling.py --procs 1 2 --supernet $mode $ARGS --json "$OUT/cpu_shared_$mode.json"
done
