"""Measure how long chapters take and record it in vaegan_lite/results/timings.json (the
"Running this chapter" box of each chapter, vaegan_lite.book.runs.running_box, shows these
numbers).

Each chapter's .py:percent source is executed in a fresh kernel (this interpreter, working
directory notebooks/, as in Jupyter, nbval and the book build), from a temporary copy: the committed
.ipynb and its outputs are never touched. The wall time of the whole notebook is stored under the
preset's name; entries of other chapters and presets are kept.

    python tools/time_chapters.py notebooks/01_vae.py notebooks/02_gan.py --preset cpu
    python tools/time_chapters.py notebooks/01_vae.py --preset smoke --repeat 3   # keeps the median
    python tools/time_chapters.py notebooks/01_vae.py --gpu-models vae   # the gpu estimate
    python tools/time_chapters.py notebooks/*.py --from-book _build/.jupyter_cache

--from-book records, as each chapter's cpu time, what `make book` measured: the execution time
the book build stored in its Jupyter cache, chapter by chapter in the book's order, so a chapter
that reads an earlier chapter's runs (chapter 7 reads 1, 2 and 4's) is timed as the book runs it.

There is no GPU on the project's machines, so the gpu entry is an estimate, labelled as one: the
FLOPs of one training step of the chapter's models at the gpu preset (counted by PyTorch's
FlopCounterMode on the CPU) times the preset's batch size and steps, divided by an assumed
effective T4 throughput (--t4-tflops). Once a GPU check has run (tools/gpu_check.py), the entry
comes from the step rates it measured, with a T4 estimate derived from them:

    python tools/time_chapters.py notebooks/01_vae.py --gpu-models vae \
        --from-gpu-check benchmarks/results/gpu_check.json
    python tools/time_chapters.py notebooks/04_vaegan_training.py \
        --gpu-models vaegan,vaegan*3@20750 --from-gpu-check benchmarks/results/gpu_check.json

(--gpu-models: model, model*runs, model*runs@steps a run; the preset's steps if not given;
a ":fp32" suffix for runs that train in fp32, not the GPU's reduced precision.) Each chapter's
entry keeps its --gpu-models (gpu_models), so all chapters take a GPU check's rates at once:

    python tools/time_chapters.py notebooks/*.py --from-gpu-check benchmarks/results/gpu_check.json

Runs of the cpu preset are trained from scratch in a temporary $VAEGAN_RUNS unless --reuse-runs is
given (runs/ may already hold the finished models, which would time loading, not training).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jupytext
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "vaegan_lite" / "results" / "timings.json"


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


T4_PEAK_TFLOPS = 65  # fp16 tensor cores; a T4 has no bf16, so the gpu preset trains in fp16
T4_FP32_TFLOPS = 8.1  # its fp32 peak (no tensor cores): a run in fp32 is that much slower


def gflop_per_image(model: str) -> float:
    """FLOPs of one training step at the gpu preset (Table 1 nets, 64x64), per image, in GFLOP."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import config_for
    from vaegan_lite.models import make_optimizers, model_spec

    cfg = config_for(get_preset("gpu"), model)
    spec = model_spec(model)  # the paper's five models and chapter 7's (bigan, avae)
    torch.manual_seed(0)
    net = spec.build(cfg.model)
    opts = make_optimizers(net, spec.networks)
    step = spec.step(0, cfg.step)
    b, s = 4, cfg.model.image_size  # a small batch: FLOPs are linear in the batch size
    x = torch.rand(b, cfg.model.channels, s, s) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        step(net, x, opts, cfg.step)
    return counter.get_total_flops() / b / 1e9


def gpu_estimate(models: list[str], tflops: float) -> str:
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import config_for

    preset = get_preset("gpu")
    total, seconds, parts = 0.0, 0.0, []
    planned = parse_models(",".join(models))
    for m, runs, steps, fp32 in planned:  # "vaegan*5@2000": 5 runs of 2000
        cfg = config_for(preset, m)
        steps = steps or cfg.steps
        g = gflop_per_image(m)
        flop = runs * g * 1e9 * cfg.batch_size * steps
        total += flop
        # an fp32 run at the same share of the T4's fp32 peak
        seconds += flop / (tflops * (T4_FP32_TFLOPS / T4_PEAK_TFLOPS if fp32 else 1) * 1e12)
        per_step = f"{g:.1f} GFLOP per image per step"
        times = f"{runs} runs of " if runs > 1 else ""
        parts.append(f"{times}{m} {per_step} x {cfg.batch_size} x {steps:,} steps"
                     f"{' in fp32' if fp32 else ''}")
    minutes = seconds / 60
    shown = f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"
    share = tflops / T4_PEAK_TFLOPS
    fp32_note = (f" ({share:.0%} of its {T4_FP32_TFLOPS:g} TFLOP/s fp32 peak for the fp32 runs)"
                 if any(fp32 for *_, fp32 in planned) else "")  # fmt: skip
    return (f"about {shown} on a Colab T4 (estimate, not measured: {'; '.join(parts)} "
            f"= {total / 1e15:.0f} PFLOP at an assumed {tflops:g} TFLOP/s, "
            f"{share:.0%} of the T4's fp16 peak{fp32_note}; "
            "CelebA preparation not included)")


def parse_models(spec: str) -> list[tuple[str, int, int | None, bool]]:
    """"vae,gan*5,vaegan*3@20750,vaegan@500:fp32" -> [(model, runs, steps a run or None: the
    preset's, whether the runs train in fp32 rather than the GPU's reduced precision)]."""
    out = []
    for item in spec.split(","):
        item, _, precision = item.partition(":")
        if precision not in ("", "fp32"):
            raise ValueError(f"{item}:{precision}: the only precision to name is fp32")
        item, _, steps = item.partition("@")
        m, _, k = item.partition("*")
        out.append((m, int(k) if k else 1, int(steps) if steps else None, precision == "fp32"))
    return out


def gpu_measured(models: str, check_file: Path) -> str:
    """The gpu entry from a GPU check's bench (tools/gpu_check.py): each model's images/s at the
    gpu preset in the chapters' own settings (auto precision, channels-last) on that GPU, times the
    chapter's steps; and a T4 estimate derived from it, labelled as one: the same FLOPs at the
    model FLOP utilisation measured there, of a T4's fp16 peak."""
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import config_for

    report = json.loads(check_file.read_text())
    prov = report["sections"]["provenance"]["result"]
    gpu = prov.get("peak", {}).get("device") or prov.get("device")
    rows = {(r["model"], r.get("variant")): r
            for r in report["sections"]["bench"]["result"].get("rows", [])
            if "images_per_s" in r}  # fmt: skip
    preset = get_preset("gpu")
    gpu_s = t4_s = 0.0
    parts = []
    for m, runs, steps, fp32 in parse_models(models):
        variant = "fp32" if fp32 else "channels_last"  # the chapters' settings, unless in fp32
        if (m, variant) not in rows:
            raise ValueError(f"{check_file}: no {variant} bench row for {m!r}")
        r, cfg = rows[m, variant], config_for(preset, m)
        images = runs * (steps or cfg.steps) * cfg.batch_size
        gpu_s += images / r["images_per_s"]
        if r.get("mfu"):
            peak = T4_FP32_TFLOPS if fp32 else T4_PEAK_TFLOPS  # fp32: the T4's fp32 peak
            t4_s += images * r["gflop_per_image"] * 1e9 / (r["mfu"] * peak * 1e12)
        mfu = f", MFU {r['mfu']:.1%}" if r.get("mfu") else ""
        times = f"{runs} runs of " if runs > 1 else ""
        parts.append(f"{times}{m} {steps or cfg.steps:,} steps{' in fp32' if fp32 else ''} at "
                     f"{r['images_per_s']:,.0f} img/s{mfu}")

    def shown(seconds: float) -> str:
        minutes = seconds / 60
        return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"

    commit = (prov.get("commit") or "")[:7]
    t4 = (f"; about {shown(t4_s)} on a Colab T4 (derived, not measured: the same FLOPs at the "
          f"same model FLOP utilisation of the T4's {T4_PEAK_TFLOPS} TFLOP/s fp16 peak, or "
          f"of its {T4_FP32_TFLOPS:g} TFLOP/s fp32 peak for runs in fp32)"
          if t4_s else "")  # fmt: skip
    return (f"about {shown(gpu_s)} of training on an {gpu} (from its measured step rates, "
            f"torch {prov.get('torch', '?').split('+')[0]}, commit {commit}: {'; '.join(parts)})"
            f"{t4}; CelebA preparation not included")


def book_times(cache: Path) -> dict[str, float]:
    """chapter stem => execution seconds, from a Jupyter Book build's jupyter-cache folder."""
    from jupyter_cache import get_cache

    if not cache.is_dir():
        sys.exit(f"{cache}: no Jupyter cache there; run `make book` first")
    times = {}
    for rec in get_cache(cache).list_cache_records():
        if (seconds := rec.data.get("execution_seconds")) is not None:
            times[Path(rec.uri).stem] = round(float(seconds), 1)
    return times


def recorded_gpu_models(chapter: str) -> str | None:
    """The --gpu-models that the chapter's gpu entry was made from: '' for an entry given as a
    text (--gpu), None if timings.json does not say."""
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    return data.get(chapter, {}).get("gpu_models")


def record(chapter: str, values: dict) -> None:
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data.setdefault(chapter, {}).update(values)
    from vaegan_lite.files import atomic_write_text  # as the package's other imports here

    atomic_write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", TIMINGS)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump); still exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive(kind: type) -> Callable[[str], int | float]:
    """An argparse type: a ``kind`` (int or float) > 0; NaN and inf are refused too."""

    def parse(text: str) -> int | float:
        v = kind(text)
        if not (v > 0 and math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value: 'x'"
    return parse


def check_before_work(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what would fail (or write a bogus entry) only after chapters had run: a chapter file
    that is not there (a typo would be recorded under its name), timings.json unreadable or
    unwritable."""
    for py in args.chapters:
        if py.suffix != ".py":
            parser.error(f"{py}: expected a notebooks/NN_name.py (py:percent) file")
        if not py.is_file():
            parser.error(f"{py}: no such chapter file")
    if args.from_book and not args.from_book.is_dir():
        parser.error(f"--from-book {args.from_book}: no Jupyter cache there; run `make book` first")
    if args.dry_run:
        return
    from vaegan_lite.files import read_json, why_unwritable  # as the package's other imports here

    if why := why_unwritable(TIMINGS.parent):
        parser.error(f"{TIMINGS}: {why}")
    try:
        data = read_json(TIMINGS) if TIMINGS.exists() else {}
    except ValueError as e:  # it names the file
        parser.error(str(e))
    if not isinstance(data, dict):
        parser.error(f"{TIMINGS}: not a JSON object of chapters")


def main() -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="+", type=Path, help="notebooks/NN_name.py")
    parser.add_argument("--preset", choices=("smoke", "cpu"), help="preset to run and time")
    parser.add_argument("--repeat", type=positive(int), default=1,
                        help="runs per chapter; keeps the median")
    parser.add_argument("--gpu", help="text for the gpu entry (an estimate, with its basis)")
    parser.add_argument("--gpu-models", help="estimate the gpu entry from these models' FLOPs, "
                        "e.g. vae or vae,gan or vae*5,gan*5 (the runs the chapter trains)")
    parser.add_argument("--from-gpu-check", type=Path, metavar="JSON",
                        help="the gpu entry from the step rates a GPU check measured "
                        "(benchmarks/results/gpu_check.json), and a T4 estimate; for the runs "
                        "of --gpu-models, else those each chapter's entry was made from")
    parser.add_argument("--t4-tflops", type=positive(float), default=10.0,
                        help="assumed effective T4 throughput for --gpu-models (TFLOP/s)")
    parser.add_argument("--reuse-runs", action="store_true", help="use runs/ as the chapter would")
    parser.add_argument("--timeout", type=positive(int), default=7200, help="seconds per cell")
    parser.add_argument("--from-book", type=Path, metavar="CACHE",
                        help="record the cpu times a `make book` build stored in CACHE "
                        "(_build/.jupyter_cache) instead of running the chapters")
    parser.add_argument("--note", default="", help="added to the machine line (how it was timed)")
    parser.add_argument("--dry-run", action="store_true", help="measure, but do not write")
    args = parser.parse_args()
    if not (args.preset or args.gpu or args.gpu_models or args.from_gpu_check or args.from_book):
        parser.error("nothing to do: give --preset, --gpu, --gpu-models, --from-gpu-check or "
                     "--from-book")
    check_before_work(parser, args)
    if args.from_book:
        times = book_times(args.from_book)
        for py in args.chapters:
            if py.stem not in times:
                sys.exit(f"{py}: not executed in {args.from_book} (was it built from a cache?)")
            values = {"cpu": times[py.stem],
                      "machine": machine() + ", during `make book`" + args.note}  # fmt: skip
            if not args.dry_run:
                record(py.stem, values)
            print(f"{py.stem}: {values}")
        print(f"make book executed the chapters in {sum(times.values()) / 60:.1f} min in all")
        return
    gpu_texts = {}  # chapter -> its gpu entry, all worked out before anything is written
    for py in args.chapters if args.gpu is None else []:
        models = args.gpu_models or (recorded_gpu_models(py.stem) if args.from_gpu_check else "")
        if models is None:
            parser.error(f"--from-gpu-check: {py}: timings.json records no gpu_models for "
                         f"{py.stem}; give --gpu-models")  # fmt: skip
        if not models:  # nothing asked, or a chapter whose gpu entry is a text (it trains nothing)
            continue
        try:
            gpu_texts[py.stem] = models, (
                gpu_measured(models, args.from_gpu_check) if args.from_gpu_check
                else gpu_estimate(models.split(","), args.t4_tflops))  # fmt: skip
        except (ValueError, TypeError, KeyError) as e:  # "vae*x", an unknown model, no bench row
            parser.error(f"--gpu-models {models!r}: {type(e).__name__}: {e}")
        except OSError as e:
            parser.error(f"--from-gpu-check: {e}")

    for py in args.chapters:
        chapter = py.stem
        values: dict = {}
        if chapter in gpu_texts:  # the runs are kept, so a GPU check's rates can replace it
            values["gpu_models"], values["gpu"] = gpu_texts[chapter]
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
        if args.gpu is not None:  # a text of its own: no runs to take rates for
            values |= {"gpu": args.gpu, "gpu_models": ""}
        if args.dry_run:
            print(f"{chapter}: {values} (not written)")
        else:
            record(chapter, values)
            where = TIMINGS.relative_to(ROOT) if TIMINGS.is_relative_to(ROOT) else TIMINGS
            print(f"{chapter}: {values} -> {where}")


if __name__ == "__main__":
    main()
