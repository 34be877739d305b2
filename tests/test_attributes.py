"""Attribute vectors and their helpers (attributes.py) and the live widget (widgets.py).

A linear "model" makes the expected vectors exact: its code of an image is a fixed linear map of
the image's attributes, so mean(code | a) - mean(code | not a) is known in closed form.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vaegan_lite.attributes import (
    apply,
    attribute_success,
    attribute_vectors,
    combine,
    decode,
    edit,
    encode,
    interpolate,
    labelled_images,
)
from vaegan_lite.data import SyntheticFaces

NAMES = ["a", "b", "c"]


class LinearModel(nn.Module):
    """Enc(x) = W attrs(x) with the attributes written into the image's first pixels; Dec(z)
    writes W^+ z back, so attributes can be read off a decoded image."""

    latent_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[1.0, 0, 0], [0, 2, 0], [0, 0, 3], [1, 1, 1]]))

    def encode(self, x):
        y = x[:, 0, 0, :3]
        return y @ self.w.T, torch.full((len(x), 4), -2.0)

    def decode(self, z):
        y = z @ torch.linalg.pinv(self.w).T
        x = torch.zeros(len(z), 1, 1, 4)
        x[:, 0, 0, :3] = y
        return x


class ThresholdClassifier:
    """Reads attribute i as present when pixel i is above one half."""

    attr_names = NAMES

    def index(self, name):
        return NAMES.index(name)

    def predict(self, x):
        return x[:, 0, 0, :3] > 0.5


def _data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    attrs = (torch.rand(n, 3, generator=g) < 0.4).float()
    images = torch.zeros(n, 1, 1, 4)
    images[:, 0, 0, :3] = attrs
    return images, attrs


def test_vectors_are_differences_of_mean_codes():
    images, attrs = _data()
    model = LinearModel()
    vectors = attribute_vectors(model, (images, attrs, NAMES), n=150)
    assert list(vectors) == NAMES
    z = images[:150, 0, 0, :3] @ model.w.T.detach()
    for i, name in enumerate(NAMES):
        has = attrs[:150, i] > 0.5
        want = z[has].mean(0) - z[~has].mean(0)
        torch.testing.assert_close(vectors[name], want)


def test_sampled_vectors_are_close_to_mean_vectors():
    images, attrs = _data(2000)
    model = LinearModel()
    mean = attribute_vectors(model, (images, attrs, NAMES))
    torch.manual_seed(0)
    sampled = attribute_vectors(model, (images, attrs, NAMES), sampled=True)
    for name in NAMES:  # sigma = exp(-1) noise averaged over ~800 codes per side
        assert (sampled[name] - mean[name]).abs().max() < 0.06
        assert not torch.equal(sampled[name], mean[name])


def test_attribute_nobody_has_gets_no_vector():
    images, attrs = _data()
    attrs[:, 1] = 0
    assert "b" not in attribute_vectors(LinearModel(), (images, attrs, NAMES))


def test_apply_combine_interpolate():
    v = {"a": torch.tensor([1.0, 0]), "b": torch.tensor([0.0, 2])}
    z = torch.tensor([1.0, 1])
    torch.testing.assert_close(apply(z, v["a"], 2.0), torch.tensor([3.0, 1]))
    torch.testing.assert_close(apply(z[None].repeat(5, 1), v["a"]), torch.tensor([[2.0, 1]] * 5))
    steps = apply(z, v["b"], torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(steps, torch.tensor([[1.0, 1], [1, 2], [1, 3]]))
    assert apply(torch.zeros(4, 2), v["b"], torch.tensor([0.0, 1.0])).shape == (4, 2, 2)
    torch.testing.assert_close(combine(v, {"a": 1, "b": -0.5}), torch.tensor([1.0, -1]))
    torch.testing.assert_close(combine(v, {}), torch.zeros(2))
    path = interpolate(torch.zeros(2), torch.tensor([2.0, 4]), steps=3)
    torch.testing.assert_close(path, torch.tensor([[0.0, 0], [1, 2], [2, 4]]))


def test_edit_adds_the_attribute_exactly_for_a_linear_model():
    images, attrs = _data()
    model = LinearModel()
    vectors = attribute_vectors(model, (images, attrs, NAMES))
    x = images[attrs[:, 0] == 0][:5]
    out = edit(model, x, vectors["a"])
    # v_a = W e_a (attributes independent in expectation): the first pixel goes up by ~1
    assert ((out[:, 0, 0, 0] - x[:, 0, 0, 0]) > 0.7).all()
    torch.testing.assert_close(decode(model, encode(model, x)), x, atol=1e-5, rtol=0)


def test_attribute_success_counts_added_and_kept():
    images, attrs = _data(400)
    model = LinearModel()
    # Exact unit vectors: adding "a" flips a and leaves b, c alone.
    vectors = {n: model.w.detach()[:, i] for i, n in enumerate(NAMES)}
    r = attribute_success(model, ThresholdClassifier(), images, attrs, vectors, NAMES)
    for name, stats in r.items():
        assert stats["added"] == 1.0 and stats["kept"] == 1.0 and stats["both"] == 1.0, name
        assert stats["n"] == int((attrs[:, NAMES.index(name)] == 0).sum())
        assert stats["recon_has"] == 0.0
    # Half a vector is not enough to cross the classifier's threshold, and adding b as well
    # (a correlated vector) changes an "other" attribute.
    r = attribute_success(model, ThresholdClassifier(), images, attrs, vectors, NAMES, scale=0.4)
    assert r["a"]["added"] == 0.0
    mixed = {**vectors, "a": vectors["a"] + vectors["b"]}
    r = attribute_success(model, ThresholdClassifier(), images, attrs, mixed, ["a"], others=NAMES)
    lacks_b = float((attrs[attrs[:, 0] == 0, 1] == 0).float().mean())
    assert r["a"]["kept"] == pytest.approx(1 - lacks_b)


def test_labelled_images_from_synthetic_faces():
    images, attrs, names = labelled_images(SyntheticFaces(20, 32), 8)
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
    assert -1 <= images.min() and images.max() <= 1
    assert attrs.shape == (8, len(names)) and "Eyeglasses" in names


def test_live_widget_sliders_picker_switch_random_reset():
    pytest.importorskip("ipywidgets")
    from vaegan_lite.book.widgets import latent_arithmetic
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    torch.manual_seed(0)
    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    other = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    faces = torch.rand(3, 3, 32, 32) * 2 - 1
    vectors = {"Eyeglasses": torch.randn(8) * 3, "Smiling": torch.randn(8) * 3}
    with pytest.raises(KeyError, match="Bangs"):
        latent_arithmetic({"A": (model, vectors)}, faces, names=["Bangs"])
    box = latent_arithmetic({"A": (model, vectors), "B": (other, vectors)}, faces,
                            names=["Eyeglasses", "Smiling"])  # fmt: skip
    parts = box.parts
    png = lambda: bytes(parts["image"].value)  # noqa: E731
    original = lambda: bytes(parts["original"].value)  # noqa: E731
    first, first_original = png(), original()
    assert first.startswith(b"\x89PNG") and first_original.startswith(b"\x89PNG")
    # The original is as large as the edited face, and shows the picked face.
    assert parts["original"].width == parts["image"].width and int(parts["image"].width) >= 150
    parts["sliders"]["Eyeglasses"].value = 1.5
    moved = png()
    assert moved != first and original() == first_original
    parts["paper"]["Smiling"].click()  # the paper's s = 1
    assert parts["sliders"]["Smiling"].value == 1.0 and png() != moved
    parts["faces"][2].click()
    assert png() != moved and original() != first_original
    parts["reset"].click()
    assert parts["sliders"]["Eyeglasses"].value == 0.0
    parts["faces"][0].click()
    assert png() == first and original() == first_original
    parts["switch"].value = "B"
    assert png() != first and original() == first_original  # another decoder, the same face
    parts["switch"].value = "A"
    assert png() == first
    # A random face: the original is the decoded sample Dec(z_p), not a grey square.
    parts["random"].click()
    assert png() != first and original() != first_original
    grey = latent_arithmetic({"A": (model, vectors)}, torch.zeros(1, 3, 32, 32),
                             names=["Smiling"]).parts["original"].value  # fmt: skip
    assert original() != bytes(grey)
    sample = original()
    parts["switch"].value = "B"  # the same z_p, drawn by the other decoder
    assert original() != sample
