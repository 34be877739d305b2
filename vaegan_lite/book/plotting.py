"""Image grids and training curves for the chapters (matplotlib), in the book's one style.

STYLE is applied when the book's glue is imported (vaegan_lite.book), so every figure of every
chapter, and the figures chapter 6's experiments write, share it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..images import grid
from .tables import typeset

if TYPE_CHECKING:  # matplotlib is imported only when drawing
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Colour-blind-safe lines (matplotlib's "tableau-colorblind10"), light grids, no top/right spines,
# small type, pixels drawn as pixels. Sizes are left to each figure.
STYLE = {
    "axes.prop_cycle": "cycler('color', ['006BA4', 'FF800E', '595959', '5F9ED1', 'C85200', "
    "'898989', 'A2C8EC', 'FFBC79', 'ABABAB', 'CFCFCF'])",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.9",
    "grid.linewidth": 0.8,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "image.interpolation": "nearest",
}


# The book's text column, in inches at matplotlib's 100 dpi: a wider figure is shrunk to it, and
# its type with it.
COLUMN_IN = 7.0


def column_fontsize(width_in: float, size: float = STYLE["axes.titlesize"]) -> float:
    """The type size that reads as ``size`` points once a figure ``width_in`` inches wide is
    shrunk to the book's column (grids of many faces are drawn wide to keep their pixels)."""
    return size * max(1.0, width_in / COLUMN_IN)


def use_book_style() -> None:
    """Make STYLE matplotlib's default (it picks no backend: pyplot is not imported)."""
    import matplotlib

    matplotlib.rcParams.update({k: matplotlib.rcParams.validate[k](v) for k, v in STYLE.items()})


def show_grid(
    images: torch.Tensor,
    nrow: int = 8,
    title: str | None = None,
    ax: Axes | None = None,
    scale: float = 1.0,
) -> Axes:
    """Draw a grid with matplotlib; returns the axes."""
    import matplotlib.pyplot as plt  # pyplot: only when drawing (it picks a backend)

    g = grid(images, nrow).permute(1, 2, 0).numpy()
    if ax is None:
        h, w = g.shape[:2]
        _, ax = plt.subplots(figsize=(scale * w / 60, scale * h / 60))
    ax.imshow(g)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_rows(rows: dict[str, torch.Tensor], nrow: int = 8, scale: float = 1.0) -> Figure:
    """Several labelled grids stacked vertically (e.g. data / VAE / VAE/GAN); returns the figure.
    The labels set the paper's symbols as the book's prose does (``VAE_Dis_l`` as VAE with Dis_l
    below it: tables.typeset, in Matplotlib's mathtext)."""
    import matplotlib.pyplot as plt  # pyplot: only when drawing (it picks a backend)

    width = scale * nrow * 0.9
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, scale * 1.25 * len(rows)))
    axes = [axes] if len(rows) == 1 else list(axes)
    for ax, (name, images) in zip(axes, rows.items(), strict=True):
        show_grid(images, nrow, ax=ax)
        ax.set_title(typeset(name), loc="left", fontsize=column_fontsize(width))
    fig.tight_layout()
    return fig


def plot_history(
    history: dict[str, list[float]], keys: list[str] | None = None, ax: Axes | None = None
) -> Axes:
    """Loss curves: one line per logged statistic against the step; returns the axes."""
    import matplotlib.pyplot as plt  # pyplot: only when drawing (it picks a backend)

    keys = keys or [k for k in history if k != "step"]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    for k in keys:
        if k in history:
            ax.plot(history["step"], history[k], label=k)
    ax.set_xlabel("step")
    ax.legend()
    return ax
