#!/usr/bin/env bash
# Data-parallel training on this machine's CPU cores: the demo model (ResNet18 layout, width 16,
# 3x3 stem, Fashion-MNIST 28x28, global batch 64) for one epoch of --limit-train images, as
#   A  1 process, all cores in its thread pool
#   B  mpirun -np 2, batch norm per rank, cores / 2 threads per rank
#   S  mpirun -np 2, --sync-bn (2 more all-reduces per batch norm layer), cores / 2 threads per rank
#   C  1 process, cores / 2 threads (what one rank has to itself)
# interleaved (A B S C A B S C ...) so that load from other work on the machine hits all alike.
# Prints one line per run: configuration, training seconds of the epoch, images/s (from the run's
# metrics.csv: training time only, not the evaluation). Usage:
#   benchmarks/distributed_train.sh [REPEATS] [LIMIT_TRAIN]     (defaults 3, 2048)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repeats=${1:-3}
limit=${2:-2048}
loupe=build/cli/loupe
cores=$(nproc)
half=$(( cores / 2 > 0 ? cores / 2 : 1 ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--model resnet18 --small-input --width 16 --in-channels 1 --batch-size 64 --epochs 1 --limit-train "$limit"
        --limit-test 64 --workers 1 --optimizer sgd --lr 0.05 --seed 1)
mpi=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
     OMPI_MCA_rmaps_base_oversubscribe=1 mpirun --bind-to none -np 2)
report() {  # name, run folder
  local row
  row=$(sed -n 2p "$2/metrics.csv")
  echo "$1 $(cut -d, -f10 <<<"$row") s $(cut -d, -f11 <<<"$row") img/s (load $(cut -d' ' -f1 /proc/loadavg))"
}
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $cores cores; $limit images, batch 64"
for r in $(seq "$repeats"); do
  LOUPE_NUM_THREADS=$cores "$loupe" train "${common[@]}" --out "$work/a$r" > /dev/null
  report "A 1 process x $cores threads:" "$work/a$r"
  LOUPE_NUM_THREADS=$half "${mpi[@]}" "$loupe" train "${common[@]}" --out "$work/b$r" > /dev/null
  report "B 2 ranks x $half threads:" "$work/b$r"
  LOUPE_NUM_THREADS=$half "${mpi[@]}" "$loupe" train "${common[@]}" --sync-bn --out "$work/s$r" > /dev/null
  report "S 2 ranks x $half threads, sync-bn:" "$work/s$r"
  LOUPE_NUM_THREADS=$half "$loupe" train "${common[@]}" --out "$work/c$r" > /dev/null
  report "C 1 process x $half threads:" "$work/c$r"
done
