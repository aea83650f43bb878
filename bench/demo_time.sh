#!/usr/bin/env bash
# The demo's wall time and peak memory on this machine, from an empty run folder (the environment exists):
#   bash bench/demo_time.sh            → bench/results/demo/{demo.log,time.txt,summary.json,report.md}
# Run it on an idle machine: the latency table and the end-to-end timings wait for quiet CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo_time}
RESULTS=${RESULTS:-bench/results/demo}
rm -rf "$OUT"
mkdir -p "$RESULTS"
uptime > "$RESULTS/time.txt"
/usr/bin/time -v .venv/bin/squeezenas demo --out "$OUT" --no-progress > "$RESULTS/demo.log" 2>> "$RESULTS/time.txt"
cp "$OUT/summary.json" "$OUT/report.md" "$RESULTS/"
grep -E "Elapsed|Maximum resident" "$RESULTS/time.txt"
