"""Measure how long chapters take and record it in notebooks/timings.json (the "Running this
chapter" box of each chapter, vaegan_lite.book.running_box, shows these numbers).

Each chapter's .py:percent source is executed in a fresh kernel (this interpreter, working
directory notebooks/, as in Jupyter, nbval and the book build), from a temporary copy: the committed
.ipynb and its outputs are never touched. The wall time of the whole notebook is stored under the
preset's name; entries of other chapters and presets are kept.

    python tools/time_chapters.py notebooks/01_vae.py notebooks/02_gan.py --preset cpu
    python tools/time_chapters.py notebooks/01_vae.py --preset smoke --repeat 3   # keeps the median
    python tools/time_chapters.py notebooks/01_vae.py --gpu "about 30 min on a Colab T4 (estimate)"

Runs of the cpu preset are trained from scratch in a temporary $VAEGAN_RUNS unless --reuse-runs is
given (runs/ may already hold the finished models, which would time loading, not training).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "notebooks" / "timings.json"


def machine() -> str:
    import torch

    cores = os.cpu_count() or 0
    return f"{cores}-core {platform.machine()} CPU, torch {torch.__version__.split('+')[0]}"


def run_once(py_path: Path, preset: str, runs: Path | None, timeout: int) -> float:
    """Execute the chapter once at the preset; returns the wall time in seconds."""
    nb = jupytext.read(py_path, fmt="py:percent")
    env_before = {k: os.environ.get(k) for k in ("VAEGAN_PRESET", "VAEGAN_RUNS")}
    os.environ["VAEGAN_PRESET"] = preset
    if runs is not None:
        os.environ["VAEGAN_RUNS"] = str(runs)
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(py_path.parent.resolve())}},
        )
        client.km = client.create_kernel_manager()
        client.km.kernel_spec.argv[0] = sys.executable  # this venv's python, not the system's
        t0 = time.perf_counter()
        try:
            client.execute()
        finally:
            # Keep the executed copy (figures, printed numbers, errors) for inspection; never
            # the committed .ipynb.
            out = Path(tempfile.gettempdir()) / f"timed_{py_path.stem}_{preset}.ipynb"
            jupytext.write(nb, out, fmt="ipynb")
            print(f"  executed copy: {out}")
        seconds = time.perf_counter() - t0
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return seconds


def record(chapter: str, values: dict) -> None:
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data.setdefault(chapter, {}).update(values)
    tmp = TIMINGS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, TIMINGS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="+", type=Path, help="notebooks/NN_name.py")
    parser.add_argument("--preset", choices=("smoke", "cpu"), help="preset to run and time")
    parser.add_argument("--repeat", type=int, default=1, help="runs per chapter; keeps the median")
    parser.add_argument("--gpu", help="text for the gpu entry (an estimate, with its basis)")
    parser.add_argument("--reuse-runs", action="store_true", help="use runs/ as the chapter would")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--dry-run", action="store_true", help="measure, but do not write")
    args = parser.parse_args()
    if args.preset is None and args.gpu is None:
        parser.error("nothing to do: give --preset and/or --gpu")

    for py in args.chapters:
        if py.suffix != ".py":
            sys.exit(f"{py}: expected a notebooks/NN_name.py (py:percent) file")
        chapter = py.stem
        values: dict = {}
        if args.preset is not None:
            times = []
            for i in range(args.repeat):
                scratch = None if args.reuse_runs else Path(tempfile.mkdtemp(prefix="vaegan-time-"))
                try:
                    s = run_once(py, args.preset, scratch, args.timeout)
                finally:
                    if scratch is not None:
                        shutil.rmtree(scratch, ignore_errors=True)
                times.append(s)
                print(f"{chapter} {args.preset} run {i + 1}/{args.repeat}: {s:.1f} s")
            values[args.preset] = round(statistics.median(times), 1)
            values["machine"] = machine()
        if args.gpu is not None:
            values["gpu"] = args.gpu
        if args.dry_run:
            print(f"{chapter}: {values} (not written)")
        else:
            record(chapter, values)
            print(f"{chapter}: {values} -> {TIMINGS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
