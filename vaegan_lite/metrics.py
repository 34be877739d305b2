"""Two per-image numbers the chapters use to talk about blur.

    mse(x, y)      how far apart two batches of images are, pixel by pixel
    sharpness(x)   how much fine detail (edges) an image has: the mean energy of a Laplacian

Both take [B, C, H, W] images in [-1, 1] (the decoder's range) and return one value per image,
[B], so a chapter can average them, compare them image by image or plot their spread. Blur lowers
sharpness and, for a fixed amount of uncertainty about where an edge is, lowers the expected MSE:
the trade-off chapter 1 is about.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The 4-neighbour discrete Laplacian: zero on flat regions and linear ramps, large on edges.
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image: mean over channels and pixels of (x - y)^2, shape [B].

    This is the pixel likelihood's loss (Eq. 3) up to its scale: llike_loss(x, y, sigma) sums
    the same squares over the C*H*W pixels and divides by 2 sigma^2.
    """
    if x.shape != y.shape:
        raise ValueError(f"mse: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    d = x.detach().float() - y.detach().float()
    return d.pow(2).flatten(1).mean(1)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """The Laplacian of every channel, [B, C, H-2, W-2] (no padding, so borders add nothing)."""
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
    return laplacian(x).pow(2).flatten(1).mean(1)
