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
# or has bangs, or smiles (Fig. 6). The vectors come from nothing more than averages of codes, and
# the VAE/GAN's edits look far better than a plain VAE's (Fig. 7). This chapter computes those
# vectors, measures how well the arithmetic works with a judge that cannot be fooled by a pretty
# picture, looks at what goes wrong when attributes travel together (mustache and male), and ends
# with two widgets to try it: one that needs a Python kernel, and one that runs in this page.

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q git+https://github.com/vaegan-lite/vaegan-lite
    pass

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torchvision.transforms.functional as TF
from IPython.display import HTML, Markdown

from vaegan_lite import attributes as A
from vaegan_lite.book.plotting import show_grid
from vaegan_lite.book.runs import running_box
from vaegan_lite.book.source import show_source
from vaegan_lite.classifier import accuracy
from vaegan_lite.config import get_preset
from vaegan_lite.data import SyntheticFaces
from vaegan_lite.shipped import pretrained

preset = get_preset()
# The authors averaged the codes of 10,000 training images; the smoke preset uses fewer.
N_VECTORS = 2000 if preset.name == "smoke" else 10000
N_TEST = 300 if preset.name == "smoke" else 2000  # held-out faces for the success rates
print(f"preset: {preset.name}; vectors from {N_VECTORS} faces, judged on {N_TEST} held-out faces")

# %% tags=["nbval-ignore-output"]
# The measured times change whenever tools/time_chapters.py runs again.
running_box("05_latent_arithmetic")

# %% [markdown]
# ## Goals
#
# - Compute visual attribute vectors the way the paper does, and know the one detail in which the
#   authors' code differs.
# - Redraw Fig. 6 (VAE/GAN) and Fig. 7 (VAE) on held-out faces.
# - Measure, attribute by attribute, how often adding a vector makes the attribute appear while
#   leaving the others alone, for the VAE/GAN and for the VAE.
# - See why correlated attributes (mustache and male) leak into each other, and one way around it.
# - Interpolate between faces.
# - Play with the arithmetic: in a live widget with a kernel, and in a static widget that decodes in
#   your browser.
#
# ## The models: shipped with the package
#
# Attribute vectors need a trained encoder and decoder. Chapter 4 trains a VAE/GAN; to keep this
# chapter quick at every preset, the package ships two small models trained on the synthetic faces:
# `synthetic-vaegan` and, for Fig. 7's comparison, `synthetic-vae`, with the same networks, data
# and steps. They have the book's `cpu` widths (a quarter of Table 1's) but the paper's image size,
# 64x64, and its 128-dimensional latent space: at the `cpu` preset's 32x32 a smile is a pixel or
# two of mouth, and models that small lose it. A third shipped network is the judge we meet below,
# which reads faces at the same 64x64. `make pretrained` retrains them all from scratch; each has a
# provenance file with the exact config, command, commit, sha256, training time and machine, and
# the sha256 is checked when it is loaded.

# %%
vaegan = pretrained("synthetic-vaegan")
vae = pretrained("synthetic-vae")
judge = pretrained("attribute-classifier-64")
rows = ["| model | trained | steps | parameters | file | training time |", "|---|---|---|---|---|---|"]
for m in (vaegan, vae, judge):
    p = m.provenance
    what = p["config"]["model"]["model"] if "model" in p["config"] else "classifier"
    steps = p.get("training_steps", p.get("training", {}).get("steps"))
    rows.append(f"| `{p['name']}` | {what} | {steps} | {p['parameters']:,} | "
                f"{p['bytes'] / 1e6:.2f} MB | {p['training_seconds'] / 60:.0f} min |")
Markdown("\n".join(rows))

# %% [markdown]
# The weights are stored as float16 to keep the files small enough for the repository, and
# are loaded back as float32. (The training times were measured on a shared 2-core machine that
# was busy with other work; see each model's `.provenance`.)
#
# ## Attribute vectors
#
# Sec. 4.1.1 of the paper: encode labelled images, and for each attribute *a* take the mean code of
# the images that have it minus the mean code of those that don't:
#
# > v<sub>a</sub> = mean{ μ(x) : x has *a* } − mean{ μ(x) : x lacks *a* },
#
# where μ(x) is the encoder's mean. An edit is then Dec(μ(x) + s·v<sub>a</sub>), with s = 1 in the
# paper. The authors' code averaged *sampled* codes z ~ q(z|x) rather than the means;
# over thousands of faces the sampling noise averages out (`sampled=True` does it their way).
# Nothing else is needed: no labels were used in training, only to find the directions afterwards.

# %%
show_source(A.attribute_vectors)

# %% [markdown]
# We use the first `N_VECTORS` training faces (the authors used the first 10,000 CelebA training
# images) and the five attributes that the synthetic faces draw most plainly, plus `Male`, which we
# need later.

# %%
NAMES = list(A.SHOWN)  # Eyeglasses, Bangs, Smiling, Wearing_Hat, Mustache
train_faces = SyntheticFaces(vaegan.train_config.dataset_size, vaegan.image_size,
                             seed=vaegan.train_config.data_seed)
train_set = A.labelled_images(train_faces, N_VECTORS)  # (images, attributes, names), drawn once
vectors = {name: A.attribute_vectors(m, train_set, names=list(A.JUDGED))
           for name, m in (("VAE/GAN", vaegan), ("VAE", vae))}
for name, vs in vectors.items():
    print(f"{name:8s}", "  ".join(f"|v_{a}| = {v.norm():.2f}" for a, v in vs.items()))

# %% [markdown]
# ## Fig. 6 and 7: vectors added to held-out faces
#
# The faces below were not in either model's training set (`held_out_faces` takes the synthetic
# faces after the training ones). Each row: the input, its reconstruction Dec(μ(x)),
# then the reconstruction with one attribute vector added.

# %%
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
attribute_grid(vae, faces, vectors["VAE"], NAMES, title="VAE (Fig. 7)")
plt.show()


# %% [markdown]
# As in the paper, both models find the directions, and the VAE/GAN draws them with sharper
# detail: the VAE's glasses and hat brims are softer and its faces blurrier, because its decoder was
# trained with a pixel-wise loss that rewards averages (chapter 1).
#
# ## Did it work? A judge trained on the ground truth
#
# "Looks right" is not a measurement. The synthetic faces come with exact labels, so we train an
# attribute classifier on them: a small convnet, trained only on the drawn faces and their true
# attributes (another data seed, so none of its faces is one of ours), never on a model's outputs,
# so it has not learnt any decoder's habits. Its training images were blurred and noised a little
# so that a soft but visible pair of glasses still counts. It reads faces at 64x64, the models'
# own size: the package's other judge, `attribute-classifier` for the `cpu` preset's 32x32 models of
# chapters 6 and 7, would first shrink each face to 32x32, where a smile is a pixel or two of
# mouth. How good a judge is it? On held-out drawn faces, on the same faces blurred more than any of
# its training images (a Gaussian of σ = 1.2 pixels; its training blur is at most a 3x3 box), and
# on each model's reconstructions:

# %%
def agreement(x):  # per attribute, how often the judge's reading matches the true label
    return accuracy(judge, x, test_y)


acc = {"drawn faces": agreement(test_x),
       "drawn, blurred": agreement(TF.gaussian_blur(test_x, kernel_size=5, sigma=1.2)),
       "VAE/GAN Dec(μ)": agreement(vaegan.reconstruct(test_x)),
       "VAE Dec(μ)": agreement(vae.reconstruct(test_x))}
rows = ["| attribute | " + " | ".join(acc) + " |", "|---|" + "---|" * len(acc)]
for n in NAMES + ["Male"]:
    rows.append(f"| {n} | " + " | ".join(f"{a[n]:.1%}" for a in acc.values()) + " |")
Markdown("\n".join(rows))

# %% [markdown]
# The first column is the judge's own error. Blur hardly moves it (the second), so softness alone
# does not fool the judge: the drop in the last two columns is mostly what each autoencoder loses
# when it reconstructs (a reconstruction that drops a smile is read as "not smiling", rightly).
#
# Now the test of Fig. 6. For each attribute *a*, take the held-out faces whose true label says
# they lack it, add v<sub>a</sub> to their codes and decode. **Added**: the fraction in which the
# judge sees *a*. **Kept**: the fraction in which each of the other four attributes reads the same as
# in the plain reconstruction Dec(μ(x)). **Both**: the two at once, face by face.

# %%
show_source(A.attribute_success)

# %% tags=["nbval-ignore-output"]
# Results of the shipped models on many faces: rounded percentages, but a face near the
# judge's threshold can read differently on another CPU, so nbval does not compare them.
def success_table(scale=1.0):
    results = {name: A.attribute_success(model, judge, test_x, test_y, vectors[name], NAMES,
                                         scale=scale)
               for name, model in (("VAE/GAN", vaegan), ("VAE", vae))}
    rows = ["| attribute | faces | VAE/GAN added | kept | both | VAE added | kept | both |",
            "|---|---|---|---|---|---|---|---|"]
    for n in NAMES:
        g, v = results["VAE/GAN"][n], results["VAE"][n]
        rows.append(f"| {n} | {g['n']} | {g['added']:.1%} | {g['kept']:.1%} | {g['both']:.1%} "
                    f"| {v['added']:.1%} | {v['kept']:.1%} | {v['both']:.1%} |")
    return results, "\n".join(rows)


results, table = success_table(1.0)
Markdown(table)
assert all(0 <= r[n][k] <= 1 and r[n]["n"] > 0 for r in results.values() for n in NAMES
           for k in ("added", "kept", "both"))

# %% tags=["nbval-ignore-output"]
# The table above in words (not compared by nbval, for the same reason).
def verdict(results, scale):
    lines = []
    for n in NAMES:
        g = results["VAE/GAN"][n]
        ok = g["added"] >= 0.9 and g["kept"] >= 0.9
        lines.append(f"- **{n}** at scale {scale}: added in {g['added']:.1%}, others kept in "
                     f"{g['kept']:.1%}: " + ("meets" if ok else "**misses**") + " the 90 % / 90 % bar.")
    return Markdown("\n".join(lines))


verdict(results, 1.0)

# %% [markdown]
# **The shipped models do not pass this test.** The bar (the attribute appears in 90 % of the
# faces, the other four stay as they were in 90 %) is the one this project set itself. At the
# `cpu` preset (2,000 held-out faces) the VAE/GAN comes closest with glasses (added in 98 %,
# others kept in 89 %) and is furthest with the mustache (38 % and 70 %). The numbers say why:
#
# - *At s = 1 the step is too short*: bangs, smiles and hats appear in three quarters to four
#   fifths of the faces. Half as long again (s = 1.5, the sweep below) brings all three to
#   97-98 %, at a price in "kept" (75-85 %).
# - *The reconstructions lose the thinnest features* (the table before): smiles, mustaches and
#   glasses are read right on only 83 to 90 % of the VAE/GAN's reconstructions, against 94 to
#   100 % on drawn faces, blurred or not. A half-drawn smile can be read either way, and such a
#   reading flips under small edits. Of the other attributes, the smile's and the mustache's
#   readings are the ones that change most often (the `changed` entry of each result says which
#   attribute moved).
# - *Correlated attributes move together* (below): the mustache vector is nearly the male vector.
#
# What does hold is the paper's qualitative claim: the vectors add their attribute far more often
# than the plain reconstructions show it, and for bangs, smiles and hats more often with the
# VAE/GAN than with the VAE (bangs 80 % against 23 %, smiles 73 % against 47 % at the `cpu`
# preset); the VAE's fainter edits leave the other attributes alone a little more often. Three
# changes have moved these numbers so far: the models' size of image (at the `cpu` preset's 32x32,
# models this small lost the smile entirely: the judge read it right on 52 % of a VAE/GAN's
# reconstructions, chance), a judge that reads faces at their own 64x64 instead of shrinking them,
# and training length. From 6,000 to 10,000 steps "kept" rose for all five attributes (smiles
# 86 % to 89 %, bangs 77 % to 80 %) and "added" for four of them; 12,000 steps added glasses and
# mustaches less often again, so the shipped weights are the 10,000-step ones. Letting the run
# settle did not help either: 3,000 more steps with the learning rate falling to zero
# (`--lr-decay-steps`, see "Running the book") moved the five added/kept pairs by a few points each
# way (glasses 92 %/90 %, bangs 74 %/83 %, smiles 69 %/86 %, hats 87 %/86 %, mustaches 37 %/71 %)
# and gained nothing overall. A larger model (the `gpu` preset on CelebA, or `make pretrained` with
# a bigger recipe) is the way to the bar; `python tools/attribute_bar.py RUN/last.pt` measures a
# candidate as this section does, and `tests/test_pretrained.py` keeps the target as a strict
# expected failure, so the day a shipped recipe meets it, the test says so.
#
# ## Scale is a knob
#
# The paper adds each vector once (s = 1). Nothing forces that: a smaller s gives a fainter
# edit, a larger one a stronger edit and, sooner or later, a face that is no longer the same person
# (the other attributes start to change too). Sweeping s shows the trade-off per attribute:

# %% tags=["nbval-ignore-output"]
# A curve of the same measurements (not compared by nbval, for the same reason).
scales = [0.5, 1.0, 2.0] if preset.name == "smoke" else [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
n_sweep = 100 if preset.name == "smoke" else 500  # fewer faces than the table: it is a curve
sweep = {s: {name: A.attribute_success(model, judge, test_x[:n_sweep], test_y[:n_sweep], vectors[name],
                                       NAMES, scale=s)
             for name, model in (("VAE/GAN", vaegan), ("VAE", vae))} for s in scales}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
for ax, key in zip(axes, ("added", "kept"), strict=True):
    for i, n in enumerate(NAMES):
        for name, style in (("VAE/GAN", "-"), ("VAE", ":")):
            ax.plot(scales, [sweep[s][name][n][key] for s in scales], style, color=f"C{i}",
                    label=f"{n} ({name})" if key == "added" else None)
    ax.axhline(0.9, color="gray", lw=0.8)
    ax.set_xlabel("scale s")
    ax.set_title(f"{key} (solid: VAE/GAN, dotted: VAE)")
axes[0].legend(fontsize=7, ncol=2)
plt.show()
assert all(0 <= sweep[s][m][n][k] <= 1 for s in scales for m in sweep[s] for n in NAMES
           for k in ("added", "kept"))

# %% [markdown]
# ## Correlated attributes: the mustache comes with a man
#
# The paper warns that the simple difference of means "will have problems with highly correlated
# visual attributes", and its arXiv version notes that adding a mustache also made faces more male.
# In our synthetic faces only men have mustaches (as in CelebA, nearly), so the faces *with* a
# mustache differ from those without in two ways at once, and v<sub>Mustache</sub> carries both.
# The cosine similarity between the vectors shows it:

# %%
vs = vectors["VAE/GAN"]
cos = torch.nn.functional.cosine_similarity
print("cosine(v_Mustache, v_Male) =", f"{cos(vs['Mustache'], vs['Male'], dim=0):.2f}")
print("cosine(v_Eyeglasses, v_Male) =", f"{cos(vs['Eyeglasses'], vs['Male'], dim=0):.2f}")

# %% [markdown]
# One remedy is to compare like with like: take the difference of means *among men only*, which
# removes what separates men from women. How many of the women (held out, no mustache) does each
# vector turn into a "man", according to the judge, and how many get a mustache?

# %% tags=["nbval-ignore-output"]
# The judge's readings of many faces (not compared by nbval: a face near the judge's threshold
# can read differently on another CPU).
images, labels, _ = train_set
is_man = labels[:, col["Male"]] > 0.5
v_within = A.attribute_vectors(vaegan, (images[is_man], labels[is_man], attr_names),
                               names=["Mustache"])["Mustache"]
women = test_x[test_y[:, col["Male"]] < 0.5]
z = A.encode(vaegan, women)
for label, v in (("v_Mustache (all faces)", vs["Mustache"]), ("v_Mustache (men only)", v_within)):
    p = judge.predict(A.decode(vaegan, z + v)).float().mean(0)
    print(f"{label:24s} mustache {p[col['Mustache']]:.1%}  judged male {p[col['Male']]:.1%}")
print(f"{'no vector':24s} judged male "
      f"{judge.predict(A.decode(vaegan, z)).float().mean(0)[col['Male']]:.1%}")

# %%
idx = torch.arange(4)
grid = torch.stack([women[idx], A.decode(vaegan, z[idx]), A.decode(vaegan, z[idx] + vs["Mustache"]),
                    A.decode(vaegan, z[idx] + v_within)], 1).flatten(0, 1)
show_grid(grid, nrow=4, scale=1.7, title="input | Dec(μ) | + v_Mustache | + v_Mustache (men only)")
plt.show()

# %% [markdown]
# ## Interpolation
#
# The latent space is also smooth between faces: decoding the points on the straight line between
# two codes morphs one face into the other. The VAE/GAN's intermediate faces stay faces; the VAE's
# are blurrier blends.

# %%
za, zb = A.encode(vaegan, test_x[:2])
wa, wb = A.encode(vae, test_x[:2])
rows = torch.cat([A.decode(vaegan, A.interpolate(za, zb, 8)), A.decode(vae, A.interpolate(wa, wb, 8))])
show_grid(rows, nrow=8, scale=1.7, title="VAE/GAN (top) and VAE (bottom): face 1 to face 2")
plt.show()

# %% [markdown]
# ## The live widget (needs a kernel)
#
# A slider per attribute vector, a face picker, a random face z<sub>p</sub> ~ N(0, I) and a
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
# in the reader's browser. Every file it needs is part of the built book (nothing is fetched from
# another site, so it also works offline from a local copy): the runtime, the decoder, the vectors
# and the faces' codes. `make pretrained` writes them (`vaegan_lite.book.web.book_assets`).

# %%
from vaegan_lite.book import web

show_source(web.export_decoder)

# %%
static = Path(web.STATIC)  # book/_static/latent/ of the repository (not in a pip install)
if static.is_dir():
    runtime = json.loads((static / "runtime.json").read_text())
    print(f"ONNX Runtime Web {runtime['version']} ({runtime['license']} licence)")
    for name in [*web.RUNTIME_FILES, "latent-widget.js", *web.data_files()]:
        print(f"  _static/latent/{name:28s} {(static / name).stat().st_size / 1e6:6.2f} MB")
else:
    print("The widget's files live in the repository's book/_static/latent/.")

# %% [markdown]
# Decoding one face takes about 4 milliseconds in a browser on the project's machine
# (`benchmarks/web_decode.py` measures it in headless Chromium), so the picture follows the
# sliders. Pick a face, move a slider:

# %%
HTML(web.widget_html("../_static/latent/"))

# %% [markdown]
# ## Summary
#
# - An attribute vector is a difference of mean latent codes; adding it to a face's code and
#   decoding edits the face. The VAE/GAN and the VAE find similar directions; the VAE/GAN draws the
#   result sharply.
# - A classifier trained on the ground truth turns Fig. 6 into numbers per attribute: how often the
#   attribute appears, and how often the others stay put.
# - Correlated labels make correlated vectors. Comparing like with like (men only) removes the push
#   towards "male", but in these small models most of the mustache goes with it.
# - Judged by a classifier trained on the ground truth, the shipped models miss the 90 % / 90 %
#   bar: the edits work often, not reliably.
# - With the decoder exported to ONNX, the arithmetic runs in any browser, no kernel needed.
#
# **Try it.** Combine vectors (`A.combine(vs, {"Eyeglasses": 1, "Smiling": -1})`); compute vectors
# from sampled codes (`sampled=True`) and compare them with the means; with a CelebA run of chapter
# 4 on a GPU, pass `load_split("celeba", root, "train")` as the data set to
# `attribute_vectors`.
