"""Table 1 of the paper: the encoder, decoder and discriminator of VAE/GAN.

At 64x64 the networks are exactly Table 1 (Larsen et al., 2016):

    Enc: 5x5 conv 64 s2, BN, ReLU | 5x5 conv 128 s2, BN, ReLU | 5x5 conv 256 s2, BN, ReLU
         | fc 2048, BN, ReLU | fc mu, fc logvar
    Dec: fc 8x8x256, BN, ReLU | 5x5 deconv 256 s2, BN, ReLU | 5x5 deconv 128 s2, BN, ReLU
         | 5x5 deconv 32 s2, BN, ReLU | 5x5 conv 3, tanh
    Dis: 5x5 conv 32, ReLU | 5x5 conv 128 s2, BN, ReLU | 5x5 conv 256 s2, BN, ReLU
         | 5x5 conv 256 s2, BN, ReLU | fc 512, BN, ReLU | fc 1 (a logit: the sigmoid is in the loss)

Other sizes keep the same layers and change the spatial size of the top feature map: 4x4 at 32x32,
8x8 at 64x64; at 128x128 each network gets one more stride-2 layer so the top map stays 8x8.
``width`` scales every channel and hidden-unit count (not the latent size), for small CPU runs.

Conventions: no bias before a BatchNorm (it would be cancelled by the BN's mean), BatchNorm momentum
0.1 in PyTorch's sense (the authors' running average), images in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

IMAGE_SIZES = (32, 64, 128)
BN_MOMENTUM = 0.1


def check_image_size(image_size: int) -> None:
    """Raise ValueError unless the networks are defined at image_size (IMAGE_SIZES)."""
    if image_size not in IMAGE_SIZES:
        sizes = ", ".join(map(str, IMAGE_SIZES))
        raise ValueError(f"image_size {image_size} is not supported; choose one of {sizes}")


def _ch(n: int, width: float) -> int:
    # max(1, ...) keeps a tiny width's layers alive; it must not turn a width of 0 or less
    # (or NaN) into silently one-channel networks
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    return max(1, int(round(n * width)))


def _top_size(image_size: int) -> int:
    """Side of the top feature map: 4 at 32x32, 8 at 64x64 and 128x128."""
    return 4 if image_size == 32 else 8


def _extra_layers(image_size: int) -> int:
    """Extra stride-2 layers so that 128x128 ends at 8x8 like 64x64."""
    return 1 if image_size == 128 else 0


def conv_bn_relu(c_in: int, c_out: int, stride: int = 2) -> nn.Sequential:
    """5x5 conv (stride 2 halves the side), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 5, stride, padding=2, bias=False),
        nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
    )


def deconv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """5x5 backward (transposed) conv with stride 2: doubles the side."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 5, 2, padding=2, output_padding=1, bias=False),
        nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
    )


def fc_bn_relu(n_in: int, n_out: int) -> nn.Sequential:
    """Fully connected layer, BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Linear(n_in, n_out, bias=False),
        nn.BatchNorm1d(n_out, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
    )


def _with_condition(h: torch.Tensor, y: torch.Tensor | None, cond_dim: int) -> torch.Tensor:
    """Concatenate the attribute vector y (Table 2's conditional models) to a flat input."""
    if cond_dim == 0:
        return h
    if y is None:
        raise ValueError(f"this network is conditional (cond_dim={cond_dim}): pass y")
    return torch.cat([h, y.to(h.dtype)], dim=1)


class Encoder(nn.Module):
    """Enc(x) = q(z|x) = N(mu, diag(exp(logvar))) (Eq. 1)."""

    def __init__(
        self,
        image_size: int = 64,
        latent_dim: int = 128,
        width: float = 1.0,
        fc_dim: int = 2048,
        channels: int = 3,
        cond_dim: int = 0,
    ) -> None:
        super().__init__()
        check_image_size(image_size)
        self.cond_dim = cond_dim
        c64, c128, c256 = _ch(64, width), _ch(128, width), _ch(256, width)
        layers = [
            conv_bn_relu(channels, c64),  # 64x64 => 32x32
            conv_bn_relu(c64, c128),  # 32x32 => 16x16
            conv_bn_relu(c128, c256),  # 16x16 => 8x8
        ]
        layers += [conv_bn_relu(c256, c256) for _ in range(_extra_layers(image_size))]
        self.convs = nn.Sequential(*layers)
        s = _top_size(image_size)
        hidden = _ch(fc_dim, width)
        # The condition joins at the top fc layer, as for the paper's conditional Enc.
        self.fc = fc_bn_relu(c256 * s * s + cond_dim, hidden)  # 256*8*8 => 2048
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each [B, latent_dim]; y: attributes, if conditional."""
        h = self.convs(x).flatten(1)
        h = self.fc(_with_condition(h, y, self.cond_dim))
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """Dec(z) = the mean of p(x|z); also the GAN's generator (the paper shares them)."""

    def __init__(
        self,
        image_size: int = 64,
        latent_dim: int = 128,
        width: float = 1.0,
        channels: int = 3,
        cond_dim: int = 0,
    ) -> None:
        super().__init__()
        check_image_size(image_size)
        self.cond_dim = cond_dim
        self.top = _top_size(image_size)
        c32, c128, c256 = _ch(32, width), _ch(128, width), _ch(256, width)
        self.c_top = c256
        self.fc = fc_bn_relu(latent_dim + cond_dim, c256 * self.top * self.top)  # z => 8x8x256
        layers = [deconv_bn_relu(c256, c256) for _ in range(_extra_layers(image_size))]
        layers += [
            deconv_bn_relu(c256, c256),  # 8x8 => 16x16
            deconv_bn_relu(c256, c128),  # 16x16 => 32x32
            deconv_bn_relu(c128, c32),  # 32x32 => 64x64
            nn.Conv2d(c32, channels, 5, 1, padding=2),  # 64x64 => 64x64, 3 channels
            nn.Tanh(),
        ]
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images [B, C, S, S] in [-1, 1] from codes z; y: attributes, if conditional."""
        h = self.fc(_with_condition(z, y, self.cond_dim))
        h = h.view(-1, self.c_top, self.top, self.top)
        return self.deconvs(h)


def dis_l_features(image_size: int, width: float, channels: int = 3, dis_layer: int = 4) -> int:
    """How many numbers Dis_l(x) holds for one image (256x8x8 = 16,384 at 64x64, width 1, l = 4)."""
    with torch.device("meta"):  # shapes only: no weights are made, nothing is computed
        dis = Discriminator(image_size, width, channels, dis_layer)
        return dis.dis_l(torch.empty(1, channels, image_size, image_size)).numel()


class Discriminator(nn.Module):
    """Dis(x): a logit for "x is a training sample", plus the hidden representation Dis_l(x).

    ``dis_layer`` is l, counted in conv layers (1 to 4, or 5 at 128x128). The default, 4, is the
    4th conv's output (256x8x8 at 64x64), taken before its BatchNorm and ReLU as in the authors'
    code: "after 3 convolutional layers with stride 2 downsampling" (Sec. 4).
    """

    def __init__(
        self,
        image_size: int = 64,
        width: float = 1.0,
        channels: int = 3,
        dis_layer: int = 4,
        cond_dim: int = 0,
    ) -> None:
        super().__init__()
        check_image_size(image_size)
        self.cond_dim = cond_dim
        c32, c128, c256 = _ch(32, width), _ch(128, width), _ch(256, width)
        blocks = [
            # The first layer has no BatchNorm, so it keeps its bias; its ReLU is not in-place
            # because with dis_layer=1 its input is Dis_l itself.
            nn.Sequential(nn.Conv2d(channels, c32, 5, 1, padding=2), nn.ReLU()),
            conv_bn_relu(c32, c128),  # 64x64 => 32x32
            conv_bn_relu(c128, c256),  # 32x32 => 16x16
            conv_bn_relu(c256, c256),  # 16x16 => 8x8
        ]
        blocks += [conv_bn_relu(c256, c256) for _ in range(_extra_layers(image_size))]
        self.blocks = nn.ModuleList(blocks)
        if not 1 <= dis_layer <= len(blocks):
            raise ValueError(f"dis_layer must be between 1 and {len(blocks)}, got {dis_layer}")
        self.dis_layer = dis_layer
        s = _top_size(image_size)
        hidden = _ch(512, width)
        self.fc = fc_bn_relu(c256 * s * s + cond_dim, hidden)  # 256*8*8 => 512
        self.out = nn.Linear(hidden, 1)  # 512 => 1 logit

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (logits [B], Dis_l(x) [B, C, H, W])."""
        h, dis_l = self.features(x, y)
        return self.out(h).squeeze(1), dis_l

    def features(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the fc layer's output [B, 512 * width], Dis_l(x)): everything but the last layer."""
        dis_l = self.dis_l(x)
        h = self.blocks[self.dis_layer - 1][1:](dis_l)  # layer l's BatchNorm and ReLU
        for block in self.blocks[self.dis_layer :]:
            h = block(h)
        return self.fc(_with_condition(h.flatten(1), y, self.cond_dim)), dis_l

    def dis_l(self, x: torch.Tensor) -> torch.Tensor:
        """Dis_l(x) alone: runs only the first l conv layers. Dis_l is the l-th conv's output
        before its BatchNorm and ReLU (block[0] is the conv)."""
        h = x
        for block in self.blocks[: self.dis_layer - 1]:
            h = block(h)
        return self.blocks[self.dis_layer - 1][0](h)
