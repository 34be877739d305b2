"""AVAE and BiGAN: the CLI, the paper's losses, the gradient routing of Fig. 4, and Table 1.

The routing checks follow tests/test_routing.py: each network must move by exactly the gradient of
its own loss, with the reference losses written here from the paper's equations
(torch.distributions for the KL and for -log q(z|x), binary_cross_entropy_with_logits for C).
"""

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from vaegan_lite import load_checkpoint
from vaegan_lite.book.runs import get_preset
from vaegan_lite.book.tables import PAPER_CELEBA, row_figures, table1, table1_claims, typeset
from vaegan_lite.cli import main
from vaegan_lite.config import (
    AVAE_PAPER,
    AVAE_SMALL,
    TABLE1_ROWS,
    VAEGAN_BETA,
    ModelConfig,
    StepConfig,
    config_for,
    row_settings,
)
from vaegan_lite.models.avae import (
    AVAE,
    BiGAN,
    JointDiscriminator,
    avae_step,
    bigan_step,
    latent_loss,
    manifold_loss,
)

TINY = ["--image-size", "32", "--width", "0.125", "--latent-dim", "16", "--batch-size", "8",
        "--dataset-size", "64", "--no-progress", "--log-every", "1"]  # fmt: skip


@pytest.mark.parametrize(
    "extra",
    [
        ["--model", "avae"],
        "--model avae --xi-dim 4 --avae-latent-loss a --beta 5 --avae-latent-weight 0.25".split(),
        ["--model", "bigan"],
    ],  # fmt: skip
    ids=["avae", "avae-xi-a-beta", "bigan"],
)
def test_trains_from_the_cli_samples_and_loads(tmp_path, extra):
    out = tmp_path / "run"
    argv = ["train", "--steps", "3", "--seed", "1", "--device", "cpu", "--out", str(out)]
    assert main([*argv, *TINY, *extra]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["model"] == extra[1]
    if "--xi-dim" in extra:
        assert cfg["model"]["xi_dim"] == 4 and cfg["step"]["latent_loss"] == "a"
        assert cfg["step"]["beta"] == 5.0 and cfg["step"]["latent_weight"] == 0.25
    h = torch.load(out / "last.pt", weights_only=True)["history"]
    assert len(h["step"]) == 3 and all(math.isfinite(v) for k in h for v in h[k])
    png = tmp_path / "s.png"
    assert (
        main(["sample", "--checkpoint", str(out / "last.pt"), "--n", "4", "--out", str(png)]) == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = load_checkpoint(out / "last.pt")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (2, 16)
    assert model.decode(mu).shape == model.reconstruct(x).shape == x.shape
    g = torch.Generator().manual_seed(0)
    a = model.sample(3, generator=g)
    b = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (3, 3, 32, 32) and torch.equal(a, b)


# --- the losses --------------------------------------------------------------------------------


def test_latent_loss_a_is_the_negative_log_posterior():
    """Eq. 12 is -log q(z|x) of Eq. 11 without its constant (here log|Sigma| is a constant)."""
    torch.manual_seed(0)
    mu, z, logvar = torch.randn(3, 5, 4).unbind(0)
    nll = -Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(1).mean()
    const = (0.5 * logvar + 0.5 * math.log(2 * math.pi)).sum(1).mean()
    assert torch.allclose(latent_loss(mu, z, logvar, "a"), nll - const, atol=1e-5)


def test_latent_loss_optima():
    """L^a_Z is minimal at mu_E = z, L^b_Z at mu_E = sqrt(1 - sigma^2) z (the paper's Sec. 4.2)."""
    z = torch.randn(6, 3)
    logvar = torch.full((6, 3), math.log(0.36))  # sigma = 0.6, sqrt(1 - sigma^2) = 0.8
    assert latent_loss(z, z, logvar, "a") == 0
    assert latent_loss(0.8 * z, z, logvar, "b").abs() < 1e-6
    assert latent_loss(z, z, logvar, "b") > 0
    with pytest.raises(ValueError):
        latent_loss(z, z, logvar, "c")


def test_manifold_loss_is_logit_of_the_papers_critic():
    """The paper's C is P(generated) = 1 - sigmoid(Dis's logit); L_M = mean logit C (Eq. 15)."""
    logits = torch.randn(7)
    c = 1 - torch.sigmoid(logits)
    assert torch.allclose(manifold_loss(logits), torch.log(c / (1 - c)).mean(), atol=1e-5)


# --- the routing of Fig. 4 ---------------------------------------------------------------------


def small(cls, model, xi_dim=0, seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(model=model, image_size=32, width=0.125, latent_dim=8, enc_fc_dim=64,
                      xi_dim=xi_dim)  # fmt: skip
    return cls(cfg).double().train()


@pytest.mark.parametrize(
    "cls, model, step", [(AVAE, "avae", avae_step), (BiGAN, "bigan", bigan_step)]
)
def test_unconditional_steps_refuse_attribute_vectors(cls, model, step):
    """AVAE and BiGAN are unconditional: a y given to their steps is refused in one line, not
    silently dropped, and nothing moves."""
    m = small(cls, model)
    before = copy.deepcopy(m.state_dict())
    opts = {n: torch.optim.SGD(p.parameters(), lr=1.0) for n, p in m.named_children()}
    x = torch.rand(4, 3, 32, 32, dtype=torch.float64) * 2 - 1
    with pytest.raises(ValueError, match="attribute vectors y given to .*not conditional") as e:
        step(m, x, opts, StepConfig(), y=torch.ones(4, 5, dtype=torch.float64))
    assert "\n" not in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def applied_update(step, model, x, cfg, nets, seed=1):
    """Run one step with SGD(lr=1) per network; return {net: [minus the applied gradient]}."""
    before = copy.deepcopy(model)
    opts = {n: torch.optim.SGD(getattr(model, n).parameters(), lr=1.0) for n in nets}
    torch.manual_seed(seed)
    stats = step(model, x, opts, cfg)
    assert stats["ok"]  # the step moved
    # E judges G's images in eval mode inside the step: every module is back in training after it
    assert all(m.training for m in model.modules())
    return {
        n: [b - a for a, b in zip(getattr(before, n).parameters(), getattr(model, n).parameters(),
                                  strict=True)]
        for n in nets
    }  # fmt: skip


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def paper_avae_losses(m, x, cfg, seed=1):
    """The paper's losses for one batch, from the same random draws as the step."""
    torch.manual_seed(seed)
    mu, logvar = m.enc(x)
    q = Normal(mu, (0.5 * logvar).exp())
    L_P = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1).mean()
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    L_R = ((x - m.dec(z)) ** 2).flatten(1).sum(1).mean() / (2 * cfg.pixel_sigma**2)  # Eq. 8
    z_fake = torch.randn_like(z)
    g_in = z_fake
    if m.xi_dim:
        g_in = torch.cat([z_fake, torch.randn(x.shape[0], m.xi_dim).double()], 1)
    x_fake = m.gen(g_in)
    m.enc.eval()  # E judges with its running statistics
    mu_f, logvar_f = m.enc(x_fake)
    m.enc.train()
    if cfg.dis_batch == "joint":  # real and generated share one BatchNorm batch
        d_real, d_fake = m.dis(torch.cat([x, x_fake]))[0].split(x.shape[0])
    else:
        d_real, _ = m.dis(x)
        d_fake, _ = m.dis(x_fake)
    # The paper's critic: C(x) = P(x generated) = sigmoid(-d); Eq. 13 and Eq. 15.
    L_C = bce(-d_real, 0.0) + bce(-d_fake, 1.0)
    c_fake = torch.sigmoid(-d_fake)
    L_M = torch.log(c_fake / (1 - c_fake)).mean()
    sigma = (0.5 * logvar_f).exp().detach()  # a constant for G, as the paper's learned sigma
    shrink = torch.sqrt(torch.clamp(1 - sigma**2, min=0))  # no code is less noisy than none
    target = z_fake if cfg.latent_loss == "a" else shrink * z_fake
    L_Z = (0.5 * ((mu_f - target) / sigma) ** 2).sum(1).mean()  # Eq. 12 / Eq. 16
    L_G = cfg.latent_weight * L_Z + L_M  # Eq. 10 (weight 1) and the book's knob
    return {"L_VAE": L_R + cfg.beta * L_P, "L_C": L_C, "L_G": L_G, "L_Z": L_Z, "L_M": L_M}


def grad_of(loss, net):
    return [-g for g in torch.autograd.grad(loss, list(net.parameters()), retain_graph=True,
                                            allow_unused=True)]  # fmt: skip


def max_error(got, want):
    return max(
        (g - (0 if w is None else w)).abs().max().item() for g, w in zip(got, want, strict=True)
    )


def assert_same(got, want, name):
    scale = max(w.abs().max().item() for w in want if w is not None)
    assert scale > 0, f"{name}: the expected gradient is zero, the check would be vacuous"
    err = max_error(got, want)
    assert err <= 1e-9 * max(1.0, scale), f"{name}: update differs by {err:.3g} ({scale:.3g})"


@pytest.fixture
def batch():
    return torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(5)).double() * 2 - 1


@pytest.mark.parametrize("dis_batch", ["separate", "joint"])
@pytest.mark.parametrize(
    "xi_dim, variant, weight",
    [(0, "b", 1.0), (0, "a", 1.0), (3, "a", 1.0), (3, "b", 1.0), (0, "b", 0.25), (0, "b", 0.0)],
)
def test_avae_routing_matches_the_papers_algorithm(batch, xi_dim, variant, weight, dis_batch):
    model = small(AVAE, "avae", xi_dim)
    cfg = StepConfig(latent_loss=variant, beta=2.5, pixel_sigma=0.3, dis_batch=dis_batch,
                     latent_weight=weight)  # fmt: skip
    ref = copy.deepcopy(model)
    got = applied_update(avae_step, model, batch, cfg, ("enc", "dec", "gen", "dis"))
    L = paper_avae_losses(ref, batch, cfg)
    assert_same(got["enc"], grad_of(L["L_VAE"], ref.enc), "E")  # theta_e <- grad L_VAE
    assert_same(got["dec"], grad_of(L["L_VAE"], ref.dec), "D")  # theta_d <- grad L_VAE
    assert_same(got["gen"], grad_of(L["L_G"], ref.gen), "G")  # theta_g <- grad (L_Z + L_M)
    if weight != 1:  # the weight is applied, not ignored
        assert max_error(got["gen"], grad_of(L["L_Z"] + L["L_M"], ref.gen)) > 1e-6
    assert_same(got["dis"], grad_of(L["L_C"], ref.dis), "C")  # theta_c <- grad L_C
    # The check has teeth: L_Z does reach E's parameters in the graph, and L_M reaches C's,
    # so a step that let them leak would fail it.
    leak_e = grad_of(L["L_VAE"] + L["L_Z"], ref.enc)
    assert max_error(got["enc"], leak_e) > 1e-6
    leak_c = grad_of(L["L_C"] + L["L_M"], ref.dis)
    assert max_error(got["dis"], leak_c) > 1e-6


@pytest.mark.parametrize("dis_batch", ["separate", "joint"])
@pytest.mark.parametrize("variant", ["non_saturating", "saturating"])
def test_bigan_routing(batch, variant, dis_batch):
    model = small(BiGAN, "bigan")
    cfg = StepConfig(gan_variant=variant, dis_batch=dis_batch)
    ref = copy.deepcopy(model)
    got = applied_update(bigan_step, model, batch, cfg, ("enc", "dec", "dis"))
    torch.manual_seed(1)
    mu, logvar = ref.enc(batch)
    z_hat = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    z = torch.randn_like(z_hat)
    if dis_batch == "joint":  # one BatchNorm batch for both pairs
        both, _ = ref.dis(torch.cat([batch, ref.dec(z)]), torch.cat([z_hat, z]))
        d_real, d_fake = both.split(batch.shape[0])
    else:
        d_real, _ = ref.dis(batch, z_hat)  # D(x, E(x))
        d_fake, _ = ref.dis(ref.dec(z), z)  # D(G(z), z)
    L_D = bce(d_real, 1.0) + bce(d_fake, 0.0)
    L_EG = -L_D if variant == "saturating" else bce(d_real, 0.0) + bce(d_fake, 1.0)
    assert_same(got["enc"], grad_of(L_EG, ref.enc), "E")
    assert_same(got["dec"], grad_of(L_EG, ref.dec), "G")
    assert_same(got["dis"], grad_of(L_D, ref.dis), "D")


# --- Table 1 -----------------------------------------------------------------------------------


def test_row_settings_keep_the_paper_at_gpu_and_add_the_small_fix_elsewhere():
    for row, (model, settings) in TABLE1_ROWS.items():
        assert row_settings(row, "gpu") == (model, settings)
        at_cpu = row_settings(row, "cpu")
        step = config_for(get_preset("cpu"), model, **at_cpu[1]).step
        if model == "avae":
            assert settings.items() >= AVAE_PAPER.items()  # every AVAE row has the paper's
            assert at_cpu == (model, {**settings, **AVAE_SMALL})
            assert (step.pixel_sigma, step.beta, step.latent_weight) == (1.0, 1.0, 0.1)
        else:
            assert at_cpu == (model, settings)
    # The paper's pixel likelihood N(mu(z), I) for the VAE too (Eq. 8), and its beta on VAE/GAN's
    # KL alone, the model whose KL it found too high (Sec. 5).
    (_, vae), (_, vaegan) = (row_settings(row, "cpu") for row in ("VAE", "VAE/GAN"))
    vae, vaegan = config_for(get_preset("cpu"), "vae", **vae).step, config_for(
        get_preset("cpu"), "vaegan", **vaegan).step
    assert (vae.pixel_sigma, vae.beta) == (1.0, 1.0) and vaegan.beta == VAEGAN_BETA["beta"] == 5.0


def test_bigan_discriminator_reads_the_code_through_its_own_mlp():
    D = JointDiscriminator(32, latent_dim=16, width=0.125).eval()
    x, z = torch.randn(4, 3, 32, 32), torch.randn(4, 16)
    logits, dis_l = D(x, z)
    assert logits.shape == (4,) and dis_l.shape[0] == 4
    # z reaches the logit through z_net and the joint MLP, not only through a top fc layer
    assert not torch.allclose(D(x, z.flip(0))[0], logits)
    assert {"z_net", "joint"} <= {n for n, _ in D.named_children()}
    assert isinstance(small(BiGAN, "bigan").dis, JointDiscriminator)


def test_table1_at_smoke_size():
    """Every row of the paper's Table 1 trains, is evaluated, and lands in the table."""
    from vaegan_lite.book.runs import test_images
    from vaegan_lite.data import training_tensors
    from vaegan_lite.shipped import pretrained
    from vaegan_lite.train import train

    preset = get_preset("smoke")
    judge = pretrained("attribute-classifier")
    data = training_tensors(config_for(preset, "vae"))
    x_test, _ = test_images(preset, 16)
    results = {}
    for row in TABLE1_ROWS:
        model, settings = row_settings(row, preset.name)
        runs = []
        for seed in (0, 1):
            cfg = config_for(preset, model, steps=2, seed=seed, **settings)
            runs.append(row_figures(train(cfg, progress=False, data=data).model, x_test, judge,
                                    seed))  # fmt: skip
        results[row] = runs
        assert ("mse" in runs[0]) == (model != "gan")
        assert ("kl" in runs[0]) == (model not in ("gan", "bigan"))  # a KL term, a KL
        assert all(math.isfinite(v) and v >= 0 for r in runs for v in r.values())
    table = table1(results)
    lines = str(table).splitlines()
    assert len(lines) == 2 + len(TABLE1_ROWS)
    for row, line in zip(TABLE1_ROWS, lines[2:], strict=True):
        assert line.startswith(f"| {row} |") and line.count("±") >= 2 + ("kl" in results[row][0])
        assert f"{PAPER_CELEBA[row]['fid'][0]:.2f}" in line
    shown = table._repr_markdown_()  # rendered: the rows' symbols typeset, as in the prose
    assert shown == typeset(str(table)) and "without ξ, $\\mathcal{L}^b_Z$ |" in shown
    # the paper's readings, each with a verdict; "close to the VAE's MSE" is the paper's own ratio
    claims = str(table1_claims(results, {"VAE": 1.0, "AVAE without ξ, L^b_Z": 1.5})).splitlines()
    verdicts = ("| yes |", "| no |", "| within a seed's spread |")  # two seeds: a spread
    assert all(line.endswith(verdicts) for line in claims[2:]), claims
    assert any("within 1.7 times the VAE's MSE" in line for line in claims)
    assert claims[-1].startswith("| AVAE's reconstructions are sharper") and "| yes |" in claims[-1]
    # that last verdict is read from the sharpness given, not fixed
    blunter = table1_claims(results, {"VAE": 1.5, "AVAE without ξ, L^b_Z": 1.0})
    assert str(blunter).splitlines()[-1].endswith("| no |")
