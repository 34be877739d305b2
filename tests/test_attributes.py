"""Attribute vectors and their helpers (attributes.py) and the live widget (widgets.py).

A linear "model" makes the expected vectors exact: its code of an image is a fixed linear map of
the image's attributes, so mean(code | a) - mean(code | not a) is known in closed form.
"""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image
from torch import nn

from vaegan_lite.attributes import (
    BAR,
    EditRules,
    apply,
    attribute_success,
    attribute_vectors,
    bar_summary,
    combine,
    decode,
    edit,
    edit_rules,
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


def test_attribute_everybody_has_gets_no_vector():
    """With no image lacking it there is no mean code without it: its vector was NaN, and a NaN
    added to a code decodes to a NaN face."""
    images, attrs = _data()
    attrs[:, 1] = 1
    vectors = attribute_vectors(LinearModel(), (images, attrs, NAMES))
    assert list(vectors) == ["a", "c"] and all(v.isfinite().all() for v in vectors.values())


class NoisyCodes(nn.Module):
    """q(z|x) = N(mu, exp(logvar)) with the same mu and logvar for every image."""

    latent_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.tensor([0.0, 1.0, -2.0, 3.0]))
        self.logvar = torch.tensor([-2.0, -1.0, 1.0, 2.0])  # log(sigma^2); 0 would not tell

    def encode(self, x):
        return self.mu.expand(len(x), 4), self.logvar.expand(len(x), 4)


def test_sampled_codes_are_drawn_with_the_posterior_standard_deviation():
    """Sampled codes are mu + exp(logvar / 2) eps: logvar is the log of the variance, so a noise
    scale of exp(logvar) would be the variance, too narrow below logvar 0 and too wide above."""
    model = NoisyCodes()
    torch.manual_seed(0)
    z = encode(model, torch.zeros(20000, 1, 1, 1), batch_size=3000, sampled=True)
    torch.testing.assert_close(z.std(0), (0.5 * model.logvar).exp(), rtol=0.03, atol=0)
    torch.testing.assert_close(z.mean(0), model.mu.detach(), atol=0.05, rtol=0)
    assert torch.equal(encode(model, torch.zeros(3, 1, 1, 1)), model.mu.detach().expand(3, 4))


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


def test_names_and_steps_that_cannot_be_are_said_in_one_line():
    images, attrs = _data()
    with pytest.raises(ValueError, match="no attribute 'Typo' in the data set; it has a, b, c"):
        attribute_vectors(LinearModel(), (images, attrs, NAMES), names=["a", "Typo"])
    v = {"a": torch.tensor([1.0, 0])}
    with pytest.raises(ValueError, match="no vector for 'b'; there are vectors for a"):
        combine(v, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="steps must be >= 2"):
        interpolate(torch.zeros(2), torch.ones(2), steps=1)


def test_held_out_synthetic_faces_refuse_a_model_of_other_data():
    from types import SimpleNamespace

    from vaegan_lite.attributes import held_out_faces
    from vaegan_lite.config import TrainConfig

    model = SimpleNamespace(train_config=TrainConfig(data="folder", data_root="x"), image_size=32)
    with pytest.raises(ValueError, match="trained on 'folder'.*load_split"):
        held_out_faces(model, 4)
    # a model made by hand has no train_config: which faces it saw is unknown, said in one line
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    with pytest.raises(ValueError, match="the model has no train_config; use one from train"):
        held_out_faces(VAEGAN(ModelConfig(image_size=32, width=0.125)), 4)


def test_edit_adds_the_attribute_exactly_for_a_linear_model():
    images, attrs = _data()
    model = LinearModel()
    vectors = attribute_vectors(model, (images, attrs, NAMES))
    x = images[attrs[:, 0] == 0][:5]
    out = edit(model, x, vectors["a"])
    # v_a = W delta with delta = mean(attrs | a) - mean(attrs | not a), and W^+ W = I: every
    # face moves by delta exactly, about 1 on pixel a and about 0 on b and c (independent)
    has = attrs[:, 0] > 0.5
    delta = attrs[has].mean(0) - attrs[~has].mean(0)
    torch.testing.assert_close(out[:, 0, 0, :3] - x[:, 0, 0, :3], delta.expand(len(x), 3),
                               atol=1e-5, rtol=0)  # fmt: skip
    assert delta[0] == 1 and delta[1:].abs().max() < 0.2
    torch.testing.assert_close(decode(model, encode(model, x)), x, atol=1e-5, rtol=0)


def test_attribute_success_counts_added_and_kept():
    images, attrs = _data(400)
    model = LinearModel()
    rules = edit_rules(attrs, NAMES)  # independent attributes: nothing required, swapped or tied
    assert all(not rules.requires[n] and not rules.swaps[n] and not rules.tied[n] for n in NAMES)
    # Exact unit vectors: adding "a" flips a and leaves b, c alone.
    vectors = {n: model.w.detach()[:, i] for i, n in enumerate(NAMES)}
    r = attribute_success(model, ThresholdClassifier(), images, attrs, vectors, NAMES, rules)
    for name, stats in r.items():
        assert stats["added"] == 1.0 and stats["kept"] == 1.0 and stats["both"] == 1.0, name
        assert stats["n"] == int((attrs[:, NAMES.index(name)] == 0).sum())
        assert stats["recon_has"] == 0.0 and set(stats["changed"]) == set(NAMES) - {name}
    # Half a vector is not enough to cross the classifier's threshold, and adding b as well
    # (a correlated vector) changes an "other" attribute.
    r = attribute_success(model, ThresholdClassifier(), images, attrs, vectors, NAMES, rules, 0.4)
    assert r["a"]["added"] == 0.0
    mixed = {**vectors, "a": vectors["a"] + vectors["b"]}
    r = attribute_success(model, ThresholdClassifier(), images, attrs, mixed, ["a"], rules)
    lacks_b = float((attrs[attrs[:, 0] == 0, 1] == 0).float().mean())
    assert r["a"]["kept"] == pytest.approx(1 - lacks_b)
    assert r["a"]["changed"]["b"] == pytest.approx(lacks_b) and r["a"]["changed"]["c"] == 0
    # An attribute the judge does not read reliably is not asked to stay put.
    shaky = edit_rules(attrs, NAMES, {"a": 1.0, "b": 0.9, "c": 0.99})
    assert shaky.reliable == ("a", "c") and shaky.others("a") == ["c"]
    r = attribute_success(model, ThresholdClassifier(), images, attrs, mixed, ["a"], shaky)
    assert r["a"]["kept"] == 1.0 and set(r["a"]["changed"]) == {"c"}


def _faces_like(n=4000, seed=0):
    """Labels with the synthetic faces' kinds of structure: a mustache only on a man, one hair
    colour per face, a smile that mostly comes with an open mouth, an independent hat."""
    g = torch.Generator().manual_seed(seed)
    u = lambda: torch.rand(n, generator=g)  # noqa: E731
    man = u() < 0.45
    mustache = man & (u() < 0.45)
    hair = torch.randint(0, 3, (n,), generator=g)
    smile = u() < 0.45
    open_ = torch.where(smile, u() < 0.8, u() < 0.1)
    hat = u() < 0.2
    names = ["Male", "Mustache", "Black", "Blond", "Brown", "Smiling", "Open", "Hat"]
    cols = [man, mustache, hair == 0, hair == 1, hair == 2, smile, open_, hat]
    return torch.stack(cols, 1).float(), names


def test_edit_rules_read_requirements_swaps_and_ties_off_the_labels():
    labels, names = _faces_like()
    rules = edit_rules(labels, names, {n: 0.9 if n == "Hat" else 0.99 for n in names})
    assert rules.requires == {n: (("Male",) if n == "Mustache" else ()) for n in names}
    assert rules.swaps["Black"] == ("Blond", "Brown") and rules.swaps["Blond"] == ("Black", "Brown")
    assert rules.swaps["Male"] == rules.swaps["Hat"] == rules.swaps["Mustache"] == ()
    assert rules.tied["Smiling"] == ("Open",) and "Mustache" in rules.tied["Male"]
    assert rules.tied["Hat"] == ()
    assert rules.reliable == tuple(n for n in names if n != "Hat")
    # Kept: the reliable attributes, minus the target, its tied and its swapped ones.
    assert rules.others("Black") == ["Male", "Mustache", "Smiling", "Open"]
    assert rules.others("Smiling") == ["Male", "Mustache", "Black", "Blond", "Brown"]
    # ... and minus what a tied attribute swaps: age brings gray hair, which replaces the others.
    four = ("Old", "Gray", "Dark", "Hat")
    swaps = {"Old": (), "Gray": ("Dark",), "Dark": ("Gray",), "Hat": ()}
    tied = {"Old": ("Gray",), "Gray": ("Old",), "Dark": (), "Hat": ()}
    aged = EditRules(four, {n: () for n in four}, swaps, tied, four, {})
    assert aged.may_change("Old") == {"Old", "Gray", "Dark"} and aged.others("Old") == ["Hat"]
    assert aged.others("Dark") == ["Old", "Hat"]
    # Added: on the faces that lack the attribute and have what it requires (men without one).
    m, must = labels[:, 0] > 0.5, labels[:, 1] > 0.5
    assert torch.equal(rules.could_carry("Mustache", labels), m & ~must)
    assert torch.equal(rules.could_carry("Hat", labels), labels[:, 7] < 0.5)


def test_attribute_success_judges_on_faces_that_could_carry_it_and_expects_swaps():
    g = torch.Generator().manual_seed(1)
    n = 600
    a = torch.rand(n, generator=g) < 0.4
    b = ~a & (torch.rand(n, generator=g) < 0.5)  # never with a: adding a should remove b
    c = a & (torch.rand(n, generator=g) < 0.5)  # only with a
    attrs = torch.stack([a, b, c], 1).float()
    images = torch.zeros(n, 1, 1, 4)
    images[:, 0, 0, :3] = attrs
    model = LinearModel()
    rules = edit_rules(attrs, NAMES)
    assert rules.requires["c"] == ("a",) and rules.swaps["a"] == ("b",)
    vectors = {k: model.w.detach()[:, i] for i, k in enumerate(NAMES)}
    r = attribute_success(model, ThresholdClassifier(), images, attrs, vectors, NAMES, rules)
    assert r["c"]["n"] == int((a & ~c).sum()) and r["c"]["added"] == 1.0
    # The unit vector adds a and leaves b on: of the faces lacking a, those with b kept it.
    assert r["a"]["swapped"] == pytest.approx(1 - float(b[~a].float().mean()))
    swap = {**vectors, "a": vectors["a"] - vectors["b"]}  # a vector that swaps b for a
    assert attribute_success(model, ThresholdClassifier(), images, attrs, swap, ["a"],
                             rules)["a"]["swapped"] == 1.0  # fmt: skip


def test_bar_summary_means_and_least():
    r = {"x": {"added": 1.0, "kept": 0.9}, "y": {"added": 0.8, "kept": 1.0}}
    s = bar_summary(r)
    assert s["added_mean"] == pytest.approx(0.9) and s["kept_mean"] == pytest.approx(0.95)
    assert s["least_added"] == "y" and s["added_min"] == 0.8 and s["met"] and s["attributes"] == 2
    # One attribute added too rarely misses the bar, even when the mean is high enough.
    r = {k: {"added": 1.0, "kept": 1.0} for k in "xyz"} | {"w": {"added": 0.74, "kept": 1.0}}
    s = bar_summary(r)
    assert s["added_mean"] >= BAR["added_mean"] and s["added_min"] < BAR["added_min"]
    assert not s["met"] and s["least_added"] == "w"


def test_labelled_images_from_synthetic_faces():
    images, attrs, names = labelled_images(SyntheticFaces(20, 32), 8)
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
    assert -1 <= images.min() and images.max() <= 1
    assert attrs.shape == (8, len(names)) and "Eyeglasses" in names


def test_live_widget_draws_a_grayscale_model():
    """A --channels 1 model's faces were a TypeError from PIL ("Cannot handle this data type")."""
    pytest.importorskip("ipywidgets")
    from vaegan_lite.book.widgets import latent_arithmetic
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    torch.manual_seed(0)
    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8, channels=1)).eval()
    faces = torch.rand(2, 1, 32, 32) * 2 - 1
    box = latent_arithmetic({"A": (model, {"Smiling": torch.randn(8)})}, faces, names=["Smiling"])
    box.parts["sliders"]["Smiling"].value = 1.0
    for part in ("image", "original"):
        png = io.BytesIO(bytes(box.parts[part].value))
        assert Image.open(png).mode == "L"


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
    with pytest.raises(ValueError, match="^A: no attribute vector for Bangs, Male$"):
        latent_arithmetic({"A": (model, vectors)}, faces, names=["Smiling", "Bangs", "Male"])
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
    parts["paper"]["Smiling"].click()  # the authors' s = 1
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


def test_attribute_vectors_read_one_name_and_refuse_what_cannot_be_averaged():
    images, attrs = _data()
    model = LinearModel()
    one = attribute_vectors(model, (images, attrs, NAMES), n=150, names=NAMES[0])
    assert list(one) == [NAMES[0]]  # a str is one attribute, not its letters
    for kw, says in (({"n": 0}, "n must be"), ({"batch_size": 0}, "batch_size must be")):
        with pytest.raises(ValueError, match=says):
            attribute_vectors(model, (images, attrs, NAMES), **kw)
    # from synthetic faces: refused before a face is drawn (n = 2.5 would not draw; a typo would
    # be said only after drawing them all)
    faces = SyntheticFaces(10**6, 32)
    faces.render = None  # drawing a face fails the test
    for kw, says in (({"n": 2.5}, "n must be"), ({"names": ["Smilng"]}, "no attribute 'Smilng'")):
        with pytest.raises(ValueError, match=says):
            attribute_vectors(model, faces, **kw)
    with pytest.raises(ValueError, match="no vectors to combine"):
        combine({}, {})


def test_swapped_counts_only_the_swapped_attributes_a_face_had():
    """An edit that adds a swapped attribute a face lacked did not fail to take away what the face
    had: only the swapped attributes the face had count, and a face that had none is swapped."""
    g = torch.Generator().manual_seed(1)
    n = 600
    a = torch.rand(n, generator=g) < 0.4
    b = ~a & (torch.rand(n, generator=g) < 0.5)  # never with a
    attrs = torch.stack([a, b, torch.rand(n, generator=g) < 0.5], 1).float()
    images = torch.zeros(n, 1, 1, 4)
    images[:, 0, 0, :3] = attrs
    model = LinearModel()
    rules = edit_rules(attrs, NAMES)
    assert rules.swaps["a"] == ("b",)
    w = model.w.detach()
    both = {"a": w[:, 0] + w[:, 1]}  # adds a, and b to every face: the faces with b keep it
    r = attribute_success(model, ThresholdClassifier(), images, attrs, both, ["a"], rules)["a"]
    assert r["added"] == 1.0 and r["swapped"] == pytest.approx(1 - float(b[~a].float().mean()))
    assert 0.3 < r["swapped"] < 0.7


def test_swaps_are_only_read_off_attributes_common_enough_to_meet():
    """Two attributes that never meet exclude each other only if, independent, they would have met
    on at least 1 % of the faces (n_a n_b / N >= N / 100); rarer ones just happened not to meet."""
    n = 1000
    labels = torch.zeros(n, 4)
    labels[0:100, 0] = 1  # A: 100 faces
    labels[100:200, 1] = 1  # B: 100 faces, never with A: 100 * 100 / 1000 = 10, 1 % of 1000
    labels[200:299, 2] = 1  # C: 99 faces, never with A or B: 99 * 100 / 1000 = 9.9, too rare
    labels[400:1000, 3] = 1  # E: 600 faces, never with the others
    rules = edit_rules(labels, ["A", "B", "C", "E"])
    assert rules.swaps == {"A": ("B", "E"), "B": ("A", "E"), "C": ("E",), "E": ("A", "B", "C")}


def _widget_models():
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN
    torch.manual_seed(0)
    a = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    b = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    return a, b, torch.rand(3, 3, 32, 32) * 2 - 1, {"Smiling": torch.randn(8) * 3}


def test_live_widget_edits_do_not_accumulate():
    """Moving a slider back and forth gives the same face: the edit is not applied
    cumulatively."""
    pytest.importorskip("ipywidgets")
    from vaegan_lite.book.widgets import latent_arithmetic
    a, _, faces, vectors = _widget_models()
    parts = latent_arithmetic({"A": (a, vectors)}, faces, names=["Smiling"]).parts
    first = bytes(parts["image"].value)
    parts["sliders"]["Smiling"].value = 1.0
    once = bytes(parts["image"].value)
    parts["sliders"]["Smiling"].value = 0.5
    parts["sliders"]["Smiling"].value = 1.0
    assert bytes(parts["image"].value) == once
    parts["sliders"]["Smiling"].value = 0.0
    assert bytes(parts["image"].value) == first


def test_live_widget_switch_uses_the_new_models_code_of_the_face():
    """Switching models decodes the new model's own code of the face, mu_B(x), not mu_A(x)."""
    pytest.importorskip("ipywidgets")
    from vaegan_lite.book.widgets import latent_arithmetic
    a, b, faces, vectors = _widget_models()
    both = latent_arithmetic({"A": (a, vectors), "B": (b, vectors)}, faces, names=["Smiling"]).parts
    alone = latent_arithmetic({"B": (b, vectors)}, faces, names=["Smiling"]).parts
    both["switch"].value = "B"
    assert bytes(both["image"].value) == bytes(alone["image"].value)


def test_live_widget_random_face_is_drawn_from_its_seed():
    """The "Random face" button draws z_p from the widget's own generator (``seed``): the same
    seed gives the same face whatever torch's global random state, another seed another face."""
    pytest.importorskip("ipywidgets")
    from vaegan_lite.book.widgets import latent_arithmetic
    a, _, faces, vectors = _widget_models()

    def random_face(seed, global_seed):
        parts = latent_arithmetic({"A": (a, vectors)}, faces, names=["Smiling"], seed=seed).parts
        torch.manual_seed(global_seed)
        parts["random"].click()
        return bytes(parts["original"].value)

    first = random_face(3, global_seed=1)
    assert random_face(3, global_seed=2) == first
    assert random_face(4, global_seed=1) != first
