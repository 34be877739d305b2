"""The book's presets (vaegan_lite.config): CelebA's fallback, the steps override, precision."""

from __future__ import annotations

import pytest

from vaegan_lite import config
from vaegan_lite.config import SYNTHETIC_FALLBACK_SIZE, config_for, get_preset


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    """No CelebA unless a test writes one; the fallback line not yet said; no steps override."""
    monkeypatch.setenv("VAEGAN_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("VAEGAN_STEPS", raising=False)
    monkeypatch.setattr(config, "_said", set())


def test_gpu_without_celeba_runs_the_synthetic_faces_at_its_size_and_says_so_once(capsys):
    preset = get_preset("gpu")
    assert (preset.data, preset.image_size, preset.width) == ("synthetic", 64, 1.0)
    assert preset.dataset_size == SYNTHETIC_FALLBACK_SIZE
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and "CelebA is not in" in said and "64x64" in said
    get_preset("gpu")
    assert capsys.readouterr().out == ""  # once per process
    cfg = config_for(preset, "vaegan")
    assert cfg.data == "synthetic" and cfg.dataset_size == SYNTHETIC_FALLBACK_SIZE


def test_gpu_with_celeba_reads_it(tmp_path, fake_celeba, capsys):
    fake_celeba(tmp_path / "data")
    assert get_preset("gpu").data == "celeba"
    assert capsys.readouterr().out == ""


def test_steps_override_cuts_a_preset_short(monkeypatch):
    monkeypatch.setenv("VAEGAN_STEPS", "20")
    p = get_preset("cpu")
    assert (p.steps, p.gan_steps, p.log_every, p.checkpoint_every) == (20, 20, 2, 20)
    monkeypatch.setenv("VAEGAN_STEPS", "50")  # logged ten times: the chapters' curves have ends
    assert get_preset("gpu").log_every == 5 and get_preset("smoke").log_every == 2
    monkeypatch.setenv("VAEGAN_STEPS", "2")
    assert get_preset("smoke").log_every == 1
    # A cut run checks that the cells run; the chapters' claims about results wait for a full one.
    assert get_preset("gpu").cut and not get_preset("gpu").trains_fully
    monkeypatch.delenv("VAEGAN_STEPS")
    assert get_preset("cpu").trains_fully and not get_preset("smoke").trains_fully
    monkeypatch.setenv("VAEGAN_STEPS", "zero")
    with pytest.raises(ValueError, match="VAEGAN_STEPS='zero'"):
        get_preset("cpu")


def test_chapters_train_in_auto_precision_and_channels_last_on_gpus():
    cpu = config_for(get_preset("cpu"), "vaegan")
    assert cpu.precision == "fp32" and not cpu.channels_last
    gpu = config_for(get_preset("gpu"), "vaegan")
    assert gpu.precision == "auto" and gpu.channels_last
    assert config_for(get_preset("cpu"), "vaegan", precision="bf16").precision == "bf16"
