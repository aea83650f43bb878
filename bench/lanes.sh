# Runs jobs side by side, at most LANES_MAX at a time (sourced by the CamVid scripts):
#   lanes_start N; lane CMD ARGS...; lane ...; lanes_wait || exit 1
# A failed job does not stop the others; lanes_wait waits for every job and fails if any failed. Stopping the
# script (Ctrl-C, kill) stops its jobs too, so a rerun does not meet a training still running from before.
lanes_kill_tree() {  # a process and everything it started
  local child
  for child in $(pgrep -P "$1"); do lanes_kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
lanes_start() {
  LANES_MAX="$1" LANES_RUNNING=0 LANES_FAILED=0
  trap 'for p in $(jobs -p); do lanes_kill_tree "$p"; done' EXIT
  trap 'exit 130' INT TERM
}
lane() {
  "$@" &
  LANES_RUNNING=$((LANES_RUNNING + 1))
  if (( LANES_RUNNING >= LANES_MAX )); then
    wait -n || LANES_FAILED=1
    LANES_RUNNING=$((LANES_RUNNING - 1))
  fi
}
lanes_wait() {
  while (( LANES_RUNNING > 0 )); do
    wait -n || LANES_FAILED=1
    LANES_RUNNING=$((LANES_RUNNING - 1))
  done
  (( LANES_FAILED == 0 )) || { echo "some jobs failed: see their logs" >&2; return 1; }
}
