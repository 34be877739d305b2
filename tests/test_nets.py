"""Table 1: shapes, parameter counts, BatchNorm settings; the losses against torch.distributions."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaegan_lite import Decoder, Discriminator, Encoder, gan_loss, llike_loss, prior_loss
from vaegan_lite.config import ModelConfig, StepConfig
from vaegan_lite.images import to_unit_range
from vaegan_lite.losses import decoder_gan_loss
from vaegan_lite.models import VAEGAN
from vaegan_lite.models.vaegan import algorithm1_step


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def conv(c_in, c_out, bias=False):
    return c_in * c_out * 25 + (c_out if bias else 0)


def bn(c):
    return 2 * c


def test_table1_parameter_counts_at_64():
    enc = Encoder(64, latent_dim=128, fc_dim=2048)
    want = conv(3, 64) + bn(64) + conv(64, 128) + bn(128) + conv(128, 256) + bn(256)
    want += 256 * 8 * 8 * 2048 + bn(2048) + 2 * (2048 * 128 + 128)
    assert n_params(enc) == want
    dec = Decoder(64, latent_dim=128)
    want = 128 * 8 * 8 * 256 + bn(8 * 8 * 256)
    want += conv(256, 256) + bn(256) + conv(256, 128) + bn(128) + conv(128, 32) + bn(32)
    want += conv(32, 3, bias=True)
    assert n_params(dec) == want
    dis = Discriminator(64)
    want = conv(3, 32, bias=True) + conv(32, 128) + bn(128) + conv(128, 256) + bn(256)
    want += conv(256, 256) + bn(256) + 256 * 8 * 8 * 512 + bn(512) + 512 + 1
    assert n_params(dis) == want
    # The authors' code used a 1024-unit encoder fc layer.
    assert n_params(Encoder(64, fc_dim=1024)) < n_params(enc)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_shapes(size):
    x = torch.rand(2, 3, size, size) * 2 - 1
    enc, dec = Encoder(size, 16, width=0.125), Decoder(size, 16, 0.125)
    dis = Discriminator(size, 0.125)
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (2, 16)
    out = dec(mu)
    assert out.shape == x.shape and out.abs().max() <= 1
    logits, feats = dis(x)
    assert logits.shape == (2,)
    side = size // 8  # Dis_l: after 3 stride-2 convs
    assert feats.shape == (2, 32, side, side)
    assert torch.equal(dis.dis_l(x), feats)


def test_dis_l_is_the_4th_conv_before_bn_at_64():
    dis = Discriminator(64)
    x = torch.rand(2, 3, 64, 64)
    _, feats = dis(x)
    assert feats.shape == (2, 256, 8, 8)
    h = dis.blocks[2](dis.blocks[1](dis.blocks[0](x)))
    assert torch.allclose(feats, dis.blocks[3][0](h))
    assert Discriminator(64, dis_layer=2)(x)[1].shape == (2, 128, 32, 32)
    with pytest.raises(ValueError, match="dis_layer"):
        Discriminator(64, dis_layer=5)


def test_no_bias_before_batchnorm_and_momentum():
    for net in (Encoder(32, 8, 0.125), Decoder(32, 8, 0.125), Discriminator(32, 0.125)):
        mods = list(net.modules())
        for a, b in zip(mods, mods[1:], strict=False):
            if isinstance(b, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                assert b.momentum == 0.1
                assert getattr(a, "bias", None) is None, f"{a} has a bias before {b}"


def test_bad_image_size():
    with pytest.raises(ValueError, match="image_size 48"):
        Encoder(48)


def test_conditional_nets_take_y():
    y = torch.ones(2, 5)
    enc, dec = Encoder(32, 8, 0.125, 64, cond_dim=5), Decoder(32, 8, 0.125, cond_dim=5)
    dis = Discriminator(32, 0.125, cond_dim=5)
    x = torch.rand(2, 3, 32, 32)
    mu, _ = enc(x, y)
    assert dec(mu, y).shape == x.shape and dis(x, y)[0].shape == (2,)
    with pytest.raises(ValueError, match="pass y"):
        enc(x)


@pytest.mark.parametrize("model", ["vaegan", "avae"])
def test_public_model_methods_say_what_shape_they_take(model):
    """A wrong image size, channel count, code size or n was a raw torch error from inside a
    network ("mat1 and mat2 shapes cannot be multiplied"); the check reads shapes only."""
    from vaegan_lite.bench import HostReads
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import model_spec

    cfg = ModelConfig(model=model, image_size=64, width=0.125, latent_dim=8, xi_dim=2)
    m = model_spec(model).build(cfg).eval()
    for x in (torch.zeros(2, 3, 32, 32), torch.zeros(2, 1, 64, 64), torch.zeros(3, 64, 64)):
        with pytest.raises(ValueError, match=r"^model takes \[B, 3, 64, 64\] images, got \["):
            m.reconstruct(x)
    with pytest.raises(ValueError, match=r"takes \[B, 8\] codes z, got \[2, 5\]"):
        m.decode(torch.zeros(2, 5))
    for n in (-1, 2.5, True):
        with pytest.raises(ValueError, match="^n must be a whole number >= 0"):
            m.sample(n)
    if model == "avae":
        with pytest.raises(ValueError, match=r"takes \[B, 2\] noise xi, got \[2, 3\]"):
            m.generate(torch.zeros(2, 8), torch.zeros(2, 3))
    with HostReads() as reads:
        assert m.reconstruct(torch.zeros(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    assert reads.count == 0


def test_attribute_vectors_that_do_not_fit_are_refused_in_one_line():
    """y for an unconditional model was silently ignored; y of another length than the batch was
    a size error from torch.cat inside a network."""
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    plain = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    with pytest.raises(ValueError, match=r"^attribute vectors y given to a model that is not "):
        plain.sample(2, y=torch.ones(2, 5))
    cond = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8, cond_dim=5)).eval()
    with pytest.raises(ValueError, match=r"^2 attribute vectors y for 4 images or codes$"):
        cond.sample(4, y=torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"^2 attribute vectors y for 3 images or codes$"):
        cond.reconstruct(torch.zeros(3, 3, 32, 32), torch.ones(2, 5))
    assert cond.sample(2, y=torch.ones(2, 5)).shape == (2, 3, 32, 32)
    from vaegan_lite.models import AVAE

    avae = AVAE(ModelConfig(model="avae", image_size=32, width=0.125, latent_dim=8)).eval()
    for call in (lambda: avae.sample(2, y=torch.ones(2, 5)),
                 lambda: avae.reconstruct(torch.zeros(2, 3, 32, 32), torch.ones(2, 5))):
        with pytest.raises(ValueError, match=r"^attribute vectors y given to a model that is not"):
            call()


@pytest.mark.parametrize("model", ["vaegan", "avae"])
def test_sampling_and_reconstructing_leave_a_model_in_training_as_it_was(model):
    """They are for looking and measuring: in eval mode (BatchNorm's running statistics, not the
    batch's: one image works too), and a model still training keeps its mode and statistics."""
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import model_spec

    m = model_spec(model).build(ModelConfig(model=model, image_size=32, width=0.125,
                                            latent_dim=8)).train()  # fmt: skip
    before = {k: v.clone() for k, v in m.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    x = m.sample(1, generator=g)  # one image: BatchNorm in training mode would refuse it
    m.reconstruct(torch.rand(3, 3, 32, 32) * 2 - 1)
    assert x.shape == (1, 3, 32, 32) and m.training and all(k.training for k in m.modules())
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())


@pytest.mark.parametrize("model", ["vaegan", "avae"])
def test_uint8_images_are_refused_with_the_cure(model):
    """A data set's uint8 images straight into a net were torch's "expected scalar type Byte
    but found Float", which names neither the range the nets take nor to_unit_range."""
    from vaegan_lite.classifier import AttributeClassifier, ClassifierConfig
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import model_spec

    cfg = ModelConfig(model=model, image_size=32, width=0.125, latent_dim=8)
    m = model_spec(model).build(cfg).eval()
    judge = AttributeClassifier(ClassifierConfig(image_size=32, width=4, feature_dim=8)).eval()
    x = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    for call in (m.reconstruct, m.encode, judge.predict):
        with pytest.raises(ValueError, match=r"float images in \[-1, 1\], got torch.uint8 .*"
                                             "to_unit_range"):  # fmt: skip
            call(x)
    assert m.reconstruct(to_unit_range(x)).shape == x.shape


def test_prior_loss_is_the_kl_of_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros(10), torch.ones(10))
    assert torch.allclose(prior_loss(mu, logvar), kl_divergence(q, p).sum(1).mean(), atol=1e-5)
    assert prior_loss(torch.zeros(4, 3), torch.zeros(4, 3)) == 0


def test_llike_loss_is_a_gaussian_nll():
    g = torch.Generator().manual_seed(1)
    x, r = torch.randn(4, 3, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g)
    sigma = 0.3
    nll = -Normal(r, sigma).log_prob(x).flatten(1).sum(1).mean()
    const = 0.5 * 75 * math.log(2 * math.pi * sigma**2)
    assert torch.allclose(llike_loss(x, r, sigma) + const, nll, atol=1e-4)
    assert torch.allclose(llike_loss(x, r, reduction="mean"), llike_loss(x, r) / 75)


def test_gan_loss_signs():
    real, fake = torch.full((4,), 5.0), torch.full((4,), -5.0)
    # A confident, correct Dis has a small L_GAN (the cross-entropy it minimises).
    assert gan_loss(real, fake, fake) < 0.03
    assert gan_loss(fake, real, real) > 14
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    want = bce(real, torch.ones(4)) + bce(fake, torch.zeros(4))
    assert torch.allclose(gan_loss(real, None, fake), want)
    assert torch.allclose(decoder_gan_loss(None, fake, "saturating"), -bce(fake, torch.zeros(4)))
    assert torch.allclose(decoder_gan_loss(None, fake, "non_saturating"), bce(fake, torch.ones(4)))


def test_decoder_gan_loss_without_logits_says_what_it_takes():
    """It was a bare StopIteration from inside the function."""
    with pytest.raises(ValueError, match=r"^decoder_gan_loss: give Dis's logits"):
        decoder_gan_loss(None, None)


def test_a_conditional_step_takes_float64_attributes():
    """Attribute vectors of another float dtype than the nets' (float64 labels from numpy)."""
    torch.manual_seed(0)
    m = VAEGAN(ModelConfig(model="vaegan", image_size=32, width=0.125, latent_dim=8,
                           enc_fc_dim=64, cond_dim=5)).train()
    opts = {n: torch.optim.SGD(getattr(m, n).parameters(), lr=1e-3) for n in ("enc", "dec", "dis")}
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y = (torch.rand(4, 5) < 0.5).double()
    stats = algorithm1_step(m, x, opts, StepConfig(), y=y)
    assert bool(stats["ok"])


def test_width_rounds_channel_counts_to_the_nearest():
    """Width scales channel counts to the nearest whole number (checkpoints depend on it)."""
    dis = Discriminator(32, width=0.33)
    assert dis.blocks[0][0].out_channels == round(32 * 0.33) == 11
    enc = Encoder(32, 8, width=0.33, fc_dim=64)
    assert enc.convs[2][0].out_channels == round(256 * 0.33) == 84


def test_dis_l_at_layer_1_is_before_the_relu_in_forward_too():
    """Dis_l at dis_layer=1 is the first conv's output before its ReLU, as forward returns
    it."""
    torch.manual_seed(0)
    dis = Discriminator(32, width=0.125, dis_layer=1).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    _, dis_l = dis(x)
    assert (dis_l < 0).any()  # not ReLU'd
    assert torch.equal(dis_l, dis.dis_l(x))


def test_gaussian_constant_is_the_normal_log_density_at_its_mean():
    """The constant llike_loss leaves out is -log N(x | x, sigma^2 I)."""
    from vaegan_lite.losses import gaussian_log_density_constant
    for d, sigma in ((1, 1.0), (16384, 1.0), (12, 0.1)):
        normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64),
                                            torch.tensor(sigma, dtype=torch.float64))
        want = -normal.log_prob(torch.zeros(d, dtype=torch.float64)).sum()
        assert gaussian_log_density_constant(d, sigma) == pytest.approx(float(want), rel=1e-12)


def test_a_gan_refuses_to_encode_with_its_untrained_encoder():
    """Every model is a VAEGAN with an Enc, but a GAN never trains its own: codes, reconstructions
    and attribute vectors from it are refused in one line, not random numbers; it samples."""
    from vaegan_lite import attributes

    gan = VAEGAN(ModelConfig(model="gan", image_size=32, width=0.125, latent_dim=8)).eval()
    x = torch.zeros(2, 3, 32, 32)
    for call in (lambda: gan.encode(x), lambda: gan.reconstruct(x),
                 lambda: attributes.edit(gan, x, torch.zeros(8))):  # fmt: skip
        with pytest.raises(ValueError, match=r"^a GAN \(model 'gan'\) trains no encoder"):
            call()
    assert gan.sample(2).shape == (2, 3, 32, 32)
    for name in ("vae", "vae_disl", "vaegan_dis0", "vaegan"):
        model = VAEGAN(ModelConfig(model=name, image_size=32, width=0.125, latent_dim=8)).eval()
        assert model.reconstruct(x).shape == x.shape
        with pytest.raises(ValueError, match=r"^apply: a vector of shape \[7\] for codes of "
                                             r"shape \[2, 8\]: it must have the codes' 8 numbers"):
            attributes.edit(model, x, torch.zeros(7))


def test_sampling_zero_images_is_an_empty_batch():
    """Sampling no images is an empty batch, not an error."""
    m = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8))
    assert m.sample(0).shape == (0, 3, 32, 32)


@pytest.mark.parametrize("model", ["vaegan", "avae"])
def test_sampling_and_reconstructing_leave_a_model_in_eval_mode_as_it_was(model):
    """A loaded model is in eval mode: sampling or reconstructing with it must not switch it to
    training, where its next forward pass would use (and move) the batch's statistics."""
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import model_spec

    m = model_spec(model).build(ModelConfig(model=model, image_size=32, width=0.125,
                                            latent_dim=8)).eval()  # fmt: skip
    m.sample(2, generator=torch.Generator().manual_seed(0))
    assert not any(k.training for k in m.modules())
    m.reconstruct(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert not any(k.training for k in m.modules())
