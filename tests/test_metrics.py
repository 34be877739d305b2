"""vaegan_lite.metrics: per-image MSE and sharpness."""

from __future__ import annotations

import importlib
import math
import re

import pytest
import torch
import torch.nn.functional as F

from vaegan_lite import attributes
from vaegan_lite.book import experiments
from vaegan_lite.metrics import laplacian, matching_blur, mse, reconstruct, sample, sharpness


def _images(b: int = 4, c: int = 3, s: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, s, s, generator=g) * 2 - 1


def _blur(x: torch.Tensor) -> torch.Tensor:
    """3x3 box blur per channel, same size (replicate padding)."""
    c = x.shape[1]
    k = torch.full((c, 1, 3, 3), 1 / 9)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=c)


def test_mse_per_image():
    x = _images()
    y = x.clone()
    y[1] += 0.5  # only image 1 changes, by 0.5 everywhere
    m = mse(x, y)
    assert m.shape == (4,)
    torch.testing.assert_close(m, torch.tensor([0.0, 0.25, 0.0, 0.0]))


def test_mse_matches_torch_and_is_symmetric():
    x, y = _images(seed=1), _images(seed=2)
    torch.testing.assert_close(mse(x, y).mean(), F.mse_loss(x, y))
    torch.testing.assert_close(mse(x, y), mse(y, x))


def test_mse_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        mse(_images(s=16), _images(s=8))


def test_sharpness_zero_on_constant_and_ramp_images():
    flat = torch.full((2, 3, 8, 8), 0.3)
    ramp = torch.linspace(-1, 1, 8).expand(2, 3, 8, 8).clone()  # linear: Laplacian is 0
    torch.testing.assert_close(sharpness(flat), torch.zeros(2))
    torch.testing.assert_close(sharpness(ramp), torch.zeros(2), atol=1e-10, rtol=0)


def test_sharpness_of_one_bright_pixel():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    # Laplacian on the 3x3 interior: -4 at the centre, 1 at its 4 neighbours, 0 at the corners.
    assert laplacian(x).shape == (1, 1, 3, 3)
    torch.testing.assert_close(sharpness(x), torch.tensor([(16.0 + 4.0) / 9.0]))


def test_blur_lowers_sharpness():
    x = _images(b=8)
    assert (sharpness(_blur(x)) < sharpness(x)).all()


def test_sharpness_scales_with_contrast_squared():
    x = _images()
    torch.testing.assert_close(sharpness(0.5 * x), 0.25 * sharpness(x))


def test_metrics_do_not_track_gradients():
    x = _images().requires_grad_()
    assert not sharpness(x).requires_grad
    assert not mse(x, x.detach()).requires_grad


def test_face_fd_ranks_real_faces_closest():
    """FD in the shipped classifier's features: another draw of real faces is far closer to the
    faces than blurred or noisy copies are, and the distance of a set to itself is ~0."""
    from vaegan_lite.data import SyntheticFaces
    from vaegan_lite.images import to_unit_range
    from vaegan_lite.metrics import face_fd
    from vaegan_lite.shipped import pretrained

    faces = SyntheticFaces(800, 32, seed=7)
    a, _ = faces.render(range(400))
    b, _ = faces.render(range(400, 800))
    a, b = to_unit_range(a), to_unit_range(b)
    g = torch.Generator().manual_seed(0)
    noisy = (b + 0.3 * torch.randn(b.shape, generator=g)).clamp(-1, 1)
    judge = pretrained("attribute-classifier")
    same, other = face_fd(a, a, judge), face_fd(a, b, judge)
    assert abs(same) < 1e-6
    assert 0 < other < face_fd(a, _blur(_blur(b)), judge) and other < face_fd(a, noisy, judge)


def test_texture_fd_ranks_real_faces_closest_and_is_seeded():
    """The texture FD chapter 6 ranks sharpness with: a set is at ~0 from itself, another draw of
    real faces closer than blurred or noisy copies of it; its features are fixed by their seed."""
    from vaegan_lite.data import SyntheticFaces
    from vaegan_lite.images import to_unit_range
    from vaegan_lite.metrics import random_features, texture_fd

    faces = SyntheticFaces(800, 32, seed=7)
    a, b = (to_unit_range(faces.render(r)[0]) for r in (range(400), range(400, 800)))
    g = torch.Generator().manual_seed(0)
    noisy = (b + 0.3 * torch.randn(b.shape, generator=g)).clamp(-1, 1)
    same, other = texture_fd(a, a), texture_fd(a, b)
    assert abs(same) < 1e-6
    assert 0 < other < texture_fd(a, _blur(_blur(b))) and other < texture_fd(a, noisy)
    assert torch.equal(random_features(a[:8], seed=3), random_features(a[:8], seed=3))
    assert not torch.equal(random_features(a[:8], seed=3), random_features(a[:8], seed=4))


def test_face_fd_refuses_non_images():
    from vaegan_lite.metrics import face_fd

    with pytest.raises(ValueError, match="face_fd"):
        face_fd(torch.zeros(10, 5), torch.zeros(10, 5), torch.nn.Identity())


@pytest.mark.parametrize("measure", ["reconstruct", "sample", "encode", "decode", "dis_features",
                                     "feature_error", "fooled"])
def test_measuring_a_model_in_training_leaves_it_as_it_was(small_model, measure):
    """The passes that measure a model run in eval mode (BatchNorm's running statistics, not the
    batch's) and leave a model that is still training in training mode, its statistics untouched."""
    model = small_model().float().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, z = _images(8, 3, model.image_size), torch.zeros(8, model.latent_dim)
    run = {"reconstruct": lambda: reconstruct(model, x), "sample": lambda: sample(model, 8),
           "encode": lambda: attributes.encode(model, x),
           "decode": lambda: attributes.decode(model, z),
           "dis_features": lambda: experiments.dis_features(model, x),
           "feature_error": lambda: experiments.feature_error(model, x),
           "fooled": lambda: experiments.fooled(model, 8)}  # fmt: skip
    one = run[measure]()
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    if measure in ("encode", "decode", "dis_features"):  # no noise drawn: the same in eval mode
        model.eval()
        assert torch.equal(one, run[measure]())
    if measure == "dis_features":  # a face's features do not depend on the batch it comes in
        assert torch.allclose(experiments.dis_features(model, x[:4]), one[:4], atol=1e-6)


def test_matching_blur_reads_the_ruler_back():
    """The data blurred by sigma is matched by a blur of about sigma; the data itself by none."""
    from torchvision.transforms.functional import gaussian_blur

    g = torch.Generator().manual_seed(0)
    data = F.avg_pool2d(torch.rand(16, 3, 32, 32, generator=g), 2).repeat_interleave(2, -1)
    data = data.repeat_interleave(2, -2) * 2 - 1  # blocky faces stand-in: edges of all kinds
    for sigma in (0.5, 1.0, 2.0, 2.8):  # the wide blurs too, whole Gaussians (3 sigma a side)
        blurred = gaussian_blur(data, kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)
        assert abs(matching_blur(blurred, data) - sigma) <= 0.1, sigma
    assert matching_blur(data, data) == pytest.approx(0.1)  # the ruler's first mark
    assert matching_blur(torch.zeros(4, 3, 32, 32), data) == float("inf")  # no edges at all
    # the data's mean from its first `sample` images: half of them read as half of them
    blurred = gaussian_blur(data, kernel_size=7, sigma=1.0)
    mixed = torch.cat([data[:8], blurred[8:]])
    assert matching_blur(blurred, mixed, sample=8) == matching_blur(blurred, data[:8])
    assert matching_blur(blurred, mixed, sample=8) != matching_blur(blurred, mixed)


def test_diversity_is_zero_for_one_image_repeated_and_refuses_a_single_image():
    from vaegan_lite.metrics import diversity

    x = torch.rand(1, 3, 8, 8).repeat(5, 1, 1, 1)
    assert diversity(x) == 0.0
    assert diversity(torch.rand(64, 3, 8, 8)) == pytest.approx((1 / 12) ** 0.5, rel=0.1)  # U(0,1)
    with pytest.raises(ValueError, match="diversity"):
        diversity(x[:1])


def test_uint8_images_and_single_samples_are_refused_in_one_line():
    """A data set's uint8 images were measured on the 0-255 scale without a word, and a Frechet
    distance of one sample was NaN."""
    from vaegan_lite.metrics import diversity, frechet_distance, inception_scores, texture_fd

    x = torch.full((4, 3, 8, 8), 128, dtype=torch.uint8)
    calls = {"sharpness": lambda: sharpness(x), "mse": lambda: mse(x, x),
             "texture_fd": lambda: texture_fd(x, x), "diversity": lambda: diversity(x),
             "inception_scores": lambda: inception_scores(x, x)}  # fmt: skip
    for who, call in calls.items():
        with pytest.raises(ValueError, match=rf"^{who} takes float images in .*to_unit_range"):
            call()
    with pytest.raises(ValueError) as e:
        sharpness(x)
    cure = re.search(r"\((vaegan_lite\.[\w.]+)\.(\w+) turns", str(e.value))
    assert hasattr(importlib.import_module(cure[1]), cure[2]), f"{cure[0]}: no such function"
    with pytest.raises(ValueError, match="at least 2 samples a set, got 1 and 5"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))


def test_frechet_distance_with_correlated_features_matches_the_product_route():
    """Correlated features (full covariances that do not commute): the cross term
    tr((S_a^1/2 S_b S_a^1/2)^1/2) equals the sum of the square roots of S_a S_b's eigenvalues,
    computed here by another route than frechet_distance's."""
    from vaegan_lite.metrics import frechet_distance

    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 4, generator=g, dtype=torch.float64) @ torch.randn(4, 4, generator=g,
                                                                            dtype=torch.float64)
    b = torch.randn(400, 4, generator=g, dtype=torch.float64) @ torch.randn(4, 4, generator=g,
                                                                            dtype=torch.float64) + 1
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    assert not torch.allclose(s_a @ s_b, s_b @ s_a, atol=1e-3)  # they do not commute
    assert (s_a - torch.diag(s_a.diagonal())).abs().max() > 0.5  # off-diagonal terms matter
    cross = torch.linalg.eigvals(s_a @ s_b).real.clamp_min(0).sqrt().sum()
    want = (a.mean(0) - b.mean(0)).pow(2).sum() + s_a.trace() + s_b.trace() - 2 * cross
    assert frechet_distance(a, b) == pytest.approx(float(want), rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("kind", ["vaegan", "avae"])
def test_evaluate_measures_the_reconstructions(kind):
    """evaluate's reconstruction numbers are those of the reconstructions themselves, drawn as
    reconstruct draws them from a generator seeded with ``seed``: the test faces' own sharpness or
    judge accuracy in their place would look like a perfect model."""
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.data import SyntheticFaces
    from vaegan_lite.images import to_unit_range
    from vaegan_lite.metrics import evaluate
    from vaegan_lite.models import model_spec
    from vaegan_lite.shipped import pretrained

    torch.manual_seed(0)
    # AVAE with a xi: its reconstructions depend on the generator, so the seed is checked too
    cfg = ModelConfig(model=kind, image_size=32, width=0.125, latent_dim=8,
                      xi_dim=4 if kind == "avae" else 0)  # fmt: skip
    model = model_spec(kind).build(cfg).eval()
    images, y = SyntheticFaces(24, 32, seed=3).render(range(24))
    x = to_unit_range(images)
    judge = pretrained("attribute-classifier")
    got = evaluate(model, x, judge, seed=5, y_test=y)
    recon = reconstruct(model, x, torch.Generator().manual_seed(5))
    right = judge.predict(recon) == (y > 0.5)
    want = {"mse": float(mse(recon, x).mean()), "recon_sharpness": float(sharpness(recon).mean()),
            "recon_judge_acc": float(right.float().mean())}  # fmt: skip
    assert {k: got[k] for k in want} == pytest.approx(want, rel=1e-6)
    if kind == "avae":  # another seed draws another xi: the figures above are seed 5's
        assert not torch.equal(reconstruct(model, x, torch.Generator().manual_seed(6)), recon)
    # the test faces' own numbers are far from these: the check above tells them apart
    assert float(sharpness(x).mean()) != pytest.approx(want["recon_sharpness"], rel=0.1)
    assert float((judge.predict(x) == (y > 0.5)).float().mean()) > want["recon_judge_acc"] + 0.05


def test_code_kl_is_nats_per_image_over_batches_of_any_size(monkeypatch):
    """code_kl is KL(N(mu, exp(logvar)) || N(0, I)) summed over latent units, mean over images,
    however the images fall into batches (a last, shorter batch weighs what it holds)."""
    from vaegan_lite import metrics

    class Codes(torch.nn.Module):
        """encode(x) = (x[:, :3], x[:, 3:]): the images are their own codes."""

        def encode(self, x):
            return x[:, :3], x[:, 3:]

    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 6, generator=g, dtype=torch.float64)
    x[0] += 3  # one image far from the rest: the batches differ
    mu, logvar = x[:, :3], x[:, 3:]
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    want = float(torch.distributions.kl_divergence(q, p).sum(1).mean())
    assert metrics.code_kl(Codes(), x) == pytest.approx(want, rel=1e-9)
    monkeypatch.setattr(metrics, "BATCH", 3)  # batches of 3, 3 and 1
    assert metrics.code_kl(Codes(), x) == pytest.approx(want, rel=1e-9)
