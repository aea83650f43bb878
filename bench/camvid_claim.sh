#!/usr/bin/env bash
# The paper's claim on CamVid, this CPU as the target (PyTorch eager, batch 1, one thread, 180×240), at two
# latency targets (issue 14; docs/RESULTS.md):
#   T1 = MobileNetV3-Small LR-ASPP's measured latency, T2 = between it and MobileNetV3-Large's
#   (bench/camvid_claim.py targets);
#   at each: a latency search (--target-latency T) and a MAC search (--target-gmacs: the GMACs of the space's
#   networks at latency T), both selected by one rule: the most accurate sample within T, its finalists timed
#   end to end (squeezenas sample --budget-ms T);
#   the four chosen networks, both MobileNetV3 LR-ASPP baselines and the three released networks fine-tuned
#   from their Cityscapes weights, each trained with the recipe of bench/camvid_recipe.sh for every seed;
#   the released networks also scored zero-shot (Cityscapes classes mapped onto CamVid's); and the four chosen
#   networks fine-tuned like the released ones from released lat_small's Cityscapes weights, every tensor whose
#   name and shape match (--init-from: stem, head and the blocks whose shapes agree; the rest fresh): search on
#   the target device plus pretrained weights, what a user with a small dataset would run;
#   then claim.json, summary.md and the latency–mIoU figure (bench/camvid_claim.py report).
#
#   bash bench/camvid_claim.sh
#
# Every step is skipped when its output exists and trainings continue from their last.pt: run the same command
# again after an interruption. What is already in RESULTS (committed: the targets, latencies, chosen genotypes,
# zero-shot scores and each finished training's test.json, under RESULTS/runs/RECIPE_eEPOCHS_ftFT_EPOCHS/) is
# restored into OUT first, so a fresh clone or another session continues where the committed results stop, without
# timing, searching or training anything again; to redo a step, delete its file in OUT and in RESULTS. Everything timed (table, latencies, the finalists of the selection) runs before
# any training, alone on the machine. Settings (environment): DATA, OUT (runs/camvid_claim), SEEDS ("0 1 2"),
# EPOCHS (recipe default), FT_EPOCHS (40: fine-tuning), SEARCH_EPOCHS (8), N (100 samples), VAL_LIMIT (50
# strided validation images per sample; finalists on the whole split), LANES (2 trainings side by side, one
# thread each), RESULTS (bench/results/camvid_claim), PLOTS (docs/img), SHARED (../shared: released weights), UNTIL ("targets":
# stop once the table and the targets exist; "selection": once every timed step is done, before the trainings).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SQ="$BIN/squeezenas"
PY="$BIN/python"
DATA=${DATA:-../shared/data/camvid}
SHARED=${SHARED:-../shared}
OUT=${OUT:-runs/camvid_claim}
SEEDS=${SEEDS:-"0 1 2"}
FT_EPOCHS=${FT_EPOCHS:-40}
SEARCH_EPOCHS=${SEARCH_EPOCHS:-8}
N=${N:-100}
VAL_LIMIT=${VAL_LIMIT:-50}
LANES=${LANES:-2}
RESULTS=${RESULTS:-bench/results/camvid_claim}
CLAIM=${CLAIM:-bench/results/camvid_experiment/claim.json}
PLOTS=${PLOTS:-docs/img}
UNTIL=${UNTIL:-}
SIZE="180 240"
CROP="176 240"
DEVICE=cpu
LUT="$OUT/lut_eager.json"
mkdir -p "$OUT/latency" "$OUT/runs" "$OUT/zero_shot"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/claim.log"; }
json_get() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }
log "start: seeds $SEEDS, search epochs $SEARCH_EPOCHS, recipe ${RECIPE:-v2}, load $(cut -d' ' -f1-3 /proc/loadavg)"

# 0. continue from the committed results (RESULTS): OUT's files win where both exist
restore() {  # src dst
  [[ -f "$1" && ! -f "$2" ]] || return 0
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2"
}
restore "$RESULTS/targets.json" "$OUT/targets.json"
restore "$RESULTS/lut_eager_check.json" "$OUT/lut_eager_check.json"
for f in "$RESULTS"/latency_*.json; do
  if [[ -f "$f" ]]; then restore "$f" "$OUT/latency/$(basename "${f#"$RESULTS"/latency_}")"; fi
done
for f in "$RESULTS"/search_*_t[12]_chosen_genotype.json; do
  if [[ -f "$f" ]]; then restore "$f" "$OUT/$(basename "${f%_chosen_genotype.json}")/chosen_genotype.json"; fi
done
for f in "$RESULTS"/zero_shot_*.json; do
  if [[ -f "$f" ]]; then restore "$f" "$OUT/zero_shot/$(basename "${f#"$RESULTS"/zero_shot_}")"; fi
done
# finished trainings, kept per recipe and schedule: a run with other EPOCHS (a smoke test) restores none of these
# shellcheck source=bench/camvid_recipe.sh
source bench/camvid_recipe.sh
SAVED="$RESULTS/runs/${RECIPE}_e${EPOCHS}_ft${FT_EPOCHS}"
for f in "$SAVED"/*/test.json; do
  if [[ -f "$f" ]]; then restore "$f" "$OUT/runs/$(basename "$(dirname "$f")")/test.json"; fi
done
for f in "$OUT"/runs/*/test.json; do  # and the other way: finished here, not saved yet
  if [[ -f "$f" ]]; then restore "$f" "$SAVED/$(basename "$(dirname "$f")")/test.json"; fi
done
chosen_all() { for k in 1 2; do for arm in latency mac; do
  [[ -f "$OUT/search_${arm}_t$k/chosen_genotype.json" ]] || return 1; done; done; }

# 1. the target's latency table (one thread, the tool's default statistic and rounds), checked and calibrated;
# only the targets, searches and selections need it
if [[ ! -f "$LUT" ]] && ! { [[ -f "$OUT/targets.json" ]] && chosen_all; }; then
  log "latency table"
  if [[ ! -f "$LUT.tmp.json" ]]; then  # built, not yet checked: the check runs again
    # shellcheck disable=SC2086
    $SQ lut build --space small --size $SIZE --num-classes 11 --threads 1 --quiet --out "$LUT.tmp.json"
  fi
  $SQ lut check --lut "$LUT.tmp.json" --samples 24 --calibrate --quiet --out "$OUT/lut_eager_check.json" > /dev/null
  mv "$LUT.tmp.json" "$LUT"
fi

latency() {  # name model: batch-1 latency, eager and onnxruntime, one thread → OUT/latency/NAME_BACKEND.json
  for backend in eager onnxruntime; do
    local f="$OUT/latency/$1_$backend.json"
    [[ -f "$f" ]] && continue
    log "latency $1 $backend"
    # shellcheck disable=SC2086
    $SQ bench "$2" --size $SIZE --num-classes 11 --threads 1 --backend "$backend" --min-run-time 3 --no-memory \
      --json > "$f.tmp"
    mv "$f.tmp" "$f"
  done
}

# 2. the baselines' latency sets the targets
latency mnv3_small mobilenetv3_small_lraspp
latency mnv3_large mobilenetv3_large_lraspp
[[ -f "$OUT/targets.json" ]] || $PY bench/camvid_claim.py targets --dir "$OUT" --lut "$LUT" > /dev/null
log "targets (ms, GMACs): $(json_get "$OUT/targets.json" \
  "[(t['target_ms'], round(t['mac_target']['gmacs'], 4)) for t in d['targets']]")"
[[ "$UNTIL" == targets ]] && exit 0

search() {  # dir, search flags...
  local dir="$1"; shift
  [[ -f "$dir/genotype.json" || -f "$dir/chosen_genotype.json" ]] && return 0
  local resume=(); [[ -f "$dir/checkpoint.pt" ]] && resume=(--resume)
  log "search $dir"
  # shellcheck disable=SC2086
  $SQ search --space small --dataset camvid --data-root "$DATA" --size $SIZE --epochs "$SEARCH_EPOCHS" \
    --crop $CROP --scale 0.25 1.0 --workers 1 --device "$DEVICE" --no-progress --out "$dir" "${resume[@]}" "$@" \
    >> "$dir.log" 2>&1
}
sample() {  # dir, budget (ms): the one selection rule of every searched arm
  [[ -f "$1/chosen_genotype.json" ]] && return 0
  log "sample $1 within $2 ms"
  # shellcheck disable=SC2086
  $SQ sample --search "$1" --n "$N" --lut "$LUT" --budget-ms "$2" --val-limit "$VAL_LIMIT" --val-size $SIZE \
    --device "$DEVICE" --workers 1 --no-progress >> "$1.log" 2>&1
}

# 3. at each target: latency search and MAC search, one selection rule, their latency measured
for k in 1 2; do
  T=$(json_get "$OUT/targets.json" "d['targets'][$k - 1]['target_ms']")
  G=$(json_get "$OUT/targets.json" "d['targets'][$k - 1]['mac_target']['gmacs']")
  search "$OUT/search_latency_t$k" --cost latency --lut "$LUT" --target-latency "$T"
  search "$OUT/search_mac_t$k" --cost mac --target-gmacs "$G"
  for arm in latency mac; do
    sample "$OUT/search_${arm}_t$k" "$T"
    latency "${arm}_t$k" "$OUT/search_${arm}_t$k/chosen_genotype.json"
  done
done
for net in lat_small mac_small mac_large; do latency "ft_$net" "squeezenas_$net"; done

# 4. zero-shot: the released Cityscapes networks on CamVid's test split, classes mapped
for net in lat_small mac_small mac_large; do
  f="$OUT/zero_shot/$net.json"
  [[ -f "$f" ]] && continue
  log "zero-shot $net"
  $SQ eval --model "squeezenas_$net" --checkpoint "$SHARED/weights/squeezenas-official/$net.pth" --dataset camvid \
    --data-root "$DATA" --split test --size $SIZE --class-map cityscapes-camvid --workers 1 --no-progress \
    --report "$f.tmp"
  mv "$f.tmp" "$f"
done

[[ "$UNTIL" == selection ]] && exit 0

# 5. every arm trained with the recipe, seed by seed, LANES side by side (one thread each)
lane_env=(); (( LANES > 1 )) && lane_env=(env OMP_NUM_THREADS=1)
train() {  # name model seed [flags...]
  local name="$1" model="$2" seed="$3" dir="$OUT/runs/$1_s$3"
  shift 3
  [[ -f "$dir/test.json" ]] && return 0
  log "train $name seed $seed"
  mkdir -p "$dir"
  camvid_train "$dir" "$model" --seed "$seed" "$@" >> "$dir.log" 2>&1
  log "trained $name seed $seed: test mIoU $(camvid_test_miou "$dir")"
  restore "$dir/test.json" "$SAVED/${name}_s$seed/test.json"  # what a later session restores (commit it)
}
# in the order that completes a verdict soonest: T1's three arms for the first two seeds; then, seed by seed,
# T2's arms, the fine-tuned released networks and the inheriting searched ones (short: a row for each early);
# then the remaining seeds
read -r -a seeds_ <<< "$SEEDS"
t1=() t2=() ft=() inh=()
inherit="--init-from $SHARED/weights/squeezenas-official/lat_small.pth --epochs $FT_EPOCHS"
for seed in "${seeds_[@]}"; do
  for arm in latency mac; do
    t1+=("${arm}_t1|$OUT/search_${arm}_t1/chosen_genotype.json|$seed|")
    t2+=("${arm}_t2|$OUT/search_${arm}_t2/chosen_genotype.json|$seed|")
  done
  t1+=("mnv3_small|mobilenetv3_small_lraspp|$seed|")
  t2+=("mnv3_large|mobilenetv3_large_lraspp|$seed|")
  for k in 1 2; do
    for arm in latency mac; do inh+=("inh_${arm}_t$k|$OUT/search_${arm}_t$k/chosen_genotype.json|$seed|$inherit"); done
  done
  for net in lat_small mac_small mac_large; do
    ft+=("ft_$net|squeezenas_$net|$seed|--init-from $SHARED/weights/squeezenas-official/$net.pth --epochs $FT_EPOCHS")
  done
done
first=$(( ${#seeds_[@]} < 2 ? ${#seeds_[@]} : 2 ))
jobs_=("${t1[@]:0:3*first}")
for (( i = 0; i < first; i++ )); do jobs_+=("${t2[@]:3*i:3}" "${ft[@]:3*i:3}" "${inh[@]:4*i:4}"); done
jobs_+=("${t1[@]:3*first}" "${t2[@]:3*first}" "${ft[@]:3*first}" "${inh[@]:4*first}")
# shellcheck source=bench/lanes.sh
source bench/lanes.sh
lanes_start "$LANES"
for j in "${jobs_[@]}"; do
  IFS='|' read -r name model seed flags <<< "$j"
  # shellcheck disable=SC2086
  lane train "$name" "$model" "$seed" $flags
done
lanes_wait || exit 1

# 6. claim.json, summary.md, the figure
$PY bench/camvid_claim.py report --dir "$OUT" --results "$RESULTS" --plots "$PLOTS" --claim "$CLAIM"
cp "$OUT/targets.json" "$OUT/lut_eager_check.json" "$RESULTS/"
for f in "$OUT"/zero_shot/*.json; do cp "$f" "$RESULTS/zero_shot_$(basename "$f")"; done
log "done"
