"""The GPU path checked in one go: one JSON of figures from one NVIDIA GPU, in about 8 minutes.

    python3 tools/gpu_check.py [--budget-s 460] [--commit SHA] [--out FILE] [--only SECTION ...]
    python3 tools/gpu_check.py --cpu-dry-run     # every section at a toy size on the CPU (CI)
    python3 tools/gpu_check.py --print-device-call   # the device `run` call below, commit filled in

Sections, in this order; each is time-boxed within --budget-s (a section that finds the budget
spent is recorded as skipped, with the reason), its exceptions are recorded, never raised, and
the JSON is rewritten (atomically) after every section and every bench row:

    provenance     GPU name, compute capability, memory, driver, CUDA, cuDNN, torch, git commit
                   (else --commit), date, host; the bf16 peak that MFU is measured against
    cuda_tests     pytest -k cuda: the tests that need CUDA, named *cuda* or marked ``cuda`` (-k
                   matches marker names too); pass/fail counts. Among them: a step matches the
                   CPU's, training steps make no host sync (torch's sync debug mode), the
                   optimizer is torch's RMSProp bit for bit
    resume         exact resume on CUDA: k steps, resumed to n, against n straight, bitwise, under
                   cuDNN's deterministic algorithms (fp32, fp16 + GradScaler, auto precision +
                   channels-last); and the cost of determinism: steps/s deterministic, at torch's
                   defaults, and with cuDNN's benchmark mode
    bench          vaegan_lite.bench.bench() at the paper's size (the gpu preset: 64x64, Table 1
                   at width 1.0, batch 64): every model a chapter trains in the chapters' settings
                   (channels-last, auto precision; time_chapters.py sizes the running boxes from
                   these), then the five models in fp32, bf16 and fp16: img/s, GFLOP/image, MFU
                   against the GPU's dense bf16 peak;
                   each step timed alone, and the same steps back to back (pipelined_*). fp32
                   is torch's: convolutions in TF32, matmuls in fp32 (each row says)
    pythae         pythae 0.1.2's VAEGAN step beside ours on the same GPU, on identical networks:
                   benchmarks/pythae_compare.py's contenders, built on this device; MFU from one
                   model FLOP count for all (our fp32 step's), hfu from what each executes
    chapters       notebooks/01_vae.py, 04_vaegan_training.py and A1_making_it_fast.py run as
                   scripts at the gpu preset on synthetic 64x64 faces, steps cut short: exit
                   status, wall time, output's tail. They share what is left of the budget
                   (CHAPTER_WEIGHTS), and bench_compile gets what they leave
    bench_compile  as bench with torch.compile (vaegan first; the others while time is left),
                   each row compiled afresh; FLOPs from the eager channels_last row, dynamo's
                   graphs, breaks and frames beside them. A row the time runs out in stays in
                   the JSON, marked unfinished

Files: the JSON (--out; default $OUT/gpu_check.json, else ./gpu_check.json) and, beside it, the
logs gpu_check_cuda_tests.log and gpu_check_chapter_<name>.log.

The chapters need two hooks of vaegan_lite.book.runs.get_preset: $VAEGAN_STEPS (cut each run's
steps to this many) and, without CelebA, the gpu preset on the synthetic faces (this script also
sets $VAEGAN_DATA_FALLBACK=1 for a package that asks for it). The section checks both before it
starts, and is skipped with the reason if either is missing, rather than spend the budget.

On the device machine (one H100 or H200 here, torch 2.11 when last seen; the unit tests pass
with that torch on the CPU; /work/.library/device/README.md). It has torch, pytest and
matplotlib; pythae and pydantic travel as wheels. Once, in the repository's root here:

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \\
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
      --platform manylinux1_x86_64 -d .whl pythae==0.1.2 pydantic==2.14.4 \\
      pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \\
      typing-extensions==4.16.0

(pythae's other needs, cloudpickle, imageio, numpy, scikit-learn, scipy and tqdm, are there;
pydantic 2.14 needs typing-extensions >= 4.16.) Commit, then make one call, with COMMIT replaced
by `git rev-parse HEAD` (the copy that travels may lack .git), timeout_s 540, carry [".whl"]:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site; set -o pipefail;
    PYTHONUNBUFFERED=1 python3 tools/gpu_check.py --budget-s 460 --commit COMMIT
    --out $OUT/gpu_check.json 2>&1 | tee $OUT/gpu_check.log

(one line: ``--print-device-call`` prints it as the call's JSON). Then copy gpu_check.json from the
call's files to benchmarks/results/gpu_check.json and commit it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import runpy
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import types
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package: nothing is installed on the GPU machine

import torch  # noqa: E402

import vaegan_lite.bench as bench_module  # noqa: E402
from vaegan_lite.bench import StepRunner, bench, count_flops  # noqa: E402
from vaegan_lite.book.runs import get_preset  # noqa: E402
from vaegan_lite.cli import OneLineParser  # noqa: E402
from vaegan_lite.config import MODEL_NAMES, MODELS, PRESETS, TrainConfig, config_for  # noqa: E402
from vaegan_lite.data import ATTR_NAMES, faces  # noqa: E402
from vaegan_lite.data.faces import render_faces  # noqa: E402
from vaegan_lite.files import atomic_write_text, why_unwritable  # noqa: E402
from vaegan_lite.train import deterministic_algorithms, pick_precision, train  # noqa: E402

DEVICE_COMMAND = (
    "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade "
    "--target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site; set -o pipefail; "
    "PYTHONUNBUFFERED=1 python3 tools/gpu_check.py --budget-s 460 --commit {commit} "
    "--out $OUT/gpu_check.json 2>&1 | tee $OUT/gpu_check.log"
)
DEVICE_TIMEOUT_S = 540  # the budget, start-up and pip, and a margin; the tool allows 600
# Chapter 4 is the full training loop; chapter 1 the first a reader runs; appendix A1 trains in
# bf16/fp16 and channels-last beside fp32 and asserts that they agree.
CHAPTERS = ("notebooks/01_vae.py", "notebooks/04_vaegan_training.py",
            "notebooks/A1_making_it_fast.py")  # fmt: skip
SECTION_NAMES = ("provenance", "cuda_tests", "resume", "bench", "pythae", "chapters",
                 "bench_compile")  # fmt: skip

# Dense bf16 tensor-core peaks, TFLOP/s, from NVIDIA's datasheets (H100/H200, A100, L4, T4; the
# figures without 2:4 sparsity). The T4 has no bf16 tensor cores: its fp16 peak stands in. The
# first pattern found in torch's device name wins.
PEAK_SOURCE = "NVIDIA datasheets, dense (no sparsity)"
PEAKS: tuple[tuple[str, float, str], ...] = (
    (r"H100.*PCIe", 756.0, "bf16"),
    (r"H[12]00.*NVL", 835.5, "bf16"),
    (r"H100|H200", 989.4, "bf16"),
    (r"A100", 312.0, "bf16"),
    (r"\bL4\b", 121.0, "bf16"),
    (r"\bT4\b", 65.0, "fp16"),
)


def peak_for(device_name: str) -> dict[str, Any]:
    """The dense matrix peak MFU is measured against (tflops None for a device not in PEAKS)."""
    for pattern, tflops, precision in PEAKS:
        if re.search(pattern, device_name):
            return {"device": device_name, "tflops": tflops, "precision": precision,
                    "source": PEAK_SOURCE}  # fmt: skip
    return {"device": device_name, "tflops": None, "precision": None, "source": PEAK_SOURCE}


# --- sizes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How big each section runs: the paper's size on a GPU, a toy one in the CPU dry run."""

    preset: str  # the book preset whose networks and batch are benched and resumed
    bench_steps: int
    bench_warmup: int
    resume_steps: tuple[int, int]  # k, then resumed to n
    cost_steps: int  # timed steps per determinism setting
    chapter_preset: str
    chapter_steps: int  # $VAEGAN_STEPS for the chapters
    pythae_image_size: int
    pythae_batch: int
    compile_needs_s: float  # start a compiled bench only with this much time left


GPU = Sizes("gpu", 10, 3, (4, 8), 60, "gpu", 50, 64, 64, 60.0)
# The dry run cuts the chapters to the smoke preset's own 6 steps: fewer, and chapter 1's curve has
# not yet fallen (its assert says so, rightly).
CPU_DRY = Sizes("smoke", 2, 1, (2, 4), 3, "smoke", 6, 32, 2, math.inf)

# Seconds each section may take at most (within what is left of the budget).
CAPS = {"provenance": 45, "cuda_tests": 120, "resume": 90, "bench": 100, "pythae": 45,
        "chapters": math.inf, "bench_compile": math.inf}  # fmt: skip
# The chapters share their section's time by these weights (1 for a chapter not named), what one
# leaves going on to the next: chapter 4 trains four models and saves their checkpoints.
CHAPTER_WEIGHTS = {"04_vaegan_training": 2.0}

# bench's variants: TrainConfig switches, each given in full so that no preset default leaks in.
BENCH_VARIANTS = {
    "fp32": {"precision": "fp32", "channels_last": False, "compile": False},
    "bf16": {"precision": "bf16", "channels_last": False, "compile": False},
    "fp16": {"precision": "fp16", "channels_last": False, "compile": False},
    "channels_last": {"precision": "auto", "channels_last": True, "compile": False},
}
COMPILE_VARIANT = {"compile": {"precision": "auto", "channels_last": True, "compile": True}}
RESUME_VARIANTS = {
    "fp32": {"precision": "fp32", "channels_last": False},
    "fp16_gradscaler": {"precision": "fp16", "channels_last": False},
    "auto_channels_last": {"precision": "auto", "channels_last": True},  # the chapters' gpu run
}


# --- the run's state: budget, report, files ------------------------------------------------------


class Timeout(BaseException):
    """A section ran past its time (BaseException: a row's own `except Exception` lets it by)."""


class Skip(Exception):
    """A section that cannot run here; the reason is recorded."""


@dataclass
class Check:
    """The run: where it writes, its sizes, its device and its clock."""

    out: Path
    sizes: Sizes
    device: torch.device
    end: float  # time.monotonic() when the budget is spent
    report: dict[str, Any] = field(default_factory=dict)
    section_end: float = math.inf

    @property
    def dry(self) -> bool:
        return self.sizes is CPU_DRY

    def left(self) -> float:
        """Seconds left to the current section."""
        return min(self.end, self.section_end) - time.monotonic()

    def log_path(self, name: str) -> Path:
        return self.out.with_name(f"gpu_check_{name}.log")

    def save(self) -> None:
        write_json(self.report, self.out)


def clean(x: Any) -> Any:
    """JSON-ready: NaN and infinities become null, tuples lists, paths strings."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write data to path atomically: a run stopped at any moment leaves the last whole file."""
    atomic_write_text(json.dumps(clean(data), indent=2, allow_nan=False) + "\n", path)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise Timeout in the main thread after ``seconds`` (SIGALRM)."""

    def alarm(signum: int, frame: Any) -> None:
        raise Timeout(f"stopped after {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_section(check: Check, name: str, fn: Callable[[Check, dict], bool]) -> None:
    """Run one section within its cap and the budget; record its status, time and result.

    status: ok, failed (it ran; what it checks does not hold), error (an exception), timeout,
    skipped (with the reason)."""
    entry: dict[str, Any] = {"status": "running", "seconds": 0.0, "result": {}}
    check.report["sections"][name] = entry
    left = check.end - time.monotonic()
    if left < 1:
        entry.update(status="skipped", reason=f"budget spent ({check.report['budget_s']} s)")
        check.save()
        return
    cap = math.inf if check.dry else CAPS[name]  # the caps are a GPU's times, not a busy CPU's
    check.section_end = time.monotonic() + min(cap, left)
    t0 = time.monotonic()
    try:
        with time_limit(check.left() + 5):  # the section stops itself first when it can
            entry["status"] = "ok" if fn(check, entry["result"]) else "failed"
    except Skip as e:
        entry.update(status="skipped", reason=str(e))
    except Timeout as e:
        entry.update(status="timeout", reason=str(e))
    except Exception as e:
        entry.update(status="error", error=f"{type(e).__name__}: {e}",
                     traceback=traceback.format_exc()[-4000:])  # fmt: skip
    finally:
        check.section_end = math.inf
        entry["seconds"] = time.monotonic() - t0
        check.save()  # first: after a sticky CUDA error (a device-side assert) nothing else works
        free_cache(check.device)
    print(f"{name}: {entry['status']} in {entry['seconds']:.0f} s", flush=True)


def free_cache(device: torch.device) -> None:
    """Give cached GPU memory back between parts; after a sticky CUDA error this raises too,
    and the later parts (the chapters run in processes of their own) must still run."""
    if device.type == "cuda":
        with contextlib.suppress(Exception):
            torch.cuda.empty_cache()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def child_env(**extra: str) -> dict[str, str]:
    """This environment with the checkout first on PYTHONPATH (and ``extra``), for a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env | extra


def run_logged(cmd: list[str], log: Path, timeout: float, **kw: Any) -> dict[str, Any]:
    """Run cmd with its output to ``log``: return code (None: timed out), seconds, output's tail."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=max(timeout, 1), **kw)  # fmt: skip
        rc, output = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.output or ""
        rc, output = None, out.decode(errors="replace") if isinstance(out, bytes) else out
        output += f"\n[gpu_check: stopped after {timeout:.0f} s]\n"
    log.write_text(output)
    return {"returncode": rc, "seconds": time.monotonic() - t0, "tail": output[-3000:],
            "log": log.name}  # fmt: skip


# --- 1. provenance -------------------------------------------------------------------------------


def git(*args: str) -> str | None:
    try:
        p = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                           timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def nvidia_smi(query: str) -> str | None:
    try:
        p = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip().splitlines()[0] if p.returncode == 0 and p.stdout.strip() else None


def provenance(check: Check, res: dict) -> bool:
    """Where the figures come from."""
    commit = git("rev-parse", "HEAD")
    res |= {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "commit": commit or check.report["commit_arg"],
        "commit_source": "git" if commit else "--commit" if check.report["commit_arg"] else None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": package_version("numpy"),
        "numba": package_version("numba"),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32,
                 "cudnn": torch.backends.cudnn.allow_tf32},  # fmt: skip
        "env": {k: v for k, v in os.environ.items()
                if k.startswith("VAEGAN_") or k == "CUBLAS_WORKSPACE_CONFIG"},  # fmt: skip
        "device": str(check.device),
    }
    if check.device.type == "cuda":
        p = torch.cuda.get_device_properties(check.device)
        name = p.name
        res["gpu"] = {"name": p.name, "compute_capability": f"{p.major}.{p.minor}",
                      "memory_gib": p.total_memory / 2**30,
                      "multiprocessors": p.multi_processor_count,
                      "driver": nvidia_smi("driver_version")}  # fmt: skip
    else:
        name = platform.processor() or platform.machine()
        res["cpu"] = {"name": name, "threads": torch.get_num_threads()}
    res["peak"] = peak_for(name)
    check.report["peak_tflops"] = res["peak"]["tflops"]
    # Draw a few faces at both sizes: numba compiles the face renderer into its on-disk cache
    # here (about 14 CPU-s on a fresh machine), not inside the CUDA tests' capped section.
    t0 = time.monotonic()
    for size in (32, 64):
        render_faces(0, range(8), size)
    res["faces_warmup_s"] = time.monotonic() - t0
    # whether the faces were drawn by numba's kernel (else by torch, many times slower), per size
    res["faces_jit"] = {str(size): faces.USE_JIT and faces._jit_checked.get(size, False)
                        for size in (32, 64)}  # fmt: skip
    return True


# --- 2. the tests that need CUDA -----------------------------------------------------------------

CUDA_TEST = re.compile(r"def test_\w*cuda|mark\.cuda\b")


def junit_counts(path: Path) -> dict[str, Any]:
    """Passed, failed, errors and skipped from pytest's JUnit XML, and the failing tests' names."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failing = []
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for k in counts:
            counts[k] += int(suite.get(k, 0))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failing.append(f"{case.get('classname')}::{case.get('name')}")
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {"passed": passed, "failed": counts["failures"], "errors": counts["errors"],
            "skipped": counts["skipped"], "failing": failing}  # fmt: skip


def cuda_tests(check: Check, res: dict) -> bool:
    """pytest on the tests that need CUDA (they skip without it)."""
    tests = sorted((ROOT / "tests").glob("test_*.py"))
    files = [p for p in tests if CUDA_TEST.search(p.read_text())]
    if not files:
        raise Skip("no test is named *cuda* or marked cuda")
    select = ["-k", "cuda"]  # names and markers alike
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
               "--continue-on-collection-errors", f"--junitxml={junit}", *select,
               *(str(p.relative_to(ROOT)) for p in files)]  # fmt: skip
        run = run_logged(cmd, check.log_path("cuda_tests"), check.left() - 3, cwd=ROOT,
                         env=child_env())  # fmt: skip
        res |= {"selection": " ".join(select), "files": [p.name for p in files], **run}
        if junit.exists():
            res |= junit_counts(junit)
    return run["returncode"] == 0


# --- 3. exact resume and the cost of determinism -------------------------------------------------


def paper_config(preset: str, model: str, **switches: Any) -> TrainConfig:
    """The book preset's TrainConfig of ``model`` (networks, batch, gamma), with ``switches``."""
    return config_for(PRESETS[preset], model, **switches)


def random_data(cfg: TrainConfig, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n random uint8 images of cfg's size and zero attributes: train()'s ``data`` (exact resume
    and speed do not depend on what the images show, and no faces need drawing)."""
    g = torch.Generator().manual_seed(seed)
    s, c = cfg.model.image_size, cfg.model.channels
    images = torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=g)
    return images, torch.zeros(n, len(ATTR_NAMES))


def resume_check(cfg: TrainConfig, k: int, folder: Path) -> dict[str, Any]:
    """Train k steps and resume to cfg.steps, train cfg.steps straight; compare every tensor."""
    data = random_data(cfg, 4 * cfg.batch_size)
    short = dataclasses.replace(cfg, steps=k)
    train(short, folder / "resumed", data=data, progress=False)
    resumed = train(cfg, folder / "resumed", data=data, progress=False)
    straight = train(cfg, folder / "straight", data=data, progress=False)
    a, b = resumed.model.state_dict(), straight.model.state_dict()
    equal = [torch.equal(a[name], b[name]) for name in a]
    diffs = [(a[n].double() - b[n].double()).abs().max().item()
             for n in a if a[n].is_floating_point() and a[n].numel()]  # fmt: skip
    return {"steps": [k, cfg.steps], "bitwise_equal": all(equal), "tensors_equal": sum(equal),
            "tensors": len(equal), "max_abs_diff": max(diffs, default=0.0)}  # fmt: skip


@contextlib.contextmanager
def determinism(mode: str) -> Iterator[list[str]]:
    """cuDNN and torch set for ``mode``; yields a list that gets the ops torch warned about.

    deterministic: train.deterministic_algorithms, what a run with ``deterministic=True`` gets
                   (exact resume on CUDA; CUBLAS_WORKSPACE_CONFIG is also set by main)
    default:       torch's defaults (no checks, cuDNN's heuristics)
    benchmark:     cuDNN times its algorithms and keeps the fastest
    """
    cudnn = torch.backends.cudnn
    saved = cudnn.benchmark
    cudnn.benchmark = mode == "benchmark"
    noted: list[str] = []
    try:
        with deterministic_algorithms(mode == "deterministic"), \
                warnings.catch_warnings(record=True) as caught:  # fmt: skip
            warnings.simplefilter("always")
            yield noted
        found = {str(w.message).splitlines()[0] for w in caught}
        noted += sorted(m for m in found if "determinis" in m)
    finally:
        cudnn.benchmark = saved


def steps_per_s(cfg: TrainConfig, steps: int) -> float:
    """Training steps per second over ``steps`` steps, after a short warm-up run."""
    data = random_data(cfg, 4 * cfg.batch_size)
    train(dataclasses.replace(cfg, steps=2), data=data, progress=False)  # lazy init, cuDNN's picks
    r = train(dataclasses.replace(cfg, steps=steps), data=data, progress=False)
    return r.steps_run / r.seconds


def resume(check: Check, res: dict) -> bool:
    """Exact resume under determinism, per precision; then what determinism costs."""
    k, n = check.sizes.resume_steps
    device = str(check.device)

    def cfg(switches: dict, steps: int) -> TrainConfig:
        return paper_config(check.sizes.preset, "vaegan", device=device, steps=steps,
                            log_every=k, checkpoint_every=0, **switches)  # fmt: skip

    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    res["settings"] = {"model": "vaegan", "preset": check.sizes.preset,
                       "CUBLAS_WORKSPACE_CONFIG": workspace}  # fmt: skip
    res["deterministic"] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-resume-") as tmp:
        for name, switches in RESUME_VARIANTS.items():
            with determinism("deterministic") as noted:  # and the runs' own deterministic=True
                r = resume_check(cfg(switches | {"deterministic": True}, n), k, Path(tmp, name))
            res["deterministic"][name] = r | {"nondeterministic_ops": noted}
            check.save()
        # Informational: is determinism needed at all on this GPU? (cuDNN benchmark, no checks)
        with determinism("benchmark"):
            fast = RESUME_VARIANTS["auto_channels_last"]
            res["without_determinism"] = resume_check(cfg(fast, n), k, Path(tmp, "benchmark"))
    check.save()
    cost: dict[str, float] = {}
    for mode in ("deterministic", "default", "benchmark"):
        if check.left() < 10:
            break
        with determinism(mode):
            cost[mode] = steps_per_s(cfg(RESUME_VARIANTS["auto_channels_last"], 1),
                                     check.sizes.cost_steps)  # fmt: skip
    res["steps_per_s"] = cost
    if "deterministic" in cost and "benchmark" in cost:
        res["determinism_slowdown"] = cost["benchmark"] / cost["deterministic"]
    bitwise = [r["bitwise_equal"] for r in res["deterministic"].values()]
    res["headline"] = (f"bitwise {sum(bitwise)}/{len(bitwise)}; determinism costs "
                       f"{res.get('determinism_slowdown', math.nan):.2f}x")  # fmt: skip
    return all(bitwise)


# --- 4. the bench table --------------------------------------------------------------------------


@contextlib.contextmanager
def toy_peaks() -> Iterator[None]:
    """bench()'s peak measurements at a toy size: its 2048^3 matmuls take seconds on a CPU."""
    saved = bench_module.matmul_peak, bench_module.conv_peak
    bench_module.matmul_peak = functools.partial(saved[0], n=128, reps=1)
    bench_module.conv_peak = lambda device, precision: (math.nan, math.nan)
    try:
        yield
    finally:
        bench_module.matmul_peak, bench_module.conv_peak = saved


def mfu(images_per_s: float, flops_per_image: float, peak_tflops: float | None) -> float | None:
    """Model FLOP utilisation: achieved FLOP/s over the GPU's dense bf16 peak."""
    return images_per_s * flops_per_image / (peak_tflops * 1e12) if peak_tflops else None


def bench_rows(check: Check, res: dict, variants: dict[str, dict], models: tuple[str, ...],
               needs_s: float = 5.0) -> bool:  # fmt: skip
    """One row per (variant, model) of vaegan_lite.bench.bench(); a row's error is recorded."""
    s = check.sizes
    rows, skipped = res.setdefault("rows", []), res.setdefault("not_run", [])
    res["settings"] = {"preset": s.preset, "steps": s.bench_steps, "warmup": s.bench_warmup,
                       "peak": check.report.get("peak_tflops")}  # fmt: skip
    ok = True
    with toy_peaks() if check.dry else contextlib.nullcontext():
        for variant, switches in variants.items():
            for model in models:
                if check.left() < needs_s:
                    skipped.append(f"{model} {variant}: {check.left():.0f} s left")
                    continue
                cfg = paper_config(s.preset, model, device=str(check.device), **switches)
                row = {"model": model, "variant": variant, **switches,
                       "precision_asked": cfg.precision,
                       "precision": pick_precision(cfg.precision, check.device),
                       "image_size": cfg.model.image_size, "width": cfg.model.width,
                       "batch_size": cfg.batch_size, **tf32_state(),
                       # replaced when the row ends; left as it is if the section's time runs
                       # out during it (a compile, say), so the JSON says which row that was
                       "error": "unfinished: the section's time ran out during this row"}
                rows.append(row)
                check.save()
                if switches.get("compile"):
                    fresh_dynamo()
                t0 = time.monotonic()
                try:
                    r = bench(cfg, steps=s.bench_steps, warmup=s.bench_warmup)
                except Exception as e:
                    row["error"], ok = f"{type(e).__name__}: {e}", False
                else:
                    del row["error"]
                    row["seconds"] = time.monotonic() - t0  # compiling, warm-up and peaks included
                    row |= {
                        "images_per_s": r.images_per_s,
                        "step_ms_median": 1e3 * statistics.median(r.step_seconds),
                        "gflop_per_image": r.flops_per_image / 1e9,
                        "achieved_tflops": r.images_per_s * r.flops_per_image / 1e12,
                        "mfu": mfu(r.images_per_s, r.flops_per_image,
                                   check.report.get("peak_tflops")),
                        "measured_matmul_tflops": r.peak_flops / 1e12,
                        "fraction_of_measured_matmul_peak": r.fraction_of_peak,
                        "measured_conv_tflops": r.conv_peak_flops / 1e12,
                        # back to back, as training runs them: a step queued while one runs
                        "pipelined_images_per_s": r.pipelined_images_per_s,
                        "pipelined_mfu": mfu(r.pipelined_images_per_s, r.flops_per_image,
                                             check.report.get("peak_tflops")),
                    }  # fmt: skip
                    if switches.get("compile"):
                        row |= compiled_row_flops(check, row) | dynamo_stats()
                free_cache(check.device)
                check.save()
    best = max((r for r in rows if "images_per_s" in r), key=lambda r: r["images_per_s"],
               default=None)  # fmt: skip
    if best:
        shown = f"{best['mfu']:.1%}" if best["mfu"] else "n/a"
        res["headline"] = (f"{len(rows)} rows, {len(skipped)} not run; fastest {best['model']} "
                           f"{best['variant']} {best['images_per_s']:.0f} img/s, MFU {shown}")
    return ok  # rows left out for time are listed in not_run, not failures


def tf32_state() -> dict[str, bool]:
    """What "fp32" means on this GPU: cuDNN's convolutions in TF32 (its default) and matmuls in
    true fp32 (torch's default), as training runs them; recorded per row, since an fp32 row's
    fraction of the measured (true fp32) matmul peak can then exceed 1."""
    return {"tf32_convolutions": torch.backends.cudnn.allow_tf32,
            "tf32_matmuls": torch.backends.cuda.matmul.allow_tf32}  # fmt: skip


def compiled_row_flops(check: Check, row: dict) -> dict[str, Any]:
    """A compiled row's FLOPs and MFU from the same model's eager channels_last row: the count
    under torch.compile sees only what runs outside the compiled graphs (kept as counted_*)."""
    eager = [r for r in check.report["sections"].get("bench", {}).get("result", {}).get("rows", [])
             if r["model"] == row["model"] and r["variant"] == "channels_last"
             and "gflop_per_image" in r]  # fmt: skip
    if not eager:
        return {"flops_from": "counted under compile (no eager channels_last row to take)"}
    g = eager[0]["gflop_per_image"]
    peak = check.report.get("peak_tflops")
    return {"counted_gflop_per_image": row["gflop_per_image"], "gflop_per_image": g,
            "achieved_tflops": row["images_per_s"] * g / 1e3,
            "mfu": mfu(row["images_per_s"], g * 1e9, peak),
            "pipelined_mfu": mfu(row["pipelined_images_per_s"], g * 1e9, peak),
            "flops_from": "the eager channels_last row of this model"}  # fmt: skip


def fresh_dynamo() -> None:
    """Each compiled row compiles afresh, as a reader's first run would, and within torch's
    recompile limit of its own (a limit per code object, which the rows' modules can share); its
    counters start at zero (dynamo_stats)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()


def dynamo_stats() -> dict[str, Any]:
    """Graphs compiled, graph breaks and frames since fresh_dynamo: a row past torch's recompile
    limit runs partly eager, which these show."""
    counters = torch._dynamo.utils.counters
    return {"dynamo_unique_graphs": counters["stats"].get("unique_graphs", 0),
            "dynamo_graph_breaks": sum(counters["graph_break"].values()),
            # frames dynamo tried, and those it compiled: fewer ok than total ran eager
            "dynamo_frames": counters["frames"].get("total", 0),
            "dynamo_frames_ok": counters["frames"].get("ok", 0)}  # fmt: skip


def bench_table(check: Check, res: dict) -> bool:
    # The chapters' own settings first, for every model a chapter trains (AVAE and BiGAN too):
    # tools/time_chapters.py sizes each chapter's running box from these rows, so they are the
    # ones a section cut short must not lose. Then the precisions, for the five models.
    chapters = {"channels_last": BENCH_VARIANTS["channels_last"]}
    precisions = {k: v for k, v in BENCH_VARIANTS.items() if k not in chapters}
    return all([bench_rows(check, res, chapters, MODEL_NAMES),
                bench_rows(check, res, precisions, MODELS)])  # both run, whatever the first says


def bench_compile(check: Check, res: dict) -> bool:
    if check.dry:
        raise Skip("the CPU dry run leaves torch.compile out (inductor takes minutes on a CPU)")
    order = ("vaegan", *(m for m in MODELS if m != "vaegan"))
    return bench_rows(check, res, COMPILE_VARIANT, order, needs_s=check.sizes.compile_needs_s)


# --- 5. pythae 0.1.2 side by side ----------------------------------------------------------------


def load_compare() -> types.ModuleType:
    """benchmarks/pythae_compare.py as a module (benchmarks/ is not a package)."""
    path = ROOT / "benchmarks" / "pythae_compare.py"
    spec = importlib.util.spec_from_file_location("pythae_compare", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # for its dataclasses
    spec.loader.exec_module(module)
    return module


def contender_step(compare: types.ModuleType, name: str, device: torch.device, image_size: int,
                   batch: int) -> Callable[[], None]:  # fmt: skip
    """pythae_compare's contender ``name`` built on ``device``: pythae's under torch's default
    device (its runner builds on the default one), ours as its own config with device set."""
    kind, settings = compare.CONTENDERS[name]
    if kind == "pythae":
        with torch.device(device):
            return compare.pythae_runner(image_size, batch, 0, **settings)
    cpu = compare.ours_runner(image_size, batch, 0, **settings).cfg
    return StepRunner(dataclasses.replace(cpu, device=device.type))


def time_step(step: Callable[[], None], device: torch.device, steps: int,
              warmup: int) -> tuple[list[float], list[float], float]:  # fmt: skip
    """Wall and CPU seconds of ``steps`` synced steps after ``warmup``; one step's FLOPs."""
    for _ in range(warmup):
        step()
    flops = count_flops(step)
    wall, cpu = [], []
    for _ in range(steps):
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync(device)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu, flops


def pythae_side_by_side(check: Check, res: dict) -> bool:
    """pythae's VAEGAN step and ours, same nets, same GPU: img/s, MFU, ratio to pythae fp32."""
    try:
        import pythae.models  # noqa: F401
        import pythae.trainers  # noqa: F401
    except ImportError as e:
        raise Skip(f"pythae cannot be imported ({e}): carry the wheels the docstring lists") from e
    compare, s = load_compare(), check.sizes
    names = ["pythae fp32", "ours fp32"] if check.dry else list(compare.CONTENDERS)
    res["settings"] = {"image_size": s.pythae_image_size, "batch_size": s.pythae_batch,
                       "steps": s.bench_steps, "warmup": s.bench_warmup}  # fmt: skip
    rows = res.setdefault("contenders", {})
    for name in names:
        if check.left() < 10:  # a contender's warm-up and timed steps: a few seconds
            res.setdefault("not_run", []).append(name)
            continue
        try:  # one contender's failure (pythae has not run on CUDA here before) loses only it
            step = contender_step(compare, name, check.device, s.pythae_image_size,
                                  s.pythae_batch)  # fmt: skip
            wall, cpu, flops = time_step(step, check.device, s.bench_steps, s.bench_warmup)
        except Exception as e:
            res.setdefault("failed", {})[name] = (f"{type(e).__name__}: {e}"
                                                  + traceback.format_exc()[-1500:])  # fmt: skip
            step = None
            free_cache(check.device)
            check.save()
            continue
        per_s = s.pythae_batch / statistics.median(wall)
        rows[name] = {"settings": compare.CONTENDERS[name][1], "images_per_s": per_s,
                      "step_s_median": statistics.median(wall),
                      "step_cpu_s_median": statistics.median(cpu),
                      "executed_gflop_per_image": flops / s.pythae_batch / 1e9,
                      "hfu": mfu(per_s, flops / s.pythae_batch, check.report.get("peak_tflops"))}
        del step
        compare_rows(res, compare, check.report.get("peak_tflops"))  # kept if time runs out
        check.save()
    return bool(rows) and not res.get("failed")


def compare_rows(res: dict, compare: types.ModuleType, peak_tflops: float | None) -> None:
    """The contenders against each other: each one's speed over pythae fp32's, and its MFU from
    one FLOP count for all, the model's (our fp32 step: Algorithm 1's passes, no more). Executed
    FLOPs (hfu) would credit pythae's extra backward passes as useful work."""
    rows = res["contenders"]
    base, ours = rows.get("pythae fp32"), rows.get("ours fp32")
    model_flops = 1e9 * ours["executed_gflop_per_image"] if ours else None
    for row in rows.values():
        row["ratio_to_pythae_fp32"] = row["images_per_s"] / base["images_per_s"] if base else None
        row["mfu"] = mfu(row["images_per_s"], model_flops, peak_tflops) if model_flops else None
    res["model_gflop_per_image"] = model_flops / 1e9 if model_flops else None
    res["like_for_like"] = compare.like_for_like(rows)
    best = max(rows, key=lambda k: rows[k]["images_per_s"], default=None)
    if best and base:
        res["headline"] = f"fastest {best}: {rows[best]['ratio_to_pythae_fp32']:.2f}x pythae fp32"


# --- 6. chapters 1, 4 and A1 ---------------------------------------------------------------------


@contextlib.contextmanager
def environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def chapters(check: Check, res: dict) -> bool:
    """Each chapter's .py source as a script, at the gpu preset, cut short, in an empty folder."""
    s = check.sizes
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-chapters-"))
    env = {"VAEGAN_PRESET": s.chapter_preset, "VAEGAN_STEPS": str(s.chapter_steps),
           "VAEGAN_DATA_FALLBACK": "1", "VAEGAN_DATA": str(tmp / "data"),  # no CelebA there
           "VAEGAN_RUNS": str(tmp / "runs"), "VAEGAN_CACHE": str(tmp / "cache"),
           "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    res["env"] = env
    with environ(env):  # what the chapters' get_preset() will make of that environment
        preset = get_preset()
    res["preset"] = dataclasses.asdict(preset)
    if preset.steps > s.chapter_steps and preset.name != "smoke":
        raise Skip(f"get_preset() ignores VAEGAN_STEPS: the {preset.name} preset would train "
                   f"{preset.steps} steps per model (the package needs that hook)")  # fmt: skip
    if preset.data != "synthetic":
        raise Skip(f"without CelebA the {preset.name} preset still wants {preset.data!r}: the "
                   "package needs the synthetic fallback in get_preset()")  # fmt: skip
    runs, paths = res.setdefault("runs", {}), check.report["chapters_arg"]
    weights = [CHAPTER_WEIGHTS.get(Path(c).stem, 1.0) for c in paths]
    for i, chapter in enumerate(paths):
        name = Path(chapter).stem
        # its weight's part of what is left: what chapter i leaves unused, the next ones get
        share = check.left() * weights[i] / sum(weights[i:])
        cmd = [sys.executable, str(Path(__file__).resolve()), "--run-chapter",
               str((ROOT / chapter).resolve())]  # fmt: skip
        # as a reader's run: without the cuBLAS workspace setting main makes for the resume
        # section (chapter 4's exact resume must hold without it, as on Colab)
        chapter_env = {k: v for k, v in child_env(**env).items() if k != "CUBLAS_WORKSPACE_CONFIG"}
        run = run_logged(cmd, check.log_path(f"chapter_{name}"), share - 2, cwd=tmp,
                         env=chapter_env)  # fmt: skip
        run["status"] = {0: "ok", None: "timeout"}.get(run["returncode"], "failed")
        runs[name] = run
        check.save()
    res["headline"] = ", ".join(f"{k} {r['status']} in {r['seconds']:.0f} s"
                                for k, r in runs.items())  # fmt: skip
    return len(runs) == len(paths) and all(r["status"] == "ok" for r in runs.values())


def stub_ipython() -> None:
    """IPython as a plain script sees it: no shell, and display() shows nothing. The GPU machine
    has no IPython; the chapters import it lazily, for their boxes and source listings only."""

    class Shown:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.args = args

        def update(self, *args: Any, **kwargs: Any) -> None:
            pass

    display = types.ModuleType("IPython.display")
    for name in ("Code", "HTML", "Image", "Markdown"):
        setattr(display, name, Shown)
    display.display = lambda *objs, **kwargs: Shown()
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: None
    ipython.display = display
    # matplotlib reads IPython's version once a module of that name is loaded (a new one: it
    # then asks no more of it)
    ipython.version_info = (9, 0, 0, "")
    sys.modules |= {"IPython": ipython, "IPython.display": display}


def run_chapter(path: str) -> None:
    """Run a chapter's .py:percent source as a script (its Colab `# %pip` line is a comment)."""
    try:
        import IPython  # noqa: F401
    except ImportError:
        stub_ipython()
        print("gpu_check: IPython is not installed; the chapter runs with a stub of it", flush=True)
    sys.argv = [path]
    runpy.run_path(path, run_name="__main__")


# --- the run -------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Check, dict], bool]] = {
    "provenance": provenance,
    "cuda_tests": cuda_tests,
    "resume": resume,
    "bench": bench_table,
    "pythae": pythae_side_by_side,
    "chapters": chapters,
    "bench_compile": bench_compile,
}
assert tuple(SECTIONS) == SECTION_NAMES


def device_call(commit: str) -> dict[str, Any]:
    """The device tool's `run` call that makes the GPU run (README: command under 2000 chars)."""
    return {"command": DEVICE_COMMAND.format(commit=commit), "timeout_s": DEVICE_TIMEOUT_S,
            "carry": [".whl"]}  # fmt: skip


def summary(report: dict[str, Any]) -> str:
    p = report["sections"].get("provenance", {}).get("result", {})
    where = p.get("gpu", p.get("cpu", {})).get("name", "?")
    lines = [f"gpu_check ({report['mode']}): {where}, torch {p.get('torch')}, commit "
             f"{(p.get('commit') or '?')[:12]}, {report['wall_s']:.0f} s of {report['budget_s']}"]
    for name, e in report["sections"].items():
        note = e.get("reason") or e.get("error") or e["result"].get("headline", "")
        lines.append(f"  {name:14} {e['status']:8} {e['seconds']:5.0f} s  {note}"[:160])
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path.cwd()
    ap.add_argument("--out", type=Path, default=out / "gpu_check.json", help="the JSON written")
    ap.add_argument("--budget-s", type=float, default=460.0, help="seconds for all the sections")
    ap.add_argument("--commit", default=None, help="the commit, where git is missing")
    ap.add_argument("--only", nargs="+", choices=SECTION_NAMES, help="run only these sections")
    ap.add_argument("--cpu-dry-run", action="store_true",
                    help="toy sizes on the CPU (without it, no CUDA is an error)")  # fmt: skip
    ap.add_argument("--chapters", nargs="+", default=list(CHAPTERS), help="chapter .py sources")
    ap.add_argument("--print-device-call", action="store_true",
                    help="print the device run call (JSON) for this checkout's commit")  # fmt: skip
    ap.add_argument("--run-chapter", metavar="PATH", help=argparse.SUPPRESS)  # the chapters' child
    a = ap.parse_args(argv)
    if a.run_chapter or a.print_device_call:
        return a  # neither writes the JSON nor spends the budget
    # Checked now: a bad --out failed (a traceback) at the first save, after a section had run;
    # a NaN or negative budget skipped every section and still exited 0.
    if not (a.budget_s >= 0 and math.isfinite(a.budget_s)):  # 0: all spent (the tests use it)
        ap.error(f"--budget-s must be a number of seconds >= 0, got {a.budget_s:g}")
    if a.out.is_dir():
        ap.error(f"--out {a.out} is a folder: name the JSON file")
    if why := why_unwritable(a.out.parent):
        ap.error(f"--out {a.out}: {why}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.run_chapter:
        run_chapter(a.run_chapter)
        return 0
    if a.print_device_call:
        print(json.dumps(device_call(git("rev-parse", "HEAD") or "COMMIT"), indent=2))
        return 0
    # Deterministic cuBLAS for the resume section; set before the first CUDA call, and inherited
    # by the tests run below (not by the chapters: they run as a reader's would).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if not a.cpu_dry_run and not torch.cuda.is_available():
        # said in the call's first seconds: a CPU run would spend the whole budget for nothing
        print(f"gpu_check: torch {torch.__version__} sees no CUDA device here; --cpu-dry-run runs "
              "the sections at toy sizes on the CPU", file=sys.stderr)  # fmt: skip
        return 2
    dry = a.cpu_dry_run
    if dry:
        torch.set_num_threads(1)  # toy sizes; and OpenMP's spinning threads crawl on a busy CPU
    start = time.monotonic()
    check = Check(a.out.resolve(), CPU_DRY if dry else GPU,
                  torch.device("cpu" if dry else "cuda"), start + a.budget_s)  # fmt: skip
    check.report = {"schema": 1, "tool": "tools/gpu_check.py",
                    "mode": "cpu-dry-run" if dry else "cuda", "budget_s": a.budget_s, "wall_s": 0.0,
                    "commit_arg": a.commit,
                    "chapters_arg": a.chapters, "sizes": dataclasses.asdict(check.sizes),
                    "sections": {}}  # fmt: skip
    for name in SECTION_NAMES:
        if name == "provenance" or a.only is None or name in a.only:
            run_section(check, name, SECTIONS[name])
            check.report["wall_s"] = time.monotonic() - start
    check.save()
    print(summary(check.report))
    print(f"wrote {check.out}")
    # the JSON is written whatever happened; the exit status says whether all of it held
    bad = [n for n, e in check.report["sections"].items()
           if e["status"] in ("failed", "error", "timeout")]  # fmt: skip
    if bad:
        print(f"gpu_check: {', '.join(bad)} did not pass (the JSON says why)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
