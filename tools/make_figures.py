"""The README's and the book's opening figure, from the shipped models (no training).

    python tools/make_figures.py            # writes book/_static/samples.png and favicon.png

Rows (vaegan_lite.book.showcase, which chapter 4 shows too): held-out synthetic faces, the
shipped VAE's and VAE/GAN's reconstructions of them, and each model's samples from the same
z ~ N(0, I); deterministic. The book's favicon is one synthetic face, drawn at 32x32 by the data
set itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from vaegan_lite.book.plotting import show_grid  # noqa: E402
from vaegan_lite.book.showcase import LOSSES, showcase_rows  # noqa: E402
from vaegan_lite.cli import OneLineParser  # noqa: E402
from vaegan_lite.data import SyntheticFaces  # noqa: E402
from vaegan_lite.files import atomic_path  # noqa: E402

OUT = ROOT / "book" / "_static" / "samples.png"
FAVICON = ROOT / "book" / "_static" / "favicon.png"
FAVICON_FACE = 3  # of the data set's seed 0: a smiling face that reads at 32x32


def samples_figure(out: Path, n: int = 10) -> None:
    rows = showcase_rows(n)
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.62, 0.8 * len(rows)), dpi=150)
    for ax, (name, images) in zip(axes, rows.items(), strict=True):
        show_grid(images, n, ax=ax)
        model, _, what = name.partition(": ")
        title = f"{name} ({LOSSES[model]})" if what == "reconstructions" else name
        ax.set_title(title, fontsize=7, loc="left", pad=2)
    fig.tight_layout(pad=0.3, h_pad=0.4)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, metadata={"Software": None})  # no version stamp: rebuilt bytes stay equal
    plt.close(fig)


def favicon(out: Path) -> None:
    images, _ = SyntheticFaces(FAVICON_FACE + 1, image_size=32).render([FAVICON_FACE])
    with atomic_path(out) as tmp:
        Image.fromarray(images[0].permute(1, 2, 0).numpy()).save(tmp, format="PNG", optimize=True)


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--favicon", type=Path, default=FAVICON)
    a = ap.parse_args()
    samples_figure(a.out)
    favicon(a.favicon)
    print(f"wrote {a.out} and {a.favicon}")


if __name__ == "__main__":
    main()
