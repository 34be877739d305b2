#!/usr/bin/env bash
# Issue 28's GPU run: chapter 6's plan gpu-synthetic (Table 1's networks at 64x64 on the synthetic
# faces; the seeds in SEEDS, default all: "0 1") in one call of the device tool, about 8 minutes:
#
#   bash tools/gpu_experiments.sh COMMIT [TRAIN_BUDGET_S]     # timeout_s 560
#   SEEDS=0 bash tools/gpu_experiments.sh COMMIT 270          # a part: seed 0 only
#   SEEDS=1 STEPS=N bash tools/gpu_experiments.sh COMMIT      # the other part, in another session
#
# Parts merge only when they trained the same steps: a later part gives the first part's steps
# per run as STEPS (its log's "N steps per run fit", its JSON's preset_settings.steps) rather
# than sizing its own to this GPU's speed.
#
#   $OUT/exp/results-seeds-*.json   the (part of the) results, with provenance (GPU, commit)
#   $OUT/exp/fig*.png               the figures (with seed 0)
#   $OUT/reproduce.log, gpu.txt     the log (with the sizing: ms a step, steps per run)
#
# It first times VAE/GAN steps with JOBS (default 6) runs training at once, then trains every run
# of the seeds for the steps that fit TRAIN_BUDGET_S (default 270: the rest of
# the call's 540 s is startup, the timing and the measuring of every run, and whatever still runs
# at the timeout is lost), and measures them. Back on the CPU: python benchmarks/reproduce.py
# --plan gpu-synthetic --merge PARTS... (every seed once) writes
# vaegan_lite/results/experiments-gpu-synthetic/, which chapters 3, 4 and 6 show.
set -euo pipefail
COMMIT=${1:?usage: gpu_experiments.sh COMMIT [TRAIN_BUDGET_S]}
BUDGET=${2:-270}
: "${OUT:?set OUT to the folder that comes back}"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export VAEGAN_RUNS=${VAEGAN_RUNS:-/tmp/gpu-synthetic-runs}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" || true
if [ -n "${STEPS:-}" ]; then SIZE=(--steps "$STEPS"); else SIZE=(--budget-s "$BUDGET"); fi
# shellcheck disable=SC2086  # SEEDS: several words
timeout "${CALL_S:-540}" python3 benchmarks/reproduce.py --plan gpu-synthetic "${SIZE[@]}" \
  --jobs "${JOBS:-6}" --seeds ${SEEDS:-0 1} ${REPRODUCE_ARGS:-} \
  --commit "$COMMIT" --out "$OUT/exp" 2>&1 | tee "$OUT/reproduce.log"
