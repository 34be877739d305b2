"""The settings (vaegan_lite.config) and the book's presets (book.runs.get_preset): CelebA's
fallback, the steps override, precision."""

from __future__ import annotations

import pytest
import torch

from vaegan_lite import config
from vaegan_lite.book import runs
from vaegan_lite.book.runs import CUT_TEST_SIZE, get_preset
from vaegan_lite.config import PRESETS, SYNTHETIC_FALLBACK_SIZE, config_for


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    """No CelebA unless a test writes one; the fallback line not yet said; no steps override."""
    monkeypatch.setenv("VAEGAN_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("VAEGAN_STEPS", raising=False)
    monkeypatch.setattr(runs, "_said", set())


def test_gpu_without_celeba_runs_the_synthetic_faces_at_its_size_and_says_so_once(capsys):
    preset = get_preset("gpu")
    assert (preset.data, preset.image_size, preset.width) == ("synthetic", 64, 1.0)
    assert preset.dataset_size == SYNTHETIC_FALLBACK_SIZE
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and "CelebA is not in" in said and "64x64" in said
    assert "'Running the book', section 'Data'" in said  # not a path of the repository
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
    # VAE_Dis_l's GAN keeps its share of the steps: 800 to 1,500 at the cpu preset
    assert (p.steps, p.gan_steps, p.log_every, p.checkpoint_every) == (20, 10, 2, 20)
    monkeypatch.setenv("VAEGAN_STEPS", "50")  # logged ten times: the chapters' curves have ends
    assert get_preset("gpu").log_every == 5 and get_preset("smoke").log_every == 2
    monkeypatch.setenv("VAEGAN_STEPS", "2")
    assert get_preset("smoke").log_every == 1
    # A cut run checks that the cells run; the chapters' claims about results wait for a full one.
    assert get_preset("gpu").cut and not get_preset("gpu").trains_fully
    # ... and is measured on fewer held-out faces (the gpu preset's 10,000 take minutes)
    assert get_preset("gpu").test_size == CUT_TEST_SIZE < PRESETS["gpu"].test_size
    assert get_preset("smoke").test_size == PRESETS["smoke"].test_size
    monkeypatch.delenv("VAEGAN_STEPS")
    assert get_preset("cpu").trains_fully and not get_preset("smoke").trains_fully
    monkeypatch.setenv("VAEGAN_STEPS", "zero")
    with pytest.raises(ValueError, match="VAEGAN_STEPS='zero'"):
        get_preset("cpu")


def test_a_bad_preset_name_is_named_where_it_came_from(monkeypatch):
    """get_preset("bogus") said "VAEGAN_PRESET='bogus'", a variable nobody had set."""
    monkeypatch.delenv("VAEGAN_PRESET", raising=False)
    with pytest.raises(ValueError, match=r"^get_preset\('bogus'\): no such preset; choose one of "
                                         "smoke, cpu, gpu$"):  # fmt: skip
        get_preset("bogus")
    monkeypatch.setenv("VAEGAN_PRESET", "Smoke")
    with pytest.raises(ValueError, match=r"^VAEGAN_PRESET='Smoke': no such preset"):
        get_preset()


def test_chapters_train_in_auto_precision_and_channels_last_on_gpus():
    cpu = config_for(get_preset("cpu"), "vaegan")
    assert cpu.precision == "fp32" and not cpu.channels_last
    gpu = config_for(get_preset("gpu"), "vaegan")
    assert gpu.precision == "auto" and gpu.channels_last
    assert config_for(get_preset("cpu"), "vaegan", precision="bf16").precision == "bf16"


@pytest.mark.parametrize(
    "where, setting, value",
    [
        ("step", "gamma", float("nan")),
        ("step", "gamma", -0.1),
        ("step", "w", float("inf")),
        ("step", "w", 1.5),
        ("step", "pixel_sigma", 0.0),
        ("step", "beta", float("nan")),
        ("step", "latent_weight", -1.0),
        ("train", "lr", float("nan")),
        ("train", "lr", 0.0),
        ("train", "rms_alpha", 1.0),
        ("train", "max_nonfinite", 0),
        ("model", "width", 0.0),
        ("model", "width", -1.0),
        ("model", "width", float("nan")),
        ("model", "latent_dim", 0),
    ],
)
def test_settings_must_be_finite_numbers_in_range(where, setting, value):
    """A NaN weight does not fail at once: it poisons every update after it (and the checkpoint
    that is meant to keep the last good state), so it is refused where the config is made."""
    with pytest.raises(ValueError, match=f"^{setting} must be a finite number") as e:
        config_for(get_preset("smoke"), "vaegan", **{setting: value})
    assert "\n" not in str(e.value)
    if where == "model" and setting == "width":
        from vaegan_lite.nets import Encoder

        with pytest.raises(ValueError, match="width must be > 0"):  # not 1-channel layers
            Encoder(image_size=32, width=value)


@pytest.mark.parametrize(
    "setting, value",
    [("steps", 2.5), ("steps", "10"), ("batch_size", 16.5), ("batch_size", 1),
     ("dataset_size", 100.0), ("seed", 0.5), ("latent_dim", 1.5), ("image_size", 64.0),
     ("xi_dim", True), ("disl_pretrain_steps", 1.5)],
)  # fmt: skip
def test_counts_and_sizes_must_be_whole_numbers(setting, value):
    """2.5 steps or a latent of 1.5 units failed deep inside torch; a batch of one image in
    BatchNorm, after the run folder was made."""
    with pytest.raises(ValueError, match=f"^{setting} must be a (whole|finite) number"):
        config_for(get_preset("smoke"), "vaegan", **{setting: value})


@pytest.mark.parametrize(
    "setting, value, allowed",
    [("llike_reduction", "max", "'sum', 'mean'"),
     ("gan_variant", "wasserstein", "'saturating', 'non_saturating'"),
     ("dis_batch", "both", "'separate', 'joint'"), ("latent_loss", "c", "'a', 'b'"),
     ("device", "tpu", "'auto', 'cpu', 'cuda'")],
)  # fmt: skip
def test_text_options_must_be_known(setting, value, allowed):
    """An unknown option was read as another one (max as mean, wasserstein as non-saturating)."""
    with pytest.raises(ValueError, match=f"^{setting} must be one of {allowed}, got '{value}'"):
        config_for(get_preset("smoke"), "avae", **{setting: value})


def test_llike_loss_refuses_an_unknown_reduction_or_sigma():
    from vaegan_lite.losses import llike_loss

    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="unknown reduction 'max'"):
        llike_loss(x, x, reduction="max")
    for sigma in (0.0, -1.0, float("nan")):  # 0 gave inf, and NaN gradients after it
        with pytest.raises(ValueError, match="^sigma must be > 0"):
            llike_loss(x, x, sigma=sigma)


def test_losses_of_half_precision_networks_are_summed_in_fp32():
    """Under bf16/fp16 autocast the networks' outputs are half precision; each loss is summed in
    fp32 (a bf16 sum of 16,384 Dis_l features keeps three significant digits)."""
    from vaegan_lite.losses import decoder_gan_loss, gan_loss, llike_loss, prior_loss

    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(4, 16384, generator=g) for _ in range(2))
    logits = torch.randn(4, 1, generator=g)
    for half in (torch.bfloat16, torch.float16):
        losses = {
            "llike": (llike_loss(a.to(half), b.to(half)), llike_loss(a.to(half).float(),
                                                                    b.to(half).float())),
            "prior": (prior_loss(a.to(half), b.to(half) / 10),
                      prior_loss(a.to(half).float(), (b.to(half) / 10).float())),
            "gan": (gan_loss(logits.to(half), logits.to(half), logits.to(half)),
                    gan_loss(logits.to(half).float(), logits.to(half).float(),
                             logits.to(half).float())),
            "dec": (decoder_gan_loss(logits.to(half), logits.to(half)),
                    decoder_gan_loss(logits.to(half).float(), logits.to(half).float())),
        }  # fmt: skip
        for name, (got, want) in losses.items():
            assert got.dtype == torch.float32, (half, name, got.dtype)
            assert got.item() == pytest.approx(want.item(), rel=1e-6), (half, name)


def test_config_for_takes_a_preset_not_its_name():
    with pytest.raises(TypeError, match=r"^config_for: preset must be a Preset .* str 'smoke'"):
        config_for("smoke", "vae")


def test_nested_configs_must_be_configs():
    with pytest.raises(TypeError, match="^model must be a ModelConfig, got dict"):
        config.TrainConfig(model={"model": "vae"})
    with pytest.raises(TypeError, match="^step must be a StepConfig, got dict"):
        config.TrainConfig(step={})
    assert config.TrainConfig.from_dict({"model": {"model": "vae"}}).model.model == "vae"


def test_vae_disl_needs_steps_after_its_gan():
    with pytest.raises(ValueError, match=r"steps \(2\) must be more .*--gan-steps: 50"):
        config_for(get_preset("smoke"), "vae_disl", steps=2, disl_pretrain_steps=50)
    with pytest.raises(ValueError, match=r"steps \(4\) must be more"):
        config_for(get_preset("smoke"), "vae_disl", steps=4, disl_pretrain_steps=4)
    assert config_for(get_preset("smoke"), "vae_disl", steps=5, disl_pretrain_steps=4).steps == 5


def test_a_preset_cut_short_keeps_a_gan_only_where_it_had_one(monkeypatch):
    monkeypatch.setenv("VAEGAN_STEPS", "20")
    assert get_preset("cpu", gan_steps=0).gan_steps == 0
    assert get_preset("smoke").gan_steps >= 1
    with pytest.raises(ValueError, match=r"steps must be >= 1.*the preset's 0"):
        get_preset("cpu", steps=0)


def test_every_preset_still_builds_every_model(monkeypatch):
    """The new checks pass the book's own configs: vae_disl runs preset.steps VAE steps after
    preset.gan_steps GAN steps, also when $VAEGAN_STEPS cuts both short."""
    for steps in (None, "1", "20"):
        if steps:
            monkeypatch.setenv("VAEGAN_STEPS", steps)
        for name in config.PRESET_NAMES:
            preset = get_preset(name)
            for model in config.MODEL_NAMES:
                assert config_for(preset, model).steps >= 1, (name, model)
            disl = config_for(preset, "vae_disl")
            assert disl.steps - disl.step.disl_pretrain_steps == preset.steps


def test_dis0_gets_the_gamma_that_weighs_its_likelihood_as_vaegans_is_weighed():
    """VAE/GAN_Dis_0's pixel likelihood has 3x32x32 terms over 2 x 0.1^2 at the cpu preset,
    VAE/GAN's Dis_l one 64x4x4 (Table 1's 256 channels at width 0.25, 4 a side) over 2: shared,
    the preset's gamma would weigh the first 300 times as heavily."""
    preset = get_preset("cpu")
    vaegan, dis0 = config_for(preset, "vaegan"), config_for(preset, "vaegan_dis0")
    assert config.llike_weight(vaegan) == pytest.approx(0.1 * 64 * 4 * 4 / 2)
    assert dis0.step.gamma == pytest.approx(0.1 * (64 * 4 * 4) * 0.1**2 / (3 * 32 * 32))
    assert config.llike_weight(dis0) == pytest.approx(config.llike_weight(vaegan))
    shared = config_for(preset, "vaegan_dis0", gamma=0.1)  # asked for: kept
    assert config.llike_weight(shared) == pytest.approx(0.1 * 3 * 32 * 32 / (2 * 0.1**2))
    mean = config_for(preset, "vaegan_dis0", llike_reduction="mean")  # one term each
    assert mean.step.gamma == pytest.approx(0.1 * 0.1**2)
    gpu = config.replace(config.PRESETS["gpu"], data="synthetic", dataset_size=1000)
    # 256x8x8 features of Dis_l against 3x64x64 pixels, at the gpu preset's gamma
    assert config_for(gpu, "vaegan_dis0").step.gamma == pytest.approx(6e-3 * 16384 * 0.01 / 12288)
    authors = config_for(preset, "vaegan_dis0", w=1e-6)  # w replaces gamma: nothing to balance
    assert authors.step.gamma == preset.gamma
    with pytest.raises(ValueError, match="w weighs L_llike"):
        config.llike_weight(authors)
    with pytest.raises(ValueError, match="not of vae"):
        config.llike_weight(config_for(preset, "vae"))


def test_dis_l_features_counts_what_the_discriminator_returns():
    from vaegan_lite.nets import Discriminator, dis_l_features

    for size, width, layer in ((32, 0.25, 4), (64, 1.0, 4), (64, 0.5, 2), (128, 0.125, 5)):
        dis = Discriminator(size, width, 3, layer).eval()
        feats = dis(torch.zeros(1, 3, size, size))[1]
        assert dis_l_features(size, width, 3, layer) == feats.numel()


def test_cut_runs_and_the_synthetic_stand_in_keep_runs_of_their_own(monkeypatch, tmp_path):
    """A quick look ($VAEGAN_STEPS) and the synthetic stand-in for CelebA train into folders of
    their own: the full-length run after a quick look, or the CelebA run once the data is there,
    starts afresh instead of meeting a run of other settings (which train() would refuse)."""
    from vaegan_lite.book.runs import runs_dir

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    monkeypatch.setenv("VAEGAN_DATA", str(tmp_path / "no-data"))
    monkeypatch.delenv("VAEGAN_STEPS", raising=False)
    assert runs_dir(get_preset("cpu")) == tmp_path / "cpu"
    assert runs_dir(get_preset("gpu")) == tmp_path / "gpu" / "synthetic"
    monkeypatch.setenv("VAEGAN_STEPS", "20")
    assert runs_dir(get_preset("cpu")) == tmp_path / "cpu" / "steps-20"
    assert runs_dir(get_preset("gpu")) == tmp_path / "gpu" / "steps-20" / "synthetic"
    assert runs_dir(get_preset("gpu", data="celeba")) == tmp_path / "gpu" / "steps-20"


@pytest.mark.parametrize(
    "setting, value",
    [("flip", "no"), ("channels_last", 1), ("compile", "False"), ("deterministic", None),
     ("dis_sees_recon", "no"), ("equilibrium", 0), ("fast", "yes")],
)  # fmt: skip
def test_switches_must_be_true_or_false(setting, value):
    """flip='no' was saved as "no" in config.json and read as True: the images were flipped."""
    with pytest.raises(ValueError, match=f"^{setting} must be True or False, got {value!r}$"):
        config_for(get_preset("smoke"), "vaegan", **{setting: value})


def test_every_bool_field_is_checked():
    """The check reads the fields' declared types: a new switch is checked without a new line."""
    switches = 0
    for kind in (config.TrainConfig, config.StepConfig, config.ModelConfig):
        for f in config.dataclasses.fields(kind):
            if f.type == "bool":
                switches += 1
                with pytest.raises(ValueError, match=f"^{f.name} must be True or False"):
                    kind(**{f.name: "no"})
                assert getattr(kind(**{f.name: True}), f.name) is True
    assert switches >= 7  # flip, channels_last, compile, deterministic, dis_sees_recon, ...


@pytest.mark.parametrize("channels", [2, 4])
def test_channels_must_be_ones_the_data_give(channels):
    """channels=2 failed at train time with "cannot turn 3-channel images into 2-channel ones"."""
    with pytest.raises(ValueError, match=f"^channels must be one of 1, 3, got {channels}$"):
        config.ModelConfig(channels=channels)
    for ok in (1, 3):
        assert config.ModelConfig(channels=ok).channels == ok


def test_data_root_must_be_a_path():
    """data_root=5 failed at train time with a TypeError about os.PathLike, naming nothing."""
    import re
    from pathlib import Path

    for bad in (5, ["/data"], b"/data"):
        with pytest.raises(ValueError, match=f"^data_root must be .*, got {re.escape(repr(bad))}$"):
            config.TrainConfig(data="celeba", data_root=bad)
    cfg = config.TrainConfig(data="celeba", data_root=Path("/data"))
    assert cfg.data_root == "/data"  # kept as text: config.json holds it, from_dict gives it back
    assert config.TrainConfig.from_dict(config.json.loads(cfg.to_json())) == cfg
    assert config.TrainConfig(data="celeba").data_root is None


def test_shipped_configs_still_load():
    """The checks pass every config the package ships (each checkpoint's JSON)."""
    import json

    from vaegan_lite.shipped import WEIGHTS

    found = 0
    for path in sorted(WEIGHTS.glob("*.json")):
        meta = json.loads(path.read_text())
        if "step" in meta["config"]:  # a VAE's TrainConfig (the classifiers' configs are not)
            config.TrainConfig.from_dict(meta["config"])
            found += 1
    assert found
