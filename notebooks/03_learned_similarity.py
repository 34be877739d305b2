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
# # 3. A learned similarity metric: the discriminator's features
#
# A VAE needs a way to say how far its reconstruction $\tilde{x}$ is from the image $x$. Chapter 1
# used the pixels: a Gaussian likelihood, the squared error summed over pixels (Eq. 3). This chapter
# replaces the pixels with the features of a GAN discriminator, the central idea of the paper
# {cite}`larsen2016autoencoding` (Sec. 2.3), and checks with measurements whether those features
# really see images more like a person does.

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q git+https://github.com/vaegan-lite/vaegan-lite
    pass

# %%
import copy

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Image, display
from torchvision.transforms.functional import gaussian_blur

from vaegan_lite.book.diagrams import diagram
from vaegan_lite.book.experiments import gpu_synthetic_figures
from vaegan_lite.book.plotting import show_grid, show_rows
from vaegan_lite.book.runs import check_claim, get_preset, load_or_train, running_box, test_images
from vaegan_lite.book.source import show_source
from vaegan_lite.config import config_for
from vaegan_lite.losses import llike_loss
from vaegan_lite.metrics import diversity, mse, sharpness
from vaegan_lite.models import VAEGAN, frozen_metric_step
from vaegan_lite.nets import Discriminator
from vaegan_lite.train import fixed_samples

preset = get_preset()
print(f"preset: {preset.name} ({preset.image_size}x{preset.image_size}, width {preset.width})")

# %% tags=["nbval-ignore-output"]
# How long this chapter takes, as measured on the machines the box names.
running_box("03_learned_similarity")

# %% [markdown]
# ## Goals
#
# - See why an element-wise metric (the squared error over pixels) ranks images differently from a
#   person: it punishes a face moved by one pixel and forgives a blurred one.
# - Read Eq. 6 and 7, the Gaussian likelihood in the features $\mathrm{Dis}_l(x)$ of a
#   discriminator's hidden layer, and find it in the code.
# - Measure, with a discriminator trained here, whether $\mathrm{Dis}_l$ ranks a shifted, a blurred
#   and a different face more like a person would than the pixels do.
# - Train $\mathrm{VAE}_{\mathrm{Dis}_l}$ (Sec. 4: a GAN first, then its frozen discriminator as the
#   VAE's metric) and compare it with the pixel VAE of chapter 1.

# %% [markdown]
# ## Why element-wise metrics fail
#
# The pixel VAE's reconstruction loss (Eq. 3, with the fixed standard deviation $\sigma$ of
# `StepConfig.pixel_sigma`) is
#
# $$
# \mathcal{L}_\text{llike}^\text{pixel} = -\mathbb{E}_{q(z \mid x)}\big[\log p(x \mid z)\big]
# = \mathbb{E}_{q(z \mid x)} \frac{1}{2\sigma^2} \sum_{i} \big(x_i - \tilde{x}_i\big)^2 + \text{const},
# $$
#
# a sum over pixels $i$ in which every pixel is compared with the pixel at the same place and
# nothing else. Two kinds of change expose what that means:
#
# - **Translation.** Move a face by one or two pixels. A person sees the same face. The sum sees
#   every edge (hairline, eyes, mouth, glasses) land on pixels that held something else, and the
#   error grows with every edge in the image.
# - **Blur.** Smooth the face. A person sees at once that it is wrong: no photograph of a face
#   looks like that. The sum sees each pixel move a little towards its neighbours and adds up
#   small numbers.
#
# A decoder trained with this loss and unsure where an edge goes does best by hedging: it paints the
# average of the places the edge might be, which is a blur. That is why VAE samples and
# reconstructions are blurry (chapter 1), and the paper's remedy is to measure the error somewhere
# else.

# %% [markdown]
# ## Eq. 6 and 7: a Gaussian in the discriminator's features
#
# Let $\mathrm{Dis}_l(x)$ be the activations of the $l$-th layer of a GAN discriminator. The paper
# keeps the VAE's Gaussian observation model but moves it into that feature space, with the
# features of the reconstruction $\tilde{x} = \mathrm{Dec}(z)$ as the mean and identity covariance:
#
# $$
# p\big(\mathrm{Dis}_l(x) \mid z\big) = \mathcal{N}\big(\mathrm{Dis}_l(x) \,\big|\, \mathrm{Dis}_l(\tilde{x}), I\big)
# \tag{6}
# $$
#
# <!-- The line ends with \cr, not a double backslash: Sphinx sets a display equation that holds
# one in a split environment, where a tag is refused. MathJax and KaTeX read \cr alike. -->
# $$
# \begin{aligned}
# \mathcal{L}_\text{llike}^{\mathrm{Dis}_l} &= -\mathbb{E}_{q(z \mid x)}\big[\log p(\mathrm{Dis}_l(x) \mid z)\big] \cr
# &= \mathbb{E}_{q(z \mid x)} \tfrac{1}{2} \big\lVert \mathrm{Dis}_l(x) - \mathrm{Dis}_l(\tilde{x}) \big\rVert^2 + \text{const}.
# \end{aligned}
# \tag{7}
# $$
#
# The loss is still a squared error, now between feature maps. A discriminator must tell real
# faces from generated ones, so its features respond to what makes a face look real (edges in
# the right arrangement, textures, face parts), and the hope is that, after a few stride-2
# convolutions, they care less than pixels do about exactly which pixel an edge fell on. In
# Sec. 4 the paper tests the idea directly: $k$-nearest
# neighbour classification ($k = 5$) on CIFAR-10 makes 66.02 % errors with pixels and 33.73 % with
# a GAN discriminator's features. Which layer? "After 3 convolutional layers with stride 2
# downsampling" (Sec. 4); [Paper vs. code](../book/paper_vs_code.md) explains that the authors'
# code takes the 4th convolution's output before its BatchNorm and ReLU, which is what
# `ModelConfig.dis_layer = 4` means here.

# %% [markdown]
# ## $\mathrm{Dis}_l$ in the code
#
# The discriminator returns its logit and $\mathrm{Dis}_l(x)$ from one forward pass, so a training
# step gets the GAN's input and the learned metric's features together:

# %%
show_source(Discriminator.forward)

# %% [markdown]
# `features` is that pass up to the last hidden layer, picking up $\mathrm{Dis}_l(x)$ on the way
# (chapter 7's BiGAN reuses it for the image half of its discriminator):

# %%
show_source(Discriminator.features)

# %% [markdown]
# When only the features are needed, `dis_l` runs the first $l$ layers and stops:

# %%
show_source(Discriminator.dis_l)

# %% [markdown]
# And Eq. 7 is the same function as the pixel likelihood of Eq. 3, given features instead of
# pixels and $\sigma = 1$ (identity covariance):

# %%
show_source(llike_loss)

# %% [markdown]
# How many numbers are compared? At this preset's image size, and at the paper's 64×64:

# %%
for size, width in ((preset.image_size, preset.width), (64, 1.0)):
    with torch.no_grad():
        feats = Discriminator(size, width).eval().dis_l(torch.zeros(1, 3, size, size))
    c, h, w = feats.shape[1:]
    print(f"{size}x{size}, width {width}: {3 * size * size:>6,} pixel values, "
          f"Dis_l is {c}x{h}x{w} = {c * h * w:,} features")

# %% [markdown]
# ## Training the metric
#
# $\mathrm{VAE}_{\mathrm{Dis}_l}$, the second model of the paper's Sec. 4, gets its metric from a
# GAN trained first: "We first train a GAN and use the discriminator network as a learned
# similarity measure." The package's `vae_disl` model does that in one run: it trains a GAN
# (`gan_step`) for `preset.gan_steps` steps, then freezes the discriminator and trains an encoder
# and decoder with $\mathcal{L}_\text{prior} + \mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$ measured by
# it. The encoder starts from scratch; the decoder does not: it is the GAN's generator, which goes
# on training (with its optimiser's state) as the VAE's decoder. The paper does not say whether
# its decoder started afresh ([Paper vs. code](../book/paper_vs_code.md) lists this choice):

# %% tags=["remove-input"]
diagram("vaegan")

# %% [markdown]
# The VAE/GAN's flow (the paper's Fig. 2), of which $\mathrm{VAE}_{\mathrm{Dis}_l}$ keeps a part:
# $x \to \mathrm{Enc} \to z \to \mathrm{Dec} \to \tilde{x}$, with $\tilde{x}$ compared to $x$ in the
# layer-$l$ features of $\mathrm{Dis}$. Here $\mathrm{Dis}$ is frozen after the GAN phase: no
# $\mathcal{L}_\text{GAN}$ trains $\mathrm{Dis}$ or $\mathrm{Dec}$ any more, and the prior's samples $x_p$
# play no part in training. Chapter 4 trains the whole diagram.

# %%
show_source(frozen_metric_step)

# %% [markdown]
# Training (or reading back a finished run from its folder):

# %%
cfg_disl = config_for(preset, "vae_disl")
print(f"{cfg_disl.step.disl_pretrain_steps} GAN steps, then "
      f"{cfg_disl.steps - cfg_disl.step.disl_pretrain_steps} VAE steps with the frozen Dis_l")
disl_run = load_or_train("vae_disl", cfg_disl, preset)
disl_model = disl_run.model.eval()
# the GAN's discriminator, frozen after the GAN phase; a CPU copy, as the faces compared with it
dis = copy.deepcopy(disl_model.dis).cpu()

# %% [markdown]
# ## Does $\mathrm{Dis}_l$ see what a person sees?
#
# Now the measurement. Take held-out faces $x$ (never seen in training) and three altered versions
# of each:
#
# - (a) the same face **shifted** right by 1 or 2 pixels (the edge column repeated),
# - (b) the same face **blurred** with a Gaussian kernel of $\sigma = 1$ pixel,
# - (c) a **different face**, the one before it in the batch.
#
# A person ranks them: the shifted face is the same face, the blurred one is visibly damaged, the
# different face is different. For each pair we compute the Gaussian negative log-likelihood of
# Eq. 3 and 7 with $\sigma = 1$, that is, half the squared distance, once in pixels and once in
# $\mathrm{Dis}_l$ features.

# %% mystnb={"image": {"alt": "One held-out face beside four altered versions: shifted by one pixel, shifted by two pixels, blurred, and a different face"}}
from vaegan_lite.images import shift  # chapter 1's: the border column repeated into the gap


def blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    return gaussian_blur(x, kernel_size=5, sigma=sigma)


def distance(features, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L_llike (sigma = 1) between each image of a and the image at the same index of b."""
    with torch.no_grad():  # in eval mode an image's features do not depend on its batch
        fa, fb = features(a), features(b)
        return torch.stack([llike_loss(fa[i : i + 1], fb[i : i + 1]) for i in range(len(a))])


def pixels(x: torch.Tensor) -> torch.Tensor:
    return x


x, _ = test_images(preset, 256)
altered = {
    "shift 1 px": shift(x, 1),
    "shift 2 px": shift(x, 2),
    "blur": blur(x),
    "different face": x.roll(1, dims=0),
}

fig, axes = plt.subplots(1, 5, figsize=(8, 1.9))
for ax, (name, img) in zip(axes, {"face x": x, **altered}.items(), strict=True):
    show_grid(img[:1], nrow=1, ax=ax)
    ax.set_title(name, fontsize=9)
plt.show()

# %% [markdown]
# Raw distances are not comparable between the two spaces (pixels and features have different
# scales and counts), so each is divided by the distance to the different face: a value of 1 means
# "as far as another person", 0 means "identical". Besides the trained discriminator we also
# measure an **untrained** one with the same architecture and random weights, to separate what the
# discriminator learned from what its convolutions and downsampling give for free.

# %% tags=["nbval-ignore-output"]
# The trained discriminator's row is a result of training (your digits will differ from the
# book's); the next cell asserts what the text says of it.
torch.manual_seed(0)
untrained = VAEGAN(cfg_disl.model).dis.eval()
spaces = {"pixels": pixels, "Dis_l, untrained": untrained.dis_l, "Dis_l, trained": dis.dis_l}
changes = ["shift 1 px", "shift 2 px", "blur"]

dist = {m: {k: distance(f, x, v) for k, v in altered.items()} for m, f in spaces.items()}
rel = {m: {k: (d[k] / d["different face"]).median().item() for k in changes}
       for m, d in dist.items()}
print(f"distance to the altered face / distance to a different face (median of {len(x)} faces)\n")
print(f"{'':18}" + "".join(f"{k:>12}" for k in changes))
for m, row in rel.items():
    print(f"{m:18}" + "".join(f"{v:12.3f}" for v in row.values()))

# %% [markdown]
# One ratio summarises the table: how much worse a 1-pixel shift is than a blur, shift / blur.
# A person would put it well below 1. And, face by face, how often the shifted face is the closer
# of the two to the original:

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the asserts check what the text
# below says.
shift_vs_blur = {m: rel[m]["shift 1 px"] / rel[m]["blur"] for m in spaces}
shift_below_blur = {m: (d["shift 1 px"] < d["blur"]).float().mean().item() for m, d in dist.items()}
for m in spaces:
    print(f"{m:18} shift 1 px / blur = {shift_vs_blur[m]:5.2f};  "
          f"shifted face the closer for {shift_below_blur[m]:4.0%} of the faces")
cheapest = min(changes, key=rel["Dis_l, trained"].get)
print(f"\nafter {preset.gan_steps} GAN steps of batch {preset.batch_size}, the cheapest change for "
      f"the trained Dis_l (median): {cheapest}")
assert shift_vs_blur["pixels"] > 1 and shift_below_blur["pixels"] == 0
assert shift_vs_blur["Dis_l, untrained"] > 1 and shift_below_blur["Dis_l, untrained"] < 0.5
if preset.trains_fully:  # a few steps (smoke, cut short) teach Dis nothing yet
    check_claim(preset, shift_vs_blur["Dis_l, trained"] < shift_vs_blur["Dis_l, untrained"],
                "measured against the blur, the shifted face is closer to the original in the "
                "trained features than in the untrained ones", shift_vs_blur)

# %% [markdown]
# Read the rows from top to bottom. In **pixels**, a face moved by a single pixel is farther from
# the original than its blurred copy, for every face: the ranking a person would give is
# reversed. An **untrained** discriminator does not fix this; random convolutions and
# downsampling alone keep the pixels' ranking. The **trained** discriminator's features are where
# the ranking moves: measured against the blur, the shifted face is closer to the original than
# in the untrained features. What made that difference is what $\mathrm{Dis}$ learned while
# telling real faces from generated ones, not its architecture. Read the columns one at a time
# too: the ratio can move because a shift got cheaper or because a blur got dearer. Compare
# the trained row with the untrained one in each column to see which of the two happened here.
#
# Whether the ranking turns all the way round, the blur no longer the cheapest of the changes,
# depends on how long the GAN trained: the last line above says whether it did here, the fraction
# how often the shifted face is now the closer one, and the larger shift is the harder case. The
# discriminator trained for the number of GAN steps printed above (`preset.gan_steps`); the
# paper's was trained on CelebA at 64×64.

# %% [markdown]
# ## $\mathrm{VAE}_{\mathrm{Dis}_l}$ against the pixel VAE
#
# The run above did not stop at the GAN: after `gan_steps` steps it trained an encoder and decoder
# with $\mathcal{L}_\text{prior} + \mathcal{L}_\text{llike}^{\mathrm{Dis}_l}$, the discriminator
# frozen. Its pixel twin is chapter 1's VAE, the same networks trained with
# $\mathcal{L}_\text{prior} + \mathcal{L}_\text{llike}^\text{pixel}$ (run folder `vae`, shared with
# chapter 1, so the book trains it once):

# %%
vae_run = load_or_train("vae", config_for(preset, "vae"), preset)
vae = vae_run.model.eval()

# %% [markdown]
# Reconstructions of held-out faces, at the posterior mean $\tilde{x} = \mathrm{Dec}(\mu(x))$,
# and samples $\mathrm{Dec}(z_p)$ from the prior (the same $z_p$ for both models):

# %% mystnb={"image": {"alt": "Rows of sixteen: held-out faces, reconstructions by the VAE and by VAE_Dis_l, and samples from the VAE and from VAE_Dis_l"}}
x16 = x[:16]
fig = show_rows({
    "held-out faces x": x16,
    "VAE: reconstructions": vae.reconstruct(x16),
    "VAE_Dis_l: reconstructions": disl_model.reconstruct(x16),
    "VAE: samples": fixed_samples(vae, 16, 0),
    "VAE_Dis_l: samples": fixed_samples(disl_model, 16, 0),
}, nrow=16, scale=1.1)
plt.show()

# %% [markdown]
# Three numbers per model, averaged over the held-out faces: the pixel error of the reconstructions
# (`metrics.mse`), the sharpness of the images (`metrics.sharpness`, the energy of the Laplacian,
# chapter 1), and the distance of the reconstructions from the original as the frozen
# $\mathrm{Dis}_l$ measures it, relative to the distance to a different face as in the table above:

# %% tags=["nbval-ignore-output"]
# Results of training (your digits will differ from the book's); the asserts check what the text
# below says.
recon = {"VAE": vae.reconstruct(x), "VAE_Dis_l": disl_model.reconstruct(x)}
samples = {"VAE": fixed_samples(vae, len(x), 0), "VAE_Dis_l": fixed_samples(disl_model, len(x), 0)}
to_other = dist["Dis_l, trained"]["different face"]
print(f"{'':28}{'MSE to x':>10}{'sharpness':>11}{'Dis_l distance / different face':>33}")
print(f"{'held-out faces x':28}{'':>10}{sharpness(x).mean():11.4f}")
rel_disl = {name: (distance(dis.dis_l, x, r) / to_other).median() for name, r in recon.items()}
for name, r in recon.items():
    print(f"{name + ' reconstructions':28}{mse(r, x).mean():10.4f}{sharpness(r).mean():11.4f}"
          f"{rel_disl[name]:33.3f}")
for name, smp in samples.items():
    print(f"{name + ' samples':28}{'':>10}{sharpness(smp).mean():11.4f}")
ratio = sharpness(recon["VAE_Dis_l"]).mean() / sharpness(x).mean()
print(f"\nVAE_Dis_l reconstructions: {ratio:.2f} times the held-out faces' sharpness")
# chapter 2's diversity, on 4x4 averages of the images, so that pixel-scale noise does not count
coarse = {"data": diversity(F.avg_pool2d(x, 4))}
coarse |= {name: diversity(F.avg_pool2d(smp, 4)) for name, smp in samples.items()}
print("diversity of 4x4 averages: " + ", ".join(f"{k} {v:.3f}" for k, v in coarse.items()))
assert sharpness(recon["VAE"]).mean() < sharpness(x).mean()
if preset.trains_fully:
    check_claim(preset, coarse["VAE_Dis_l"] < coarse["VAE"] < coarse["data"],
                "VAE_Dis_l's samples are less diverse than the VAE's, and those than the faces, "
                "once the noise is averaged away", coarse)
    check_claim(preset, sharpness(recon["VAE_Dis_l"]).mean() > sharpness(recon["VAE"]).mean(),
                "the Laplacian counts VAE_Dis_l's noise as sharpness, above the VAE's")
    # "as close as the VAE's" (neither closer by a tenth), while "several times as far" in pixels
    check_claim(preset, 0.9 < rel_disl["VAE_Dis_l"] / rel_disl["VAE"] < 1.1,
                "to the frozen discriminator VAE_Dis_l's reconstructions are as close to the "
                "face as the VAE's", rel_disl)
    check_claim(preset, mse(recon["VAE_Dis_l"], x).mean() > 2 * mse(recon["VAE"], x).mean(),
                "in pixels VAE_Dis_l's reconstructions are several times as far as the VAE's")

# %% [markdown]
# What the figures show at the `cpu` preset is not the paper's Fig. 3 and 4, and the numbers say
# why. The pixel VAE is blurry, as in chapter 1: recognisable faces with soft edges, sharpness well
# below the data's. $\mathrm{VAE}_{\mathrm{Dis}_l}$ has escaped the blur at a price, and lost
# most of the face with it. Its reconstructions keep the background's colour and, for some faces,
# the coarsest features (dark hair, glasses); the rest is much the same template face for every
# input, covered in coloured, pixel-scale noise. Its samples are much the same face in different
# colours, less diverse than the VAE's once the noise is averaged away (chapter 2's `diversity`,
# on 4×4 averages, printed above): the decoder has collapsed towards that template. The Laplacian counts the noise as "sharpness" (the line
# under the table compares it with the real faces'), and it puts the pixel error above the VAE's.
#
# The last column explains it. To the frozen discriminator those noisy reconstructions are as close
# to the original face as the VAE's clean but blurry ones (the column gives each as a fraction of
# the distance to another face), although in pixels they are several times as far. The decoder
# was trained to match $\mathrm{Dis}_l$ features and
# nothing else: what those few features encode is there, and whatever they do not respond to
# (the face's finer layout, fine noise laid over the colours) is free. The paper reports the same effect at 64×64,
# "severe noisy artifacts which we believe are caused by the harsh downsampling scheme of Dis". At 32×32 the
# downsampling is harsher still, $\mathrm{Dis}_l$ is a 4×4 map, and the discriminator was trained
# only for the GAN steps printed above, against its own generator's fakes, not against this
# decoder's: frozen, it cannot learn to object to whatever noise the decoder finds it does not
# see.
#
# A fixed metric can be exploited; a metric that keeps learning is much harder to exploit. That is
# the step from $\mathrm{VAE}_{\mathrm{Dis}_l}$ to the VAE/GAN: keep training the discriminator on
# real images against the decoder's reconstructions and samples, and whatever the decoder gets
# away with becomes a feature that gives it away.
#
# ### At the paper's size
#
# The same models with Table 1's networks at the paper's image size, trained on a GPU on the
# synthetic faces by chapter 6's plan `gpu-synthetic`, when its results ship with the package:
# reconstructions (Fig. 4) and samples (Fig. 3) of chapter 6's five models, among them the VAE,
# $\mathrm{VAE}_{\mathrm{Dis}_l}$ and the VAE/GAN. Where they ship, the line printed first says
# on which GPU and with how many steps they were trained (chapter 6 measures them); where they do
# not, it says so.

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
# - An element-wise metric compares each pixel with the pixel at the same place. It ranks a
#   1-pixel shift as a bigger change than a blur, so a decoder trained with it hedges with blur.
# - Eq. 6 and 7 keep the Gaussian likelihood but move it into a discriminator's hidden features,
#   $\mathcal{L}_\text{llike}^{\mathrm{Dis}_l} = \tfrac{1}{2}\lVert \mathrm{Dis}_l(x) - \mathrm{Dis}_l(\tilde{x}) \rVert^2$;
#   in the code it is `llike_loss(feats_x, feats_x_tilde)` with the features from
#   `Discriminator.forward`.
# - Measured here: relative to a blur, a trained discriminator's features put a shifted face
#   closer to the original than an untrained one's, which keep the pixels' ranking; what moves
#   the ranking towards a person's is learned.
# - $\mathrm{VAE}_{\mathrm{Dis}_l}$ uses such a discriminator, frozen, as its metric. At the `cpu`
#   preset its decoder leaves the blur behind but produces noise that the frozen features do not
#   object to: a fixed learned metric can be exploited.
#
# The next chapter lets the discriminator keep learning while the VAE trains, and lets the decoder
# fool it as well: the full VAE/GAN of Algorithm 1.
#
# ## Exercises
#
# 1. Change the shift to 3 and 4 pixels and the blur's $\sigma$ to 0.5 and 2. Where does each
#    metric put them? Plot the relative distance against the shift for pixels and for
#    $\mathrm{Dis}_l$.
# 2. Measure $\mathrm{Dis}_l$ at other layers: build `Discriminator(..., dis_layer=l)` for
#    $l = 1, 2, 3$, load the trained weights into it (`load_state_dict`), and repeat the table.
#    Which layer is most tolerant of shifts? Which one still notices blur? (Each stride-2 layer
#    roughly doubles the patch of the image a feature sees: predict the order before you measure it.)
# 3. Train `vae_disl` with `dis_layer=3` (`config_for(preset, "vae_disl", dis_layer=3)`, in a new
#    run folder). Are the reconstructions cleaner? Why might a layer with more spatial resolution
#    constrain the decoder better?
# 4. The paper's Sec. 4 classifies CIFAR-10 by $k$-nearest neighbours in a GAN discriminator's
#    features (it names no layer; take $\mathrm{Dis}_l$).
#    Do the same with the synthetic faces' attributes (`test_images` returns them): predict
#    "eyeglasses" of held-out faces from the 5 nearest among other held-out faces
#    (`test_images(preset, n, offset=n)` gives a disjoint set), in pixels and in $\mathrm{Dis}_l$.
