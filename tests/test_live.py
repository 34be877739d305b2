"""vaegan_lite.book.live: the live training display of chapter 4."""

import pytest
import torch

from vaegan_lite.book import live as L
from vaegan_lite.config import ModelConfig, TrainConfig
from vaegan_lite.data import training_tensors
from vaegan_lite.train import log_line, train


def tiny(model="vaegan", steps=4):
    return TrainConfig(
        model=ModelConfig(model=model, image_size=32, width=0.125, latent_dim=8, enc_fc_dim=32),
        steps=steps, batch_size=8, dataset_size=32, log_every=1,
    )  # fmt: skip


DATA = training_tensors(tiny(), progress=False)  # every tiny() config's: one size, one count


class FakeHandle:
    """Stands in for IPython's DisplayHandle."""

    def __init__(self, shown):
        self.shown = shown

    def update(self, obj):
        self.shown.append(("update", obj))


@pytest.fixture
def fake_display(monkeypatch):
    pytest.importorskip("IPython")
    import IPython.display

    shown = []

    def display(obj, display_id=False):
        shown.append(("display", obj))
        return FakeHandle(shown)

    monkeypatch.setattr(IPython.display, "display", display)
    return shown


def test_outside_a_notebook_it_prints_one_line_per_frame(capsys):
    assert not L.in_notebook()  # pytest is not a Jupyter kernel
    live = L.LiveTraining(every=2)
    run = train(tiny(steps=5), data=DATA, progress=False, callback=live)
    live.finish(run)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["step 1", "step 3", "step 5"]
    assert "L_GAN" in lines[0] and "D(Dec(z))" in lines[0]
    assert live.frames == 3


def test_finish_draws_a_run_that_was_read_back(tmp_path, capsys):
    train(tiny(), tmp_path, data=DATA, progress=False)
    live = L.LiveTraining()
    run = train(tiny(), tmp_path, data=DATA, progress=False, callback=live)  # nothing left to train
    assert live.frames == 0
    live.finish(run)
    assert live.frames == 1 and capsys.readouterr().out.startswith("step 4:")


def test_in_a_notebook_one_image_is_redrawn_in_place(fake_display):
    live = L.LiveTraining(every=2, total=4, notebook=True)
    run = train(tiny(steps=4), data=DATA, progress=False, callback=live)
    live.finish(run)  # step 4 is already shown: no extra frame
    kinds = [k for k, _ in fake_display]
    assert kinds == ["display", "update", "update"]  # steps 1, 3 and the last, 4
    texts = {repr(obj) for _, obj in fake_display}
    assert len(texts) == 1  # the text form never changes: deterministic for nbval
    assert all(obj.data.startswith(b"\x89PNG") for _, obj in fake_display)


@pytest.mark.parametrize("model", ["vae", "gan", "vae_disl"])
def test_renders_every_model(model, tmp_path):
    run = train(tiny(model, steps=2), data=DATA, progress=False)
    png = tmp_path / "frame.png"
    live = L.LiveTraining(save=png, notebook=False)
    live.finish(run)
    assert png.read_bytes().startswith(b"\x89PNG")


def test_the_display_does_not_change_training():
    a = train(tiny(steps=4), data=DATA, progress=False).model.state_dict()
    b = train(tiny(steps=4), data=DATA, progress=False, callback=L.LiveTraining(notebook=False))
    b = b.model
    for k, v in b.state_dict().items():
        assert torch.equal(v, a[k]), k


def test_a_log_line_skips_absent_statistics():
    h = {"step": [1.0, 2.0], "L_llike": [3.0, 4.0], "D(x)": [0.5, float("nan")], "gnorm": [1.0]}
    assert log_line(2, h) == "step 2: L_llike 4"
    assert log_line(2, h, total=10) == "step 2/10: L_llike 4"


def test_the_seed_picks_the_samples_drawn():
    """``seed`` fixes which z_p the frames decode: the same seed draws the same frame, another
    seed other samples."""
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    torch.manual_seed(0)
    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8, enc_fc_dim=32)).eval()
    h = {"step": [1.0], "L_prior": [1.0]}

    def frame(seed):
        return L.LiveTraining(n_samples=4, seed=seed, notebook=False).render(1, model, h)

    assert frame(1) == frame(1) != frame(2)
