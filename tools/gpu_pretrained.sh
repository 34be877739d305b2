#!/usr/bin/env bash
# Issue 25's GPU run: train the shipped synthetic-vaegan and synthetic-vae with the GPU recipe
# (vaegan_lite.shipped.recipe(name, "cuda"): Table 1's networks at half width, int8), sized to a
# time budget, and judge both over every attribute (tools/attribute_bar.py). One call of the
# device tool, about 8 minutes on an H200; everything it makes lands in $OUT:
#
#   bash tools/gpu_pretrained.sh COMMIT [TRAIN_BUDGET_S]      # timeout_s 560
#
#   $OUT/weights/NAME.pt, NAME.json   the models and their provenance (GPU, steps, commit, time)
#   $OUT/samples-NAME.png             Dec(z_p) of the fixed samples after training
#   $OUT/bar-NAME.json, .txt          the judge's figures (attributes.BAR) on 2000 held-out faces
#   $OUT/train.log, gpu.txt           the training log and nvidia-smi's view of the GPU
#
# A dry run of the same steps on a CPU, with a few training steps and faces:
#   OUT=/tmp/o DEVICE=cuda-recipe-on-cpu TRAIN_ARGS="--steps 2 --faces 256" JUDGE_FACES=100 \
#     bash tools/gpu_pretrained.sh COMMIT 0
#
# Back on the CPU: copy weights/* into vaegan_lite/weights/, `python tools/train_pretrained.py
# --only web` (the widget's ONNX decoders), `make outputs`, then the book.
set -euo pipefail
COMMIT=${1:?usage: gpu_pretrained.sh COMMIT [TRAIN_BUDGET_S]}
BUDGET=${2:-330}
: "${OUT:?set OUT to the folder that comes back}"
RUNS=${RUNS:-/tmp/pretrained-gpu}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" || true
# shellcheck disable=SC2086  # TRAIN_ARGS: several words
timeout $((BUDGET + 150)) python3 tools/train_pretrained.py --device "${DEVICE:-cuda}" \
  --budget-s "$BUDGET" ${TRAIN_ARGS:-} --weights "$OUT/weights" --runs "$RUNS" --no-progress \
  --commit "$COMMIT" 2>&1 | tee "$OUT/train.log"
for name in synthetic-vaegan synthetic-vae; do
  cp "$RUNS/$name/samples.png" "$OUT/samples-$name.png"
  timeout 120 python3 tools/attribute_bar.py "$RUNS/$name/last.pt" --faces "${JUDGE_FACES:-2000}" \
    --json "$OUT/bar-$name.json" 2>&1 | tee "$OUT/bar-$name.txt"
done
