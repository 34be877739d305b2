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
# # 2. Generative adversarial networks
#
# Chapter 1 ended with a loss that rewards blur. A generative adversarial network (GAN)
# {cite}`goodfellow2014generative` has no such loss: nobody tells its generator which image to
# produce, only a second network, the discriminator, that tells it whether its images look real.
# This chapter trains a GAN on the same faces with the same decoder network, looks at what it gets
# right (sharp samples) and what it cannot do at all (reconstruct a given face), and opens the
# discriminator to look at the features the VAE/GAN {cite}`larsen2016autoencoding` will borrow.

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q git+https://github.com/vaegan-lite/vaegan-lite
    pass

# %%
import textwrap

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from vaegan_lite.book.diagrams import diagram
from vaegan_lite.book.experiments import judge_for
from vaegan_lite.book.plotting import plot_history, show_grid, show_rows
from vaegan_lite.book.runs import check_claim, get_preset, load_or_train, running_box, test_images
from vaegan_lite.book.source import show_source
from vaegan_lite.config import config_for
from vaegan_lite.losses import decoder_gan_loss, gan_loss
from vaegan_lite.metrics import diversity, matching_blur, mse, sharpness
from vaegan_lite.models import discriminate, gan_step
from vaegan_lite.nets import Discriminator

preset = get_preset()
print(
    f"preset {preset.name}: {preset.data} faces at {preset.image_size}x{preset.image_size}, "
    f"{preset.steps} training steps of batch {preset.batch_size}\n"
    f"networks at width {preset.width} of Table 1, latent size {preset.latent_dim}"
)

# %% tags=["nbval-ignore-output"]
# How long this chapter takes, as measured on the machines the box names.
running_box("02_gan")

# %% [markdown]
# ## Goals
#
# - Read the GAN objective (Eq. 5) and the sign convention this book uses for it.
# - Find the discriminator, the GAN losses and one GAN training step in the code.
# - See why the generator's loss is usually not the one in Eq. 5: the saturating and the
#   non-saturating loss, and their gradients.
# - Train a GAN with the chapter 1 decoder as its generator: its samples are sharp, but it has no
#   way to reconstruct a given face.
# - Look inside the discriminator: its hidden layer $\mathrm{Dis}_l$ is the learned similarity
#   metric of the next chapters.

# %% [markdown]
# ## The objective: Eq. 5
#
# A generator $\mathrm{Gen}$ maps a code $z \sim p(z) = \mathcal{N}(0, I)$ to an image. A
# discriminator $\mathrm{Dis}$ outputs $y = \mathrm{Dis}(x) \in [0, 1]$, the probability that $x$ is
# a training image rather than a generated one. The two play a game on the binary cross-entropy
# (Sec. 2.2), written as a log-likelihood:
#
# $$
# \mathcal{L}_\text{GAN} = \log \mathrm{Dis}(x) + \log\big(1 - \mathrm{Dis}(\mathrm{Gen}(z))\big) \tag{5}
# $$
#
# $\mathrm{Dis}$ maximises it (it should say 1 for real and 0 for generated images) and
# $\mathrm{Gen}$ minimises it (it wants $\mathrm{Dis}(\mathrm{Gen}(z))$ near 1). In the VAE/GAN the
# generator *is* the decoder, $\mathrm{Gen} = \mathrm{Dec}$, so this chapter trains the same
# `Decoder` as chapter 1, now as a generator.
#
# **Sign convention.** Every optimiser in the package *minimises*. So `gan_loss` returns the
# binary cross-entropy, the *negative* of Eq. 5, which the discriminator minimises; the generator
# minimises `decoder_gan_loss`. Algorithm 1 (chapter 4) reads $\mathcal{L}_\text{GAN}$ the same
# way: its $\mathrm{Dis}$ *descends* $\mathcal{L}_\text{GAN}$, which only makes sense for the
# cross-entropy. So in this book $\mathcal{L}_\text{GAN}$ is the cross-entropy; Eq. 5 as printed is
# its negative (see [Notation](../book/notation.md)). The discriminator returns a
# logit $\ell$ with $\mathrm{Dis}(x) = \operatorname{sigmoid}(\ell)$, and the logs are computed from
# the logits: $-\log \mathrm{Dis}(x) = \operatorname{softplus}(-\ell)$ and
# $-\log(1 - \mathrm{Dis}(x)) = \operatorname{softplus}(\ell)$, which never overflow.

# %%
show_source(gan_loss)

# %% [markdown]
# For the plain GAN `recon_logits` is `None`; chapter 4 adds the reconstructions
# $\mathrm{Dec}(\mathrm{Enc}(x))$ as a third term (Eq. 10). A check that this is minus Eq. 5,
# averaged over the batch, and the same as PyTorch's own cross-entropy:

# %%
g = torch.Generator().manual_seed(0)
real_logits = torch.randn(6, generator=g) + 1.0  # [B] Dis's logits on real images
fake_logits = torch.randn(6, generator=g) - 1.0  # [B] ... on generated images
d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)

eq5 = (torch.log(d_real) + torch.log(1 - d_fake)).mean()
bce = F.binary_cross_entropy_with_logits(real_logits, torch.ones(6)) + \
    F.binary_cross_entropy_with_logits(fake_logits, torch.zeros(6))
ours = gan_loss(real_logits, None, fake_logits)
# float32 logs and sigmoids: the last digits depend on the CPU's kernels, so print five.
print(f"gan_loss {ours:.5g}   -Eq. 5 {-eq5:.5g}   torch BCE {bce:.5g}")
assert torch.allclose(ours, -eq5, rtol=1e-5) and torch.allclose(ours, bce, rtol=1e-5)

# %% tags=["remove-input"]
diagram("gan")

# %% [markdown]
# The GAN of this chapter. A code $z_p$ from the prior goes through $\mathrm{Dec}$, chapter 1's
# decoder used as the generator, to a sample $x_p$; $\mathrm{Dis}$ judges the sample and a real
# image $x$. The bottom line uses the package's sign, that of Algorithm 1's updates (chapter 4):
# $\mathcal{L}_\text{GAN}$ there is the cross-entropy `gan_loss`, minus Eq. 5, which $\mathrm{Dis}$
# minimises, and $\mathrm{Dec}$ minimises its negative (by default in the non-saturating form below).

# %% [markdown]
# ## The discriminator
#
# Table 1's discriminator is a stack of 5×5 convolutions, the first without stride, then three with
# stride 2, followed by a fully connected layer and one output. Besides the logit it returns the
# activations of its $l$-th convolution, $\mathrm{Dis}_l(x)$, which chapter 3 uses as the
# similarity metric.

# %%
show_source(Discriminator)

# %% [markdown]
# ## One GAN step
#
# `gan_step` draws a batch of codes, generates images, runs the discriminator on the real and the
# generated batch, and computes both networks' gradients before either of them moves:

# %%
show_source(gan_step)

# %% [markdown]
# ## Saturating and non-saturating generator losses
#
# Taken literally, Eq. 5 has the generator minimise $\log(1 - \mathrm{Dis}(\mathrm{Gen}(z)))$. Early in
# training the generator's images are bad and the discriminator rejects them confidently,
# $\mathrm{Dis}(\mathrm{Gen}(z)) \approx 0$. There, as a function of the discriminator's logit
# (through which every gradient reaches the generator), this loss is flat: the generator gets
# almost no gradient when it needs it most. {cite:t}`goodfellow2014generative` suggest minimising
# $-\log \mathrm{Dis}(\mathrm{Gen}(z))$ instead. It has the same fixed point (both push
# $\mathrm{Dis}(\mathrm{Gen}(z))$ up) but a steep slope where the generator is losing. The package
# has both, `gan_variant="saturating"` (Eq. 5 taken literally, as in the paper's Algorithm 1: the
# generator minimises $\log\big(1 - \mathrm{Dis}(\mathrm{Gen}(z))\big)$, the part of Eq. 5 it can
# change; the docstring below uses Algorithm 1's sign, where $\mathcal{L}_\text{GAN}$ is the
# cross-entropy, and so calls this $-\mathcal{L}_\text{GAN}$) and `"non_saturating"` (the
# default):

# %%
show_source(decoder_gan_loss)

# %% [markdown]
# Their gradients with respect to the discriminator's logit on a generated image, computed by
# autograd through `decoder_gan_loss` itself:

# %% mystnb={"image": {"alt": "The generator's loss and the size of its gradient against D(Gen(z)) on a log axis, for the saturating and the non-saturating loss"}}
d_out = torch.logspace(-3, 0, 200)[:-1]  # [N], D(Gen(z)) from 0.001 to just below 1
logits = torch.logit(d_out).requires_grad_()  # [N], the discriminator's logits
losses, grads = {}, {}
for variant in ("saturating", "non_saturating"):
    # decoder_gan_loss averages over its batch; a batch of one gives each image's own loss
    per_image = torch.stack([decoder_gan_loss(None, lg[None], variant) for lg in logits])  # [N]
    (grad,) = torch.autograd.grad(per_image.sum(), logits)  # [N], d loss_i / d logit_i
    losses[variant], grads[variant] = per_image.detach(), grad

fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.2))
for variant in losses:
    axes[0].plot(d_out, losses[variant], label=variant)
    axes[1].plot(d_out, grads[variant].abs(), label=variant)
axes[0].set_title("generator loss", fontsize=10)
axes[1].set_title("|d loss / d logit|", fontsize=10)
for ax in axes:
    ax.set_xscale("log")
    ax.set_xlabel("D(Gen(z))")
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

lines = [f"{'D(Gen(z))':>10s} {'|gradient|, saturating':>23s} {'non-saturating':>15s}"]
for d in (0.001, 0.01, 0.1, 0.5, 0.9):
    i = int((d_out - d).abs().argmin())
    lines.append(f"{d_out[i]:10.3f} {grads['saturating'][i].abs():23.4f} "
                 f"{grads['non_saturating'][i].abs():15.4f}")
print("\n".join(lines))
# the text below: the gradients are D(Gen(z)) and 1 - D(Gen(z))
assert torch.allclose(grads["saturating"].abs(), d_out, atol=1e-5)
assert torch.allclose(grads["non_saturating"].abs(), 1 - d_out, atol=1e-5)

# %% [markdown]
# The saturating gradient is $\mathrm{Dis}(\mathrm{Gen}(z))$ itself and vanishes as the
# discriminator wins; the non-saturating one is $1 - \mathrm{Dis}(\mathrm{Gen}(z))$ and is largest
# there. The package's default, and the GAN trained below, use the non-saturating loss.
#
# ## Training the GAN
#
# The same data, sizes and optimiser (RMSProp) as chapter 1's VAE; `load_or_train` runs
# `gan_step` for the preset's number of steps. Only the decoder and the discriminator are trained:
# the model object has an encoder too (it is the same `VAEGAN` class for all five models), but a
# GAN never uses it.
#
# One setting differs from `StepConfig`'s default (`config_for` and the command line choose it
# for every model that trains a GAN on its own), and it is worth knowing why. The
# discriminator has BatchNorm layers, which in training normalise each batch with that batch's own
# mean and variance. `gan_step` shows the discriminator a real and a generated batch; with
# `dis_batch="separate"` (`StepConfig`'s default, as in DCGAN's code, `Newmu/dcgan_code`) each is
# normalised on its own, so the discriminator never sees how the generated batch's feature
# statistics differ from the real batch's: each batch's per-channel mean and variance are reset
# before it looks. On small networks trained that way the generator can collapse, every sample
# becoming the same texture; exercise 4 trains this chapter's GAN that way and lets you see
# whether it does. With `dis_batch="joint"` both batches go through the discriminator together
# and share one set of statistics (`discriminate` in `vaegan_lite.models`):

# %%
show_source(discriminate)

# %%
cfg = config_for(preset, "gan")  # dis_batch="joint", as config_for chooses for a GAN
print(f"model {cfg.model.model}, generator loss {cfg.step.gan_variant}, "
      f"discriminator batches {cfg.step.dis_batch}\n"
      f"lr {cfg.lr}, batch {cfg.batch_size}, steps {cfg.steps}")

# %% tags=["nbval-ignore-output"]
# Says whether this trained or read back a finished run, and how long it took.
run = load_or_train("gan", cfg, preset)
model = run.model.eval()  # eval: BatchNorm uses its running averages from now on
if run.steps_run:
    print(f"trained {run.steps_run} steps in {run.seconds:.0f} s")
else:
    print(f"read back the finished run ({cfg.steps} steps) from its run folder")
assert run.history["step"][-1] == cfg.steps

# %% [markdown]
# ## The game, step by step
#
# A GAN's loss does not go to zero: each network's progress is the other's loss. What the history
# shows is the balance: the discriminator's average output on real images, $\mathrm{Dis}(x)$, and on
# generated ones, $\mathrm{Dis}(\mathrm{Dec}(z_p))$, and the cross-entropy `gan_loss` (minus Eq. 5)
# that the discriminator minimises. If the discriminator won outright, $\mathrm{Dis}(x)$
# would go to 1 and $\mathrm{Dis}(\mathrm{Dec}(z_p))$ to 0, and with the saturating loss the
# generator's gradient would die. At the game's ideal end, a generator whose images are
# distributed exactly like the data, the best the discriminator can do is say 1/2 to everything,
# and the cross-entropy is $2 \log 2 \approx 1.39$.

# %% mystnb={"image": {"alt": "Training curves of the GAN against step: the discriminator's mean outputs D(x) and D(Dec(z)), and gan_loss with a dotted line at two log two"}} tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the asserts check that the
# logged values are what the text says they are.
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3))
plot_history(run.history, ["D(x)", "D(Dec(z))"], ax=axes[0])
axes[0].set_ylim(0, 1)
axes[0].set_title("discriminator outputs (mean over the logging interval)", fontsize=10)
plot_history(run.history, ["L_GAN"], ax=axes[1])
axes[1].axhline(2 * torch.log(torch.tensor(2.0)).item(), color="gray", ls=":", lw=1)
axes[1].set_title("gan_loss = -Eq. 5 (dotted: 2 log 2)", fontsize=10)
fig.tight_layout()
plt.show()
h = run.history
print(f"last logged (step {h['step'][-1]:.0f}): D(x) {h['D(x)'][-1]:.3f}, "
      f"D(Dec(z)) {h['D(Dec(z))'][-1]:.3f}, gan_loss {h['L_GAN'][-1]:.3f}")
assert all(0 < d < 1 for d in h["D(x)"] + h["D(Dec(z))"]), "D outputs a probability"
assert all(0 < v < float("inf") for v in h["L_GAN"])

# %% [markdown]
# On small networks and short runs (the `smoke` and `cpu` presets) the discriminator usually stays
# well ahead, telling real from generated images with confidence for the whole run: the traces
# show whether it did here ($\mathrm{Dis}(x)$ near 1, $\mathrm{Dis}(\mathrm{Dec}(z_p))$ near 0).
# That is the regime of the table above where the saturating loss would leave the generator almost
# no gradient, and where the non-saturating loss still gives it a full one (exercise 1 tries the
# other).
#
# ## Samples
#
# Samples $\mathrm{Dec}(z_p)$ for codes from the prior, next to held-out faces:

# %% mystnb={"image": {"alt": "Two rows of eight: held-out faces, and GAN samples decoded from codes drawn from the prior"}}
x_test, _ = test_images(preset, preset.test_size)  # [N, 3, H, W] in [-1, 1]
g = torch.Generator().manual_seed(1)
x_p = model.sample(preset.test_size, generator=g)  # [N, 3, H, W]
show_rows({"data x (held out)": x_test[:8], "GAN samples Dec(z_p)": x_p[:8]}, nrow=8, scale=1.2)
plt.show()

# %% mystnb={"image": {"alt": "Sixteen held-out faces in a four-by-four grid beside sixteen GAN samples"}}
fig, axes = plt.subplots(1, 2, figsize=(8, 4.3))
show_grid(x_test[:16], nrow=4, ax=axes[0], title="data")
show_grid(x_p[:16], nrow=4, ax=axes[1], title="GAN samples")
plt.show()

# %% [markdown]
# The same measurements as in chapter 1: sharpness (`vaegan_lite.metrics.sharpness`, the
# Laplacian's energy) against the ruler of blurred data, and, new here, the **diversity** of a
# set of images. A generator that collapsed to one image would have a diversity near zero:

# %%
show_source(diversity)

# %% tags=["nbval-ignore-output"]
# The samples' rows are results of training (your digits will differ from the book's); the
# asserts check the ruler and, after a full run, what the text below says of the samples.
rows = {"data": x_test, "GAN samples": x_p}
rows |= {f"data blurred, sigma {s} px": gaussian_blur(x_test, 7, s) for s in (0.5, 1.0)}
lines = [f"{'':26s} {'sharpness':>10s} {'diversity':>9s}"]
lines += [f"{name:26s} {sharpness(imgs).mean():10.4f} {diversity(imgs):9.3f}"
          for name, imgs in rows.items()]
lines.append(f"\nGAN samples: sharpness {sharpness(x_p).mean() / sharpness(x_test).mean():.2f} "
             f"of the data's, as sharp as the data blurred by sigma = {matching_blur(x_p, x_test):.2f} px"
             "\n(chapter 1 measured the VAE's samples the same way)")
print("\n".join(lines))
assert sharpness(rows["data blurred, sigma 1.0 px"]).mean() < sharpness(x_test).mean()
assert diversity(x_p) > 0, "every sample is the same image: the GAN collapsed"
if preset.trains_fully:  # not blurry: sharper than the data blurred by half a pixel
    check_claim(preset, matching_blur(x_p, x_test) < 0.5,
                "the GAN's samples are sharper than the data blurred by half a pixel")
    # not collapsed: the samples differ from each other about as much as faces do
    check_claim(preset, diversity(x_p) > 0.5 * diversity(x_test),
                "the samples differ from each other about as much as faces do")

# %% [markdown]
# Nothing in the GAN's loss compares an output with a particular image, so nothing rewards the
# average of several images: a blurry face is simply a face the discriminator can reject. In the
# book's build (the `cpu` preset) the samples are far from perfect faces: they have the layout of
# a face (hair around skin, eyes, a mouth, sometimes glasses) but the colours bleed, features are
# misplaced and there is speckle everywhere; a long `gpu` run on CelebA draws far better ones.
# What they are not is blurry: they are sharper than the data blurred by half a pixel; compare
# their sharpness with the VAE samples' in chapter 1. Two cautions in reading the numbers.
# Sharpness counts every change from one pixel to the next, wanted or not, so part of the GAN's
# score is its speckle. And the diversity, at least half the data's, shows that this run did not
# collapse, not that it covers every kind of face the data has. GANs trade the
# VAE's blur for artefacts and for the risk of covering only part of the data (mode collapse).
#
# ## What a GAN cannot do: reconstruct a face
#
# A GAN is a map from codes to images and nothing else. Given a face $x$, there is no
# $\mathrm{Enc}$ to give its code, and the training never asked for any particular face to be
# producible: the discriminator only judges whether samples look real *as a population*. The best a
# GAN offers for a given face is the closest of its samples. As a yardstick, take the closest
# *other real* face, a different person: a GAN sample that is no closer than that has not
# reproduced this face, only something from the same population.

# %% mystnb={"image": {"alt": "Three rows of eight: held-out faces, the GAN sample nearest to each in pixel distance, and the nearest other real face"}} tags=["nbval-ignore-output"]
# Distances to the GAN's samples are results of training: your digits will differ from the book's.
n_query = 8
queries = x_test[:n_query]  # [8, 3, H, W], the faces to "reconstruct"
others = x_test[n_query:]  # [N - 8, 3, H, W], other real faces
pool = x_p  # [N, 3, H, W], GAN samples


def nearest(q: torch.Tensor, pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query image, the index of the pool image with the smallest per-pixel MSE, and
    that MSE (computed on the model's device, returned on the CPU)."""
    pool = pool.to(model.device)
    d = torch.stack([mse(qi.to(model.device).expand_as(pool), pool) for qi in q]).cpu()  # [Q, P]
    best = d.argmin(1)  # [Q]
    return best, d[torch.arange(len(q)), best]


i_gan, d_gan = nearest(queries, pool)
i_real, d_real_face = nearest(queries, others)
show_rows({"a face x": queries, f"nearest of {len(pool)} GAN samples": pool[i_gan],
           f"nearest of {len(others)} other real faces": others[i_real]}, nrow=n_query, scale=1.2)
plt.show()
print(f"mean MSE over {n_query} faces: to the nearest GAN sample {d_gan.mean():.4f}, "
      f"to the nearest other real face {d_real_face.mean():.4f}\n"
      f"faces whose nearest GAN sample beats the nearest other real face: "
      f"{(d_gan < d_real_face).sum()} of {n_query}")
check = torch.stack([mse(q.expand_as(pool), pool).min() for q in queries])  # on the CPU
assert torch.allclose(d_gan, check, rtol=1e-4)  # the same, wherever nearest computed it

# %% [markdown]
# What does the nearest sample share with the face, and is it the same person? Eight faces are too
# few to tell, so the next cell asks it of a quarter of the held-out faces, in two ways:
# - **Coarse or fine.** A strong Gaussian blur keeps an image's colours and rough layout and
#   drops its edges and small features. The MSE between the blurred images is the coarse part of
#   the distance; what is left of the MSE is the fine part.
# - **Attributes.** The synthetic faces are drawn from a list of attributes (hair colour, glasses, a
#   smile, a hat, ...), and the package ships attribute classifiers trained on drawn faces, one
#   for 32×32 faces (chapters 2, 6 and 7) and one for 64×64 (chapter 5). The one for this chapter's
#   image size reads the face and its match alike, and the cell counts the attributes on which
#   the two agree. How often it reads each attribute right on held-out drawn faces was measured
#   when it was trained and ships with it (the cell below prints it).
#
# Each of the GAN's nearest samples is set against two matches among the real faces: the nearest
# other face (a different person, chosen the same way) and a random one.

# %%
if preset.data == "synthetic":  # the judge's held-out accuracy, stored with it
    accuracy = judge_for(preset).provenance["test_accuracy"]
    print(textwrap.fill(", ".join(f"{a} {p:.1%}" for a, p in accuracy.items()), 100))

# %% tags=["nbval-ignore-output"]
# Shares of the distance and of the attributes are results of training: your digits will differ.
n_measure = len(x_test) // 4  # 250 faces at the cpu preset
faces, rest = x_test[:n_measure], x_test[n_measure:]  # the faces, and the real faces to match
g = torch.Generator().manual_seed(2)
matches = {"nearest GAN sample": x_p[nearest(faces, x_p)[0]],
           "nearest other real face": rest[nearest(faces, rest)[0]],
           "a random other real face": rest[torch.randperm(len(rest), generator=g)[:n_measure]]}


def coarse(x: torch.Tensor) -> torch.Tensor:
    return gaussian_blur(x, 13, 3.0)  # colours and rough layout; edges and features blurred away


judge = judge_for(preset) if preset.data == "synthetic" else None  # it knows only these faces
read = judge.predict(faces) if judge is not None else None  # bool [n_measure, 17]
share = {}
lines = [f"over {n_measure} held-out faces: mean MSE to the match, coarse + fine"
         + ("; attributes the match shares with the face" if judge is not None else "")]
for name, m in matches.items():
    total, low = mse(faces, m).mean(), mse(coarse(faces), coarse(m)).mean()
    share[name] = {"coarse": float(low), "fine": float(total - low)}
    line = f"  {name:25s} {total:.4f} = {low:.4f} + {total - low:.4f}"
    if judge is not None:
        share[name]["attributes"] = float((judge.predict(m) == read).float().mean())
        line += f";  {share[name]['attributes']:.0%}"
    lines.append(line)
print("\n".join(lines))
gan, real, rand = share.values()
if preset.trains_fully:  # what the text below says
    # of a random face's distance, the nearest sample removes more of the coarse part than the fine
    check_claim(preset, gan["coarse"] / rand["coarse"] < gan["fine"] / rand["fine"],
                "the nearest GAN sample cuts the coarse part of the distance by a larger share "
                "than the fine part")
    if judge is not None:  # fewer attributes than the nearest other person, more than chance
        check_claim(preset, rand["attributes"] < gan["attributes"] < real["attributes"],
                    "the nearest sample shares more attributes with the face than a random face "
                    "does, and fewer than the nearest other real face")

# %% [markdown]
# Against a random face, the nearest GAN sample cuts the coarse part of the distance by a larger
# share than the fine part: what it has in common with the face is mostly colour and rough
# layout, the things that dominate a pixel-wise distance (the nearest other real face, picked
# the same way, shows the same pattern: that is what a pixel distance selects for). In
# attributes it does better than a random face, since hair colour, for one, is part of the
# colours; but it shares fewer of them than the nearest other real face, a different person.
# Part of that gap may be the classifier's: it was trained on clean drawn faces and reads the
# GAN's patchy ones less surely. Either way the GAN has drawn someone who looks roughly like
# this face from afar, not this person. This is the gap the
# VAE/GAN fills. Keep the GAN's decoder and discriminator, add chapter 1's
# encoder, and train the decoder both to fool the discriminator and to reconstruct $x$ from
# $\mathrm{Enc}(x)$. The remaining question is in which space "reconstruct" is measured; the paper's
# answer is inside the discriminator.
#
# ## The discriminator as a feature extractor
#
# To tell real faces from generated ones, the discriminator must notice what makes a face look
# real: edges where they belong, eyes that match, textures. Its hidden layers are a learned
# description of images, and the VAE/GAN uses the $l$-th one, $\mathrm{Dis}_l(x)$, to compare an
# image with its reconstruction (Eq. 6 and 7, chapter 3). Here are the activations of the first
# channels of each convolution, up to the layer $l$ used as $\mathrm{Dis}_l$ (the convolution's
# output before its BatchNorm and ReLU, as in `Discriminator.forward`), for one test face:

# %% mystnb={"image": {"alt": "One row per discriminator layer up to Dis_l: a held-out face, then up to eight of that layer's feature maps, coarser with each layer"}}
dis = model.dis  # trained, eval mode
face = x_test[:1]  # [1, 3, H, W]
with torch.no_grad():
    maps, h = [], face.to(model.device)  # computed where the model is (a GPU on Colab)
    for i, block in enumerate(dis.blocks[: dis.dis_layer], start=1):
        maps.append((i, block[0](h)[0].cpu()))  # conv output of layer i: [C_i, H_i, W_i]
        h = block(h)
    dis_l = dis.dis_l(face.to(model.device)).cpu()  # [1, C, H_l, W_l], what Eq. 7 compares
assert torch.equal(maps[-1][1], dis_l[0])  # the last map is exactly Dis_l

n_ch = 8
fig, axes = plt.subplots(len(maps), n_ch + 1, figsize=(0.85 * (n_ch + 1), 1.05 * len(maps)))
for row, (i, fmap) in zip(axes, maps, strict=True):
    show_grid(face, nrow=1, ax=row[0])
    for c, ax in enumerate(row[1:]):
        ax.set_axis_off()
        if c < len(fmap):  # narrow presets have fewer channels in the first layers
            ax.imshow(fmap[c], cmap="magma", interpolation="nearest")
    label = f"layer {i}" + (" = Dis_l" if i == dis.dis_layer else "")
    row[0].set_title(f"{label}\n{tuple(fmap.shape)}", fontsize=8)
fig.tight_layout()
plt.show()
print(f"Dis_l(x) at this preset: layer {dis.dis_layer}, shape {tuple(dis_l.shape[1:])},\n"
      f"{dis_l[0].numel()} features per image (the image has {face[0].numel()} pixel values)")

# %% [markdown]
# The first layer's maps are still images: edge and colour detectors at full resolution. Each
# stride-2 layer halves the side; the first of them quadruples the channels, the second doubles
# them and the rest keep them (the shapes are above each row), so deeper maps are coarser and
# each unit sees a larger patch of the face. A unit of $\mathrm{Dis}_l$ can respond to an edge
# wherever it falls inside its patch, the kind of tolerance the pixel loss lacked in chapter 1;
# whether a trained discriminator's features use that freedom is something chapter 3 measures.
#
# ## Summary
#
# - A GAN trains a generator against a discriminator on the binary cross-entropy of Eq. 5. The
#   package minimises everything: `gan_loss` is the cross-entropy, minus Eq. 5, which
#   $\mathrm{Dis}$ minimises, which Algorithm 1's updates treat as $\mathcal{L}_\text{GAN}$ and
#   the rest of the book calls so; `decoder_gan_loss` is what the generator minimises.
# - The generator's loss as written in Eq. 5 saturates when the discriminator wins; the
#   non-saturating loss $-\log \mathrm{Dis}(\mathrm{Gen}(z))$ keeps its gradient there.
# - With the chapter 1 decoder as the generator, no loss compares an output with a particular
#   image, so no loss rewards averages. The chapter measures the samples' sharpness against the
#   data's and against blurred copies of the data, chapter 1's ruler for the VAE's samples; part
#   of a GAN's score can be speckle rather than detail.
# - A GAN has no encoder and cannot reconstruct a given face; the nearest of its samples is just
#   another face.
# - The discriminator's hidden layers are a learned description of images; $\mathrm{Dis}_l$ is the
#   one the VAE/GAN uses as its similarity metric.
#
# ## Exercises
#
# 1. **Saturation in practice.** Train with `config_for(preset, "gan", gan_variant="saturating")`
#    (as `load_or_train("gan_sat", ...)`). Compare the $\mathrm{Dis}(\mathrm{Dec}(z_p))$ trace and
#    the samples with the non-saturating run. When does the generator stall?
# 2. **Inverting the generator.** Reconstruct a test face with the GAN after all: start from
#    $z = 0$ and minimise `mse(model.decode(z), x)` over $z$ with Adam for a few hundred steps.
#    How close does it get, compared with the nearest sample above, and how long does it take per
#    face compared with one encoder pass?
# 3. **Mode coverage.** The synthetic faces come with attributes (`test_images` returns them). Are
#    glasses, hats or beards as frequent among the GAN's samples as in the data? Count them by eye on
#    64 samples, or let this chapter's judge (`judge_for(preset)`) read them and compare its
#    counts on the samples and on the test faces.
# 4. **BatchNorm and collapse.** Train with `StepConfig`'s default, DCGAN's separate batches,
#    `config_for(preset, "gan", dis_batch="separate")`, as `load_or_train("gan_separate", ...)`.
#    Look at the samples and at their `diversity(x_p)` against the same number
#    for the data. What do the $\mathrm{Dis}(x)$ and $\mathrm{Dis}(\mathrm{Dec}(z_p))$ traces look
#    like when the generator has collapsed?
# 5. **Which layer?** Shift the test face by one pixel (see chapter 1's `shift`) and compute the
#    relative change $\lVert f(x) - f(x') \rVert / \lVert f(x) \rVert$ for the pixels and for each
#    layer's maps above. Which layers change least? (Chapter 3 does this carefully.)
