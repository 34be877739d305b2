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
# # 1. The variational autoencoder and the blur of pixel-wise likelihoods
#
# The VAE/GAN of {cite:t}`larsen2016autoencoding` starts from a plain variational autoencoder
# {cite}`kingma2014autoencoding` and changes how the reconstruction error is measured, in the
# features of a discriminator that the decoder must also fool. To see why the measure matters,
# this chapter builds the plain VAE first, with the
# usual pixel-wise likelihood, trains it, and looks closely at what comes out: reconstructions and
# samples that are recognisably faces, and recognisably blurry.

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q git+https://github.com/vaegan-lite/vaegan-lite
    pass

# %%
import math

import matplotlib.pyplot as plt
import torch
from torchvision.transforms.functional import gaussian_blur

from vaegan_lite.book.diagrams import diagram
from vaegan_lite.book.plotting import plot_history, show_grid, show_rows
from vaegan_lite.book.runs import check_claim, get_preset, load_or_train, running_box, test_images
from vaegan_lite.book.source import lines_between, show_source
from vaegan_lite.config import config_for
from vaegan_lite.losses import llike_loss, prior_loss
from vaegan_lite.metrics import matching_blur, mse, sharpness
from vaegan_lite.models import algorithm1_step, reparameterize
from vaegan_lite.nets import Decoder, Encoder

preset = get_preset()
print(
    f"preset {preset.name}: {preset.data} faces at {preset.image_size}x{preset.image_size}, "
    f"{preset.steps} training steps of batch {preset.batch_size}\n"
    f"networks at width {preset.width} of Table 1, latent size {preset.latent_dim}"
)

# %% tags=["nbval-ignore-output"]
# How long this chapter takes, as measured on the machines the box names.
running_box("01_vae")

# %% [markdown]
# ## Goals
#
# - Read the VAE as the paper writes it (Sec. 2.1, Eq. 1 to 4) and find every term in the code.
# - Understand the reparameterisation trick, the line that lets gradients reach the encoder.
# - Train a VAE with the pixel-wise Gaussian likelihood and look at its reconstructions and samples.
# - Measure the blur: reconstruction error and sharpness of data, reconstructions and samples.
# - See, with a computation you can change, why the pixel-wise loss *prefers* a blurry image: the
#   average of several plausible sharp images has a lower expected squared error than any one of
#   them.

# %% [markdown]
# ## The model: two networks and two distributions
#
# A VAE is an encoder and a decoder, each of which outputs a distribution (Eq. 1):
#
# $$
# z \sim \mathrm{Enc}(x) = q(z \mid x), \qquad \tilde{x} \sim \mathrm{Dec}(z) = p(x \mid z) \tag{1}
# $$
#
# The encoder's distribution is a Gaussian with a diagonal covariance,
# $q(z \mid x) = \mathcal{N}(\mu(x), \operatorname{diag} \sigma^2(x))$: the network outputs a mean
# $\mu$ and a log-variance $\log \sigma^2$ for every latent unit. The decoder outputs the mean of
# $p(x \mid z)$, an image $\tilde{x}$; the likelihood is a Gaussian around it with a fixed standard
# deviation (see below). Both networks are the convolutional networks of the paper's Table 1
# (here at the preset's width and image size):

# %% tags=["remove-input"]
diagram("vae")

# %% [markdown]
# The VAE of this chapter. $\mathrm{Enc}$ gives the mean $\mu$ and the standard deviation $\sigma$
# of $q(z \mid x)$, the reparameterisation draws $z = \mu + \sigma \odot \varepsilon$, and
# $\mathrm{Dec}$ decodes it to $\tilde{x}$. Grey lines lead into the losses:
# $\mathcal{L}_\text{llike}^\text{pixel}$ (Eq. 3) compares $x$ and $\tilde{x}$ pixel by pixel,
# $\mathcal{L}_\text{prior}$ (Eq. 4) compares $q(z \mid x)$ with the prior. The bottom line says
# which loss trains which network.

# %%
show_source(Encoder)

# %%
show_source(Decoder)

# %% [markdown]
# The encoder halves the image side three times with stride-2 convolutions, then a fully
# connected layer, and ends in two linear layers, one for $\mu$ and one for $\log\sigma^2$ (a log-variance can be any real number, a
# variance could not). The decoder mirrors it with transposed convolutions and ends in $\tanh$,
# because the images live in $[-1, 1]$. One forward pass on a random batch, to see the shapes:

# %%
enc = Encoder(preset.image_size, preset.latent_dim, preset.width)
dec = Decoder(preset.image_size, preset.latent_dim, preset.width)
x_demo = torch.zeros(4, 3, preset.image_size, preset.image_size)  # [B, C, H, W]
mu_demo, logvar_demo = enc(x_demo)  # each [B, latent_dim]
print(f"x          {tuple(x_demo.shape)}\n"
      f"mu, logvar {tuple(mu_demo.shape)} {tuple(logvar_demo.shape)}\n"
      f"Dec(mu)    {tuple(dec(mu_demo).shape)}")

# %% [markdown]
# ## The loss: Eq. 2 to 4
#
# The prior over codes is a standard normal, $p(z) = \mathcal{N}(0, I)$. The VAE minimises the
# negative evidence lower bound, which splits into a reconstruction term and a prior term:
#
# $$
# \mathcal{L}_\text{VAE} = -\mathbb{E}_{q(z \mid x)}\left[\log \frac{p(x \mid z)\, p(z)}{q(z \mid x)}\right]
# = \mathcal{L}_\text{llike}^\text{pixel} + \mathcal{L}_\text{prior} \tag{2}
# $$
#
# with
#
# $$
# \mathcal{L}_\text{llike}^\text{pixel} = -\mathbb{E}_{q(z \mid x)}\left[\log p(x \mid z)\right] \tag{3}
# $$
#
# $$
# \mathcal{L}_\text{prior} = D_\text{KL}\left(q(z \mid x) \,\Vert\, p(z)\right) \tag{4}
# $$
#
# Both Gaussians make these terms simple. The KL divergence between
# $\mathcal{N}(\mu, \operatorname{diag}\sigma^2)$ and $\mathcal{N}(0, I)$ has a closed form,
# $\frac{1}{2}\sum_j (\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2)$:

# %%
show_source(prior_loss)

# %% [markdown]
# With $p(x \mid z) = \mathcal{N}(x \mid \tilde{x}, \sigma^2 I)$ and $\tilde{x} = \mathrm{Dec}(z)$,
# the negative log-likelihood is $\frac{1}{2\sigma^2}\lVert x - \tilde{x} \rVert^2$ plus a constant
# that does not depend on the networks. **This is the pixel-wise squared error**, and it is the only
# thing that tells the decoder what a good image is. The same function serves Eq. 7 later, with
# discriminator features instead of pixels:

# %%
show_source(llike_loss)

# %% [markdown]
# Both functions follow the book's convention ([Notation](../book/notation.md)): summed over the
# features of one example, averaged over the batch. A quick check against `torch.distributions`,
# so that "up to a constant" is not taken on trust:

# %%
g = torch.Generator().manual_seed(0)
x_chk = torch.rand(8, 3, 4, 4, generator=g) * 2 - 1  # [B, C, H, W] "images"
x_tilde_chk = torch.rand(8, 3, 4, 4, generator=g) * 2 - 1  # [B, C, H, W] "reconstructions"
mu_chk, logvar_chk = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)  # [B, 5]
sigma = 0.1

D = torch.distributions
nll = -D.Normal(x_tilde_chk, sigma).log_prob(x_chk).flatten(1).sum(1).mean()
constant = 0.5 * x_chk[0].numel() * torch.log(torch.tensor(2 * torch.pi * sigma**2))
q = D.Normal(mu_chk, torch.exp(0.5 * logvar_chk))
kl = D.kl_divergence(q, D.Normal(0.0, 1.0)).sum(1).mean()
ours = {"llike": llike_loss(x_chk, x_tilde_chk, sigma), "prior": prior_loss(mu_chk, logvar_chk)}
# Sums of float32 terms: the last digits depend on the CPU's summation order, so print five.
print(f"llike_loss {ours['llike']:.5g}   -log N - const {nll - constant:.5g}\n"
      f"prior_loss {ours['prior']:.5g}   torch KL       {kl:.5g}")
assert torch.allclose(ours["llike"], nll - constant, rtol=1e-5)
assert torch.allclose(ours["prior"], kl, rtol=1e-5)

# %% [markdown]
# ## The reparameterisation trick
#
# Eq. 3 is an expectation over $z \sim q(z \mid x)$, estimated with one sample per image. Sampling
# is not differentiable in $\mu$ and $\sigma$, but the same sample can be written as a
# deterministic function of them and of noise that does not depend on them:
#
# $$
# z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I)
# $$
#
# Now $\partial z / \partial \mu = 1$ and $\partial z / \partial \sigma = \varepsilon$, and the
# reconstruction error's gradient flows through $z$ into the encoder:

# %%
show_source(reparameterize)

# %% [markdown]
# A one-line check with autograd: for $\mu = 0$ and $\sigma = 1$, the gradient of $z$ with
# respect to $\mu$ is 1 and with respect to $\log\sigma^2$ it is
# $\frac{1}{2}\sigma\varepsilon = \varepsilon / 2$. It depends on the noise drawn, so each
# training step's gradient is a noisy but unbiased estimate of the gradient of the expectation.

# %%
mu_r = torch.zeros(1, 3, requires_grad=True)  # [1, latent 3]
logvar_r = torch.zeros(1, 3, requires_grad=True)
torch.manual_seed(0)
z_r = reparameterize(mu_r, logvar_r)  # [1, 3], one sample of q(z|x)
z_r.sum().backward()


def fmt(t: torch.Tensor) -> str:
    return " ".join(f"{v:+.4f}" for v in t.flatten().tolist())


print(f"dz/dmu      {fmt(mu_r.grad)}\n"
      f"dz/dlogvar  {fmt(logvar_r.grad)}\n"
      f"eps / 2     {fmt(z_r.detach() / 2)}   (here z = eps, since mu = 0 and sigma = 1)")

# %% [markdown]
# ## One training step
#
# The package trains every model of the paper that has an encoder with one step function,
# `algorithm1_step` (Algorithm 1 of the paper, chapter 4); the GAN has its own, `gan_step`
# (chapter 2). A VAE is the call with `metric="pixel"` and
# `adversarial=False`: no discriminator, and the pixel likelihood. These are the lines that run
# then, in order: the forward pass,

# %%
show_source(algorithm1_step, lines=lines_between(algorithm1_step, "mu, logvar = enc", "dec(z, y)"))

# %% [markdown]
# the pixel likelihood (the `else` branch; the `if` branch above it is chapter 3's),

# %%
show_source(
    algorithm1_step,
    lines=lines_between(algorithm1_step, "L_llike^{pixel}", "llike_loss(x, x_tilde"),
    header=False,
)

# %% [markdown]
# and the gradients: the encoder descends $\mathcal{L}_\text{prior} + \mathcal{L}_\text{llike}$,
# the decoder $\mathcal{L}_\text{llike}$ (the prior term does not depend on it), each with its own
# RMSProp optimiser.

# %%
show_source(
    algorithm1_step,
    lines=lines_between(algorithm1_step, "theta_Enc <- -grad(", "g_dec = grads(L_llike, dec"),
    header=False,
)

# %% [markdown]
# ## Training
#
# `load_or_train` trains the model in a run folder (`runs/<preset>/vae`), or reads it back if a
# previous run finished there. The pixel likelihood's standard deviation is
# `StepConfig.pixel_sigma`: it sets how much the reconstruction term weighs against the KL term.

# %%
cfg = config_for(preset, "vae")
print(f"model {cfg.model.model}, pixel sigma {cfg.step.pixel_sigma}, lr {cfg.lr}, "
      f"batch {cfg.batch_size}, steps {cfg.steps}")

# %% tags=["nbval-ignore-output"]
# Says whether this trained or read back a finished run, and how long it took.
run = load_or_train("vae", cfg, preset)
model = run.model.eval()  # eval: BatchNorm uses its running averages from now on
if run.steps_run:
    print(f"trained {run.steps_run} steps in {run.seconds:.0f} s")
else:
    print(f"read back the finished run ({cfg.steps} steps) from its run folder")
assert run.history["step"][-1] == cfg.steps

# %% [markdown]
# The two terms of Eq. 2 during training, averaged over the logging interval. The reconstruction
# term falls steeply at first and then keeps improving slowly. The KL term rises at first, as the
# encoder starts to put information about each face into its code, and then levels off: every
# extra nat of information in $z$ has to pay for itself in reconstruction error.

# %% mystnb={"image": {"alt": "Training curves of the VAE against step: the reconstruction term L_llike^pixel on a log scale, and the prior term L_prior"}} tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the asserts check what the
# text above says of the curves.
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3))
plot_history(run.history, ["L_llike"], ax=axes[0])
axes[0].set_yscale("log")
axes[0].set_title("$\\mathcal{L}_\\mathrm{llike}^\\mathrm{pixel}$ (Eq. 3), nats less a constant", fontsize=10)
plot_history(run.history, ["L_prior"], ax=axes[1])
axes[1].set_title("$\\mathcal{L}_\\mathrm{prior}$ (Eq. 4), nats", fontsize=10)
fig.tight_layout()
plt.show()
h = run.history
pixels = 3 * preset.image_size**2
sigma = cfg.step.pixel_sigma
print(f"first logged (step {h['step'][0]:.0f}): L_llike {h['L_llike'][0]:.1f}, "
      f"L_prior {h['L_prior'][0]:.1f} nats\n"
      f"last logged (step {h['step'][-1]:.0f}): L_llike {h['L_llike'][-1]:.1f}, "
      f"L_prior {h['L_prior'][-1]:.1f} nats\n"
      f"L_llike = squared error / (2 sigma^2), so the training batches' mean squared\n"
      f"error per pixel was {h['L_llike'][-1] * 2 * sigma**2 / pixels:.4f}")
assert all(math.isfinite(v) for v in h["L_llike"] + h["L_prior"])
assert h["L_llike"][-1] < h["L_llike"][0], "the reconstruction term did not fall"
assert h["L_prior"][-1] > 0
if preset.trains_fully:  # a few steps (smoke, cut short) show no shape yet
    # "at first ... then": each term moves at least twice as far in the run's first half as in
    # its second
    mid = len(h["step"]) // 2
    for key, sign in (("L_llike", -1), ("L_prior", +1)):
        first, second = h[key][mid] - h[key][0], h[key][-1] - h[key][mid]
        check_claim(preset, sign * first > 2 * abs(second),
                    f"{key} moves steeply at first, then slowly", (first, second))

# %% [markdown]
# ## Reconstructions and samples
#
# Faces the model never saw (the held-out test faces), their reconstructions
# $\tilde{x} = \mathrm{Dec}(\mu(x))$ at the posterior mean, and samples $\mathrm{Dec}(z_p)$ for codes
# drawn from the prior $z_p \sim \mathcal{N}(0, I)$.

# %% mystnb={"image": {"alt": "Three rows of eight: held-out faces, the VAE's reconstructions of them, and VAE samples decoded from codes drawn from the prior"}}
x_test, _ = test_images(preset, preset.test_size)  # [N, 3, H, W] in [-1, 1]
x_tilde = model.reconstruct(x_test)  # [N, 3, H, W]
g = torch.Generator().manual_seed(1)
x_p = model.sample(preset.test_size, generator=g)  # [N, 3, H, W]

show_rows({
    "data x (held out)": x_test[:8],
    "reconstructions Dec(Enc(x))": x_tilde[:8],
    "samples Dec(z_p), z_p ~ N(0, I)": x_p[:8],
}, nrow=8, scale=1.2)
plt.show()

# %% [markdown]
# The reconstructions keep what is large: the face's position and size, skin tone, background,
# hair colour and outline, even dark glasses. They lose what is small and sharp: eyes, mouths,
# eyebrows and the thin frames of glasses are smeared into soft blobs, and the background's texture
# is gone. The samples look like several faces laid over each other, blurrier still. A closer
# look at a few pairs:

# %% mystnb={"image": {"alt": "Sixteen held-out faces in a four-by-four grid beside the same faces as reconstructed by the VAE"}}
fig, axes = plt.subplots(1, 2, figsize=(8, 4.3))
show_grid(x_test[:16], nrow=4, ax=axes[0], title="data")
show_grid(x_tilde[:16], nrow=4, ax=axes[1], title="VAE reconstructions")
plt.show()

# %% [markdown]
# ## Measuring the blur
#
# Two numbers per image, from `vaegan_lite.metrics`: the reconstruction error, the mean squared
# error per pixel (the quantity Eq. 3 minimises, up to its scale), and the **sharpness**, the mean
# energy of the image's Laplacian. The Laplacian is zero where the image is flat or changes
# linearly and large at edges, so sharpness falls when an image is blurred.

# %%
show_source(sharpness)

# %% [markdown]
# As a ruler for sharpness, the same test faces blurred with Gaussian kernels of increasing width:

# %% tags=["nbval-ignore-output"]
# The VAE's rows are results of training (your digits will differ from the book's); the asserts
# check what the text below says of them.
blur_sigmas = [0.5, 1.0, 1.5]  # Gaussian blur, standard deviation in pixels
blurred = {s: gaussian_blur(x_test, kernel_size=7, sigma=s) for s in blur_sigmas}  # [N, 3, H, W]

rows = [("data", x_test), ("VAE reconstructions", x_tilde), ("VAE samples", x_p)]
rows += [(f"data blurred, sigma {s} px", b) for s, b in blurred.items()]
lines = [f"{'':28s} {'MSE to data':>12s} {'sharpness':>10s}"]
for name, imgs in rows:
    err = f"{mse(imgs, x_test).mean():12.4f}" if name != "VAE samples" else f"{'-':>12s}"
    lines.append(f"{name:28s} {err} {sharpness(imgs).mean():10.4f}")
closer = [f"{s} px" for s, b in blurred.items() if mse(b, x_test).mean() < mse(x_tilde, x_test).mean()]
lines.append(f"\nblurred copies with a lower MSE than the VAE's reconstructions: "
             f"{', '.join(closer) or 'none'}")
print("\n".join(lines))
assert sharpness(x_tilde).mean() < sharpness(x_test).mean() > sharpness(x_p).mean()
assert sharpness(blurred[0.5]).mean() < sharpness(x_test).mean()
assert "0.5 px" in closer, "a half-pixel blur should cost less squared error than the VAE"
if preset.trains_fully:  # the text below: a blur of a pixel, blurrier than the VAE's, costs less
    check_claim(preset, "1.0 px" in closer, "a blur of one pixel costs less squared error than "
                "the VAE's reconstructions", closer)
    check_claim(preset, sharpness(blurred[1.0]).mean() < sharpness(x_tilde).mean(),
                "a blur of one pixel is blurrier than the VAE's reconstructions")

# %% [markdown]
# The ruler can be read the other way round: which Gaussian blur of the data has the sharpness of
# the VAE's images? A fine sweep of blur widths answers it, together with an image-by-image count.

# %%
show_source(matching_blur)

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the asserts check what the text
# below says.
s_data, s_rec, s_smp = sharpness(x_test), sharpness(x_tilde), sharpness(x_p)
print(f"sharpness relative to the data: reconstructions {s_rec.mean() / s_data.mean():.2f}, "
      f"samples {s_smp.mean() / s_data.mean():.2f}\n"
      f"reconstructions sharper than their own original: {(s_rec > s_data).sum()} "
      f"of {len(x_test)} test faces\n"
      f"as sharp as the data blurred by sigma = {matching_blur(x_tilde, x_test):.2f} px "
      f"(reconstructions),\n{'':32s}sigma = {matching_blur(x_p, x_test):.2f} px (samples)")
assert s_rec.mean() < s_data.mean() and s_smp.mean() < s_data.mean()
assert (s_rec < s_data).float().mean() > 0.5, "most reconstructions should be blurrier"
if preset.trains_fully:  # a few smoke steps draw noise, which the Laplacian calls sharp
    check_claim(preset, s_smp.mean() < s_rec.mean(),
                "the samples are blurrier than the reconstructions")
    check_claim(preset, s_rec.mean() < 0.5 * s_data.mean(),
                "the reconstructions keep a fraction (under half) of the data's sharpness")

# %% [markdown]
# Sharpness falls fast with blur. The VAE's reconstructions keep only a fraction of the data's
# sharpness, as much as the data keeps under the blur printed above, and the samples, decoded
# from codes the encoder never produced, less still. The image-by-image count says the same for single faces, not just on average.
#
# The MSE column shows the other half of the paper's argument. Blurring the data by a pixel
# destroys exactly the detail a person looks at, yet costs little squared error: check in the table
# how the blurred copies' errors compare with the reconstructions', and which of them the pixel
# metric would call the *better* reconstruction. A decoder trained on this metric has no reason to
# prefer sharp edges.
#
# ## Why the pixel loss prefers blur: the average of plausible images
#
# Where exactly is the edge of the glasses? The code $z$ is a compressed summary of the face and the
# decoder cannot always tell whether an edge sits here or one pixel to the left. Faced with several
# plausible images $x_1, \dots, x_K$, the output $c$ that minimises the *expected* squared error is
# their mean $\bar{x}$, because
#
# $$
# \frac{1}{K}\sum_{k=1}^{K} \lVert c - x_k \rVert^2 = \lVert c - \bar{x} \rVert^2 + \frac{1}{K}\sum_{k=1}^{K} \lVert x_k - \bar{x} \rVert^2
# $$
#
# and only the first term depends on $c$. The mean of sharp images that disagree about where an
# edge is, is an image with a soft edge. Take one test face and five copies of it shifted
# horizontally by $-2, \dots, 2$ pixels, all equally plausible:

# %%
from vaegan_lite.images import shift

show_source(shift)

# %%
shifts = [-2, -1, 0, 1, 2]
face = x_test[:1]  # [1, 3, H, W]
copies = torch.cat([shift(face, dx) for dx in shifts])  # [K, 3, H, W], the plausible images
mean_image = copies.mean(0, keepdim=True)  # [1, 3, H, W], their average


def expected_error(c: torch.Tensor) -> float:
    """Mean over the K plausible images of the per-pixel squared error of prediction c."""
    return mse(c.expand_as(copies), copies).mean().item()


candidates = {f"copy shifted {dx:+d}": copies[k : k + 1] for k, dx in enumerate(shifts)}
candidates["mean of the copies"] = mean_image
lines = [f"{'prediction c':22s} {'expected MSE':>13s} {'sharpness':>10s}"]
for name, c in candidates.items():
    lines.append(f"{name:22s} {expected_error(c):13.4f} {sharpness(c).item():10.4f}")
best_copy = min(expected_error(copies[k : k + 1]) for k in range(len(shifts)))
lines.append(f"\nthe mean image: {expected_error(mean_image) / best_copy:.0%} of the best sharp "
             f"copy's expected error, {sharpness(mean_image).item() / sharpness(face).item():.0%} "
             f"of its sharpness")
print("\n".join(lines))
assert expected_error(mean_image) < best_copy and sharpness(mean_image) < sharpness(face)
# the text: of the sharp copies, the unshifted middle one is the best single guess
assert min(range(len(shifts)), key=lambda k: expected_error(copies[k : k + 1])) == shifts.index(0)

# %% mystnb={"image": {"alt": "One held-out face shifted horizontally by minus two to plus two pixels, five sharp copies, beside the mean of the copies"}}
fig, axes = plt.subplots(1, len(shifts) + 1, figsize=(1.5 * (len(shifts) + 1), 1.9))
for ax, (name, c) in zip(axes, candidates.items(), strict=True):
    show_grid(c, nrow=1, ax=ax)
    ax.set_title(name.replace("copy shifted", "shift").replace(" of the copies", ""), fontsize=9)
plt.show()

# %% [markdown]
# The sharp copy in the middle is the best single guess, and the mean still beats it: no sharp
# image can. This is what a decoder trained with Eq. 3 learns to do wherever its code leaves
# doubt, and why its reconstructions and samples are blurry. A better decoder or a longer training
# run narrows the doubt but does not change what the loss rewards. The paper's answer is to change
# the loss: compare images in a space learned to tell real faces from fakes, where a blur may
# count as a larger change than a small shift (chapter 3 measures it), and add a critic that
# rejects blurry images outright, a GAN's discriminator (chapter 2).
#
# ## Summary
#
# - A VAE is an encoder $q(z \mid x)$ and a decoder $p(x \mid z)$ (Eq. 1), trained on
#   $\mathcal{L}_\text{llike}^\text{pixel} + \mathcal{L}_\text{prior}$ (Eq. 2 to 4). In the code:
#   `Encoder`, `Decoder`, `llike_loss`, `prior_loss`, and `algorithm1_step(metric="pixel",
#   adversarial=False)`.
# - The reparameterisation $z = \mu + \sigma \odot \varepsilon$ lets the reconstruction error's
#   gradient reach the encoder.
# - With a Gaussian pixel likelihood, the reconstruction term is the squared error per pixel. The
#   trained VAE's reconstructions and samples are measurably less sharp than the data.
# - The reason is in the loss, not the networks: under uncertainty, the squared error is minimised
#   by the average of the plausible images, and averages of sharp images are blurry.
#
# ## Exercises
#
# 1. **The weight of the pixels.** Retrain with `config_for(preset, "vae", pixel_sigma=0.05)` and
#    `pixel_sigma=0.2` (in a new run name, e.g. `load_or_train("vae_s005", ...)`). How do the
#    reconstruction MSE, the sharpness of reconstructions and of samples, and $\mathcal{L}_\text{prior}$
#    change? Why does a smaller $\sigma$ make the KL term relatively weaker?
# 2. **More doubt, more blur.** Repeat the shifted-face computation with shifts of $-4, \dots, 4$
#    pixels, and with vertical shifts as well. Plot the mean image's sharpness and its advantage in
#    expected MSE against the number of plausible images.
# 3. **Another loss, another average.** Replace the squared error by the absolute error
#    $\frac{1}{K}\sum_k \lvert c - x_k \rvert$ in the shifted-face computation and find the best $c$
#    pixel by pixel (hint: the median). Is it sharper than the mean? What likelihood $p(x \mid z)$
#    corresponds to this loss?
# 4. **Sampled codes.** Decode five samples $z \sim q(z \mid x)$ of the same test face (use
#    `reparameterize` on `model.encode(x)`). How different are the five images, and how does their
#    mean compare with $\mathrm{Dec}(\mu)$?
# 5. **Is sharpness enough?** Add Gaussian noise to the reconstructions and raise its standard
#    deviation until their sharpness passes the data's. At what noise level does that happen, and
#    do the noisy reconstructions look any more like the faces? What does that say about judging
#    image quality by one number, and what would a better measure have to know about faces?
