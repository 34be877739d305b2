#!/usr/bin/env bash
# Issue 28's GPU run: chapter 6's plan gpu-synthetic (Table 1's networks at 64x64 on the synthetic
# faces; the seeds in SEEDS, default all: "0 1") in one call of the device tool, about 8 minutes:
#
#   bash tools/gpu_experiments.sh COMMIT [TRAIN_BUDGET_S]     # timeout_s 560
#   SEEDS=1 bash tools/gpu_experiments.sh COMMIT 300          # a part: seed 1 only
#
#   $OUT/exp/results-seeds-*.json   the (part of the) results, with provenance (GPU, commit)
#   $OUT/exp/fig*.png               the figures (with seed 0)
#   $OUT/reproduce.log, gpu.txt     the log (with the sizing: ms a step, steps per run)
#
# It first times VAE/GAN steps with JOBS (default 6) runs training at once, then trains every run
# of the seeds for the steps that fit TRAIN_BUDGET_S (default 300), and measures them. Back on the
# CPU: python benchmarks/reproduce.py --plan gpu-synthetic --merge PARTS... (every seed once)
# writes vaegan_lite/results/experiments-gpu-synthetic/, which chapters 3, 4 and 6 show.
set -euo pipefail
COMMIT=${1:?usage: gpu_experiments.sh COMMIT [TRAIN_BUDGET_S]}
BUDGET=${2:-300}
: "${OUT:?set OUT to the folder that comes back}"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export VAEGAN_RUNS=${VAEGAN_RUNS:-/tmp/gpu-synthetic-runs}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" || true
# shellcheck disable=SC2086  # SEEDS: several words
timeout $((BUDGET + 240)) python3 benchmarks/reproduce.py --plan gpu-synthetic \
  --budget-s "$BUDGET" --jobs "${JOBS:-6}" --seeds ${SEEDS:-0 1} ${REPRODUCE_ARGS:-} \
  --commit "$COMMIT" --out "$OUT/exp" 2>&1 | tee "$OUT/reproduce.log"
