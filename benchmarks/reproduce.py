"""Reproduce the paper's experiments (chapter 6) at a preset: a results JSON and the figures.

    python benchmarks/reproduce.py --preset cpu --jobs 2   # 43 runs on the synthetic faces,
                                                    # about 160 min on 2 CPU cores; writes
                                                    # vaegan_lite/results/experiments-cpu/,
                                                    # which the book reads
    python benchmarks/reproduce.py --preset gpu     # CelebA 64x64 (see book/running.md), a GPU
    python benchmarks/reproduce.py --preset smoke --out /tmp/exp   # seconds: does it all run?

Runs are kept in the book's runs folder (runs/<preset>/06_experiments, or $VAEGAN_RUNS), so an
interrupted reproduction resumes where it stopped and the chapter reads the same runs. What it
runs is vaegan_lite.config.PLANS[preset]; the JSON records the plan, the preset, the commit,
the machine and the time taken. --rerun measures again even when results for this plan exist.

The paper's comparison at the paper's size, on a GPU lent for minutes (config.GPU_SYNTHETIC):

    python benchmarks/reproduce.py --plan gpu-synthetic --budget-s 300 --jobs 6 --out OUT
    python benchmarks/reproduce.py --plan gpu-synthetic --seeds 1 --steps 3000 --out OUT2
    python benchmarks/reproduce.py --plan gpu-synthetic --merge OUT/results-seeds-0.json \
        OUT2/results-seeds-1.json      # -> vaegan_lite/results/experiments-gpu-synthetic/

--budget-s first times VAE/GAN steps with --jobs processes training at once, then picks the
steps per run that train the runs of --seeds (default all) in that many seconds. --seeds makes a
part of the results (results-seeds-*.json; the figures' faces, faces.npz, come with seed 0);
--part-per-seed writes one part per seed, each before the next seed trains (so a call cut short
by a time limit keeps the parts it finished); --merge joins parts, which must hold every seed
once, into results.json, and draws the figures from seed 0's faces.npz and the joined results.

    python benchmarks/reproduce.py --redraw vaegan_lite/results/experiments-gpu-synthetic

draws a results folder's figures again from its results.json and faces.npz (a new style, say),
without the models.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from vaegan_lite.book import experiments
from vaegan_lite.book.experiments import FACES
from vaegan_lite.book.runs import get_preset
from vaegan_lite.cli import OneLineParser
from vaegan_lite.config import GPU_SYNTHETIC, PLANS, PRESET_NAMES, gpu_synthetic_preset
from vaegan_lite.files import atomic_path, atomic_write_text, read_json, why_unwritable
from vaegan_lite.train import TrainingDiverged


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=PRESET_NAMES, default=None,
                    help="default: $VAEGAN_PRESET, else gpu with CUDA, else cpu")  # fmt: skip
    ap.add_argument("--plan", choices=[GPU_SYNTHETIC], default=None,
                    help="instead of the preset's own plan (its preset: gpu on synthetic faces)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default: experiments.results_dir(preset))")  # fmt: skip
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="train in this many one-thread processes (CPU: the cores)")  # fmt: skip
    ap.add_argument("--rerun", action="store_true", help="measure again even if results exist")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="only these seeds: a part")
    ap.add_argument("--part-per-seed", action="store_true",
                    help="a part for each seed (of --seeds, default all), each written before "
                         "the next seed trains: a call cut short keeps the parts it finished")
    ap.add_argument("--steps", type=int, default=None, help=f"{GPU_SYNTHETIC}: steps per run")
    ap.add_argument("--budget-s", type=float, default=None,
                    help=f"{GPU_SYNTHETIC}: size the steps to train in this many seconds")
    ap.add_argument("--commit", default=None, help="the commit, where git is missing")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, metavar="PART",
                    help="join these parts (results-seeds-*.json) into --out/results.json")
    ap.add_argument("--redraw", type=Path, default=None, metavar="FOLDER",
                    help=f"draw a results folder's figures again from its results.json and {FACES}")
    a = ap.parse_args(argv)
    if a.redraw:
        if a.merge or a.plan or a.preset or a.out or a.rerun or a.part_per_seed or any(
                x is not None for x in (a.seeds, a.steps, a.budget_s)):  # fmt: skip
            ap.error("--redraw draws a results folder's figures: leave out the other options")
        return redraw(a.redraw)
    if a.threads is not None:
        if a.threads < 1:
            ap.error(f"--threads must be >= 1, got {a.threads}")
        torch.set_num_threads(a.threads)
    if a.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {a.jobs}")
    if a.plan and a.preset:
        ap.error(f"--plan {a.plan} has its own preset; leave out --preset")
    if (a.steps is not None or a.budget_s is not None) and not a.plan:
        ap.error("--steps and --budget-s size a --plan's runs")
    if a.steps is not None and a.steps < 1:  # 0 was read as "not given": 100 steps
        ap.error(f"--steps must be >= 1, got {a.steps}")
    if a.budget_s is not None and not (a.budget_s > 0 and math.isfinite(a.budget_s)):
        ap.error(f"--budget-s must be a positive number of seconds, got {a.budget_s:g}")
    if a.merge:
        if a.seeds is not None or a.part_per_seed:
            ap.error("--merge joins parts already made: leave out --seeds and --part-per-seed")
        if not (a.out or a.plan):
            ap.error("--merge: give --plan (to store the results in the package) or --out")
        return merge(a.merge, a.out or experiments.RESULTS / f"experiments-{a.plan}")
    if a.plan:
        plan = PLANS[a.plan]
        preset = gpu_synthetic_preset(a.steps or 100)
    else:
        preset = get_preset(a.preset)
        plan = PLANS[preset.name]
        if preset.cut:  # $VAEGAN_STEPS: a check, measured as chapter 6 measures it
            plan = experiments.cut_plan(plan, preset)
    # checked before the budget's timing runs and before --out is made
    if a.seeds is not None and not set(a.seeds) <= set(experiments.all_seeds(plan)):
        ap.error(f"--seeds: the plan's seeds are {experiments.all_seeds(plan)}")
    if a.part_per_seed and a.seeds is None:
        a.seeds = experiments.all_seeds(plan)
    out = a.out or experiments.results_dir(preset, a.plan)  # --budget-s changes only the steps
    if a.seeds is not None and experiments.RESULTS.resolve() in out.resolve().parents:
        ap.error(f"--seeds makes a part: give --out (not {out}, the package's results, which "
                 "--merge writes from the parts)")  # fmt: skip
    if out.exists() and not out.is_dir():
        ap.error(f"--out {out} is a file, not a folder")
    if why := why_unwritable(out):
        ap.error(f"--out {out}: {why}")
    if a.plan and a.budget_s:
        per_step = experiments.parallel_seconds_per_step(preset, a.jobs)
        steps = experiments.steps_to_fit(preset, plan, a.jobs, a.budget_s, per_step, a.seeds,
                                         part_per_seed=a.part_per_seed)  # fmt: skip
        print(f"{per_step * 1000:.1f} ms a VAE/GAN step with {a.jobs} training at once: "
              f"{steps} steps per run fit {a.budget_s:g} s")  # fmt: skip
        preset = gpu_synthetic_preset(steps)
    if a.seeds is not None or a.rerun or a.plan:
        # before --out is made: the gpu preset's whole plan (or a part of it) only when asked
        experiments.announce(preset, plan, out, a.seeds)
    out.mkdir(parents=True, exist_ok=True)
    if a.seeds is not None:
        lost = []
        for part in [[s] for s in sorted(set(a.seeds))] if a.part_per_seed else [a.seeds]:
            try:
                experiments.write_results(preset, plan, out, jobs=a.jobs, seeds=part,
                                          commit=a.commit)  # fmt: skip
            except TrainingDiverged as e:  # the next seed's part may still train: go on to it
                print(f"reproduce.py: seeds {part}: {e}; this part is not written",
                      file=sys.stderr)  # fmt: skip
                lost.append(part)
                continue
            print(f"results (a part): {out / experiments.part_file(part)}")
        return 1 if lost else 0
    if a.rerun or a.plan:
        res = experiments.write_results(preset, plan, out, jobs=a.jobs, commit=a.commit)
    else:
        res, _ = experiments.load_or_reproduce(preset, plan, out, jobs=a.jobs)
    show(res)
    print(f"results: {out / 'results.json'}")
    return 0

def show(res: dict) -> None:
    for table in (experiments.five_model_table, experiments.gamma_table, experiments.table2,
                  experiments.knn_table, experiments.claims):  # fmt: skip
        print(table(res), end="\n\n")


# What every part holds (experiments.reproduce, write_results), and what seed 0's part adds
PART_KEYS = ("preset", "plan", "preset_settings", "attr_names", "seeds", "five_models",
             "five_models_real", "table2", "knn", "seconds", "run_configs", "provenance")
SEED_0_KEYS = ("inception", "gamma_sweep")


def load_part(path: Path) -> dict[str, Any]:
    """A part (results-seeds-*.json), read and checked alone, so that what is wrong with it is
    said in one line naming its file, not as a KeyError or a zip() error while merging."""
    try:
        part = read_json(path)
    except ValueError as e:  # it says which file, and why
        raise ValueError(f"--merge {e}") from e
    if not isinstance(part, dict):
        raise ValueError(f"--merge {path}: a JSON {type(part).__name__}, not a results part")
    seeds = part.get("seeds")
    if not (isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)):
        raise ValueError(f"--merge {path}: no list of seeds; not a results part")
    keys = PART_KEYS + (SEED_0_KEYS if 0 in seeds else ())
    if missing := [k for k in keys if k not in part]:
        raise ValueError(f"--merge {path}: not a results part: no {', '.join(map(repr, missing))}")
    try:
        plan = experiments.merge_plan(part)
        rows = {"five_models": (plan.seeds, experiments.FIVE_MODELS),
                "table2": (plan.table2_seeds, experiments.CONDITIONAL_MODELS),
                "knn": (plan.seeds, ("gan", "vaegan"))}  # fmt: skip
        for key, (limit, models) in rows.items():
            want = len([s for s in seeds if s < limit])
            for m in models:
                if len(part[key][m]) != want:
                    raise ValueError(f"--merge {path}: {key}[{m!r}] holds {len(part[key][m])} "
                                     f"runs; its seeds {seeds} make {want}")  # fmt: skip
        # every figure finite and in range: check_results, on the plan cut to this part's seeds
        alone = dataclasses.replace(
            plan, seeds=len([s for s in seeds if s < plan.seeds]),
            table2_seeds=len([s for s in seeds if s < plan.table2_seeds]),
            gamma_factors=plan.gamma_factors if 0 in seeds else ())  # fmt: skip
        experiments.check_results({"gamma_sweep": {}, **part}, alone)
    except AssertionError as e:
        why = str(e) or "a figure out of range"
        raise ValueError(f"--merge {path}: fails the results check ({why})") from e
    except (KeyError, TypeError, AttributeError) as e:  # a plan or a table of another shape
        raise ValueError(f"--merge {path}: not a results part ({type(e).__name__}: {e})") from e
    return part


def merge(paths: list[Path], out: Path) -> int:
    """Join the parts into out/results.json, with the figures drawn from the faces of the part
    that has seed 0 (its FACES, copied beside them). Everything is read and checked before
    anything is written; each file is written whole."""
    parts = [load_part(p) for p in paths]
    try:  # ValueError: parts that differ, or seeds missing or twice
        res = experiments.merge_results(parts)
    except (KeyError, TypeError, AttributeError) as e:  # each part is whole, so rarely
        names = ", ".join(map(str, paths))
        raise ValueError(f"--merge {names}: cannot join them ({type(e).__name__}: {e})") from e
    plan = experiments.merge_plan(res)
    try:
        experiments.check_results(res, plan)
    except AssertionError as e:  # each part passed alone: how they were joined is at fault
        raise ValueError(f"--merge: the joined parts fail the results check ({e})") from e
    faces = paths[next(i for i, p in enumerate(parts) if 0 in p["seeds"])].parent / FACES
    if not faces.is_file():
        raise ValueError(f"--merge: {faces.parent} (seed 0's part) lacks {FACES}")
    drawn = experiments.read_faces(faces)  # ValueError naming the file
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if why := why_unwritable(out):
        raise ValueError(f"--out {out}: {why}")
    out.mkdir(parents=True, exist_ok=True)
    if faces.resolve() != (out / FACES).resolve():
        with atomic_path(out / FACES) as tmp:  # a reader never sees half a file
            shutil.copyfile(faces, tmp)
    experiments.draw_figures(drawn, res, out)  # the tradeoff with every seed's numbers
    atomic_write_text(json.dumps(res, indent=1), out / "results.json")
    show(res)
    print(f"results: {out / 'results.json'} (from {len(parts)} parts)")
    return 0


def redraw(folder: Path) -> int:
    """Draw the FIGURES of a results folder again from its results.json and FACES."""
    res = read_json(folder / "results.json")  # ValueError naming a missing or broken file
    faces = experiments.read_faces(folder / FACES)
    try:
        experiments.draw_figures(faces, res, folder)
    except (KeyError, TypeError, AttributeError) as e:  # a results.json of another shape
        raise ValueError(f"{folder / 'results.json'}: not a plan's results ({type(e).__name__}: "
                         f"{e})") from e
    print(f"figures drawn again in {folder}: {', '.join(experiments.FIGURES)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    # bad data root, unreadable runs, the gpu plan not asked for: one line, not a traceback
    except (ValueError, OSError, experiments.PlanTooLarge) as e:
        print(f"reproduce.py: error: {e}", file=sys.stderr)
        sys.exit(2)
