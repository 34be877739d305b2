"""The book's model diagrams, one per model family, as SVG in vaegan_lite/book/diagrams/.

    python tools/draw_diagrams.py            # writes vae.svg, gan.svg, vaegan.svg, avae.svg
    python tools/draw_diagrams.py --png DIR  # also a PNG of each, to look at

One style for all four: networks are rounded boxes coloured by role (encoders blue, decoders green,
generators purple, discriminators and critics orange), data and codes are bare symbols joined by
black arrows, and every loss is a grey box reached by grey lines, as in the VAE/GAN paper's Fig. 2
("gray lines represent terms in the training objective"). A strip at the bottom says which loss
trains which network. All figures are drawn at the same width, so at the same page width their
text has the same size.

Plain words are SVG text (selectable, searchable); labels with mathematics are drawn as paths,
because a browser would lay out mathtext's separately placed glyphs in whatever font it has. The
output is deterministic: a fixed svg.hashsalt and no date in the metadata, so running the script
again rewrites identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, PathPatch  # noqa: E402
from matplotlib.textpath import TextPath  # noqa: E402
from matplotlib.transforms import Affine2D  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "vaegan_lite" / "book" / "diagrams"

WIDTH = 8.3  # inches, every figure; at a 700 px page that is about 1.2 px per point of font size

STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "vaegan-lite-diagrams",
    "mathtext.fontset": "dejavusans",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Verdana", "Arial", "Helvetica"],
    "path.simplify": False,
}

# role: (fill, edge and text colour)
ROLES = {
    "enc": ("#dbe9f6", "#1f5f99"),
    "dec": ("#dcefd8", "#2f6f1f"),
    "gen": ("#e8e0f3", "#5b3f99"),
    "dis": ("#fde8d2", "#a5520a"),
    "loss": ("#f2f2f2", "#6b6b6b"),
}
INK = "#1a1a1a"
GREY = ROLES["loss"][1]
FONT = FontProperties(family="DejaVu Sans")
Point = tuple[float, float]  # inches from the figure's bottom left


# --- drawing primitives (coordinates in inches from the figure's bottom left) --------------------


def canvas(height: float, shift: float = 0.0) -> tuple[Figure, Axes]:
    """A figure WIDTH x height inches whose data units are inches; shift moves the drawing right."""
    fig = plt.figure(figsize=(WIDTH, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-shift, WIDTH - shift)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def label(ax: Axes, x: float, y: float, s: str, size: float = 12.0, color: str = INK,
          ha: str = "center", va: str = "center", weight: str = "normal") -> None:  # fmt: skip
    """Text centred (by default) on (x, y): SVG text if plain, paths if it contains $...$."""
    if "$" not in s:
        ax.text(x, y, s, fontsize=size, color=color, ha=ha, va=va, fontweight=weight)
        return
    prop = FONT.copy()
    prop.set_weight(weight)
    path = TextPath((0, 0), s, size=size / 72, prop=prop)
    box = path.get_extents()
    dx = {"center": -(box.x0 + box.x1) / 2, "left": -box.x0, "right": -box.x1}[ha]
    dy = {"center": -(box.y0 + box.y1) / 2, "bottom": -box.y0, "top": -box.y1}[va]
    path = Affine2D().translate(x + dx, y + dy).transform_path(path)
    ax.add_patch(PathPatch(path, facecolor=color, edgecolor="none", lw=0))


class Box:
    """A rounded box; its edges give arrows their ends."""

    def __init__(self, ax: Axes, x: float, y: float, w: float, h: float, text: str, role: str,
                 sub: str | None = None, dashed: bool = False,
                 size: float = 12.5) -> None:  # fmt: skip
        fill, edge = ROLES[role]
        self.x, self.y, self.w, self.h = x, y, w, h
        ax.add_patch(FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.09",
            facecolor=fill, edgecolor=edge, lw=1.4, ls=(0, (4, 2)) if dashed else "-",
        ))  # fmt: skip
        color = edge if role != "loss" else INK
        weight = "bold" if role != "loss" else "normal"
        if sub is None:
            label(ax, x, y, text, size=size, color=color, weight=weight)
        else:
            label(ax, x, y + 0.1, text, size=size, color=color, weight=weight)
            label(ax, x, y - 0.15, sub, size=10, color=color)

    def left(self, y: float | None = None) -> Point:
        """The middle of the left edge, or the point at height y on it."""
        return (self.x - self.w / 2, self.y if y is None else y)

    def right(self, y: float | None = None) -> Point:
        """The middle of the right edge, or the point at height y on it."""
        return (self.x + self.w / 2, self.y if y is None else y)

    def top(self, x: float | None = None) -> Point:
        """The middle of the top edge, or the point at x on it."""
        return (self.x if x is None else x, self.y + self.h / 2)

    def bottom(self, x: float | None = None) -> Point:
        """The middle of the bottom edge, or the point at x on it."""
        return (self.x if x is None else x, self.y - self.h / 2)


def arrow(ax: Axes, *points: Point, color: str = INK, lw: float = 1.4, head: bool = True,
          dashed: bool = False) -> None:  # fmt: skip
    """A polyline through points, with an arrowhead at the last one."""
    for a, b in zip(points[:-2], points[1:-1], strict=True):
        ax.plot([a[0], b[0]], [a[1], b[1]], color=color, lw=lw, solid_capstyle="butt",
                ls=(0, (4, 2)) if dashed else "-")  # fmt: skip
    ax.add_patch(FancyArrowPatch(
        points[-2], points[-1], arrowstyle="-|>" if head else "-", mutation_scale=13,
        color=color, lw=lw, shrinkA=0, shrinkB=0, ls=(0, (4, 2)) if dashed else "-",
        joinstyle="miter", capstyle="butt",
    ))  # fmt: skip


def feed(ax: Axes, *points: Point) -> None:
    """A grey line into a loss (the paper's Fig. 2: terms of the training objective)."""
    arrow(ax, *points, color=GREY, lw=1.3)


def routing(ax: Axes, y: float, entries: list[tuple[str, str]], size: float = 12.5) -> None:
    """The strip that says which loss trains which network: [(role, text), ...], centred."""
    widths = []
    for _, s in entries:
        box = TextPath((0, 0), s, size=size / 72, prop=FONT).get_extents()
        widths.append(box.x1 - box.x0)
    gap = 0.45
    x0, x1 = ax.get_xlim()
    x = x0 + (x1 - x0 - sum(widths) - gap * (len(entries) - 1)) / 2
    for (role, s), w in zip(entries, widths, strict=True):
        label(ax, x, y, s, size=size, color=ROLES[role][1], ha="left")
        x += w + gap


def title(ax: Axes, y: float, s: str) -> None:
    """A figure's bold heading, at the left."""
    label(ax, 0.12, y, s, size=12.5, ha="left", weight="bold")


def save(fig: Figure, name: str, png_dir: Path | None) -> Path:
    """Write the figure as OUT/name.svg (no date, so a redraw changes nothing), and as a PNG in
    png_dir when given; returns the SVG's path."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.svg"
    fig.savefig(path, metadata={"Date": None, "Creator": None})
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
        fig.savefig(png_dir / f"{name}.png", dpi=700 / WIDTH)  # the size it has on the page
    plt.close(fig)
    return path


# --- the four figures ----------------------------------------------------------------------------

L_PRIOR = r"$\mathcal{L}_{\mathrm{prior}}$"
L_PIXEL = r"$\mathcal{L}_{\mathrm{llike}}^{\mathrm{pixel}}$"
L_DISL = r"$\mathcal{L}_{\mathrm{llike}}^{\mathrm{Dis}_l}$"
L_GAN = r"$\mathcal{L}_{\mathrm{GAN}}$"
PRIOR = r"$\mathcal{N}(0, I)$"


def vae() -> plt.Figure:
    """x -> Enc -> (mu, sigma) -> z -> Dec -> x~, with L_prior and L_llike^pixel."""
    fig, ax = canvas(3.0, shift=0.4)
    y = 1.55
    label(ax, 0.55, y, "$x$", size=15)
    enc = Box(ax, 1.65, y, 0.95, 0.6, "Enc", "enc")
    label(ax, 2.95, y, r"$\mu,\ \sigma$", size=14)
    label(ax, 4.45, y, "$z$", size=15)
    dec = Box(ax, 5.65, y, 0.95, 0.6, "Dec", "dec")
    label(ax, 6.95, y, r"$\tilde{x}$", size=15)
    arrow(ax, (0.72, y), enc.left())
    arrow(ax, enc.right(), (2.55, y))
    arrow(ax, (3.35, y), (4.27, y))
    label(ax, 3.81, y + 0.2, "sample", size=10.5, color=GREY)
    arrow(ax, (4.62, y), dec.left())
    arrow(ax, dec.right(), (6.78, y))
    label(ax, 4.45, 0.72, r"$\varepsilon \sim \mathcal{N}(0, I)$", size=11.5)
    arrow(ax, (4.45, 0.9), (4.45, y - 0.2))
    label(ax, 4.62, 1.12, r"$z = \mu + \sigma \odot \varepsilon$", size=10, color=GREY, ha="left")
    # the two losses
    top = 2.55
    llike = Box(ax, 3.75, top, 3.55, 0.5, L_PIXEL + " squared error in pixels (Eq. 3)", "loss",
                size=11.5)
    feed(ax, (0.55, y + 0.25), (0.55, top), llike.left())
    feed(ax, (6.95, y + 0.27), (6.95, top), llike.right())
    prior = Box(ax, 2.2, 0.72, 2.5, 0.5, L_PRIOR + r" KL to $\mathcal{N}(0, I)$ (Eq. 4)", "loss",
                size=11.5)
    feed(ax, (2.95, y - 0.22), (2.95, prior.top()[1]))
    routing(ax, 0.18, [("enc", r"Enc $\leftarrow$ " + L_PRIOR + " + " + L_PIXEL),
                       ("dec", r"Dec $\leftarrow$ " + L_PIXEL)])
    return fig


def gan() -> plt.Figure:
    """z_p ~ N(0, I) -> Dec (the generator) -> x_p -> Dis <- x, and L_GAN."""
    fig, ax = canvas(3.0)
    lo, hi = 1.05, 2.3
    label(ax, 0.95, lo, r"$z_p \sim$ " + PRIOR, size=13)
    dec = Box(ax, 2.6, lo, 0.95, 0.7, "Dec", "dec", sub="= Gen")
    label(ax, 3.85, lo, "$x_p$", size=15)
    arrow(ax, (1.7, lo), dec.left())
    arrow(ax, dec.right(), (3.65, lo))
    label(ax, 3.85, hi, "$x$", size=15)
    label(ax, 3.6, hi, "data", size=10, color=GREY, ha="right")
    dis = Box(ax, 5.25, (lo + hi) / 2, 0.95, hi - lo + 0.6, "Dis", "dis")
    arrow(ax, (4.05, hi), dis.left(hi))
    arrow(ax, (4.07, lo), dis.left(lo))
    label(ax, dis.left()[0] - 0.06, hi + 0.18, "real", size=10.5, color=GREY, ha="right")
    label(ax, dis.left()[0] - 0.06, lo + 0.18, "generated", size=10.5, color=GREY, ha="right")
    gan_loss = Box(ax, 7.3, (lo + hi) / 2, 1.4, 0.5, L_GAN + " (Eq. 5)", "loss", size=11.5)
    feed(ax, dis.right(), gan_loss.left())
    label(ax, dis.right()[0] + 0.1, (lo + hi) / 2 + 0.2, r"$\mathrm{Dis}(\cdot)$", size=10.5,
          color=GREY, ha="left")
    routing(ax, 0.18, [("dis", r"Dis $\leftarrow$ " + L_GAN),
                       ("dec", r"Dec $\leftarrow$ $-$" + L_GAN)])
    return fig


def vaegan() -> plt.Figure:
    """The paper's Fig. 2: x -> Enc -> z -> Dec -> x~ -> Dis, z_p -> Dec -> x_p -> Dis, x -> Dis."""
    fig, ax = canvas(4.1)
    real, main, low = 3.45, 2.55, 1.4
    label(ax, 0.3, main, "$x$", size=15)
    enc = Box(ax, 1.15, main, 0.85, 0.6, "Enc", "enc")
    label(ax, 2.05, main, "$z$", size=15)
    dec = Box(ax, 3.75, (main + low) / 2, 0.95, main - low + 0.65, "Dec", "dec")
    label(ax, 4.95, main, r"$\tilde{x}$", size=15)
    label(ax, 4.95, low, "$x_p$", size=15)
    dis = Box(ax, 6.1, (real + low) / 2, 0.9, real - low + 0.6, "Dis", "dis")
    arrow(ax, (0.47, main), enc.left())
    arrow(ax, enc.right(), (1.88, main))
    arrow(ax, (2.22, main), dec.left(main))
    label(ax, 2.35, low, r"$z_p \sim$ " + PRIOR, size=12.5)
    arrow(ax, (2.93, low), dec.left(low))
    arrow(ax, dec.right(main), (4.78, main))
    arrow(ax, dec.right(low), (4.75, low))
    arrow(ax, (5.13, main), dis.left(main))
    arrow(ax, (5.17, low), dis.left(low))
    arrow(ax, (0.3, main + 0.25), (0.3, real), dis.left(real))  # the real image goes to Dis too
    label(ax, 5.6, real + 0.17, "real", size=10.5, color=GREY, ha="right")
    label(ax, 5.6, main + 0.17, "reconstructed", size=10.5, color=GREY, ha="right")
    label(ax, 5.6, low + 0.17, "sampled", size=10.5, color=GREY, ha="right")
    # the losses
    prior = Box(ax, 1.0, low, 0.95, 0.5, L_PRIOR, "loss", size=12)
    feed(ax, enc.bottom(1.0), prior.top())
    llike = Box(ax, 7.67, 2.9, 1.15, 0.55, L_DISL, "loss", size=12.5)
    gan_loss = Box(ax, 7.67, 1.75, 1.15, 0.55, L_GAN, "loss", size=12.5)
    feed(ax, dis.right(2.9), llike.left())
    feed(ax, dis.right(1.75), gan_loss.left())
    label(ax, 6.62, 3.07, r"$\mathrm{Dis}_l(\cdot)$", size=10.5, color=GREY, ha="left")
    label(ax, 6.62, 1.92, r"$\mathrm{Dis}(\cdot)$", size=10.5, color=GREY, ha="left")
    label(ax, 7.67, 2.48, "Eq. 7", size=10.5, color=GREY)
    label(ax, 7.67, 1.33, "Eq. 10", size=10.5, color=GREY)
    routing(ax, 0.45, [("enc", r"Enc $\leftarrow$ " + L_PRIOR + " + " + L_DISL),
                       ("dec", r"Dec $\leftarrow$ $\gamma$" + L_DISL + r" $-$ " + L_GAN),
                       ("dis", r"Dis $\leftarrow$ " + L_GAN)])
    return fig


def avae() -> plt.Figure:
    """BiGAN (a joint discriminator on (x, z)) above, AVAE (E, D, G, C) below."""
    fig, ax = canvas(7.95)
    # BiGAN ------------------------------------------------------------------------------------
    title(ax, 7.7, "BiGAN")
    r1, r2 = 6.85, 5.55
    label(ax, 0.55, r1, "$x$", size=15)
    e = Box(ax, 1.75, r1, 0.85, 0.6, "E", "enc")
    label(ax, 2.85, r1, r"$\hat{z}$", size=15)
    label(ax, 4.2, r1, r"$(x, \hat{z})$", size=14)
    arrow(ax, (0.72, r1), e.left())
    arrow(ax, e.right(), (2.68, r1))
    arrow(ax, (3.02, r1), (3.72, r1))
    arrow(ax, (0.55, r1 + 0.25), (0.55, r1 + 0.55), (4.2, r1 + 0.55), (4.2, r1 + 0.25))
    label(ax, 0.85, r2, r"$z \sim$ " + PRIOR, size=13)
    g = Box(ax, 2.15, r2, 0.85, 0.6, "G", "gen")
    label(ax, 3.05, r2, "$G(z)$", size=13)
    label(ax, 4.35, r2, r"$(G(z), z)$", size=14)
    arrow(ax, (1.58, r2), g.left())
    arrow(ax, g.right(), (2.7, r2))
    arrow(ax, (3.42, r2), (3.72, r2))
    arrow(ax, (0.55, r2 - 0.22), (0.55, r2 - 0.55), (4.35, r2 - 0.55), (4.35, r2 - 0.25))
    d = Box(ax, 5.9, (r1 + r2) / 2, 1.05, r1 - r2 + 0.6, "D(x, z)", "dis", sub="joint")
    arrow(ax, (4.68, r1), d.left(r1))
    arrow(ax, (4.98, r2), d.left(r2))
    label(ax, 5.32, r1 + 0.17, "real", size=10.5, color=GREY, ha="right")
    label(ax, 5.32, r2 + 0.17, "generated", size=10.5, color=GREY, ha="right")
    loss_d = Box(ax, 7.55, (r1 + r2) / 2, 1.05, 0.5, r"$\mathcal{L}_D$", "loss", size=12.5)
    feed(ax, d.right(), loss_d.left())
    label(ax, 7.55, (r1 + r2) / 2 - 0.42, "real pair?", size=10.5, color=GREY)
    routing(ax, 4.55, [("dis", r"D $\leftarrow$ $\mathcal{L}_D$"),
                      ("enc", r"E, G $\leftarrow$ $-\mathcal{L}_D$")])
    ax.plot([0.12, WIDTH - 0.12], [4.23, 4.23], color="#c8c8c8", lw=1)
    # AVAE -------------------------------------------------------------------------------------
    title(ax, 3.97, "AVAE")
    a1, a2, a3 = 3.25, 2.1, 1.2
    label(ax, 0.55, a1, "$x$", size=15)
    e1 = Box(ax, 1.75, a1, 0.85, 0.6, "E", "enc")
    label(ax, 2.85, a1, "$z$", size=15)
    d1 = Box(ax, 3.9, a1, 0.85, 0.6, "D", "dec")
    label(ax, 5.15, a1, r"$\mu_D(z)$", size=13)
    arrow(ax, (0.72, a1), e1.left())
    arrow(ax, e1.right(), (2.68, a1))
    arrow(ax, (3.02, a1), d1.left())
    arrow(ax, d1.right(), (4.72, a1))
    l_vae = Box(ax, 7.25, a1, 1.55, 0.5, r"$\mathcal{L}_{\mathrm{VAE}}$ (Eq. 9)", "loss",
                size=11.5)
    feed(ax, (5.6, a1), l_vae.left())
    feed(ax, (0.55, a1 + 0.25), (0.55, a1 + 0.5), (7.25, a1 + 0.5), l_vae.top())
    label(ax, 7.25, a1 - 0.4, r"reconstruction + KL", size=10.5, color=GREY)
    label(ax, 0.85, a2, r"$z, \xi \sim$ " + PRIOR, size=13)
    g2 = Box(ax, 2.3, a2, 0.85, 0.6, "G", "gen")
    label(ax, 3.4, a2, r"$G(z, \xi)$", size=13)
    e2 = Box(ax, 4.75, a2, 0.85, 0.6, "E", "enc", sub="same", dashed=True)
    label(ax, 5.85, a2, r"$\mu_E$", size=14)
    arrow(ax, (1.68, a2), g2.left())
    arrow(ax, g2.right(), (2.9, a2))
    arrow(ax, (3.9, a2), e2.left())
    arrow(ax, e2.right(), (5.6, a2))
    l_z = Box(ax, 7.25, a2, 1.55, 0.5, r"$\mathcal{L}_Z$ (Eq. 12, 16)", "loss", size=11.5)
    feed(ax, (6.1, a2), l_z.left())
    label(ax, 7.25, a2 - 0.4, r"is $z$ found again?", size=10.5, color=GREY)
    label(ax, 0.55, a3, "$x$", size=15)
    c = Box(ax, 3.4, a3, 0.85, 0.55, "C", "dis")
    arrow(ax, (0.72, a3), c.left())
    label(ax, 0.85, a3 + 0.17, "real", size=10.5, color=GREY, ha="left")
    arrow(ax, (3.4, a2 - 0.22), c.top())
    label(ax, 3.5, (a2 + a3) / 2, "generated", size=10.5, color=GREY, ha="left")
    l_c = Box(ax, 5.0, a3, 1.3, 0.5, r"$\mathcal{L}_C$ (Eq. 13)", "loss", size=11.5)
    l_m = Box(ax, 7.25, a3, 1.55, 0.5, r"$\mathcal{L}_M$ (Eq. 15)", "loss", size=11.5)
    feed(ax, c.right(), l_c.left())
    feed(ax, c.bottom(), (c.x, a3 - 0.5), (7.25, a3 - 0.5), l_m.bottom())
    label(ax, 5.0, a3 - 0.65, r"$\mathrm{logit}\, C(G(z, \xi))$", size=10.5, color=GREY)
    routing(ax, 0.13, [("enc", r"E, D $\leftarrow$ $\mathcal{L}_{\mathrm{VAE}}$"),
                       ("gen", r"G $\leftarrow$ $\mathcal{L}_Z + \mathcal{L}_M$"),
                       ("dis", r"C $\leftarrow$ $\mathcal{L}_C$")])
    return fig


FIGURES = {"vae": vae, "gan": gan, "vaegan": vaegan, "avae": avae}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=Path, help="also write a PNG of each figure to this folder")
    args = parser.parse_args()
    with plt.rc_context(STYLE):
        for name, draw in FIGURES.items():
            print(save(draw(), name, args.png).relative_to(ROOT))


if __name__ == "__main__":
    main()
