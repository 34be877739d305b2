"""Reproduce the paper's experiments (chapter 6) at a preset: a results JSON and the figures.

    python benchmarks/reproduce.py --preset cpu --jobs 2   # 43 runs on the synthetic faces,
                                                    # ~100 min on 2 CPU cores; writes vaegan_lite/
                                                    # results/experiments-cpu/, which the book reads
    python benchmarks/reproduce.py --preset gpu     # CelebA 64x64 (see book/running.md), a GPU
    python benchmarks/reproduce.py --preset smoke --out /tmp/exp   # seconds: does it all run?

Runs are kept in the book's runs folder (runs/<preset>/06_experiments, or $VAEGAN_RUNS), so an
interrupted reproduction resumes where it stopped and the chapter reads the same runs. What it
runs is vaegan_lite.config.PLANS[preset]; the JSON records the plan, the preset, the commit,
the machine and the time taken. --rerun measures again even when results for this plan exist.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from vaegan_lite.book import experiments
from vaegan_lite.config import PLANS, PRESET_NAMES, get_preset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=PRESET_NAMES, default=None,
                    help="default: $VAEGAN_PRESET, else gpu with CUDA, else cpu")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default: experiments.results_dir(preset))")  # fmt: skip
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="train in this many one-thread processes (CPU: the cores)")  # fmt: skip
    ap.add_argument("--rerun", action="store_true", help="measure again even if results exist")
    a = ap.parse_args(argv)
    if a.threads is not None:
        if a.threads < 1:
            ap.error(f"--threads must be >= 1, got {a.threads}")
        torch.set_num_threads(a.threads)
    if a.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {a.jobs}")
    preset = get_preset(a.preset)
    out = a.out or experiments.results_dir(preset)
    if out.exists() and not out.is_dir():
        ap.error(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    plan = PLANS[preset.name]
    if a.rerun:
        res = experiments.write_results(preset, plan, out, jobs=a.jobs)
    else:
        res, _ = experiments.load_or_reproduce(preset, plan, out, jobs=a.jobs)
    for table in (experiments.five_model_table, experiments.gamma_table, experiments.table2,
                  experiments.knn_table, experiments.claims):  # fmt: skip
        print(table(res), end="\n\n")
    print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError) as e:  # bad data root, unreadable runs: one line, not a traceback
        print(f"reproduce.py: error: {e}", file=sys.stderr)
        sys.exit(2)
