"""Visual attribute vectors (Sec. 4.1.1, Fig. 6 and 7): arithmetic in the latent space.

For every attribute, encode labelled images, average the latent codes of the images that have it
and of those that don't, and take the difference:

    v_a = mean{ z(x) : x has a } - mean{ z(x) : x lacks a }

Adding v_a to a face's code and decoding adds the attribute; subtracting it removes it. We use the
encoder's means mu(x) (deterministic, and what Dec(mu) reconstructs); codes drawn from q(z|x)
(``sampled=True``) give nearly the same vectors, since over thousands of images the noise
averages out. The authors' code used the first 10,000 training images and added the vectors at
scale 1; ``apply(..., scale=s)`` makes the scale a knob.

The vectors are only as good as the labels' independence: when two attributes go together in the
data (mustache and male), the difference of means carries both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .classifier import AttributeClassifier
from .data import SyntheticFaces
from .images import to_unit_range
from .metrics import evaluating
from .models.vaegan import VAEGAN, reparameterize

Vectors = dict[str, torch.Tensor]

# The attributes chapter 5 edits and measures: those the synthetic faces draw most plainly.
SHOWN = ("Eyeglasses", "Bangs", "Smiling", "Wearing_Hat", "Mustache")
# The attribute vectors both widgets (widgets.py, web.py) offer a slider for: SHOWN, plus Male,
# which chapter 5 needs for the mustache's correlation. (Chapter 5 computes vectors for, and
# judges, every attribute of the data set.)
IN_WIDGETS = (*SHOWN, "Male")


def labelled_images(dataset: Any, n: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The first n (images in [-1, 1], float attributes, attribute names) of a labelled set.

    ``dataset`` is a SyntheticFaces (rendered on the fly), or an (images, attrs, names) triple
    such as data.load_split's ImageSet, with uint8 or [-1, 1] float images.
    """
    if hasattr(dataset, "render"):
        n = min(n, len(dataset))
        images, attrs = dataset.render(range(n))
    else:
        images, attrs, _ = dataset
        images, attrs = images[:n], attrs[:n]
    if images.dtype == torch.uint8:
        images = to_unit_range(images)
    return images, attrs.float(), attribute_names(dataset)


def attribute_names(dataset: Any) -> list[str]:
    """The attribute names of a labelled set (as labelled_images takes it), drawing no image."""
    return list(dataset.attr_names if hasattr(dataset, "render") else dataset[2])


def held_out_faces(
    model: VAEGAN, n: int, offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """n synthetic faces the model never saw: the indices after its training set (same seed),
    at its image size. (images in [-1, 1], attributes, names)."""
    faces, indices = held_out_indices(model, n, offset)
    images, attrs = faces.render(indices)
    return to_unit_range(images), attrs, list(faces.attr_names)


def held_out_indices(model: VAEGAN, n: int, offset: int = 0) -> tuple[SyntheticFaces, range]:
    """held_out_faces' faces as (the synthetic data set, their indices in it)."""
    cfg = model.train_config
    if cfg is None:  # a model made by hand: which faces it trained on is unknown
        raise ValueError("held-out synthetic faces: the model has no train_config; use one from "
                         "train(), read_checkpoint() or pretrained()")  # fmt: skip
    if cfg.data != "synthetic":  # the faces after its training set mean nothing to it
        raise ValueError(f"held-out synthetic faces: the model was trained on {cfg.data!r}; take "
                         f"its test images from vaegan_lite.data.load_split instead")  # fmt: skip
    start = cfg.dataset_size + offset
    return SyntheticFaces(start + n, model.image_size, seed=cfg.data_seed), range(start, start + n)


@torch.no_grad()
def encode(
    model: Any, images: torch.Tensor, batch_size: int = 500, sampled: bool = False
) -> torch.Tensor:
    """Latent codes [N, latent_dim]: the means mu(x), or draws z ~ q(z|x) when ``sampled``."""
    device = next(model.parameters()).device
    codes = []
    with evaluating(model):  # a code must not depend on the batch it was encoded in
        for x in images.split(batch_size):
            mu, logvar = model.encode(x.to(device))
            if sampled:
                mu = reparameterize(mu, logvar)
            codes.append(mu.float().cpu())
    return torch.cat(codes)


@torch.no_grad()
def decode(model: Any, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Dec(z) [N, C, H, W] in [-1, 1], in eval mode and in batches."""
    device = next(model.parameters()).device
    with evaluating(model):
        return torch.cat([model.decode(b.to(device)).float().cpu() for b in z.split(batch_size)])


def attribute_vectors(
    model: Any,
    dataset: Any,
    n: int = 10000,
    names: Sequence[str] | None = None,
    sampled: bool = False,
    batch_size: int = 500,
) -> Vectors:
    """{attribute: mean code with it - mean code without it}, from the first n labelled images.

    Attributes that no image has (or every image has) have no vector and are left out.
    """
    names = _checked_names(names, attribute_names(dataset), n, batch_size)  # before drawing
    images, attrs, all_names = labelled_images(dataset, n)
    z = encode(model, images, batch_size, sampled)
    vectors = {}
    for name in names or all_names:
        has = attrs[:, all_names.index(name)] > 0.5
        if 0 < int(has.sum()) < len(has):
            vectors[name] = z[has].mean(0) - z[~has].mean(0)
    return vectors


def _checked_names(
    names: Sequence[str] | str | None, all_names: list[str], n: int, batch_size: int
) -> Sequence[str] | None:
    """attribute_vectors' arguments, checked: one line for each misuse."""
    if isinstance(names, str):  # one attribute, not its letters
        names = [names]
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"attribute_vectors: n must be a whole number of images >= 2, got {n!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"attribute_vectors: batch_size must be a whole number >= 1, got "
                         f"{batch_size!r}")  # fmt: skip
    if unknown := [a for a in names or () if a not in all_names]:
        raise ValueError(f"attribute_vectors: no attribute {', '.join(map(repr, unknown))} in "
                         f"the data set; it has {', '.join(all_names)}")  # fmt: skip
    return names


def combine(vectors: Vectors, weights: dict[str, float]) -> torch.Tensor:
    """sum_a w_a v_a; e.g. {"Eyeglasses": 1, "Smiling": -1} adds glasses, takes the smile away."""
    if unknown := [a for a in weights if a not in vectors]:
        raise ValueError(f"combine: no vector for {', '.join(map(repr, unknown))}; there are "
                         f"vectors for {', '.join(vectors)}")  # fmt: skip
    if not weights:
        if not vectors:
            raise ValueError("combine: no vectors to combine (attribute_vectors found none)")
        return torch.zeros_like(next(iter(vectors.values())))
    return sum(w * vectors[name] for name, w in weights.items())


def apply(z: torch.Tensor, vector: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """z + scale * vector, for one code [D] or a batch [N, D]; ``scale`` may be [K] for K steps
    (then the result is [K, D] or [N, K, D])."""
    if vector.shape[-1:] != z.shape[-1:]:  # else a broadcasting error from deep inside torch
        raise ValueError(f"apply: a vector of shape {list(vector.shape)} for codes of shape "
                         f"{list(z.shape)}: it must have the codes' {z.shape[-1]} numbers (a "
                         "vector from attribute_vectors of this model)")  # fmt: skip
    s = torch.as_tensor(scale, dtype=z.dtype, device=z.device)
    if s.ndim == 0:
        return z + s * vector
    return z.unsqueeze(-2) + s.view(-1, 1) * vector


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """[steps, D] codes on the straight line from z0 to z1 (both ends included)."""
    if steps < 2:
        raise ValueError(f"interpolate: steps must be >= 2 to include both ends, got {steps}")
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device).view(-1, 1)
    return (1 - t) * z0 + t * z1


def edit(
    model: Any, images: torch.Tensor, vector: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """Dec(mu(x) + scale * v): the faces of Fig. 6, with an attribute vector added."""
    return decode(model, apply(encode(model, images), vector, scale))


# The judge's terms (chapter 5): an attribute is read reliably when the judge gets it right on at
# least this fraction of held-out drawn faces, and two attributes are tied in the data when their
# labels correlate at least this much (either sign).
RELIABLE = 0.95
TIED = 0.3
# "Every face with a has b" and "no face with a has b", from labels: allowing this fraction of
# exceptions. The synthetic faces' rules are exact; real labels have a few errors.
SURE = 0.001
# How much of an attribute vector an edit adds: the paper states no scale; the authors' code adds
# each vector once. The widgets mark it on their sliders.
AUTHORS_SCALE = 1.0
# The bar a shipped VAE/GAN's edits are held to, at the authors' scale s = 1: averaged over the
# attributes read reliably, added >= added_mean and kept >= kept_mean; every one added >= added_min.
BAR = {"added_mean": 0.9, "kept_mean": 0.9, "added_min": 0.75}


@dataclass(frozen=True)
class EditRules:
    """What an edit adding a may be asked to do, read off labelled data and the judge.

    ``requires[a]``: attributes every face with a has (Mustache: Male). "Added" is measured on the
    faces that lack a and have these, the faces that could carry a. ``swaps[a]``: attributes no
    face with a has (Blond_Hair: the other hair colours); adding a is expected to take them away.
    ``tied[a]``: attributes whose labels correlate with a's, |r| >= TIED. ``reliable``: attributes
    the judge reads right on >= RELIABLE of held-out drawn faces (``accuracy``). "Kept" is measured
    over ``others(a)``: the reliable attributes, except a, its tied and its swapped ones, and what
    its tied ones swap (Young is tied to Gray_Hair, which takes the place of the other colours).
    """

    names: tuple[str, ...]
    requires: dict[str, tuple[str, ...]]
    swaps: dict[str, tuple[str, ...]]
    tied: dict[str, tuple[str, ...]]
    reliable: tuple[str, ...]
    accuracy: dict[str, float]

    def could_carry(self, name: str, attrs: torch.Tensor) -> torch.Tensor:
        """Bool [N]: the faces whose labels lack ``name`` and have everything it requires."""
        mask = attrs[:, self.names.index(name)] < 0.5
        for b in self.requires[name]:
            mask &= attrs[:, self.names.index(b)] > 0.5
        return mask

    def others(self, name: str) -> list[str]:
        """The attributes an edit adding ``name`` should leave as they were."""
        return [b for b in self.reliable if b not in self.may_change(name)]

    def may_change(self, name: str) -> set[str]:
        """``name``, the attributes tied to it, and the attributes these or ``name`` swap."""
        moved = {name, *self.tied[name]}
        return moved | {s for b in moved for s in self.swaps[b]}


def edit_rules(
    labels: torch.Tensor, names: Sequence[str], accuracy: dict[str, float] | None = None
) -> EditRules:
    """EditRules from labels [N, A] (e.g. the training faces the vectors come from) and the judge's
    per-attribute accuracy on held-out drawn faces (None: every attribute counts as reliable)."""
    names = tuple(names)
    y = labels.double() > 0.5
    n_with = y.sum(0).double()  # faces with each attribute
    both = (y.T.double() @ y.double())  # [A, A]: faces with a and b
    r = torch.nan_to_num(torch.corrcoef(y.T.double()))
    requires, swaps, tied = {}, {}, {}
    for i, a in enumerate(names):
        present = n_with[i] > 0
        # b is required by a if (almost) every face with a has b, though not every face has b
        requires[a] = tuple(b for j, b in enumerate(names) if j != i and present
                            and both[i, j] >= (1 - SURE) * n_with[i]
                            and n_with[j] < (1 - SURE) * len(y))  # fmt: skip
        # a and b exclude each other if (almost) no face has both, though independent attributes
        # this common would meet on at least 1 % of the faces
        swaps[a] = tuple(b for j, b in enumerate(names) if j != i and present and n_with[j] > 0
                         and both[i, j] <= SURE * min(n_with[i], n_with[j])
                         and n_with[i] * n_with[j] / len(y) >= 0.01 * len(y))  # fmt: skip
        tied[a] = tuple(b for j, b in enumerate(names) if j != i and abs(r[i, j]) >= TIED)
    accuracy = dict(accuracy or {n: 1.0 for n in names})
    reliable = tuple(n for n in names if accuracy.get(n, 0.0) >= RELIABLE)
    return EditRules(names, requires, swaps, tied, reliable, accuracy)


def attribute_success(
    model: Any,
    judge: AttributeClassifier,
    images: torch.Tensor,
    attrs: torch.Tensor,
    vectors: Vectors,
    names: Sequence[str],
    rules: EditRules,
    scale: float = 1.0,
) -> dict[str, dict[str, Any]]:
    """How often adding v_a works, judged by ``judge`` (an attribute classifier), per attribute a
    in ``names``.

    Over the faces that could carry a (``rules.could_carry``: they lack a, and have what a
    requires): ``added`` is the fraction in which the judge sees a in Dec(mu + scale * v_a);
    ``kept`` the fraction in which every attribute of ``rules.others(a)`` reads the same as in the
    plain reconstruction Dec(mu); ``both`` the fraction where both hold; ``n`` the number of faces.
    ``recon_has`` is the fraction of plain reconstructions in which the judge already sees a
    (it should be near 0); ``changed`` maps each other attribute to the fraction of faces in which
    its reading changed; ``swapped`` the fraction in which no swapped attribute the face had is
    still seen (a face that had none of them counts as swapped).
    """
    z = encode(model, images)
    before = judge.predict(decode(model, z))
    out = {}
    for name in names:
        can = rules.could_carry(name, attrs)
        after = judge.predict(decode(model, apply(z[can], vectors[name], scale)))
        out[name] = _judged(judge, rules, name, before[can], after, attrs[can])
    return out


def generator_edit_success(
    judge: AttributeClassifier,
    faces: Any,
    indices: Sequence[int],
    names: Sequence[str],
    rules: EditRules,
) -> dict[str, dict[str, Any]]:
    """attribute_success's figures for the edit no autoencoder can beat on synthetic faces: the
    generator draws each face again with a added and a's swapped attributes taken away, lets what
    may move with a (``rules.may_change``) follow as it draws it, and keeps every other attribute
    and random choice (``faces.render(indices, attrs)``); "before" is the face itself. It
    measures the judge as much as the edit: what the judge misreads here, no model gets right."""
    images, attrs = faces.render(indices)
    before = judge.predict(to_unit_range(images))
    out = {}
    for name in names:
        can = rules.could_carry(name, attrs)
        wanted = attrs[can].clone()
        wanted[:, [rules.names.index(b) for b in rules.may_change(name)]] = float("nan")  # drawn
        wanted[:, [rules.names.index(b) for b in rules.swaps[name]]] = 0
        wanted[:, rules.names.index(name)] = 1
        edited, _ = faces.render(torch.as_tensor(indices)[can], attrs=wanted)
        after = judge.predict(to_unit_range(edited))
        out[name] = _judged(judge, rules, name, before[can], after, attrs[can])
    return out


def _judged(
    judge: AttributeClassifier, rules: EditRules, name: str, was: torch.Tensor, after: torch.Tensor,
    attrs: torch.Tensor,
) -> dict[str, Any]:
    """One attribute's figures (attribute_success) from the judge's bool readings [N, A]
    before and after adding ``name`` to N faces that could carry it, and their labels."""
    a, others = judge.index(name), rules.others(name)
    cols = [judge.index(b) for b in others]
    flipped = after[:, cols] != was[:, cols]
    added, kept = after[:, a], ~flipped.any(1)
    swap_cols = [judge.index(b) for b in rules.swaps[name]]
    had = attrs[:, [rules.names.index(b) for b in rules.swaps[name]]] > 0.5
    gone = ~(after[:, swap_cols] & had).any(1) if swap_cols else torch.ones_like(added)
    return {
        "added": float(added.float().mean()),
        "kept": float(kept.float().mean()),
        "both": float((added & kept).float().mean()),
        "recon_has": float(was[:, a].float().mean()),
        "n": len(was),
        "requires": list(rules.requires[name]),
        "swapped": float(gone.float().mean()),
        "changed": {b: float(f) for b, f in zip(others, flipped.float().mean(0), strict=True)},
    }


def bar_summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figures BAR reads, over the attributes in ``results``: means of added and kept, the
    least added attribute, and whether the bar is met."""
    added = {n: r["added"] for n, r in results.items()}
    mean_added = sum(added.values()) / len(added)
    mean_kept = sum(r["kept"] for r in results.values()) / len(results)
    least = min(added, key=added.get)
    met = (mean_added >= BAR["added_mean"] and mean_kept >= BAR["kept_mean"]
           and added[least] >= BAR["added_min"])  # fmt: skip
    return {"added_mean": mean_added, "kept_mean": mean_kept, "least_added": least,
            "added_min": added[least], "met": met, "attributes": len(results)}  # fmt: skip
