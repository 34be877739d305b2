"""Images' two forms: uint8 [0, 255] in the data sets, float [-1, 1] (Dec's tanh) in the nets.

    to_unit_range(images)     uint8 => float [-1, 1]
    to_uint8(images)          float [-1, 1] => uint8, rounded
    check_float(images, who)  a net's input is float, not a data set's uint8
    grid(images), save_grid   several images as one, and as a PNG file (run folders, the CLI)
    shift(images, dx)         moved dx pixels sideways, the border repeated (chapters 1 and 3)
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .files import atomic_path


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] => float [-1, 1], the range of Dec's tanh. Other dtypes are a ValueError:
    float images were scaled in place (the caller's tensor changed) and as if in [0, 255]."""
    if images.dtype != torch.uint8:
        raise ValueError(f"to_unit_range takes uint8 images in [0, 255], got {images.dtype} "
                         "(float images in [0, 1] are x * 2 - 1)")
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] => uint8 [0, 255] (clamped, rounded to nearest): to_unit_range's inverse."""
    return images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def check_float(images: torch.Tensor, who: str) -> None:
    """ValueError unless ``images`` are floating point: uint8 ones, straight from a data set, were
    a torch error naming neither the cause nor the cure ("expected scalar type Byte")."""
    if not images.is_floating_point():
        raise ValueError(f"{who} takes float images in [-1, 1], got {images.dtype} "
                         "(vaegan_lite.images.to_unit_range turns uint8 ones into them)")


def grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> torch.Tensor:
    """[B, C, H, W] images in [-1, 1] => one [C, H', W'] image in [0, 1]."""
    from torchvision.utils import make_grid  # torchvision's import is slow: only when drawing

    x = images.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    return make_grid(x, nrow=nrow, padding=padding, pad_value=1.0)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> None:
    """Write a grid as an image file, PNG unless the name's suffix says otherwise (atomically: a
    half-written file never replaces a good one)."""
    from torchvision.utils import save_image  # as in grid()

    # PIL goes by the suffix, and a name without one would be the temporary file's ".tmp"
    fmt = None if Path(path).suffix else "PNG"
    with atomic_path(path) as tmp:
        save_image(grid(images, nrow), tmp, format=fmt)


def shift(x: torch.Tensor, dx: int) -> torch.Tensor:
    """[..., H, W] images moved dx pixels to the right (left for dx < 0), the border column
    repeated into the gap: the same face, as a person sees it, a little off centre."""
    w, p = x.shape[-1], abs(dx)
    if p >= w:
        raise ValueError(f"shift: dx={dx} moves a {w}-pixel-wide image out of view")
    padded = F.pad(x, (p, p, 0, 0), mode="replicate")  # [..., H, W + 2|dx|]
    return padded[..., p - dx : p - dx + w]
