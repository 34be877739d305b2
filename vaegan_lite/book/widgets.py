"""The live latent-arithmetic widget (ipywidgets: Jupyter, JupyterLab, Colab; needs a kernel).

    latent_arithmetic({"VAE/GAN": (vaegan, vectors), "VAE": (vae, vae_vectors)}, faces)

shows, side by side and equally large, the original and the edited face Dec(z) for
z = (the code mu(x) of a chosen face, or a draw z_p ~ N(0, I)) plus sum_a s_a v_a, with one slider
s_a per attribute vector v_a (attributes.IN_WIDGETS: the five chapter 5 shows, and Male; a
button by each sets the authors' s = 1), a face picker with thumbnails, a "Random face" button (the
original is then the sample Dec(z_p) itself), a "Reset" button and, given several models, a
switch between them (Fig. 6 against Fig. 7). Every change re-runs the decoder in the kernel. The
published book has no kernel: its copy of this widget runs in the browser instead (web.py).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..attributes import AUTHORS_SCALE, IN_WIDGETS, Vectors, decode, encode
from ..images import to_uint8

if TYPE_CHECKING:  # ipywidgets is imported only when a widget is built
    from ipywidgets import HBox


def to_png(image: torch.Tensor, size: int = 160) -> bytes:
    """One image [C, H, W] in [-1, 1] as PNG bytes, enlarged to ``size`` pixels (nearest)."""
    from PIL import Image  # Pillow: only when image files are read or written

    x = to_uint8(image)
    # PIL takes a gray image as [H, W]: [H, W, 1] (a --channels 1 model's) is "cannot handle"
    pil = Image.fromarray(x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy())
    buf = io.BytesIO()
    pil.resize((size, size), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def latent_arithmetic(
    models: dict[str, tuple[Any, Vectors]],
    faces: torch.Tensor,
    names: Sequence[str] = IN_WIDGETS,
    scale_range: tuple[float, float] = (-2.0, 2.0),
    size: int = 192,
    thumb: int = 48,
    seed: int = 0,
) -> HBox:
    """An ipywidgets box. ``models``: {label: (model, its attribute vectors)}, the first shown
    first (with one entry there is no switch); ``faces`` [N, C, S, S] in [-1, 1] to pick from;
    ``names``: the attributes that get a slider (every model needs a vector for each)."""
    import ipywidgets as W

    names = list(names)
    for label, (_, vectors) in models.items():
        missing = [n for n in names if n not in vectors]
        if missing:
            raise ValueError(f"{label}: no attribute vector for {', '.join(missing)}")
    codes = {label: encode(model, faces) for label, (model, _) in models.items()}
    g = torch.Generator().manual_seed(seed)
    first = next(iter(models))
    state = {"model": first, "face": 0, "z": codes[first][0].clone(), "zp": None}

    image = W.Image(format="png", width=size, height=size)
    original = W.Image(format="png", width=size, height=size)
    image_caption, original_caption = W.Label(), W.Label()
    sliders = {
        name: W.FloatSlider(
            value=0.0,
            min=scale_range[0],
            max=scale_range[1],
            step=0.05,
            description=name.replace("_", " "),
            continuous_update=True,
            style={"description_width": "8em"},
            layout=W.Layout(width="24em"),
        )  # fmt: skip
        for name in names
    }
    paper = {
        name: W.Button(
            description=f"s = {AUTHORS_SCALE:g}",
            tooltip="the authors' scale: s = 1",
            layout=W.Layout(width="5em"),
        )  # fmt: skip
        for name in names
    }
    face_buttons = [W.Button(description=f"face {i + 1}", layout=W.Layout(width=f"{thumb + 8}px",
                                                                            padding="0"))
                    for i in range(len(faces))]  # fmt: skip
    thumbs = [
        W.VBox(
            [W.Image(value=to_png(f, thumb), format="png", width=thumb, height=thumb), b],
            layout=W.Layout(align_items="center"),
        )  # fmt: skip
        for f, b in zip(faces, face_buttons, strict=True)
    ]
    switch = (W.ToggleButtons(options=list(models), value=first, description="decoder")
              if len(models) > 1 else None)  # fmt: skip
    random_button = W.Button(description="Random face", icon="random")
    reset_button = W.Button(description="Reset", icon="undo")

    def model():
        return models[state["model"]][0]

    def redraw(*_) -> None:
        vectors = models[state["model"]][1]
        z = state["z"].clone()
        for name, s in sliders.items():
            if s.value:
                z += s.value * vectors[name]
        image.value = to_png(decode(model(), z[None])[0], size)
        base = "z_p" if state["zp"] is not None else "μ(x)"
        image_caption.value = f"edited: {state['model']} Dec({base} + Σ s·v)"

    def draw_original() -> None:
        if state["zp"] is None:
            i = state["face"]
            original.value = to_png(faces[i], size)
            original_caption.value = f"original: face {i + 1}"
        else:  # a sample from the prior: its original is the decoded sample itself
            original.value = to_png(decode(model(), state["zp"][None])[0], size)
            original_caption.value = f"random sample: {state['model']} Dec(z_p)"

    def pick(i: int) -> None:
        state.update(face=i, zp=None, z=codes[state["model"]][i].clone())
        for j, b in enumerate(face_buttons):
            b.button_style = "info" if j == i else ""
        draw_original()
        redraw()

    def random(_=None) -> None:
        zp = torch.randn(model().latent_dim, generator=g)
        state.update(zp=zp, z=zp.clone())
        for b in face_buttons:
            b.button_style = ""
        draw_original()
        redraw()

    def select(change) -> None:
        state["model"] = change["new"]
        if state["zp"] is None:
            state["z"] = codes[state["model"]][state["face"]].clone()
        else:
            state["z"] = state["zp"].clone()
            draw_original()  # the sample as the new model's decoder draws it
        redraw()

    def set_sliders(values: dict[str, float]) -> None:
        for name, v in values.items():
            sliders[name].unobserve(redraw, "value")
            sliders[name].value = v
            sliders[name].observe(redraw, "value")
        redraw()

    def reset(_=None) -> None:
        set_sliders(dict.fromkeys(sliders, 0.0))

    for name, s in sliders.items():
        s.observe(redraw, "value")
        paper[name].on_click(lambda _, name=name: set_sliders({name: AUTHORS_SCALE}))
    for i, b in enumerate(face_buttons):
        b.on_click(lambda _, i=i: pick(i))
    if switch is not None:
        switch.observe(select, "value")
    random_button.on_click(random)
    reset_button.on_click(reset)
    pick(0)

    centred = W.Layout(align_items="center")
    pictures = W.HBox([W.VBox([original, original_caption], layout=centred),
                       W.VBox([image, image_caption], layout=centred)])  # fmt: skip
    left = W.VBox([*([switch] if switch else []), pictures,
                   W.HBox([random_button, reset_button])])  # fmt: skip
    picker = W.HBox(thumbs, layout=W.Layout(flex_flow="row wrap", max_width="40em"))
    note = W.HTML(
        f"<small>The authors' code adds each vector once: the <b>s = {AUTHORS_SCALE:g}</b> "
        "button by each slider sets that scale; with every s at 0 the face is the model's "
        "reconstruction.</small>"
    )
    right = W.VBox([W.HTML("Face (held out; its code is μ(x) of the encoder):"), picker,
                    *(W.HBox([sliders[n], paper[n]]) for n in names), note])  # fmt: skip
    box = W.HBox([left, right], layout=W.Layout(flex_flow="row wrap"))
    # For tests and for readers who want to script it: the parts, by name.
    box.parts = {"image": image, "original": original, "sliders": sliders, "paper": paper,
                 "faces": face_buttons, "switch": switch, "random": random_button,
                 "reset": reset_button, "state": state}  # fmt: skip
    return box
