"""The live latent-arithmetic widget (ipywidgets: Jupyter, JupyterLab, Colab; needs a kernel).

    latent_arithmetic(model, vectors, faces)

shows Dec(z) for z = (the code mu(x) of a chosen face, or a draw z_p ~ N(0, I)) plus
sum_a s_a v_a, with one slider s_a per attribute vector v_a, a face picker, a "random face" button
and a "reset" button. Every change re-runs the decoder in the kernel. The published book has no
kernel: its copy of this widget runs in the browser instead (web.py).
"""

from __future__ import annotations

import io
from typing import Any

import torch

from ..attributes import Vectors, decode, encode
from ..data import to_uint8


def to_png(image: torch.Tensor, size: int = 160) -> bytes:
    """One image [C, H, W] in [-1, 1] as PNG bytes, enlarged to ``size`` pixels (nearest)."""
    from PIL import Image  # Pillow: only when image files are read or written

    x = to_uint8(image)
    pil = Image.fromarray(x.permute(1, 2, 0).numpy())
    buf = io.BytesIO()
    pil.resize((size, size), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def latent_arithmetic(
    model: Any,
    vectors: Vectors,
    faces: torch.Tensor,
    scale_range: tuple[float, float] = (-2.0, 2.0),
    size: int = 160,
    seed: int = 0,
):
    """An ipywidgets box: sliders per attribute, a face picker, random sample, reset."""
    import ipywidgets as W

    codes = encode(model, faces)
    g = torch.Generator().manual_seed(seed)
    state = {"z": codes[0].clone()}
    image = W.Image(format="png", width=size, height=size)
    original = W.Image(format="png", width=size // 2, height=size // 2)
    sliders = {
        name: W.FloatSlider(
            value=0.0,
            min=scale_range[0],
            max=scale_range[1],
            step=0.05,
            description=name.replace("_", " "),
            continuous_update=True,
            style={"description_width": "8em"},
            layout=W.Layout(width="26em"),
        )  # fmt: skip
        for name in vectors
    }
    picker = W.Dropdown(options=[(f"face {i + 1}", i) for i in range(len(faces))], value=0,
                        description="face", layout=W.Layout(width="14em"))  # fmt: skip
    random_button = W.Button(description="Random face", icon="random")
    reset_button = W.Button(description="Reset", icon="undo")

    def redraw(*_) -> None:
        z = state["z"].clone()
        for name, s in sliders.items():
            if s.value:
                z += s.value * vectors[name]
        image.value = to_png(decode(model, z[None])[0], size)

    def pick(change=None) -> None:
        i = picker.value
        state["z"] = codes[i].clone()
        original.value = to_png(faces[i], size // 2)
        redraw()

    def random(_=None) -> None:
        state["z"] = torch.randn(model.latent_dim, generator=g)
        original.value = to_png(torch.zeros_like(faces[0]), size // 2)  # no face: grey
        redraw()

    def reset(_=None) -> None:
        for s in sliders.values():
            s.unobserve(redraw, "value")
            s.value = 0.0
            s.observe(redraw, "value")
        redraw()

    for s in sliders.values():
        s.observe(redraw, "value")
    picker.observe(pick, "value")
    random_button.on_click(random)
    reset_button.on_click(reset)
    pick()
    left = W.VBox([image, W.HBox([random_button, reset_button])])
    right = W.VBox([W.HBox([picker, original]), *sliders.values()])
    box = W.HBox([left, right])
    # For tests and for readers who want to script it: the parts, by name.
    box.parts = {"image": image, "sliders": sliders, "picker": picker, "random": random_button,
                 "reset": reset_button, "state": state}  # fmt: skip
    return box
