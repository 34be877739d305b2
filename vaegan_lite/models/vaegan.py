"""The five models of Fig. 3/4 and Algorithm 1, the VAE/GAN training step.

    vae          VAE with the pixel-wise Gaussian likelihood (Eq. 3)
    gan          GAN (Eq. 5), Dec as the generator
    vae_disl     VAE_{Dis_l}: a GAN is trained first, then its Dis is frozen and used as the metric
    vaegan_dis0  VAE/GAN_{Dis_0}: pixel likelihood plus the GAN term
    vaegan       VAE/GAN: the learned Dis_l likelihood plus the GAN term (Eq. 8)

All of them are a ``VAEGAN`` module (Enc, Dec, Dis of Table 1) trained by one of two step functions:
``algorithm1_step`` (everything with an encoder) and ``gan_step``. A step computes every network's
gradient from its own loss before any optimizer moves, so no parameter is changed while another
network's gradient still needs the old value.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import torch
from torch import nn

from .. import distributed
from ..config import ModelConfig, StepConfig, TrainConfig
from ..images import check_float
from ..losses import decoder_gan_loss, gan_loss, llike_loss, prior_loss
from ..nets import Decoder, Discriminator, Encoder
from ..optim import RMSprop, masked_step

# Images a measurement (sample, reconstruct) runs through a network at once: 10,000 64x64 faces in
# one batch would need more memory than a T4 has.
EVAL_BATCH = 1000


class VAEGAN(nn.Module):
    """Enc, Dec and Dis with the helpers the book and the CLI use."""

    #: the run's settings, set by train(), read_checkpoint() and pretrained(); None for a model
    #: made by hand (which data it saw is then unknown)
    train_config: TrainConfig | None = None

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.enc = Encoder(
            c.image_size, c.latent_dim, c.width, c.enc_fc_dim, c.channels, c.cond_dim
        )
        self.dec = Decoder(c.image_size, c.latent_dim, c.width, c.channels, c.cond_dim)
        self.dis = Discriminator(c.image_size, c.width, c.channels, c.dis_layer, c.cond_dim)

    @property
    def latent_dim(self) -> int:
        """Size of the code z."""
        return self.config.latent_dim

    @property
    def image_size(self) -> int:
        """Side of the square images, in pixels."""
        return self.config.image_size

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype (float32 after training, whatever the precision)."""
        return next(self.parameters()).dtype

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), computed and returned on the model's device."""
        if self.config.model == "gan":  # its Enc is there (one class for all) but never trains
            raise ValueError("a GAN (model 'gan') trains no encoder: it has no codes or "
                             "reconstructions of given images; use a model that trains one "
                             "(vae, vaegan, vae_disl, vaegan_dis0)")  # fmt: skip
        self._check_images(x)
        self._check_condition(y, len(x))
        # in the weights' dtype: float64 or half images from a user's own pipeline work too
        return self.enc(x.to(self.device, self.dtype), _to(y, self.device, self.dtype))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Dec(z): images from codes z [B, latent_dim], computed and returned on the model's
        device."""
        check_shape(z, (self.latent_dim,), "codes z")
        if not z.is_floating_point():
            raise ValueError(f"model takes float codes z, got {z.dtype}")
        self._check_condition(y, len(z))
        return self.dec(z.to(self.device, self.dtype), _to(y, self.device, self.dtype))

    def _check_images(self, x: torch.Tensor) -> None:
        """One line for images that are not float [B, channels, size, size] tensors."""
        c, s = self.config.channels, self.image_size
        check_shape(x, (c, s, s), "images")
        check_float(x, "model")

    def check_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """ValueError, in one line, unless ``x`` is a batch of
        float images [B, channels, size, size] for this model and ``y`` its attribute vectors
        [B, cond_dim] (a conditional model) or None (another)."""
        self._check_images(x)
        self._check_condition(y, x.shape[0])

    def _check_condition(self, y: torch.Tensor | None, n: int) -> None:
        """One line, not a matrix-size error, for attribute vectors that do not fit: y [n,
        cond_dim] for a conditional model, none for another."""
        if y is None:
            return
        if not self.config.cond_dim:
            raise ValueError("attribute vectors y given to a model that is not conditional "
                             "(cond_dim 0)")  # fmt: skip
        check_shape(y, (self.config.cond_dim,), "attribute vectors y")
        if len(y) != n:
            raise ValueError(f"{len(y)} attribute vectors y for {n} images or codes")

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        y: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Dec(z_p) for n draws z_p ~ N(0, I), on the model's device (z_p drawn on the CPU, or on
        ``generator``'s device, so a generator fixes them) EVAL_BATCH at a time, returned on
        ``device``: the CPU, for plotting and measuring."""
        check_count(n)
        self._check_condition(y, n)
        where = "cpu" if generator is None else generator.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=where).to(self.device)
        with evaluating(self):
            return torch.cat([self.decode(zb, yb).to(device) for zb, yb in in_batches(z, y)])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Dec(mu(x)): the reconstruction at the posterior mean, computed on the model's device
        EVAL_BATCH images at a time and returned on x's (a chapter's CPU test images work with a
        model trained on a GPU)."""
        self._check_images(x)
        self._check_condition(y, len(x))
        with evaluating(self):
            return torch.cat([self.decode(self.encode(xb, yb)[0], yb).to(x.device)
                              for xb, yb in in_batches(x, y)])


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode within, as it was after: BatchNorm then normalises with its running
    statistics and leaves them alone, so a measurement neither depends on its batch nor changes
    a model that is still training."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def in_batches(
    t: torch.Tensor, y: torch.Tensor | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """(images or codes, their attributes or AVAE's noise xi, or None) EVAL_BATCH rows at a
    time."""
    ys = [None] * len(t.split(EVAL_BATCH)) if y is None else y.split(EVAL_BATCH)
    return zip(t.split(EVAL_BATCH), ys, strict=True)


def _to(
    t: torch.Tensor | None, device: torch.device, dtype: torch.dtype | None = None
) -> torch.Tensor | None:
    return None if t is None else t.to(device, dtype)


def check_shape(t: torch.Tensor, want: tuple[int, ...], what: str) -> None:
    """ValueError unless ``t`` is [B, *want]: one line at the public methods, not a matrix-size
    error from deep inside a network. Shapes only: no value is read, so no wait for a GPU."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"model takes {what} as a torch.Tensor, got {type(t).__name__}")
    if t.dim() != len(want) + 1 or tuple(t.shape[1:]) != want:
        dims = ", ".join(["B", *map(str, want)])
        raise ValueError(f"model takes [{dims}] {what}, got {list(t.shape)}")


def check_count(n: int) -> None:
    """How many samples: a whole number >= 0 (not a bool)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, got {n!r}")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a sample of q(z|x) that gradients flow through."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def discriminate(
    dis: Discriminator,
    batches: list[torch.Tensor],
    y: torch.Tensor | list[torch.Tensor] | None,
    mode: str,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Dis over several batches: (logits, Dis_l) for each.

    ``y`` is the condition every batch shares, or a list with one per batch (BiGAN's codes).
    In training mode BatchNorm normalises with the statistics of the batch it sees, so this is a
    modelling choice: ``separate`` runs Dis once per batch (real and fake are normalised apart,
    as in DCGAN); ``joint`` runs it once over their concatenation (one set of statistics, one pass).
    """
    ys = y if isinstance(y, list) else [y] * len(batches)
    if mode == "separate":
        return [dis(b, c) for b, c in zip(batches, ys, strict=True)]
    if mode != "joint":
        raise ValueError(f"unknown dis_batch {mode!r}")
    n = [b.shape[0] for b in batches]
    logits, feats = dis(torch.cat(batches), None if y is None else torch.cat(ys))
    return list(zip(logits.split(n), feats.split(n), strict=True))


def finite(*losses: torch.Tensor) -> torch.Tensor:
    """Whether every loss is a finite number: a bool tensor on their device, which the optimizers
    read there (``optim.masked_step``), so no step waits for the GPU to tell the host; under
    torchrun, the same on every process, so that all of them skip the same steps."""
    ok = torch.isfinite(torch.stack([x.detach().float() for x in losses])).all()
    return distributed.all_of(ok)


def grads(
    loss: torch.Tensor, net: nn.Module, scaler: torch.amp.GradScaler | None = None
) -> list[torch.Tensor]:
    """d loss / d theta_net, leaving every .grad untouched (so other losses can't leak in)."""
    params = [p for p in net.parameters() if p.requires_grad]
    if scaler is not None:  # fp16: scale the loss so small gradients don't underflow
        loss = scaler.scale(loss)
    gs = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs, strict=True)]


def set_grads(net: nn.Module, gs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Put gs in net's .grad fields (under torchrun their mean over processes); returns them."""
    params = [p for p in net.parameters() if p.requires_grad]
    gs = distributed.average(gs)  # torchrun: the mean over processes (autograd.grad skips DDP)
    for p, g in zip(params, gs, strict=True):
        p.grad = g
    return gs


def finish_step(
    model: nn.Module,
    updates: dict[str, list[torch.Tensor] | None],
    opts: dict[str, torch.optim.Optimizer],
    scaler: torch.amp.GradScaler | None,
    stats: dict[str, torch.Tensor],
    ok: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The end of every step: apply each network's gradients (all taken before this; None: the
    network does not move this step), then the statistics, detached, for logging.

    Nothing moves unless ``ok`` (the losses were finite) and the gradients are finite too, which
    finite losses do not guarantee (a NaN weight, an fp16 overflow). ``stats["ok"]`` says
    whether the step counts as a good one. In fp16 an overflow is GradScaler's affair: as it
    does, each network whose gradients overflowed skips the step, the others move, the scale
    goes down, and the step still counts. All of it is decided on the device: no host sync.
    """
    moving = {name: set_grads(getattr(model, name), gs)
              for name, gs in updates.items() if gs is not None}  # fmt: skip
    if scaler is not None:
        for name in moving:
            scaler.unscale_(opts[name])  # in place: ``moving`` holds the true gradients now
    every_grad = [g for gs in moving.values() for g in gs]
    grad_finite = torch.stack(torch._foreach_norm(every_grad, math.inf)).isfinite()
    good = ok & grad_finite.all()
    i = 0
    for name, gs in moving.items():
        moves = good if scaler is None else ok & grad_finite[i : i + len(gs)].all()
        masked_step(opts[name], moves)
        opts[name].zero_grad(set_to_none=True)
        i += len(gs)
    if scaler is not None:
        kept = [scaler._scale.clone(), scaler._growth_tracker.clone()]
        scaler.update()  # lowers the scale after an overflow, raises it after a run of good steps
        # A NaN loss is no overflow: lowering the scale for it would only starve the next steps.
        for now, before in zip([scaler._scale, scaler._growth_tracker], kept, strict=True):
            torch.where(ok, now, before, out=now)
    # on ok's device, all of them (the equilibrium trick's flags are made on the CPU)
    stats = {k: v.detach().float().to(ok.device, non_blocking=True) for k, v in stats.items()}
    stats["ok"] = ok if scaler is not None else good
    return stats


def equilibrium(
    real_bce: torch.Tensor, fake_bce: torch.Tensor, center: float, margin: float
) -> tuple[bool, bool]:
    """The authors' margin trick: (update Dec?, update Dis?) from the batch's cross-entropies.

    Dis is skipped while it is winning (either error below center - margin), Dec while it is losing
    badly (either error above center + margin); if both would be skipped, both are updated.
    The host reads the decision (a sync each step, with the trick only): here it decides which
    updates are applied; the fast step (models.fast) decides it before the backward passes, so
    that a skipped network costs nothing.
    """
    lo, hi = center - margin, center + margin
    real_bce, fake_bce = distributed.mean(real_bce), distributed.mean(fake_bce)  # same on all
    train_dis = not (real_bce < lo or fake_bce < lo)
    train_dec = not (real_bce > hi or fake_bce > hi)
    if not (train_dis or train_dec):
        train_dis = train_dec = True
    return train_dec, train_dis


def algorithm1_step(
    model: VAEGAN,
    x: torch.Tensor,
    opts: dict[str, torch.optim.Optimizer],
    cfg: StepConfig,
    *,
    metric: Literal["pixel", "dis_l"] = "dis_l",
    adversarial: bool = True,
    y: torch.Tensor | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, torch.Tensor]:
    """One update of Algorithm 1 (VAE/GAN); by its switches also VAE, VAE_{Dis_l}, VAE/GAN_{Dis_0}.

    ``metric``: where L_llike is measured, ``"pixel"`` (Eq. 3) or ``"dis_l"`` (Eq. 7).

    ``adversarial``: whether Dec and Dis play the GAN game (False: a VAE, or VAE_{Dis_l} whose
    Dis is frozen).

    Returns detached statistics for logging; ``ok`` among them says whether the step counted.
    """
    model.check_batch(x, y)  # one line, not a dtype or matrix-size error from inside a network
    enc, dec, dis = model.enc, model.dec, model.dis
    with autocast or contextlib.nullcontext():
        mu, logvar = enc(x, y)  # Z <- Enc(X)
        z = reparameterize(mu, logvar)
        L_prior = prior_loss(mu, logvar)  # L_prior <- KL(q(Z|X) || p(Z))
        x_tilde = dec(z, y)  # X~ <- Dec(Z)
        batches = [x, x_tilde]
        if adversarial:
            z_p = torch.randn_like(z)  # Z_p <- samples from prior N(0, I)
            x_p = dec(z_p, y)  # X_p <- Dec(Z_p)
            batches.append(x_p)
        if metric == "dis_l" or adversarial:
            outs = discriminate(dis, batches, y, cfg.dis_batch)
        if metric == "dis_l":  # L_llike^{Dis_l} <- -E_q log p(Dis_l(X) | Z)
            L_llike = llike_loss(outs[0][1], outs[1][1], 1.0, cfg.llike_reduction)
        else:  # L_llike^{pixel} <- -E_q log p(X | Z)
            L_llike = llike_loss(x, x_tilde, cfg.pixel_sigma, cfg.llike_reduction)
        if adversarial:  # L_GAN <- log Dis(X) + log(1 - Dis(X~)) + log(1 - Dis(X_p))
            (real, _), (recon, _), (prior, _) = outs
            recon_seen = recon if cfg.dis_sees_recon else None
            L_GAN = gan_loss(real, recon_seen, prior)
            L_GAN_dec = decoder_gan_loss(recon_seen, prior, cfg.gan_variant)

    ok = finite(L_prior, L_llike, *([L_GAN] if adversarial else []))  # NaN/Inf: nothing moves

    # Update parameters according to gradients; every gradient is taken before any step.
    s = scaler
    # theta_Enc <- -grad(L_prior + L_llike); cfg.beta is 1, the paper's, unless chapter 7 weighs it
    g_enc = grads(cfg.beta * L_prior + L_llike, enc, s)
    if not adversarial:
        g_dec = grads(L_llike, dec, s)  # a VAE's decoder: theta_Dec <- -grad(L_llike)
    elif cfg.w is None:  # theta_Dec <- -grad(gamma L_llike - L_GAN)
        g_dec = grads(cfg.gamma * L_llike + L_GAN_dec, dec, s)
    else:
        g_dec = grads(cfg.w * L_llike + (1 - cfg.w) * L_GAN_dec, dec, s)  # the authors' weighting
    if adversarial:
        g_dis = grads(L_GAN, dis, s)  # theta_Dis <- -grad(L_GAN)

    stats = {"L_prior": L_prior, "L_llike": L_llike}
    train_dec = train_dis = True
    if adversarial:
        stats |= gan_stats(L_GAN, real, recon, prior, recon_seen=cfg.dis_sees_recon)
        if cfg.equilibrium:
            train_dec, train_dis = equilibrium(
                stats["real_bce"], stats["fake_bce"], cfg.eq_center, cfg.eq_margin
            )
            stats["skip_dec"] = torch.tensor(float(not train_dec))
            stats["skip_dis"] = torch.tensor(float(not train_dis))
    updates = {"enc": g_enc, "dec": g_dec if train_dec else None,
               "dis": g_dis if adversarial and train_dis else None}  # fmt: skip
    return finish_step(model, updates, opts, scaler, stats, ok)


def gan_step(
    model: VAEGAN,
    x: torch.Tensor,
    opts: dict[str, torch.optim.Optimizer],
    cfg: StepConfig,
    *,
    y: torch.Tensor | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, torch.Tensor]:
    """One update of the plain GAN (Eq. 5), with Dec as the generator."""
    model.check_batch(x, y)
    dec, dis = model.dec, model.dis
    with autocast or contextlib.nullcontext():
        z_p = torch.randn(x.shape[0], model.latent_dim, device=x.device, dtype=x.dtype)
        x_p = dec(z_p, y)
        (real, _), (prior, _) = discriminate(dis, [x, x_p], y, cfg.dis_batch)
        L_GAN = gan_loss(real, None, prior)
        L_GAN_dec = decoder_gan_loss(None, prior, cfg.gan_variant)
    ok = finite(L_GAN)
    g_dec = grads(L_GAN_dec, dec, scaler)  # theta_Gen <- -grad(-L_GAN)
    g_dis = grads(L_GAN, dis, scaler)  # theta_Dis <- -grad(L_GAN)
    stats = gan_stats(L_GAN, real, None, prior)
    return finish_step(model, {"dec": g_dec, "dis": g_dis}, opts, scaler, stats, ok)


def gan_stats(
    L_GAN: torch.Tensor,
    real: torch.Tensor,
    recon: torch.Tensor | None,
    prior: torch.Tensor,
    *,
    recon_seen: bool = True,
) -> dict[str, torch.Tensor]:
    """What a GAN step logs: L_GAN, Dis's mean outputs, its cross-entropies on real and fakes.

    The fakes' cross-entropy (which the equilibrium trick reads) is over the fakes Dis is trained
    on: the reconstructions only when it sees them (``recon_seen``, StepConfig.dis_sees_recon).
    """
    fakes = torch.cat([recon, prior]) if recon is not None and recon_seen else prior
    stats = {
        "L_GAN": L_GAN,
        "D(x)": torch.sigmoid(real.float()).mean(),
        "D(Dec(z))": torch.sigmoid(prior.float()).mean(),
        "real_bce": nn.functional.softplus(-real.float()).mean(),
        "fake_bce": nn.functional.softplus(fakes.float()).mean(),
    }
    if recon is not None:
        stats["D(Dec(Enc(x)))"] = torch.sigmoid(recon.float()).mean()
    return stats


def frozen_metric_step(
    model: VAEGAN,
    x: torch.Tensor,
    opts: dict[str, torch.optim.Optimizer],
    cfg: StepConfig,
    step: Callable[..., dict[str, torch.Tensor]] = algorithm1_step,
    **kw: Any,
) -> dict[str, torch.Tensor]:
    """VAE_{Dis_l}'s second phase: a VAE whose likelihood is measured by the GAN's frozen Dis
    (``step``: algorithm1_step, or with cfg.fast its faster twin)."""
    model.dis.eval()  # fixed BatchNorm statistics: the metric must not move
    model.dis.requires_grad_(False)
    return step(model, x, opts, cfg, metric="dis_l", adversarial=False, **kw)


def make_optimizers(
    model: nn.Module, names: Iterable[str], lr: float = 3e-4, alpha: float = 0.9
) -> dict[str, torch.optim.Optimizer]:
    """One RMSProp per network (lr 3e-4 as in the paper; decay 0.9 as in the authors' code)."""
    return {n: RMSprop(getattr(model, n).parameters(), lr=lr, alpha=alpha) for n in names}
