"""vaegan-lite's training step against pythae 0.1.2's VAEGAN on the identical Table 1 nets.

    pip install pythae==0.1.2 --no-deps && pip install "pydantic>=2" cloudpickle scipy
    python benchmarks/pythae_compare.py                  # 64x64, batch 64, 5 rounds, 2 threads
    python benchmarks/pythae_compare.py --rounds 3 --out /tmp/speed.json

pythae is a benchmark-only dependency (its own pins would replace this project's torch, hence
--no-deps and the three small packages it imports). Our Encoder, Decoder and Discriminator are
wrapped in pythae's BaseEncoder/BaseDecoder/BaseDiscriminator interfaces, with Dis_l (the 4th
conv, before its BatchNorm) as pythae's reconstruction layer, RMSprop(lr 3e-4) for every network
and pythae's margin disabled, so that every pythae step runs all its passes. A pythae step is
exactly what its CoupledOptimizerAdversarialTrainer does per batch: the model's forward (Dis four
times), _optimizers_step (three .backward() passes) and the four .item() of its loop. pythae's
trainer autocasts only on CUDA, so it runs in fp32 here.

Every contender is built once; then each round times one step of each, in a rotating order, in
this one process, so a change of the machine's load hits all of them alike. Reported: medians
of wall time and of this process's CPU time (all threads; other jobs barely change it), the
ratios to pythae, FLOPs per image (counted), and the fraction of the matmul peak measured here.
Results go to vaegan_lite/results/speed.json (package data, which the appendix "Making it fast"
shows) with the machine's figures.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

from vaegan_lite.bench import StepRunner, conv_peak, count_flops, matmul_peak
from vaegan_lite.cli import OneLineParser
from vaegan_lite.config import ModelConfig, StepConfig, TrainConfig
from vaegan_lite.nets import Decoder, Discriminator, Encoder

RESULTS = Path(__file__).resolve().parents[1] / "vaegan_lite" / "results" / "speed.json"


def pythae_runner(image_size: int, batch_size: int, seed: int, channels_last: bool = False):
    """One pythae VAEGAN training step on our Table 1 nets, as a callable."""
    from pythae.models import VAEGAN, VAEGANConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder
    from pythae.trainers import CoupledOptimizerAdversarialTrainer

    class PEncoder(BaseEncoder):
        def __init__(self, net: Encoder) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            mu, logvar = self.net(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class PDecoder(BaseDecoder):
        def __init__(self, net: Decoder) -> None:
            super().__init__()
            self.net = net

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    class PDiscriminator(BaseDiscriminator):
        """Layer i <= 4: conv i's output (BN/ReLU of the layer before first); layer 5: the
        probability. Like pythae's own nets, it stops at the deepest layer asked for."""

        def __init__(self, net: Discriminator) -> None:
            super().__init__()
            self.net = net
            self.depth = len(net.blocks) + 1

        def forward(self, x, output_layer_levels=None):
            out, blocks = ModelOutput(), self.net.blocks
            levels = output_layer_levels or []
            depth = self.depth if not levels or -1 in levels else max(levels)
            h = x
            for i in range(1, depth + 1):
                if i <= len(blocks):
                    h = blocks[i - 1][0](h if i == 1 else blocks[i - 2][1:](h))
                else:
                    h = blocks[-1][1:](h).flatten(1)
                    h = torch.sigmoid(self.net.out(self.net.fc(h)))
                if i in levels:
                    out[f"embedding_layer_{i}"] = h
                if i == self.depth:
                    out["embedding"] = h
            return out

    torch.manual_seed(seed)
    nets = Encoder(image_size), Decoder(image_size), Discriminator(image_size)
    # margin=1e9: the equilibrium test never skips an update, so every step runs all passes.
    shape = (3, image_size, image_size)
    cfg = VAEGANConfig(input_dim=shape, latent_dim=128, reconstruction_layer=4, margin=1e9)
    model = VAEGAN(cfg, PEncoder(nets[0]), PDecoder(nets[1]), PDiscriminator(nets[2])).train()

    # The three optimizers _optimizers_step uses, made as pythae's trainer makes them.
    trainer = SimpleNamespace(
        encoder_optimizer=torch.optim.RMSprop(model.encoder.parameters(), lr=3e-4),
        decoder_optimizer=torch.optim.RMSprop(model.decoder.parameters(), lr=3e-4),
        discriminator_optimizer=torch.optim.RMSprop(model.discriminator.parameters(), lr=3e-4),
    )
    x = torch.rand(batch_size, 3, image_size, image_size) * 2 - 1
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        out = model({"data": x})
        CoupledOptimizerAdversarialTrainer._optimizers_step(trainer, out)
        for k in ("encoder_loss", "decoder_loss", "discriminator_loss", "loss"):
            out[k].item()

    return step


def ours_runner(image_size, batch_size, seed, precision="fp32", fast=False,
                channels_last=False, gan_variant="non_saturating"):  # fmt: skip
    cfg = TrainConfig(
        model=ModelConfig(image_size=image_size),
        step=StepConfig(fast=fast, gan_variant=gan_variant),
        batch_size=batch_size,
        dataset_size=batch_size,
        device="cpu",
        precision=precision,
        channels_last=channels_last,
        seed=seed,
    )
    return StepRunner(cfg)


@dataclass
class Contender:
    name: str
    settings: dict
    precision: str = "fp32"
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    flops_per_image: float = 0.0


CONTENDERS = {
    # name: (runner kind, settings); "ours" settings are StepRunner/TrainConfig switches.
    "pythae fp32": ("pythae", {}),
    "pythae fp32 channels_last": ("pythae", {"channels_last": True}),
    "ours fp32": ("ours", {}),
    "ours fp32 channels_last": ("ours", {"channels_last": True}),
    "ours fp32 fast channels_last": ("ours", {"fast": True, "channels_last": True}),
    "ours bf16 channels_last": ("ours", {"precision": "bf16", "channels_last": True}),
    "ours bf16 fast channels_last": ("ours", {"precision": "bf16", "fast": True,
                                              "channels_last": True}),  # fmt: skip
    "ours bf16 fast channels_last saturating": ("ours", {
        "precision": "bf16", "fast": True, "channels_last": True, "gan_variant": "saturating"}),
}  # fmt: skip


def timed(fn) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def like_for_like(rows: dict) -> dict:
    """Ours over pythae with the same engineering switches (wall and CPU-time ratios)."""
    pairs = {"fp32": ("ours fp32", "pythae fp32"),
             "fp32 channels_last": ("ours fp32 channels_last", "pythae fp32 channels_last"),
             "fp32 channels_last, fast step": ("ours fp32 fast channels_last",
                                               "pythae fp32 channels_last")}  # fmt: skip
    out = {}
    for label, (ours, theirs) in pairs.items():
        if ours in rows and theirs in rows:
            o, t = rows[ours], rows[theirs]
            out[label] = {"wall": t["step_s_median"] / o["step_s_median"],
                          "cpu": t["step_cpu_s_median"] / o["step_cpu_s_median"]}  # fmt: skip
    return out


def summary(a, contenders: dict[str, Contender], peaks: dict, load0: float, rounds: int) -> dict:
    """The JSON of speed.json from the rounds timed so far."""
    import pythae

    peak = {p: {"flops_per_s": max(v[0] for v in vs), "flops_per_cpu_s": max(v[1] for v in vs)}
            for p, vs in peaks.items()}  # fmt: skip
    base = contenders["pythae fp32"]
    rows = {}
    for name, c in contenders.items():
        wall, cpu = statistics.median(c.wall), statistics.median(c.cpu)
        p = "bf16" if c.precision == "bf16" else "fp32"
        pk, flops = peak[p], c.flops_per_image * a.batch_size
        rows[name] = {
            "settings": c.settings,
            "precision": c.precision,
            "images_per_s": a.batch_size / wall,
            "images_per_cpu_s": a.batch_size / cpu,
            "step_s_median": wall,
            "step_cpu_s_median": cpu,
            "step_s_all": c.wall,
            "step_cpu_s_all": c.cpu,
            "gflop_per_image": c.flops_per_image / 1e9,
            "fraction_of_peak": flops / wall / pk["flops_per_s"],
            "fraction_of_peak_cpu": flops / cpu / pk["flops_per_cpu_s"],
            "fraction_of_conv_peak": flops / wall / peak[f"conv {p}"]["flops_per_s"],
            "ratio_to_pythae": statistics.median(base.wall) / wall,
            "ratio_to_pythae_cpu": statistics.median(base.cpu) / cpu,
        }
    ours = {k: v for k, v in rows.items() if k.startswith("ours")}
    best = max(ours, key=lambda k: ours[k]["ratio_to_pythae"]) if ours else None
    fp32 = [k for k in ours if ours[k]["precision"] == "fp32"]
    best_fp32 = max(fp32, key=lambda k: ours[k]["ratio_to_pythae"]) if fp32 else None
    gf = {p: v["flops_per_s"] / 1e9 for p, v in peak.items()}
    return {
        "what": f"one training step, Table 1 nets, {a.image_size}x{a.image_size}, "
        f"batch {a.batch_size}, paper loss (Dis sees x, Dec(Enc(x)), Dec(z_p)) for ours, "
        "pythae's own loss for pythae",
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "pythae": getattr(pythae, "__version__", "0.1.2"),
            "python": platform.python_version(),
            "load_average_start_end": [load0, os.getloadavg()[0]],
        },
        "matmul_peak_gflop_per_s": {p: gf[p] for p in ("fp32", "bf16")},
        "matmul_peak_gflop_per_cpu_s": {
            p: peak[p]["flops_per_cpu_s"] / 1e9 for p in ("fp32", "bf16")
        },
        "conv_peak_gflop_per_s": {p: gf[f"conv {p}"] for p in ("fp32", "bf16")},
        "rounds": rounds,
        "contenders": rows,
        "like_for_like": like_for_like(rows),
        "targets": {
            "fp32_like_for_like_vs_pythae": rows.get("ours fp32", {}).get("ratio_to_pythae"),
            "best_fp32": best_fp32,
            "best_fp32_vs_pythae": ours[best_fp32]["ratio_to_pythae"] if best_fp32 else None,
            "best_fp32_fraction_of_fp32_matmul_peak": ours[best_fp32]["fraction_of_peak"]
            if best_fp32
            else None,
            "best": best,
            "best_vs_pythae": ours[best]["ratio_to_pythae"] if best else None,
        },
    }


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5, help="timed steps per contender")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps per contender")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", nargs="*", default=None, help="a subset of the contenders")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    load0 = os.getloadavg()[0]
    names = a.only or list(CONTENDERS)
    if "pythae fp32" not in names:
        names.insert(0, "pythae fp32")
    runs, contenders = {}, {}
    for name in names:
        kind, settings = CONTENDERS[name]
        if kind == "pythae":
            runs[name] = pythae_runner(a.image_size, a.batch_size, a.seed, **settings)
        else:
            runs[name] = ours_runner(a.image_size, a.batch_size, a.seed, **settings)
        c = contenders[name] = Contender(name, settings, settings.get("precision", "fp32"))
        for _ in range(a.warmup):
            runs[name]()
        c.flops_per_image = count_flops(runs[name]) / a.batch_size
        print(f"built {name}: {c.flops_per_image / 1e9:.2f} GFLOP per image", flush=True)

    peaks: dict[str, list] = {"fp32": [], "bf16": [], "conv fp32": [], "conv bf16": []}
    for r in range(a.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate: no favoured slot
        for name in order:
            w, c = timed(runs[name])
            contenders[name].wall.append(w)
            contenders[name].cpu.append(c)
            print(f"round {r + 1}/{a.rounds} {name}: {w:.2f} s wall, {c:.2f} s CPU", flush=True)
        for p in ("fp32", "bf16"):  # the peaks too are measured between steps, under that load
            peaks[p].append(matmul_peak(torch.device("cpu"), p))
            peaks[f"conv {p}"].append(conv_peak(torch.device("cpu"), p))
        # Written after every round: a run stopped half-way still leaves its figures.
        result = summary(a, contenders, peaks, load0, r + 1)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2) + "\n")

    rows, peak = result["contenders"], result["matmul_peak_gflop_per_s"]
    load1 = os.getloadavg()[0]
    print(f"\n{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"load average {load0:.1f} -> {load1:.1f}")  # fmt: skip
    for p, v in peak.items():
        print(f"{p} matmul peak: {v:.0f} GFLOP/s "
              f"({result['matmul_peak_gflop_per_cpu_s'][p]:.0f} per CPU-second); a Table 1 "
              f"conv: {result['conv_peak_gflop_per_s'][p]:.0f} GFLOP/s")  # fmt: skip
    print(f"{'contender':42} {'GFLOP/img':>9} {'img/s':>7} {'x pythae':>8} {'x (cpu)':>8} "
          f"{'of peak':>8} {'(cpu)':>7} {'of conv':>8}")  # fmt: skip
    for name, r in rows.items():
        print(f"{name:42} {r['gflop_per_image']:9.2f} {r['images_per_s']:7.2f} "
              f"{r['ratio_to_pythae']:8.2f} {r['ratio_to_pythae_cpu']:8.2f} "
              f"{r['fraction_of_peak']:8.1%} {r['fraction_of_peak_cpu']:7.1%} "
              f"{r['fraction_of_conv_peak']:8.1%}")  # fmt: skip
    for label, r in result["like_for_like"].items():
        print(f"like for like, {label}: {r['wall']:.2f}x pythae ({r['cpu']:.2f}x in CPU time)")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
