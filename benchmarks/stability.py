"""Does the cpu-preset VAE/GAN train on the synthetic faces for every seed? One row per seed.

    python benchmarks/stability.py                          # cpu preset: 5 seeds x 1500 steps
    python benchmarks/stability.py --steps 40 --seeds 0 1   # a quick check that it runs
    python benchmarks/stability.py --out runs/stability     # keep the runs (an interrupted
                                                            # benchmark resumes where it stopped)

Each seed trains book.config_for(get_preset("cpu"), "vaegan") with that seed (the same faces:
data_seed stays 0), then is measured on held-out faces (book.test_images): the Frechet distance
between held-out and generated faces in the shipped attribute classifier's features
(vaegan_lite.metrics.face_fd), the reconstruction MSE
(images in [-1, 1]) against the MSE of always answering the mean face, D(x) and D(Dec(z_p)).
A seed is "ok" when every number is finite, the reconstructions beat the mean face, and Dis
neither wins outright nor gives up (0.02 < D(x) < 0.98 and D(Dec(z_p)) < 0.98).
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import torch

from vaegan_lite.book.runs import get_preset, test_images
from vaegan_lite.cli import OneLineParser
from vaegan_lite.config import config_for
from vaegan_lite.data import training_tensors
from vaegan_lite.metrics import face_fd, mse
from vaegan_lite.shipped import pretrained
from vaegan_lite.train import train


@torch.no_grad()
def measure(model, x: torch.Tensor, seed: int) -> dict[str, float]:
    model.eval()
    g = torch.Generator().manual_seed(seed)
    recon = model.reconstruct(x)
    fake = model.sample(len(x), generator=g)
    row = {
        "mse": mse(recon, x).mean().item(),
        "D(x)": torch.sigmoid(model.dis(x)[0]).mean().item(),
        "D(Dec(z))": torch.sigmoid(model.dis(fake)[0]).mean().item(),
    }
    row["FD"] = face_fd(x, fake, pretrained("attribute-classifier"))
    return row


def ok(row: dict[str, float], mean_face_mse: float) -> bool:
    finite = all(math.isfinite(v) for v in row.values())
    return (finite and row["mse"] < mean_face_mse and 0.02 < row["D(x)"] < 0.98
            and row["D(Dec(z))"] < 0.98)  # fmt: skip


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=None, help="default: the preset's")
    ap.add_argument("--n-test", type=int, default=500, help="held-out faces measured")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--out", type=Path, default=None, help="keep runs here (resumable)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    preset = get_preset(args.preset)
    x, _ = test_images(preset, args.n_test)
    mean_face_mse = (x - x.mean(0, keepdim=True)).pow(2).mean().item()
    print(f"preset {preset.name}: {preset.image_size}px, width {preset.width}, batch "
          f"{preset.batch_size}; {args.n_test} held-out faces; mean-face MSE "
          f"{mean_face_mse:.4f}; FD: metrics.face_fd, samples vs held-out faces")  # fmt: skip
    rows = []
    for seed in args.seeds:
        overrides = {"seed": seed} | ({"steps": args.steps} if args.steps else {})
        cfg = config_for(preset, "vaegan", **overrides)
        out = args.out / f"seed{seed}" if args.out else None
        t0 = time.perf_counter()
        run = train(cfg, out, data=training_tensors(cfg, False), progress=False)
        row = measure(run.model, x, seed)
        rows.append(row)
        shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items())
        verdict = "ok" if ok(row, mean_face_mse) else "FAILED"
        print(f"seed {seed}: {cfg.steps} steps ({time.perf_counter() - t0:.0f} s)  {shown}  "
              f"{verdict}", flush=True)  # fmt: skip
    if len(rows) > 1:
        summary = "  ".join(
            f"{k} {statistics.mean(r[k] for r in rows):.4g} +- "
            f"{statistics.stdev(r[k] for r in rows):.2g}"
            for k in rows[0]
        )
        print(f"over {len(rows)} seeds: {summary}; "
              f"{sum(ok(r, mean_face_mse) for r in rows)}/{len(rows)} ok")  # fmt: skip


if __name__ == "__main__":
    main()
