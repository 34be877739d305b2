# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. The paper's experiments, rerun
#
# Chapters 1 to 4 each trained one model and looked at it. The paper's case
# {cite}`larsen2016autoencoding` rests on comparisons: five models side by side (Fig. 3 and 4),
# the weight $\gamma$ between its two decoder losses (Fig. 5), conditional models scored by an
# attribute regressor (Table 2), and a nearest-neighbour test of the discriminator's features
# (Sec. 4). This chapter reruns all of them, over several seeds, and checks each claim against
# the numbers that come out, including the ones that do not hold here.

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q git+https://github.com/vaegan-lite/vaegan-lite
    pass

# %%
import json
import statistics

from IPython.display import Image, display

from vaegan_lite import metrics
from vaegan_lite.book import experiments
from vaegan_lite.book.diagrams import diagram
from vaegan_lite.book.runs import get_preset, running_box
from vaegan_lite.book.source import show_source
from vaegan_lite.config import PLANS, PRESETS

# At the gpu preset, unless asked for the paper's whole plan, a plan that fits one session
# (experiments.chapter_plan, below): it says what it trains, and for how long, before it starts.
preset, plan = experiments.chapter_plan(get_preset())
print(f"preset: {preset.name} ({preset.image_size}x{preset.image_size}, width {preset.width}, "
      f"{preset.steps} steps per model)")
print(plan)

# %% tags=["nbval-ignore-output"]
# How long this chapter takes, as measured on the machines the box names.
running_box("06_experiments", session_s=experiments.SESSION_TRAIN_S)

# %% [markdown]
# ## Goals
#
# - Train the five models of Fig. 3 and 4 over several seeds and measure what the paper shows
#   in pictures: how close reconstructions are (MSE), how sharp images are, and how close samples
#   are to real faces (a Fréchet distance).
# - Sweep $\gamma$ (Eq. 9) and watch the trade-off between reconstructing $\mathrm{Dis}_l$
#   features and fooling the discriminator.
# - Rebuild Table 2 with conditional VAE, GAN and VAE/GAN and an attribute regressor.
# - Repeat Sec. 4's nearest-neighbour test: are $\mathrm{Dis}_l$ features a better metric than
#   pixels?
# - Say plainly which claims hold on the synthetic faces and which do not, and why.
#
# ## How the results are made
#
# Everything below comes from one function, `experiments.reproduce`, which trains (or reads
# back) every run the preset's plan lists and measures it. `benchmarks/reproduce.py` calls it from
# the command line and writes a results JSON and the figures; the chapter reads those results when
# they exist for exactly this preset, plan and run settings, and reruns everything otherwise.
# With the `cpu` preset the book reads the committed `vaegan_lite/results/experiments-cpu/`;
# `python benchmarks/reproduce.py --preset cpu --jobs 2 --rerun`, in a clone of the repository,
# makes them again. With `smoke` every run takes a second, so the numbers there only show that
# the code runs. At the `gpu` preset the whole plan, dozens of runs as long as the authors' code
# trains, takes days on one GPU; unless `VAEGAN_FULL_PLAN=1` asks for it, the chapter trains a plan
# that fits one session: the runs of the `gpu-synthetic` plan described at the end, at the preset's
# size and on its data, each as long as the training time in the box above allows on the
# reader's GPU, then measures them:
#
# %%
show_source(experiments.chapter_plan)

# %% [markdown]
# The runs, each a `TrainConfig` of this preset's size:

# %%
show_source(experiments.run_configs)

# %% tags=["nbval-ignore-output"]
# Provenance and the time taken differ from run to run.
results, folder = experiments.load_or_reproduce(preset, plan, progress=False)
prov = results.get("provenance", {})
code, machine = prov.get("code", {}), prov.get("machine", {})
n_runs = len(experiments.run_configs(preset, plan, len(results["attr_names"])))
trained = len(results.get("trained_runs", []))
print(f"{n_runs} runs; results from commit {str(code.get('git_commit'))[:10]} "
      f"({prov.get('date')}, torch {prov.get('torch')}), made in {results['seconds'] / 60:.0f} min "
      f"on {machine.get('cores')} cores ({machine.get('cpu')}), {prov.get('jobs')} training process(es);\n"
      f"{trained} of the runs trained in that time, {n_runs - trained} read back from earlier")
experiments.check_results(results, plan)  # every run there, every figure finite and in range

# %% [markdown]
# ## The five models (Fig. 3 and 4)
#
# The paper compares, on CelebA:
#
# | model | what it is | taught in |
# |---|---|---|
# | VAE | a VAE with an element-wise Gaussian observation model (its loss: Eq. 3) | chapter 1 |
# | $\mathrm{VAE}_{\mathrm{Dis}_l}$ | a VAE whose likelihood is measured in the $\mathrm{Dis}_l$ features of a GAN trained first and then frozen | chapter 3 |
# | $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ | VAE/GAN with the likelihood in pixels, the GAN term added, and a $\gamma$ of its own (below) | this chapter (the switch: chapter 4) |
# | VAE/GAN | Algorithm 1: the likelihood in $\mathrm{Dis}_l$ of a discriminator that keeps learning | chapter 4 |
# | GAN | Eq. 5 alone (no encoder, so no reconstructions) | chapter 2 |
#
# All five are parts of one diagram, the VAE/GAN's (chapter 4):

# %% tags=["remove-input"]
diagram("vaegan")

# %% [markdown]
# The VAE/GAN (the paper's Fig. 2). The VAE keeps $\mathrm{Enc}$ and $\mathrm{Dec}$ with the
# reconstruction compared in pixels and no $\mathrm{Dis}$; the GAN keeps $\mathrm{Dec}$ on prior
# samples $x_p$ and $\mathrm{Dis}$; $\mathrm{VAE}_{\mathrm{Dis}_l}$ compares in the features of a
# frozen GAN's $\mathrm{Dis}$; $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ is the whole diagram with
# the comparison in pixels.
#
# The paper shows samples (Fig. 3) and reconstructions (Fig. 4). Its claims, in words: the VAE's
# images get blurry away from the face's aligned centre; $\mathrm{VAE}_{\mathrm{Dis}_l}$'s are
# sharper but show "severe noisy artifacts"; "$\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$, VAE/GAN and pure
# GAN produce sharper images with more natural textures and face parts"; the reconstructions
# (Fig. 4) tell the same story, except that $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ "fails to capture
# the same level of detail as VAE/GAN". We measure each model on held-out faces with:
#
# - **reconstruction MSE** per pixel (`metrics.mse`), at the posterior mean $\mu(x)$;
# - **sharpness**, the mean energy of a Laplacian (`metrics.sharpness`), of reconstructions and of
#   samples; the real faces' own value is the target;
# - **FD**, the Fréchet distance between Gaussians fitted to the features of real and generated
#   faces (`metrics.face_fd`): the formula of FID (the Fréchet Inception Distance, the same
#   distance in the features of an ImageNet classifier, Inception) in the features of an
#   attribute classifier trained on the synthetic faces, shipped with the package. It needs no
#   download; its numbers are not FIDs.
#   That classifier was trained to recognise attributes in blurred and noisy faces too
#   (`classifier.augment`), so this FD asks "are the right attributes there, in the right
#   proportions?" and barely sees blur.
# - **texture FD**, the same formula in the features of a fixed, randomly initialised conv net
#   (`metrics.texture_fd`): edge, texture and colour statistics, which blur and noise do move.
# - **reconstruction judge accuracy**: how often that attribute classifier reads each attribute
#   of a reconstruction as the input face's label says, mean over attributes: does the
#   reconstruction keep what the face shows, whatever its sharpness?
#
# Each FD is computed between as many samples as held-out faces; the "real faces" row gives the
# FD between two disjoint sets of real faces, the floor at this sample size.

# %%
show_source(metrics.evaluate)

# %% mystnb={"image": {"alt": "Rows of eight samples from the VAE, VAE_Dis_l, VAE/GAN_Dis_0, VAE/GAN and GAN, above eight real faces"}}
display(Image(filename=str(folder / "fig3_samples.png")))

# %% mystnb={"image": {"alt": "Eight held-out faces above their reconstructions by the VAE, VAE_Dis_l, VAE/GAN_Dis_0 and VAE/GAN"}}
display(Image(filename=str(folder / "fig4_reconstructions.png")))

# %% [markdown]
# Mean ± standard deviation over the seeds:

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the cell that loads them checks
# that every run is there and every figure finite and in range.
experiments.five_model_table(results)

# %% [markdown]
# ## $\gamma$: fidelity against realism (Fig. 5)
#
# VAE/GAN's decoder minimises $\gamma\,\mathcal{L}^{\mathrm{Dis}_l}_{\mathrm{llike}} -
# \mathcal{L}_{\mathrm{GAN}}$ (Algorithm 1, from the combined loss
# $\mathcal{L} = \mathcal{L}_{\mathrm{prior}} + \mathcal{L}^{\mathrm{Dis}_l}_{\mathrm{llike}} +
# \mathcal{L}_{\mathrm{GAN}}$ of Eq. 8). A large $\gamma$ makes the decoder a
# $\mathrm{VAE}_{\mathrm{Dis}_l}$ decoder that also listens a little to the discriminator; a
# small one makes it a GAN generator held loosely to the input. The paper's Fig. 5 shows
# reconstructions for three settings: "If $\mathcal{L}^{\mathrm{Dis}_l}_{\mathrm{llike}}$ is too
# prominent we see artifacts from the feature-based reconstruction. If $\mathcal{L}_{\mathrm{GAN}}$
# is too prominent we loose details in the reconstruction, e.g. mouth shape."
#
# We train VAE/GAN (first seed) with $\gamma$ at the preset's value times each of
# `plan.gamma_factors` and measure the feature reconstruction error (in the model's own
# $\mathrm{Dis}_l$), how far reconstructions are from the inputs (MSE, FD), and how real its own
# discriminator finds its samples. The feature error (a mean over features, where chapter 4's
# $\mathcal{L}_\text{llike}$ is a sum) and $\mathrm{Dis}(\mathrm{Dec}(z_p))$ are measured in each model's own
# discriminator, whose features move with the run, so they describe the balance each run reached
# and are no common yardstick across settings; the FDs compare all of them in the same features.
# The figure after the table plots the measures that share a yardstick against $\gamma$, beside
# the main VAE/GAN's seeds at the preset's $\gamma$: how far one setting is from another,
# against how far one seed is from another.

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the cell that loads them checks
# that every run is there and every figure finite and in range.
experiments.gamma_table(results)

# %% mystnb={"image": {"alt": "Reconstruction MSE, reconstruction FD and sample FD against gamma"}}
display(Image(filename=str(folder / "fig5_tradeoff.png")))

# %% mystnb={"image": {"alt": "Held-out faces with VAE/GAN samples and reconstructions at each gamma"}}
display(Image(filename=str(folder / "fig5_gamma.png")))

# %% [markdown]
# ## Attribute similarity (Table 2)
#
# The paper conditions VAE, GAN and VAE/GAN on LFW's attribute vectors: the vector $y$ is
# concatenated to the input of the top fully connected layer of Enc and Dis, and to Dec's input
# (`ModelConfig(cond_dim=...)`, see `nets.py`). At test time each model draws faces for the test
# set's attribute vectors, and a separately trained regressor, "almost the same architecture as
# Enc", predicts their attributes. Two scores: the cosine similarity between the vector asked
# for and the one predicted (the best of `plan.samples_per_vector` samples per vector, after Yan
# et al.), and the squared error. Our faces' attributes are 0/1, so both sides are mapped to
# $\pm 1$ first; the paper's LFW attributes are real-valued scores, so only the order of the rows
# can be compared, not the values.

# %%
show_source(experiments.AttributeRegressor)

# %%
show_source(experiments.attribute_scores)

# %%
show_source(experiments.table2_scores)

# %% mystnb={"image": {"alt": "Real faces above samples conditioned on their attributes from the conditional VAE, GAN and VAE/GAN"}}
display(Image(filename=str(folder / "fig8_conditional.png")))

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the cell that loads them checks
# that every run is there and every figure finite and in range.
experiments.table2(results)

# %% [markdown]
# ## Discriminator features as a metric (Sec. 4)
#
# The paper's most direct test of a learned similarity: after training a GAN on CIFAR-10, classify
# each test image by the labels of its $k = 5$ nearest training images, once with distances in
# pixels and once in the discriminator's features. Features cut the error from 66.02 % to
# 33.73 % (Sec. 4). Our labels are the synthetic faces' attributes; we report the error averaged
# over them, for the $\mathrm{Dis}_l$ of each seed's GAN and VAE/GAN.

# %%
show_source(experiments.knn_error)

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the cell that loads them checks
# that every run is there and every figure finite and in range.
experiments.knn_table(results)

# %% [markdown]
# ## Which claims hold here
#
# Each row is computed from the results above (means over seeds), not typed. Where the
# difference is no larger than the seeds' spread (the larger standard deviation over seeds of its
# two sides), the verdict says so instead of yes or no: other seeds could reverse it.

# %% tags=["nbval-ignore-output"]
# Verdicts on the results of training (yours may differ from the book's): nothing here is a
# check; the cell after the discussion's figures holds the text to the committed cpu results.
experiments.claims(results)

# %% [markdown]
# What the `cpu` results (the committed ones, which the built book shows) say, and why. The
# discussion below is about those results at every preset; the figures it refers to are computed
# from them:

# %%
cpu_results = json.loads((experiments.results_dir(get_preset("cpu")) / "results.json").read_text())
experiments.discussion_figures(cpu_results)

# %% tags=["hide-input"]
# What the discussion below says of the committed cpu results, held to them (they are the same
# on every machine, so these run in every check of the book).
fm, real, t2 = cpu_results["five_models"], cpu_results["five_models_real"], cpu_results["table2"]
sweep = sorted(cpu_results["gamma_sweep"].values(), key=lambda r: r["gamma"])


def avg(m: str, key: str, rows: dict = fm) -> float:
    return statistics.mean(r[key] for r in rows[m])


def sd(m: str, key: str, rows: dict = fm) -> float:
    return statistics.stdev(r[key] for r in rows[m])


sharp = real["sample_sharpness"]
# Blur: the VAE keeps a fraction of real faces' sharpness, the two VAE/GANs come close to it
assert max(avg("vae", "sample_sharpness"), avg("vae", "recon_sharpness")) < 0.5 * sharp
assert min(avg(m, k) for m in ("vaegan", "vaegan_dis0")
           for k in ("sample_sharpness", "recon_sharpness")) > 0.8 * sharp  # fmt: skip
# texture FD: VAE/GAN's samples several times closer than the VAE's, VAE/GAN_Dis0 and the GAN
# next (level with each other), behind only VAE/GAN
tex = {m: avg(m, "texture_fd") for m in fm}
assert tex["vae"] > 3 * tex["vaegan"] and sorted(tex, key=tex.get)[:3] in (
    ["vaegan", "vaegan_dis0", "gan"], ["vaegan", "gan", "vaegan_dis0"])
assert abs(tex["vaegan_dis0"] / tex["gan"] - 1) < 0.2
assert tex["vaegan"] > 5 * real["texture_fd"]  # ... yet far from two sets of real faces
assert 0.8 < avg("vaegan_dis0", "sample_sharpness") / sharp < 1.25  # about as sharp as real
# VAE/GAN_Dis0's reconstructions: a little less sharp than VAE/GAN's, by more than a seed's
# spread, and closer in MSE and FD
lead = avg("vaegan", "recon_sharpness") - avg("vaegan_dis0", "recon_sharpness")
assert max(sd(m, "recon_sharpness") for m in ("vaegan_dis0", "vaegan")) < lead
assert lead < 0.1 * avg("vaegan", "recon_sharpness")
assert all(avg("vaegan_dis0", k) < avg("vaegan", k) for k in ("mse", "recon_fd"))
# VAE_Dis_l: samples sharper than real faces on average, far sharper in some seeds and about as
# sharp in others; the highest reconstruction FD of the encoders
encoders = ("vae", "vae_disl", "vaegan_dis0", "vaegan")
assert avg("vae_disl", "sample_sharpness") > sharp
disl_sharpness = [r["sample_sharpness"] / sharp for r in fm["vae_disl"]]
assert max(disl_sharpness) > 1.5 and 0.9 < min(disl_sharpness) < 1.1
assert avg("vae_disl", "sample_sharpness") - sharp < sd("vae_disl", "sample_sharpness")
# the GAN trains in every seed: each seed's samples closer in texture than any VAE seed's
assert max(r["texture_fd"] for r in fm["gan"]) < min(r["texture_fd"] for r in fm["vae"])
assert max(encoders, key=lambda m: avg(m, "recon_fd")) == "vae_disl"
# pixel fidelity: the VAE has the lowest reconstruction MSE, VAE/GAN a clearly higher one
assert min(encoders, key=lambda m: avg(m, "mse")) == "vae"
assert avg("vaegan", "mse") > 2 * avg("vae", "mse")
# attribute FD: VAE/GAN and VAE within a seed's spread, VAE/GAN_Dis0 ahead, the GAN behind all
assert abs(avg("vaegan", "fd") - avg("vae", "fd")) < max(sd("vaegan", "fd"), sd("vae", "fd"))
assert avg("vaegan_dis0", "fd") < min(avg("vae", "fd"), avg("vaegan", "fd"))
assert avg("gan", "fd") > max(avg(m, "fd") for m in ("vae", "vaegan", "vaegan_dis0"))
# the gamma sweep: the smallest gamma fools its discriminator most and reconstructs worst, apart
# from the rest by about a seed's spread in MSE and more than two in FD; the rest within one
smallest, rest = sweep[0], sweep[1:]
gap = {k: smallest[k] - max(r[k] for r in rest) for k in ("fooled", "mse", "recon_fd")}
rest_spread = {k: max(r[k] for r in rest) - min(r[k] for r in rest) for k in gap}
assert gap["fooled"] > 3 * rest_spread["fooled"]
assert 0.8 < gap["mse"] / sd("vaegan", "mse") < 1.5
assert gap["recon_fd"] / sd("vaegan", "recon_fd") > 2
assert all(rest_spread[k] < sd("vaegan", k) for k in ("mse", "recon_fd"))
fds = [r["fd"] for r in sweep]
assert fds == sorted(fds, reverse=True) and len(set(fds)) == len(fds)  # falls as gamma grows
# ... and one seed alone widens VAE/GAN's MSE spread, the sweep's yardstick
mse_by_seed = sorted(r["mse"] for r in fm["vaegan"])
assert mse_by_seed[-1] - mse_by_seed[-2] > 3 * (mse_by_seed[-2] - mse_by_seed[0])
# Table 2: conditional VAE/GAN first (lowest MSE, highest cosine), then the VAE, the GAN last;
# VAE/GAN's lead over the VAE in MSE less than half a standard deviation
for key, best_first in (("mse", False), ("cosine", True)):
    order = sorted(("vae", "gan", "vaegan"), key=lambda m: avg(m, key, t2), reverse=best_first)
    assert order == ["vaegan", "vae", "gan"], (key, order)
assert 0 < (avg("vae", "mse", t2) - avg("vaegan", "mse", t2)) / sd("vaegan", "mse", t2) < 0.5
# Sec. 4: a GAN's Dis_l beats pixels in every seed, VAE/GAN's on average by about a seed's
# spread, but not in every seed
knn, pixels = cpu_results["knn"], statistics.mean(cpu_results["knn"]["pixels"])
assert all(statistics.mean(e) < pixels for e in knn["gan"])
per_seed = [statistics.mean(e) for e in knn["vaegan"]]
assert 0.7 < (pixels - statistics.mean(per_seed)) / statistics.stdev(per_seed) < 1.5
assert not all(e < pixels for e in per_seed)

# %% [markdown]
# **Blur, the paper's main point, holds.** The VAE's samples and reconstructions have a fraction of
# real faces' sharpness; the two VAE/GANs' come close to it. Sharpness alone would also reward
# noise, so the texture FD, which blur and noise both move, is the firmer measure: it puts
# VAE/GAN's samples several times closer to real faces than the VAE's, though still far from the
# real faces' own (the "real faces" row: two sets of real faces), with
# $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ and the GAN next: "$\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$,
# VAE/GAN and pure GAN produce sharper images with more natural textures and face parts", as the
# paper says of Fig. 3. The first model of that sentence, $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ (a
# pixel likelihood with the GAN term added), needs a $\gamma$ of its own, which the paper does not
# give. Its likelihood sums over the pixels where VAE/GAN's sums over $\mathrm{Dis}_l$'s features
# (at the `cpu` preset the pixels are the more numerous; at Table 1's size the features are), and
# it weighs each term by $1/2\sigma^2$ with the VAE's small pixel $\sigma$, where VAE/GAN's
# $\sigma$ is 1. Either way VAE/GAN's $\gamma$ would weigh it many times as heavily; its GAN
# term, a cross-entropy of order 1, would then barely move the decoder,
# and it would train nearly as a VAE (exercise 7 tries it). `config_for` gives it the $\gamma$ that
# weighs the two likelihoods alike (`config.balanced_gamma`; the weights are in the list above).
# With it, $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ does what the paper says of it in Fig. 3: its
# samples are about as sharp as real faces, and their texture FD is level with the GAN's; the two
# come next after VAE/GAN's. Its reconstructions are a little less sharp than VAE/GAN's, by more than a
# seed's spread (the claims table's Fig. 4 row), as Fig. 4's remark has it: it "fails to capture
# the same level of detail as VAE/GAN with feature-based similarities". Yet they are much closer
# to the input in MSE and in FD: at this size the pixel likelihood keeps more of each face than
# $\mathrm{Dis}_l$'s does, so the detail it misses is texture, not content.
#
# **$\mathrm{VAE}_{\mathrm{Dis}_l}$'s artifacts hold, in some seeds.** Its samples are on average
# *sharper* than real faces: faces with the right layout under coloured, pixel-scale noise
# (Fig. 3's second row), the "severe noisy artifacts" the paper blames on the discriminator's
# harsh downsampling, and what chapter 3 found for the same model. How much of that noise a run
# draws varies between seeds: some are far sharper than real faces, others about as sharp, so
# the claims table finds the mean within a seed's spread. Its reconstructions keep the layout and
# the rough colours under the same noise (Fig. 4), and their FD is the highest of the four models
# with an encoder.
#
# **Pixel fidelity is the price.** The VAE has the lowest reconstruction MSE, VAE/GAN a clearly
# higher one: chapter 1's bargain. Under Eq. 3 the best reconstruction is the mean of the
# plausible images, and the mean is blurry; a sharp guess that is slightly off costs more squared
# error than a blurry one.
#
# **The attribute FD does not rank VAE/GAN ahead of the VAE**: the two are within about a seed's
# spread of each other, $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ is a little ahead of both, and the
# GAN, whose samples look more like faces than the VAE's, is behind all three. This
# says more about the ruler than about the models. Its classifier was trained to recognise
# attributes through blur and noise (`classifier.augment`), so a blurry face with the right
# attributes lands where real faces do, and this FD measures whether a model draws the right
# attributes in the right proportions, which the VAEs do well. FID's Inception features are not
# blur-invariant, which is why FID, like our texture FD, separates the models the way the eye does.
#
# **The GAN trains in every seed.** Its samples are varied faces (Fig. 3's GAN row), sharp but
# patchy. Its discriminator sees real and generated faces in one batch, chapter 2's
# `dis_batch="joint"`, which `config_for` uses for every GAN trained on its own (the GAN, the one
# behind $\mathrm{VAE}_{\mathrm{Dis}_l}$, and the conditional GAN): real and generated faces
# share one set of batch-normalisation statistics, so the discriminator sees how the generated
# batch's statistics differ, which the DCGAN-style `"separate"` batches hide from it (chapter 2).
# Exercise 6 trains them with separate batches, for you to compare.
#
# **The $\gamma$ sweep, one seed per setting.** With the smallest $\gamma$, whose likelihood term
# weighs least, the decoder fools its own discriminator most and reconstructs worst, in MSE and in
# FD: the paper's direction. As $\gamma$ grows, the samples' attribute FD falls at every step. How
# far apart is far, with one seed per setting? The only yardstick is how much VAE/GAN at the
# preset's $\gamma$ varies over the five-model table's seeds, and one of those seeds widens it on
# its own: its reconstruction MSE lies far above the other four's. Against that yardstick the
# smallest $\gamma$'s reconstructions stand about one spread apart in MSE and more than two in FD,
# and the other three settings lie within one spread of each other (and fool their
# discriminators about equally): these runs do not settle their order. The paper's two failure
# modes, feature artifacts at large $\gamma$ and lost mouth shapes at small $\gamma$, need
# sharper, more detailed faces than these short runs at 32×32 draw. Exercise 2
# pushes $\gamma$ far enough to see the first, and chapter 4 shows the images of a wider sweep.
#
# **Table 2's order holds, but VAE/GAN's lead over the VAE is within a seed's spread.** As in the
# paper, the regressor recognises the asked-for attributes best in conditional VAE/GAN's faces
# (lowest squared error and highest cosine), then the VAE's, with the GAN last: the paper's GAN
# also "performs surprisingly poorly". Ours is further behind
# than the paper's, which is level with the VAE in MSE. Its faces carry the coarse attributes
# (hair colour, skin; see its row in the figure), but under noise and patches that a regressor
# trained on clean faces reads less reliably. The VAE and VAE/GAN are close (VAE/GAN's lead in
# MSE is less than half a standard deviation), where the paper separates them by several. Our absolute
# numbers are on another scale than the paper's: our binary attributes mapped to $\pm 1$ and a
# regressor that is near perfect on real test faces, against LFW's real-valued scores.
#
# **Sec. 4 holds.** With distances in a GAN discriminator's features (the paper's setting; it
# names no layer, we use $\mathrm{Dis}_l$), 5-NN misclassifies fewer attributes than in pixels, in every seed and with a
# small spread. VAE/GAN's discriminator beats pixels too on average, by less and with a larger
# spread: by about one seed's spread, and not in every seed. The
# gain is much smaller than the paper's on CIFAR-10's classes: our attributes are mostly large,
# coloured regions (hair colour, a hat, glasses) that pixel distances already find, which leaves
# features less to win.

# %% [markdown]
# ## At the paper's size, on a GPU
#
# Everything above was measured at the `cpu` preset: narrow networks, small images and short runs,
# which two CPU cores can train in a book's build. The paper's comparison is about Table 1's
# networks at its image size, which need a GPU. The plan `gpu-synthetic` (in `config.PLANS`) runs
# the same experiments at that size, on the synthetic faces, so no data set is needed, sized to
# a time budget: `benchmarks/reproduce.py --plan gpu-synthetic --budget-s …` first times a
# VAE/GAN step with several runs training at once, then picks the steps per run that fit the time
# given; `--seeds` splits the plan over several machines and `--merge` joins the parts and stores
# them in the package. Where they ship, the cells below show
# them with the same tables, and the paper's claims checked against both sets of results side by
# side; where they do not, the first cell says so. They come from faces drawn by this package,
# not CelebA, and
# the first line printed says on which GPU, at which commit and with how many steps per run.

# %% mystnb={"image": {"alt": "Paper-size runs: samples of the five models beside real faces"}}
from vaegan_lite.config import GPU_SYNTHETIC

for path in experiments.gpu_synthetic_figures("fig3_samples.png"):
    display(Image(filename=str(path)))

# %% mystnb={"image": {"alt": "Paper-size runs: held-out faces above their reconstructions by four models"}} tags=["remove-input"]
for path in experiments.gpu_synthetic_figures("fig4_reconstructions.png", provenance=False):
    display(Image(filename=str(path)))

# %% mystnb={"image": {"alt": "Paper-size runs: the VAE/GAN's samples and reconstructions at each gamma"}} tags=["remove-input"]
for path in experiments.gpu_synthetic_figures("fig5_gamma.png", provenance=False):
    display(Image(filename=str(path)))

# %% tags=["remove-input"]
# Their tables, and the paper's claims checked against both sets of results.
shipped_gpu = experiments.shipped_results(GPU_SYNTHETIC)
if shipped_gpu is not None:
    res_gpu, _ = shipped_gpu
    experiments.check_results(res_gpu, experiments.merge_plan(res_gpu))
    display(experiments.five_model_table(res_gpu),
            experiments.claims_for({"cpu": results, GPU_SYNTHETIC: res_gpu}),
            experiments.gamma_table(res_gpu), experiments.table2(res_gpu),
            experiments.knn_table(res_gpu))  # fmt: skip

# %% [markdown]
# ## Running it yourself
#
# In a clone of the repository:
#
# ```bash
# python benchmarks/reproduce.py --preset cpu --jobs 2 --rerun  # the synthetic faces, 2 CPU cores
# VAEGAN_FULL_PLAN=1 python benchmarks/reproduce.py --preset gpu  # the whole plan, CelebA 64x64
# ```
#
# Runs are kept in `runs/<preset>/06_experiments/` (on Colab, in Google Drive when it is mounted),
# so an interrupted reproduction resumes where it stopped. The `gpu` plan (printed below) trains
# every run at the `gpu` preset's settings (Table 1's networks at 64×64, as long as the authors'
# code trains): days on one GPU, so on Colab let it resume over several
# sessions from Drive, or pass `reproduce` a smaller `Plan` (fewer seeds).
# With the `gpu` preset Table 2 trains a model per run of the paper's "25 runs" (our reading: it
# may mean 25 evaluations of one model) and uses CelebA's attributes instead of LFW's. On CelebA
# the FD in our synthetic-faces classifier's features means little: FID, KID (a kernel distance
# in the same Inception features) and LPIPS (a distance between reconstructions and their inputs in a
# network's features, tuned to human judgements of similarity)
# (`metrics.inception_scores`, through torchmetrics) are measured for each model's first seed
# wherever their pretrained weights can be downloaded, and skipped with the reason otherwise:

# %%
gpu_plan = PLANS["gpu"]
n_gpu = len(experiments.run_configs(PRESETS["gpu"], gpu_plan, len(experiments.CELEBA_ATTRS)))
print(f"the gpu plan: {n_gpu} runs, {gpu_plan.seeds} seeds ({gpu_plan.table2_seeds} for Table 2)")

# %% tags=["nbval-ignore-output"]
# Which of these can run depends on the machine (network, cached weights).
reasons = {}  # the same reason for several metrics is said once
for line in results["inception"]["skipped"]:
    metric, why = line.split(" skipped: ", 1)
    reasons.setdefault(why, []).append(metric)
for why, metrics_skipped in reasons.items():  # the results' machine, which may not be this one
    print(f"{', '.join(metrics_skipped)}: skipped on the machine that made these results: {why}")
for model, scores in results["inception"]["scores"].items():
    print(f"{experiments.LABELS[model]:>14}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))

# %% [markdown]
# ## Summary
#
# - The five models, the $\gamma$ sweep, Table 2 and Sec. 4's nearest-neighbour test are one
#   function, `experiments.reproduce`; the tables above are made from its output.
# - Blur, the paper's central point, holds on the synthetic faces: the two VAE/GANs' samples and
#   reconstructions come close to real faces' sharpness, VAE/GAN's samples closest to their
#   texture statistics, the VAE's are the blurriest; the VAE pays the least in pixel MSE.
#   $\mathrm{VAE}_{\mathrm{Dis}_l}$ shows the paper's noisy artifacts, strongly in some seeds.
# - $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ needs a $\gamma$ of its own: VAE/GAN's would weigh its pixel
#   likelihood many times as heavily and make it a VAE. Balanced, it is as sharp as the paper
#   says, and keeps more of each face than VAE/GAN.
# - An FD in the features of a blur-invariant attribute classifier does not separate VAE and
#   VAE/GAN; one in texture features does. Which features a Fréchet distance uses decides what
#   it measures.
# - Table 2's order (VAE/GAN, then VAE, then GAN) holds, with VAE/GAN's lead over the VAE within
#   a seed's spread; Sec. 4's nearest-neighbour gain holds with a GAN's discriminator (and, on
#   average and by less, with VAE/GAN's); in the $\gamma$ sweep the smallest $\gamma$ fools its
#   discriminator most and reconstructs worst, and the samples' FD falls as $\gamma$ grows.
# - A verdict is only as firm as the seeds allow: a difference smaller than one seed's spread is
#   reported as such, not as a yes or a no.
#
# ## Exercises
#
# 1. The FD floor (real against real) shrinks as the sample size grows. Measure it with 250, 500
#    and 1,000 faces (`book.runs.test_images`, and `metrics.face_fd` with the judge the chapter's
#    FDs use, `experiments.judge_for(preset)`). Which of the five models' differences are larger
#    than the floor's own change?
# 2. Add $\gamma$ = 100 times the preset's value to `Plan.gamma_factors` and rerun: does VAE/GAN
#    become $\mathrm{VAE}_{\mathrm{Dis}_l}$? Compare its samples with the second row of Fig. 3.
# 3. Table 2's cosine is the best of 10 samples. Rewrite `table2_scores` to report the mean over
#    the 10 instead. Which model loses the most, and what does that say about its sample diversity?
# 4. The kNN test uses the discriminator's 4th-layer features. Use `dis_layer=2` and `dis_layer=3`
#    (`config_for(preset, "gan", dis_layer=...)`) and compare the error. Where is the best metric?
# 5. Our attribute regressor is trained on real faces only. Train it with the GAN's samples mixed
#    in (labelled by the conditioning vector) and score again. Why might that flatter the GAN?
# 6. Give the `gan`, `vae_disl` and conditional `gan` configs in `run_configs`
#    `dis_batch="separate"`, reproduce into another `--out` with `VAEGAN_RUNS` pointing at a new
#    folder, and compare Fig. 3, the GAN's sample diversity (`metrics.diversity`) and the claims
#    table. Which claims change? If the GAN's samples all look alike, what does the kNN test in
#    its discriminator's features find, and why?
# 7. Give $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ VAE/GAN's own $\gamma$
#    (`config_for(preset, "vaegan_dis0", gamma=preset.gamma)`), which weighs its pixel likelihood
#    many times as heavily (`config.llike_weight` of each config says how many). Train it
#    (`load_or_train`) and compare its samples' and reconstructions' sharpness with the VAE's and
#    with the balanced runs' above. Which of its two terms is the decoder following now?
