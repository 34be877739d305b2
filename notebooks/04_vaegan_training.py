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
# reads Algorithm 1 next to its code, trains the model while watching it, and turns the one knob
# the paper adds to the decoder's update, $\gamma$, to see what it trades. The engineering that
# makes the same loop fast on a GPU (mixed precision, channels-last, `torch.compile`, the data
# held on the GPU) and a speed comparison with another library have their own page,
# [Appendix: Making it fast](A1_making_it_fast.ipynb).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q git+https://github.com/vaegan-lite/vaegan-lite
    pass

# %%
import copy
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Image, Markdown, display

from vaegan_lite.book.diagrams import diagram
from vaegan_lite.book.experiments import gpu_synthetic_figures
from vaegan_lite.book.live import LiveTraining
from vaegan_lite.book.plotting import show_rows
from vaegan_lite.book.runs import (
    check_claim,
    get_preset,
    load_or_train,
    running_box,
    runs_dir,
    test_images,
)
from vaegan_lite.book.showcase import showcase_line, showcase_rows
from vaegan_lite.book.source import show_source
from vaegan_lite.checkpoint import read_checkpoint
from vaegan_lite.config import StepConfig, config_for
from vaegan_lite.data import training_tensors
from vaegan_lite.metrics import diversity, mse, sharpness
from vaegan_lite.models import VAEGAN, algorithm1_step, grads
from vaegan_lite.models.vaegan import finish_step
from vaegan_lite.train import deterministic_algorithms, fixed_samples, train

preset = get_preset()
print(f"preset: {preset.name} ({preset.image_size}x{preset.image_size}, width {preset.width}, "
      f"{preset.steps} steps)")


# %% tags=["nbval-ignore-output"]
# How long this chapter takes, as measured on the machines the box names.
running_box("04_vaegan_training")

# %% [markdown]
# ## Goals
#
# - Read Algorithm 1 and its code side by side, and see where each of the three losses goes.
# - Know why all three gradients are computed before any network moves, and how the package
#   proves it.
# - Watch a run while it trains, and tell a healthy run from a failing one by its
#   $\mathrm{Dis}(x)$ and $\mathrm{Dis}(x_p)$ traces.
# - See what $\gamma$ trades (Eq. 9, the paper's Fig. 5): reconstructions that keep their input
#   against samples that fool the discriminator.
# - Make a long run safe to interrupt: checkpoints and exact resume.

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
# with the GAN term over real images $x$, prior samples $x_p = \mathrm{Dec}(z_p)$ **and**
# reconstructions $\tilde{x} = \mathrm{Dec}(z)$, $z \sim \mathrm{Enc}(x)$ (Eq. 10, written as the
# discriminator's cross-entropy; the paper prints it without the leading minus):
#
# $$
# \mathcal{L}_\text{GAN} = -\Big[\log \mathrm{Dis}(x) + \log\big(1 - \mathrm{Dis}(x_p)\big)
# + \log\big(1 - \mathrm{Dis}(\tilde{x})\big)\Big].
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
# $\mathcal{L}_\text{GAN}$ has the sign of a cross-entropy, the quantity the discriminator
# *minimises* (the [notation page](../book/notation.md) explains why Algorithm 1 only makes sense
# that way), and by default the decoder minimises the non-saturating
# $-\log \mathrm{Dis}(\tilde{x}) - \log \mathrm{Dis}(x_p)$ instead of exactly
# $-\mathcal{L}_\text{GAN}$; Algorithm 1's exact form is `StepConfig(gan_variant="saturating")`,
# used further down.
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
# `finish_step` then hands each network its own gradients and steps its optimiser, skipping a
# step whose losses or gradients are not finite (a NaN, an fp16 overflow) without asking the GPU
# for a number it would have to wait for:

# %%
show_source(finish_step)

# %% [markdown]
# The order matters. An optimizer step changes parameters in place; if $\mathrm{Dis}$ stepped
# before the decoder's gradient was taken, that gradient would be computed through a
# discriminator that no longer produced the forward pass, which PyTorch reports as an in-place
# modification error, the most common complaint about ports of this model. The other classic bug
# is the reverse leak: calling `L_GAN.backward()` for the discriminator without detaching the
# generated images also fills the decoder's `.grad` with the gradient that *helps the
# discriminator*.
#
# `tests/test_routing.py` checks the routing numerically: with plain SGD and a unit learning rate,
# the change of every parameter must equal minus the gradient of that network's own loss, recomputed
# independently from the paper's formulas (`torch.distributions` for the KL, PyTorch's
# cross-entropy for $\mathcal{L}_\text{GAN}$). The same check is run on a step written to route
# the losses as a published library does (the `VAEGAN` of `pythae==0.1.2`, see
# [Paper vs. code](../book/paper_vs_code.md)): its decoder receives the discriminator's loss too
# and its encoder an extra reconstruction term, and the test asserts that the check catches both.
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
assert torch.equal(small["enc"], large["enc"]) and torch.equal(small["dis"], large["dis"])
assert not torch.equal(small["dec"], large["dec"])

# %% tags=["remove-input"]
diagram("vaegan")

# %% [markdown]
# The VAE/GAN during training, the flow of the paper's Fig. 2. There is one decoder and one
# discriminator: $\mathrm{Dec}$ decodes both the encoder's code $z$ and the prior's $z_p$, and
# $\mathrm{Dis}$ judges the real image $x$, the reconstruction $\tilde{x}$ and the sample $x_p$. Its
# layer-$l$ features of $x$ and $\tilde{x}$ give the reconstruction loss
# $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$ (Eq. 7); its output on all three gives
# $\mathcal{L}_\text{GAN}$ (Eq. 10, as a cross-entropy). The bottom line is Algorithm 1's routing:
# which loss trains which network.

# %% [markdown]
# ## Training, and watching it train
#
# `vaegan_lite.train.train(cfg, out_dir, data=...)` runs Algorithm 1 `cfg.steps` times on the images
# it is handed; `vaegan_lite.data.training_tensors(cfg)` gives the config's own (the synthetic
# faces, or CelebA). Everything else a run depends on is a field of `TrainConfig`, and
# `config_for(preset, model)` fills it in at the preset's size. Some fields change how fast the same
# step runs, not what it computes: `device`, `precision`, `channels_last`, `compile`; the CPU
# presets train in fp32, and [Making it fast](A1_making_it_fast.ipynb) shows what each does on a
# GPU.
#
# `vaegan_lite.book.live.LiveTraining` is a callback for `train`: every `every` steps it redraws one
# image in place with a grid of samples from fixed $z_p$, the losses, and the discriminator's mean
# outputs. In a terminal it prints a line of numbers instead.

# %%
show_source(LiveTraining.__call__)

# %% [markdown]
# Now the VAE/GAN at this preset. The run lives in a folder under `runs_dir(preset)`; if it is
# already there (finished or interrupted), `load_or_train` reads it back or resumes it. The
# callback below also keeps a copy of the model a third of the way in, for the two comparisons
# further down (a failing run and the $\gamma$ sweep, both a third of the length): the batch of
# step $t$ depends only on the seed and $t$, and the learning rate is constant, so that copy is
# the model a run of a third of the length would give.

# %%
cfg = config_for(preset, "vaegan")
third = max(preset.steps // 3 // preset.log_every, 2) * preset.log_every  # a logged step
print(f"{cfg.steps} steps, batch {cfg.batch_size}, gamma {cfg.step.gamma}, "
      f"checkpoint every {cfg.checkpoint_every} steps; a copy is kept at step {third}")

# %% mystnb={"image": {"alt": "Live view of the VAE/GAN's training: a grid of samples Dec(z_p), the losses L_prior, L_llike and L_GAN, and the discriminator's outputs against step"}}
live = LiveTraining(every=max(cfg.log_every, cfg.steps // 10), total=cfg.steps)
early = {}


def watch(step: int, model: VAEGAN, history: dict) -> None:
    live(step, model, history)
    if step == third:  # train calls back after each logged step
        early["model"] = copy.deepcopy(model).eval()


run = load_or_train("vaegan", cfg, preset, callback=watch)
live.finish(run)  # the final frame, also when the run was read back from its folder

# %% [markdown]
# ## Reading the traces: healthy and failing training
#
# $\mathrm{Dis}(x)$ is the discriminator's mean probability that a real batch is real,
# $\mathrm{Dis}(x_p)$ the same for prior samples (and $\mathrm{Dis}(\tilde{x})$ for
# reconstructions; the logs and legends call them `D(x)`, `D(Dec(z))` and `D(Dec(Enc(x)))`). If the discriminator could not tell them apart at all, all three would sit
# at $\frac{1}{2}$. In a healthy run they separate (the discriminator always has some edge) but
# stay away from $0$ and $1$ and move slowly, and the samples keep improving.
#
# A failing run, for contrast. Two changes make the discriminator too strong for the decoder:
# a learning rate ten times the paper's (`TrainConfig` has one learning rate for all three
# networks), and the decoder's GAN loss in the paper's exact, *saturating* form: the decoder
# minimises $\log(1 - \mathrm{Dis}(\tilde{x})) + \log(1 - \mathrm{Dis}(x_p))$, whose gradient with
# respect to each of the discriminator's logits is $-\mathrm{Dis}(\cdot)$ and vanishes exactly
# when the discriminator rejects the decoder's images with confidence. Failures show early, so
# this run is a third of the length. In fp16 (the `gpu` preset's precision on a T4) a run this unstable may
# even overflow and stop; `load_or_train(..., may_diverge=True)` then says so and reads it back at
# its last good checkpoint, and the comparison below is made at that step:

# %% mystnb={"image": {"alt": "Final view of the failing run, learning rate ten times higher with the saturating loss: samples, losses and discriminator outputs against step"}}
fail_cfg = config_for(preset, "vaegan", lr=10 * cfg.lr, gan_variant="saturating", steps=third)
print(f"lr {fail_cfg.lr:g}, gan_variant {fail_cfg.step.gan_variant!r}, {fail_cfg.steps} steps")
fail = load_or_train("vaegan_lr10_saturating", fail_cfg, preset, may_diverge=True)
LiveTraining().finish(fail)

# %% [markdown]
# The traces of both runs over the failing run's steps, and two numbers for what the traces do
# not show directly. The **diversity of the samples** (chapter 2's `metrics.diversity`: the
# standard deviation of each pixel across many samples, averaged over the pixels; the same for
# the data, as the reference; near $0$ means every $z_p$ gives the same image, the GAN failure
# called *mode collapse*). And **how far the reconstructions are from their inputs** in each
# run's own $\mathrm{Dis}_l$, as a fraction of the distance to another face (chapter 3's
# yardstick; `behind` below).

# %% mystnb={"image": {"alt": "The discriminator's mean outputs D(x), D(Dec(z)) and D(Dec(Enc(x))) against step, for the healthy run and the failing run side by side"}} tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the asserts check what the text
# below says.
end = min(fail_cfg.steps, fail.history["step"][-1])  # the failing run's last step (it may stop)
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3), sharey=True)
runs = {"healthy: the run above": run, "failing: lr x10, saturating": fail}
for ax, (name, r) in zip(axes, runs.items(), strict=True):
    keep = [i for i, s in enumerate(r.history["step"]) if s <= end]
    for key in ("D(x)", "D(Dec(z))", "D(Dec(Enc(x)))"):
        ax.plot([r.history["step"][i] for i in keep], [r.history[key][i] for i in keep], label=key)
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("step")
axes[0].set_ylabel("discriminator's mean output")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()


if "model" not in early:  # the main run was read back from its folder: its first third again
    early["model"] = load_or_train("vaegan_third", config_for(preset, "vaegan", steps=third),
                                   preset).model.eval()  # fmt: skip


def behind(model: VAEGAN, x: torch.Tensor, batch: int = 500) -> float:
    """How far Dec(mu(x)) is from x in the model's own Dis_l, as a fraction of the distance from
    x to another face (chapter 3's yardstick): comparable between two discriminators whose
    features have different scales, as raw L_llike values are not. Median over the faces,
    ``batch`` at a time (a GPU's memory holds Dis_l's maps of a few hundred 64x64 faces)."""
    ratios = []
    with torch.no_grad():
        for xb in x.split(batch):
            xb, f = xb.to(model.device), model.dis.dis_l
            to_recon = (f(xb) - f(model.reconstruct(xb))).pow(2).flatten(1).sum(1)
            to_other = (f(xb) - f(xb.roll(1, dims=0))).pow(2).flatten(1).sum(1)
            ratios.append((to_recon / to_other).cpu())
    return torch.cat(ratios).median().item()


x_div, _ = test_images(preset, preset.test_size)
div = {"data": diversity(x_div), "healthy": diversity(fixed_samples(run.model, len(x_div), 0)),
       "failing": diversity(fixed_samples(fail.model, len(x_div), 0))}  # fmt: skip
print(f"sample diversity ({len(x_div)} images): "
      + ", ".join(f"{k} {v:.3f}" for k, v in div.items()))
at_end = {}
for name, r in (("healthy", run), ("failing", fail)):
    i = max(i for i, s in enumerate(r.history["step"]) if s <= end)
    at_end[name] = {k: v[i] for k, v in r.history.items()}
    print(f"{name} at step {r.history['step'][i]:.0f}: D(x) {r.history['D(x)'][i]:.2f}, "
          f"D(Dec(z)) {r.history['D(Dec(z))'][i]:.2f}, L_llike {r.history['L_llike'][i]:.0f}")
healthy, failing = at_end["healthy"], at_end["failing"]
gap = {k: e["D(x)"] - e["D(Dec(z))"] for k, e in at_end.items()}
# Both models at step `end`: the healthy run's copy kept at `third`, or, where the failing run
# stopped before it, the healthy run trained again to that step.
healthy_model = early["model"] if end == third else load_or_train(
    f"vaegan_to{end}", config_for(preset, "vaegan", steps=end), preset).model.eval()
lag = {"healthy": behind(healthy_model, x_div), "failing": behind(fail.model.eval(), x_div)}
# means of probabilities; a saturated Dis gives exactly 1.0 in fp32 (a logit above about 17)
assert all(0 <= e[k] <= 1 for e in at_end.values() for k in ("D(x)", "D(Dec(z))"))
if preset.trains_fully:  # a few steps cannot tell the two runs apart
    check_claim(preset, gap["failing"] > gap["healthy"],
                "the failing run's discriminator tells real from generated faces more surely "
                "than the healthy run's", gap)
    check_claim(preset, lag["failing"] > lag["healthy"],
                "the failing run's reconstructions are further from their inputs in its own "
                "discriminator's features, relative to another face", lag)
less = "less" if div["failing"] < div["healthy"] else "more"
display(Markdown(
    f"At step {failing['step']:.0f} the failing run's discriminator gives real faces "
    f"{failing['D(x)']:.2f} and samples {failing['D(Dec(z))']:.2f} on average, a gap of "
    f"{gap['failing']:.2f}; the healthy run's gap at the same step is {gap['healthy']:.2f}. In "
    f"its own discriminator's features, the failing run's reconstructions lie at "
    f"{lag['failing']:.2f} of the distance from their inputs to another face, the healthy "
    f"run's at {lag['healthy']:.2f} "
    f"(its raw L_llike is {failing['L_llike'] / healthy['L_llike']:.1f} times the healthy "
    f"run's, but each is measured in features of another scale). Its "
    f"samples are {less} diverse ({div['failing']:.3f} against "
    f"{div['healthy']:.3f}; the data: {div['data']:.3f})."))

# %% [markdown]
# How to read the two. In a healthy run the discriminator's outputs separate slowly, and the
# samples become faces. When the discriminator wins, $\mathrm{Dis}(x)$ runs towards $1$ and
# $\mathrm{Dis}(x_p)$ and $\mathrm{Dis}(\tilde{x})$ towards $0$, and with the saturating loss the
# decoder's GAN gradient shrinks with them.
# With the large learning rate the discriminator's features also move faster, so the metric the
# decoder chases moves faster than the decoder, and its reconstructions stay far from their
# inputs in those features. The raw $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$ of two runs
# cannot show this: each is measured in its own discriminator's features, whose scale its own
# weights set, and the two runs' weights differ. So the comparison above divides, as chapter 3
# did, by the distance to another face in the same features. A decoder in this state tends
# towards *mode collapse*: fewer distinct faces. The diversity number is a blunt instrument
# (colours alone keep it up), which is why it is worth looking at the sample grid, not just at
# numbers.
#
# Rules of thumb for your own runs: $\mathrm{Dis}(x)$ close to $1$ together with
# $\mathrm{Dis}(x_p)$ close to $0$ early in training means the discriminator is
# winning; a sample grid whose faces look alike means mode collapse; and a loss that jumps by
# orders of magnitude means a learning rate too large. The authors' `equilibrium` flag (below)
# exists for the first of these.

# %% [markdown]
# ## $\gamma$: content against style (Eq. 9, Fig. 5)
#
# $\gamma$ appears in one place, the decoder's update (Eq. 9), where it weighs reconstructing the
# input's $\mathrm{Dis}_l$ features ("content") against fooling the discriminator ("style"); the
# one-step experiment above showed that it moves nothing else. Its two ends are models of earlier
# chapters: with $\gamma$ large the decoder is the decoder of a $\mathrm{VAE}_{\mathrm{Dis}_l}$
# (chapter 3) whose metric keeps learning; with $\gamma$ small it is a GAN generator (chapter 2)
# that the encoder can only try to invert. The paper's Fig. 5 shows reconstructions at three
# settings and names what goes wrong at each end: "If $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$
# is too prominent we see artifacts from the feature-based reconstruction. If
# $\mathcal{L}_\text{GAN}$ is too prominent we loose details in the reconstruction, e.g. mouth
# shape."
#
# What matters is the balance, not $\gamma$ alone: $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$ is
# summed over all of $\mathrm{Dis}_l$'s features (`losses.py` explains the convention), so the
# right $\gamma$ shrinks as $\mathrm{Dis}_l$ grows, and the presets set it by their size.
#
# The sweep: the preset's $\gamma$, and $\gamma$ a thousand times smaller and a thousand times
# larger, far enough that each end is plain to see. To keep the chapter short the two new runs
# are a third of the main run's length, and the preset's $\gamma$ is represented by the copy the
# callback kept at the same step, so all three are compared after the same training.
# [Chapter 6](06_experiments.ipynb) sweeps $\gamma$ in finer steps, at full length, with more
# measures.

# %%
factors = (1e-3, 1.0, 1e3)  # gamma = the preset's gamma times each
label = {1e-3: "gamma / 1000", 1.0: "gamma (the preset's)", 1e3: "1000 gamma"}
models = {1.0: early["model"]}  # the copy kept at step `third`
for f in factors:
    if f != 1.0:
        models[f] = load_or_train(f"vaegan_gamma{f:g}", config_for(preset, "vaegan", steps=third,
                                                                gamma=f * preset.gamma),
                                  preset).model.eval()  # fmt: skip
x, _ = test_images(preset, preset.test_size)
features = early["model"].dis.dis_l(x[:2].to(early["model"].device))[0].numel()
print(f"Dis_l has {features} features; gamma "
      + ", ".join(f"{f * preset.gamma:g}" for f in factors) + f", each after {third} steps")

# %% [markdown]
# Held-out faces, their reconstructions and samples from the same $z_p$ at each $\gamma$. Compare
# each row of reconstructions with the faces above it (hair, glasses, face shape, mouth), and the
# samples' textures with the data's:

# %% mystnb={"image": {"alt": "Rows of twelve: held-out faces, then VAE/GAN reconstructions and samples at gamma divided by a thousand, the preset's gamma, and times a thousand"}}
n_show = 12
rows = {"held-out faces x": x[:n_show]}
rows |= {f"reconstructions, {label[f]}": models[f].reconstruct(x[:n_show]) for f in factors}
rows |= {f"samples, {label[f]}": fixed_samples(models[f], n_show, 0) for f in factors}
fig = show_rows(rows, nrow=n_show, scale=1.1)
plt.show()

# %% [markdown]
# Four numbers per $\gamma$ on all the held-out faces: the reconstructions' pixel error (how much
# of the input is kept, in a metric that none of the three optimises), the sharpness of
# reconstructions and samples (`vaegan_lite.metrics.sharpness`, the energy of the image's
# Laplacian, with the data's as the reference: above it means noise, below it blur), and the
# samples' diversity, as measured for the failing run above:

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the asserts check what the text
# below says.
measures = {}
for f in factors:
    recon, samples = models[f].reconstruct(x), fixed_samples(models[f], len(x), 0)
    measures[f] = {"MSE": mse(recon, x).mean().item(),
                   "recon sharpness": sharpness(recon).mean().item(),
                   "sample sharpness": sharpness(samples).mean().item(),
                   "sample diversity": diversity(samples)}  # fmt: skip
print(f"{'':22}" + "".join(f"{k:>18}" for k in measures[1.0]))
print(f"{'data x':22}{'':>18}" + f"{sharpness(x).mean():18.4f}" * 2 + f"{diversity(x):18.4f}")
for f, m in measures.items():
    print(f"{label[f]:22}" + "".join(f"{v:18.4f}" for v in m.values()))
small, mid, large = (measures[f] for f in factors)
if preset.trains_fully:  # a few steps (smoke, cut short) train nothing
    check_claim(preset, small["MSE"] > max(mid["MSE"], large["MSE"]),
                "a small gamma loses the input: its reconstructions' MSE is the largest")


def ratio(key: str, a: dict, b: dict) -> str:
    return f"{a[key] / b[key]:.2f} times"


sharpest = max(factors, key=lambda f: measures[f]["sample sharpness"])
display(Markdown(
    f"With $\\gamma$ a thousand times smaller the reconstructions' pixel error is "
    f"{ratio('MSE', small, mid)} the preset's, with $\\gamma$ a thousand times larger "
    f"{ratio('MSE', large, mid)}. The samples' diversity is {ratio('sample diversity', small, mid)} "
    f"the preset's with the small $\\gamma$ and {ratio('sample diversity', large, mid)} with the "
    f"large one; the sharpest samples come with {label[sharpest]}, at "
    f"{measures[sharpest]['sample sharpness'] / sharpness(x).mean().item():.2f} times the data's "
    "sharpness."))

# %% [markdown]
# How to read it. A decoder that barely weighs $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$ is a GAN
# generator: it draws what the discriminator accepts, and the encoder's code of a face can only
# pick among those images, so the reconstructions drift from their inputs, first in the details
# (the paper's mouth shapes) and then in who is shown; it also inherits a GAN's failure modes, of
# which a collapse to a few images (low diversity) or to one texture is the plainest. A decoder
# that barely weighs $\mathcal{L}_\text{GAN}$ reconstructs what $\mathrm{Dis}_l$ measures and
# nothing else; what those features do not pin down is left to chance, which is where the paper's
# "artifacts from the feature-based reconstruction" come from, and nothing asks its samples to
# look real. Pixel error, sharpness and diversity are blunt measures of these failures, which is
# why the rows above are the result and the numbers only a check. The paper seeks "a trade-off
# between the two"; the presets set $\gamma$ between the ends (the `cpu` value was tuned on the
# synthetic faces, the `gpu` value scaled from it by the number of $\mathrm{Dis}_l$ features).

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
# steps (it resumes at $k$), and compare with a run that went straight to $n$. On a CPU every
# kernel is deterministic. On a GPU two straight runs already differ in their last bits, because
# some of cuDNN's fastest algorithms add up in whatever order their threads finish; bit-exact
# resume there needs `deterministic=True` (`--deterministic` on the command line), which makes
# cuDNN use only algorithms that add up in a fixed order:

# %%
show_source(deterministic_algorithms)

# %%
data = training_tensors(config_for(preset, "vaegan"), progress=False)  # drawn once for all three
n = 2 * preset.log_every
k = n // 2
cfg_n = config_for(preset, "vaegan", steps=n, checkpoint_every=preset.log_every,
                   deterministic=True)  # fmt: skip
cfg_k = config_for(preset, "vaegan", steps=k, checkpoint_every=preset.log_every,
                   deterministic=True)  # fmt: skip
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
# the two runs served only this demonstration (at the gpu preset a checkpoint is hundreds of MB)
for run_dir in (resumed_dir, straight_dir):
    shutil.rmtree(run_dir)
print(f"format       {ckpt['format']}\n"
      f"step         {ckpt['step']}\n"
      f"config       TrainConfig as JSON: model {json.loads(ckpt['config'])['model']['model']!r}, ...\n"
      f"model        {len(ckpt['model'])} tensors (state_dict of Enc, Dec, Dis)\n"
      f"optim        RMSProp state of {', '.join(ckpt['optim'])}\n"
      f"rng          {', '.join(ckpt['rng'])} generator state\n"
      f"history      {', '.join(k for k in ckpt['history'] if k != 'step')}\n"
      f"log_windows  the steps since the last log, one per process ({len(ckpt['log_windows'])}): "
      "a run resumed between two logs logs what an unbroken run does\n"
      f"trained_on   {' in '.join(ckpt['trained_on'])}: resumed elsewhere, the run says it goes on "
      "not bit for bit")

# %% [markdown]
# The kernel's stop button works the same way: `train` finishes the current step, saves it, and
# raises `KeyboardInterrupt`; running the cell again continues from there
# (`tests/test_train.py` checks that the interrupted and resumed run is bitwise the straight one).
#
# ## The authors' variants
#
# The authors' public code differs from the paper in a few choices that matter for reproducing
# their figures. Each is a `StepConfig` flag whose default is the paper's setting, with one
# exception: the decoder's GAN loss defaults to the non-saturating form, which the paper does not
# use, but whose gradient does not vanish when the discriminator wins (the failing run above uses
# the saturating one). The
# [Paper vs. code](../book/paper_vs_code.md) page has the details.
#
# | flag | default | paper | authors' code |
# |---|---|---|---|
# | `w` | `None` | Dec's update is $\gamma\,\mathcal{L}_\text{llike} - \mathcal{L}_\text{GAN}$ (Eq. 9) | $w\,\nabla\mathcal{L}_\text{llike} - (1 - w)\,\nabla\mathcal{L}_\text{GAN}$, $w = 10^{-6}$ on CelebA |
# | `dis_sees_recon` | `True` | $\mathrm{Dis}$ also sees $\mathrm{Dec}(\mathrm{Enc}(x))$ (Eq. 10) | `False` in the CelebA run |
# | `equilibrium` | `False` | no such rule | skip $\mathrm{Dis}$'s update while it wins, $\mathrm{Dec}$'s while it loses badly (`eq_center`, `eq_margin`) |
# | `gan_variant` | `"non_saturating"` | `"saturating"`: Algorithm 1's exact $-\mathcal{L}_\text{GAN}$ | `"saturating"`, as the paper |

# %%
defaults = StepConfig()
for name in ("w", "dis_sees_recon", "equilibrium", "eq_center", "eq_margin", "gan_variant"):
    print(f"StepConfig.{name} = {getattr(defaults, name)!r}")

# %% [markdown]
# ## The VAE/GAN at this preset
#
# Samples from the prior and reconstructions of held-out faces from the run above, next to the
# pixel VAE of chapter 1 (the same run folder, `vae`, so the book trains it once):

# %% mystnb={"image": {"alt": "Rows of sixteen: held-out faces, reconstructions by the VAE and by the VAE/GAN, and samples from the VAE and from the VAE/GAN"}}
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
# Results of training (your digits will differ from the book's); the asserts check what the text
# below says.
print(f"{len(x)} held-out faces{'':8}{'MSE to x':>10}{'sharpness':>11}")
print(f"{'data x':29}{'':>10}{sharpness(x).mean():11.4f}")
for name in recon:
    print(f"{name + ' reconstructions':29}{mse(recon[name], x).mean():10.4f}"
          f"{sharpness(recon[name]).mean():11.4f}")
for name in samples:
    print(f"{name + ' samples':29}{'':>10}{sharpness(samples[name]).mean():11.4f}")
assert sharpness(recon["VAE/GAN"]).mean() > sharpness(recon["VAE"]).mean()
assert sharpness(samples["VAE/GAN"]).mean() > sharpness(samples["VAE"]).mean()
if preset.trains_fully:
    check_claim(preset, mse(recon["VAE/GAN"], x).mean() > mse(recon["VAE"], x).mean(),
                "the VAE/GAN's reconstructions are further from their inputs in pixels than "
                "the VAE's")
sharp = {k: sharpness(v).mean().item() for k, v in
         (("data", x), ("recon", recon["VAE/GAN"]), ("sample", samples["VAE/GAN"]),
          ("vae recon", recon["VAE"]), ("vae sample", samples["VAE"]))}  # fmt: skip
error = {k: mse(v, x).mean().item() for k, v in recon.items()}
display(Markdown(
    f"At this preset the VAE/GAN's reconstructions are {sharp['recon'] / sharp['vae recon']:.1f} "
    f"times as sharp as the VAE's and its samples {sharp['sample'] / sharp['vae sample']:.1f} "
    f"times, which brings them to {sharp['recon'] / sharp['data']:.0%} and "
    f"{sharp['sample'] / sharp['data']:.0%} of the data's sharpness; the pixel error of its "
    f"reconstructions is {error['VAE/GAN'] / error['VAE']:.1f} times the VAE's."))

# %% [markdown]
# Sharpness counts noise as detail (chapter 1's measure is the energy a high-pass filter keeps),
# so these ratios say that the VAE/GAN is not blurry, not that its detail is right: look at the
# pictures above, and at chapter 6's texture FD, which blur and noise both move.
#
# The pixel error is the metric the VAE optimises and the VAE/GAN does not. The VAE/GAN bets that
# by a learned metric a reconstruction with the input's hair, glasses and face shape but textures
# of its own is close, and the VAE's average of every face that fits its code is far, where the
# pixel metric says the opposite; chapter 6's nearest-neighbour test measures how well the
# discriminator's features tell faces apart. How clean the VAE/GAN's samples and reconstructions get depends on the networks'
# size and the run's length: the `gpu` preset trains Table 1's full networks on CelebA at 64×64,
# with the paper's batch size and learning rate, for as many steps as the authors' code does.
#
# ### At 64×64: the shipped models
#
# The package ships a VAE and a VAE/GAN trained on the synthetic faces at the paper's 64×64 (the
# `cpu` preset's runs see 32×32), with a larger latent space and for many more steps than the
# `cpu` preset's runs: chapter 5 edits faces with them. Read from the package rather than trained
# here, they show the same comparison at an image size where more of it is visible. The line
# printed first says how wide their networks are, how long they trained and where.

# %% mystnb={"image": {"alt": "Rows of held-out faces, their reconstructions by the shipped VAE and VAE/GAN, and samples from both"}}
# Read from the package, not trained here (tools/train_pretrained.py made them).
print(showcase_line())
shipped = showcase_rows(16)
fig = show_rows(shipped, nrow=16, scale=1.1)
plt.show()
assert sharpness(shipped["VAE/GAN: reconstructions"]).mean() > sharpness(
    shipped["VAE: reconstructions"]).mean()  # as the text below says

# %% [markdown]
# The VAE's reconstructions are the blurred averages of chapter 1; the VAE/GAN's are sharper
# (the cell checks it by chapter 1's sharpness), with textures of their own. Whether their details
# are the input's is another question: chapter 5 counts how often an attribute survives the round
# trip through each model.
#
# ### At the paper's size
#
# Chapter 6's plan `gpu-synthetic` trains the VAE, $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$, the
# VAE/GAN and the other models of Fig. 3 and 4 with Table 1's networks at the paper's image size, on
# a GPU, on the synthetic faces. When its results ship with the package, their reconstructions and
# samples are shown here beside this preset's run above (read, not trained; the line printed first
# says on which GPU and with how many steps, or that none ship with this copy):

# %% mystnb={"image": {"alt": "Paper-size runs: held-out faces above their reconstructions by four models"}}
# Read from the package, not trained here (chapter 6 makes them: plan gpu-synthetic).
for path in gpu_synthetic_figures("fig4_reconstructions.png"):
    display(Image(filename=str(path)))

# %% mystnb={"image": {"alt": "Paper-size runs: samples of the five models beside real faces"}} tags=["remove-input"]
for path in gpu_synthetic_figures("fig3_samples.png", provenance=False):
    display(Image(filename=str(path)))

# %% [markdown]
# ## Summary
#
# - Algorithm 1 trains three networks on three different losses from one forward pass:
#   $\mathrm{Enc}$ on $\mathcal{L}_\text{prior} + \mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$,
#   $\mathrm{Dec}$ on $\gamma\,\mathcal{L}_\text{llike}^{\mathrm{Dis}_l} - \mathcal{L}_\text{GAN}$,
#   $\mathrm{Dis}$ on $\mathcal{L}_\text{GAN}$ only. All gradients are taken before any step
#   (`grads`, then `finish_step`), and `tests/test_routing.py` proves the routing.
# - `LiveTraining` shows samples and curves while the run trains. Healthy: $\mathrm{Dis}(x)$ and
#   $\mathrm{Dis}(x_p)$ apart but away from $0$ and $1$, moving slowly. Failing: they
#   separate faster, so at the same step the gap between them is wider, the reconstructions
#   are further from their inputs in the discriminator's features, and the decoder's saturating
#   gradient fades as $\mathrm{Dis}(x_p)$ nears $0$. Compare runs at equal steps, not a run's end
#   with another's start, and losses measured in two discriminators' features only after
#   dividing by a distance in the same features.
# - $\gamma$ moves only the decoder. Too small, and the decoder is a GAN generator whose
#   reconstructions drift from their inputs; too large, and it reconstructs features without
#   trying to fool the discriminator. The paper's Fig. 5 is this trade-off.
# - Checkpoints every `checkpoint_every` steps (on Google Drive when it is mounted) and bitwise
#   exact resume (on a GPU with `deterministic=True`).
# - Running the loop fast on a GPU (bf16 or fp16, channels-last, `torch.compile`, data on the GPU)
#   is in [Making it fast](A1_making_it_fast.ipynb).
#
# ## Exercises
#
# 1. Run the VAE/GAN with `equilibrium=True` (a new run folder) and plot
#    `run.history["skip_dis"]` and `run.history["skip_dec"]`: when does the trick intervene?
# 2. Fill in the $\gamma$ sweep: add factors of ten between the three runs above (new run
#    folders, the same number of steps) and plot the pixel error and the late
#    $\mathrm{Dis}(x_p)$ (`D(Dec(z))`) against $\gamma$ on a log scale. Where does each start to
#    move, and where on that curve is the preset's $\gamma$?
# 3. Break the routing on purpose: copy `algorithm1_step` into the notebook and replace the three
#    `grads` calls by one `(L_prior + L_llike + L_GAN).backward()` followed by the three optimizer
#    steps. Train a few hundred steps. What happens to $\mathrm{Dis}_l$'s features? (The routing
#    table above says what to expect; check it with the features' standard deviation across a
#    batch of different faces, before and after.)
# 4. Train the sweep's small-$\gamma$ run with `dis_sees_recon=False` (the authors' CelebA
#    setting). Do its reconstructions move further from their inputs, or closer?
# 5. `StepConfig.dis_batch` decides which images share $\mathrm{Dis}$'s BatchNorm statistics
#    (`discriminate`). Take a batch of test images `x` and the same batch at half the contrast,
#    `0.5 * x`. With the trained model's `dis` in training mode (BatchNorm then uses the batch's
#    own statistics), compute $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$ between the two from
#    `discriminate(model.dis, [x, 0.5 * x], None, dis_batch)` with `dis_batch` `"separate"` (the
#    VAE/GAN's default) and `"joint"`. Which of the two sees the change? Then train the VAE/GAN
#    with `dis_batch="joint"` (a new run folder) and compare the spread of the pixel values of
#    its reconstructions, and of the default run's, with that of the test images.
