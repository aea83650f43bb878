# The one retraining recipe of the CamVid benchmarks (sourced by camvid_experiment.sh and camvid_seeds.sh).
# Needs SQ (the squeezenas command), DATA, EPOCHS, CROP ("H W"), SIZE ("H W"), DEVICE; lane_env (an array,
# e.g. (env OMP_NUM_THREADS=1) when runs go side by side on a CPU, else empty).
#
# camvid_train DIR MODEL [train flags...]: train MODEL from scratch into DIR (continuing from DIR/last.pt),
# then score best.pt on the test split into DIR/test.json. Does nothing when DIR/test.json exists.
camvid_train() {
  local dir="$1" model="$2" resume=()
  shift 2
  [[ -f "$dir/test.json" ]] && return 0
  [[ -f "$dir/last.pt" ]] && resume=(--resume)
  # shellcheck disable=SC2086
  "${lane_env[@]}" $SQ train --model "$model" --dataset camvid --data-root "$DATA" --num-classes 11 \
    --epochs "$EPOCHS" --batch-size 8 --lr 0.05 --schedule poly --crop $CROP --scale 0.25 1.0 \
    --val-size $SIZE --val-every 5 --workers 1 --device "$DEVICE" --no-progress --out "$dir" \
    "${resume[@]}" "$@"
  # shellcheck disable=SC2086
  "${lane_env[@]}" $SQ eval --checkpoint "$dir/best.pt" --split test --size $SIZE --device "$DEVICE" \
    --no-progress --report "$dir/test.json.tmp"
  mv "$dir/test.json.tmp" "$dir/test.json"
}
