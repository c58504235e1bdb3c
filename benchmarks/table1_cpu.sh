#!/usr/bin/env bash
# The CPU-scale Table 1 (docs/table1_cpu.md), one (seed, strategy) run at a time; after each, its small result files
# are copied under docs/table1_cpu/METHOD/ so that they can be committed before the next starts (a session's
# processes end when it stops):
#   bash benchmarks/table1_cpu.sh METHOD "SEEDS" [N=10] [STRATEGIES...]
# e.g. bash benchmarks/table1_cpu.sh barlow "0 1 2" 10 offline cassle ours_no_rals ours offline_cm cassle_cm ours_random
# TAG=name EXTRA="++key=value ..." run a setting of its own beside the others (the runner's --tag), e.g. the
# mechanism runs: TAG=mechanism EXTRA="++data.last_task=3 ++online.log_candidates=true".
# SET=name keeps a set of runs (one machine's) in folders of its own: trained_models/table1-cpu-METHOD-SET and
# docs/table1_cpu/METHOD-SET.
# Each seed trains its own task-1 checkpoint (--task1 per_seed). Finished runs (a result.json under
# trained_models/table1-cpu-METHOD) are skipped. A lost task-1 checkpoint is retrained; on the same kind of machine it
# comes back bitwise equal and the seed continues, elsewhere the runner stops with an error (the fingerprints differ)
# and the seed must start again (docs/table1_cpu.md, "How the runs continue").
set -euo pipefail
cd "$(dirname "$0")/.."
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
METHOD=$1 SEEDS=$2
shift 2
STEPS=10; if [[ ${1:-} =~ ^[0-9]+$ ]]; then STEPS=$1; shift; fi
STRATEGIES=("$@")
TAG_ARGS=(); [ -n "${TAG:-}" ] && TAG_ARGS=(--tag "$TAG")
read -r -a EXTRA_ARGS <<< "${EXTRA:-}"
[ ${#STRATEGIES[@]} -gt 0 ] || STRATEGIES=(offline cassle ours_no_rals ours)
NPZ=${NPZ:-../shared/datasets/cifar100/cifar100_uint8.npz}
# SET names a set of runs made on one machine (its rows pair with each other only): its own folders.
OUT=trained_models/table1-cpu-$METHOD${SET:+-$SET}
DOCS=docs/table1_cpu/$METHOD${SET:+-$SET}

sync_docs() {
  mkdir -p "$DOCS"
  for f in results.csv results.md results.png; do
    if [ -s "$OUT/$f" ]; then cp "$OUT/$f" "$DOCS"/; fi
  done
  for log in "$OUT"/task1/seed*/task1/logs/version_0/metrics.csv; do  # task-1 training curves
    [ -f "$log" ] || continue
    seed_dir=${log#"$OUT"/task1/}
    mkdir -p "$DOCS/task1"
    cp "$log" "$DOCS/task1/${seed_dir%%/*}_metrics.csv"
  done
  for run in "$OUT"/*_seed*/ "$OUT"/task1/ "$OUT"/random_init/; do
    [ -d "$run" ] || continue
    dest="$DOCS/$(basename "$run")"
    mkdir -p "$dest"
    for f in "$run"result.json "$run"task_matrix.csv "$run"continual.json "$run"task_matrix.png "$run"probe_seed*.json \
      "$run"online/online_candidates.npz "$run"online/stream.json; do
      if [ -f "$f" ]; then cp "$f" "$dest/"; fi
    done
    if [ -f "$run/online/online_curves.png" ]; then cp "$run/online/online_curves.png" "$dest/"; fi
    if [ -f "$run/online/online_steps.csv" ]; then gzip -c "$run/online/online_steps.csv" > "$dest/online_steps.csv.gz"; fi
  done
}

for seed in $SEEDS; do
  for strategy in "${STRATEGIES[@]}"; do
    python -m solo_ossl.compare --dataset cifar100 --method "$METHOD" --steps "$STEPS" --scale cpu --seeds "$seed" \
      --task1 per_seed --strategies "$strategy" --output-dir "$OUT" "${TAG_ARGS[@]}" ++data.dataset=npz \
      ++data.data_dir="$NPZ" "${EXTRA_ARGS[@]}"
    sync_docs
    echo "[table1] $METHOD $strategy N=$STEPS seed $seed ${TAG:-} done: $(date)"
  done
done
