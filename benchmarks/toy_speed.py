"""Training time of chapter 7's 2D toy (AVAE with and without xi), as the chapter runs it.

python benchmarks/toy_speed.py                  # the cpu preset's steps, both models
python benchmarks/toy_speed.py --steps 300      # shorter

Two figures per model: wall seconds and CPU seconds (time.process_time, all threads). On a
machine shared with other jobs the wall time mostly measures their load; the CPU time barely
moves with it. Target: both models together in under a minute of CPU time at the cpu preset.
"""

import time

import torch

from vaegan_lite.book import toy
from vaegan_lite.cli import OneLineParser
from vaegan_lite.config import TOY_STEPS


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=TOY_STEPS["cpu"], help="training steps per model")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error(f"--steps must be at least 1, got {args.steps}")
    total = 0.0
    for xi in (0, 1):
        wall, cpu = time.perf_counter(), time.process_time()
        toy.train_toy(xi_dim=xi, steps=args.steps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        total += cpu
        print(f"xi_dim {xi}: {args.steps} steps  wall {wall:.1f} s  cpu {cpu:.1f} s")
    print(f"both: cpu {total:.1f} s (target < 60 s at {TOY_STEPS['cpu']} steps), "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip


if __name__ == "__main__":
    main()
