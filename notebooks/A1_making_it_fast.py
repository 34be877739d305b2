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
# # Appendix: Making it fast
#
# [Chapter 4](04_vaegan_training.ipynb) trains the VAE/GAN with `vaegan_lite.train.train`, and the
# same loop runs on a CPU and on a GPU. This page is about the `TrainConfig` fields that change how
# fast it runs but not what it computes, and about measuring speed: what one training step costs,
# and how this package's step compares with a popular library's on the same networks. In the built
# book every cell ran on a CPU with the preset's small networks, and the speed tables come from
# a benchmark run at the paper's size on the machine they name; the same code is what runs on a
# GPU.

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q git+https://github.com/vaegan-lite/vaegan-lite
    pass

# %%
import json

import torch
from IPython.display import Markdown, display

from vaegan_lite.bench import per_step
from vaegan_lite.book.runs import RESULTS, get_preset, running_box
from vaegan_lite.book.source import lines_between, show_source
from vaegan_lite.book.tables import speed_table
from vaegan_lite.config import TrainConfig, config_for
from vaegan_lite.data import training_tensors
from vaegan_lite.models.vaegan import finite
from vaegan_lite.optim import RMSprop
from vaegan_lite.train import (
    autocast_for,
    pick_device,
    pick_precision,
    place_data,
    prepare_model,
    train,
)

preset = get_preset()
print(f"preset: {preset.name} ({preset.image_size}x{preset.image_size}, width {preset.width})")

# %% tags=["nbval-ignore-output"]
# How long this chapter takes, as measured on the machines the box names.
running_box("A1_making_it_fast")

# %% [markdown]
# ## Goals
#
# - Put a run on a GPU and keep it busy: device, mixed precision (bf16, or fp16 with a
#   `GradScaler`), the channels-last memory layout, `torch.compile`, and the data set held on the
#   GPU as `uint8`.
# - Check that each switch changes the speed and not the result, beyond rounding.
# - Read a speed comparison: images per second, FLOPs per image, the step's FLOP rate against
#   what one large operation reaches on the same machine, and why the same model can cost
#   different FLOPs in different code.
#
# ## Device
#
# `device="auto"` takes the GPU when PyTorch sees one:

# %%
show_source(pick_device)

# %%
device = pick_device("auto")
print(f"this machine: {device}")

# %% [markdown]
# ## Precision: bf16 autocast, or fp16 with a GradScaler
#
# Under `torch.autocast`, convolutions and matrix products run in a half-precision format while
# the weights, the optimizer and the losses stay in fp32 (`losses.py` sums every loss in fp32). Two
# half-precision formats exist. **bf16** has fp32's exponent range, so nothing overflows or
# underflows and no other change is needed; recent GPUs (NVIDIA's Ampere generation and later)
# have it. **fp16** has a narrow range: small gradients round to zero. GPUs without bf16, such as
# Colab's free T4, use fp16 with a `GradScaler`, which multiplies the loss by a large factor before
# the backward pass (the `scaler.scale(loss)` in chapter 4's `grads`), divides it out before the
# step, and skips steps whose gradients overflowed. `precision="auto"` picks:

# %%
show_source(pick_precision)

# %%
show_source(autocast_for)

# %%
print(f"precision='auto' on {device}: {pick_precision('auto', device)}")

# %% [markdown]
# On a CPU `auto` stays in fp32, but the bf16 path runs here too (on CPUs with bf16 instructions it
# is also faster). A few real training steps of the VAE/GAN under bf16 autocast (on a GPU, under
# what `auto` picks there: fp16 with a `GradScaler` on a T4, which only emulates bf16), next to
# the same steps in fp32, from the same seed and the same batches:

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's, bf16's more so); the asserts
# check what the text below says.
few = 2 * preset.log_every
data = training_tensors(config_for(preset, "vaegan"), progress=False)
# NCHW for both (the gpu preset's config_for would pick channels-last): one switch at a time
half = "bf16" if device.type == "cpu" else pick_precision("auto", device)  # the reduced one
short = {p: train(config_for(preset, "vaegan", steps=few, precision=p, channels_last=False),
                  progress=False, data=data)
         for p in ("fp32", half)}
for p, r in short.items():
    print(f"{p}: L_GAN at steps {[int(s) for s in r.history['step']]}: "
          + ", ".join(f"{v:.2f}" for v in r.history["L_GAN"]))
params = {p: torch.cat([t.flatten() for t in r.model.parameters()]) for p, r in short.items()}
print(f"finite weights after {half} steps: {bool(params[half].isfinite().all())}")
losses = {p: torch.tensor(r.history["L_GAN"]) for p, r in short.items()}
assert params[half].isfinite().all() and not torch.equal(params[half], params["fp32"])
# How closely depends on the machine: a GPU's kernels (and fp16) round otherwise than the CPU's
# the text was written on, so there a miss is said in a line rather than stopping the chapter.
close = torch.allclose(losses[half], losses["fp32"], rtol=0.2)
assert close or device.type != "cpu", f"{half} should follow fp32 closely"
if not close:
    print(f"On this {device.type} the {half} run strays from fp32 by more than a fifth: {losses}")

# %% [markdown]
# The two runs follow each other closely without being equal: bf16 (and fp16) keep far fewer
# significant bits than fp32, so each step rounds differently. The fp16 path (`precision="fp16"`,
# what `auto` picks on a T4) creates a `torch.amp.GradScaler` in `train` and hands it to the step
# function.
#
# ## Channels-last
#
# PyTorch stores an image batch as NCHW: all of the first channel, then the second, ... GPU convolution
# kernels (and tensor cores under autocast) are faster with NHWC, "channels-last", where the
# channels of one pixel sit together. `TrainConfig.channels_last=True` converts the model's
# weights once and every batch as it is drawn:

# %%
show_source(prepare_model, lines=lines_between(prepare_model, "if cfg.channels_last:", "model.to(memory_format"))

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the asserts check what the text
# below says.
# fp32, as the NCHW run it is compared with (the gpu preset's config_for would pick "auto")
cl = train(config_for(preset, "vaegan", steps=few, precision="fp32", channels_last=True),
           progress=False, data=data)
w = next(cl.model.dis.parameters())
print(f"first Dis conv weight is channels-last: {w.is_contiguous(memory_format=torch.channels_last)}")
for name, r in (("NCHW", short["fp32"]), ("channels-last", cl)):
    print(f"{name:>13}: L_GAN " + ", ".join(f"{v:.2f}" for v in r.history["L_GAN"]))
assert w.is_contiguous(memory_format=torch.channels_last)
close = torch.allclose(torch.tensor(cl.history["L_GAN"]), losses["fp32"], rtol=0.05)
assert close or device.type != "cpu", "channels-last should agree closely with NCHW"
if not close:  # on a GPU, as above
    print(f"On this {device.type} the channels-last run strays from NCHW by more than 5 %.")

# %% [markdown]
# Only the memory layout changed. The convolutions may add the same products in a different
# order, so the runs agree closely but need not agree bit for bit, and tiny differences grow over
# the steps of a GAN.
#
# ## `torch.compile`
#
# `TrainConfig.compile=True` compiles each network with `torch.compile` (fusing the BatchNorm, ReLU
# and elementwise work into fewer GPU kernels). Compiling takes a while before the first step, so
# it pays only for long runs; it is off by default and not run here:

# %%
show_source(prepare_model, lines=lines_between(prepare_model, "if cfg.compile:", ".compile()"))

# %%
print(TrainConfig(compile=True).compile)  # how to ask for it: config_for(preset, "vaegan", compile=True)

# %% [markdown]
# `net.compile()` compiles the module in place, so its `state_dict` keeps its names and the
# checkpoints of compiled and uncompiled runs are interchangeable.
#
# ## Data on the GPU, as `uint8`
#
# A data loader that decodes and copies every batch from the CPU can starve a GPU that finishes a
# step in milliseconds. The data sets here are small enough to avoid that entirely: `train` keeps
# the whole training set on the GPU as `uint8`, a quarter of the fp32 size, and converts
# only the batch to $[-1, 1]$ floats:

# %%
show_source(place_data)

# %%
images = data[0]
print(f"this preset: {tuple(images.shape)} {images.dtype}, "
      f"{images.numel() / 2**20:.0f} MiB as uint8 ({4 * images.numel() / 2**20:.0f} MiB as float32)")
celeba = 202_599 * 3 * 64 * 64
print(f"CelebA at 64x64: {celeba / 2**30:.2f} GiB as uint8 ({4 * celeba / 2**30:.2f} GiB as float32); "
      f"a T4 has 15 GiB")

# %% [markdown]
# On a CPU `place_data` leaves the tensor where it is. With a GPU, if it fits in a quarter of the
# free memory it is moved there once, and `images[idx]` then indexes on the GPU; otherwise it is
# pinned in host memory so each batch copies asynchronously.
#
# ## A step that never waits for the GPU
#
# CUDA runs asynchronously: Python queues kernels and moves on while the GPU works through the
# queue. The queue stops filling whenever the host asks for a value only the GPU knows:
# `loss.item()`, `if torch.isfinite(loss):`, a `.tolist()`, a copy to the CPU. Such a value exists
# only once every kernel queued before it has run, so Python waits (a *host sync*), and then the
# GPU waits while Python queues the next kernels. A step that checks its losses for NaN with an
# `if` has one every step.
#
# Algorithm 1 keeps that answer on the GPU: `finite` returns a bool tensor, not a Python bool,
# and every step function hands it to `finish_step`, which adds whether the gradients are finite
# too:

# %%
show_source(finite)

# %% [markdown]
# The optimizer reads it where it lies. `RMSprop.masked_step` is torch's RMSProp update, op for
# op, with two changes that make `ok = False` leave everything as it was: the gradient becomes
# zero (the weights stay) and the running average decays with $1$ instead of $\alpha$ (it stays
# too). Where `ok` is True the result is torch's, bit for bit (`tests/test_optim.py`):

# %%
show_source(RMSprop.masked_step)

# %% [markdown]
# The training loop treats the BatchNorm statistics and the logged means the same way. It reads
# back which steps were skipped once every `max_nonfinite` steps, so that a run that has diverged
# stops soon, and everything else once per log. `bench.per_step` counts, inside `train`, what one
# more training step costs on average: the values the host reads back (`bench.HostReads`), and
# the tensor operations, each a kernel launch on a GPU. Every one of these takes Python and the CPU some microseconds to issue,
# however fast the GPU is: a small model's step can be limited by the CPU, not by the GPU.

# %%
show_source(per_step)

# %%
cfg = config_for(preset, "vaegan")
ops, reads = per_step(cfg, data=data)
print(f"values the host reads back per training step: {reads:g} "
      f"(one every {cfg.max_nonfinite} steps)")
assert reads == 1 / cfg.max_nonfinite

# %% tags=["nbval-ignore-output"]
# The count of operations changes with torch's version.
print(f"tensor operations per training step of the VAE/GAN: {ops:g}")

# %% [markdown]
# The masking adds a few of them: one `torch.where` per weight tensor in the optimizer, and one
# for all the BatchNorm statistics, which the loop keeps as views of one tensor so that one copy
# saves them all.
#
# On a CPU nothing waits, so the count stands in for the syncs. On a GPU,
# `torch.cuda.set_sync_debug_mode("warn")` reports each real one, and `tests/test_optim.py` runs
# the same comparison with it in fp32, bf16 and fp16. One switch brings a sync back: the authors'
# equilibrium trick (`StepConfig.equilibrium`) decides on the host which networks skip their
# update, because a skipped network's backward pass is then not computed at all.
#
# ## How fast is this
#
# `python -m vaegan_lite bench` times the training step chapter 4 trains with, and
# `benchmarks/pythae_compare.py` puts it beside the `VAEGAN` of pythae, a popular library whose
# gradient routing differs from the paper's ([Paper vs. code](../book/paper_vs_code.md) says how;
# `tests/test_routing.py` imitates two of those faults in a hand-written step and checks that the
# routing test rejects it). The comparison runs on the *identical* networks of the paper's size
# (Table 1's networks, 64×64, the paper's batch of 64), alternating the contenders step by step in
# one process so that a change in the machine's load hits all of them alike. FLOPs are counted by
# PyTorch's FLOP counter over the forward and backward passes of all three networks. Its latest
# results, from `vaegan_lite/results/speed.json`:

# %% tags=["nbval-ignore-output"]
# The table is read from the benchmark's JSON; it changes whenever the benchmark runs again.
speed_table()

# %% [markdown]
# *vs pythae* is the speed-up over pythae's step in fp32, the like-for-like comparison; the rest
# of our rows add the settings above. The last two columns compare the step's FLOP rate with two
# rates measured in the same run, in the row's precision: the largest convolution of Table 1's
# discriminator, and a large matrix multiplication. Neither is the machine's ceiling, only a
# yardstick of what one such operation reaches there, and the matmul is not always the faster of
# the two: on some CPUs PyTorch's fp32 matmul takes a slower code path than its convolutions
# (`vaegan_lite/bench.py`'s docstring says which), and then a step can outrun the
# matmul. What the table says, computed from it:

# %% tags=["nbval-ignore-output"]
# Read from the committed benchmark results (they change when the benchmark runs again); the
# asserts check the statements printed below against them.
speed = json.loads((RESULTS / "speed.json").read_text())
c = speed["contenders"]
rate = {k: v["images_per_s"] for k, v in c.items()}
ours, theirs = c["ours fp32"], c["pythae fp32"]
cl_gain = rate["ours fp32 channels_last"] / rate["ours fp32"]
bf16_gain = rate["ours bf16 channels_last"] / rate["ours fp32 channels_last"]
fast_gain = {p: rate[f"ours {p} fast channels_last"] / rate[f"ours {p} channels_last"]
             for p in ("fp32", "bf16")}  # fmt: skip
sat = c["ours bf16 fast channels_last saturating"]
assert theirs["gflop_per_image"] > ours["gflop_per_image"] and rate["ours fp32"] > rate["pythae fp32"]
assert cl_gain > 1 and bf16_gain > 1 and sat["gflop_per_image"] < ours["gflop_per_image"]
assert c["ours fp32 fast channels_last"]["gflop_per_image"] == ours["gflop_per_image"]
assert min(cl_gain, bf16_gain) > max(fast_gain.values())  # the text: the switches gain more
conv_vs_matmul = speed["conv_peak_gflop_per_s"]["fp32"] / speed["matmul_peak_gflop_per_s"]["fp32"]
assert 0 < ours["fraction_of_conv_peak"] < 1  # no step outruns its largest convolution
bf16_conv = speed["conv_peak_gflop_per_s"]["bf16"] / speed["conv_peak_gflop_per_s"]["fp32"]
assert bf16_conv > 1  # the text: that CPU has bf16 units
display(Markdown("\n".join([
    f"- One training step of the paper-sized VAE/GAN costs {ours['gflop_per_image']:.1f} GFLOP "
    f"per image, pythae's {theirs['gflop_per_image']:.1f} "
    f"({theirs['gflop_per_image'] / ours['gflop_per_image']:.2f} times as much): pythae runs the "
    "discriminator four times and takes three full backward passes per step. On the benchmark's "
    f"CPU our step is {rate['ours fp32'] / rate['pythae fp32']:.2f} times as fast as pythae's in "
    "fp32.",
    f"- Channels-last makes our step {cl_gain:.2f} times as fast in fp32 on that CPU, as it does "
    "on GPUs (oneDNN's convolutions prefer that layout too), and bf16 then makes it "
    f"{bf16_gain:.2f} times as fast again: that CPU has bf16 units (Table 1's largest convolution "
    f"runs {bf16_conv:.1f} times as fast in bf16 as in fp32 there); on a CPU without them bf16 is "
    "slower than fp32.",
    f"- In fp32 our step runs at {ours['fraction_of_conv_peak']:.0%} of the rate of Table 1's "
    f"largest convolution on that CPU. That convolution runs at {conv_vs_matmul:.1f} times the "
    f"rate of a large fp32 matrix product there, so the step's rate is "
    f"{ours['fraction_of_peak']:.0%} of the matmul's.",
    f"- The `fast` step is {fast_gain['fp32']:.2f} times as fast in fp32 and "
    f"{fast_gain['bf16']:.2f} times in bf16, at the same FLOPs; with the saturating GAN loss it "
    f"leaves out one pass through the discriminator ({sat['gflop_per_image']:.1f} GFLOP per "
    "image).",
])))

# %% [markdown]
# `fast` (`StepConfig.fast`, `--fast`) is `vaegan_lite/models/fast.py`, a step with the same
# updates as `algorithm1_step` (`tests/test_fast.py` checks them in `float64`). It runs the
# discriminator on detached copies of the decoder's images, so a backward pass through Dis stops
# at the images and hands the decoder a gradient for them; each remaining pass is then one
# vector-Jacobian product with exactly the upstream vector its network needs. A pass is left out
# only where the maths allows it: with the saturating GAN loss and separate BatchNorm batches
# (`dis_batch="separate"`, the VAE/GAN's default) the discriminator's own weight pass also yields
# the decoder's upstream gradient, so one pass through Dis goes. For the non-saturating loss, the
# default, the reference step has no redundant pass to remove: `fast` does the same arithmetic, so
# what it gains there (the last bullet above) does not come from fewer FLOPs, and the larger gains
# come from the switches above (bf16, channels-last). With `dis_batch="joint"` both steps run Dis
# once over the concatenated batch $[x, \tilde{x}, x_p]$: that is a modelling choice (one set of
# BatchNorm statistics), not a speed trick, and with separate statistics `fast` runs Dis once per
# batch, as the reference does.
#
# On a GPU, run `python -m vaegan_lite bench --model vaegan --image-size 64 --batch-size 64
# --device cuda --precision auto --channels-last` (bf16, or fp16 on a T4): its last line is the
# images per second, and it prints the fraction of the GPU's measured matmul peak.
#
# ## Summary
#
# - On a GPU: `device="auto"`, `precision="auto"` (bf16, or fp16 with a `GradScaler` on a T4),
#   `channels_last=True`, optionally `compile=True`; the data set sits on the GPU as `uint8`. The
#   `gpu` preset sets the first three.
# - Each switch changes how the step runs, not what it computes: the runs above follow fp32
#   closely, though not necessarily bit for bit.
# - Speed is images per second at a known FLOP count per image; comparing the FLOP rate with
#   operations measured on the same machine (Table 1's largest convolution, a matmul) says how
#   much of what that machine reaches a step uses, and comparing FLOPs per image says how much
#   work another implementation of the same model does.
# - `fast` gives the same updates with backward passes that each walk only as far as they must,
#   and one pass fewer where the maths allows it.
# - A step asks the GPU nothing: whether its losses and gradients were finite stays a tensor that
#   the optimizer reads on the GPU; the loop reads back every `max_nonfinite` steps and at logs.
#
# ## Exercises
#
# 1. On Colab with a GPU, time the same number of steps with `precision="fp32"` and with
#    `precision="auto"`, with and without `channels_last=True`. Which switch gains most there?
# 2. Run `python -m vaegan_lite bench --precision bf16` and `--precision fp32` on your own CPU.
#    Does it have bf16 units?
# 3. Train with `compile=True` on a GPU and time the first step and the following ones
#    separately. After how many steps has compiling paid for itself?
# 4. Time `fast=True` against the reference step with `gan_variant="saturating"`, then with the
#    default loss. Does the difference match the FLOPs the table reports?
# 5. Count the host's reads per step with `equilibrium=True` (a `StepConfig` switch), as in the
#    section on host syncs. How many are there, and where in `algorithm1_step` do they come from?
