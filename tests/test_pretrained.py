"""The shipped models (vaegan_lite/weights/): they load safely, decode, judge, are documented."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from vaegan_lite.attributes import (
    attribute_success,
    attribute_vectors,
    bar_summary,
    edit_rules,
    generator_edit_success,
    held_out_faces,
    held_out_indices,
    labelled_images,
)
from vaegan_lite.classifier import accuracy
from vaegan_lite.config import TrainConfig
from vaegan_lite.data import SyntheticFaces
from vaegan_lite.shipped import (
    CLASSIFIER_64,
    CLASSIFIERS,
    MODELS,
    NAMES,
    SHIPPED_NETWORKS,
    TABLE1,
    WEIGHTS,
    PretrainedError,
    pretrained,
    provenance,
    recipe,
    save_pretrained,
    sha256,
    shipped_for,
)

PROVENANCE_KEYS = {"name", "file", "sha256", "bytes", "config", "command", "package_version",
                   "git_commit", "training_seconds", "machine", "storage"}  # fmt: skip


@pytest.fixture(scope="module")
def models():
    return {name: pretrained(name) for name in NAMES}


def test_the_two_models_fit_in_24_mb():
    total = sum((WEIGHTS / f"{n}.pt").stat().st_size for n in MODELS)
    assert total <= 24e6, f"the shipped VAE/GAN and VAE take {total / 1e6:.1f} MB"
    for name in CLASSIFIERS:  # the judges stay small beside them
        assert (WEIGHTS / f"{name}.pt").stat().st_size <= 2 * 2**20, name


@pytest.mark.parametrize("name", NAMES)
def test_provenance_is_complete(name):
    p = provenance(name)
    assert PROVENANCE_KEYS <= set(p), PROVENANCE_KEYS - set(p)
    assert p["name"] == name and len(p["sha256"]) == 64
    assert p["bytes"] == (WEIGHTS / p["file"]).stat().st_size
    assert "make pretrained" in p["command"] or "tools/train_pretrained.py" in p["command"]
    assert p["machine"]["cores"] >= 1 and p["training_seconds"] > 0
    if name not in CLASSIFIERS:  # the recipe in the package is what the weights were trained with
        # (through from_dict: settings added to TrainConfig later take their defaults)
        if p.get("recipe") == "gpu":
            c = p["config"]
            want = recipe(name, "cuda", steps=c["steps"], faces=c["dataset_size"])
            assert p["machine"]["gpu"] and f"--steps {p['config']['steps']}" in p["command"]
        else:
            want = recipe(name)
        assert TrainConfig.from_dict(p["config"]) == want
        assert p["training_steps"] == p["config"]["steps"]


def test_table1_models_are_small_and_stored_as_int8():
    for name in TABLE1:
        assert (WEIGHTS / f"{name}.pt").stat().st_size <= 2 * 2**20, name
        blob = torch.load(WEIGHTS / f"{name}.pt", weights_only=True)
        assert torch.int8 in {v.dtype for v in blob["state_dict"].values()}
        assert not any(k.startswith("dis.") for k in blob["state_dict"])  # the critic stays home


@pytest.mark.parametrize("name", list(TABLE1))
def test_table1_models_are_found_by_the_config_chapter_7_trains(name, models):
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import TABLE1_ROWS, config_for, row_settings

    assert TABLE1[name] in TABLE1_ROWS
    model, settings = row_settings(TABLE1[name], "cpu")
    cfg = config_for(get_preset("cpu"), model, seed=0, **settings)  # as chapter 7 builds it
    assert shipped_for(cfg) == name
    assert shipped_for(config_for(get_preset("cpu"), model, seed=1, **settings)) is None
    x, _, _ = held_out_faces(models[name], 64)
    with torch.no_grad():
        recon = models[name].reconstruct(x)
        samples = models[name].sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(recon).all() and torch.isfinite(samples).all()
    # Trained: AVAE's G(mu(x)) follows the faces better than the mean face does. Not BiGAN's (at
    # this size it draws a face, not x's) nor the L^a_Z rows' (at this seed their G drifts from the
    # codes): results chapter 7's table reports, not faults.
    if name == "table1-avae-b":
        assert (recon - x).pow(2).mean() < (x - x.mean(0)).pow(2).mean()


def test_load_or_train_reads_a_shipped_model_only_for_a_fresh_run(tmp_path, monkeypatch, capsys):
    from vaegan_lite.book.runs import get_preset, load_or_train
    from vaegan_lite.config import config_for, row_settings

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    preset = get_preset("cpu")
    model, settings = row_settings(TABLE1["table1-avae-b"], "cpu")
    cfg = config_for(preset, model, seed=0, **settings)
    run = load_or_train("avae", cfg, preset)
    assert run.steps_run == 0 and run.model.provenance["name"] == "table1-avae-b"
    assert "read the shipped model 'table1-avae-b'" in capsys.readouterr().out
    assert not (tmp_path / "cpu" / "avae").exists()  # nothing written
    # Asked to train, or with a run folder already there, it trains (train itself is stubbed).
    import vaegan_lite.book.runs as runs

    calls = []
    monkeypatch.setattr(runs, "train", lambda cfg, folder, **kw: calls.append(folder) or "trained")
    monkeypatch.setenv("VAEGAN_TRAIN_SHIPPED", "1")
    assert load_or_train("avae", cfg, preset) == "trained"
    monkeypatch.delenv("VAEGAN_TRAIN_SHIPPED")
    (tmp_path / "cpu" / "resumed").mkdir(parents=True)
    assert load_or_train("resumed", cfg, preset) == "trained"
    assert calls == [tmp_path / "cpu" / "avae", tmp_path / "cpu" / "resumed"]
    # Handed the images it was trained on (chapter 7 hands them in), it is read; handed others,
    # the model asked for is trained on them, not read as if it were theirs.
    from vaegan_lite.data import training_tensors

    own = training_tensors(cfg, False)
    assert load_or_train("avae", cfg, preset, data=lambda: own).steps_run == 0
    assert "read the shipped model 'table1-avae-b'" in capsys.readouterr().out
    other = (own[0].flip(0), own[1].flip(0))  # the same faces in another order
    assert load_or_train("avae", cfg, preset, data=other) == "trained"
    assert calls[-1] == tmp_path / "cpu" / "avae" and "shipped" not in capsys.readouterr().out
    # Handed what is not images, train (stubbed here) is the one to say so, not a fingerprint.
    arrays = (own[0].numpy(), own[1].numpy())
    assert load_or_train("avae", cfg, preset, data=arrays) == "trained"
    assert load_or_train("avae", cfg, preset, data=own[0]) == "trained"


def test_a_damaged_shipped_record_is_one_line_naming_it_when_a_config_is_looked_up(tmp_path):
    """shipped_for reads every record on each fresh load_or_train: a damaged one was a raw
    JSONDecodeError or KeyError."""
    cfg = TrainConfig()
    for text, says in [("{", "not a readable provenance file"),
                       (json.dumps({**provenance("table1-vae"), "config": {"model": 3}}),
                        "its config is not valid")]:  # fmt: skip
        (tmp_path / "table1-vae.json").write_text(text)
        with pytest.raises(PretrainedError) as e:
            shipped_for(cfg, tmp_path)
        assert str(e.value).startswith(f"{tmp_path / 'table1-vae.json'}: ") and says in str(e.value)
        assert "\n" not in str(e.value)
    (tmp_path / "table1-vae.json").unlink()
    assert shipped_for(cfg, tmp_path) is None


def test_a_shipped_model_says_what_it_was_trained_on():
    from vaegan_lite.book.runs import trained_on

    assert trained_on({"cores": 2, "cpu": "AMD EPYC"}) == "2 CPU cores"
    assert trained_on({"cores": 16, "gpu": "Tesla T4", "cuda": "13.0"}) == "one Tesla T4"
    assert trained_on({}) == "a machine not recorded"  # a results file without its machine


def test_a_run_meant_to_fail_that_stops_is_read_back_at_its_last_good_step(
    tmp_path, monkeypatch, capsys
):
    """Chapter 4's failing run may diverge in fp16 (a T4): with may_diverge, load_or_train says
    so in a line and returns the last checkpoint's model and history; without, it raises."""
    import dataclasses

    import vaegan_lite.book.runs as runs
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import config_for
    from vaegan_lite.train import TrainingDiverged

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    monkeypatch.setenv("VAEGAN_TRAIN_SHIPPED", "1")
    preset = get_preset("smoke")
    cfg = dataclasses.replace(config_for(preset, "vaegan"), steps=4, log_every=1)
    real_train = runs.train

    def diverging(cfg, folder, **kw):  # 2 good steps saved, then the overflow
        real_train(dataclasses.replace(cfg, steps=2), folder, **kw)
        raise TrainingDiverged("training diverged: 20 steps in a row had a NaN/Inf loss")

    monkeypatch.setattr(runs, "train", diverging)
    with pytest.raises(TrainingDiverged):
        runs.load_or_train("plain", cfg, preset)
    run = runs.load_or_train("failing", cfg, preset, may_diverge=True)
    assert "failing: training diverged: 20 steps" in capsys.readouterr().out
    assert run.history["step"] == [1.0, 2.0] and run.steps_run == 0 and run.config == cfg
    assert not run.model.training and run.model.step == 2


def test_load_or_train_at_gpu_says_how_long_a_new_run_takes_here_before_it_trains(
    tmp_path, monkeypatch, capsys
):
    """A gpu run trains for hours on a T4: the cell says so, timed on this machine, before the
    training starts; a run already there is resumed or read back without a timing."""
    import vaegan_lite.book.runs as runs
    from vaegan_lite import bench
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import config_for

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    monkeypatch.delenv("VAEGAN_STEPS", raising=False)
    events = []
    monkeypatch.setattr(bench, "seconds_per_step",
                        lambda cfg, steps, warmup: events.append("timed") or 0.2)  # fmt: skip
    monkeypatch.setattr(runs, "train", lambda cfg, folder, **kw: events.append("trained"))
    monkeypatch.setattr(runs, "training_tensors", lambda cfg, progress: None)  # no CelebA here
    preset = get_preset("gpu", data="celeba")
    cfg = config_for(preset, "vae")
    runs.load_or_train("vae", cfg, preset)
    said = capsys.readouterr().out
    assert events == ["timed", "trained"]
    hours = cfg.steps * 0.2 / 3600
    assert f"{cfg.steps:,} steps" in said and f"about {hours:.1f} h of training here" in said
    (tmp_path / "gpu" / "gan").mkdir(parents=True)  # begun before: resumed, not timed again
    runs.load_or_train("gan", config_for(preset, "gan"), preset)
    assert events == ["timed", "trained", "trained"]
    assert "training here" not in capsys.readouterr().out
    # a conditional model is timed as its unconditional twin (bench draws no attributes); a
    # plan's run (timed=False) is not timed at all: the plan said how long it takes
    timed_cfgs = []
    monkeypatch.setattr(bench, "seconds_per_step",
                        lambda cfg, steps, warmup: timed_cfgs.append(cfg) or 0.2)  # fmt: skip
    runs.load_or_train("cond", config_for(preset, "vaegan", cond_dim=17), preset)
    runs.load_or_train("planned", config_for(preset, "vaegan"), preset, timed=False)
    assert [c.model.cond_dim for c in timed_cfgs] == [0]
    assert [runs.duration(s) for s in (40, 720, 12600)] == ["40 s", "12 min", "3.5 h"]


def test_gpu_recipe_fits_the_size_limits():
    """Table 1's networks at GPU_WIDTH: both autoencoders as int8 within 24 MB, the widget's
    decoder as float32 ONNX within 8 MB; gamma keeps the cpu preset's gamma x Dis_l features."""
    from vaegan_lite.models import VAEGAN
    from vaegan_lite.shipped import GPU_WIDTH, gamma_for

    cfg = recipe("synthetic-vaegan", "cuda", steps=10000)
    assert cfg.model.image_size == 64 and cfg.model.enc_fc_dim == 2048 and cfg.batch_size == 64
    assert cfg.model.width == GPU_WIDTH and cfg.precision == "auto" and cfg.channels_last
    assert cfg.lr_decay_steps == 2000 and cfg.steps == 10000
    assert recipe("synthetic-vae", "cuda", steps=10000).model == cfg.model.__class__(
        **{**cfg.model.__dict__, "model": "vae"})
    model = VAEGAN(cfg.model)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 2 * count(model.enc) + 2 * count(model.dec) <= 24e6  # int8: a byte a weight
    assert 4 * count(model.dec) <= 8e6  # float32 ONNX
    assert gamma_for(32, 0.25) == pytest.approx(0.1) and gamma_for(64, 0.25) == pytest.approx(0.025)
    assert cfg.step.gamma == pytest.approx(gamma_for(64, GPU_WIDTH))
    with pytest.raises(PretrainedError, match="device 'tpu'"):
        recipe("synthetic-vae", "tpu")
    # chapter 7's Table 1 models have a cpu recipe only: any other device is refused, not ignored
    with pytest.raises(PretrainedError, match="device 'banana'"):
        recipe("table1-bigan", "banana")
    with pytest.raises(PretrainedError, match="'table1-bigan' has only a cpu recipe"):
        recipe("table1-bigan", "cuda")


def test_a_recipe_is_the_same_whatever_the_environment_says(monkeypatch):
    """The config a shipped model was trained with does not change with $VAEGAN_STEPS (which
    cuts a preset short) or $VAEGAN_PRESET."""
    names = ("synthetic-vaegan", "table1-vae")
    plain = [recipe(n) for n in names] + [recipe("synthetic-vae", "cuda", steps=7)]
    monkeypatch.setenv("VAEGAN_STEPS", "5")
    monkeypatch.setenv("VAEGAN_PRESET", "smoke")
    assert [recipe(n) for n in names] + [recipe("synthetic-vae", "cuda", steps=7)] == plain
    assert plain[0].steps > 5 and plain[1].steps > 5


def test_gpu_recipe_steps_fit_the_budget():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from train_pretrained import steps_for

    assert steps_for(360, [0.01, 0.005]) == 21500  # 0.9 * 360 / 0.015 = 21600, down to 500s
    assert steps_for(1, [0.5, 0.5]) == 500  # never less than one unit


def test_make_pretrained_trains_a_recipe_on_its_own_faces(tmp_path):
    """The CPU recipes (make pretrained) hand train() no data: the recipe's own faces are drawn,
    once train has checked the run folder, and the model is stored with its config."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import train_pretrained as tool

    from vaegan_lite.config import PRESETS, config_for

    cfg = config_for(PRESETS["smoke"], "vae", steps=2)
    tool.train_model("synthetic-vae", tmp_path / "runs", tmp_path / "w", False, cfg)
    model = pretrained("synthetic-vae", weights=tmp_path / "w")
    assert model.train_config == cfg and model.provenance["training_steps"] == 2


def test_gpu_training_logs_lines_a_time_limit_cannot_lose(capsys, monkeypatch):
    """Without a bar, the losses go to the log as lines: the first log's, then one per interval,
    and the last step's, so a run its time limit stops still shows how far it got."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import train_pretrained as tool

    clock = iter([0.0, 1.0, 5.0, 25.0, 26.0])  # the start, then one reading per call
    monkeypatch.setattr(tool.time, "perf_counter", lambda: next(clock))
    log = tool.log_lines("m", total=40, every_s=20.0)
    history = {"step": [], "L_prior": [], "L_GAN": [], "D(x)": []}
    for step, prior in [(10, 3.0), (20, 2.0), (30, 1.0), (40, 0.5)]:
        history["step"].append(step)
        history["L_prior"].append(prior)
        history["L_GAN"].append(prior / 2)
        history["D(x)"].append(0.5)
        log(step, None, history)
    assert capsys.readouterr().out.splitlines() == [
        "m step 10/40: L_prior 3, L_GAN 1.5, D(x) 0.5 (1 s)",
        "m step 30/40: L_prior 1, L_GAN 0.5, D(x) 0.5 (25 s)",
        "m step 40/40: L_prior 0.5, L_GAN 0.25, D(x) 0.5 (26 s)",
    ]


def test_the_prepared_gpu_run_writes_int8_models_with_provenance(tmp_path, device_tool_losses):
    """tools/gpu_pretrained.sh, the device call of the GPU recipe, on this CPU with a few steps:
    data once, train both, int8, provenance naming the steps, the judge; and all of it in files
    the device tool brings back. --device cuda without a GPU says so in one line."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OUT": str(out), "RUNS": str(tmp_path / "r"), "JUDGE_FACES": "40",
           "DEVICE": "cuda-recipe-on-cpu", "TRAIN_ARGS": "--steps 1 --faces 256",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    r = subprocess.run(["bash", "tools/gpu_pretrained.sh", "0" * 40, "0"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert not device_tool_losses(out)
    for name in ("synthetic-vaegan", "synthetic-vae"):
        p = json.loads((out / "weights" / f"{name}.json").read_text())
        assert p["recipe"] == "gpu" and p["training_steps"] == 1 and p["git_commit"] == "0" * 40
        assert p["command"] == ("python tools/train_pretrained.py --device cuda --steps 1 --only "
                                f"{name} --faces 256")  # fmt: skip
        assert p["storage"].startswith("int8")
        model = pretrained(name, weights=out / "weights")
        assert model.train_config == recipe(name, "cuda", steps=1, faces=256)
    with tarfile.open(out / "report.tar.gz") as tar:
        names = {Path(n).name for n in tar.getnames()}
        bar = json.load(tar.extractfile("./bar-synthetic-vaegan.json"))
        log = tar.extractfile("./train.log").read().decode()
    assert "synthetic-vaegan step 1/1: L_prior " in log and ", L_GAN " in log
    assert "synthetic-vae step 1/1: L_prior " in log
    assert {"train.log", "gpu.txt", "samples-synthetic-vae.png", "bar-synthetic-vae.txt"} <= names
    assert bar["faces"] == 40 and "Male" in bar["scales"]["1"]["attributes"]
    # the file that ships was judged (int8), not the run's float32 checkpoint
    assert bar["sha256"] == sha256(out / "weights" / "synthetic-vaegan.pt")
    if not torch.cuda.is_available():
        cmd = [sys.executable, "tools/train_pretrained.py", "--only", "synthetic-vae", "--device",
               "cuda", "--weights", str(tmp_path / "w")]  # fmt: skip
        r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
        assert r.returncode == 1
        assert r.stderr.strip() == "train_pretrained: --device cuda: no CUDA GPU here"
        assert not (tmp_path / "w").exists()


def test_a_network_that_is_not_shipped_refuses_to_run(models):
    """The VAE/GAN's Dis is not stored: using it is one clear error, not random numbers."""
    model = models["synthetic-vaegan"]
    with pytest.raises(PretrainedError, match=r"'synthetic-vaegan' stores no dis \(only enc, dec"):
        model.dis(torch.zeros(1, 3, 64, 64))
    assert model.reconstruct(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_weights_are_stored_as_float16_or_int8_and_loaded_as_float32(models):
    blob = torch.load(WEIGHTS / "synthetic-vaegan.pt", weights_only=True)
    dtypes = {v.dtype for v in blob["state_dict"].values() if v.is_floating_point()}
    assert dtypes == {torch.float16}
    if "int8_scales" in blob:  # the GPU-trained models: int8 conv and linear weights
        assert any(v.dtype == torch.int8 for v in blob["state_dict"].values())
    assert {p.dtype for p in models["synthetic-vaegan"].parameters()} == {torch.float32}


def test_int8_storage_rounds_each_weight_to_within_half_its_slices_step():
    """quantize/dequantize, as the Table 1 models are shipped (and the GPU-trained ones will be):
    one scale per output slice, so a slice of small weights keeps its precision."""
    from vaegan_lite.shipped import dequantize, quantize

    g = torch.Generator().manual_seed(0)
    size = torch.logspace(-3, 1, 8).view(8, 1, 1, 1)  # slices four decades apart
    state = {"w": torch.randn(8, 4, 3, 3, generator=g) * size, "b": torch.randn(8, generator=g),
             "n": torch.tensor(3)}  # fmt: skip
    stored, scales = quantize(state)
    assert stored["w"].dtype == torch.int8 and set(scales) == {"w"}
    assert stored["b"] is state["b"] and stored["n"] is state["n"]  # 1-dim and integer: as is
    assert (stored["w"].abs().flatten(1).amax(1) == 127).all()  # each slice's largest: +-127
    back = dequantize(stored, scales)
    err = (back["w"] - state["w"]).abs().flatten(1).amax(1)
    assert (err <= scales["w"] * 0.5001).all() and (scales["w"] < size.flatten() * 0.05).all()
    blob = torch.load(WEIGHTS / "table1-avae-b.pt", weights_only=True)  # a shipped int8 model
    assert blob["int8_scales"] and all(blob["state_dict"][k].dtype == torch.int8
                                       for k in blob["int8_scales"])  # fmt: skip


@pytest.mark.parametrize("name", list(MODELS))
def test_models_decode(models, name):
    model = models[name]
    assert not model.training
    x, _, _ = held_out_faces(model, 8)
    assert x.shape == (8, 3, model.image_size, model.image_size)
    with torch.no_grad():
        recon = model.reconstruct(x)
        samples = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert recon.shape == x.shape and samples.shape == (4, *x.shape[1:])
    assert torch.isfinite(recon).all() and recon.abs().max() <= 1
    # A trained autoencoder: its reconstructions are closer to the faces than the mean face, the
    # VAE's by far; the VAE/GAN's less so, as it is not trained on pixels (measured on 400 held-out
    # faces: VAE 0.10, VAE/GAN 0.34 of the mean face's squared error).
    err = (recon - x).pow(2).mean()
    bound = 0.25 if name == "synthetic-vae" else 0.75
    assert err < bound * (x - x.mean(0)).pow(2).mean()


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_reads_held_out_faces(models, name):
    judge = models[name]
    size = judge.config.image_size
    assert size == CLASSIFIERS[name][0].image_size
    faces = SyntheticFaces(600, size, seed=7)  # a data seed neither it nor the models trained on
    images, attrs = faces.render(range(400, 600))
    x = images.float() / 127.5 - 1
    acc = (judge.predict(x) == attrs.bool()).float().mean(0)
    names = judge.attr_names
    for name in ("Eyeglasses", "Bangs", "Wearing_Hat", "Male", "Mustache", "Smiling"):
        assert acc[names.index(name)] >= 0.85, (name, float(acc[names.index(name)]))
    assert judge.features(x[:5]).shape == (5, judge.config.feature_dim)
    assert judge.features(torch.nn.functional.interpolate(x[:2], size=2 * size)).shape[0] == 2


def test_classifier_architecture_follows_image_size():
    from vaegan_lite.classifier import AttributeClassifier, ClassifierConfig

    small, large = (AttributeClassifier(ClassifierConfig(image_size=s)) for s in (32, 64))
    assert [c[0].out_channels for c in small.convs] == [32, 64, 128]
    assert [c[0].out_channels for c in large.convs] == [16, 32, 64, 128]  # one conv more, 4x4 out
    assert large(torch.zeros(2, 3, 64, 64)).shape == (2, 17)
    with pytest.raises(ValueError, match="image_size"):
        AttributeClassifier(ClassifierConfig(image_size=48))


def test_loading_a_shipped_model_leaves_the_callers_random_numbers_alone():
    """Its nets are built (randomly initialised) before the weights overwrite them: that must not
    draw from the global generator, or the same seed gives other draws after a load."""
    torch.manual_seed(0)
    want = torch.rand(3)
    for name in ("synthetic-vae", "attribute-classifier"):
        torch.manual_seed(0)
        pretrained(name)
        assert torch.equal(torch.rand(3), want), name


def test_a_changed_file_is_refused(tmp_path: Path):
    for name in ("synthetic-vae",):
        for suffix in (".pt", ".json"):
            shutil.copy(WEIGHTS / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    pretrained("synthetic-vae", weights=tmp_path)  # an exact copy loads
    data = bytearray((tmp_path / "synthetic-vae.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "synthetic-vae.pt").write_bytes(bytes(data))
    with pytest.raises(PretrainedError, match="sha256"):
        pretrained("synthetic-vae", weights=tmp_path)
    with pytest.raises(PretrainedError, match="unknown"):
        pretrained("celeba-vaegan")
    (tmp_path / "synthetic-vae.json").write_text('{"file": "synthetic-vae.pt", ')  # cut short
    with pytest.raises(PretrainedError, match=r"synthetic-vae.json: not a readable provenance"):
        pretrained("synthetic-vae", weights=tmp_path)  # was a bare JSONDecodeError
    (tmp_path / "synthetic-vae.json").unlink()
    with pytest.raises(PretrainedError, match=r"no provenance file; .*reinstall vaegan-lite"):
        pretrained("synthetic-vae", weights=tmp_path)  # not only `make pretrained`, for a checkout


def _rewritten_pt(record: dict, folder: Path, change) -> dict:
    """The record of its .pt rewritten as ``change(bytes)``, its sha256 made to match."""
    pt = folder / record["file"]
    pt.write_bytes(change(pt.read_bytes()))
    return {**record, "sha256": sha256(pt)}


def _trimmed_weight(data: bytes) -> bytes:
    blob = torch.load(io.BytesIO(data), weights_only=True)
    k = next(iter(blob["state_dict"]))
    blob["state_dict"][k] = blob["state_dict"][k][:-1]  # load_state_dict: a multi-line error
    out = io.BytesIO()
    torch.save(blob, out)
    return out.getvalue()


@pytest.mark.parametrize("damage, names", [
    pytest.param(lambda r, f: {k: v for k, v in r.items() if k != "file"}, ".json", id="no-file"),
    pytest.param(lambda r, f: {k: v for k, v in r.items() if k != "sha256"}, ".json", id="no-sha"),
    pytest.param(lambda r, f: [1, 2], ".json", id="a-list"),
    pytest.param(lambda r, f: {**r, "file": None}, ".json", id="file-null"),
    pytest.param(lambda r, f: {**r, "sha256": 5}, ".json", id="sha-int"),
    pytest.param(lambda r, f: {**r, "sha256": r["sha256"][:63] + "g"}, ".json", id="sha-not-hex"),
    pytest.param(lambda r, f: {**r, "file": "../w/x.pt"}, ".json", id="file-outside"),
    pytest.param(lambda r, f: {**r, "file": "/etc/passwd"}, ".json", id="file-absolute"),
    pytest.param(lambda r, f: {**r, "file": ".."}, ".json", id="file-dotdot"),
    pytest.param(lambda r, f: _rewritten_pt(r, f, lambda b: b[: len(b) // 2]), ".pt",
                 id="pt-truncated"),
    pytest.param(lambda r, f: _rewritten_pt(r, f, _trimmed_weight), ".pt", id="pt-wrong-shape"),
])  # fmt: skip
def test_a_damaged_or_hostile_provenance_is_refused_in_one_line(damage, names, tmp_path: Path):
    """Each gave a bare KeyError, TypeError or torch's multi-line RuntimeError, and a "file"
    reaching out of the folder was read (../w/x.pt, a good copy, even loaded)."""
    name = "attribute-classifier"  # the smallest shipped model
    folder = tmp_path / "weights"
    folder.mkdir()
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS / f"{name}{suffix}", folder / f"{name}{suffix}")
    (tmp_path / "w").mkdir()
    shutil.copy(WEIGHTS / f"{name}.pt", tmp_path / "w" / "x.pt")
    record = json.loads((folder / f"{name}.json").read_text())
    (folder / f"{name}.json").write_text(json.dumps(damage(record, folder)))
    with pytest.raises(PretrainedError) as e:
        pretrained(name, weights=folder)
    says = str(e.value)
    assert says.startswith(f"{folder / name}{names}: ") and "\n" not in says, says


def test_a_failed_save_leaves_the_shipped_pair_as_it_was(models, tmp_path: Path):
    """A record that cannot be written (here an extra that is no JSON) replaced the .pt and kept
    the old .json, which then called the new weights corrupt."""
    model, config = models["synthetic-vae"], provenance("synthetic-vae")["config"]
    save_pretrained("synthetic-vae", model, config, SHIPPED_NETWORKS, {}, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(TypeError, match="not JSON serializable"):
        save_pretrained("synthetic-vae", model, config, SHIPPED_NETWORKS, {"bad": object()},
                        tmp_path, "int8")  # fmt: skip
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporaries
    assert pretrained("synthetic-vae", weights=tmp_path) is not None


def test_int8_storage_round_trips_within_half_a_step(models, tmp_path: Path):
    # The shipped weights, jittered: off any int8 grid even when the shipped file is int8 itself.
    model = copy.deepcopy(models["synthetic-vae"])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for w in model.parameters():
            w.add_(torch.randn(w.shape, generator=g) * 1e-3 * w.abs().mean())
    config = provenance("synthetic-vae")["config"]
    f16 = save_pretrained("synthetic-vae", model, config, SHIPPED_NETWORKS, {}, tmp_path / "f16")
    record = save_pretrained("synthetic-vae", model, config, SHIPPED_NETWORKS, {}, tmp_path, "int8")
    assert record["storage"].startswith("int8") and f16["storage"].startswith("float16")
    assert record["bytes"] < 0.6 * f16["bytes"]
    blob = torch.load(tmp_path / "synthetic-vae.pt", weights_only=True)
    scales = blob["int8_scales"]
    assert scales and all(blob["state_dict"][k].dtype == torch.int8 for k in scales)
    loaded = pretrained("synthetic-vae", weights=tmp_path)
    was, now = model.state_dict(), loaded.state_dict()
    for k, s in scales.items():  # the float weights, each rounded to its slice's grid
        step = s.view(-1, *[1] * (was[k].dim() - 1))
        assert (now[k] - was[k]).abs().le(step / 2 + 1e-6).all(), k
        assert (now[k] / step).sub((now[k] / step).round()).abs().max() < 1e-3, k
    x, _, _ = held_out_faces(model, 16)
    with torch.no_grad():
        err = (loaded.reconstruct(x) - model.reconstruct(x)).abs().max()
    assert 0 < err < 0.1, f"int8 moved a reconstructed pixel by {err:.3f} of [-1, 1]"
    with pytest.raises(PretrainedError, match="storage 'int4'"):
        save_pretrained("synthetic-vae", model, config, SHIPPED_NETWORKS, {}, tmp_path, "int4")
    k = next(iter(scales))  # scales that do not fit their weights are refused, not broadcast
    blob["int8_scales"][k] = scales[k][:-1]
    torch.save(blob, tmp_path / "synthetic-vae.pt")
    record["sha256"] = sha256(tmp_path / "synthetic-vae.pt")
    (tmp_path / "synthetic-vae.json").write_text(json.dumps(record))
    with pytest.raises(PretrainedError, match=f"{k}: int8 weights do not fit"):
        pretrained("synthetic-vae", weights=tmp_path)


def test_loading_never_unpickles_code(monkeypatch):
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    pretrained("synthetic-vae")
    assert seen == [True]


def vaegan_edits_judged(models, n_vectors: int, n_faces: int, scale: float) -> dict:
    """attribute_success of the shipped VAE/GAN over every attribute the judge reads reliably:
    vectors from the first n_vectors training faces, added to n_faces held-out faces that could
    carry each attribute, judged at 64x64."""
    model, judge = models["synthetic-vaegan"], models[CLASSIFIER_64]
    cfg = model.train_config
    train = labelled_images(SyntheticFaces(cfg.dataset_size, 64, seed=cfg.data_seed), n_vectors)
    vectors = attribute_vectors(model, train)
    x, y, names = held_out_faces(model, n_faces)
    rules = edit_rules(train[1], names, accuracy(judge, x, y))
    return attribute_success(model, judge, x, y, vectors, rules.reliable, rules, scale=scale)


def test_the_bar_is_within_reach_of_the_generators_own_edit(models):
    """The bar asks nothing this judge cannot see: the generator's own edit (each face drawn
    again with the attribute, everything else the same) meets it, on the held-out faces the
    models are judged on (tools/attribute_bar.py prints its figures at full size)."""
    model, judge = models["synthetic-vaegan"], models[CLASSIFIER_64]
    faces, indices = held_out_indices(model, 400)
    x, y, names = held_out_faces(model, 400)
    cfg = model.train_config
    train_y = SyntheticFaces(cfg.dataset_size, 64, seed=cfg.data_seed).render(range(2000))[1]
    rules = edit_rules(train_y, names, accuracy(judge, x, y))
    results = generator_edit_success(judge, faces, indices, rules.reliable, rules)
    summary = bar_summary(results)
    assert summary["met"] and summary["attributes"] == len(rules.reliable) >= 15, summary
    assert all(r["n"] == int(rules.could_carry(n, y).sum()) for n, r in results.items())


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,  # missing the bar, not any error on the way
    reason="the shipped synthetic-vaegan (recipe: cpu widths at 64x64, 10000 steps, trained on a "
    "CPU) misses the bar; judged over all 17 attributes at scale 1 on 400 held-out faces: added "
    "0.71 on average (least: Brown_Hair 0.14), kept 0.37. Strict: when a model trained on a GPU "
    "meets it, this marker must go.",
)
def test_vaegan_attribute_vectors_work_on_held_out_faces(models):
    """The bar (attributes.BAR), on a sample: averaged over the attributes the judge reads
    reliably, adding a vector makes the attribute appear in >= 90 % of the faces that could carry
    it, the others staying put in >= 90 %, and no attribute is added in fewer than 75 % (the
    chapter has the full-size figures, for the VAE too)."""
    summary = bar_summary(vaegan_edits_judged(models, 2000, 400, scale=1.0))
    # While the marker stands, a model worse than the shipped one (the reason's figures, less a
    # margin for the judge's float rounding on other CPUs) must fail, not pass as "expected"
    # (pytest.fail raises no AssertionError, so the marker does not take it)
    if summary["added_mean"] < 0.65 or summary["kept_mean"] < 0.33:
        pytest.fail(f"the shipped synthetic-vaegan got worse than the figures it shipped with: "
                    f"{summary}")
    assert summary["met"], summary


def test_attribute_bar_tool_reports_what_the_library_measures(models, tmp_path):
    """tools/attribute_bar.py (used to compare candidate recipes) prints attribute_success's
    figures, and refuses a model it cannot judge in one line."""
    root = Path(__file__).resolve().parents[1]

    def tool(*args):
        return subprocess.run([sys.executable, "tools/attribute_bar.py", *args], cwd=root,
                              capture_output=True, text=True, timeout=600)  # fmt: skip

    report = tmp_path / "new" / "bar.json"
    r = tool("synthetic-vaegan", "--faces", "120", "--vector-faces", "500", "--scales", "1,1.5",
             "--json", str(report))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(report.read_text())["vector_faces"] == 500  # its folder made, written whole
    want = vaegan_edits_judged(models, 500, 120, scale=1.5)
    rows = r.stdout.split("scale 1.5:")[1].splitlines()[1 : 1 + len(want)]
    for (name, w), row in zip(want.items(), rows, strict=True):
        assert row.split()[:5] == [name, "added", f"{w['added']:.3f}", "kept",
                                   f"{w['kept']:.3f}"], row  # fmt: skip
    assert "the bar at scale 1 (added_mean 0.9, kept_mean 0.9, added_min 0.75): " in r.stdout
    bad = tool("runs/none/last.pt")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "attribute_bar: runs/none/last.pt: neither a shipped model (synthetic-vaegan, "
        "synthetic-vae) nor a file"
    ]


def test_git_state_finds_the_checkout_from_the_package_and_nothing_outside_one(tmp_path):
    from vaegan_lite.shipped import git_state

    here = git_state()  # the package's own folder, inside this checkout (CI clones one)
    if here["git_commit"] is not None:
        assert len(here["git_commit"]) == 40 and isinstance(here["git_dirty_files"], list)
    assert git_state(tmp_path) == {"git_commit": None, "git_dirty_files": None}
    # a repository that does not hold the package (one it is installed inside, say): git finds
    # it by searching upwards, but its commit is not the code's
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}  # fmt: skip
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "theirs"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, env=env, capture_output=True)
    assert git_state(tmp_path) == {"git_commit": None, "git_dirty_files": None}


def test_the_machine_a_model_was_trained_on_names_its_gpu(monkeypatch):
    """Shipped weights and the chapter-6 results both record the GPU they were trained on."""
    from vaegan_lite.shipped import machine

    assert "gpu" not in machine() or torch.cuda.is_available()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    got = machine()
    assert got["gpu"] == "NVIDIA H200" and got["cuda"] == "13.0" and got["cores"] >= 1
    assert "gpu" not in machine(gpu=False)  # the classifiers train on the CPU beside it


def test_a_shipped_model_is_found_by_a_config_with_settings_added_since(tmp_path):
    """A model trained before a setting was added to TrainConfig is still the one for a config
    that has that setting at its default (as a checkpoint is read)."""
    stored = json.loads((WEIGHTS / "synthetic-vae.json").read_text())
    cfg = TrainConfig.from_dict(stored["config"])
    for key in ("deterministic", "max_nonfinite"):  # as if trained before they existed
        stored["config"].pop(key, None)
    (tmp_path / "synthetic-vae.json").write_text(json.dumps(stored))
    assert shipped_for(cfg, tmp_path) == "synthetic-vae"
    other = TrainConfig.from_dict({**cfg.to_dict(), "deterministic": True})
    assert shipped_for(other, tmp_path) is None


def test_attribute_bar_tool_refuses_bad_output_and_too_few_vector_faces(tmp_path, capsys):
    """--json onto a folder or under a file, and --vector-faces too few to give whole hair-colour
    rules (the generator's edit then raised deep in the library, after minutes of work), fail in
    one line at once."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import attribute_bar as tool

    (tmp_path / "file").write_text("x")
    cases = {("--json", str(tmp_path)): f"--json {tmp_path} is a folder: name a file",
             ("--json", str(tmp_path / "file" / "r.json")): f"{tmp_path / 'file'} is a file",
             ("--vector-faces", "128"): "--vector-faces: must be >= 256"}  # fmt: skip
    for args, says in cases.items():
        assert tool.main(["no-such-model", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("attribute_bar") and says in err and err.count("\n") == 1, err


@pytest.mark.parametrize("args, says", [
    (["--threads", "-1"], "--threads must be >= 0"),
    (["--runs", "README.md"], "--runs README.md is a file, not a folder"),
    (["--weights", "README.md"], "--weights README.md is a file, not a folder"),
    (["--weights", "README.md/w"], "README.md is a file, not a folder"),
    (["--device", "cuda-recipe-on-cpu", "--faces", "0"], "smaller than batch_size"),
    (["--device", "cuda-recipe-on-cpu", "--steps", "-5"], "--steps must be >= 1"),
    (["--device", "cuda-recipe-on-cpu", "--budget-s", "-1"], "--budget-s must be >= 0"),
    (["--device", "cuda-recipe-on-cpu", "--budget-s", "nan"], "--budget-s must be >= 0"),
    (["--device", "cuda", "--only", "web"], "--device cuda trains only synthetic-vaegan"),
])  # fmt: skip
def test_train_pretrained_refuses_bad_arguments_before_any_work(args, says, tmp_path, capsys,
                                                                monkeypatch):  # fmt: skip
    """Each failed only after the data were drawn or the models trained (--weights a file), or
    did something else (a negative --budget-s calibrated, then trained 500 steps)."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "tools"))
    import train_pretrained as tool

    monkeypatch.chdir(root)
    monkeypatch.setattr(tool, "training_tensors", lambda *a, **k: pytest.fail("data drawn"))
    runs = [] if "--runs" in args else ["--runs", str(tmp_path / "runs")]
    weights = [] if "--weights" in args else ["--weights", str(tmp_path / "w")]
    monkeypatch.setattr(sys, "argv", ["train_pretrained", *args, *runs, *weights])
    with pytest.raises(SystemExit) as e:
        tool.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("train_pretrained: ") and says in err, err
    assert err.count("\n") == 1 and not list(tmp_path.iterdir())


def test_the_showcase_shows_the_shipped_pair_and_says_what_they_are(monkeypatch):
    """book.showcase (chapter 4, the opening figure): held-out faces, both models' reconstructions
    and samples, the same on every call; one line from the provenance, naming each model apart
    when they differ."""
    from vaegan_lite.book import showcase
    from vaegan_lite.book.runs import trained_on

    rows = showcase.showcase_rows(3)
    assert list(rows) == ["held-out faces", "VAE: reconstructions", "VAE/GAN: reconstructions",
                          "VAE: samples", "VAE/GAN: samples"]  # fmt: skip
    assert all(r.shape == (3, 3, 64, 64) and r.abs().max() <= 1 for r in rows.values())
    again = showcase.showcase_rows(3)
    assert all(torch.equal(rows[k], again[k]) for k in rows)
    # One line from the provenance: the pair named together where they were made alike.
    p = provenance("synthetic-vaegan")
    steps, width = p["training_steps"], TrainConfig.from_dict(p["config"]).model.width
    monkeypatch.setattr(showcase, "provenance", lambda name: p)
    assert showcase.showcase_line() == (
        f"The shipped VAE and VAE/GAN (chapter 5): 64×64, width {width:g} of Table 1's channels, "
        f"{steps:,} steps on {trained_on(p['machine'])}.")  # fmt: skip
    gpu = {**p, "machine": {"gpu": "NVIDIA H200", "cores": 16}}
    monkeypatch.setattr(showcase, "provenance", lambda name: gpu if "gan" in name else p)
    line = showcase.showcase_line()
    assert line.startswith("The shipped VAE (chapter 5): ") and "; VAE/GAN (chapter 5): " in line
    assert line.endswith("steps on one NVIDIA H200.")


def test_the_top_level_names_what_pretrained_and_train_accept():
    """`for m in vaegan_lite.MODELS: vaegan_lite.pretrained(m)` failed on "vae": MODELS are the
    paper's five models (what --model trains), not shipped ones. Each list is named for what it
    holds, and every name in PRETRAINED loads."""
    import vaegan_lite
    from vaegan_lite.models import model_spec

    assert set(vaegan_lite.MODELS) < set(vaegan_lite.MODEL_NAMES)
    assert all(model_spec(name) for name in vaegan_lite.MODEL_NAMES)
    assert not set(vaegan_lite.MODEL_NAMES) & set(vaegan_lite.PRETRAINED)
    for name in vaegan_lite.PRETRAINED:
        assert isinstance(vaegan_lite.pretrained(name), torch.nn.Module), name


def test_classifier_probabilities_are_eval_mode_in_any_mode():
    """The judge's probabilities use its running statistics and leave them alone, even while
    training."""
    from vaegan_lite.classifier import AttributeClassifier
    torch.manual_seed(0)
    clf = AttributeClassifier()
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        want = torch.sigmoid(clf.eval()(x))
    before = copy.deepcopy(clf.state_dict())
    clf.train()
    got = clf.probabilities(x, batch_size=4)
    assert clf.training and torch.allclose(got, want, atol=1e-6)
    for k, v in clf.state_dict().items():
        assert torch.equal(v, before[k]), k


def _tiny_shippable():
    """A small VAE/GAN and its config as save_pretrained takes them (fast to save and load)."""
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    torch.manual_seed(0)
    mc = ModelConfig(image_size=32, width=0.125, latent_dim=8, enc_fc_dim=32)
    return VAEGAN(mc).eval(), TrainConfig(model=mc).to_dict()


def test_float16_storage_writes_half_precision_and_loads_it_back_as_float32(tmp_path: Path):
    """`make pretrained`'s default storage halves the bytes: every floating tensor of the .pt is
    float16, and pretrained() gives them back as float32, each the weight rounded to float16."""
    model, config = _tiny_shippable()
    record = save_pretrained("synthetic-vae", model, config, SHIPPED_NETWORKS, {}, tmp_path)
    assert record["storage"].startswith("float16")
    blob = torch.load(tmp_path / "synthetic-vae.pt", weights_only=True)
    assert {v.dtype for v in blob["state_dict"].values() if v.is_floating_point()} == {
        torch.float16}
    was, now = model.state_dict(), pretrained("synthetic-vae", weights=tmp_path).state_dict()
    assert set(now) == {k for k in was if k.split(".")[0] in SHIPPED_NETWORKS}
    for k, v in now.items():
        if v.is_floating_point():
            assert v.dtype == torch.float32 and torch.equal(v, was[k].half().float()), k


def test_save_pretrained_renames_the_record_last(tmp_path: Path, monkeypatch):
    """The .json names the .pt's sha256, so it replaces the old one last: a crash between the
    two renames leaves the old record, never a new record that calls the old weights corrupt."""
    from vaegan_lite import files

    model, config = _tiny_shippable()
    renamed, real = [], os.replace

    def replace(src, dst):
        renamed.append(Path(dst).name)
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    save_pretrained("synthetic-vae", model, config, SHIPPED_NETWORKS, {}, tmp_path)
    assert renamed == ["synthetic-vae.pt", "synthetic-vae.json"]
