# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Latent arithmetic: adding glasses, bangs and smiles
#
# The most striking pictures of the paper {cite}`larsen2016autoencoding` are not samples but
# edits. Encode a face, add a vector to its latent code, decode: the same face now wears glasses,
# or has bangs (Fig. 6, whose text names eyeglasses and bangs). The vectors come from nothing
# more than averages of codes, and the concepts a plain VAE learns the same way are "much less
# prominent" (Fig. 7). This chapter computes those vectors, measures how well the arithmetic
# works with a judge that cannot be fooled by a pretty picture, looks at what goes wrong when
# attributes travel together (mustache and male), and ends with two widgets to try it: one that
# needs a Python kernel, and one that runs in this page.

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q git+https://github.com/vaegan-lite/vaegan-lite
    pass

# %%
import json

import matplotlib.pyplot as plt
import torch
import torchvision.transforms.functional as TF
from IPython.display import HTML, Markdown

from vaegan_lite import attributes as A
from vaegan_lite.book.diagrams import diagram
from vaegan_lite.book.plotting import show_grid
from vaegan_lite.book.runs import get_preset, running_box, trained_on
from vaegan_lite.book.source import show_source
from vaegan_lite.classifier import accuracy
from vaegan_lite.data import SyntheticFaces
from vaegan_lite.metrics import sharpness
from vaegan_lite.shipped import pretrained

preset = get_preset()
# The authors averaged the codes of 10,000 training images; the smoke preset uses fewer.
N_VECTORS = 2000 if preset.name == "smoke" else 10000
N_TEST = 300 if preset.name == "smoke" else 2000  # held-out faces for the success rates
print(f"preset: {preset.name}; vectors from {N_VECTORS} faces, judged on {N_TEST} held-out faces")

# %% tags=["nbval-ignore-output"]
# How long this chapter takes, as measured on the machines the box names.
running_box("05_latent_arithmetic", trains=False)  # it reads the shipped models

# %% [markdown]
# ## Goals
#
# - Compute visual attribute vectors the way the paper describes them, and know the settings that
#   the authors' code adds to the description (how many faces, at what scale).
# - Redraw Fig. 6 (VAE/GAN) and Fig. 7 (VAE) on held-out faces.
# - Measure, attribute by attribute, how often adding a vector makes the attribute appear while
#   leaving the others alone, for the VAE/GAN and for the VAE.
# - See why correlated attributes (mustache and male) leak into each other, and one way around it.
# - Interpolate between faces.
# - Play with the arithmetic, for the VAE/GAN and the VAE side by side: in a live widget with a
#   kernel, and in a static widget that decodes in your browser.
#
# ## The models: shipped with the package
#
# Attribute vectors need a trained encoder and decoder. Chapter 4 trains a VAE/GAN; to keep this
# chapter quick at every preset, the package ships two models trained on the synthetic faces:
# `synthetic-vaegan` and, for Fig. 7's comparison, `synthetic-vae`, with the same networks, data
# and steps, at the paper's image size and the latent size of the authors' code. The table below
# says how wide their networks are (as a fraction of Table 1's widths), how long they trained and
# on what machine: at the `cpu` preset's smaller images a smile is a pixel or two of mouth, and
# small models lose it. A third shipped network is the judge we meet below, which reads faces at
# the models' size. Each has a provenance file with the exact config, the command that trains it
# again, the commit, a checksum, the training time and the machine, and the checksum is verified
# when it is loaded.

# %%
vaegan = pretrained("synthetic-vaegan")
vae = pretrained("synthetic-vae")
judge = pretrained("attribute-classifier-64")

columns = {}  # model => its column: one row per property (a model per row would be too wide)
for m in (vaegan, vae, judge):
    p = m.provenance
    net = p["config"].get("model", {})  # a VAE/GAN's; the classifier has none
    what = net.get("model", "classifier")
    size = getattr(m, "image_size", None) or p["config"].get("image_size", "")
    columns[f"`{p['name']}`"] = {
        "trained as": what,
        "image": f"{size}×{size}",
        "latent size": getattr(m, "latent_dim", "–"),
        "width (of Table 1's channels)": net.get("width", "–"),
        "Enc fc units at width 1": net.get("enc_fc_dim", "–"),
        "γ": p["config"]["step"]["gamma"] if what == "vaegan" else "–",
        "steps": p.get("training_steps", p.get("training", {}).get("steps")),
        "parameters": f"{p['parameters']:,}",
        "file": f"{p['bytes'] / 1e6:.2f} MB, {p['storage'].split()[0]}",
        "trained on": f"{trained_on(p['machine'])}, {p['training_seconds'] / 60:.0f} min",
    }
rows = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
rows += [f"| {key} | " + " | ".join(str(c[key]) for c in columns.values()) + " |"
         for key in next(iter(columns.values()))]  # fmt: skip
Markdown("\n".join(rows))

# %% [markdown]
# The weights are stored in a compact form (float16, or int8 with one scale per output channel)
# to keep the files small enough for the repository, and are loaded back as float32. Each model's
# `.provenance` says where, when and for how long it was trained.
#
# Both models are chapter 4's networks, Table 1's, but not chapter 4's `cpu` run: they see 64×64
# faces, with the code size and encoder width of the authors' code, the $\gamma$ for 64×64 and
# more steps (the table above). The VAE/GAN is drawn below (the paper's Fig. 2); the VAE is its
# encoder and decoder alone, trained on the pixel loss without $\mathrm{Dis}$. The vectors of
# this chapter live in the space of $z$, between $\mathrm{Enc}$ and $\mathrm{Dec}$.

# %% tags=["remove-input"]
diagram("vaegan")

# %% [markdown]
# The VAE/GAN of the shipped `synthetic-vaegan`, chapter 4's model at the sizes above. An attribute vector is a
# direction in the space of $z$: edits encode with $\mathrm{Enc}$, move $z$, and decode with
# $\mathrm{Dec}$; $\mathrm{Dis}$ is needed only in training.
#
# ## Attribute vectors
#
# Sec. 4.1.1 of the paper: encode labelled images, and for each attribute *a* take the mean code of
# the images that have it minus the mean code of those that don't:
#
# > v<sub>a</sub> = mean{ μ(x) : x has *a* } − mean{ μ(x) : x lacks *a* },
#
# where μ(x) is the encoder's mean (the paper speaks of the images' "latent vector
# representations"; this book takes the means, and `sampled=True` averages codes drawn from
# q(z|x) instead, which exercise 2 compares). An edit is then Dec(μ(x) + s·v<sub>a</sub>). The
# paper states no scale; the authors' code adds each vector once, s = 1. Nothing else is needed:
# no labels were used in training, only to find the directions afterwards.

# %%
show_source(A.attribute_vectors)

# %% [markdown]
# We use the first `N_VECTORS` training faces (the first cell printed how many; the authors' code
# used the first 10,000 CelebA training images) and every attribute of the data set. The pictures
# show the five that the synthetic faces draw most plainly (`A.SHOWN`); both widgets at the end of
# the chapter offer those and `Male` (`A.IN_WIDGETS`).

# %% tags=["nbval-ignore-output"]
# The vectors' lengths, from the shipped models' codes: a look at their scale, which nothing below
# relies on (their last digit may differ on another CPU).
NAMES = list(A.SHOWN)  # Eyeglasses, Bangs, Smiling, Wearing_Hat, Mustache
train_faces = SyntheticFaces(vaegan.train_config.dataset_size, vaegan.image_size,
                             seed=vaegan.train_config.data_seed)
train_set = A.labelled_images(train_faces, N_VECTORS)  # (images, attributes, names), drawn once
vectors = {name: A.attribute_vectors(m, train_set) for name, m in (("VAE/GAN", vaegan), ("VAE", vae))}
print(f"{'length of':16}" + "".join(f"{name:>9}" for name in vectors))
for a in A.IN_WIDGETS:
    print(f"{'v_' + a:16}" + "".join(f"{vs[a].norm():9.2f}" for vs in vectors.values()))

# %% [markdown]
# ## Fig. 6 and 7: vectors added to held-out faces
#
# The faces below were not in either model's training set (`held_out_faces` takes the synthetic
# faces after the training ones). Each row: the input, its reconstruction Dec(μ(x)),
# then the reconstruction with one attribute vector added.

# %% mystnb={"image": {"alt": "For the VAE/GAN: held-out faces, their reconstructions, and reconstructions with glasses, bangs, smile, hat and mustache vectors added"}}
test_x, test_y, attr_names = A.held_out_faces(vaegan, N_TEST)
col = {n: attr_names.index(n) for n in attr_names}
# Faces without glasses, hat, bangs or a smile, so that every column adds something new.
plain = ((test_y[:, [col[n] for n in NAMES[:4]]] == 0).all(1)).nonzero().flatten()[:6]
faces = test_x[plain]


def attribute_grid(model, faces, vectors, names, scale=1.0, title=""):
    """Rows: faces; columns: input, Dec(mu), Dec(mu + scale * v_a) for each a in names."""
    z = A.encode(model, faces)
    columns = [faces, A.decode(model, z)]
    columns += [A.decode(model, A.apply(z, vectors[n], scale)) for n in names]
    ax = show_grid(torch.stack(columns, 1).flatten(0, 1), nrow=len(columns), scale=1.7)
    side = faces.shape[-1] + 2
    for j, label in enumerate(["input", "Dec(μ)"] + [f"+{n.replace('_', ' ')}" for n in names]):
        ax.text(2 + j * side + side / 2 - 1, -3, label, ha="center", va="bottom", fontsize=8)
    ax.set_title(title, pad=16)
    return ax


attribute_grid(vaegan, faces, vectors["VAE/GAN"], NAMES, title="VAE/GAN (Fig. 6)")
plt.show()

# %% mystnb={"image": {"alt": "For the VAE: the same held-out faces, their reconstructions, and reconstructions with the VAE's glasses, bangs, smile, hat and mustache vectors added"}}
attribute_grid(vae, faces, vectors["VAE"], NAMES, title="VAE (Fig. 7)")
plt.show()


# %% tags=["nbval-ignore-output"]
# How sharp the edited faces are (metrics.sharpness: the mean energy of the image's Laplacian,
# chapter 1).
# The figures depend on the vectors, i.e. on the preset; the assert checks the text.
edited_sharpness = {
    name: float(sharpness(torch.cat([A.edit(m, faces, vectors[name][n]) for n in NAMES])).mean())
    for name, m in (("VAE/GAN", vaegan), ("VAE", vae))
}
drawn_sharpness = float(sharpness(faces).mean())
assert edited_sharpness["VAE/GAN"] > 2 * edited_sharpness["VAE"]
Markdown(f"Sharpness of the edited faces above: VAE/GAN {edited_sharpness['VAE/GAN']:.3f}, "
         f"VAE {edited_sharpness['VAE']:.3f} (the drawn faces: {drawn_sharpness:.3f}).")

# %% [markdown]
# Here both models find the directions (the paper finds the VAE's concepts "much less
# prominent", Fig. 7). The VAE's edits are the blurrier: its glasses and hat brims are softer,
# because its decoder was trained with a pixel-wise loss that rewards averages (chapter 1), and
# the line above measures the gap. The Laplacian does not tell detail from noise, though
# (chapter 3): before calling the VAE/GAN's extra sharpness detail, compare its number with the
# drawn faces' and look at its faces in the grid for speckle.
#
# ## Did it work? A judge trained on the ground truth
#
# "Looks right" is not a measurement. The synthetic faces come with exact labels, so we train an
# attribute classifier on them: a small convnet, trained only on the drawn faces and their true
# attributes (another data seed, so none of its faces is one of ours), never on a model's outputs,
# so it has not learnt any decoder's habits. Its training images were blurred and noised a little
# so that a soft but visible pair of glasses still counts. It reads faces at 64×64, the models'
# own size: the package's other judge, `attribute-classifier` for the `cpu` preset's 32×32 models of
# chapters 2, 6 and 7, would first shrink each face to 32×32, where a smile is a pixel or two of
# mouth. How good a judge is it? On held-out drawn faces, on the same faces blurred more than any of
# its training images (a Gaussian blur, wider than its training blur: a 3×3 box at most), and on
# each model's reconstructions:

# %% tags=["nbval-ignore-output"]
# The judge's readings of many faces (a face near its threshold can read differently on another
# CPU); the asserts check what the text says of the table.
def agreement(x):  # per attribute, how often the judge's reading matches the true label
    return accuracy(judge, x, test_y)


BLUR = {"kernel_size": 5, "sigma": 1.2}  # pixels
k = BLUR["kernel_size"]
print(f"blur: Gaussian, sigma = {BLUR['sigma']} pixels, {k}x{k} kernel")
acc = {"drawn faces": agreement(test_x),
       "drawn, blurred": agreement(TF.gaussian_blur(test_x, **BLUR)),
       "VAE/GAN Dec(μ)": agreement(vaegan.reconstruct(test_x)),
       "VAE Dec(μ)": agreement(vae.reconstruct(test_x))}
rows = ["| attribute | " + " | ".join(acc) + " |", "|---|" + "---|" * len(acc)]
for n in attr_names:
    rows.append(f"| {n} | " + " | ".join(f"{a[n]:.1%}" for a in acc.values()) + " |")
# What the next paragraph says: blur hardly moves the judge; reconstructing does.
assert all(abs(acc["drawn faces"][n] - acc["drawn, blurred"][n]) <= 0.02 for n in attr_names)
assert all(sum(acc[k][n] for n in attr_names) < sum(acc["drawn faces"][n] for n in attr_names)
           for k in ("VAE/GAN Dec(μ)", "VAE Dec(μ)"))
Markdown("\n".join(rows))

# %% [markdown]
# The first column is the judge's own accuracy. Blur hardly moves it (the second), so softness alone
# does not fool the judge: the drop in the last two columns is mostly what each autoencoder loses
# when it reconstructs (a reconstruction that drops a smile is read as "not smiling", rightly). We
# count on the judge only for the attributes it reads *reliably*, right on nearly every drawn face
# (the threshold is `A.RELIABLE`, printed below).
#
# Now the test of Fig. 6, for every attribute of the data set. For each attribute *a*, take
# held-out faces whose true labels say they lack it, add v<sub>a</sub> to their codes and decode.
# Judging the result fairly takes three rules, each read off the training labels rather than chosen
# by hand:
#
# - *Which faces could carry a.* Only men have mustaches in these faces, so a vector that adds a
#   mustache is judged on the men who have none; on a woman it would have to add a man first.
#   "Added" is measured on the faces that lack *a* and have every attribute that all faces with *a*
#   have (`requires`).
# - *What a replaces.* Every face has exactly one hair colour, so adding blond hair should take the
#   black hair away. Attributes never seen together with *a* (`swaps`) are expected to change, and
#   are not held against the edit.
# - *What comes with a.* Attributes whose labels correlate strongly with *a*'s (`tied`; the
#   threshold on the correlation is `A.TIED`) move with its vector, for the reason the section on
#   the mustache below shows; they are not among those that must stay put either, nor is what they
#   replace in turn (the table below ties gray hair to age, and gray hair replaces the other
#   colours).
#
# **Added**: the fraction of those faces in which the judge sees *a*. **Kept**: the fraction in
# which every other attribute read reliably, apart from those that may change with *a*
# (`may_change`), reads the same as in the plain reconstruction Dec(μ(x)). **Both**: the two at
# once, face by face.

# %%
show_source(A.EditRules)

# %%
# The rules, from the labels of the training faces the vectors came from; the judge's accuracy on
# the drawn held-out faces decides which attributes are read reliably.
rules = A.edit_rules(train_set[1], attr_names, acc["drawn faces"])
print(f"read reliably: judged right on at least {A.RELIABLE:.0%} of the drawn faces; "
      f"tied: |correlation| of at least {A.TIED}")
rows = ["| attribute | judged on faces that lack it and have | swaps with | tied to |",
        "|---|---|---|---|"]
for n in attr_names:
    rows.append(f"| {n} | {', '.join(rules.requires[n]) or '(any face)'} | "
                f"{', '.join(rules.swaps[n]) or '–'} | {', '.join(rules.tied[n]) or '–'} |")
Markdown("\n".join(rows))

# %%
show_source(A.attribute_success)

# %% tags=["nbval-ignore-output"]
# Results of the shipped models on many faces: rounded percentages, but a face near the
# judge's threshold can read differently on another CPU, so yours may differ by a point.
def success_table(scale=1.0):
    results = {name: A.attribute_success(model, judge, test_x, test_y, vectors[name], attr_names,
                                         rules, scale=scale)
               for name, model in (("VAE/GAN", vaegan), ("VAE", vae))}
    rows = ["| attribute | faces | VAE/GAN added | kept | both | VAE added | kept | both |",
            "|---|---|---|---|---|---|---|---|"]
    for n in attr_names:
        g, v = results["VAE/GAN"][n], results["VAE"][n]
        label = n if n in rules.reliable else f"{n} (not read reliably: not in the means)"
        rows.append(f"| {label} | {g['n']} | {g['added']:.1%} | {g['kept']:.1%} | "
                    f"{g['both']:.1%} | {v['added']:.1%} | {v['kept']:.1%} | {v['both']:.1%} |")
    bars = {name: A.bar_summary({n: r[n] for n in rules.reliable}) for name, r in results.items()}
    g, v = bars["VAE/GAN"], bars["VAE"]
    rows.append(f"| **mean** over the {g['attributes']} read reliably | | {g['added_mean']:.1%} | "
                f"{g['kept_mean']:.1%} | | {v['added_mean']:.1%} | {v['kept_mean']:.1%} | |")
    return results, bars, "\n".join(rows)


results, bars, table = success_table(1.0)
assert all(0 <= r[n][k] <= 1 and r[n]["n"] > 0 for r in results.values() for n in attr_names
           for k in ("added", "kept", "both"))
Markdown(table)

# %% [markdown]
# How far is that from edits that work? A demanding bar: averaged over the attributes read
# reliably, the attribute appears in at least `A.BAR["added_mean"]` of the faces that could carry
# it and the others are kept in at least `A.BAR["kept_mean"]`, with no attribute added in fewer
# than `A.BAR["added_min"]`:

# %% tags=["nbval-ignore-output"]
# Computed from the table above.
def verdict(name, b):
    return (f"- {name}: added {b['added_mean']:.0%} on average (least: {b['least_added']}, "
            f"{b['added_min']:.0%}), kept {b['kept_mean']:.0%}: the bar is "
            + ("**met**." if b["met"] else "**missed**."))


print("the bar:", ", ".join(f"{k} {v:.0%}" for k, v in A.BAR.items()))
Markdown("\n".join(verdict(name, b) for name, b in bars.items()))

# %% [markdown]
# "Kept" is a strict test: a face counts as kept only if every one of the many other attributes
# reads as before, so a small model whose reconstructions draw some features by halves fails it
# often (the section "Why not every edit works" below measures that).
#
# Is the bar within reach at all? The judge is not perfect, and "kept" asks a dozen of its readings
# to agree at once. The synthetic faces let us measure the best an edit could score: the generator
# draws each held-out face again with the attribute added (and the attributes it swaps taken away),
# lets what may change with it follow as the generator draws it, and keeps every other attribute
# and random choice. No autoencoder edits a face more faithfully than that, so what the judge
# misreads there, it would misread for any model.

# %%
show_source(A.generator_edit_success)

# %% tags=["nbval-ignore-output"]
# The judge's readings of drawn faces (like the table's, they may differ by a point on your CPU).
drawn, drawn_indices = A.held_out_indices(vaegan, N_TEST)  # the same held-out faces as test_x
ceiling = A.generator_edit_success(judge, drawn, drawn_indices, rules.reliable, rules)
ceiling_bar = A.bar_summary(ceiling)
# What the paragraph below says: the bar is met, by less than 10 points on one of its terms.
margins = [ceiling_bar[k] - v for k, v in A.BAR.items()]
assert ceiling_bar["met"] and min(margins) < 0.1, margins
# The other attribute whose reading the generator's edits change most often, and by which edit.
edit_by, changed = max(((n, b) for n in ceiling for b in ceiling[n]["changed"]),
                       key=lambda nb: ceiling[nb[0]]["changed"][nb[1]])
Markdown(verdict("the generator's own edit", ceiling_bar)
         + f" The reading it changes most often: {changed}, when it adds {edit_by} "
         f"({ceiling[edit_by]['changed'][changed]:.0%} of the faces).")

# %% [markdown]
# So the bar can be met, though not by much: the generator's own edits are not all read as
# intended, because the judge misreads a few faces and because one attribute's pixels can change
# how another one looks (the line above names the worst case). The distance between a model's
# figures and these is the model's; the distance between these and a perfect score is the judge's.
#
# The claims below are checked on the attributes of this chapter's pictures, `A.SHOWN`: the five
# that the synthetic faces draw most plainly.

# %% [markdown]
# Read each row against the paper's Sec. 4.1.1, which makes three claims about these vectors: they
# capture semantic concepts such as eyeglasses and bangs; the concepts a plain VAE learns the same
# way are "much less prominent" (Fig. 7); and "being a man is highly correlated with having a
# mustache". Each claim, checked against the results above:

# %% tags=["nbval-ignore-output"]
# The paper's claims, each with what we measured and a verdict computed from it. The asserts
# check what the text around says.
def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def spread(xs):  # "lowest–highest" as percentages
    return f"{min(xs):.0%}–{max(xs):.0%}"


g, v = results["VAE/GAN"], results["VAE"]
vs = vectors["VAE/GAN"]
judged = list(rules.reliable)
cos = torch.nn.functional.cosine_similarity
cos_male = {n: float(cos(vs[n], vs["Male"], dim=0)) for n in NAMES}
others = [n for n in NAMES if n != "Mustache"]
more_often = [n for n in NAMES if g[n]["added"] > v[n]["added"]]
claims = [
    ("the vectors capture semantic concepts",
     f"added in {spread([g[n]['added'] for n in NAMES])} of the faces; the plain reconstructions "
     f"already show them in {spread([g[n]['recon_has'] for n in NAMES])} (most: "
     f"{max(NAMES, key=lambda n: g[n]['recon_has'])})",
     all(g[n]["added"] > 2 * g[n]["recon_has"] for n in NAMES)),
    ("a plain VAE's concepts are less prominent (Fig. 7; the paper: *much* less)",
     f"the pictures' attributes added on average in {mean(g[n]['added'] for n in NAMES):.0%} of the faces by the "
     f"VAE/GAN, {mean(v[n]['added'] for n in NAMES):.0%} by the VAE (more often by the VAE/GAN: "
     + (", ".join(more_often) or "none") + f"); all {len(judged)} read reliably: "
     f"{bars['VAE/GAN']['added_mean']:.0%} and {bars['VAE']['added_mean']:.0%}, more often by the "
     f"VAE/GAN for {sum(g[n]['added'] > v[n]['added'] for n in judged)} of them",
     mean(g[n]["added"] for n in NAMES) > mean(v[n]["added"] for n in NAMES)
     and bars["VAE/GAN"]["added_mean"] > bars["VAE"]["added_mean"]),
    ("being a man is highly correlated with having a mustache",
     f"cosine(v_Mustache, v_Male) = {cos_male['Mustache']:.2f}; for the other four "
     f"{min(cos_male[n] for n in others):.2f} to {max(cos_male[n] for n in others):.2f}",
     cos_male["Mustache"] > max(abs(cos_male[n]) for n in others)),
]
assert all(holds for _, _, holds in claims), claims
# "by less over all of them": the VAE/GAN's lead on the pictures' attributes shrinks over all
lead_pictured = mean(g[n]["added"] for n in NAMES) - mean(v[n]["added"] for n in NAMES)
assert bars["VAE/GAN"]["added_mean"] - bars["VAE"]["added_mean"] < lead_pictured
rows = ["| the paper (Sec. 4.1.1) | ours (VAE/GAN, s = 1) | holds? |", "|---|---|---|"]
rows += [f"| {c} | {ours} | {'yes' if holds else 'no'} |" for c, ours, holds in claims]
Markdown("\n".join(rows))

# %% [markdown]
# The claims hold, on the pictures' attributes, and the second also over all those the judge
# reads reliably, though by less; by how much is a matter of degree the paper's "much" does not
# pin down, and with one model of each kind there is no spread over training runs to weigh the
# margin against (chapter 6 has one for the models it compares). "Already show them" counts the faces that lack an attribute whose plain
# reconstruction the judge reads with it (a misreading, or the decoder drawing a trace of it):
# "added" counts them too, so the first claim asks for at least twice that. The paper says nothing
# about what else an edit changes, and there the comparison turns round: the VAE keeps the other
# attributes better.

# %% tags=["nbval-ignore-output"]
# The other attributes, VAE/GAN against VAE.
kept_better = [n for n in judged if v[n]["kept"] > g[n]["kept"]]
both_better = [n for n in judged if v[n]["both"] > g[n]["both"]]
assert bars["VAE"]["kept_mean"] > bars["VAE/GAN"]["kept_mean"]  # what the text says
assert mean(v[n]["both"] for n in judged) > mean(g[n]["both"] for n in judged)
Markdown(f"Over the {len(judged)} attributes read reliably, the others are kept in "
         f"{bars['VAE/GAN']['kept_mean']:.0%} of the VAE/GAN's edits and "
         f"{bars['VAE']['kept_mean']:.0%} of the VAE's (the VAE keeps them better for "
         f"{len(kept_better)} of the {len(judged)}), and an edit that adds the attribute and keeps "
         f"the others at once (**both**) succeeds in {mean(g[n]['both'] for n in judged):.0%} "
         f"against {mean(v[n]['both'] for n in judged):.0%} (the VAE more often for "
         f"{len(both_better)} of them).")

# %% [markdown]
# A likely reason, which this chapter does not measure: a sharper decoder draws more of every
# feature, the ones nobody asked for included. A vector that carries a little of another
# attribute (they are differences of means over correlated labels) shows it more plainly in the
# VAE/GAN's picture, where the VAE's blur washes it out. The section "Why not every edit works"
# below looks at the causes. Either way, an edit works on some faces, not on *every* face: how
# often the attribute appears and the others stay put, both at once, is far from always:

# %% tags=["nbval-ignore-output"]
# How reliable the VAE/GAN's edits are.
both = {n: g[n]["both"] for n in NAMES}
best, worst = max(both, key=both.get), min(both, key=both.get)
assert max(both.values()) < 0.95  # "far from always"
assert mean(g[n]["added"] for n in NAMES) > 0.5  # the summary's "often"
Markdown(f"VAE/GAN at s = 1, added with the others kept (**both**): best {best} in "
         f"{both[best]:.0%} of the faces, worst {worst} in {both[worst]:.0%}; on average "
         f"{mean(both.values()):.0%}.")

# %% [markdown]
# Three things stand between these vectors and an edit that always works. The next section measures
# the first, scale.
#
# ## Scale is a knob
#
# The authors' code adds each vector once (s = 1). Nothing forces that: a smaller s gives a fainter
# edit, a larger one a stronger edit and, sooner or later, a face that is no longer the same person
# (the other attributes start to change too). Sweeping s shows the trade-off per attribute. Each
# point of the curves costs an edit of every face, so the sweep judges the first quarter of the
# table's held-out faces; its figures at s = 1 differ from the table's by that sample's chance:

# %% mystnb={"image": {"alt": "Fraction of faces with the attribute added, and with the others kept, against the vector's scale s, per attribute: VAE/GAN solid, VAE dotted"}} tags=["nbval-ignore-output"]
# A curve of the same measurements, on fewer faces than the table (a curve needs many points).
scales = [0.5, 1.0, 2.0] if preset.name == "smoke" else [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
n_sweep = N_TEST // 4
sweep = {s: {name: A.attribute_success(model, judge, test_x[:n_sweep], test_y[:n_sweep], vectors[name],
                                       NAMES, rules, scale=s)
             for name, model in (("VAE/GAN", vaegan), ("VAE", vae))} for s in scales}
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6), sharey=True, layout="constrained")
for ax, key in zip(axes, ("added", "kept"), strict=True):
    for i, n in enumerate(NAMES):  # a colour and a marker per attribute, a line style per model
        for name, style in (("VAE/GAN", "-"), ("VAE", ":")):
            ax.plot(scales, [sweep[s][name][n][key] for s in scales], style, color=f"C{i}",
                    marker="osD^v"[i % 5], markersize=4,
                    label=n if key == "added" and name == "VAE/GAN" else None)  # fmt: skip
    ax.axvline(1.0, color="gray", lw=0.8)  # the authors' scale
    ax.set_xlabel("scale s (grey line: the authors' s = 1)")
    ax.set_title(f"{key} (solid: VAE/GAN, dotted: VAE)")
axes[0].set_ylabel("fraction of faces")
fig.legend(loc="outside lower center", ncol=len(NAMES), fontsize=8)  # below, off the curves
plt.show()
assert all(0 <= sweep[s][m][n][k] <= 1 for s in scales for m in sweep[s] for n in NAMES
           for k in ("added", "kept"))

# %% [markdown]
# ## Why not every edit works
#
# Computed from the sweep, the judge's table and the results above:

# %% tags=["nbval-ignore-output"]
# Three reasons, each with its numbers; the asserts check what the sentences say.
top = max(scales)
at1 = {k: {n: sweep[1.0]["VAE/GAN"][n][k] for n in NAMES} for k in ("added", "kept")}
atop = {k: {n: sweep[top]["VAE/GAN"][n][k] for n in NAMES} for k in ("added", "kept")}
short = sorted(NAMES, key=at1["added"].get)[:3]  # the three added least often at s = 1
assert all(atop["added"][n] > at1["added"][n] for n in short)
assert mean(atop["kept"].values()) < mean(at1["kept"].values())
recon = acc["VAE/GAN Dec(μ)"]
drop = {n: acc["drawn faces"][n] - recon[n] for n in NAMES}
lossy = [n for n in sorted(NAMES, key=drop.get, reverse=True) if drop[n] > 0.02][:3]
assert lossy  # the reconstructions lose some attribute
flips = {b: mean(g[n]["changed"][b] for n in NAMES if b in g[n]["changed"]) for b in judged
         if any(b in g[n]["changed"] for n in NAMES)}
moved = sorted(flips, key=flips.get, reverse=True)[:2]
Markdown(f"""
- *At s = 1 the step can be too short.* On the sweep's {n_sweep} faces, the three attributes
  added least often at s = 1 ({", ".join(short)}) appear in {spread([at1["added"][n] for n in short])} of the faces; at
  s = {top:g} in {spread([atop["added"][n] for n in short])}. The price is paid in "kept": on
  average the other attributes stay as they were in {mean(at1["kept"].values()):.0%} of the faces
  at s = 1, and in {mean(atop["kept"].values()):.0%} at s = {top:g}.
- *The reconstructions lose thin features.* With no vector added, the judge reads
  {", ".join(f"{n} right on {recon[n]:.0%}" for n in lossy)} of the VAE/GAN's reconstructions,
  against {spread([acc["drawn faces"][n] for n in lossy])} of the drawn faces. A half-drawn feature
  can be read either way, and such a reading flips under small edits: of the other attributes,
  {moved[0]} ({flips[moved[0]]:.0%} of the faces on average) and {moved[1]}
  ({flips[moved[1]]:.0%}) change their reading most often when a vector is added (the `changed`
  entry of each result).
- *Correlated attributes move together*: cosine(v_Mustache, v_Male) = {cos_male["Mustache"]:.2f}.
  The next section looks at it.
""")

# %% [markdown]
# A longer step trades one failure for another, and it does not address the other two. It moves
# the code, not the decoder, whose plain reconstructions already draw some features by halves;
# and a longer step along v<sub>Mustache</sub> is by the same factor a longer step along the part
# of it that points along v<sub>Male</sub> (their cosine, above). Better reconstructions need a
# larger model (chapter 4's `gpu` preset); the exercises try other vectors.

# %% [markdown]
# ## Correlated attributes: the mustache comes with a man
#
# The paper warns that the simple difference of means "will have problems with highly correlated
# visual attributes" (its example: heavy makeup and wearing lipstick), and sees in its Fig. 6 that
# "being a man is highly correlated with having a mustache". In our synthetic faces only men have
# mustaches (as in CelebA, nearly), so the faces *with* a mustache differ from those without in two
# ways at once, and v<sub>Mustache</sub> carries both. The cosine similarity between the vectors
# shows it:

# %% tags=["nbval-ignore-output"]
# Cosines of the shipped models' vectors (the last digit may differ on another CPU); the assert
# checks what the text says: v_Mustache points nearly along v_Male, v_Eyeglasses does not.
cosines = {a: float(cos(vs[a], vs["Male"], dim=0)) for a in ("Mustache", "Eyeglasses")}
for a, c in cosines.items():
    print(f"cosine(v_{a}, v_Male) = {c:.2f}")
assert cosines["Mustache"] > 0.5 > abs(cosines["Eyeglasses"]), cosines

# %% [markdown]
# One remedy is to compare like with like: take the difference of means *among men only*, which
# removes what separates men from women. How many of the women (held out, no mustache) does each
# vector turn into a "man", according to the judge, and how many get a mustache?

# %% tags=["nbval-ignore-output"]
# The judge's readings of many faces (a face near the judge's threshold can read differently on
# another CPU).
images, labels, _ = train_set
is_man = labels[:, col["Male"]] > 0.5
v_within = A.attribute_vectors(vaegan, (images[is_man], labels[is_man], attr_names),
                               names=["Mustache"])["Mustache"]
women = test_x[test_y[:, col["Male"]] < 0.5]
z = A.encode(vaegan, women)
readings = {}  # vector => (fraction with a mustache, fraction judged male)
for label, v in (("v_Mustache (all faces)", vs["Mustache"]), ("v_Mustache (men only)", v_within)):
    p = judge.predict(A.decode(vaegan, z + v)).float().mean(0)
    readings[label] = (float(p[col["Mustache"]]), float(p[col["Male"]]))
    print(f"{label:24s} mustache {p[col['Mustache']]:.1%}  judged male {p[col['Male']]:.1%}")
print(f"{'no vector':24s} judged male "
      f"{judge.predict(A.decode(vaegan, z)).float().mean(0)[col['Male']]:.1%}")
# What the text below says: men only, far fewer women turn "male", and most of the mustache goes.
(must_all, male_all), (must_men, male_men) = readings.values()
assert male_men < male_all / 2 and must_men < must_all / 2, readings

# %% mystnb={"image": {"alt": "Four held-out women: the input, its reconstruction, plus the mustache vector of all faces, and plus the mustache vector of men only"}}
idx = torch.arange(4)
grid = torch.stack([women[idx], A.decode(vaegan, z[idx]), A.decode(vaegan, z[idx] + vs["Mustache"]),
                    A.decode(vaegan, z[idx] + v_within)], 1).flatten(0, 1)
show_grid(grid, nrow=4, scale=1.7, title="input | Dec(μ) | + v_Mustache | + v_Mustache (men only)")
plt.show()

# %% [markdown]
# The men-only vector turns far fewer women into men, and it also draws far fewer mustaches: in
# these small models, most of what v<sub>Mustache</sub> draws on a woman's face came with "male".
# A difference of means carries whatever the data ties to its attribute, and choosing whom to
# average over unties the two. Women are where the tie shows, not where the edit belongs: whether
# the men-only vector still draws a mustache on men is exercise 4.

# %% [markdown]
# ## Interpolation
#
# The latent space is also smooth between faces: decoding the points on the straight line between
# two codes morphs one face into the other. The VAE/GAN's intermediate faces stay faces; the VAE's
# are blurrier blends (the line under the picture measures it).

# %% mystnb={"image": {"alt": "Eight faces on the line from one held-out face's code to another's, decoded by the VAE/GAN in the top row and by the VAE in the bottom row"}}
za, zb = A.encode(vaegan, test_x[:2])
wa, wb = A.encode(vae, test_x[:2])
rows = torch.cat([A.decode(vaegan, A.interpolate(za, zb, 8)), A.decode(vae, A.interpolate(wa, wb, 8))])
show_grid(rows, nrow=8, scale=1.7, title="VAE/GAN (top) and VAE (bottom): face 1 to face 2")
plt.show()

# %% tags=["nbval-ignore-output"]
# "Blurrier", measured (a float's last digits can differ between CPUs).
sharp = {m: float(sharpness(r).mean())
         for m, r in zip(("VAE/GAN", "VAE"), rows.split(8), strict=True)}
assert sharp["VAE/GAN"] > 2 * sharp["VAE"]
Markdown(f"Sharpness along the line: VAE/GAN {sharp['VAE/GAN']:.3f}, VAE {sharp['VAE']:.3f}.")

# %% [markdown]
# ## The live widget (needs a kernel)
#
# The original face and the edited one side by side, a slider per attribute vector (those of
# `A.IN_WIDGETS`: the five shown above and `Male`, each with a button for s = 1, the authors'
# scale), a face picker with thumbnails, a switch between the VAE/GAN and the VAE (Fig. 6 against
# Fig. 7), a random face z<sub>p</sub> ~ N(0, I) (its original is the sample Dec(z<sub>p</sub>) itself) and a
# reset button; every change re-runs the decoder in the Python kernel. It works in Jupyter and
# Colab. The published book has no kernel, so the cell below was not run for it (its tag
# `skip-execution`): run it in Jupyter or Colab, or use the in-browser widget of the next section.

# %%
from vaegan_lite.book.widgets import latent_arithmetic

show_source(latent_arithmetic, lines=(1, 12))

# %% tags=["skip-execution", "nbval-ignore-output"]
# An interactive widget: its output is a live view, nothing in it to compare.
latent_arithmetic({"VAE/GAN": (vaegan, vectors["VAE/GAN"]), "VAE": (vae, vectors["VAE"])},
                  test_x[:12])

# %% [markdown]
# ## The same widget in your browser, without a kernel
#
# The book is a set of static pages. To keep the arithmetic interactive there, the decoder is
# exported with `torch.onnx` to an ONNX file and run by ONNX Runtime Web, compiled to WebAssembly,
# in the reader's browser. Every file it needs is part of the built book, nothing is fetched from
# another site: the runtime, one decoder per model, each model's vectors and the faces' codes.
# `make pretrained` writes them (`vaegan_lite.book.web.book_assets`). A local copy of the book
# works offline too, but not opened as files: browsers refuse to run the widget from a `file://`
# address, so serve the built book over HTTP, e.g. `python -m http.server -d _build/html` and open
# `http://localhost:8000/`, or from Python with `vaegan_lite.book.web.serve`.

# %%
from vaegan_lite.book import web

show_source(web.export_decoder)

# %% tags=["nbval-checkout-output"]
static = web.checkout_static()  # book/_static/latent/ of the repository (not in a pip install)
if static is not None:
    runtime = json.loads((static / "runtime.json").read_text())
    print(f"ONNX Runtime Web {runtime['version']} ({runtime['license']} licence)")
    for name in [*web.RUNTIME_FILES, "latent-widget.js", *web.data_files()]:
        print(f"  _static/latent/{name:28s} {(static / name).stat().st_size / 1e6:6.2f} MB")
else:
    print("The widget's files live in the repository's book/_static/latent/.")

# %% [markdown]
# Most of the download is the runtime. It and the decoder are fetched only when you scroll near the
# widget, so a reader who stops earlier downloads only two small scripts; then a bar shows how far
# it got, and the VAE's decoder is fetched only when you switch to it. Decoding a face takes milliseconds (the widget shows its own
# time under the pictures; `benchmarks/web_decode.py` measures it in headless Chromium), so the
# picture follows the sliders. The same controls as the live widget, with s = 1 marked on the
# sliders' scale. Pick a face, move a slider, switch the decoder:

# %%
HTML(web.widget_html("../_static/latent/"))

# %% [markdown]
# ## Summary
#
# - An attribute vector is a difference of mean latent codes (Sec. 4.1.1); adding it to a face's
#   code and decoding edits the face. Measured on the same faces, the VAE/GAN's edits are sharper
#   than the VAE's and, judged, more often there (Fig. 6 against Fig. 7); the VAE keeps the other
#   attributes better, so it more often makes exactly the edit asked for.
# - A classifier trained on the ground truth turns Fig. 6 into numbers for every attribute: how
#   often the attribute appears on the faces that could carry it, and how often every other
#   attribute the judge reads reliably stays put (apart from those the data ties to it or that it
#   replaces). The paper's claims hold for these two models, the second by a margin with no
#   seed spread to judge it against (one model of each kind); the edits work often, not on every
#   face.
# - Three things limit an edit: a step (s = 1) too short for some attributes, reconstructions that
#   draw thin features by halves, and correlated attributes. A longer step trades the first for
#   changes in the other attributes.
# - Correlated labels make correlated vectors. Comparing like with like (men only) removes the push
#   towards "male", but in these small models most of the mustache goes with it.
# - With the decoder exported to ONNX, the arithmetic runs in any browser, no kernel needed.
#
# ## Exercises
#
# 1. Combine vectors: `A.combine(vs, {"Eyeglasses": 1, "Smiling": -1})` adds glasses and takes a
#    smile away. On the held-out faces that have a smile and no glasses, how often does the judge
#    see both changes at once? Is it about the product of the two single edits' rates?
# 2. Compute the vectors from sampled codes z ~ q(z|x) (`sampled=True`) instead of the means, and
#    compare them with the means' vectors by cosine similarity. Repeat with fewer faces (a tenth of
#    `N_VECTORS`, a hundredth): when do the two ways start to differ, and does the success table
#    change?
# 3. Find, per attribute, the scale that maximises **both** (use `A.attribute_success` with
#    `scale=s`). Is it the same for the VAE/GAN and the VAE? Why might the VAE need a longer step?
# 4. Untie the mustache without choosing whom to average: subtract from v<sub>Mustache</sub> its
#    projection on v<sub>Male</sub> (Gram–Schmidt) and judge the result on the women as above. How
#    does it compare with the men-only vector? What does the projection remove that it should not?
#    Then judge both vectors where a mustache belongs, on the held-out men without one: does the
#    men-only vector add it as often as v<sub>Mustache</sub> does?
# 5. Interpolate along a great circle instead of a straight line (spherical interpolation, "slerp").
#    Under the prior, codes lie near a sphere; compare the norms of the midpoints of both paths and
#    the sharpness of the faces decoded there.
# 6. With a CelebA run of chapter 4 on a GPU, pass `load_split("celeba", root, "train")` as the
#    data set to `attribute_vectors` and redraw Fig. 6. The paper's own example of correlated
#    attributes is heavy makeup and lipstick: what is the cosine of their vectors?
