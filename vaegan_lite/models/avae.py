"""AVAE (Plumerault, Le Borgne and Hudelot, ICPR 2020) and a BiGAN baseline, on the nets of nets.py.

AVAE leaves a VAE exactly as it is and adds a second way back from the latent space:

    E  encoder, q(z|x) = N(mu_E(x), sigma_E(x)^2)      trained as a VAE's (with D)
    D  decoder, mu_D(z): the VAE's reconstruction        trained as a VAE's (with E)
    G  generator, x = G(z, xi), xi ~ N(0, I)             trained by L_G = L_Z + L_M
    C  critic, real or generated?                        trained by L_C (Eq. 13)

L_Z asks the (fixed) encoder to find z again in G(z, xi): the latent reconstruction loss of
Eq. 12 (L^a_Z) or Eq. 16 (L^b_Z). L_M = logit C (Eq. 15) asks the critic to take G(z, xi) for a
real image. D's reconstruction is the mean of every image that shares the code, so it is blurry
(Eq. 5); G's only has to land on one of them, so it can be sharp. To reconstruct x with AVAE,
run G on E's code: G(mu_E(x), xi).

BiGAN (Donahue et al., 2017; Dumoulin et al., 2017) is the paper's other baseline: an encoder E and
a generator G trained only through a discriminator D(x, z) of (image, code) pairs.

Networks are Table 1's (nets.py), as for the five VAE/GAN models: E, D and C are VAEGAN's Enc, Dec
and Dis (attributes ``enc``, ``dec``, ``dis``), G is a second Decoder whose input is (z, xi).
Sign convention: Dis returns the logit of "x is real"; the paper's C is the probability that x is
*generated*, so logit C = -(Dis's logit).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..config import ModelConfig, StepConfig
from ..losses import gan_loss, llike_loss, prior_loss
from ..nets import Decoder, Discriminator
from .vaegan import (
    VAEGAN,
    check_count,
    check_shape,
    discriminate,
    evaluating,
    finish_step,
    finite,
    gan_stats,
    grads,
    in_batches,
    reparameterize,
)

# --- the models --------------------------------------------------------------------------------


def _no_condition(config: ModelConfig) -> None:
    if config.cond_dim:
        raise ValueError(f"{config.model} has no conditional version (cond_dim must be 0)")


class AVAE(VAEGAN):
    """A VAE (enc, dec), a generator G(z, xi) (gen) and a critic (dis)."""

    def __init__(self, config: ModelConfig) -> None:
        _no_condition(config)
        super().__init__(config)  # E, D and the critic C: Table 1's Enc, Dec and Dis
        c = config
        self.gen = Decoder(c.image_size, c.latent_dim + c.xi_dim, c.width, c.channels)

    @property
    def xi_dim(self) -> int:
        """Size of the generator's extra noise xi (G's input is [z, xi])."""
        return self.config.xi_dim

    def generate(
        self,
        z: torch.Tensor,
        xi: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """G(z, xi) on the model's device; xi ~ N(0, I) when not given (with_xi: drawn from
        ``generator``, which fixes it, else on the model's device)."""
        check_shape(z, (self.latent_dim,), "codes z")
        if not z.is_floating_point():
            raise ValueError(f"model takes float codes z, got {z.dtype}")
        if xi is not None:
            check_shape(xi, (self.xi_dim,), "noise xi")
        return self.gen(with_xi(z.to(self.device, self.dtype), self.xi_dim, xi, generator))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        y: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """G(z, xi) for n draws of z, xi ~ N(0, I): AVAE samples with its generator, computed on
        the model's device and returned on ``device`` (the CPU by default, as VAEGAN.sample)."""
        check_count(n)
        self._check_condition(y, n)  # AVAE is unconditional: a y is refused, not dropped
        where = "cpu" if generator is None else generator.device  # as VAEGAN.sample
        z = torch.randn(n, self.latent_dim, generator=generator, device=where).to(self.device)
        xi = draw_xi(n, self.xi_dim, self.device, generator)
        with evaluating(self):
            return torch.cat([self.generate(zb, xb).to(device) for zb, xb in in_batches(z, xi)])

    @torch.no_grad()
    def reconstruct(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """G(mu_E(x), xi): AVAE's reconstruction (the VAE's is ``decode(encode(x)[0])``), on the
        model's device EVAL_BATCH images at a time, returned on x's."""
        self._check_images(x)
        self._check_condition(y, len(x))  # AVAE is unconditional: a y is refused
        xi = draw_xi(len(x), self.xi_dim, self.device, generator)
        with evaluating(self):
            return torch.cat([self.generate(self.encode(xb)[0], xib).to(x.device)
                              for xb, xib in in_batches(x, xi)])  # fmt: skip


def with_xi(
    z: torch.Tensor,
    xi_dim: int,
    xi: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """G's input: z with the extra noise xi ~ N(0, I) of size xi_dim appended (Sec. 4.2). xi is
    drawn where z is (a training step on a GPU copies nothing and waits for nothing), or from
    ``generator`` on its own device, which then fixes it; either way it joins z on z's device."""
    if xi_dim == 0:
        return z
    if xi is None:
        xi = draw_xi(z.shape[0], xi_dim, z.device, generator)
    return torch.cat([z, xi.to(z)], dim=1)


def draw_xi(
    n: int, xi_dim: int, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n draws of xi ~ N(0, I), [n, xi_dim]: on ``device``, or from ``generator`` on its own
    device, which then fixes them."""
    where = device if generator is None else generator.device
    return torch.randn(n, xi_dim, generator=generator, device=where)


class BiGAN(VAEGAN):
    """BiGAN: encoder E (enc), generator G (dec) and a joint discriminator D(x, z) (dis).

    E is stochastic, z ~ q(z|x), as in ALI; ``reconstruct`` gives G(mu_E(x)).
    """

    def __init__(self, config: ModelConfig) -> None:
        _no_condition(config)
        super().__init__(config)
        c = config
        self.dis = JointDiscriminator(c.image_size, c.latent_dim, c.width, c.channels, c.dis_layer)


class JointDiscriminator(Discriminator):
    """BiGAN's D(x, z), as the AVAE paper builds it (Fig. 5's caption): Table 1's Dis up to its fc
    layer for x, a two-hidden-layer MLP for z, and a two-hidden-layer MLP on the two concatenated.

    With z only joining Dis's top fc layer (the conditional Dis's way), G collapsed to one texture
    at the cpu preset.
    """

    def __init__(
        self, image_size: int, latent_dim: int, width: float = 1.0, channels: int = 3,
        dis_layer: int = 4,
    ) -> None:  # fmt: skip
        super().__init__(image_size, width, channels, dis_layer)
        h = self.out.in_features  # 512 * width
        self.z_net = nn.Sequential(  # z => h
            nn.Linear(latent_dim, h), nn.LeakyReLU(0.2), nn.Linear(h, h), nn.LeakyReLU(0.2)
        )
        self.joint = nn.Sequential(  # (x's h, z's h) => h; self.out then gives the logit
            nn.Linear(2 * h, h), nn.LeakyReLU(0.2), nn.Linear(h, h), nn.LeakyReLU(0.2)
        )

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (logits [B], Dis_l(x)) for the pairs (x, z)."""
        h, dis_l = self.features(x)
        h = self.joint(torch.cat([h, self.z_net(z.to(h.dtype))], dim=1))
        return self.out(h).squeeze(1), dis_l


# --- the losses --------------------------------------------------------------------------------


def latent_loss(
    mu: torch.Tensor, z: torch.Tensor, logvar: torch.Tensor, variant: str = "b"
) -> torch.Tensor:
    """L_Z: how far E's code of a generated image is from the z it was generated from::

        L^a_Z = 1/2 || (mu_E(x) - z) / sigma_E ||^2                   (Eq. 12)
        L^b_Z = 1/2 || (mu_E(x) - sqrt(1 - sigma_E^2) z) / sigma_E ||^2  (Eq. 16)

    -log q(z | x) up to constants (Eq. 11). L^b's target is shrunk as mu_E itself is: for real
    images mu_E(x) ~ N(0, 1 - sigma_E^2), so G's images then have codes distributed as the data's.
    The paper's sigma_E is one learned vector, a constant for G; ours depends on x, so it is
    detached: G cannot lower L_Z by making images the encoder is unsure about. Summed over latent
    units, averaged over the batch.
    """
    var = logvar.detach().float().exp()
    if variant == "b":
        z = torch.sqrt((1 - var).clamp_min(0)) * z
    elif variant != "a":
        raise ValueError(f"unknown latent loss {variant!r}; choose 'a' or 'b'")
    return 0.5 * ((mu.float() - z) ** 2 / var).sum(1).mean()


def manifold_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """L_M = logit C(G(z, xi)) (Eq. 15), an estimate of log p_G(x) / p(x) at G's images.

    The paper's C is P(generated), the package's Dis gives the logit of P(real): logit C = -logit.
    """
    return -fake_logits.float().mean()


# --- the training steps ------------------------------------------------------------------------


def avae_step(
    model: AVAE,
    x: torch.Tensor,
    opts: dict[str, torch.optim.Optimizer],
    cfg: StepConfig,
    *,
    y: torch.Tensor | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, torch.Tensor]:
    """One update of AVAE: the algorithm of the paper's Fig. 4, in its symbols.

    Works for any model with ``enc``, ``dec``, ``gen``, ``dis`` and ``xi_dim`` (the 2D toy too).
    """
    if y is not None:  # AVAE is unconditional: a y is refused, not dropped
        raise ValueError("avae_step: attribute vectors y given to AVAE, which is not conditional")
    E, D, G, C = model.enc, model.dec, model.gen, model.dis
    with autocast or contextlib.nullcontext():
        # Forward pass.
        z_real_mu, z_real_logvar = E(x)  # z^real_mu, z^real_sigma <- E(x^real)
        z_real = reparameterize(z_real_mu, z_real_logvar)  # z^real <- z_mu + eps z_sigma
        mu_real = D(z_real)  # mu^real <- D(z^real)
        z_fake = torch.randn_like(z_real)  # z^fake, xi ~ N(0, I)
        x_fake = G(with_xi(z_fake, model.xi_dim))  # x^fake <- G(z^fake, xi)
        # E judges G's images as it encodes test images: with its running BatchNorm statistics,
        # which G's images must not shift.
        E.eval()
        z_fake_mu, z_fake_logvar = E(x_fake)  # z^fake_mu, z^fake_sigma <- E(x^fake)
        E.train()
        (C_real, _), (C_fake, _) = discriminate(C, [x, x_fake], None, cfg.dis_batch)

        # Losses.
        L_R = llike_loss(x, mu_real, cfg.pixel_sigma, cfg.llike_reduction)  # -log p(x|z) (Eq. 8)
        L_P = prior_loss(z_real_mu, z_real_logvar)  # KL(q(z|x) || p(z)) (Eq. 7)
        L_VAE = L_R + cfg.beta * L_P  # Eq. 9; beta weighs the KL (1 in the paper's AVAE)
        L_C = gan_loss(C_real, None, C_fake)  # Eq. 13: C's cross-entropy, real vs generated
        L_Z = latent_loss(z_fake_mu, z_fake, z_fake_logvar, cfg.latent_loss)  # Eq. 12 / 16
        L_M = manifold_loss(C_fake)  # Eq. 15
        L_G = cfg.latent_weight * L_Z + L_M  # the paper's weight is 1

    ok = finite(L_VAE, L_C, L_G)  # False: nothing moves

    # Compute losses' gradients (all before any update), then update parameters.
    s = scaler
    g_E = grads(L_VAE, E, s)  # theta_e <- -grad_e L_VAE  (E never sees L_Z: it is the judge)
    g_D = grads(L_VAE, D, s)  # theta_d <- -grad_d L_VAE
    g_G = grads(L_G, G, s)  # theta_g <- -grad_g L_G
    g_C = grads(L_C, C, s)  # theta_c <- -grad_c L_C
    stats = {"L_prior": L_P, "L_llike": L_R, "L_Z": L_Z, "L_M": L_M, "L_C": L_C,
             "D(x)": torch.sigmoid(C_real.float()).mean(),
             "D(G(z))": torch.sigmoid(C_fake.float()).mean()}  # fmt: skip
    updates = {"enc": g_E, "dec": g_D, "gen": g_G, "dis": g_C}
    return finish_step(model, updates, opts, scaler, stats, ok)


def bigan_step(
    model: BiGAN,
    x: torch.Tensor,
    opts: dict[str, torch.optim.Optimizer],
    cfg: StepConfig,
    *,
    y: torch.Tensor | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, torch.Tensor]:
    """One update of BiGAN: D tells (x, E(x)) from (G(z), z); E and G try to swap them."""
    model.check_batch(x, y)  # BiGAN is unconditional: a y is refused, not dropped
    E, G, D = model.enc, model.dec, model.dis
    with autocast or contextlib.nullcontext():
        z_hat = reparameterize(*E(x))  # z^ ~ E(x)
        z = torch.randn_like(z_hat)  # z ~ p(z)
        x_gen = G(z)  # G(z)
        # D(x, E(x)) and D(G(z), z): x and z each through a net of its own, then a joint MLP
        (real, _), (fake, _) = discriminate(D, [x, x_gen], [z_hat, z], cfg.dis_batch)
        L_D = gan_loss(real, None, fake)  # -log D(x, E(x)) - log(1 - D(G(z), z))
        if cfg.gan_variant == "saturating":
            L_EG = -L_D
        else:  # the same cross-entropy with the labels swapped
            L_EG = gan_loss(fake, None, real)
    ok = finite(L_D, L_EG)
    g_E = grads(L_EG, E, scaler)  # theta_E <- -grad(L_EG)
    g_G = grads(L_EG, G, scaler)  # theta_G <- -grad(L_EG)
    g_D = grads(L_D, D, scaler)  # theta_D <- -grad(L_D)
    stats = gan_stats(L_D, real, None, fake)
    return finish_step(model, {"enc": g_E, "dec": g_G, "dis": g_D}, opts, scaler, stats, ok)
