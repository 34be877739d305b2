"""Watch a run while it trains: a ``train(..., callback=...)`` that redraws samples and curves.

    live = LiveTraining(every=100)
    run = train(cfg, out_dir, data=training_tensors(cfg), callback=live)
    live.finish(run)        # the final frame, also when the run was only read back

In a notebook (Jupyter, Colab, the book build) one image is displayed and then redrawn in place
through an IPython display handle: a grid of samples Dec(z_p) from a fixed set of z_p, the losses,
and the discriminator's outputs D(x), D(Dec(z)), D(Dec(Enc(x))). The image's text form never
changes, so a notebook's text outputs stay the same from run to run (nbval). Anywhere else (a
terminal, a script, pytest) it prints one line of numbers per redraw instead and, given ``save``,
writes the image to a PNG file.

Drawing happens between training steps and does not touch the training RNG (the samples use their
own generator, see train.fixed_samples), so a run with the display is bit for bit the run without.
"""

from __future__ import annotations

import io
from pathlib import Path

from torch import nn

from ..files import atomic_path
from ..images import grid
from ..train import DIS_OUTPUTS, LOSSES, Trained, fixed_samples, log_line


def in_notebook() -> bool:
    """True inside a Jupyter kernel (Jupyter, Colab, nbclient), False in a terminal or script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LiveTraining:
    """A training callback: every ``every`` steps, redraw the samples and curves in place.

    every: steps between redraws (None: at every log, i.e. every TrainConfig.log_every steps).
    total: the run's last step, always drawn (None: only what ``every`` asks for).
    n_samples, nrow: size of the sample grid; seed: which fixed z_p are decoded.
    save: also write each frame to this PNG file.
    notebook: force the notebook (True) or terminal (False) behaviour; None: detect it.
    """

    def __init__(
        self,
        every: int | None = None,
        *,
        total: int | None = None,
        n_samples: int = 32,
        nrow: int = 8,
        seed: int = 0,
        save: str | Path | None = None,
        notebook: bool | None = None,
        dpi: int = 80,
    ) -> None:
        self.every, self.total = every, total
        self.n_samples, self.nrow, self.seed = n_samples, nrow, seed
        self.save = Path(save) if save is not None else None
        self.notebook = in_notebook() if notebook is None else notebook
        self.dpi = dpi
        self.frames = 0  # how many times it has drawn
        self._last: int | None = None
        self._handle = None

    def __call__(self, step: int, model: nn.Module, history: dict[str, list[float]]) -> None:
        """train()'s callback, at each log: draw if ``every`` steps have passed or at ``total``."""
        due = self._last is None or self.every is None or step - self._last >= self.every
        if due or step == self.total:
            self.draw(step, model, history)

    def finish(self, run: Trained) -> None:
        """Draw the run's final state unless the last frame already shows it."""
        step = int(run.history["step"][-1]) if run.history.get("step") else 0
        if step != self._last:
            self.draw(step, run.model, run.history)

    def draw(self, step: int, model: nn.Module, history: dict[str, list[float]]) -> None:
        """Draw a frame now: in place in a notebook, else one printed line; saved if ``save``."""
        self._last = step
        self.frames += 1
        if self.notebook or self.save is not None:
            png = self.render(step, model, history)
            if self.save is not None:  # whole frames only, for whoever watches the file
                with atomic_path(self.save) as tmp:
                    tmp.write_bytes(png)
            if self.notebook:
                self._show(png)
        if not self.notebook:
            print(log_line(step, history), flush=True)

    def render(self, step: int, model: nn.Module, history: dict[str, list[float]]) -> bytes:
        """One frame as PNG bytes: samples | losses | D outputs."""
        from matplotlib.figure import Figure  # not pyplot: the inline backend never shows it

        samples = fixed_samples(model, self.n_samples, self.seed)
        # about the book's column wide, so that its type is not shrunk below reading size there
        fig = Figure(figsize=(9.5, 3.2), dpi=self.dpi, layout="constrained")
        ax_img, ax_loss, ax_dis = fig.subplots(1, 3, width_ratios=(1.1, 1, 1))
        if samples.numel():
            image = grid(samples, self.nrow).permute(1, 2, 0).numpy()
            ax_img.imshow(image, interpolation="nearest")
        ax_img.set_axis_off()
        ax_img.set_title(f"samples Dec(z_p), step {step}", fontsize=10)
        steps = history.get("step", [])
        for k in LOSSES:
            if any(v > 0 for v in history.get(k, [])):
                ax_loss.plot(steps, history[k], label=k)
        if ax_loss.lines:
            ax_loss.set_yscale("log")  # L_llike is thousands of nats, L_GAN about one
            ax_loss.legend(fontsize=8)
        ax_loss.set_title("losses", fontsize=10)
        ax_loss.set_xlabel("step")
        for k in DIS_OUTPUTS:
            if k in history:
                ax_dis.plot(steps, history[k], label=k)
        ax_dis.axhline(0.5, color="gray", lw=0.8, ls=":")
        ax_dis.set_ylim(-0.02, 1.02)
        if ax_dis.lines[1:]:
            ax_dis.legend(fontsize=8)
        ax_dis.set_title("discriminator outputs\n(mean over each logging interval)", fontsize=10)
        ax_dis.set_xlabel("step")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def _show(self, png: bytes) -> None:
        from IPython.display import Image, display

        image = Image(data=png, format="png")  # its text form is always the same line
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

