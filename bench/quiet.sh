# Sourced by the measuring scripts (bench/lut_experiment.sh, bench/runtime_tables.sh): ``quiet`` waits before a
# step (up to MAX_WAIT s, default 2 h) until the 1-minute load average is below 0.5, i.e. nothing else runs.
# FORCE=1 skips the wait (figures from a busy machine are wrong: see docs/LATENCY.md).
quiet() {
  [[ "${FORCE:-0}" == 1 ]] && return 0
  local waited=0 load
  while load=$(cut -d' ' -f1 /proc/loadavg); awk "BEGIN{exit !($load >= 0.5)}"; do
    if (( waited >= ${MAX_WAIT:-7200} )); then
      echo "load average still $load after ${waited} s: giving up (FORCE=1 to run anyway)" >&2; exit 1
    fi
    (( waited % 300 == 0 )) && echo "waiting for a quiet machine (load average $load) ..." >&2
    sleep 10; waited=$((waited + 10))
  done
}
