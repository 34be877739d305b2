"""Why chapter 7's AVAE draws noise at the cpu preset: its generator's two losses, measured.

    python benchmarks/avae_latent.py                      # 5 settings x 1500 steps, about 27 min
    python benchmarks/avae_latent.py --preset smoke --steps 2 --n-test 64   # that it runs

Each setting trains the chapter's row "AVAE without xi, L^b_Z" (config_for(preset, "avae"),
seed 0) with some of its StepConfig changed, then prints, at the end of training:

  L_Z, L_M    G's two losses (Eq. 16 and Eq. 15), as logged over the last log_every steps
  D(x), D(G)  the critic's mean probability of "real" for real images and for G(z, xi)
  sigma_E     the median of E's posterior std on held-out faces: L_Z divides by its square
  mse, FD     metrics.evaluate, as in the chapter's Table 1 (G(mu_E(x)) against x, shown as the
              paper's MSE of images in [0, 1], a quarter of metrics.mse's; the Frechet distance of
              samples to held-out faces in the judge's features)
  mse_other   G(mu_E(x)) against another held-out face: near mse when G ignores the codes
  mse_D       the VAE's own reconstruction D(mu_E(x)) against x
  KL          KL(q(z|x) || p(z)) of E's codes, nats per held-out face: what the codes carry

The settings: the book's (pixel_sigma 0.1), the paper's (pixel_sigma 1 as in its Eq. 8; its beta
weighs VAE/GAN's KL, not AVAE's), the paper's with one BatchNorm batch for the critic (dis_batch
joint, as chapter 2's GAN needs), and that again with L_Z switched off (latent_weight 0): G is
then a GAN that ignores the codes, the control that tells whether L_Z is what stops G from learning
faces.
Last, L_Z at a tenth of its weight (latent_weight 0.1), between the two.
"""

from __future__ import annotations

import time

import torch

from vaegan_lite.book.runs import get_preset, test_images
from vaegan_lite.cli import OneLineParser, _pos_int
from vaegan_lite.config import PRESET_NAMES, config_for
from vaegan_lite.data import training_tensors
from vaegan_lite.metrics import code_kl, evaluate, mse
from vaegan_lite.shipped import pretrained
from vaegan_lite.train import train

PAPER = {"pixel_sigma": 1.0}
SETTINGS = {
    "book (pixel_sigma 0.1)": {},
    "paper (pixel_sigma 1)": PAPER,
    "paper + joint critic batches": PAPER | {"dis_batch": "joint"},
    "paper + joint, without L_Z": PAPER | {"dis_batch": "joint", "latent_weight": 0.0},
    "paper + joint, L_Z weighted 0.1": PAPER | {"dis_batch": "joint", "latent_weight": 0.1},
}


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=PRESET_NAMES, default="cpu")
    ap.add_argument("--steps", type=_pos_int, default=None, help="default: the preset's")
    ap.add_argument("--n-test", type=_pos_int, default=500, help="held-out faces measured")
    ap.add_argument("--threads", type=_pos_int, default=2, help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)
    x, _ = test_images(preset, args.n_test)
    judge = pretrained("attribute-classifier")  # the chapter's FD features
    print(f"preset {preset.name}: {preset.image_size}px, width {preset.width}; AVAE without xi, "
          f"L^b_Z, seed 0; {args.n_test} held-out faces")  # fmt: skip
    for name, settings in SETTINGS.items():
        steps = {"steps": args.steps} if args.steps else {}
        cfg = config_for(preset, "avae", seed=0, latent_loss="b", **settings, **steps)
        t0 = time.perf_counter()
        run = train(cfg, None, data=training_tensors(cfg, False), progress=False)
        m = run.model.eval()
        last = {k: v[-1] for k, v in run.history.items() if v}
        with torch.no_grad():
            mu, logvar = m.encode(x)
            sigma_e = logvar.mul(0.5).exp().median().item()
            g = torch.Generator().manual_seed(1)
            other = x[torch.randperm(len(x), generator=g)]  # a G that ignores codes does as well
            # all three MSEs in the paper's units, images in [0, 1]: a quarter of metrics.mse
            mse_other = mse(m.reconstruct(x, generator=g), other).mean().item() / 4
            mse_vae = mse(m.decode(mu), x).mean().item() / 4
        ev = evaluate(m, x, judge, seed=0)
        kl = code_kl(m, x)
        print(f"{name}: {cfg.steps} steps ({time.perf_counter() - t0:.0f} s)  "
              f"L_Z {last['L_Z']:.4g}  L_M {last['L_M']:.3g}  D(x) {last['D(x)']:.3f}  "
              f"D(G) {last['D(G(z))']:.3f}  sigma_E {sigma_e:.3f}  mse {ev['mse'] / 4:.4f}  "
              f"mse_other {mse_other:.4f}  mse_D {mse_vae:.4f}  KL {kl:.3g}  FD {ev['fd']:.1f}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
