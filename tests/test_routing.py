"""Algorithm 1's gradient routing, checked against gradients computed here from the paper's losses.

Each network must move by exactly the gradient of its own loss, evaluated before any network moved:
    Enc <- grad(L_prior + L_llike),  Dec <- grad(gamma L_llike - L_GAN),  Dis <- grad(L_GAN).
The reference losses below are written independently of vaegan_lite.losses (torch.distributions
for the KL, binary_cross_entropy_with_logits for L_GAN). A step with the routing bug of a popular
library (the decoder also receiving the discriminator's loss, the encoder an extra reconstruction
term) must fail the same check.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from vaegan_lite import metrics
from vaegan_lite.config import StepConfig
from vaegan_lite.models import algorithm1_step, discriminate, frozen_metric_step, gan_step, grads
from vaegan_lite.models.fast import algorithm1_step_fast, gan_step_fast
from vaegan_lite.models.vaegan import equilibrium, reparameterize, set_grads


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def paper_losses(model, x, cfg, seed=1, metric="dis_l", adversarial=True):
    """The paper's L_prior, L_llike, L_GAN (and Dec's GAN term), from the same random draws."""
    torch.manual_seed(seed)
    mu, logvar = model.enc(x)
    q = Normal(mu, torch.exp(0.5 * logvar))
    L_prior = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1).mean()
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    x_tilde = model.dec(z)
    out = {"L_prior": L_prior}
    if adversarial and cfg.dis_batch == "joint":  # one pass over all three, split here
        x_p = model.dec(torch.randn_like(z))
        d, f = model.dis(torch.cat([x, x_tilde, x_p]))
        n = x.shape[0]
        (d_x, d_t, d_p), (f_x, f_t, _) = d.split([n, n, n]), f.split([n, n, n])
    elif adversarial:
        x_p = model.dec(torch.randn_like(z))
        (d_x, f_x), (d_t, f_t), (d_p, _) = [model.dis(b) for b in (x, x_tilde, x_p)]
    elif metric == "dis_l":
        (d_x, f_x), (d_t, f_t) = [model.dis(b) for b in (x, x_tilde)]
    if metric == "dis_l":
        # -log N(Dis_l(x) | Dis_l(x~), I) without its constant, summed over features.
        out["L_llike"] = 0.5 * ((f_x - f_t) ** 2).flatten(1).sum(1).mean()
    else:
        s = cfg.pixel_sigma
        out["L_llike"] = (0.5 / s**2) * ((x - x_tilde) ** 2).flatten(1).sum(1).mean()
    if adversarial:
        out["L_GAN"] = bce(d_x, 1.0) + bce(d_t, 0.0) + bce(d_p, 0.0)
        if cfg.gan_variant == "saturating" and cfg.dis_batch == "joint":
            # log Dis(x) reaches Dec through the shared BatchNorm statistics; decoder_gan_loss
            # leaves it out (its docstring), so Dec follows the fakes' terms of -L_GAN only
            out["L_GAN_dec"] = -(bce(d_t, 0.0) + bce(d_p, 0.0))
        elif cfg.gan_variant == "saturating":
            out["L_GAN_dec"] = -out["L_GAN"]
        else:
            out["L_GAN_dec"] = bce(d_t, 1.0) + bce(d_p, 1.0)
    return out


def grad_of(loss, net):
    return [-g for g in torch.autograd.grad(loss, list(net.parameters()), retain_graph=True)]


@pytest.mark.parametrize("dis_batch", ["separate", "joint"])
@pytest.mark.parametrize("variant", ["saturating", "non_saturating"])
def test_vaegan_routing_matches_paper(
    batch, variant, dis_batch, small_model, applied_update, assert_same, gamma, max_error, scale_of
):
    model = small_model()
    cfg = StepConfig(gamma=gamma, gan_variant=variant, dis_batch=dis_batch)
    ref = copy.deepcopy(model)
    got = applied_update(algorithm1_step, model, batch, cfg)
    L = paper_losses(ref, batch, cfg)
    assert_same(got["enc"], grad_of(L["L_prior"] + L["L_llike"], ref.enc), "Enc")
    assert_same(got["dec"], grad_of(gamma * L["L_llike"] + L["L_GAN_dec"], ref.dec), "Dec")
    assert_same(got["dis"], grad_of(L["L_GAN"], ref.dis), "Dis")
    # The terms that must not leak are not negligible here, so the check above has teeth:
    # Dis would change with L_llike, Enc with L_GAN.
    leak_dis = grad_of(L["L_GAN"] + L["L_llike"], ref.dis)
    assert max_error(got["dis"], leak_dis) > 1e-3 * scale_of(leak_dis)
    leak_enc = grad_of(L["L_prior"] + L["L_llike"] - L["L_GAN"], ref.enc)
    assert max_error(got["enc"], leak_enc) > 1e-6 * scale_of(leak_enc)


def test_gamma_moves_the_decoder_alone(batch, small_model, applied_update, max_error):
    """gamma weighs L_llike in Dec's loss only: Dis's and Enc's updates are the same at a tiny and
    a huge gamma, Dec's are not. (That Dis gets no L_llike and Enc no L_GAN at all is
    test_vaegan_routing_matches_paper's, against the paper's gradients.)"""
    m1, m2 = small_model(), small_model()
    u1 = applied_update(algorithm1_step, m1, batch, StepConfig(gamma=1e-3))
    u2 = applied_update(algorithm1_step, m2, batch, StepConfig(gamma=1e3))
    assert max_error(u1["dis"], u2["dis"]) == 0.0
    assert max_error(u1["enc"], u2["enc"]) == 0.0
    assert max_error(u1["dec"], u2["dec"]) > 0.0


def buggy_step(model, x, opts, cfg, **kw):
    """The public bug: Dis's loss is backpropagated through the undetached fakes into Dec, and Enc
    gets an extra reconstruction gradient; all through .backward() accumulating into .grad."""
    for o in opts.values():
        o.zero_grad()
    mu, logvar = model.enc(x)
    z = reparameterize(mu, logvar)
    x_tilde = model.dec(z)
    x_p = model.dec(torch.randn_like(z))
    (d_x, f_x), (d_t, f_t), (d_p, _) = discriminate(model.dis, [x, x_tilde, x_p], None, "separate")
    L_prior = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1).mean()
    L_llike = 0.5 * ((f_x - f_t) ** 2).flatten(1).sum(1).mean()
    L_GAN = bce(d_x, 1.0) + bce(d_t, 0.0) + bce(d_p, 0.0)
    L_GAN_dec = bce(d_t, 1.0) + bce(d_p, 1.0)
    L_GAN.backward(retain_graph=True)  # reaches Dec too: the bug
    g_enc = grads(L_prior + 2 * L_llike, model.enc)  # an extra reconstruction term: the bug
    g_dec = grads(cfg.gamma * L_llike + L_GAN_dec, model.dec)
    for p, g in zip(model.dec.parameters(), g_dec, strict=False):
        p.grad = p.grad + g
    set_grads(model.enc, g_enc)
    opts["enc"].step()
    opts["dec"].step()
    opts["dis"].step()


def test_routing_check_catches_the_public_bug(
    batch, small_model, applied_update, assert_same, gamma
):
    model = small_model()
    cfg = StepConfig(gamma=gamma)
    ref = copy.deepcopy(model)
    got = applied_update(buggy_step, model, batch, cfg)
    L = paper_losses(ref, batch, cfg)
    with pytest.raises(AssertionError):
        assert_same(got["dec"], grad_of(gamma * L["L_llike"] + L["L_GAN_dec"], ref.dec), "Dec")
    with pytest.raises(AssertionError):
        assert_same(got["enc"], grad_of(L["L_prior"] + L["L_llike"], ref.enc), "Enc")
    assert_same(got["dis"], grad_of(L["L_GAN"], ref.dis), "Dis")


def test_vae_and_vaegan_dis0_routing(batch, small_model, applied_update, assert_same, gamma):
    cfg = StepConfig(gamma=gamma, pixel_sigma=0.3)
    # VAE: pixel likelihood, no GAN, Dis untouched.
    model = small_model("vae")
    ref = copy.deepcopy(model)
    got = applied_update(algorithm1_step, model, batch, cfg, metric="pixel", adversarial=False)
    L = paper_losses(ref, batch, cfg, metric="pixel", adversarial=False)
    assert_same(got["enc"], grad_of(L["L_prior"] + L["L_llike"], ref.enc), "Enc")
    assert_same(got["dec"], grad_of(L["L_llike"], ref.dec), "Dec")
    assert all(d.abs().max() == 0 for d in got["dis"])
    # VAE/GAN_Dis0: pixel likelihood plus the GAN term.
    model = small_model("vaegan_dis0")
    ref = copy.deepcopy(model)
    got = applied_update(algorithm1_step, model, batch, cfg, metric="pixel", adversarial=True)
    L = paper_losses(ref, batch, cfg, metric="pixel", adversarial=True)
    assert_same(got["enc"], grad_of(L["L_prior"] + L["L_llike"], ref.enc), "Enc")
    assert_same(got["dec"], grad_of(gamma * L["L_llike"] + L["L_GAN_dec"], ref.dec), "Dec")
    assert_same(got["dis"], grad_of(L["L_GAN"], ref.dis), "Dis")


def test_vae_disl_uses_a_frozen_metric(batch, small_model, applied_update, assert_same):
    model = small_model("vae_disl")
    cfg = StepConfig()
    ref = copy.deepcopy(model).eval()  # the frozen Dis uses its running BatchNorm statistics
    ref.enc.train(), ref.dec.train()
    got = applied_update(frozen_metric_step, model, batch, cfg)
    L = paper_losses(ref, batch, cfg, metric="dis_l", adversarial=False)
    assert_same(got["enc"], grad_of(L["L_prior"] + L["L_llike"], ref.enc), "Enc")
    assert_same(got["dec"], grad_of(L["L_llike"], ref.dec), "Dec")
    assert all(d.abs().max() == 0 for d in got["dis"])


def test_gan_step_routing(batch, small_model, applied_update, assert_same):
    model = small_model("gan")
    cfg = StepConfig(gan_variant="saturating")
    ref = copy.deepcopy(model)
    got = applied_update(gan_step, model, batch, cfg)
    torch.manual_seed(1)
    x_p = ref.dec(torch.randn(batch.shape[0], 8, dtype=torch.float64))
    (d_x, _), (d_p, _) = ref.dis(batch), ref.dis(x_p)
    L_GAN = bce(d_x, 1.0) + bce(d_p, 0.0)  # Eq. 5 as a cross-entropy
    assert_same(got["dec"], grad_of(-L_GAN, ref.dec), "Gen")
    assert_same(got["dis"], grad_of(L_GAN, ref.dis), "Dis")
    assert all(d.abs().max() == 0 for d in got["enc"])


def test_authors_weighting_and_no_recon_for_dis(batch, small_model, applied_update, assert_same):
    w = 1e-3
    model = small_model()
    cfg = StepConfig(w=w, dis_sees_recon=False)
    ref = copy.deepcopy(model)
    got = applied_update(algorithm1_step, model, batch, cfg)
    torch.manual_seed(1)
    mu, logvar = ref.enc(batch)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    x_tilde, x_p = ref.dec(z), ref.dec(torch.randn_like(z))
    (d_x, f_x), (_, f_t), (d_p, _) = [ref.dis(b) for b in (batch, x_tilde, x_p)]
    L_llike = 0.5 * ((f_x - f_t) ** 2).flatten(1).sum(1).mean()
    L_GAN = bce(d_x, 1.0) + bce(d_p, 0.0)
    q = Normal(mu, torch.exp(0.5 * logvar))
    L_prior = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1).mean()
    assert_same(got["enc"], grad_of(L_prior + L_llike, ref.enc), "Enc")  # unweighted, as always
    assert_same(got["dec"], grad_of(w * L_llike + (1 - w) * bce(d_p, 1.0), ref.dec), "Dec")
    assert_same(got["dis"], grad_of(L_GAN, ref.dis), "Dis")


@pytest.mark.parametrize(
    "real, fake, want",  # (update Dec?, update Dis?) for center 0.5, margin 0.1: [0.4, 0.6]
    [(0.5, 0.5, (True, True)),  # both errors inside the band: both learn
     (0.3, 0.5, (True, False)),  # Dis wins on real faces: it rests
     (0.5, 0.35, (True, False)),  # Dis wins on fakes: it rests
     (0.5, 0.7, (False, True)),  # Dec loses badly: it rests
     (0.7, 0.5, (False, True)),  # Dis errs on real faces: Dec rests too
     (0.3, 0.7, (True, True)),  # both would rest: both learn
     (0.4, 0.6, (True, True))],  # on the band's edges: both learn
)  # fmt: skip
def test_equilibrium_decides_as_the_authors_trick(real, fake, want):
    assert equilibrium(torch.tensor(real), torch.tensor(fake), 0.5, 0.1) == want


@pytest.mark.parametrize("step", [algorithm1_step, algorithm1_step_fast])
@pytest.mark.parametrize("center, resting", [(50.0, "dis"), (-50.0, "dec")])
def test_the_network_the_trick_rests_does_not_move_and_the_others_do(
    batch, small_model, applied_update, step, center, resting
):
    """A centre far above every cross-entropy says Dis is winning; far below, Dec is losing."""
    cfg = StepConfig(equilibrium=True, eq_center=center, eq_margin=0.05)
    got = applied_update(step, small_model(), batch, cfg)
    for net in ("enc", "dec", "dis"):
        moved = max(d.abs().max().item() for d in got[net])
        assert (moved == 0) == (net == resting), (net, moved)


def test_joint_saturating_dec_leaves_out_log_dis_x_which_does_reach_dec(
    batch, small_model, applied_update, assert_same, gamma, max_error, scale_of
):
    """In one joint BatchNorm batch log Dis(x) depends on Dec, through the batch's statistics;
    decoder_gan_loss leaves it out (paper_vs_code.md). Pinned: Dec's update is Algorithm 1's
    full -grad(gamma L_llike - L_GAN) less exactly that term's gradient, which is not negligible."""
    model = small_model()
    cfg = StepConfig(gamma=gamma, gan_variant="saturating", dis_batch="joint")
    ref = copy.deepcopy(model)
    got = applied_update(algorithm1_step, model, batch, cfg)
    L = paper_losses(ref, batch, cfg)
    real_term = L["L_GAN_dec"] + L["L_GAN"]  # -log Dis(x): what L_GAN_dec lacks of -L_GAN
    full = grad_of(gamma * L["L_llike"] - L["L_GAN"], ref.dec)
    left_out = grad_of(real_term, ref.dec)
    assert_same(got["dec"], [f + t for f, t in zip(full, left_out, strict=True)], "Dec")
    assert max(t.abs().max().item() for t in left_out) > 1e-3 * scale_of(full)
    assert max_error(got["dec"], full) > 1e-3 * scale_of(full)


@pytest.mark.parametrize("step", [algorithm1_step, gan_step, algorithm1_step_fast, gan_step_fast])
def test_a_step_refuses_a_batch_that_does_not_fit_in_one_line(batch, small_model, step):
    """The exported steps took anything: uint8 images were torch's "expected scalar type Byte",
    64x64 images on a 32x32 model a matrix-size error from inside a network. The model's own
    check, as encode's, in one line; nothing moves."""
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    opts = {n: torch.optim.SGD(getattr(model, n).parameters()) for n in ("enc", "dec", "dis")}
    bad = {"takes float images in \\[-1, 1\\], got torch.uint8": (batch * 127).to(torch.uint8),
           r"takes \[B, 3, 32, 32\] images, got \[8, 3, 64, 64\]": F.interpolate(batch, size=64),
           "attribute vectors y given to a model that is not conditional": batch}  # fmt: skip
    for message, x in bad.items():
        y = torch.ones(len(x), 2, dtype=x.dtype) if "attribute" in message else None
        with pytest.raises(ValueError, match=message) as e:
            step(model, x, opts, StepConfig(), y=y)
        assert "\n" not in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_sample_takes_y_and_generator_by_name_only(small_model):
    """VAEGAN.sample and metrics.sample once took y and generator in opposite orders, so a
    Generator passed by position landed on y: both take them by name only, and agree."""
    model = small_model().float()
    for call in (lambda: model.sample(4, torch.Generator()),
                 lambda: metrics.sample(model, 4, torch.Generator())):  # fmt: skip
        with pytest.raises(TypeError, match="positional argument"):
            call()
    a = model.sample(4, generator=torch.Generator().manual_seed(0))
    b = metrics.sample(model, 4, generator=torch.Generator().manual_seed(0))
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b)


@pytest.mark.parametrize("step", [algorithm1_step, algorithm1_step_fast])
@pytest.mark.parametrize("metric", ["dis_l", "pixel"])
def test_llike_reduction_mean_averages_over_the_features(batch, small_model, step, metric):
    """``llike_reduction="mean"`` divides L_llike by its number of terms (Dis_l's features, or
    the pixels), in both steps: that the setting was read said nothing of whether it was used."""
    losses = {}
    for reduction in ("sum", "mean"):
        model = small_model()
        opts = {n: torch.optim.SGD(getattr(model, n).parameters(), lr=0.0)
                for n in ("enc", "dec", "dis")}  # fmt: skip
        torch.manual_seed(1)  # the same z for both
        stats = step(model, batch, opts, StepConfig(llike_reduction=reduction), metric=metric)
        losses[reduction] = stats["L_llike"].item()
    terms = model.dis.dis_l(batch[:1]).numel() if metric == "dis_l" else batch[0].numel()
    assert terms > 100
    assert losses["sum"] / losses["mean"] == pytest.approx(terms, rel=1e-9)
