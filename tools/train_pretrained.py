"""Reproduce the shipped models in vaegan_lite/weights/ (`make pretrained`).

    python tools/train_pretrained.py                       # all of them
    python tools/train_pretrained.py --only synthetic-vae  # one of them
    python tools/train_pretrained.py --only web            # the book's widget data only

synthetic-vaegan and synthetic-vae are trained by vaegan_lite.train.train with
vaegan_lite.shipped.recipe(name) (the book's cpu widths at the paper's 64x64, more steps; with
--device cuda, the GPU recipe) in runs/pretrained/NAME/, so
an interrupted run resumes where it stopped (bit for bit) and a finished one is only re-exported.
Chapter 7's table1-* models are its Table 1 rows at the cpu preset (vaegan_lite.shipped.TABLE1,
recipe = exactly the config the chapter trains), trained the same way.
The two attribute classifiers (32x32 and 64x64, vaegan_lite.shipped.CLASSIFIERS) are trained
by vaegan_lite.classifier.train_classifier on SyntheticFaces' ground truth. Each model is then
written as float16 weights (a VAE as vaegan_lite.shipped.STORAGE says: float16 or int8) plus
its provenance JSON (vaegan_lite.shipped.save_pretrained).
Last, "web" rewrites the static widget's data in book/_static/latent/ (decoder-vaegan.onnx,
decoder-vae.onnx, latent.json, faces.png) from the new VAE/GAN and VAE.

On a GPU, synthetic-vaegan and synthetic-vae are trained with the GPU recipe (shipped.recipe with
device "cuda": Table 1's networks at half width, stored as int8):

    python tools/train_pretrained.py --device cuda --budget-s 360   # steps sized to fit 6 min
    python tools/train_pretrained.py --device cuda --steps 30000    # or exactly so many

--budget-s times a few hundred steps of each model first and picks the steps (a multiple of 500)
that train both, one after the other, in that many seconds; the provenance's command then names
the steps, so the run can be repeated exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vaegan_lite import shipped as P  # noqa: E402
from vaegan_lite.bench import seconds_per_step  # noqa: E402
from vaegan_lite.classifier import train_classifier  # noqa: E402
from vaegan_lite.cli import OneLineParser  # noqa: E402
from vaegan_lite.config import TrainConfig  # noqa: E402
from vaegan_lite.data import training_tensors  # noqa: E402
from vaegan_lite.files import why_unwritable  # noqa: E402
from vaegan_lite.train import TrainingDiverged, log_line, train  # noqa: E402


def train_model(name: str, runs: Path, weights: Path, progress: bool,
                cfg: TrainConfig | None = None, data: tuple | None = None,
                extra: dict | None = None, storage: str | None = None) -> dict:  # fmt: skip
    out = runs / name
    out.mkdir(parents=True, exist_ok=True)
    # The code a model was trained with is HEAD at the start of its run (a resumed run keeps it).
    # Hidden: not one of the run's own files, which train() requires a folder to hold no others of.
    start = out / ".git_state.json"
    if not start.exists():
        state = {**P.git_state(ROOT), **(extra or {}).get("git", {})}
        start.write_text(json.dumps({**state, "started": time.time()}) + "\n")
    cfg = cfg or P.recipe(name)
    # without a bar, log lines: a run cut short by a time limit still leaves its losses in the log
    callback = None if progress else log_lines(name, cfg.steps)
    if data is None:  # the recipe's own images, built once train has checked the run folder
        data = lambda: training_tensors(cfg, progress=False)  # noqa: E731
    r = train(cfg, out, progress=progress, data=data, callback=callback)
    timing_path = out / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    timing = {"seconds": timing.get("seconds", 0.0) + r.seconds,
              "steps": timing.get("steps", 0) + r.steps_run}  # fmt: skip
    timing_path.write_text(json.dumps(timing) + "\n")
    last = {k: v[-1] for k, v in r.history.items() if v}
    info = {
        "training_seconds": round(timing["seconds"], 1),
        "training_steps": timing["steps"],
        "final_log": last,
        "machine": {**P.machine(), "load_average_at_export": os.getloadavg()},
        **json.loads(start.read_text()),
        **{k: v for k, v in (extra or {}).items() if k != "git"},
    }
    # Anything a person must know about how this run really went (pauses, continuations).
    if (note := out / "note.txt").exists():
        info["note"] = " ".join(note.read_text().split())
    return P.save_pretrained(name, r.model, cfg.to_dict(), P.networks(name), info, weights,
                             storage or P.STORAGE[name])  # fmt: skip


def log_lines(name: str, total: int, every_s: float = 20.0) -> Callable[..., None]:
    """A train() callback that prints the losses of the first log, then at most every
    ``every_s`` seconds, and of the last step."""
    t0, last = time.perf_counter(), -math.inf  # the first log prints

    def log(step: int, model: torch.nn.Module, history: dict[str, list[float]]) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last < every_s and step < total:
            return
        last = now
        print(f"{name} {log_line(step, history, total)} ({now - t0:.0f} s)", flush=True)

    return log


def steps_for(budget_s: float, per_step: list[float], margin: float = 0.9, unit: int = 500) -> int:
    """The most steps (a multiple of ``unit``, at least one unit) that train every model, one
    after the other, within ``margin`` of ``budget_s``."""
    return max(unit, int(margin * budget_s / sum(per_step) / unit) * unit)


def train_on_gpu(args: argparse.Namespace) -> None:
    """synthetic-vaegan and synthetic-vae with the GPU recipe, sized by --steps or --budget-s."""
    names = args.only  # check_args: only P.MODELS
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_pretrained: --device cuda: no CUDA GPU here")
    data = training_tensors(P.recipe(names[0], "cuda", faces=args.faces), progress=False)
    calibration = {}
    steps = args.steps
    if args.budget_s:
        t0 = time.time()
        per = {n: seconds_per_step(P.recipe(n, "cuda", faces=args.faces), args.calibrate_steps)
               for n in names}  # fmt: skip
        steps = steps_for(args.budget_s, list(per.values()))
        calibration = {"budget_s": args.budget_s, "seconds_per_step": per,
                       "calibration_seconds": round(time.time() - t0, 1)}  # fmt: skip
        print(f"calibration: {', '.join(f'{n} {1 / s:.1f} steps/s' for n, s in per.items())}; "
              f"{steps} steps each fit {args.budget_s:g} s")  # fmt: skip
    lost = []
    for name in names:
        t0 = time.time()
        command = f"python tools/train_pretrained.py --device cuda --steps {steps} --only {name}"
        if args.faces != P.GPU_FACES:
            command += f" --faces {args.faces}"
        extra = {"command": command, "recipe": "gpu", **calibration}
        if args.commit:
            extra["git"] = {"git_commit": args.commit}
        cfg = P.recipe(name, "cuda", steps=steps, faces=args.faces)
        try:
            rec = train_model(name, args.runs, args.weights, not args.no_progress, cfg, data,
                              extra, P.GPU_STORAGE)  # fmt: skip
        except TrainingDiverged as e:  # the next model may still train: go on to it
            print(f"train_pretrained: {name}: {e}; not written", file=sys.stderr)
            lost.append(name)
            continue
        print(f"{name}: {rec['file']} {rec['bytes'] / 1e6:.2f} MB sha256 {rec['sha256'][:12]} "
              f"({time.time() - t0:.0f} s, {steps} steps)")  # fmt: skip
    if lost:
        raise SystemExit(f"train_pretrained: diverged, not written: {', '.join(lost)}")


def ship_classifier(name: str, weights: Path, progress: bool) -> dict:
    """Train the shipped attribute classifier ``name`` and store it in ``weights`` with its
    provenance; returns its record."""
    git = P.git_state(ROOT)
    config, training = P.CLASSIFIERS[name]
    model, info = train_classifier(config, training, progress=progress)
    extra = {
        "training_seconds": round(info["seconds"], 1),
        "training": info["training"],
        "trained_on": "SyntheticFaces ground-truth attributes (data seed 1), no model outputs",
        "test_accuracy": info["test_accuracy"],
        # trained on the CPU (train_classifier), also on a machine with a GPU
        "machine": {**P.machine(gpu=False), "load_average_at_export": os.getloadavg()},
        **git,
    }
    return P.save_pretrained(name, model, asdict(model.config), None, extra, weights)


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse bad arguments now, in one line: they failed only after the data were drawn, or
    after the whole training (--weights naming a file), or silently did something else (a
    negative --budget-s still calibrated, then trained 500 steps)."""
    if args.threads < 0:
        parser.error(f"--threads must be >= 0 (0: torch's default), got {args.threads}")
    for flag, folder in (("--runs", args.runs), ("--weights", args.weights)):
        if folder.exists() and not folder.is_dir():
            parser.error(f"{flag} {folder} is a file, not a folder")
        if why := why_unwritable(folder):
            parser.error(f"{flag} {folder}: {why}")
    if args.device == "cpu":
        return
    if not (names := [n for n in args.only if n in P.MODELS]) or len(names) != len(args.only):
        parser.error("--device cuda trains only " + ", ".join(P.MODELS))
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if not (args.budget_s >= 0 and math.isfinite(args.budget_s)):  # NaN fails >= too
        parser.error(f"--budget-s must be >= 0 seconds (0: train --steps), got {args.budget_s:g}")
    if args.calibrate_steps < 1:
        parser.error(f"--calibrate-steps must be >= 1, got {args.calibrate_steps}")
    try:  # the recipe's own checks, e.g. fewer --faces than a batch
        for name in names:
            P.recipe(name, "cuda", steps=args.steps, faces=args.faces)
    except ValueError as e:
        parser.error(f"--faces {args.faces}: {e}")


def main() -> None:
    parser = OneLineParser(prog="train_pretrained", description=__doc__.splitlines()[0])
    steps = [*P.NAMES, "web"]
    parser.add_argument("--only", nargs="+", choices=steps, default=None)
    parser.add_argument("--runs", type=Path, default=None,
                        help="run folders (default runs/pretrained, or runs/pretrained-gpu)")
    parser.add_argument("--weights", type=Path, default=P.WEIGHTS)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--no-progress", action="store_true")
    gpu_args = parser.add_argument_group("the GPU recipe (synthetic-vaegan, synthetic-vae)")
    gpu_args.add_argument("--device", choices=["cpu", "cuda", "cuda-recipe-on-cpu"], default="cpu",
                          help="cuda: train with the GPU recipe (cuda-recipe-on-cpu: the same "
                          "recipe on this CPU, for tests)")  # fmt: skip
    gpu_args.add_argument("--steps", type=int, default=P.GPU_STEPS)
    gpu_args.add_argument("--budget-s", type=float, default=0.0,
                          help="size the steps to train both models in this many seconds")
    gpu_args.add_argument("--calibrate-steps", type=int, default=300, help=argparse.SUPPRESS)
    gpu_args.add_argument("--faces", type=int, default=P.GPU_FACES)
    gpu_args.add_argument("--commit", default=None, help="the commit, where git is missing")
    args = parser.parse_args()
    gpu_recipe = args.device != "cpu"
    args.only = args.only or (list(P.MODELS) if gpu_recipe else steps)
    args.runs = args.runs or ROOT / "runs" / ("pretrained-gpu" if gpu_recipe else "pretrained")
    check_args(parser, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if gpu_recipe:
        train_on_gpu(args)
        return
    for name in args.only:
        t0 = time.time()
        if name == "web":
            from vaegan_lite.book.web import book_assets

            sizes = book_assets()
            print(f"web: book/_static/latent/ {sum(sizes.values()) / 1e6:.1f} MB")
            continue
        if name in P.CLASSIFIERS:
            rec = ship_classifier(name, args.weights, not args.no_progress)
        else:
            rec = train_model(name, args.runs, args.weights, not args.no_progress)
        print(f"{name}: {rec['file']} {rec['bytes'] / 1e6:.2f} MB sha256 {rec['sha256'][:12]} "
              f"({time.time() - t0:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
