"""Numbers the chapters and benchmarks measure images with.

    mse(x, y)               how far apart two batches of images are, pixel by pixel
    sharpness(x)            how much fine detail (edges) an image has: a Laplacian's mean energy
    frechet_distance(a, b)  the distance between Gaussians fitted to two sets of features (FID's)
    face_fd(real, fake, judge)  frechet_distance in the features of an attribute classifier (the
                            shipped one: an FID for the synthetic faces that needs no download;
                            it was trained to ignore blur and noise, so this FD sees attributes)
    texture_fd(real, fake)  frechet_distance in the features of a fixed random conv net: it sees
                            edges, texture and colour statistics, so blur and noise move it
    inception_scores(...)   FID, KID and LPIPS through torchmetrics, where its weights can be
                            downloaded (Colab); skipped with a one-line reason offline
    evaluate(model, x, judge)  all of the above that a model's reconstructions and samples get
    code_kl(model, x)       how much an encoder's codes carry: KL(q(z|x) || p(z)), nats per image

MSE has one convention throughout: per pixel of images in [-1, 1]. The papers' tables use images
in [0, 1], whose MSE is a quarter of it (book/tables.py converts where they are compared).

mse and sharpness take [B, C, H, W] images in [-1, 1] (the decoder's range) and return one value
per image, [B], so a chapter can average them, compare them image by image or plot their spread.
Blur lowers sharpness and, for a fixed amount of uncertainty about where an edge is, lowers the
expected MSE: the trade-off chapter 1 is about.
"""

from __future__ import annotations

import contextlib
import io
import math
import socket
import urllib.error
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .errors import one_line
from .images import check_float
from .losses import prior_loss
from .models.avae import AVAE
from .models.vaegan import EVAL_BATCH, VAEGAN, evaluating

# The 4-neighbour discrete Laplacian: zero on flat regions and linear ramps, large on edges.
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image: mean over channels and pixels of (x - y)^2, shape [B].

    This is the pixel likelihood's loss (Eq. 3) up to its scale: llike_loss(x, y, sigma) sums
    the same squares over the C*H*W pixels and divides by 2 sigma^2.
    """
    if x.shape != y.shape:
        raise ValueError(f"mse: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    check_float(x, "mse")  # uint8 images would be measured on the 0-255 scale
    check_float(y, "mse")
    d = x.detach().float() - y.detach().float()
    return d.pow(2).flatten(1).mean(1)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """The Laplacian of every channel, [B, C, H-2, W-2] (no padding, so borders add nothing)."""
    check_float(x, "laplacian")  # uint8 images would be measured on the 0-255 scale
    x = x.detach().float()
    c = x.shape[1]
    kernel = LAPLACIAN.to(x.device).expand(c, 1, 3, 3)  # one 3x3 filter per channel
    return F.conv2d(x, kernel, groups=c)


def sharpness(x: torch.Tensor) -> torch.Tensor:
    """Mean energy of the Laplacian per image, shape [B]: high for crisp edges, low for blur.

    A high-pass filter keeps what changes from one pixel to the next; blurring (averaging
    neighbours) removes exactly that, so a blurred image has a lower value than the original.
    Constant images score 0. The value scales with contrast squared, so compare images of
    similar content (data vs. its reconstructions vs. samples), not across data sets.
    """
    if x.dim() != 4:
        raise ValueError(f"sharpness: expected [B, C, H, W], got shape {tuple(x.shape)}")
    check_float(x, "sharpness")
    return laplacian(x).pow(2).flatten(1).mean(1)


def diversity(images: torch.Tensor) -> float:
    """How different the images of a set are: each pixel's standard deviation across the set,
    averaged over pixels. Near 0 when every image is the same (a GAN's mode collapse)."""
    if images.dim() != 4 or images.shape[0] < 2:
        raise ValueError(f"diversity: expected [B >= 2, C, H, W], got shape {tuple(images.shape)}")
    check_float(images, "diversity")  # uint8 ones would be measured on the 0-255 scale
    return float(images.detach().float().std(dim=0).mean())


def matching_blur(images: torch.Tensor, data: torch.Tensor, sample: int = 1000) -> float:
    """The Gaussian blur width (px, in steps of 0.05 from 0.1 to 3) at which the blurred ``data``
    is as sharp as ``images`` on average: 0.1 for images as sharp as the data or sharper, inf for
    images blurrier than the widest blur leaves the data. The data's mean is taken over its first
    ``sample`` images: each width blurs them all again (10,000 faces at 64x64 would take minutes
    and gigabytes on a CPU), and a thousand pin a mean down."""
    from torchvision.transforms.functional import gaussian_blur  # its import is slow; few need it

    target = sharpness(images).mean()
    data = data[:sample]
    for sigma in torch.arange(0.1, 3.01, 0.05).tolist():  # sharpness falls as the blur widens
        if sharpness(gaussian_blur(data, gaussian_taps(sigma), sigma=sigma)).mean() <= target:
            return round(sigma, 2)
    return float("inf")


def gaussian_taps(sigma: float) -> int:
    """A Gaussian kernel's width that reaches 3 sigma each side: a narrower one cuts off its
    tails, and the blur it makes is narrower than sigma (11 taps make sigma 3 act as about 2.5)."""
    return 2 * math.ceil(3 * sigma) + 1


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets [n, d] (as in FID):

        ||m_a - m_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)
    """
    if min(len(feats_a), len(feats_b)) < 2:  # one sample has no covariance: NaN
        raise ValueError(f"frechet_distance: needs at least 2 samples a set, got {len(feats_a)} "
                         f"and {len(feats_b)}")  # fmt: skip
    a, b = feats_a.detach().double().cpu(), feats_b.detach().double().cpu()
    m_a, m_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    root_a = _psd_sqrt(s_a)
    cross = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp_min(0).sqrt().sum()
    return float((m_a - m_b).pow(2).sum() + s_a.trace() + s_b.trace() - 2 * cross)


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(s)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


@torch.no_grad()
def face_fd(real: torch.Tensor, fake: torch.Tensor, judge: torch.nn.Module) -> float:
    """Frechet distance between two sets of face images in [-1, 1], in the penultimate features of
    an attribute classifier ``judge`` (e.g. the shipped ``pretrained("attribute-classifier")``,
    trained on the synthetic faces' ground truth), as FID does with Inception features. Lower is
    closer.

    Like FID it is biased upwards for small sets; compare numbers computed on equally many images.
    """
    if real.dim() != 4 or fake.dim() != 4:
        raise ValueError(f"face_fd: expected [B, C, H, W] images, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")  # fmt: skip
    check_float(real, "face_fd")
    check_float(fake, "face_fd")
    with evaluating(judge):  # the judge may sit on a GPU, the images not
        feats = [torch.cat([judge.features(on_device(judge, b.float())).cpu()
                            for b in x.split(500)]) for x in (real, fake)]  # fmt: skip
    return frechet_distance(*feats)


@torch.no_grad()
def random_features(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """[n, 128] features of images in [-1, 1] from a fixed, randomly initialised conv net.

    An offline stand-in for FID's Inception features (no weights to download): three 5x5 stride-2
    convs with ReLU, averaged over space. A Frechet distance in them sees colour, edges and
    texture statistics, but its numbers are not comparable to FIDs.
    """
    check_float(x, "texture_fd")
    g = torch.Generator().manual_seed(seed)
    h = x.detach().float().cpu()
    for c_in, c_out in ((x.shape[1], 32), (32, 64), (64, 128)):
        w = torch.randn(c_out, c_in, 5, 5, generator=g) * math.sqrt(2 / (c_in * 25))  # He init
        h = torch.relu(F.conv2d(h, w, stride=2, padding=2))
    return h.mean((2, 3))


def texture_fd(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between two sets of images in [-1, 1] in random_features: unlike face_fd
    it grows when images are blurrier or noisier than real ones, whatever they depict."""
    feats = [torch.cat([random_features(b) for b in x.split(500)]) for x in (real, fake)]
    return frechet_distance(*feats)


DOWNLOAD_TIMEOUT_S = 20.0  # a silent socket while inception_scores fetches weights: give up


INCEPTION_BATCH = 100  # images per pass of Inception (FID, KID) and AlexNet (LPIPS)


@torch.no_grad()
def inception_scores(
    real: torch.Tensor, fake: torch.Tensor, recon: torch.Tensor | None = None
) -> tuple[dict[str, float], list[str]]:
    """FID and KID of ``fake`` against ``real`` and LPIPS of ``recon`` against ``real`` (images in
    [-1, 1], 3 channels), through torchmetrics: the metrics the literature reports on CelebA.

    They need torchmetrics[image] and pretrained weights (Inception, AlexNet) that torchmetrics
    downloads on first use, so they run on Colab but not offline. Returns (scores, skipped): each
    metric that cannot run (no network, a missing install, a damaged download) is left out of
    scores and explained in one line in skipped; a mistake in the call (a TypeError, a
    ValueError) is raised.
    """
    for x in (real, fake) if recon is None else (real, fake, recon):
        check_float(x, "inception_scores")  # unit() below would map uint8 ones to 1 everywhere
    scores: dict[str, float] = {}
    skipped: list[str] = []
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
    except ImportError as e:
        why = f"torchmetrics[image] is not installed ({e.name}): pip install 'torchmetrics[image]'"
        return scores, [f"{m} skipped: {why}" for m in ("FID", "KID", "LPIPS")]

    # Inception and AlexNet take the images a batch at a time (torchmetrics passes what it is
    # given in one go: 10,000 faces would need over 100 GB), on the GPU where there is one.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def unit(x: torch.Tensor) -> torch.Tensor:  # [-1, 1] => [0, 1], what normalize=True expects
        return x.detach().float().to(device).add(1).div(2).clamp(0, 1)

    def feed(update, *sets: torch.Tensor) -> None:
        for batch in zip(*(x.split(INCEPTION_BATCH) for x in sets), strict=True):
            update(*map(unit, batch))

    def attempt(name: str, make, update) -> None:
        # A machine whose connections hang rather than fail would stall here for minutes per
        # download (the OS's connect timeout): a socket that waits DOWNLOAD_TIMEOUT_S gives up.
        # torch.hub announces each download (on stdout or stderr, by version) with the cache's
        # local path, and KID warns of its feature buffer: noise in a chapter's output.
        before = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*will save all extracted features")
                metric = make().to(device)
                scores.update(update(metric))
        except torch.OutOfMemoryError:
            raise  # too big a batch for this machine: not a broken install
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:  # offline
            cause = getattr(e, "reason", e)  # URLError wraps the socket's error
            why = getattr(cause, "strerror", None) or str(cause)  # "Name or service not known"
            skipped.append(f"{name} skipped: the pretrained weights could not be downloaded "
                           f"({type(e).__name__}: {why})"[:200])  # fmt: skip
        except (ImportError, OSError, RuntimeError) as e:  # a missing extra, a damaged download
            # (a TypeError or ValueError is a mistake in the call: it is raised, not skipped)
            skipped.append(f"{name} skipped: it could not be set up (a missing install or a "
                           f"damaged download?): {type(e).__name__}: "
                           f"{one_line(e)}"[:200])  # fmt: skip
        finally:
            socket.setdefaulttimeout(before)

    def fid(m) -> dict[str, float]:
        feed(lambda x: m.update(x, real=True), real)
        feed(lambda x: m.update(x, real=False), fake)
        return {"fid": float(m.compute())}

    def kid(m) -> dict[str, float]:
        feed(lambda x: m.update(x, real=True), real)
        feed(lambda x: m.update(x, real=False), fake)
        mean, std = m.compute()
        return {"kid": float(mean), "kid_std": float(std)}

    def lpips(m) -> dict[str, float]:
        feed(m.update, recon, real)  # the mean over all pairs, as one call would give
        return {"lpips": float(m.compute())}

    n = min(len(real), len(fake))
    attempt("FID", lambda: FrechetInceptionDistance(feature=2048, normalize=True), fid)
    attempt("KID", lambda: KernelInceptionDistance(subset_size=min(1000, n), normalize=True), kid)
    if recon is not None:
        attempt("LPIPS", lambda: LearnedPerceptualImagePatchSimilarity("alex", normalize=True),
                lpips)  # fmt: skip
    return scores, skipped


# --- a model's numbers ----------------------------------------------------------------------------
# Models may live on a GPU and the sets are large there (10,000 faces with gpu): every pass below
# goes in batches on the model's device and returns CPU tensors.

BATCH = EVAL_BATCH


def on_device(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x moved to the model's device (as it is for a model without parameters)."""
    p = next(model.parameters(), None)
    return x if p is None else x.to(p.device)


@torch.no_grad()
def reconstruct(
    model: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The model's reconstructions of x at the posterior mean, in fp32 on the CPU: Dec(mu(x));
    AVAE's G(mu(x), xi) with xi drawn from ``generator``."""
    kw = {"generator": generator} if isinstance(model, AVAE) else {}
    return model.reconstruct(x.cpu(), **kw).float()


@torch.no_grad()
def code_kl(model: nn.Module, x: torch.Tensor) -> float:
    """KL(q(z|x) || p(z)) of an unconditional encoder's codes of x (Eq. 4), nats per image, mean
    over x: how much the codes carry about each image (the AVAE paper evens it out, Sec. 5)."""
    with evaluating(model):
        kl = [prior_loss(*model.encode(on_device(model, b))) * len(b) for b in x.split(BATCH)]
    return float(sum(kl)) / len(x)


@torch.no_grad()
def sample(
    model: VAEGAN,
    n: int,
    *,
    generator: torch.Generator | None = None,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """n samples in fp32 on the CPU: Dec(z_p, y) for z_p ~ N(0, I) drawn from ``generator`` (y:
    [n, A] attributes of a conditional model); AVAE's G(z_p, xi), xi drawn after all the z_p."""
    return model.sample(n, y=y, generator=generator).float()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x_test: torch.Tensor,
    judge: nn.Module,
    seed: int = 0,
    y_test: torch.Tensor | None = None,
) -> dict:
    """The numbers of one model on held-out faces x_test (in [-1, 1]), reconstructions first, then
    as many samples as test images (both drawn from one generator seeded with ``seed``).

    ``mse``: reconstruction error per pixel; ``recon_sharpness``, ``sample_sharpness``:
    sharpness, mean over images (the test images' own is the target); ``recon_fd`` and ``fd``:
    face_fd of the reconstructions and of the samples, in ``judge``'s features; ``texture_fd``:
    texture_fd of the samples (blur and noise move it, unlike face_fd). A model without an
    encoder (a GAN) has no reconstructions. With the test faces' attributes ``y_test`` (the
    judge's), ``recon_judge_acc``: how often the judge reads an attribute of a reconstruction as
    the label says, mean over attributes.
    """
    g = torch.Generator().manual_seed(seed)
    x_test = x_test.cpu()  # what the model's passes return (they run on its device)
    out = {}
    if hasattr(model, "enc") and model.config.model != "gan":
        recon = reconstruct(model, x_test, g)
        out["mse"] = float(mse(recon, x_test).mean())
        out["recon_sharpness"] = float(sharpness(recon).mean())
        out["recon_fd"] = face_fd(x_test, recon, judge)
        if y_test is not None:
            right = judge.predict(recon) == (y_test > 0.5).to(recon.device)
            out["recon_judge_acc"] = float(right.float().mean())
    samples = sample(model, x_test.shape[0], generator=g)
    out["sample_sharpness"] = float(sharpness(samples).mean())
    out["fd"] = face_fd(x_test, samples, judge)
    out["texture_fd"] = texture_fd(x_test, samples)
    return out
