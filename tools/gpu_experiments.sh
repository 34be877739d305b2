#!/usr/bin/env bash
# Issue 28's GPU run: chapter 6's plan gpu-synthetic (Table 1's networks at 64x64 on the synthetic
# faces; the seeds in SEEDS, default all: "0 1") in one call of the device tool, about 8 minutes:
#
#   bash tools/gpu_experiments.sh COMMIT [TRAIN_BUDGET_S]     # timeout_s 560
#   SEEDS=0 bash tools/gpu_experiments.sh COMMIT 270          # a part: seed 0 only
#   SEEDS=1 STEPS=N bash tools/gpu_experiments.sh COMMIT      # the other part, in another session
#   DRY_RUN=1 OUT=/tmp/o bash tools/gpu_experiments.sh COMMIT  # on a CPU: the smoke preset's plan
#
# Parts merge only when they trained the same steps: a later part gives the first part's steps
# per run as STEPS (its log's "N steps per run fit", its JSON's preset_settings.steps) rather
# than sizing its own to this GPU's speed.
#
#   $OUT/exp/results-seeds-N.json   one part of the results per seed, with provenance (GPU,
#                                   commit), each written before the next seed trains
#   $OUT/exp/faces.npz              the faces the figures show (with seed 0): --merge draws the
#                                   figures from them and the joined results, here or later
#   $OUT/reproduce.log              the log: nvidia-smi's view of the GPU, then the sizing (ms a
#                                   step, steps per run) and every run's progress
#
# It first times VAE/GAN steps with JOBS (default 6) runs training at once, then, seed by seed,
# trains the seed's runs for the steps that fit all the seeds in TRAIN_BUDGET_S (default 200: the
# rest of the call's 540 s is startup, the timing, reading back and measuring every run, each
# process drawing the faces), measures them and writes the seed's part: a call past its time
# limit keeps the parts it finished (seed 0's first, with the faces), and a later call can
# make the rest with SEEDS and STEPS. Runs go to a new folder each call (a machine kept warm
# between two calls must not resume the first call's runs). Back on the CPU:
# python benchmarks/reproduce.py --plan gpu-synthetic --merge PARTS... (every seed once) writes
# vaegan_lite/results/experiments-gpu-synthetic/, which chapters 3, 4 and 6 show.
set -euo pipefail
COMMIT=${1:?usage: gpu_experiments.sh COMMIT [TRAIN_BUDGET_S]}
BUDGET=${2:-200}
: "${OUT:?set OUT to the folder that comes back}"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
VAEGAN_RUNS=${VAEGAN_RUNS:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-synthetic-runs.XXXXXX")}
export VAEGAN_RUNS
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/reproduce.log" 2>&1 \
  || true
if [ -z "${DRY_RUN:-}" ]; then  # in the call's first seconds: without CUDA it would train on the CPU
  python3 -c 'import sys, torch; torch.cuda.is_available() or sys.exit(
    f"gpu_experiments: torch {torch.__version__} sees no CUDA device here (DRY_RUN=1 on a CPU)")' \
    2>&1 | tee -a "$OUT/reproduce.log"
fi
if [ -n "${DRY_RUN:-}" ]; then  # this script's steps at the smoke preset's sizes (a CPU's minute)
  PLAN=(--preset smoke)
elif [ -n "${STEPS:-}" ]; then
  PLAN=(--plan gpu-synthetic --steps "$STEPS")
else
  PLAN=(--plan gpu-synthetic --budget-s "$BUDGET")
fi
# shellcheck disable=SC2086  # SEEDS: several words
timeout -k 10 "${CALL_S:-540}" python3 benchmarks/reproduce.py "${PLAN[@]}" \
  --jobs "${JOBS:-6}" --seeds ${SEEDS:-0 1} --part-per-seed ${REPRODUCE_ARGS:-} \
  --commit "$COMMIT" --out "$OUT/exp" 2>&1 | tee -a "$OUT/reproduce.log" \
  || echo "reproduce.py stopped (exit ${PIPESTATUS[0]}): the parts it wrote are in exp/" \
  | tee -a "$OUT/reproduce.log"
# A write the timeout cut short leaves its hidden temporary file: with the files that come back
# limited to 8, it must not push a part out. (The parts draw no figures: --merge draws them from
# faces.npz, with every seed's numbers.)
find "$OUT" -name '.*.tmp*' -delete
# the status says whether every seed asked for wrote its part (what did is kept either way)
for seed in ${SEEDS:-0 1}; do
  [ -f "$OUT/exp/results-seeds-$seed.json" ] || { echo "no part for seed $seed" \
    | tee -a "$OUT/reproduce.log"; exit 1; }
done
