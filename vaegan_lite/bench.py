"""Throughput of a training step: images/s, model FLOPs per image, fraction of the matmul peak.

``python -m vaegan_lite bench --model vaegan --image-size 64 --batch-size 64 --steps 10``
times the real training step (the same function train() calls) after a warm-up and reports the
median. FLOPs are counted by torch.utils.flop_counter on one step (forward and backward of every
network); the peak is a large matmul of the same precision measured on the same device, so
"fraction of peak" says how much of the hardware the step actually uses.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from .models import make_optimizers
from .train import (
    TrainConfig,
    autocast_for,
    model_spec,
    pick_device,
    pick_precision,
    to_unit_range,
)


@dataclass
class BenchResult:
    images_per_s: float
    step_seconds: list[float]
    flops_per_image: float
    peak_flops: float  # measured matmul FLOP/s at this precision

    @property
    def fraction_of_peak(self) -> float:
        return self.images_per_s * self.flops_per_image / self.peak_flops


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, precision: str, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of an n x n matmul (the best of a few runs) at the given precision."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for _ in range(3):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * reps / best


def bench(cfg: TrainConfig, steps: int = 10, warmup: int = 3) -> BenchResult:
    """Time ``steps`` training steps of cfg's model on random images (after ``warmup`` steps)."""
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    spec = model_spec(cfg.model.model)
    model = spec.build(cfg.model).to(device).train()
    opts = make_optimizers(model, spec.networks, cfg.lr, cfg.rms_alpha)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        for name in spec.networks:
            getattr(model, name).compile()
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    autocast = autocast_for(precision, device)
    c, s = cfg.model.channels, cfg.model.image_size
    images = torch.randint(0, 256, (cfg.batch_size, c, s, s), dtype=torch.uint8, device=device)
    x = to_unit_range(images)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    # vae_disl's timed phase is its second one (a VAE on the frozen Dis); the others have one.
    t_step = cfg.step.disl_pretrain_steps
    step = spec.step(t_step, cfg.step)

    def run() -> None:
        step(model, x, opts, cfg.step, autocast=autocast, scaler=scaler)

    for _ in range(warmup):
        run()
    with FlopCounterMode(display=False) as counter:
        run()
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return BenchResult(
        images_per_s=cfg.batch_size / median,
        step_seconds=times,
        flops_per_image=counter.get_total_flops() / cfg.batch_size,
        peak_flops=matmul_peak(device, precision),
    )
