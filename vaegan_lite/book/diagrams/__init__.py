"""The model diagrams of the chapters, one per model family (drawn by tools/draw_diagrams.py).

They ship with the package and are shown as a cell's output, not through a Markdown link to a
file: that way they appear on Colab and in any Jupyter, where a chapter has no book folder next
to it, as well as in the built book.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from IPython.display import HTML

FOLDER = Path(__file__).parent

# What each diagram shows, for readers who cannot see it (the image's alt text)
ALT = {
    "vae": (
        "Diagram of a VAE. The image x goes through Enc to a mean and a standard deviation, a "
        "code z is sampled from them with noise epsilon, and Dec turns z into the "
        "reconstruction x-tilde. Grey lines lead from x and x-tilde to the pixel reconstruction "
        "loss and from the mean and standard deviation to the prior loss. Enc is trained on "
        "both losses, Dec on the reconstruction loss."
    ),
    "gan": (
        "Diagram of a GAN. A code z_p drawn from the standard normal prior goes through Dec, "
        "used as the generator, to a sample x_p. Dis receives a real image x and the sample "
        "x_p, and its output leads to the GAN loss. The bottom line reads: Dis is trained on "
        "L_GAN, Dec on minus L_GAN, with L_GAN there in Algorithm 1's sign, the cross-entropy "
        "(minus Eq. 5): Dis lowers the cross-entropy and Dec raises it (by default through the "
        "non-saturating loss)."
    ),
    "vaegan": (
        "Diagram of the VAE/GAN during training. The image x goes through Enc to a code z, and "
        "Dec turns z into the reconstruction x-tilde; a code z_p drawn from the prior goes "
        "through the same Dec to a sample x_p. Dis receives the real x, the reconstruction and "
        "the sample. Grey lines lead from Enc to the prior loss, from Dis's layer-l features to "
        "the feature reconstruction loss, and from Dis's output to the GAN loss. The bottom "
        "line reads: Enc is trained on L_prior plus L_llike^Dis_l, Dec on gamma times "
        "L_llike^Dis_l minus L_GAN, Dis on L_GAN."
    ),
    "avae": (
        "Two diagrams. BiGAN: an encoder E maps a real image x to a code z-hat, a generator G "
        "maps a code z from the prior to an image G(z), and a joint discriminator D(x, z) "
        "receives the pairs (x, z-hat) and (G(z), z); its loss L_D trains D, and minus L_D "
        "trains E and G. AVAE: E and a decoder D form a VAE trained on L_VAE; a generator G "
        "maps a code z and noise xi to an image, which the same encoder E maps back to a mean "
        "mu_E compared with z in L_Z, and which a critic C compares with real images; C is "
        "trained on L_C, and G on L_Z plus L_M, the critic's logit."
    ),
}


def diagram(name: str) -> HTML:
    """The diagram ``name`` (a key of ALT) as an image the page's width, with its alt text."""
    from IPython.display import HTML  # lazy: the package itself must not need IPython

    if name not in ALT:
        raise ValueError(f"diagram: no diagram {name!r}; there are {', '.join(ALT)}")
    svg = (FOLDER / f"{name}.svg").read_bytes()
    src = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return HTML(f'<img src="{src}" alt="{html.escape(ALT[name])}" style="width: 100%">')
