"""The command line contract: train/sample for every model, exact resume, one-line errors."""

import errno
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vaegan_lite.cli as C
import vaegan_lite.train as T
from vaegan_lite import files, load_checkpoint
from vaegan_lite.checkpoint import read_checkpoint
from vaegan_lite.cli import _check_flags_apply, build_parser, command_line, config_from_args, main
from vaegan_lite.config import (
    MODEL_NAMES,
    MODELS,
    PRESETS,
    TABLE1_ROWS,
    ModelConfig,
    TrainConfig,
    config_for,
    reads,
    row_settings,
)
from vaegan_lite.data import training_tensors
from vaegan_lite.images import save_grid

TINY = ["--image-size", "32", "--width", "0.125", "--latent-dim", "16", "--batch-size", "8",
        "--dataset-size", "64", "--no-progress", "--log-every", "2"]  # fmt: skip


def run_train(out, steps, *extra, model="vaegan"):
    argv = ["train", "--model", model, "--data", "synthetic", "--steps", str(steps), "--seed", "3",
            "--device", "cpu", "--out", str(out), *TINY, *extra]  # fmt: skip
    return main(argv)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_and_samples(tmp_path, model):
    out = tmp_path / model
    assert run_train(out, 3, model=model) == 0
    for name in ("last.pt", "config.json", "samples.png"):
        assert (out / name).stat().st_size > 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["model"] == model and cfg["steps"] == 3
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == 3
    png = tmp_path / "grid.png"
    ckpt = str(out / "last.pt")
    assert main(["sample", "--checkpoint", ckpt, "--n", "9", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("model", MODELS)
def test_cli_and_book_give_dis_the_same_batches(model):
    """`train --model gan` trains what the book's config_for("gan") does: joint BatchNorm batches
    for the models that train a GAN on their own (separate ones collapsed, chapter 2)."""
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.cli import build_parser, config_from_args
    from vaegan_lite.config import config_for

    want = "joint" if model in ("gan", "vae_disl") else "separate"
    def parse(*extra):
        return build_parser().parse_args(["train", "--model", model, "--steps", "1", "--out", "r",
                                          *extra])  # fmt: skip

    assert config_from_args(parse()).step.dis_batch == want
    assert config_for(get_preset("cpu"), model).step.dis_batch == want
    assert config_from_args(parse("--dis-batch", "separate")).step.dis_batch == "separate"


def test_resume_is_bitwise_exact(tmp_path, capsys):
    assert run_train(tmp_path / "a", 8) == 0
    assert run_train(tmp_path / "b", 4) == 0
    capsys.readouterr()
    assert run_train(tmp_path / "b", 8) == 0
    said = capsys.readouterr()  # a resume, not a fresh run of 8 steps over the folder
    assert f"resuming {tmp_path / 'b'}/last.pt from step 4" in said.err
    assert "to step 8 (4 steps," in said.out
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for net in a["optim"]:
        for i, state in a["optim"][net]["state"].items():
            for k, v in state.items():
                other = b["optim"][net]["state"][i][k]
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(other))
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert a["history"] == b["history"]


def test_a_vae_disl_run_trained_further_keeps_its_gan_phase(tmp_path, capsys):
    """--gan-steps' default is half of --steps: a larger --steps must not move the switch of a
    run already past it (which check_resumable would refuse), as running.md promises."""
    assert run_train(tmp_path / "d", 4, model="vae_disl") == 0
    capsys.readouterr()
    assert run_train(tmp_path / "d", 8, model="vae_disl") == 0
    assert "from step 4" in capsys.readouterr().err
    ckpt = torch.load(tmp_path / "d" / "last.pt", weights_only=True)
    assert ckpt["step"] == 8 and json.loads(ckpt["config"])["step"]["disl_pretrain_steps"] == 2


def test_vae_disl_switches_from_gan_to_frozen_metric(tmp_path):
    assert run_train(tmp_path / "d", 4, "--gan-steps", "2", model="vae_disl") == 0
    h = torch.load(tmp_path / "d" / "last.pt", weights_only=True)["history"]
    assert h["L_GAN"][0] == h["L_GAN"][0] and h["L_GAN"][1] != h["L_GAN"][1]  # then NaN
    assert h["L_llike"][1] == h["L_llike"][1]


def test_authors_variant_logs_skipped_updates(tmp_path, capsys):
    assert run_train(tmp_path / "e", 4, "--authors") == 0
    out = capsys.readouterr().out
    assert "of updates skipped (margin trick)" in out
    cfg = json.loads((tmp_path / "e" / "config.json").read_text())
    assert cfg["step"]["equilibrium"] and not cfg["step"]["dis_sees_recon"]
    assert cfg["step"]["w"] == 1e-6 and cfg["model"]["enc_fc_dim"] == 1024


def test_python_api_loads_a_checkpoint(tmp_path):
    assert run_train(tmp_path / "m", 2) == 0
    model = load_checkpoint(tmp_path / "m" / "last.pt")
    assert model.latent_dim == 16 and model.image_size == 32 and not model.training
    stored = torch.load(tmp_path / "m" / "last.pt", weights_only=True)["model"]
    loaded = model.state_dict()
    assert loaded.keys() == stored.keys()
    assert all(torch.equal(loaded[k], stored[k]) for k in stored)  # the trained weights, not new
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (2, 16)
    assert model.decode(mu).shape == x.shape


def test_load_checkpoint_on_a_device_this_machine_lacks_blames_the_device(tmp_path):
    """It said "not a readable checkpoint (RuntimeError)" of a good file, as if it were damaged."""
    assert run_train(tmp_path / "m", 1) == 0
    for where in ("bogus", "cuda:99"):
        with pytest.raises(ValueError, match=rf"^map_location='{where}': not a device of this "):
            load_checkpoint(tmp_path / "m" / "last.pt", map_location=where)
    assert load_checkpoint(tmp_path / "m" / "last.pt", map_location="cpu").step == 1


def exit_code(argv: list[str]) -> int:
    """main's exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--model", "vaegan2", "--steps", "1", "--out", "x"], "vaegan2"),
        (["train", "--data", "imagenet", "--steps", "1", "--out", "x"], "imagenet"),
        (["train", "--steps", "-3", "--out", "x"], "-3"),
        # 0 steps wrote an untrained model's samples.png and said it had trained it
        (["train", "--steps", "0", "--out", "x"], "--steps: must be >= 1, got 0"),
        (["train", "--image-size", "48", "--steps", "1", "--out", "x"], "48"),
        (["train", "--steps", "2", "--lr-decay-steps", "5", "--out", "x"], "lr_decay_steps"),
        (["sample", "--checkpoint", "missing.pt", "--out", "s.png"], "missing.pt"),
        (["train", "--gamma", "nan", "--steps", "1", "--out", "x"], "gamma"),
        (["train", "--lr", "inf", "--steps", "1", "--out", "x"], "lr"),
        (["train", "--model", "vae", "--pixel-sigma", "0", "--steps", "1", "--out", "x"],
         "pixel_sigma"),
        (["train", "--width", "0", "--steps", "1", "--out", "x"], "width"),
        (["train", "--width", "-1", "--steps", "1", "--out", "x"], "width"),
        (["train", "--batch-size", "1", "--steps", "1", "--out", "x"], "--batch-size"),
        (["bench", "--batch-size", "1"], "--batch-size"),
        (["train", "--seed", "18000000000000", "--steps", "1", "--out", "x"], "--seed"),
        (["train", "--seed", str(2**32), "--steps", "1", "--out", "x"], "--seed"),  # one past
        (["train", "--seed", "-1", "--steps", "1", "--out", "x"], "--seed"),
        (["train", "--steps", "nan", "--out", "x"], "--steps: must be a whole number, got 'nan'"),
        (["sample", "--checkpoint", "m.pt", "--n", "100000000", "--out", "s.png"], "--n"),
        (
            ["train", "--model", "vae_disl", "--gan-steps", "50", "--steps", "2", "--out", "x"],
            "--gan-steps: 50",
        ),
        # flags that would do nothing for this model or data set
        (["train", "--xi-dim", "8", "--steps", "1", "--out", "x"], "--xi-dim applies to --model"),
        (["train", "--model", "gan", "--beta", "5", "--steps", "1", "--out", "x"],
         "--beta applies to --model vae"),
        (["train", "--model", "gan", "--avae-latent-weight", "0.1", "--steps", "1", "--out", "x"],
         "--avae-latent-weight applies"),
        (["train", "--gan-steps", "1", "--steps", "2", "--out", "x"], "--gan-steps applies"),
        # vaegan_dis0 measures in pixels: its Dis_l is only what its default gamma balances
        (["train", "--model", "vaegan_dis0", "--gamma", "0.1", "--dis-layer", "2", "--steps",
          "1", "--out", "x"], "--dis-layer has no effect on vaegan_dis0 with --gamma"),
        (["train", "--model", "avae", "--fast", "--steps", "1", "--out", "x"],
         "--fast applies to --model"),
        (["train", "--data-root", "faces", "--steps", "1", "--out", "x"], "--data-root applies"),
        (["bench", "--model", "vae", "--dis-batch", "joint"], "--dis-batch applies to --model"),
        (["bench", "--model", "vae", "--gan-variant", "saturating"], "--gan-variant applies"),
        (["bench", "--model", "vae", "--no-dis-recon"], "--no-dis-recon applies to --model"),
        # flags that another overrides
        (["train", "--authors", "--enc-fc-dim", "16", "--steps", "1", "--out", "x"],
         "--enc-fc-dim: --authors sets"),
        (["train", "--gamma", "5", "--w", "0.5", "--steps", "1", "--out", "x"],
         "--gamma has no effect with --w"),
        (["train", "--authors", "--gamma", "5", "--steps", "1", "--out", "x"],
         "--gamma has no effect"),
        pytest.param(["train", "--device", "cuda", "--steps", "1", "--out", "x"], "cuda",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")),
        (["sample", "--checkpoint", "m.pt", "--out", "s.jpg"], "name it *.png"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, needle):
    # in this process (a new one per case took 2-3 s of importing torch): an exception main does
    # not turn into one line propagates and fails the test; the command line itself is below
    monkeypatch.chdir(tmp_path)
    assert exit_code(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert not (tmp_path / "x").exists()


def test_a_value_error_of_many_lines_from_below_is_said_in_one(monkeypatch, capsys):
    """torch, numpy and PIL raise ValueErrors of several lines; the command line says one."""
    import vaegan_lite.cli as cli

    def fails(a):
        raise ValueError("Expected 4D input\n  got [3, 32, 32]\n\n(a hint)")

    monkeypatch.setattr(cli, "cmd_bench", fails)
    assert main(["bench"]) == 2
    assert capsys.readouterr().err == "error: Expected 4D input got [3, 32, 32] (a hint)\n"


def test_one_line_joins_lines_cuts_long_messages_and_names_a_silent_error():
    from vaegan_lite.errors import one_line

    said = one_line(RuntimeError("Error(s) in loading:\n\tMissing key(s): a, b"))
    assert said == "Error(s) in loading: Missing key(s): a, b"
    assert one_line(OSError()) == "OSError"
    long = one_line(ValueError("x" * 500), 120)
    assert len(long) == 120 and long.endswith("…")


def test_the_command_line_says_bad_input_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vaegan_lite", "train", "--model", "vaegan2",
                        "--out", "x"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "vaegan2" in r.stderr and not (tmp_path / "x").exists()


def test_wrong_image_size_and_changed_config_are_refused(tmp_path, capsys):
    assert run_train(tmp_path / "r", 2) == 0
    ckpt = tmp_path / "r" / "last.pt"
    before = ckpt.read_bytes()
    code = main(["sample", "--checkpoint", str(ckpt), "--image-size", "64", "--out",
                 str(tmp_path / "s.png")])  # fmt: skip
    assert code == 2 and "32x32" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()
    # Resuming with another image size (or any setting that changes the result) is refused.
    argv = ["train", "--model", "vaegan", "--steps", "4", "--seed", "3", "--device", "cpu",
            "--out", str(tmp_path / "r"), *TINY]  # fmt: skip
    argv[argv.index("--image-size") + 1] = "64"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "image_size" in err[0]
    assert ckpt.read_bytes() == before


@pytest.mark.parametrize(
    "flag, value, setting",
    [("--seed", "4", "seed"), ("--gamma", "0.5", "step.gamma"), ("--lr", "1e-3", "lr"),
     ("--flip", None, "flip"), ("--batch-size", "4", "batch_size")],
)  # fmt: skip
def test_resuming_with_a_setting_that_changes_the_result_is_refused(tmp_path, capsys, flag,
                                                                   value, setting):  # fmt: skip
    assert run_train(tmp_path / "r", 2) == 0
    ckpt = tmp_path / "r" / "last.pt"
    before = ckpt.read_bytes()
    capsys.readouterr()
    argv = ["train", "--model", "vaegan", "--steps", "4", "--seed", "3", "--device", "cpu",
            "--out", str(tmp_path / "r"), *TINY]  # fmt: skip
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag] if value is None else [flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"trained with {setting}=" in err[0], err
    assert ckpt.read_bytes() == before


def test_not_a_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["sample", "--checkpoint", str(bad), "--out", str(tmp_path / "s.png")]) == 2
    assert "bad.pt" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    assert run_train(out, 1) == 0
    return out / "last.pt"


def _crafted(ckpt, **changes):
    """The checkpoint dict with entries replaced (None: removed) or its config edited."""
    c = dict(torch.load(ckpt, weights_only=True))
    cfg = json.loads(c["config"])
    for k, v in changes.items():
        if k == "cfg":
            v(cfg)
            c["config"] = json.dumps(cfg)
        elif v is None:
            del c[k]
        else:
            c[k] = v
    return c


def test_sample_refuses_a_conditional_model_in_one_line(tmp_path, capsys):
    """A conditional model's samples need attribute vectors y, which the command has no flag for:
    refused before anything is written, naming the checkpoint."""
    from vaegan_lite.data import ATTR_NAMES

    cfg = TrainConfig(model=ModelConfig(model="vaegan", image_size=32, width=0.125, latent_dim=8,
                                        enc_fc_dim=32, cond_dim=len(ATTR_NAMES)),
                      steps=1, batch_size=8, dataset_size=16)  # fmt: skip
    T.train(cfg, tmp_path / "cond", data=training_tensors(cfg, progress=False), progress=False)
    png = tmp_path / "s.png"
    ckpt = tmp_path / "cond" / "last.pt"
    assert main(["sample", "--checkpoint", str(ckpt), "--out", str(png)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {ckpt} is a conditional model: sample it from Python with y"]
    assert not png.exists()


def test_samples_png_is_drawn_from_the_seed(tmp_path):
    """--seed seeds the samples written too (its help says so): samples.png is Dec(z_p) for the
    64 z_p that a generator seeded with it draws, not another seed's."""
    assert run_train(tmp_path / "r", 1) == 0  # --seed 3
    model = load_checkpoint(tmp_path / "r" / "last.pt")
    for seed in (3, 4):
        x = model.sample(64, generator=torch.Generator().manual_seed(seed))
        save_grid(x.float(), tmp_path / f"{seed}.png")
    written = (tmp_path / "r" / "samples.png").read_bytes()
    assert written == (tmp_path / "3.png").read_bytes()
    assert written != (tmp_path / "4.png").read_bytes()


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"config": None}, "'config' entry is missing"),
        ({"step": None}, "'step' entry is missing"),
        ({"optim": None}, "'optim' entry is missing"),
        ({"step": "3"}, "'step' entry is of type str"),
        ({"step": True}, "'step' entry is of type bool"),
        ({"step": -1}, "step -1 < 0"),
        ({"cfg": lambda c: c.update(bogus=1)}, "bogus"),
        ({"config": "{not json"}, "stored config is not valid"),
        ({"cfg": lambda c: c["model"].update(model="nope")}, "unknown model 'nope'"),
        ({"cfg": lambda c: c["model"].update(latent_dim=8)}, "weights do not fit its config"),
    ],
)
def test_a_damaged_checkpoint_is_one_line_naming_it(tmp_path, capsys, trained, changes, needle):
    bad = tmp_path / "crafted.pt"
    torch.save(_crafted(trained, **changes), bad)
    png = tmp_path / "s.png"
    assert main(["sample", "--checkpoint", str(bad), "--out", str(png)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and needle in err[0], err
    assert not png.exists()


def _narrower(ckpt, part):
    """The checkpoint with its first weight (or that weight's optimizer state) cut in half."""
    c = dict(torch.load(ckpt, weights_only=True))
    if part == "model":
        k = next(iter(c["model"]))
        c["model"] = {**c["model"], k: c["model"][k][: len(c["model"][k]) // 2]}
    else:
        for state in c["optim"]["enc"]["state"].values():
            for k, v in state.items():
                if torch.is_tensor(v) and v.dim():
                    state[k] = v[: len(v) // 2]
    return c


@pytest.mark.parametrize(
    "crafted, needle",
    [(lambda t: _crafted(t, history=None), "'history' entry is missing"),
     (lambda t: _narrower(t, "model"), "weights do not fit its config (wrong shape: "),
     (lambda t: _narrower(t, "optim"), "the enc optimizer's state does not fit its weights"),
     (lambda t: _crafted(t, optim={"enc": {}}), "cannot resume from it (no entry 'param_groups')"),
     (lambda t: _crafted(t, rng={"torch": torch.zeros(3)}), "cannot resume from it"),
     (lambda t: _crafted(t, log_windows=[{"steps": [(True, ["L_GAN"])],
                                          "sums": [(["L_GAN", "L_prior"], torch.zeros(1))]}]),
      "the log window's sums do not fit their names")],
)  # fmt: skip
def test_resuming_from_a_damaged_checkpoint_is_one_line(tmp_path, capsys, trained, crafted,
                                                       needle):  # fmt: skip
    (tmp_path / "r").mkdir()
    torch.save(crafted(trained), tmp_path / "r" / "last.pt")
    before = (tmp_path / "r" / "last.pt").read_bytes()
    assert run_train(tmp_path / "r", 2) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.startswith("resuming ")]  # fmt: skip
    assert len(err) == 1 and "last.pt" in err[0] and needle in err[0], err
    assert (tmp_path / "r" / "last.pt").read_bytes() == before


def test_a_run_whose_samples_were_never_written_writes_them_on_the_next_call(tmp_path, capsys):
    """A full disk at samples.png left last.pt complete; the same command then said 'nothing to
    do' for ever, and the run never got its samples."""
    assert run_train(tmp_path / "r", 2) == 0
    png = tmp_path / "r" / "samples.png"
    want = png.read_bytes()
    png.unlink()
    ckpt = (tmp_path / "r" / "last.pt").read_bytes()
    settings = (tmp_path / "r" / "config.json").read_text()
    assert run_train(tmp_path / "r", 1) == 0  # a smaller --steps trains nothing either
    assert "already at step 2: wrote its missing samples.png" in capsys.readouterr().out
    assert png.read_bytes() == want and (tmp_path / "r" / "last.pt").read_bytes() == ckpt
    # the run's settings as they were: config.json had become "steps": 1 beside a step-2 run
    assert (tmp_path / "r" / "config.json").read_text() == settings
    assert run_train(tmp_path / "r", 2) == 0
    assert "nothing to do" in capsys.readouterr().out


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_output_paths_that_cannot_be_written_are_one_line(tmp_path, capsys, trained, monkeypatch):
    (tmp_path / "d.png").mkdir()
    (tmp_path / "afile").write_text("")
    for out in ("d.png", "afile/x.png"):
        path = tmp_path / out
        assert main(["sample", "--checkpoint", str(trained), "--out", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0], err
    monkeypatch.setattr(C, "training_tensors", lambda *a, **k: pytest.fail("data built"))
    assert run_train(tmp_path / "afile" / "sub", 1) == 2  # said before the data are built
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "afile" in err[0] and "not a folder" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "d.png"]  # no temp files
    assert list((tmp_path / "d.png").iterdir()) == []
    # a link to nothing, as --out or above it: mkdir's "File exists" traceback
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    why = f"{tmp_path / 'dangling'} is a link to {tmp_path / 'gone'}, which does not exist"
    for out in ("dangling", "dangling/run"):
        assert run_train(tmp_path / out, 1) == 2
        assert capsys.readouterr().err.strip().splitlines() == [f"error: --out {tmp_path / out}: "
                                                                f"{why}"]  # fmt: skip
    assert main(["sample", "--checkpoint", str(trained), "--out",
                 str(tmp_path / "dangling" / "x.png")]) == 2  # fmt: skip
    assert why in capsys.readouterr().err
    (tmp_path / "dangling").unlink()

    def full_disk_once_its_folders_are_made(x, path, nrow):  # as save_grid makes them
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        full_disk()

    # as in train: the disk, not bad input
    monkeypatch.setattr(C, "save_grid", full_disk_once_its_folders_are_made)
    out = tmp_path / "new" / "sub" / "s.png"
    assert main(["sample", "--checkpoint", str(trained), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --out {out}: cannot write it (No space left on device)"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "d.png"]  # nor its folders


def test_a_train_out_that_cannot_be_written_is_one_line_before_the_data(tmp_path, capsys,
                                                                       monkeypatch):  # fmt: skip
    """It was an OSError traceback (exit 1) once the data were built; a full disk at the first
    checkpoint left a folder with config.json alone."""
    if os.path.isdir("/sys"):  # sysfs takes no new files, not even from root
        argv = ["train", "--data", "celeba", "--data-root", str(tmp_path / "nowhere"),
                "--steps", "1", "--out", "/sys/vaegan-x"]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--out /sys/vaegan-x: cannot write in /sys" in err[0], err

    monkeypatch.setattr(torch, "save", full_disk)
    assert run_train(tmp_path / "r", 1) == 1  # not bad input (2): the machine's disk
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("r/last.pt: cannot write it (No space left on "
                                             "device); nothing saved: free some space and run "
                                             "it again"), err  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_sigterm_saves_the_last_finished_step_and_exits_143(tmp_path, capsys, monkeypatch):
    """SIGTERM (a timeout, docker stop) left a folder with config.json alone, and said nothing;
    now it stops as Ctrl-C does: the step under way finishes and is saved."""
    def term_at_2(step, model, history):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    def unhandled(signum, frame):  # instead of the default, which would end pytest
        raise AssertionError("SIGTERM was not handled: the process would end, saving nothing")

    monkeypatch.setattr(C, "_print_log", term_at_2)  # --no-progress's callback, at every log
    before = signal.signal(signal.SIGTERM, unhandled)
    try:
        assert run_train(tmp_path / "r", 6) == 143
        assert signal.getsignal(signal.SIGTERM) is unhandled  # put back
    finally:
        signal.signal(signal.SIGTERM, before)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"terminated: the last completed step is saved: {tmp_path / 'r'}/last.pt "
                   "holds step 2; rerun to resume"]  # fmt: skip
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=True)["step"] == 2
    monkeypatch.undo()
    assert run_train(tmp_path / "r", 6) == 0  # and it resumes


def test_ctrl_c_before_training_or_in_bench_says_nothing_was_saved(tmp_path, capsys, monkeypatch):
    """Both said "the last completed step is saved", though nothing was."""
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(C, "training_tensors", ctrl_c)  # while the data are built
    assert run_train(tmp_path / "r", 2) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["interrupted: nothing saved"]
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(C, "bench", ctrl_c)
    assert main(["bench", "--device", "cpu", "--image-size", "32", "--batch-size", "2"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["interrupted: nothing saved"]


@pytest.mark.parametrize("model, dis_batch", [("gan", "joint"), ("vaegan", "separate")])
def test_bench_times_the_step_train_runs_by_default(monkeypatch, model, dis_batch):
    timed = []

    def record(cfg, **kwargs):
        timed.append(cfg)
        raise KeyboardInterrupt  # no need to time it

    monkeypatch.setattr(C, "bench", record)
    assert main(["bench", "--model", model, "--device", "cpu", "--image-size", "32"]) == 130
    assert timed[0].step.dis_batch == dis_batch == C.default_dis_batch(model)


def test_a_failed_png_write_is_one_line_and_leaves_no_temp_file(tmp_path, capsys, trained,
                                                                 monkeypatch):  # fmt: skip
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.os, "replace", refuse)  # after the temporary PNG is written
    png = tmp_path / "s.png"
    assert main(["sample", "--checkpoint", str(trained), "--out", str(png)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(png) in err[0] and "Permission denied" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_the_console_script_is_the_cli():
    """pyproject.toml's `vaegan-lite` command runs cli.main, as `python -m vaegan_lite` does."""
    import importlib.metadata
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    ep = importlib.metadata.EntryPoint("vaegan-lite", scripts["vaegan-lite"], "console_scripts")
    assert ep.load() is main


def test_shipped_weights_and_bad_paths_get_a_hint(tmp_path, capsys):
    """sample --checkpoint on a shipped model's .pt said only "not a vaegan-lite checkpoint";
    --out '' was the current folder."""
    from vaegan_lite.shipped import WEIGHTS

    shipped = WEIGHTS / "synthetic-vae.pt"
    assert main(["sample", "--checkpoint", str(shipped), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vaegan_lite.pretrained('synthetic-vae', weights=" in err[0], err
    for argv in (["train", "--steps", "1", "--out", ""], ["sample", "--checkpoint", str(shipped),
                                                          "--out", ""]):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "argument --out: give a path" in err[0], err
    assert "train one of the 7 models" in build_parser().format_help()


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu"])
def test_command_line_trains_exactly_the_config(preset):
    """command_line gives the train command of a config (chapter 7 prints them); the command,
    parsed as train parses it, is that config (in what the model reads), and a setting no flag
    gives is refused."""
    for row in TABLE1_ROWS:
        model, settings = row_settings(row, preset)
        cfg = config_for(PRESETS[preset], model, seed=1, **settings)
        line = command_line(cfg, "runs/a b")
        argv = shlex.split(line)
        assert argv[:4] == ["python", "-m", "vaegan_lite", "train"]
        assert argv[-2:] == ["--out", "runs/a b"]
        got = config_from_args(build_parser().parse_args(argv[3:])).settings()
        # every setting the model reads; the others (gamma of a VAE, say) need no flag
        assert {k: v for k, v in got.items() if reads(model, k)} == {
            k: v for k, v in cfg.settings().items() if reads(model, k)}
    for gamma in ({}, {"gamma": 0.5}):  # VAE/GAN_Dis0's balanced gamma, and one asked for
        cfg = config_for(PRESETS[preset], "vaegan_dis0", **gamma)
        argv = shlex.split(command_line(cfg, "o"))
        assert config_from_args(build_parser().parse_args(argv[3:])) == cfg
    with pytest.raises(ValueError, match="data_root"):
        command_line(config_for(PRESETS[preset], "vae", data_root="/data"), "o")
    # the authors' settings, --no-dis-recon among them, round-trip too
    parse = build_parser().parse_args
    authors = config_from_args(parse(["train", "--authors", "--steps", "5", "--out", "o"]))
    argv = shlex.split(command_line(authors, "o"))
    assert "--no-dis-recon" in argv and config_from_args(parse(argv[3:])) == authors
    # with w, gamma does nothing: no --gamma, which train would refuse beside --w
    weighted = config_for(PRESETS[preset], "vaegan", w=1e-6)
    argv = shlex.split(command_line(weighted, "o"))
    assert "--gamma" not in argv and "--w" in argv
    _check_flags_apply(parse(argv[3:]))
    idle = ("step.gamma",)
    assert ({k: v for k, v in config_from_args(parse(argv[3:])).settings().items() if k not in idle}
            == {k: v for k, v in weighted.settings().items() if k not in idle})  # fmt: skip


def test_the_command_line_balances_dis0s_gamma_as_the_book_does():
    """Without --gamma, vaegan_dis0 gets config.balanced_gamma of the default, as config_for
    gives it the preset's: the same weight on its pixel likelihood as VAE/GAN's on Dis_l's."""
    from vaegan_lite.config import StepConfig, llike_weight

    parse = build_parser().parse_args
    base = ["train", "--steps", "10", "--out", "o", "--image-size", "64"]
    dis0, vaegan = (config_from_args(parse([*base, "--model", m]))
                    for m in ("vaegan_dis0", "vaegan"))  # fmt: skip
    assert vaegan.step.gamma == StepConfig.gamma != dis0.step.gamma
    assert llike_weight(dis0) == pytest.approx(llike_weight(vaegan))
    asked = config_from_args(parse([*base, "--model", "vaegan_dis0", "--gamma", "0.01"]))
    assert asked.step.gamma == 0.01


class _Reads:
    """A StepConfig that notes which of its fields a step reads."""

    def __init__(self, cfg) -> None:
        self.__dict__.update(cfg=cfg, read=set())

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self.cfg, name)


# A value other than the default, for a flag of each setting of config.READ_BY
OTHER = {
    "step.gamma": ["--gamma", "5"], "step.w": ["--w", "0.5"], "step.equilibrium": ["--equilibrium"],
    "step.dis_sees_recon": ["--no-dis-recon"], "step.gan_variant": ["--gan-variant", "saturating"],
    "step.pixel_sigma": ["--pixel-sigma", "0.3"], "step.llike_reduction": ["--llike-reduction",
    "mean"], "step.disl_pretrain_steps": ["--gan-steps", "1"], "model.dis_layer": ["--dis-layer",
    "3"], "model.enc_fc_dim": ["--enc-fc-dim", "64"], "model.xi_dim": ["--xi-dim", "2"],
    "step.beta": ["--beta", "5"], "step.latent_loss": ["--avae-latent-loss", "a"],
    "step.latent_weight": ["--avae-latent-weight", "3"], "step.fast": ["--fast"],
}  # fmt: skip


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_what_a_model_reads_is_what_config_read_by_says(model, tmp_path):
    """config.READ_BY against the code: a model's training steps (each phase of vae_disl) read
    exactly the step settings it lists for the model; a network setting it does not list leaves
    the model's losses as they were. The train command refuses a flag of a setting the model does
    not read, and resume ignores such a setting; command_line gives no flag for it."""
    from vaegan_lite.config import READ_BY, default_dis_batch
    from vaegan_lite.models import make_optimizers, model_spec

    base = ["train", "--model", model, "--steps", "2", "--out", str(tmp_path / "run"),
            "--image-size", "32", "--width", "0.125", "--latent-dim", "8", "--batch-size", "8",
            "--dataset-size", "8"]  # fmt: skip
    cfg = config_from_args(build_parser().parse_args(base))
    spec = model_spec(model)
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def first_losses(cfg):
        torch.manual_seed(0)
        m = spec.build(cfg.model)
        stats = spec.step(0, cfg.step)(m, x, make_optimizers(m, spec.networks, cfg.lr,
                                                              cfg.rms_alpha), cfg.step)  # fmt: skip
        return {k: v for k, v in stats.items() if k != "ok"}

    step_reads = _Reads(cfg.step)
    for t in range(cfg.steps):  # both of vae_disl's phases
        torch.manual_seed(0)
        m = spec.build(cfg.model)
        opts = make_optimizers(m, spec.networks, cfg.lr, cfg.rms_alpha)
        spec.step(t, step_reads)(m, x, opts, step_reads)
    for key in READ_BY:
        if key.startswith("step."):
            assert (key[5:] in step_reads.read) == reads(model, key), (key, sorted(step_reads.read))

    want = first_losses(cfg)
    for key in ("model.dis_layer", "model.xi_dim", "model.enc_fc_dim"):
        if reads(model, key):
            continue
        if key == "model.enc_fc_dim":  # the GAN's Enc is built, but never trained nor run
            assert "enc" not in spec.networks
            continue
        got = first_losses(config_from_args(build_parser().parse_args(base + OTHER[key])))
        assert got.keys() == want.keys()
        for k, v in want.items():  # the same losses, to rounding (the graph may split elsewhere)
            assert torch.allclose(v, got[k], rtol=1e-5, atol=1e-7), (key, k)

    other = {**OTHER, "step.dis_batch": ["--dis-batch",
                                         "separate" if default_dis_batch(model) == "joint"
                                         else "joint"]}  # fmt: skip
    assert set(other) == set(READ_BY)
    data = training_tensors(cfg, progress=False)
    T.train(cfg, tmp_path / "run", data=data, progress=False)
    for key in READ_BY:
        if reads(model, key):
            continue
        args = build_parser().parse_args(base + other[key])
        says = f"^{other[key][0]} applies to --model .* not {model}$"
        with pytest.raises(ValueError, match=says):
            C._check_flags_apply(args)
        if key.startswith("step.") and key != "step.disl_pretrain_steps":  # (vae_disl's alone)
            resumed = T.train(config_from_args(args), tmp_path / "run", data=data, progress=False)
            assert resumed.steps_run == 0  # ignored: not refused, nothing to do
        if key != "step.disl_pretrain_steps":
            assert other[key][0] not in command_line(config_from_args(args), "r").split()


def test_bench_refuses_fp16_on_a_cpu_in_one_line(capsys):
    """fp16 on a CPU ran its peak measurement for many minutes: refused before anything runs."""
    assert main(["bench", "--device", "cpu", "--precision", "fp16", "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--precision fp16 on a CPU" in err


def test_config_errors_name_the_flag_that_sets_them(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", "--model", "vae", "--width", "0", "--steps", "1", "--out", out]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --width: width must be")
    assert main(["train", "--model", "avae", "--avae-latent-weight", "-1", "--steps", "1",
                 "--out", out]) == 2  # fmt: skip
    assert "--avae-latent-weight: latent_weight must be" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_fp16_training_on_a_cpu_is_said_to_be_slow(tmp_path, capsys):
    """fp16 trains on a CPU (bench refuses to time it), but most CPUs run it many times slower:
    one warning line, and the run goes on."""
    assert run_train(tmp_path / "h", 1, "--precision", "fp16") == 0
    err = capsys.readouterr().err.splitlines()
    assert [ln for ln in err if ln.startswith("warning:")] == [
        "warning: --precision fp16 on a CPU: most CPUs run it many times slower than fp32 (bf16 "
        "is fast where the CPU has AVX-512 bf16)"]
    assert run_train(tmp_path / "f", 1, "--precision", "bf16") == 0
    assert "warning:" not in capsys.readouterr().err


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    """A set or model too large for the machine: one line saying so, exit 1, no run folder."""
    def too_big(*a, **k):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                           "12288000000000 bytes.")  # fmt: skip

    monkeypatch.setattr(C, "training_tensors", too_big)
    out = tmp_path / "r"
    assert main(["train", "--model", "vae", "--steps", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: out of memory")
    assert all(f"--{flag}" in err for flag in ("batch-size", "dataset-size", "image-size", "width",
                                                "latent-dim"))  # fmt: skip
    assert not out.exists()


def test_an_out_that_starts_with_a_dash_or_a_tilde(tmp_path, monkeypatch, capsys):
    """--out=-run was refused as "expected one argument" (train parses its own flags again);
    --out=~/run, which the shell does not expand after "=", made a folder named "~" here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert run_train("-run", 1) == 2  # run_train passes it as two words: argparse's own rule
    assert "expected one argument" in capsys.readouterr().err
    assert main(["train", "--model", "vae", "--data", "synthetic", "--steps", "1",
                 "--device", "cpu", "--out=-run", *TINY]) == 0  # fmt: skip
    assert (tmp_path / "-run" / "last.pt").is_file()
    cfg = load_checkpoint(tmp_path / "-run" / "last.pt").train_config
    assert command_line(cfg, "-run").endswith(" --out=-run")
    assert main(["train", "--model", "vae", "--data", "synthetic", "--steps", "1",
                 "--device", "cpu", "--out=~/run", *TINY]) == 0  # fmt: skip
    assert (tmp_path / "home" / "run" / "last.pt").is_file() and not (tmp_path / "~").exists()
    assert main(["sample", "--checkpoint=~/run/last.pt", "--out=~/s.png"]) == 0
    assert (tmp_path / "home" / "s.png").is_file()


def test_without_the_bar_each_log_is_a_line_of_losses(tmp_path, capsys):
    """--no-progress (a batch job's log file) prints what the bar would show, every --log-every
    steps and at the end, the values the run's history holds."""
    capsys.readouterr()
    assert run_train(tmp_path / "r", 5) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step ")]
    assert [ln.split(":")[0] for ln in lines] == ["step 2", "step 4", "step 5"]
    history = read_checkpoint(tmp_path / "r" / "last.pt")["history"]
    shown = ("L_prior", "L_llike", "L_GAN", "D(x)", "D(Dec(z))", "D(Dec(Enc(x)))")
    assert lines[-1] == "step 5: " + ", ".join(f"{k} {history[k][-1]:.3g}" for k in shown)


def test_train_into_a_folder_of_other_files_named_like_a_run_s_is_refused(tmp_path, capsys):
    """A folder with a config.json (or samples.png) but no last.pt is not a run: training there
    would overwrite the user's file."""
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "config.json").write_text('{"my": "settings"}')
    assert run_train(tmp_path / "proj", 1) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds config.json but no last.pt" in err[0]
    assert (tmp_path / "proj" / "config.json").read_text() == '{"my": "settings"}'
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["config.json"]
    # any other folder of files: a data set's (its samples.png then became a training image and
    # the run could never resume: "trained on other images"), the current folder's
    (tmp_path / "faces").mkdir()
    for i in range(5):
        (tmp_path / "faces" / f"{i}.png").write_bytes(b"")
    assert run_train(tmp_path / "faces", 1) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --out {tmp_path / 'faces'} holds 0.png, 1.png, 2.png ... but no "
                   "last.pt: not a run to resume; train into a new or empty folder"]
    assert len(list((tmp_path / "faces").iterdir())) == 5
    (tmp_path / "hidden").mkdir()  # hidden entries alone (a desktop's own file) are no obstacle
    (tmp_path / "hidden" / ".DS_Store").write_bytes(b"")
    assert run_train(tmp_path / "hidden", 1) == 0
    # a run killed before its first checkpoint leaves its own config.json: rerunning trains
    assert run_train(tmp_path / "killed", 1) == 0
    (tmp_path / "killed" / "last.pt").unlink()
    (tmp_path / "killed" / "samples.png").unlink()
    assert run_train(tmp_path / "killed", 1) == 0


def test_a_failing_compiler_is_one_line(tmp_path, monkeypatch, capsys):
    """torch.compile's errors (no working C++ compiler, say) run to a hundred lines: one line,
    exit 1, naming --compile."""
    class InvalidCxxCompiler(RuntimeError):
        pass

    InvalidCxxCompiler.__module__ = "torch._inductor.exc"

    def no_compiler(*args, **kwargs):
        raise InvalidCxxCompiler("No working C++ compiler found in torch._inductor.config.cpp.cxx\n"
                                 "more lines")  # fmt: skip

    monkeypatch.setattr(C, "train", no_compiler)
    assert run_train(tmp_path / "r", 1, "--compile") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --compile failed (InvalidCxxCompiler: No working C++ compiler found in "
                   "torch._inductor.config.cpp.cxx more lines); run without --compile"]


def test_an_error_of_the_environment_names_no_flag(tmp_path, monkeypatch, capsys):
    """$VAEGAN_DATA pointing at a file: the message names the variable, not --data."""
    monkeypatch.setenv("VAEGAN_DATA", str(tmp_path / "file"))
    (tmp_path / "file").write_text("")
    argv = ["train", "--model", "vae", "--data", "celeba", "--steps", "1", "--out",
            str(tmp_path / "r"), *TINY]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "$VAEGAN_DATA" in err[0] and not err[0].startswith("error: --data")


def test_under_torchrun_one_process_downloads_and_every_one_learns_how_it_went(
    tmp_path, monkeypatch, capsys
):
    """Several processes downloading into one folder (or cleaning up after a failure) would spoil
    each other's files: process 0 downloads, the others wait and share its verdict."""
    from vaegan_lite.data import DownloadError

    argv = ["train", "--model", "vae", "--data", "mnist", "--data-root", str(tmp_path / "d"),
            "--download", "--steps", "1", "--out", str(tmp_path / "r"), *TINY]  # fmt: skip
    verdicts = []

    def all_true(flag):  # what the collective would answer: process 0's failure is everyone's
        verdicts.append(flag)
        return False

    monkeypatch.setattr(C.distributed, "all_true", all_true)
    monkeypatch.setattr(C.distributed, "is_main", lambda: False)
    monkeypatch.setattr(C, "download_data", lambda *a: pytest.fail("process 1 fetched"))
    assert main(argv) == 2  # process 1: it waited, then learned
    assert verdicts == [True]
    assert "mnist: the download by process 0 failed" in capsys.readouterr().err

    def offline(*args):
        raise DownloadError("mnist: torchvision's download into d failed (URLError: offline)")

    monkeypatch.setattr(C.distributed, "is_main", lambda: True)
    monkeypatch.setattr(C, "download_data", offline)
    assert main(argv) == 2  # process 0: its own reason
    assert verdicts == [True, False]
    assert "URLError: offline" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_every_flag_says_what_it_does():
    """`--help` listed --steps, --seed, --lr, --checkpoint-every and others bare: a reader could
    not tell that --steps is the step to reach (not N more) or that --checkpoint-every 0 writes
    only at the end."""
    import argparse

    from vaegan_lite.cli import build_parser

    (commands,) = [a for a in build_parser()._actions
                   if isinstance(a, argparse._SubParsersAction)]  # fmt: skip
    bare = [f"{name} {a.option_strings[-1]}" for name, sub in commands.choices.items()
            for a in sub._actions if a.option_strings and not a.help]  # fmt: skip
    assert not bare
    assert len(commands.choices) == 3


def test_a_second_training_into_a_folder_in_use_is_refused(tmp_path, capsys):
    """Two trainings into one --out (a notebook and a terminal, a retried job) both exited 0,
    and left config.json of one run beside last.pt of the other. While one trains, another is
    refused in one line (exit 1, as the machine's state, not bad input) and changes nothing;
    once it ends, the folder is free again."""
    from vaegan_lite.files import LOCK_FILE, exclusive_folder

    def files():
        return {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir() if p.name != LOCK_FILE}

    assert run_train(tmp_path / "r", 1) == 0
    capsys.readouterr()
    before = files()
    with exclusive_folder(tmp_path / "r") as held:  # as the other training holds it
        assert held
        assert run_train(tmp_path / "r", 2) == 1  # not bad input (2): try again later
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"error: run folder {tmp_path / 'r'}: another process is training into "
                       "it; wait until it ends, or train into another folder"], err  # no "resuming"
        assert files() == before
        with exclusive_folder(tmp_path / "r") as again:
            assert not again
    assert run_train(tmp_path / "r", 2) == 0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(before)  # no lock file
    with exclusive_folder(tmp_path / "r") as held:  # the finished training let go of it
        assert held


def test_sample_lays_out_a_near_square_grid(tmp_path, trained):
    """--n 10 samples: ceil(sqrt(10)) = 4 per row, so 4 columns and 3 rows of 32x32 images
    (2-pixel padding), not 3 columns and 4 rows."""
    from PIL import Image

    png = tmp_path / "s.png"
    assert main(["sample", "--checkpoint", str(trained), "--n", "10", "--out", str(png)]) == 0
    assert Image.open(png).size == (4 * 34 + 2, 3 * 34 + 2)


def test_the_train_command_saves_and_logs_more_often_than_python_runs():
    """A run started from a terminal can be stopped and go on, and its log is watched: its
    defaults write last.pt every 500 steps and log every 10, not TrainConfig's (only at the end,
    every 50)."""
    cfg = config_from_args(build_parser().parse_args(["train", "--steps", "2000", "--out", "x"]))
    assert (cfg.checkpoint_every, cfg.log_every) == (500, 10)
    assert (TrainConfig.checkpoint_every, TrainConfig.log_every) == (0, 50)
