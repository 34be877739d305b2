"""The paper's three losses: L_prior (Eq. 4), L_llike (Eq. 3 and Eq. 6-7) and L_GAN (Eq. 10).

Scaling convention, used everywhere in vaegan-lite: a loss is summed over the features of one
example (latent units, pixels or Dis_l activations) and averaged over the batch. That keeps each
loss a proper per-example negative log-likelihood or KL in nats, so L_prior + L_llike is the VAE's
negative ELBO (less llike_loss's constant, which has no gradient), but it makes L_llike large:
Dis_l has 256x8x8 = 16,384 features at 64x64, so L_llike is thousands of nats while L_GAN is a
binary cross-entropy of order 1. gamma in the decoder's update (Eq. 9) absorbs the difference: the
balance depends on gamma * (number of features), so gamma must be scaled down when Dis_l grows (the
authors' code, which also sums, uses a weight of 1e-6 on CelebA).
``llike_loss(..., reduction="mean")`` divides by the number of features instead; then gamma is
directly comparable to the GAN term, but the encoder's L_prior + L_llike is no longer an ELBO.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

Reduction = Literal["sum", "mean"]
GanVariant = Literal["saturating", "non_saturating"]


def _wide(t: torch.Tensor) -> torch.Tensor:
    """Losses are summed in at least fp32, even when the networks ran in bf16/fp16."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def prior_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """L_prior = KL(q(z|x) || p(z)) with q = N(mu, exp(logvar)) and p = N(0, I) (Eq. 4).

    The closed form of Kingma & Welling (2014), summed over latent units, averaged over the batch.
    """
    mu, logvar = _wide(mu), _wide(logvar)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    return kl.flatten(1).sum(1).mean()


def llike_loss(
    target: torch.Tensor,
    recon: torch.Tensor,
    sigma: float = 1.0,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """L_llike = -log N(target | recon, sigma^2 I), up to its constant (Eq. 3, 6, 7).

    In pixel space (Eq. 3) target is x and recon is x~ = Dec(z); in the learned metric (Eq. 6-7)
    target is Dis_l(x) and recon is Dis_l(x~), with identity covariance (sigma = 1). The constant
    (D/2) log(2 pi sigma^2) has no gradient and is left out. One sample z per x estimates E_q.
    """
    if reduction not in ("sum", "mean"):  # not read as "mean" by the line below
        raise ValueError(f"unknown reduction {reduction!r}; choose 'sum' or 'mean'")
    if not sigma > 0:  # 0 divided the loss by zero: inf, and NaN gradients
        raise ValueError(f"sigma must be > 0, got {sigma}")
    sq = (_wide(target) - _wide(recon)).pow(2).flatten(1)
    per_example = sq.sum(1) if reduction == "sum" else sq.mean(1)
    return per_example.mean() / (2.0 * sigma**2)


def gaussian_log_density_constant(num_features: int, sigma: float = 1.0) -> float:
    """The constant llike_loss leaves out: (D/2) log(2 pi sigma^2)."""
    return 0.5 * num_features * math.log(2.0 * math.pi * sigma**2)


def gan_loss(
    real_logits: torch.Tensor,
    recon_logits: torch.Tensor | None,
    prior_logits: torch.Tensor | None,
) -> torch.Tensor:
    """L_GAN of Eq. 10 as the binary cross-entropy that Dis minimises (Algorithm 1's sign)::

        L_GAN = -[log Dis(x) + log(1 - Dis(Dec(z_p))) + log(1 - Dis(Dec(Enc(x))))]

    Eq. 10 writes the log-likelihood; Algorithm 1 then has Dis descend and Dec ascend L_GAN, which
    only works with the cross-entropy's sign, so that is what this returns. Pass recon_logits=None
    for the plain GAN of Eq. 5 (or the authors' variant where Dis never sees reconstructions).
    From logits, with softplus: log Dis(x) = -softplus(-l) and log(1 - Dis(x)) = -softplus(l).
    """
    loss = F.softplus(-_wide(real_logits)).mean()
    for fake in (recon_logits, prior_logits):
        if fake is not None:
            loss = loss + F.softplus(_wide(fake)).mean()
    return loss


def decoder_gan_loss(
    recon_logits: torch.Tensor | None,
    prior_logits: torch.Tensor | None,
    variant: GanVariant = "non_saturating",
) -> torch.Tensor:
    """The GAN term Dec minimises.

    ``saturating`` is -L_GAN (the paper's Algorithm 1: Dec <- -grad(gamma L_llike - L_GAN)) less
    its log Dis(x) term; its gradient vanishes when Dis confidently rejects Dec's images.
    ``non_saturating`` flips the labels instead, -log Dis(Dec(.)) (Goodfellow et al., 2014): the
    same fixed point, strong gradients early on. The log Dis(x) term is left out of both: it does
    not depend on Dec when Dis sees real and generated images in separate batches; with one joint
    batch (``dis_batch="joint"``) it does, through the shared BatchNorm statistics, so there
    ``saturating`` is -L_GAN's gradient less that term's share.
    """
    ref = next((t for t in (recon_logits, prior_logits) if t is not None), None)
    if ref is None:
        raise ValueError("decoder_gan_loss: give Dis's logits of Dec(z) or of Dec(z_p), or both")
    loss = torch.zeros((), device=ref.device, dtype=_wide(ref).dtype)
    for fake in (recon_logits, prior_logits):
        if fake is None:
            continue
        if variant == "saturating":
            loss = loss - F.softplus(_wide(fake)).mean()
        elif variant == "non_saturating":
            loss = loss + F.softplus(-_wide(fake)).mean()
        else:
            raise ValueError(f"unknown gan variant {variant!r}")
    return loss
