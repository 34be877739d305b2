"""A faster Algorithm 1 step with the same updates as vaegan.algorithm1_step.

The reference step (vaegan.py) takes each network's gradient of its own loss with one autograd
pass per network: three passes, each walking back through everything between the loss and that
network. This step cuts the graph at Dec's outputs instead: Dis runs on detached copies of x~ and
x_p, so a backward pass through Dis stops there and hands Dec a gradient for its images, and every
remaining pass is one "vector-Jacobian product" with exactly the upstream vector the network needs:

    Dis <- grad(L_GAN)                              one pass through Dis (weights)
    x~, x_p <- d(L_GAN_dec)/d(x~, x_p)              one pass through Dis (inputs only)
    a = d(L_llike)/d(x~)                            Dis up to layer l (inputs only)
    Dec <- VJP of Dec with (gamma a + d L_GAN_dec/d x~, d L_GAN_dec/d x_p)
    Enc <- VJP of Dec and Enc with (a, 1)           + grad(beta L_prior)

Backprop is linear in its upstream vector, so these are the reference gradients up to rounding
(tests/test_fast.py checks that in float64). Passes are only left out where the maths allows:

- saturating GAN loss with ``dis_batch="separate"``: Dec's GAN term is exactly -L_GAN's fake
  terms, and with separate BatchNorm statistics the real batch does not touch the fakes, so Dis's
  weight pass also yields Dec's upstream (negated): one pass through Dis less (~10% of a step).
  With ``joint`` statistics log Dis(x) depends on the fakes through BatchNorm, so it can't be used.
- VAE and VAE_{Dis_l} (no GAN): Enc and Dec both descend L_llike, so one pass serves both.
- the authors' equilibrium trick: a network that will skip its update gets no gradient computed.

``dis_batch="joint"`` runs Dis once over the concatenation [x, x~, x_p] (one set of BatchNorm
statistics, a modelling choice); ``separate`` runs it once per batch, as the reference does. On
this project's 2-core CPU a batch of 192 convolves no faster per image than one of 64, and with
autograd a concatenated pass must be walked back whole (the x slice too), so separate statistics
are not emulated with one big pass. For the non-saturating GAN loss (the default) the reference is
already free of redundant passes; the speed then comes from the engineering switches of the
trainer (bf16 autocast, channels_last), which this step supports like the reference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from ..config import StepConfig
from ..losses import decoder_gan_loss, gan_loss, llike_loss, prior_loss
from .vaegan import (
    VAEGAN,
    discriminate,
    equilibrium,
    finish_step,
    finite,
    gan_stats,
    reparameterize,
)


def _params(net: nn.Module) -> list[torch.Tensor]:
    return [p for p in net.parameters() if p.requires_grad]


def _vjp(
    outputs: Sequence[torch.Tensor],
    inputs: Sequence[torch.Tensor],
    upstream: Sequence[torch.Tensor | None],
    retain: bool = True,
) -> list[torch.Tensor]:
    """sum_i upstream_i . d outputs_i / d inputs (zeros where an input is not reached)."""
    gs = torch.autograd.grad(
        list(outputs), list(inputs), list(upstream), retain_graph=retain, allow_unused=True
    )
    return [torch.zeros_like(i) if g is None else g for i, g in zip(inputs, gs, strict=True)]


def _scale(scaler: torch.amp.GradScaler | None):
    """fp16: every gradient is taken of the scaled loss, as in vaegan.grads."""
    return (lambda loss: loss) if scaler is None else scaler.scale


def _dec_weights(cfg: StepConfig, adversarial: bool) -> tuple[float, float]:
    """(weight of L_llike, weight of the GAN term) in Dec's loss."""
    if not adversarial:
        return 1.0, 0.0  # a VAE's decoder: L_llike only
    if cfg.w is None:
        return cfg.gamma, 1.0  # Algorithm 1: gamma L_llike - L_GAN
    return cfg.w, 1.0 - cfg.w  # the authors' weighting


def algorithm1_step_fast(
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
    """vaegan.algorithm1_step's update (same arguments, same statistics) with fewer passes."""
    model.check_batch(x, y)  # one line, as the reference step, not an error inside a network
    enc, dec, dis = model.enc, model.dec, model.dis
    ctx = autocast or contextlib.nullcontext()
    uses_dis = metric == "dis_l" or adversarial
    with ctx:  # the same draws in the same order as the reference step
        mu, logvar = enc(x, y)
        z = reparameterize(mu, logvar)
        L_prior = prior_loss(mu, logvar)
        x_tilde = dec(z, y)
        fakes = [x_tilde]
        if adversarial:
            fakes.append(dec(torch.randn_like(z), y))  # x_p = Dec(z_p)
    # The cut: Dis sees leaves, so no pass through Dis goes on into Dec and Enc.
    cut = [f.detach().requires_grad_(uses_dis) for f in fakes]
    with ctx:
        if uses_dis:
            outs = discriminate(dis, [x, *cut], y, cfg.dis_batch)
        if metric == "dis_l":
            L_llike = llike_loss(outs[0][1], outs[1][1], 1.0, cfg.llike_reduction)
        else:  # pixels: measured on the uncut x~, it reaches Dec directly
            L_llike = llike_loss(x, x_tilde, cfg.pixel_sigma, cfg.llike_reduction)
        if adversarial:
            (real, _), (recon, _), (prior, _) = outs
            recon_seen = recon if cfg.dis_sees_recon else None
            L_GAN = gan_loss(real, recon_seen, prior)
            L_GAN_dec = decoder_gan_loss(recon_seen, prior, cfg.gan_variant)

    ok = finite(L_prior, L_llike, *([L_GAN] if adversarial else []))

    stats = {"L_prior": L_prior, "L_llike": L_llike}
    train_dec = train_dis = True
    if adversarial:
        stats |= gan_stats(L_GAN, real, recon, prior, recon_seen=cfg.dis_sees_recon)
        if cfg.equilibrium:  # decided before the backward passes: skipped nets cost nothing
            train_dec, train_dis = equilibrium(
                stats["real_bce"], stats["fake_bce"], cfg.eq_center, cfg.eq_margin
            )
            stats["skip_dec"] = torch.tensor(float(not train_dec))
            stats["skip_dis"] = torch.tensor(float(not train_dis))

    s = _scale(scaler)
    w_llike, w_gan = _dec_weights(cfg, adversarial)
    g_dis = None
    up_gan = None  # d(w_gan L_GAN_dec) / d(x~, x_p): Dec's upstream from the GAN term
    if adversarial:
        merge = cfg.gan_variant == "saturating" and cfg.dis_batch == "separate"
        if train_dis and merge and train_dec:
            gs = _vjp([s(L_GAN)], _params(dis) + cut, [None])
            g_dis, g_fakes = gs[: -len(cut)], gs[-len(cut) :]
            up_gan = [-w_gan * g for g in g_fakes]  # L_GAN_dec = -(L_GAN's fake terms)
        else:
            if train_dis:
                g_dis = _vjp([s(L_GAN)], _params(dis), [None])
            if train_dec:
                up_gan = _vjp([s(w_gan * L_GAN_dec)], cut, [None])

    # a = d L_llike / d(x~, x_p) through Dis_l, the last pass through Dis. Enc needs the x~ part;
    # the x_p part is zero unless joint BatchNorm statistics let x_p move Dis_l(x) and Dis_l(x~).
    a = _vjp([s(L_llike)], cut, [None], retain=False) if metric == "dis_l" else None
    enc_p, dec_p = _params(enc), _params(dec)
    prior_term = s(cfg.beta * L_prior)
    if not adversarial:  # Enc and Dec both descend L_llike: one pass serves both
        if a is None:
            gs = _vjp([prior_term + s(L_llike)], enc_p + dec_p, [None], retain=False)
        else:
            gs = _vjp([x_tilde, prior_term], enc_p + dec_p, [a[0], None], retain=False)
        g_enc, g_dec = gs[: len(enc_p)], gs[len(enc_p) :]
    else:
        g_dec = None
        if train_dec:
            outputs, upstream = list(fakes), list(up_gan)
            if a is not None:
                upstream = [u + w_llike * g for u, g in zip(upstream, a, strict=True)]
            else:
                outputs.append(s(w_llike * L_llike))
                upstream.append(None)
            g_dec = _vjp(outputs, dec_p, upstream)
        if a is not None:
            g_enc = _vjp([x_tilde, prior_term], enc_p, [a[0], None], retain=False)
        else:
            g_enc = _vjp([prior_term + s(L_llike)], enc_p, [None], retain=False)

    # None: no GAN, or skipped by the equilibrium trick
    return finish_step(model, {"enc": g_enc, "dec": g_dec, "dis": g_dis}, opts, scaler, stats, ok)


def gan_step_fast(
    model: VAEGAN,
    x: torch.Tensor,
    opts: dict[str, torch.optim.Optimizer],
    cfg: StepConfig,
    *,
    y: torch.Tensor | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, torch.Tensor]:
    """vaegan.gan_step's update; with the saturating loss and separate statistics, one pass
    through Dis gives both Dis's gradient and Dec's upstream."""
    model.check_batch(x, y)
    dec, dis = model.dec, model.dis
    ctx = autocast or contextlib.nullcontext()
    with ctx:
        z_p = torch.randn(x.shape[0], model.latent_dim, device=x.device, dtype=x.dtype)
        x_p = dec(z_p, y)
    cut = x_p.detach().requires_grad_()
    with ctx:
        (real, _), (prior, _) = discriminate(dis, [x, cut], y, cfg.dis_batch)
        L_GAN = gan_loss(real, None, prior)
        L_GAN_dec = decoder_gan_loss(None, prior, cfg.gan_variant)
    ok = finite(L_GAN)
    s = _scale(scaler)
    if cfg.gan_variant == "saturating" and cfg.dis_batch == "separate":
        gs = _vjp([s(L_GAN)], _params(dis) + [cut], [None], retain=False)
        g_dis, up = gs[:-1], -gs[-1]
    else:
        g_dis = _vjp([s(L_GAN)], _params(dis), [None])
        up = _vjp([s(L_GAN_dec)], [cut], [None], retain=False)[0]
    g_dec = _vjp([x_p], _params(dec), [up], retain=False)
    stats = gan_stats(L_GAN, real, None, prior)
    return finish_step(model, {"dec": g_dec, "dis": g_dis}, opts, scaler, stats, ok)
