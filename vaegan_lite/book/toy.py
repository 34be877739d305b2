"""The 2D toy of the AVAE paper (Sec. 5.1, Fig. 6): a 1-D latent code for 2-D data it cannot hold.

    z1, z2, eps ~ N(0, 1),   x = (3 z1 + 0.1 eps1,  cos(3 z1) + tanh(3 z2) + 0.1 eps2)

The data lie on two wavy branches (tanh(3 z2) is near -1 or +1), and a 1-D code keeps z1 (where
along the branches) but not which branch. A VAE then reconstructs the mean of the two branches,
a curve between them where there are no data; AVAE's generator picks a branch. The models are
MLPs with two hidden layers of 128 units, trained by the same ``avae_step`` as the faces' AVAE.

``log_density(x)`` is the exact data density log p(x), by numerical integration over (z1, z2):
no KDE, so reconstructions can be scored where no data sample lies.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..config import StepConfig
from ..models.avae import avae_step, with_xi
from .tables import MarkdownTable

NOISE = 0.1  # the std of eps in the data
SCALE = (3.0, 1.2)  # the data's std per coordinate: the nets work in units of it


def sample_data(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points x = f(z1, z2, eps) of Sec. 5.1, as a [n, 2] tensor."""
    z1, z2, e1, e2 = torch.randn(4, n, generator=generator)
    x1 = 3 * z1 + NOISE * e1
    x2 = torch.cos(3 * z1) + torch.tanh(3 * z2) + NOISE * e2
    return torch.stack([x1, x2], 1)


def _normal_logpdf(x: torch.Tensor, mean: torch.Tensor | float, var: float) -> torch.Tensor:
    return -0.5 * ((x - mean) ** 2 / var + math.log(2 * math.pi * var))


def log_density(x: torch.Tensor) -> torch.Tensor:
    """log p(x) of the toy data, exact up to quadrature error (float64), far from the data too.

    x1 alone is linear-Gaussian in z1, and z2 enters only through d = x2 - cos(3 z1), so

        p(x) = N(x1; 0, 9 + s^2) E_{z1 ~ p(z1|x1)} h(x2 - cos(3 z1)),
        h(d) = E_{z2 ~ N(0,1)} N(d; tanh(3 z2), s^2)      (s = 0.1),

    with p(z1|x1) a narrow Gaussian. h is tabulated once (a fine grid over z2), the z1 expectation
    is a sum over a grid of +-60 posterior standard deviations.
    """
    x = x.detach().double().cpu()
    s2 = NOISE**2
    x1, x2 = x[:, :1], x[:, 1:]
    log_p_x1 = _normal_logpdf(x1, 0.0, 9 + s2)[:, 0]
    v = s2 / (9 + s2)  # z1 | x1 ~ N(m, v): the posterior of x1 = 3 z1 + s eps1
    m = 3 * x1 / (9 + s2)
    u = torch.linspace(-60, 60, 2401, dtype=torch.float64)
    log_w = _normal_logpdf(u, 0.0, 1.0) + math.log(120 / 2400)
    out = []
    for i in range(0, x.shape[0], 512):
        z1 = m[i : i + 512] + math.sqrt(v) * u  # [c, 2401]
        log_h = _log_h(x2[i : i + 512] - torch.cos(3 * z1))
        out.append(torch.logsumexp(log_h + log_w, 1))
    return log_p_x1 + torch.cat(out)


D_MAX, D_STEP = 40.0, 0.005  # the table of log h(d): d in [-40, 40]


@functools.cache
def _log_h_table() -> torch.Tensor:
    d = torch.arange(-D_MAX, D_MAX + D_STEP / 2, D_STEP, dtype=torch.float64)
    z2 = torch.linspace(-6, 6, 2401, dtype=torch.float64)  # tanh(3 z2) moves < 0.015 a step
    log_w = _normal_logpdf(z2, 0.0, 1.0) + math.log(12 / 2400)
    rows = [
        torch.logsumexp(_normal_logpdf(c[:, None], torch.tanh(3 * z2), NOISE**2) + log_w, 1)
        for c in d.split(2000)  # 2000 values of d at a time: ~40 MB
    ]
    return torch.cat(rows)


def _log_h(d: torch.Tensor) -> torch.Tensor:
    """log h(d) by linear interpolation in the table (error ~1e-4 nats)."""
    table = _log_h_table()
    pos = ((d.clamp(-D_MAX, D_MAX) + D_MAX) / D_STEP).clamp(0, table.numel() - 1.000001)
    i = pos.floor().long()
    frac = pos - i
    return table[i] * (1 - frac) + table[i + 1] * frac


# --- the models: MLPs with two hidden layers of 128 units ---------------------------------------


def mlp(n_in: int, n_out: int, hidden: int = 128) -> nn.Sequential:
    """n_in => hidden => hidden => n_out, ReLU between the linear layers."""
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, n_out),
    )  # fmt: skip


class ToyEncoder(nn.Module):
    """q(z|x) = N(mu, exp(logvar)), with nets.Encoder's interface."""

    def __init__(self, latent_dim: int = 1) -> None:
        super().__init__()
        self.net = mlp(2, 2 * latent_dim)
        self.register_buffer("scale", torch.tensor(SCALE))

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x) for points x [B, 2]; y is ignored (no conditional toy)."""
        mu, logvar = self.net(x / self.scale).chunk(2, dim=1)
        return mu, logvar


class ToyDecoder(nn.Module):
    """A point from a code: the VAE's decoder D(z) or AVAE's generator G(z, xi)."""

    def __init__(self, n_in: int = 1) -> None:
        super().__init__()
        self.net = mlp(n_in, 2)
        self.register_buffer("scale", torch.tensor(SCALE))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Points [B, 2] from codes z (with xi for G); y is ignored."""
        return self.net(z) * self.scale


class ToyCritic(nn.Module):
    """A logit for "x is real", with nets.Discriminator's interface (x stands in for Dis_l)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(2, 1)
        self.register_buffer("scale", torch.tensor(SCALE))

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [B], x itself as Dis_l(x)); y is ignored."""
        return self.net(x / self.scale).squeeze(1), x


class ToyAVAE(nn.Module):
    """E, D (a VAE) plus G and C: the toy's AVAE, and its VAE is ``enc`` + ``dec``."""

    def __init__(self, latent_dim: int = 1, xi_dim: int = 0) -> None:
        super().__init__()
        self.latent_dim, self.xi_dim = latent_dim, xi_dim
        self.enc = ToyEncoder(latent_dim)
        self.dec = ToyDecoder(latent_dim)
        self.gen = ToyDecoder(latent_dim + xi_dim)
        self.dis = ToyCritic()

    @torch.no_grad()
    def vae_reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """D(mu_E(x)): the VAE's reconstruction."""
        return self.dec(self.enc(x)[0])

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """G(mu_E(x), xi): AVAE's reconstruction."""
        return self.gen(with_xi(self.enc(x)[0], self.xi_dim, generator=generator))


# The paper's toy likelihood is N(x; mu_D(z), I) (Sec. 4.2): pixel_sigma = 1 in our StepConfig.
TOY_STEP = StepConfig(pixel_sigma=1.0, beta=1.0, latent_loss="b")


@dataclass
class ToyRun:
    """What train_toy returns: the trained toy AVAE, its logged losses and its time."""

    model: ToyAVAE
    history: dict[str, list[float]]
    seconds: float


def train_toy(
    xi_dim: int = 0,
    steps: int = 3000,
    batch_size: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    cfg: StepConfig = TOY_STEP,
    log_every: int = 100,
) -> ToyRun:
    """Train the toy's AVAE (and with it its VAE) with avae_step on fresh data every step.

    Adam (betas 0.5, 0.9, as usual for GANs) with the learning rate decayed linearly to 0, so the
    generator and critic stop circling each other by the end.
    """
    torch.manual_seed(seed)
    model = ToyAVAE(xi_dim=xi_dim)
    nets = ("enc", "dec", "gen", "dis")
    opts = {n: torch.optim.Adam(getattr(model, n).parameters(), lr, betas=(0.5, 0.9)) for n in nets}
    decay = [torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1 - t / steps) for o in opts.values()]
    data = torch.Generator().manual_seed(seed + 1)
    history: dict[str, list[float]] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 128-unit layers: more threads only wait for each other
    t0 = time.perf_counter()
    try:
        for t in range(1, steps + 1):
            stats = avae_step(model, sample_data(batch_size, data), opts, cfg)
            stats.pop("ok")  # 2D points and Adam: the step is asked on the host anyway
            for d in decay:
                d.step()
            if t % log_every == 0 or t == steps:
                history.setdefault("step", []).append(t)
                for k, v in stats.items():
                    history.setdefault(k, []).append(float(v))
    finally:
        torch.set_num_threads(threads)
    return ToyRun(model.eval(), history, time.perf_counter() - t0)


@torch.no_grad()
def reconstruction_scores(points: dict[str, torch.Tensor], x: torch.Tensor) -> MarkdownTable:
    """For each set of reconstructions of x: the data's log-density there (mean and median over
    the points) and the squared error to x. The mean is what the paper's claim is about; the
    median shows what most points do when a few land far off the data."""
    lines = ["| reconstructions | mean log p(x̂) | median log p(x̂) | squared error |",
             "|---|---|---|---|"]  # fmt: skip
    for name, x_hat in points.items():
        lp = log_density(x_hat)
        se = (x_hat - x).pow(2).sum(1).mean()
        lines.append(f"| {name} | {lp.mean():.2f} | {lp.median():.2f} | {se:.3f} |")
    return MarkdownTable("\n".join(lines))
