"""Reproduce the shipped models in vaegan_lite/weights/ (`make pretrained`).

    python tools/train_pretrained.py                       # all of them
    python tools/train_pretrained.py --only synthetic-vae  # one of them
    python tools/train_pretrained.py --only web            # the book's widget data only

synthetic-vaegan and synthetic-vae are trained by vaegan_lite.train.train with
vaegan_lite.shipped.recipe(name) (the book's cpu size, more steps) in runs/pretrained/NAME/, so
an interrupted run resumes where it stopped (bit for bit) and a finished one is only re-exported.
Chapter 7's table1-* models are its Table 1 rows at the cpu preset (vaegan_lite.shipped.TABLE1,
recipe = exactly the config the chapter trains), trained the same way.
The two attribute classifiers (32x32 and 64x64, vaegan_lite.shipped.CLASSIFIERS) are trained
by vaegan_lite.classifier.train_classifier on SyntheticFaces' ground truth. Each model is then
written as float16 weights (a VAE as vaegan_lite.shipped.STORAGE says: float16 or int8) plus
its provenance JSON (vaegan_lite.shipped.save_pretrained).
Last, "web" rewrites the static widget's data in book/_static/latent/ (decoder-vaegan.onnx,
decoder-vae.onnx, latent.json, faces.png) from the new VAE/GAN and VAE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vaegan_lite import shipped as P  # noqa: E402


def train_model(name: str, runs: Path, weights: Path, progress: bool) -> dict:
    from vaegan_lite.train import train

    out = runs / name
    out.mkdir(parents=True, exist_ok=True)
    # The code a model was trained with is HEAD at the start of its run (a resumed run keeps it).
    start = out / "git_state.json"
    if not start.exists():
        start.write_text(json.dumps({**P.git_state(ROOT), "started": time.time()}) + "\n")
    cfg = P.recipe(name)
    r = train(cfg, out, progress=progress)  # the same training data as a chapter's run of cfg
    timing_path = out / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    timing = {"seconds": timing.get("seconds", 0.0) + r.seconds,
              "steps": timing.get("steps", 0) + r.steps_run}  # fmt: skip
    timing_path.write_text(json.dumps(timing) + "\n")
    last = {k: v[-1] for k, v in r.history.items() if v}
    extra = {
        "training_seconds": round(timing["seconds"], 1),
        "training_steps": timing["steps"],
        "final_log": last,
        "machine": {**P.machine(), "load_average_at_export": os.getloadavg()},
        **json.loads(start.read_text()),
    }
    # Anything a person must know about how this run really went (pauses, continuations).
    if (note := out / "note.txt").exists():
        extra["note"] = " ".join(note.read_text().split())
    return P.save_pretrained(name, r.model, cfg.to_dict(), P.networks(name), extra, weights,
                             P.STORAGE[name])  # fmt: skip


def train_classifier(name: str, weights: Path, progress: bool) -> dict:
    from vaegan_lite.classifier import train_classifier

    git = P.git_state(ROOT)
    config, training = P.CLASSIFIERS[name]
    model, info = train_classifier(training, config, progress=progress)
    extra = {
        "training_seconds": round(info["seconds"], 1),
        "training": info["training"],
        "trained_on": "SyntheticFaces ground-truth attributes (data seed 1), no model outputs",
        "test_accuracy": info["test_accuracy"],
        "machine": {**P.machine(), "load_average_at_export": os.getloadavg()},
        **git,
    }
    return P.save_pretrained(name, model, asdict(model.config), None, extra, weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = [*P.NAMES, "web"]
    parser.add_argument("--only", nargs="+", choices=steps, default=steps)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "pretrained")
    parser.add_argument("--weights", type=Path, default=P.WEIGHTS)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.only:
        t0 = time.time()
        if name == "web":
            from vaegan_lite.book.web import book_assets

            sizes = book_assets()
            print(f"web: book/_static/latent/ {sum(sizes.values()) / 1e6:.1f} MB")
            continue
        if name in P.CLASSIFIERS:
            rec = train_classifier(name, args.weights, not args.no_progress)
        else:
            rec = train_model(name, args.runs, args.weights, not args.no_progress)
        print(f"{name}: {rec['file']} {rec['bytes'] / 1e6:.2f} MB sha256 {rec['sha256'][:12]} "
              f"({time.time() - t0:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
