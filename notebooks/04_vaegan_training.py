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
# # 4. The full VAE/GAN training loop
#
# Chapter 3 froze a GAN's discriminator and used its features as a VAE's metric. The VAE/GAN of
# the paper {cite}`larsen2016autoencoding` trains everything at once: the encoder and decoder
# learn to reconstruct in $\mathrm{Dis}_l$ features, the decoder also learns to fool the
# discriminator, and the discriminator keeps learning, which keeps its features sharp. This chapter
# reads Algorithm 1 next to its code and then builds the loop that runs it on a GPU, every part
# of which also runs here on a CPU.

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q git+https://github.com/vaegan-lite/vaegan-lite
    pass

# %%
import copy
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from vaegan_lite.book.live import LiveTraining
from vaegan_lite.book.plotting import show_rows
from vaegan_lite.book.runs import load_or_train, running_box, runs_dir, test_images
from vaegan_lite.book.source import lines_between, show_source
from vaegan_lite.checkpoint import read_checkpoint
from vaegan_lite.config import StepConfig, TrainConfig, config_for, get_preset
from vaegan_lite.data import training_tensors
from vaegan_lite.metrics import mse, sharpness
from vaegan_lite.models import VAEGAN, algorithm1_step, grads
from vaegan_lite.train import (
    _place,
    _prepare_model,
    autocast_for,
    fixed_samples,
    pick_device,
    pick_precision,
    train,
)

preset = get_preset()
print(f"preset: {preset.name} ({preset.image_size}x{preset.image_size}, width {preset.width}, "
      f"{preset.steps} steps)")


# %% tags=["nbval-ignore-output"]
# The measured times change whenever tools/time_chapters.py runs again.
running_box("04_vaegan_training")

# %% [markdown]
# ## Goals
#
# - Read Algorithm 1 and its code side by side, and see where each of the three losses goes.
# - Know why all three gradients are computed before any network moves, and how the package
#   proves it.
# - Use the engineering that makes the loop fast on a GPU: device, mixed precision, channels-last,
#   `torch.compile`, data held on the GPU; and that makes it safe: checkpoints and exact resume.
# - Watch a run while it trains, and tell a healthy run from a failing one by its
#   $\mathrm{Dis}(x)$ and $\mathrm{Dis}(\mathrm{Dec}(z))$ traces.

# %% [markdown]
# ## Algorithm 1
#
# The paper's box, with its notation ($\overset{+}{\leftarrow}$ means "update with"):
#
# > **Algorithm 1** Training the VAE/GAN model
# >
# > $\theta_\mathrm{Enc}, \theta_\mathrm{Dec}, \theta_\mathrm{Dis} \leftarrow$ initialize network parameters\
# > **repeat**\
# > &emsp;$X \leftarrow$ random mini-batch from dataset\
# > &emsp;$Z \leftarrow \mathrm{Enc}(X)$\
# > &emsp;$\mathcal{L}_\text{prior} \leftarrow D_\mathrm{KL}(q(Z \mid X) \,\Vert\, p(Z))$\
# > &emsp;$\tilde{X} \leftarrow \mathrm{Dec}(Z)$\
# > &emsp;$\mathcal{L}_\text{llike}^{\mathrm{Dis}_l} \leftarrow -\mathbb{E}_{q(Z \mid X)}\left[p(\mathrm{Dis}_l(X) \mid Z)\right]$\
# > &emsp;$Z_p \leftarrow$ samples from prior $\mathcal{N}(0, I)$\
# > &emsp;$X_p \leftarrow \mathrm{Dec}(Z_p)$\
# > &emsp;$\mathcal{L}_\text{GAN} \leftarrow \log(\mathrm{Dis}(X)) + \log(1 - \mathrm{Dis}(\tilde{X})) + \log(1 - \mathrm{Dis}(X_p))$\
# > &emsp;// Update parameters according to gradients\
# > &emsp;$\theta_\mathrm{Enc} \overset{+}{\leftarrow} -\nabla_{\theta_\mathrm{Enc}}(\mathcal{L}_\text{prior} + \mathcal{L}_\text{llike}^{\mathrm{Dis}_l})$\
# > &emsp;$\theta_\mathrm{Dec} \overset{+}{\leftarrow} -\nabla_{\theta_\mathrm{Dec}}(\gamma \mathcal{L}_\text{llike}^{\mathrm{Dis}_l} - \mathcal{L}_\text{GAN})$\
# > &emsp;$\theta_\mathrm{Dis} \overset{+}{\leftarrow} -\nabla_{\theta_\mathrm{Dis}} \mathcal{L}_\text{GAN}$\
# > **until** deadline
#
# (The box's $\mathcal{L}_\text{llike}$ line lacks the $\log$ of Eq. 7; the code uses Eq. 7.) Next
# to it, the function that runs one pass of the loop, `algorithm1_step`. Its comments quote the box
# line by line; the switches `metric` and `adversarial` make the same function train the VAE
# (pixels, no GAN), $\mathrm{VAE}_{\mathrm{Dis}_l}$ and $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ too:

# %%
show_source(algorithm1_step)

# %% [markdown]
# ### The losses: Eq. 8 to 10
#
# The model's objective is the sum of the three terms (Eq. 8),
#
# $$
# \mathcal{L} = \mathcal{L}_\text{prior} + \mathcal{L}_\text{llike}^{\mathrm{Dis}_l} + \mathcal{L}_\text{GAN},
# \tag{8}
# $$
#
# with the GAN term over real images, prior samples **and** reconstructions (Eq. 10):
#
# $$
# \mathcal{L}_\text{GAN} = \log(\mathrm{Dis}(x)) + \log(1 - \mathrm{Dis}(\mathrm{Dec}(z)))
# + \log(1 - \mathrm{Dis}(\mathrm{Dec}(\mathrm{Enc}(x)))).
# \tag{10}
# $$
#
# But no network minimises Eq. 8 as a whole. Each gets the gradient of its own part, and the decoder
# weighs reconstruction ("content") against fooling the discriminator ("style") with $\gamma$
# (Eq. 9):
#
# $$
# \theta_\mathrm{Dec} \overset{+}{\leftarrow} -\nabla_{\theta_\mathrm{Dec}}\big(\gamma\, \mathcal{L}_\text{llike}^{\mathrm{Dis}_l} - \mathcal{L}_\text{GAN}\big).
# \tag{9}
# $$
#
# The code uses $\mathcal{L}_\text{GAN}$ with the sign of a cross-entropy, the quantity the
# discriminator *minimises* (the [notation page](../book/notation.md) explains why Algorithm 1 only
# makes sense that way), and by default the decoder minimises the non-saturating
# $-\log \mathrm{Dis}(\mathrm{Dec}(z))$ instead of exactly $-\mathcal{L}_\text{GAN}$; the paper's
# exact form is `StepConfig(gan_variant="saturating")`, used further down.
#
# ### Gradient routing
#
# | network | trained on | why |
# |---|---|---|
# | $\mathrm{Enc}$ | $\mathcal{L}_\text{prior} + \mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$ | a VAE encoder; the GAN signal is kept out ("we also observe better results by not backpropagating the error signal from $\mathcal{L}_\text{GAN}$ to Enc") |
# | $\mathrm{Dec}$ | $\gamma\,\mathcal{L}_\text{llike}^{\mathrm{Dis}_l} - \mathcal{L}_\text{GAN}$ | reconstruct, and fool $\mathrm{Dis}$ |
# | $\mathrm{Dis}$ | $\mathcal{L}_\text{GAN}$ only | minimising $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$ "would collapse the discriminator to 0": all features equal, every reconstruction perfect |
#
# The three losses come from one forward pass and share its graph. `grads` takes one network's
# gradient of one loss with `torch.autograd.grad`, which writes no `.grad` field, so nothing one
# loss contributes can leak into another network's update; only after all three gradients exist
# does any optimizer step:

# %%
show_source(grads)

# %% [markdown]
# The order matters. An optimizer step changes parameters in place; if $\mathrm{Dis}$ stepped
# before the decoder's gradient was taken, that gradient would be computed through a
# discriminator that no longer produced the forward pass, which PyTorch reports as an in-place
# modification error, the most common complaint about ports of this model. The other classic bug
# is the reverse leak: calling `L_GAN.backward()` for the discriminator without detaching the
# generated images also fills the decoder's `.grad` with the gradient that *helps the
# discriminator*.
#
# `tests/test_routing.py` checks the routing numerically: with plain SGD and learning rate 1, the
# change of every parameter must equal minus the gradient of that network's own loss, recomputed
# independently from the paper's formulas (`torch.distributions` for the KL, PyTorch's
# cross-entropy for $\mathcal{L}_\text{GAN}$). The same check is run on a step with the routing of
# a published library (pythae 0.1.2's `VAEGAN`, see [Paper vs. code](../book/paper_vs_code.md)):
# its decoder receives the discriminator's loss too and its encoder an extra reconstruction term,
# and the test asserts that the check catches both.
#
# A smaller version of that experiment: take one step with $\gamma = 10^{-3}$ and one with
# $\gamma = 10^{3}$ from the same weights and the same random draws. $\gamma$ appears only in the
# decoder's loss, so the encoder and the discriminator must move exactly the same way in both:

# %%
def one_step_update(gamma: float) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = VAEGAN(config_for(preset, "vaegan").model)
    before = copy.deepcopy(model)
    opts = {n: torch.optim.SGD(getattr(model, n).parameters(), lr=1.0) for n in ("enc", "dec", "dis")}
    x, _ = test_images(preset, 8)
    torch.manual_seed(1)  # the same z and z_p in both steps
    algorithm1_step(model, x, opts, StepConfig(gamma=gamma))
    change = {}
    for n in ("enc", "dec", "dis"):
        old, new = getattr(before, n).parameters(), getattr(model, n).parameters()
        change[n] = torch.cat([(b - a).flatten() for a, b in zip(old, new, strict=True)])
    return change


small, large = one_step_update(1e-3), one_step_update(1e3)
for n in ("enc", "dec", "dis"):
    print(f"{n}: same update for both gammas: {torch.equal(small[n], large[n])}")

# %% [markdown]
# ```{figure} ../book/_static/diagrams/vaegan.svg
# :name: fig-vaegan
# :alt: Diagram of the VAE/GAN during training. The image x goes through Enc to a code z, and Dec turns z into the reconstruction x-tilde; a code z_p drawn from the prior goes through the same Dec to a sample x_p. Dis receives the real x, the reconstruction and the sample. Grey lines lead from Enc to the prior loss, from Dis's layer-l features to the feature reconstruction loss, and from Dis's output to the GAN loss. The bottom line reads: Enc is trained on L_prior plus L_llike^Dis_l, Dec on gamma times L_llike^Dis_l minus L_GAN, Dis on L_GAN.
# :width: 100%
#
# The VAE/GAN during training, the flow of the paper's Fig. 2. There is one decoder and one
# discriminator: $\mathrm{Dec}$ decodes both the encoder's code $z$ and the prior's $z_p$, and
# $\mathrm{Dis}$ judges the real image $x$, the reconstruction $\tilde{x}$ and the sample $x_p$. Its
# layer-$l$ features of $x$ and $\tilde{x}$ give the reconstruction loss
# $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$ (Eq. 7); its output on all three gives
# $\mathcal{L}_\text{GAN}$ (Eq. 10, as a cross-entropy). The bottom line is Algorithm 1's routing:
# which loss trains which network.
# ```

# %% [markdown]
# ## The loop, and what makes it fast
#
# `vaegan_lite.train.train(cfg, out_dir)` runs Algorithm 1 `cfg.steps` times. Each setting below is
# a field of `TrainConfig`; the cells run on this machine's CPU with the preset's small networks,
# and the same code is what runs on a GPU.
#
# ### Device
#
# `device="auto"` takes the GPU when PyTorch sees one:

# %%
show_source(pick_device)

# %%
device = pick_device("auto")
print(f"this machine: {device}")

# %% [markdown]
# ### Precision: bf16 autocast, or fp16 with a GradScaler
#
# Under `torch.autocast`, convolutions and matrix products run in a 16-bit format while the
# weights, the optimizer and the losses stay in 32-bit (`losses.py` sums every loss in fp32). Two
# 16-bit formats exist. **bf16** has fp32's exponent range, so nothing overflows or underflows and
# no other change is needed; recent GPUs (Ampere and later: A100, L4) have it. **fp16** has a
# narrow range: small gradients round to zero. GPUs without bf16, such as Colab's free T4, use fp16
# with a `GradScaler`, which multiplies the loss by a large factor before the backward pass (the
# `scaler.scale(loss)` in `grads` above), divides it out before the step, and skips steps whose
# gradients overflowed. `precision="auto"` picks:

# %%
show_source(pick_precision)

# %%
show_source(autocast_for)

# %%
print(f"precision='auto' on {device}: {pick_precision('auto', device)}")

# %% [markdown]
# On a CPU `auto` stays in fp32, but the bf16 path runs here too (on CPUs with bf16 instructions it
# is also faster). A few real training steps of the VAE/GAN under bf16 autocast, next to the same
# steps in fp32, from the same seed and the same batches:

# %% tags=["nbval-ignore-output"]
# Results of training: their digits differ between CPUs (bf16 more so), so nbval does not compare
# this output; the asserts check what the text below says.
few = 2 * preset.log_every
data = training_tensors(config_for(preset, "vaegan"), progress=False)
short = {p: train(config_for(preset, "vaegan", steps=few, precision=p), progress=False, data=data)
         for p in ("fp32", "bf16")}
for p, r in short.items():
    print(f"{p}: L_GAN at steps {[int(s) for s in r.history['step']]}: "
          + ", ".join(f"{v:.2f}" for v in r.history["L_GAN"]))
params = {p: torch.cat([t.flatten() for t in r.model.parameters()]) for p, r in short.items()}
print(f"finite weights after bf16 steps: {bool(params['bf16'].isfinite().all())}")
losses = {p: torch.tensor(r.history["L_GAN"]) for p, r in short.items()}
assert params["bf16"].isfinite().all() and not torch.equal(params["bf16"], params["fp32"])
assert torch.allclose(losses["bf16"], losses["fp32"], rtol=0.2), "bf16 should follow fp32 closely"

# %% [markdown]
# The two runs follow each other closely without being equal: bf16 keeps 8 significant bits, so
# each step rounds differently. The fp16 path (`precision="fp16"`, what `auto` picks on a T4)
# creates a `torch.amp.GradScaler` in `train` and hands it to the step function.
#
# ### Channels-last
#
# PyTorch stores an image batch as NCHW: all of channel 0, then channel 1, ... GPU convolution
# kernels (and tensor cores under autocast) are faster with NHWC, "channels-last", where the
# channels of one pixel sit together. `TrainConfig.channels_last=True` converts the model's
# weights once and every batch as it is drawn:

# %%
show_source(_prepare_model, lines=lines_between(_prepare_model, "if cfg.channels_last:", "model.to(memory_format"))

# %% tags=["nbval-ignore-output"]
# Results of training (not compared by nbval); the asserts check what the text below says.
cl = train(config_for(preset, "vaegan", steps=few, channels_last=True), progress=False, data=data)
w = next(cl.model.dis.parameters())
print(f"first Dis conv weight is channels-last: {w.is_contiguous(memory_format=torch.channels_last)}")
for name, r in (("NCHW", short["fp32"]), ("channels-last", cl)):
    print(f"{name:>13}: L_GAN " + ", ".join(f"{v:.2f}" for v in r.history["L_GAN"]))
assert w.is_contiguous(memory_format=torch.channels_last)
assert torch.allclose(torch.tensor(cl.history["L_GAN"]), losses["fp32"], rtol=0.05)

# %% [markdown]
# Only the memory layout changed. The convolutions add the same products in a different order, so
# the runs agree closely but not bit for bit, and tiny differences grow over the steps of a GAN.
#
# ### `torch.compile`
#
# `TrainConfig.compile=True` compiles each network with `torch.compile` (fusing the BatchNorm, ReLU
# and elementwise work into fewer GPU kernels). Compiling takes a minute or more before the first
# step, so it pays only for long runs; it is off by default and not run here:

# %%
show_source(_prepare_model, lines=lines_between(_prepare_model, "if cfg.compile:", "net.compile()"))

# %%
print(TrainConfig(compile=True).compile)  # how to ask for it: config_for(preset, "vaegan", compile=True)

# %% [markdown]
# `net.compile()` compiles the module in place, so its `state_dict` keeps its names and the
# checkpoints of compiled and uncompiled runs are interchangeable.
#
# ### Data on the GPU, as uint8
#
# A data loader that decodes and copies every batch from the CPU can starve a GPU that finishes a
# step in milliseconds. The data sets here are small enough to avoid that entirely: `train` keeps
# the whole training set on the GPU as 8-bit integers, a quarter of the float32 size, and converts
# only the batch to $[-1, 1]$ floats:

# %%
show_source(_place)

# %%
images = data[0]
print(f"this preset: {tuple(images.shape)} {images.dtype}, "
      f"{images.numel() / 2**20:.0f} MiB as uint8 ({4 * images.numel() / 2**20:.0f} MiB as float32)")
celeba = 202_599 * 3 * 64 * 64
print(f"CelebA at 64x64: {celeba / 2**30:.2f} GiB as uint8 ({4 * celeba / 2**30:.2f} GiB as float32); "
      f"a T4 has 15 GiB")

# %% [markdown]
# On a CPU `_place` leaves the tensor where it is. With a GPU, if it fits in a quarter of the free
# memory it is moved there once, and `images[idx]` then indexes on the GPU; otherwise it is pinned
# in host memory so each batch copies asynchronously.
#
# ## Watching it train
#
# `vaegan_lite.book.live.LiveTraining` is a callback for `train`: every `every` steps it redraws one
# image in place with a grid of samples from fixed $z_p$, the losses, and the discriminator's mean
# outputs. In a terminal it prints a line of numbers instead.

# %%
show_source(LiveTraining.__call__)

# %% [markdown]
# Now the VAE/GAN at this preset. The run lives in a folder under `runs_dir(preset)`; if it is
# already there (finished or interrupted), `load_or_train` reads it back or resumes it.

# %%
cfg = config_for(preset, "vaegan")
print(f"{cfg.steps} steps, batch {cfg.batch_size}, gamma {cfg.step.gamma}, "
      f"checkpoint every {cfg.checkpoint_every} steps")

# %%
live = LiveTraining(every=max(cfg.log_every, cfg.steps // 10), total=cfg.steps)
run = load_or_train("vaegan", cfg, preset, callback=live)
live.finish(run)  # the final frame, also when the run was read back from its folder

# %% [markdown]
# ## Reading the traces: healthy and failing training
#
# $\mathrm{Dis}(x)$ is the discriminator's mean probability that a real batch is real,
# $\mathrm{Dis}(\mathrm{Dec}(z))$ the same for prior samples (and $\mathrm{Dis}(\mathrm{Dec}(\mathrm{Enc}(x)))$
# for reconstructions). If the discriminator could not tell them apart at all, all three would sit
# at 0.5. In a healthy run they separate (the discriminator always has some edge) but stay away
# from 0 and 1 and move slowly, and the samples keep improving.
#
# A failing run, for contrast. Two changes make the discriminator too strong for the decoder:
# a learning rate 10 times the paper's (`TrainConfig` has one learning rate for all three
# networks), and the decoder's GAN loss in the paper's exact, *saturating* form: the decoder
# minimises $\log(1 - \mathrm{Dis}(\mathrm{Dec}(z)))$, whose gradient with respect to the
# discriminator's logit is $-\mathrm{Dis}(\mathrm{Dec}(z))$ and vanishes exactly when the
# discriminator rejects the decoder's images with confidence. Failures show early, so this run is
# a third of the length:

# %%
fail_cfg = config_for(preset, "vaegan", lr=10 * cfg.lr, gan_variant="saturating",
                      steps=max(preset.steps // 3, 2 * preset.log_every))
print(f"lr {fail_cfg.lr:g}, gan_variant {fail_cfg.step.gan_variant!r}, {fail_cfg.steps} steps")
fail = load_or_train("vaegan_lr10_saturating", fail_cfg, preset)
LiveTraining().finish(fail)

# %% [markdown]
# The traces of both runs over the failing run's steps, and one number for what the traces do not
# show directly, the **diversity of the samples**: the standard deviation of each pixel across
# many samples, averaged over the pixels (the same for the data, as the reference; near 0 means
# every $z_p$ gives the same image, the GAN failure called *mode collapse*).

# %% tags=["nbval-ignore-output"]
# Results of training (not compared by nbval); the asserts check what the text below says.
fig, axes = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
runs = {"healthy: the run above": run, "failing: lr x10, saturating": fail}
for ax, (name, r) in zip(axes, runs.items(), strict=True):
    keep = [i for i, s in enumerate(r.history["step"]) if s <= fail_cfg.steps]
    for key in ("D(x)", "D(Dec(z))", "D(Dec(Enc(x)))"):
        ax.plot([r.history["step"][i] for i in keep], [r.history[key][i] for i in keep], label=key)
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("step")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()


def diversity(images: torch.Tensor) -> float:
    """Per-pixel standard deviation across a set of images, averaged over pixels."""
    return images.std(dim=0).mean().item()


x_div, _ = test_images(preset, preset.test_size)
print(f"sample diversity ({preset.test_size} images): data {diversity(x_div):.3f}, "
      f"healthy {diversity(fixed_samples(run.model, preset.test_size, 0)):.3f}, "
      f"failing {diversity(fixed_samples(fail.model, preset.test_size, 0)):.3f}")
at_end = {}
for name, r in (("healthy", run), ("failing", fail)):
    i = max(i for i, s in enumerate(r.history["step"]) if s <= fail_cfg.steps)
    at_end[name] = {k: v[i] for k, v in r.history.items()}
    print(f"{name} at step {r.history['step'][i]:.0f}: D(x) {r.history['D(x)'][i]:.2f}, "
          f"D(Dec(z)) {r.history['D(Dec(z))'][i]:.2f}, L_llike {r.history['L_llike'][i]:.0f}")
assert all(0 < e[k] < 1 for e in at_end.values() for k in ("D(x)", "D(Dec(z))"))
if preset.name != "smoke":  # a few smoke steps cannot tell the two runs apart
    healthy, failing = at_end["healthy"], at_end["failing"]
    assert failing["D(x)"] - failing["D(Dec(z))"] > healthy["D(x)"] - healthy["D(Dec(z))"]
    assert failing["L_llike"] > healthy["L_llike"]

# %% [markdown]
# How to read the two. In the healthy run the discriminator's outputs separate slowly, and the
# samples become faces. In the failing run $\mathrm{Dis}(x)$ races towards 1 and
# $\mathrm{Dis}(\mathrm{Dec}(z))$ and $\mathrm{Dis}(\mathrm{Dec}(\mathrm{Enc}(x)))$ towards 0 within a
# few hundred steps: the discriminator wins, and with the saturating loss the decoder's GAN
# gradient shrinks with $\mathrm{Dis}(\mathrm{Dec}(z))$. $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$
# is an order of magnitude larger than in the healthy run: with the large learning rate the
# discriminator's features grow, and the metric the decoder chases moves faster than the decoder.
# The samples show the result: fewer distinct faces, the same few templates repeated in different
# colours, a partial *mode collapse*. The diversity number is a blunt instrument (colours alone keep
# it up), which is why it is worth looking at the grid, not just at numbers.
#
# Rules of thumb from runs like these, for your own runs on a GPU: $\mathrm{Dis}(x)$ close to 1
# together with $\mathrm{Dis}(\mathrm{Dec}(z))$ close to 0 early in training means the
# discriminator is winning; a sample grid whose faces look alike means mode collapse; and a loss
# that jumps by orders of magnitude means a learning rate too large. The authors' `equilibrium`
# flag (below) exists for the first of these.

# %% [markdown]
# ## Checkpoints and resume
#
# `train` writes `last.pt` every `checkpoint_every` steps and at the end, atomically (a temporary
# file, then a rename, so a crash never leaves half a checkpoint). It holds the weights, the
# optimizers' state, the random number generators' state, the step and the loss history; the
# batch for step $t$ is a function of the seed and $t$ alone. So a run can stop at any checkpoint
# and continue as if it never had. The folder comes from `runs_dir`; on Colab with Google Drive
# mounted it is on the Drive, and a disconnected runtime loses at most `checkpoint_every` steps:

# %%
show_source(runs_dir)

# %% [markdown]
# The proof that resume is exact: train to step $k$ in a folder, then ask the same folder for $n$
# steps (it resumes at $k$), and compare with a run that went straight to $n$:

# %%
n = 2 * preset.log_every
k = n // 2
cfg_n = config_for(preset, "vaegan", steps=n, checkpoint_every=preset.log_every)
cfg_k = config_for(preset, "vaegan", steps=k, checkpoint_every=preset.log_every)
resumed_dir, straight_dir = tempfile.mkdtemp(), tempfile.mkdtemp()

first = train(cfg_k, resumed_dir, progress=False, data=data)
print(f"first call:  {first.steps_run} steps, last.pt at step "
      f"{read_checkpoint(f'{resumed_dir}/last.pt')['step']}")
resumed = train(cfg_n, resumed_dir, progress=False, data=data)
print(f"second call: {resumed.steps_run} steps, last.pt at step "
      f"{read_checkpoint(f'{resumed_dir}/last.pt')['step']}")
straight = train(cfg_n, straight_dir, progress=False, data=data)
print(f"straight:    {straight.steps_run} steps")

a, b = resumed.model.state_dict(), straight.model.state_dict()
equal = [torch.equal(a[name], b[name]) for name in a]
print(f"bitwise equal: {sum(equal)} of {len(equal)} tensors (weights and BatchNorm statistics)")
assert all(equal), "the resumed run is not the straight one"

# %% [markdown]
# What a checkpoint holds (`vaegan_lite.checkpoint` reads it with `torch.load(...,
# weights_only=True)`, which cannot run code hidden in a file):

# %%
ckpt = read_checkpoint(Path(resumed_dir) / "last.pt")
print(f"format  {ckpt['format']}\n"
      f"step    {ckpt['step']}\n"
      f"config  TrainConfig as JSON: model {json.loads(ckpt['config'])['model']['model']!r}, ...\n"
      f"model   {len(ckpt['model'])} tensors (state_dict of Enc, Dec, Dis)\n"
      f"optim   RMSProp state of {', '.join(ckpt['optim'])}\n"
      f"rng     {', '.join(ckpt['rng'])} generator state\n"
      f"history {', '.join(k for k in ckpt['history'] if k != 'step')}")

# %% [markdown]
# The kernel's stop button works the same way: `train` finishes the current step, saves it, and
# raises `KeyboardInterrupt`; running the cell again continues from there
# (`tests/test_train.py` checks that the interrupted and resumed run is bitwise the straight one).
#
# ## The authors' variants
#
# The authors' public code differs from the paper in a few choices that matter for reproducing
# their figures. Each is a `StepConfig` flag, off by default (the paper's setting); the
# [Paper vs. code](../book/paper_vs_code.md) page has the details.
#
# | flag | paper (default) | authors' code |
# |---|---|---|
# | `w` | `None`: Dec's update is $\gamma\,\mathcal{L}_\text{llike} - \mathcal{L}_\text{GAN}$ (Eq. 9) | $w\,\nabla\mathcal{L}_\text{llike} - (1 - w)\,\nabla\mathcal{L}_\text{GAN}$, $w = 10^{-6}$ on CelebA |
# | `dis_sees_recon` | `True`: $\mathrm{Dis}$ also sees $\mathrm{Dec}(\mathrm{Enc}(x))$ (Eq. 10) | `False` in the CelebA run |
# | `equilibrium` | `False` | skip $\mathrm{Dis}$'s update while it wins, $\mathrm{Dec}$'s while it loses badly (`eq_center`, `eq_margin`) |
# | `gan_variant` | `"non_saturating"` here; `"saturating"` is Algorithm 1's exact $-\mathcal{L}_\text{GAN}$ | — |

# %%
defaults = StepConfig()
for name in ("w", "dis_sees_recon", "equilibrium", "eq_center", "eq_margin", "gan_variant"):
    print(f"StepConfig.{name} = {getattr(defaults, name)!r}")

# %% [markdown]
# ## The VAE/GAN at this preset
#
# Samples from the prior and reconstructions of held-out faces from the run above, next to the
# pixel VAE of chapter 1 (the same run folder, `vae`, so the book trains it once):

# %%
vae = load_or_train("vae", config_for(preset, "vae"), preset).model.eval()
model = run.model.eval()
x, _ = test_images(preset, preset.test_size)
recon = {"VAE": vae.reconstruct(x), "VAE/GAN": model.reconstruct(x)}
samples = {"VAE": fixed_samples(vae, len(x), 0), "VAE/GAN": fixed_samples(model, len(x), 0)}
fig = show_rows({
    "held-out faces x": x[:16],
    "VAE: reconstructions": recon["VAE"][:16],
    "VAE/GAN: reconstructions": recon["VAE/GAN"][:16],
    "VAE: samples": samples["VAE"][:16],
    "VAE/GAN: samples": samples["VAE/GAN"][:16],
}, nrow=16, scale=1.1)
plt.show()

# %% tags=["nbval-ignore-output"]
# Results of training (not compared by nbval); the asserts check what the text below says.
print(f"{len(x)} held-out faces{'':8}{'MSE to x':>10}{'sharpness':>11}")
print(f"{'data x':29}{'':>10}{sharpness(x).mean():11.4f}")
for name in recon:
    print(f"{name + ' reconstructions':29}{mse(recon[name], x).mean():10.4f}"
          f"{sharpness(recon[name]).mean():11.4f}")
for name in samples:
    print(f"{name + ' samples':29}{'':>10}{sharpness(samples[name]).mean():11.4f}")
assert sharpness(recon["VAE/GAN"]).mean() > sharpness(recon["VAE"]).mean()
assert sharpness(samples["VAE/GAN"]).mean() > sharpness(samples["VAE"]).mean()
if preset.name != "smoke":
    assert mse(recon["VAE/GAN"], x).mean() > mse(recon["VAE"], x).mean()

# %% [markdown]
# What the `cpu` preset gives after its short run on quarter-width networks: the VAE/GAN's
# reconstructions and samples are far sharper than the VAE's, close to the data's sharpness, and
# the VAE's soft, averaged faces are gone. They are also noisy: speckled colour, blotchy skin and
# background, and reconstructions that keep the hair, glasses and face shape but lose finer
# details, so their pixel error is several times the VAE's. The pixel error is the metric the VAE
# optimises and the VAE/GAN does not; by the learned metric the noise is cheap. The paper's
# setting (`gpu` preset: CelebA at 64×64, the full Table 1 networks, far more steps) is where the
# samples become clean.
#
# ## How fast is this
#
# One training step of the full-size model (Table 1 networks, 64×64, batch 64) costs about 17 GFLOP
# per image, counted by PyTorch's FLOP counter over the forward and backward passes of all three
# networks. `python -m vaegan_lite bench` times the step this chapter trains with, and
# `benchmarks/pythae_compare.py` puts it beside pythae's `VAEGAN` (a popular library whose
# gradient routing `tests/test_routing.py` shows to differ from the paper's) on the *identical*
# networks, alternating the contenders step by step in one process so that a change in the
# machine's load hits all of them alike. Its latest results, from `vaegan_lite/results/speed.json`:

# %% tags=["nbval-ignore-output"]
# The table is read from the benchmark's JSON; it changes whenever the benchmark runs again.
from vaegan_lite.book.tables import speed_table

speed_table()

# %% [markdown]
# How to read it. *vs pythae* is the speed-up over pythae's step in fp32, the like-for-like
# comparison; the rest of our rows add the settings of this chapter. pythae's step is slower
# because it runs the discriminator four times and takes three full backward passes, about 1.6
# times our FLOPs per image. `channels_last` helps on this CPU as it does on GPUs (oneDNN's
# convolutions prefer that layout), and bf16 roughly doubles the speed again on a CPU with
# AVX-512 bf16 instructions. *Of the matmul peak* compares the step's FLOP rate with a large
# matrix multiplication measured in the same run: above 100 % in fp32 because PyTorch's fp32
# matmul on this AMD CPU goes through MKL's AVX2 code while the convolutions use oneDNN's AVX-512.
# `fast` (`TrainConfig.step.fast`, `--fast`) is `vaegan_lite/models/fast.py`, a step that gives
# the same updates (`tests/test_fast.py`) by cutting the graph at the decoder's outputs, so that each
# network's gradient is one backward pass with exactly the upstream vector it needs, and one pass
# through Dis is left out where the maths allows it; on a CPU it gains little, since the FLOPs are
# the same and the CPU was already busy, and it is mostly there for GPUs, where fewer, larger
# kernels matter.
#
# On a GPU, run `python -m vaegan_lite bench --model vaegan --image-size 64 --batch-size 64
# --device cuda --precision bf16` (or `fp16` on a T4): its last line is the images per second, and
# it prints the fraction of the GPU's measured matmul peak.
#
# ## Summary
#
# - Algorithm 1 trains three networks on three different losses from one forward pass:
#   $\mathrm{Enc}$ on $\mathcal{L}_\text{prior} + \mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$,
#   $\mathrm{Dec}$ on $\gamma\,\mathcal{L}_\text{llike}^{\mathrm{Dis}_l} - \mathcal{L}_\text{GAN}$,
#   $\mathrm{Dis}$ on $\mathcal{L}_\text{GAN}$ only. All gradients are taken before any step
#   (`grads` + `apply_grads`), and `tests/test_routing.py` proves the routing.
# - On a GPU: `device="auto"`, `precision="auto"` (bf16, or fp16 with a GradScaler on a T4),
#   `channels_last=True`, optionally `compile=True`; the data set sits on the GPU as uint8.
# - `LiveTraining` shows samples and curves while the run trains. Healthy: $\mathrm{Dis}(x)$ and
#   $\mathrm{Dis}(\mathrm{Dec}(z))$ apart but away from 0 and 1. Failing: they run to 1 and 0.
# - Checkpoints every `checkpoint_every` steps (on Google Drive when it is mounted) and bitwise
#   exact resume.
#
# ## Exercises
#
# 1. Run the VAE/GAN with `equilibrium=True` (a new run folder) and plot
#    `run.history["skip_dis"]` and `run.history["skip_dec"]`: when does the trick intervene?
# 2. Change $\gamma$ by a factor of 10 both ways and compare samples and reconstructions with the
#    run above (the paper's Fig. 5). Which one loses the faces' details, which one gets noisy?
# 3. Break the routing on purpose: copy `algorithm1_step` into the notebook and replace the three
#    `grads` calls by one `(L_prior + L_llike + L_GAN).backward()` followed by the three optimizer
#    steps. Train a few hundred steps. What happens to $\mathrm{Dis}_l$'s features?
# 4. On Colab with a GPU, time 50 steps with `precision="fp32"` and with `precision="auto"`,
#    with and without `channels_last=True`.
