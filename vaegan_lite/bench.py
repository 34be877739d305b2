"""Throughput of a training step: images/s, model FLOPs per image, fraction of the matmul peak.

``python -m vaegan_lite bench --model vaegan --image-size 64 --batch-size 64 --steps 10``
times the real training step (the same function train() calls, models/fast.py's with --fast) after a
warm-up and reports the median. FLOPs are counted on one step (forward and backward of every
network, as torch.utils.flop_counter counts them); the peak is a large matmul of the same
precision measured on the same device, so "fraction of peak" says how much of the hardware the
step uses. A matmul is not always the fastest kernel: torch's fp32 matmul goes through MKL,
which takes its AVX2 path on AMD CPUs, while oneDNN's convolutions use AVX-512, so the step can
pass 100% of it; ``conv_peak`` (a large 5x5 convolution of Table 1) is a second ceiling.
On a CPU, both are also measured in CPU time (all threads of this process), which
other jobs on a shared machine barely change: ``cpu_images_per_s`` is images per CPU-second.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from .config import TrainConfig
from .data import training_tensors
from .images import to_unit_range
from .models import make_optimizers, model_spec
from .train import autocast_for, pick_device, pick_precision, prepare_model, train

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class BenchResult:
    """One timed configuration: its throughput and the model FLOP utilisation behind it."""

    images_per_s: float  #: batch size over the median step's wall seconds
    step_seconds: list[float]  #: wall seconds of each timed step, each synced before and after
    #: FLOPs of one step (forward and backward of every network) over the batch size
    flops_per_image: float
    peak_flops: float  #: measured matmul FLOP/s at this precision on this device
    step_cpu_seconds: list[float]  #: process CPU time of each step (all threads)
    peak_flops_cpu: float  #: the matmul's FLOPs per CPU-second
    batch_size: int  #: images in one step
    conv_peak_flops: float = float("nan")  #: measured FLOP/s of a large Table 1 convolution
    #: The same steps back to back, synced once: on a GPU Python queues a step while the last one
    #: runs, as in training (images_per_s times each step alone, synced before and after).
    pipelined_images_per_s: float = float("nan")

    @property
    def fraction_of_peak(self) -> float:
        """Model FLOP/s of the step as a fraction of the measured matmul peak."""
        return self.images_per_s * self.flops_per_image / self.peak_flops

    @property
    def fraction_of_conv_peak(self) -> float:
        """Model FLOP/s of the step as a fraction of the measured convolution peak."""
        return self.images_per_s * self.flops_per_image / self.conv_peak_flops

    @property
    def cpu_images_per_s(self) -> float:
        """Images per CPU-second (median step): what the step costs, whatever the machine's load."""
        return self.batch_size / statistics.median(self.step_cpu_seconds)

    @property
    def fraction_of_peak_cpu(self) -> float:
        """fraction_of_peak in CPU time: the step's FLOPs per CPU-second over the matmul's."""
        return self.cpu_images_per_s * self.flops_per_image / self.peak_flops_cpu


class FlopCount(TorchDispatchMode):
    """FLOPs of everything run inside, by torch.utils.flop_counter's formulas.

    (FlopCounterMode itself also tracks modules with backward hooks, which fail when a module's
    input is a leaf that torch.autograd.grad differentiates, as in fast.py.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:  # fmt: skip
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of everything one call of fn runs, by torch.utils.flop_counter's formulas."""
    with FlopCount() as c:
        fn()
    return c.total


class HostReads(TorchDispatchMode):
    """Counts the host's reads of tensor values while active: ``.item()``, ``bool(t)``,
    ``.tolist()`` and copies from a GPU to the CPU. On a GPU each one waits for every kernel queued
    before it; a training step without any lets the GPU run while Python queues the next step.
    On a CPU nothing waits, but the reads are counted all the same, so a test here finds them.
    ``ops`` counts every tensor operation too: on a GPU each is a kernel launch (or several)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = self.ops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:  # fmt: skip
        kwargs = kwargs or {}
        self.ops += 1
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        elif func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default):
            src = args[1] if func is torch.ops.aten.copy_.default else args[0]
            dst = args[0].device if func is torch.ops.aten.copy_.default else kwargs.get("device")
            self.count += src.device.type != "cpu" and dst is not None and dst.type == "cpu"
        return func(*args, **kwargs)

    def __enter__(self) -> HostReads:
        # A CPU tensor's tolist reads its memory below the dispatcher, so it is counted here
        # (a GPU tensor's is counted above, as a copy); in this thread, as the mode is.
        self._own = vars(torch.Tensor).get("tolist")  # None: Tensor inherits it
        outer, thread = torch.Tensor.tolist, threading.get_ident()

        def tolist(t: torch.Tensor):
            self.count += t.device.type == "cpu" and threading.get_ident() == thread
            return outer(t)

        torch.Tensor.tolist = tolist
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._own is None:
            del torch.Tensor.tolist
        else:
            torch.Tensor.tolist = self._own
        super().__exit__(*exc)


def per_step(
    cfg: TrainConfig, data: tuple[torch.Tensor, torch.Tensor] | None = None, few: int = 4,
    many: int | None = None,
) -> tuple[float, float]:
    """(tensor ops, host reads) of one training step of cfg's run, in train() itself: the counts
    of ``many`` steps (default: ``few`` + 2 ``max_nonfinite``, so the loop's periodic read of
    which steps were skipped is in) less those of ``few``, both runs with one log, per step in
    between. The ops are eager ones (compile off); a learning-rate decay, which adds none, too."""
    many = few + 2 * cfg.max_nonfinite if many is None else many
    if data is None:  # drawn here, not inside the count: a second draw may come from a cache
        data = training_tensors(cfg, progress=False)
    counts = []
    for steps in (few, many):
        run = replace(cfg, steps=steps, log_every=steps, lr_decay_steps=0, compile=False)
        with HostReads() as r:
            train(run, None, progress=False, data=data)
        counts.append((r.ops, r.count))
    (ops_few, reads_few), (ops_many, reads_many) = counts
    return (ops_many - ops_few) / (many - few), (reads_many - reads_few) / (many - few)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(
    device: torch.device, precision: str, n: int = 2048, reps: int = 10
) -> tuple[float, float]:
    """(FLOP/s, FLOPs per CPU-second) of an n x n matmul, the best of a few runs."""
    dtype = DTYPES[precision]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up
    best, best_cpu = float("inf"), float("inf")
    for _ in range(3):
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    flops = 2 * n**3 * reps
    return flops / best, flops / max(best_cpu, 1e-9)


def conv_peak(device: torch.device, precision: str, reps: int = 2) -> tuple[float, float]:
    """(FLOP/s, FLOPs per CPU-second) of Table 1's largest convolution: 128 => 256 channels,
    5x5, stride 2, 32x32 => 16x16, batch 64, channels_last, forward (the best of a few runs)."""
    dtype = DTYPES[precision]
    conv = nn.Conv2d(128, 256, 5, 2, 2, bias=False).to(device, dtype)
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(64, 128, 32, 32, device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    best, best_cpu = float("inf"), float("inf")
    with torch.no_grad():
        conv(x)  # warm-up
        for _ in range(3):
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(reps):
                conv(x)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
    flops = 2 * 64 * 16 * 16 * 256 * 128 * 25 * reps
    return flops / best, flops / max(best_cpu, 1e-9)


class StepRunner:
    """cfg's model, optimizers and one batch of random images, ready to step (for timing)."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.device = device = pick_device(cfg.device)
        precision = pick_precision(cfg.precision, device)
        torch.manual_seed(cfg.seed)
        spec = model_spec(cfg.model.model)
        self.model = model = spec.build(cfg.model).to(device)
        self.opts = make_optimizers(model, spec.networks, cfg.lr, cfg.rms_alpha)
        prepare_model(model, cfg)  # as train() does: channels-last, compile
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.autocast = autocast_for(precision, device)
        c, s = cfg.model.channels, cfg.model.image_size
        shape = (cfg.batch_size, c, s, s)
        images = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
        self.x = to_unit_range(images)
        if cfg.channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        # vae_disl's timed phase is its second one (a VAE on the frozen Dis); the others have one.
        self.step = spec.step(cfg.step.disl_pretrain_steps, cfg.step)

    def __call__(self) -> None:
        """One training step on the fixed batch (not synced: timed() syncs around it)."""
        self.step(self.model, self.x, self.opts, self.cfg.step, autocast=self.autocast,
                  scaler=self.scaler)  # fmt: skip

    def timed(self, steps: int = 1) -> tuple[float, float]:
        """(wall seconds, process CPU seconds) of one step: the mean of ``steps`` steps run back
        to back, with the device synced only before and after them."""
        _sync(self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            self()
        _sync(self.device)
        return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def seconds_per_step(
    cfg: TrainConfig, steps: int = 100, warmup: int = 10, ready: Callable[[], object] | None = None
) -> float:
    """Median wall seconds of one training step of cfg's model here, after ``warmup`` steps (what
    sizing a run to a time budget needs; bench() adds FLOPs and the hardware's peaks). ``ready``,
    called between the two, waits for processes timed side by side (a barrier's wait)."""
    run = StepRunner(cfg)
    for _ in range(warmup):
        run()
    if ready is not None:
        ready()
    return statistics.median(run.timed()[0] for _ in range(steps))


def bench(cfg: TrainConfig, steps: int = 10, warmup: int = 3) -> BenchResult:
    """Time ``steps`` training steps of cfg's model on random images (after ``warmup`` steps)."""
    run = StepRunner(cfg)
    for _ in range(warmup):
        run()
    flops = count_flops(run)
    times, cpu = zip(*(run.timed() for _ in range(steps)), strict=True)
    back_to_back, _ = run.timed(steps)
    precision = pick_precision(cfg.precision, run.device)
    peak, peak_cpu = matmul_peak(run.device, precision)
    return BenchResult(
        images_per_s=cfg.batch_size / statistics.median(times),
        step_seconds=list(times),
        flops_per_image=flops / cfg.batch_size,
        peak_flops=peak,
        step_cpu_seconds=list(cpu),
        peak_flops_cpu=peak_cpu,
        batch_size=cfg.batch_size,
        conv_peak_flops=conv_peak(run.device, precision)[0],
        pipelined_images_per_s=cfg.batch_size / back_to_back,
    )
