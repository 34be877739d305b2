"""The training loop's safety nets: NaN/Inf steps skipped, divergence stopped, Ctrl-C saved."""

import dataclasses
import errno
import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

import vaegan_lite.train as T
from vaegan_lite.attributes import held_out_faces
from vaegan_lite.bench import HostReads, per_step
from vaegan_lite.checkpoint import load_checkpoint
from vaegan_lite.config import ModelConfig, TrainConfig
from vaegan_lite.data import training_tensors
from vaegan_lite.models import model_spec
from vaegan_lite.optim import RMSprop
from vaegan_lite.train import (
    TrainingDiverged,
    deterministic_algorithms,
    lr_at,
    pick_precision,
)


def train(cfg: TrainConfig, out_dir=None, **kwargs) -> T.Trained:
    """The loop on cfg's own images, as the CLI and the book's runs call it."""
    if "data" not in kwargs:
        kwargs["data"] = training_tensors(cfg, progress=False)
    return T.train(cfg, out_dir, **kwargs)


def replace_step(monkeypatch, at: int, wrap) -> None:
    """train's step ``at`` (from 0) runs ``wrap(its step function)`` instead of that function."""
    real = T.model_spec

    def spec(name):
        spec = real(name)

        def step(t, cfg):
            fn = spec.step(t, cfg)
            return wrap(fn) if t == at else fn

        return dataclasses.replace(spec, step=step)

    monkeypatch.setattr(T, "model_spec", spec)


def tiny(steps, **kw):
    return TrainConfig(
        model=ModelConfig(model="vaegan", image_size=32, width=0.125, latent_dim=8, enc_fc_dim=32),
        steps=steps, batch_size=8, dataset_size=32, log_every=1, **kw,
    )  # fmt: skip


def stopped_by_ctrl_c_in_step_3(monkeypatch, run) -> None:
    """run() with a Ctrl-C landing mid-step 3: the step finishes, is saved, and the run stops."""
    set_lr = T._set_lr

    def ctrl_c_in_step_3(opts, cfg, t):
        set_lr(opts, cfg, t)
        if t == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(T, "_set_lr", ctrl_c_in_step_3)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.undo()


def test_a_nan_batch_is_skipped_and_said_once(tmp_path, monkeypatch, capsys, poison):
    poison({2, 4})
    r = train(tiny(6), tmp_path, progress=False)
    assert capsys.readouterr().out.count("non-finite loss or gradient, update skipped") == 1
    assert all(torch.isfinite(v.float()).all() for v in r.model.state_dict().values())
    assert len(r.history["step"]) == 4  # the two skipped steps log nothing
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 6


def test_repeated_divergence_stops_with_the_last_good_state_saved(tmp_path, monkeypatch, poison):
    good = train(tiny(3), None, progress=False).model.state_dict()  # the three good steps alone
    poison(set(range(3, 100)))
    with pytest.raises(TrainingDiverged, match="3 steps in a row"):
        train(tiny(50, max_nonfinite=3), tmp_path, progress=False)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["step"] == 6
    assert ckpt["model"].keys() == good.keys()
    assert all(torch.equal(v, good[k]) for k, v in ckpt["model"].items())  # BN statistics too


def test_ctrl_c_saves_the_finished_step_and_resume_is_exact(tmp_path):
    def interrupt_at_3(step, model, history):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(tiny(6), tmp_path / "a", progress=False, callback=interrupt_at_3)
    assert torch.load(tmp_path / "a" / "last.pt", weights_only=True)["step"] == 3
    resumed = train(tiny(6), tmp_path / "a", progress=False)
    straight = train(tiny(6), tmp_path / "b", progress=False)
    want = straight.model.state_dict()
    for k, a in resumed.model.state_dict().items():
        assert torch.equal(a, want[k]), k


def test_train_refuses_a_folder_of_other_files_and_leaves_them_as_they_were(tmp_path):
    """train(), called from Python as from the CLI, refuses a folder that is not a run's (its
    config.json and samples.png would be overwritten, and removed again if the run then failed)
    before it builds data, and trains into a run killed before its first checkpoint."""
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "config.json").write_text('{"mine": 1}')
    (mine / "notes.txt").write_text("x")

    def no_data():
        raise AssertionError("data built for a refused run")

    with pytest.raises(ValueError, match=re.escape(
            f"run folder {mine} holds config.json, notes.txt but no last.pt: not a run to "
            "resume, and training would overwrite config.json; train into a new or empty folder")):
        T.train(tiny(1), mine, data=no_data, progress=False)
    assert sorted(p.name for p in mine.iterdir()) == ["config.json", "notes.txt"]
    assert (mine / "config.json").read_text() == '{"mine": 1}'
    train(tiny(1), tmp_path / "killed", progress=False)
    for name in ("last.pt", "samples.png"):  # as a run killed before its first checkpoint
        (tmp_path / "killed" / name).unlink()  # its own config.json stays: a run to train
    assert train(tiny(1), tmp_path / "killed", progress=False).steps_run == 1


def test_each_epoch_sees_every_full_batch_of_the_data_once_in_a_new_order():
    n, b = 50, 8  # 6 batches an epoch; the last 2 images of each shuffle are left out
    sampler = T.BatchSampler(n, b, seed=3)
    epochs = [torch.cat([sampler(e * 6 + i) for i in range(6)]) for e in range(3)]
    for idx in epochs:
        assert len(idx) == 48 and len(set(idx.tolist())) == 48 and 0 <= idx.min() <= idx.max() < n
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])
    assert torch.equal(T.BatchSampler(n, b, seed=3)(13), sampler(13))  # batch t from (seed, t)
    assert not torch.equal(T.BatchSampler(n, b, seed=4)(0), T.BatchSampler(n, b, seed=3)(0))


def test_training_is_deterministic_in_the_seed():
    a = train(tiny(3), None, progress=False).model.state_dict()
    b = train(tiny(3), None, progress=False).model.state_dict()
    c = train(tiny(3, seed=1), None, progress=False).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_trained_model_carries_its_config_as_a_loaded_one_does(tmp_path):
    trained = train(tiny(2), tmp_path, progress=False)
    assert trained.model.train_config == trained.config == load_checkpoint(
        tmp_path / "last.pt").train_config  # fmt: skip
    images, _, _ = held_out_faces(trained.model, 3)  # the faces after its 32 training faces
    assert images.shape == (3, 3, 32, 32)


def test_lr_decays_linearly_over_the_last_steps_only():
    cfg = tiny(10, lr=1e-3, lr_decay_steps=4)
    lrs = [lr_at(cfg, t) for t in range(10)]
    assert lrs[:6] == [1e-3] * 6
    assert lrs[6:] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])
    assert [lr_at(tiny(5), t) for t in range(5)] == [3e-4] * 5
    with pytest.raises(ValueError, match="lr_decay_steps must be between 0 and steps"):
        tiny(3, lr_decay_steps=4)


def test_the_optimizers_follow_the_schedule(monkeypatch):
    seen = []
    opt_step = RMSprop.masked_step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return opt_step(self, *args, **kwargs)

    monkeypatch.setattr(RMSprop, "masked_step", spy)
    train(tiny(4, lr=1e-3, lr_decay_steps=2), None, progress=False)
    per_step = [seen[i : i + 3] for i in range(0, len(seen), 3)]  # Enc, Dec, Dis each step
    assert [set(s) for s in per_step] == [{1e-3}, {1e-3}, {1e-3}, {5e-4}]


def test_a_late_decay_resumes_a_constant_run_exactly(tmp_path):
    """10 constant steps then a decay over 4 more equals the 14-step run with the decay."""
    train(tiny(10), tmp_path / "a", progress=False)
    resumed = train(tiny(14, lr_decay_steps=4), tmp_path / "a", progress=False)
    straight = train(tiny(14, lr_decay_steps=4), tmp_path / "b", progress=False)
    want = straight.model.state_dict()
    for k, a in resumed.model.state_dict().items():
        assert torch.equal(a, want[k]), k


def test_resuming_refuses_a_schedule_that_rewrites_the_steps_done(tmp_path):
    train(tiny(6, lr_decay_steps=3), tmp_path, progress=False)
    with pytest.raises(ValueError, match="step 5 would have had another learning rate"):
        train(tiny(9, lr_decay_steps=3), tmp_path, progress=False)


def test_vae_disl_resumes_into_a_longer_gan_phase_but_not_across_its_end(tmp_path, monkeypatch):
    """A run stopped in its GAN phase continues with a longer one, exactly as if it had had it
    from the start; a run past its switch to the VAE refuses a schedule that would make some of
    the steps it did GAN steps."""
    def disl(steps, gan_steps):
        cfg = tiny(steps)
        return dataclasses.replace(
            cfg, model=dataclasses.replace(cfg.model, model="vae_disl"),
            step=dataclasses.replace(cfg.step, disl_pretrain_steps=gan_steps))  # fmt: skip

    # 3 GAN steps done
    stopped_by_ctrl_c_in_step_3(monkeypatch, lambda: train(disl(6, 3), tmp_path / "cut",
                                                           progress=False))  # fmt: skip
    resumed = train(disl(6, 4), tmp_path / "cut", progress=False)
    straight = train(disl(6, 4), tmp_path / "straight", progress=False)
    assert resumed.steps_run == 3
    for (k, v), w in zip(resumed.model.state_dict().items(), straight.model.state_dict().values(),
                         strict=True):  # fmt: skip
        assert torch.equal(v, w), k
    with pytest.raises(ValueError, match=r"disl_pretrain_steps=4, not 5, and 6 steps in"):
        train(disl(8, 5), tmp_path / "cut", progress=False)
    # a model without a GAN phase does not read the setting: another value is no change
    train(tiny(2), tmp_path / "plain", progress=False)
    other = tiny(3)
    other = dataclasses.replace(other, step=dataclasses.replace(other.step, disl_pretrain_steps=7))
    assert train(other, tmp_path / "plain", progress=False).steps_run == 1


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((8, 0), "bf16"),
                                                  ((8, 9), "bf16"), ((9, 0), "bf16")])  # fmt: skip
def test_auto_precision_follows_the_gpus_compute_capability(monkeypatch, capability, expected):
    """A T4 (7.5) says is_bf16_supported() but only emulates bf16: auto gives it fp16 (with a
    GradScaler); bf16 from Ampere (8.0) on; the CPU stays in fp32."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_precision("auto", torch.device("cuda", 0)) == expected
    assert pick_precision("auto", torch.device("cpu")) == "fp32"
    assert pick_precision("fp16", torch.device("cpu")) == "fp16"  # asked for: given


def test_deterministic_runs_train_under_deterministic_algorithms_and_restore(monkeypatch):
    """deterministic=True (what exact resume needs on a GPU) holds while the run trains, and
    torch's and cuDNN's settings are as before afterwards, also when training fails."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cudnn = torch.backends.cudnn
    seen = []

    def look(step, model, history):
        seen.append((cudnn.deterministic, cudnn.benchmark,
                     torch.are_deterministic_algorithms_enabled()))  # fmt: skip

    before = (cudnn.deterministic, cudnn.benchmark, torch.are_deterministic_algorithms_enabled())
    cudnn.benchmark = True  # a caller's own setting, restored afterwards
    try:
        train(tiny(2, deterministic=True), None, progress=False, callback=look)
        assert seen == [(True, False, True)] * 2
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert (cudnn.deterministic, cudnn.benchmark) == (before[0], True)
        assert torch.are_deterministic_algorithms_enabled() == before[2]
        seen.clear()
        train(tiny(2), None, progress=False, callback=look)  # the default leaves them alone
        assert seen == [(before[0], True, before[2])] * 2
        with pytest.raises(RuntimeError), deterministic_algorithms():
            raise RuntimeError
        assert (cudnn.deterministic, cudnn.benchmark) == (before[0], True)
    finally:
        cudnn.benchmark = before[1]


@pytest.mark.parametrize("first", [False, True])
def test_deterministic_is_resumable_either_way(tmp_path, first):
    """Switching deterministic between a run and its resumption changes rounding, not updates
    (on the CPU, not even rounding: the resumed run is the straight one)."""
    train(tiny(2, deterministic=first), tmp_path / "a", progress=False)
    r = train(tiny(4, deterministic=not first), tmp_path / "a", progress=False)
    straight = train(tiny(4), tmp_path / "b", progress=False)
    assert r.steps_run == 2
    for (k, v), w in zip(r.model.state_dict().items(), straight.model.state_dict().values(),
                         strict=True):  # fmt: skip
        assert torch.equal(v, w), k


def test_divergence_without_a_run_folder_names_no_file(monkeypatch, poison):
    """No out_dir: nothing was saved, so no "Last good state: None"; an fp32 run is not told to
    use fp32."""
    poison(set(range(1, 100)))
    with pytest.raises(TrainingDiverged) as e:
        train(tiny(20, max_nonfinite=2), None, progress=False)
    msg = str(e.value)
    assert "2 steps in a row" in msg and "lower lr (--lr)" in msg
    assert "None" not in msg and "Last good state" not in msg and "fp32" not in msg


def nan_weight_at(step):
    """A callback that makes one of Dec's weights NaN after ``step``, as a bug would."""

    def callback(done, model, history):
        if done == step:
            with torch.no_grad():
                next(model.dec.parameters()).view(-1)[0] = float("nan")

    return callback


def test_non_finite_weights_never_overwrite_the_checkpoint(tmp_path):
    """The weights went NaN after step 3 (every later loss is NaN): the divergence that follows
    keeps the last.pt of step 2 (finite, resumable) rather than saving NaN weights over it."""
    cfg = tiny(50, max_nonfinite=1, checkpoint_every=2)
    with pytest.raises(TrainingDiverged) as e:
        train(cfg, tmp_path, progress=False, callback=nan_weight_at(3))
    assert f"{tmp_path / 'last.pt'} was kept at step 2" in str(e.value)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v.float()).all() for v in ckpt["model"].values())


def test_a_run_that_ends_with_non_finite_weights_is_not_saved(tmp_path):
    """The last steps' NaN weights are not written as the finished run either."""
    with pytest.raises(TrainingDiverged, match="no longer finite .step 3.*not written"):
        train(tiny(3), tmp_path, progress=False, callback=nan_weight_at(1))
    assert not (tmp_path / "last.pt").exists() and not (tmp_path / "samples.png").exists()


def test_nan_gradients_from_finite_losses_move_nothing(tmp_path, capsys):
    """A NaN gamma (past StepConfig's own check, as a bug would be) gives Dec NaN gradients
    while every loss stays finite: those steps are skipped like a NaN loss's, no weight or
    BatchNorm statistic moves, and the run ends with the weights of step 2, saved."""
    cfg = tiny(4)
    kept = {}

    def nan_gamma(done, model, history):
        if done == 2:
            cfg.step.gamma = float("nan")
            kept.update({k: v.clone() for k, v in model.state_dict().items()})

    r = train(cfg, tmp_path, progress=False, callback=nan_gamma)
    assert capsys.readouterr().out.count("step 3: non-finite loss or gradient") == 1
    assert all(torch.equal(v, kept[k]) for k, v in r.model.state_dict().items())
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 4


def test_a_skipped_step_s_finite_losses_stay_out_of_the_logged_means(monkeypatch):
    """Step 3 alone gets a NaN gamma: finite losses, NaN gradients, skipped. A log over steps 1
    to 4 is the mean of steps 1, 2 and 4 as logged one by one: step 3's losses, finite as they
    are, neither join the sum nor the count."""
    def nan_gamma(fn):
        def step(model, x, opts, cfg, **kw):
            bad = dataclasses.replace(cfg)
            bad.gamma = float("nan")  # past StepConfig's own check, as a bug would be
            return fn(model, x, opts, bad, **kw)

        return step

    replace_step(monkeypatch, 2, nan_gamma)
    each = train(tiny(4), None, progress=False).history
    assert each["step"] == [1.0, 2.0, 4.0]  # step 3 skipped: no entry of its own
    once = train(dataclasses.replace(tiny(4), log_every=4), None, progress=False).history
    assert once["step"] == [4.0]
    for name in ("L_llike", "L_prior", "L_GAN"):
        assert once[name][0] == pytest.approx(np.mean(each[name]), rel=1e-5), name


def test_fp16_with_a_grad_scaler_trains_and_resumes_exactly(tmp_path):
    """fp16 (what a T4 gets) runs on the CPU too: the GradScaler's state is in the checkpoint,
    and 3 steps resumed to 6 equal 6 straight, BatchNorm statistics included."""
    train(tiny(3, precision="fp16"), tmp_path / "a", progress=False)
    resumed = train(tiny(6, precision="fp16"), tmp_path / "a", progress=False)
    straight = train(tiny(6, precision="fp16"), tmp_path / "b", progress=False)
    assert resumed.steps_run == 3 and len(straight.history["step"]) == 6
    want = straight.model.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in resumed.model.state_dict().items())


def test_batchnorm_statistics_move_in_training_and_are_plain_tensors_after():
    """The loop keeps the buffers in one tensor per dtype (one op to save or restore them all);
    BatchNorm still updates them in place, and train() hands back ordinary ones."""
    r = train(tiny(3), None, progress=False)
    bns = [m for m in r.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.num_batches_tracked.item() > 0 for m in bns)
    assert all(m.running_mean.abs().sum() > 0 for m in bns)
    memory = {m.running_mean.untyped_storage().data_ptr() for m in bns}
    assert len(memory) == len(bns)  # each buffer its own memory again


def test_pooled_statistics_share_memory_but_not_autograd_versions():
    """Pooled, one buffer's update (in place, as a compiled BatchNorm writes it) is not a change
    to another, which a backward may have saved; restoring the pool restores every buffer."""
    model = model_spec("vaegan").build(tiny(1).model)
    pooled = T._PooledBuffers(model)
    a, b = [m.running_mean for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)][:2]
    assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    saved, version = pooled.copy(), b._version
    a.add_(1.0)
    assert b._version == version and a._version > 0
    pooled.restore_unless(torch.tensor(True), saved)  # a good step keeps what it did
    assert torch.equal(a, torch.ones_like(a))
    pooled.restore_unless(torch.tensor(False), saved)  # a bad one puts the copy back
    assert torch.equal(a, torch.zeros_like(a))
    pooled.release()
    a, b = [m.running_mean for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)][:2]
    assert a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr()


def test_a_step_reads_nothing_back_from_the_device():
    """No host sync in the training loop's steps: besides the log's, the host reads (``.item()``,
    ``bool(t)``, ``.tolist()``...) once every max_nonfinite steps, which steps were skipped. On a
    GPU each read would make Python wait for the step to finish."""
    for model in ("vaegan", "gan", "vae"):
        cfg = tiny(1, flip=True, max_nonfinite=4)
        cfg.model = dataclasses.replace(cfg.model, model=model)
        ops, reads = per_step(cfg)  # 12 steps less 4: reads at steps 4 and 8
        assert reads == 1 / 4 and ops > 0, model


def test_a_diverged_run_stops_within_twice_max_nonfinite_steps_of_its_first_skip(poison):
    """The skips are read every max_nonfinite steps, not only at a log 100 steps away."""
    poison(set(range(5, 100)))  # steps 6 on
    with pytest.raises(TrainingDiverged, match=r"3 steps in a row .*steps 6 to 8") as e:
        train(dataclasses.replace(tiny(100, max_nonfinite=3), log_every=100), None,
              progress=False)  # fmt: skip
    assert "moved nothing" in str(e.value)


def test_statistics_of_skipped_steps_only_are_not_logged_as_zeros(poison):
    """vae_disl logs GAN statistics, then VAE ones; with both GAN steps skipped, the log over
    steps 1-4 has no GAN statistics (not zeros) and the VAE ones are the means of steps 3-4."""
    cfg = dataclasses.replace(tiny(4), log_every=4)
    cfg.model = dataclasses.replace(cfg.model, model="vae_disl")
    cfg.step = dataclasses.replace(cfg.step, disl_pretrain_steps=2)
    poison({0, 1})
    h = train(cfg, None, progress=False).history
    assert h["step"] == [4.0] and "L_GAN" not in h and "L_llike" in h
    poison({0, 1})  # the same run, logged every step
    each = train(dataclasses.replace(cfg, log_every=1), None, progress=False).history
    assert each["step"] == [3.0, 4.0]  # the skipped steps log nothing
    assert h["L_llike"][0] == pytest.approx(sum(each["L_llike"]) / 2, rel=1e-6)


def test_host_reads_counts_each_kind_of_read():
    x = torch.ones(3)
    with HostReads() as outer:
        with HostReads() as inner:
            x.sum().item()
            bool(x.all())
            x.tolist()
            x + 1  # no read
        x.tolist()
    assert inner.count == 3 and outer.count == 4
    assert "tolist" not in vars(torch.Tensor)  # Tensor's own again


def test_a_conditional_model_on_fewer_than_64_faces_saves_its_samples(tmp_path):
    from vaegan_lite.data import ATTR_NAMES

    cfg = tiny(1)
    cfg.model = ModelConfig(model="vaegan", image_size=32, width=0.125, latent_dim=8,
                            enc_fc_dim=32, cond_dim=len(ATTR_NAMES))  # fmt: skip
    train(cfg, tmp_path, progress=False)  # 32 faces: a grid of their 32 attribute vectors
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_a_step_stopped_half_way_is_never_saved(tmp_path, monkeypatch):
    """A second Ctrl-C stops at once, possibly inside a step (Enc updated, Dec not yet): that
    state is not written as any step; last.pt keeps the last whole one and resuming is exact."""
    real = T.model_spec

    def stopped_half_way(fn):
        def step(*args, **kwargs):
            fn(*args, **kwargs)  # the update is applied, the step is not counted yet
            raise KeyboardInterrupt

        return step

    replace_step(monkeypatch, 3, stopped_half_way)
    with pytest.raises(KeyboardInterrupt, match="stopped during step 4: .*last.pt holds step 2$"):
        train(tiny(6, checkpoint_every=2), tmp_path / "a", progress=False)
    assert torch.load(tmp_path / "a" / "last.pt", weights_only=True)["step"] == 2
    with pytest.raises(KeyboardInterrupt, match="^stopped during step 4: nothing saved$"):
        train(tiny(6), tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()
    monkeypatch.setattr(T, "model_spec", real)
    resumed = train(tiny(6, checkpoint_every=2), tmp_path / "a", progress=False)
    straight = train(tiny(6, checkpoint_every=2), tmp_path / "b", progress=False)
    want = straight.model.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in resumed.model.state_dict().items())


def no_data():
    raise AssertionError("the data were built")


def test_a_run_folder_that_cannot_be_written_is_refused_before_the_data(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match=r"afile/x: .*afile is a file, not a folder$"):
        train(tiny(1), tmp_path / "afile" / "x", data=no_data, progress=False)
    if os.path.isdir("/sys"):  # sysfs takes no new files, not even from root
        with pytest.raises(ValueError, match=r"^run folder /sys/vaegan-x: cannot write in /sys"):
            train(tiny(1), "/sys/vaegan-x", data=no_data, progress=False)


def test_a_run_of_other_settings_is_refused_before_the_data(tmp_path):
    train(tiny(2), tmp_path, progress=False)
    with pytest.raises(ValueError, match="seed"):
        train(tiny(4, seed=1), tmp_path, data=no_data, progress=False)


def test_data_that_are_neither_images_nor_a_function_are_one_line():
    for bad in (None, torch.zeros(8, 3, 32, 32, dtype=torch.uint8)):
        with pytest.raises(TypeError, match="^train: data must be .images, attributes. or a "
                                            "function giving them, got"):  # fmt: skip
            T.train(tiny(1), data=bad, progress=False)
    # numpy arrays were an AttributeError ("'numpy.ndarray' object has no attribute 'dim'")
    arrays = (np.zeros((8, 3, 32, 32), np.uint8), np.zeros((8, 0), np.float32))
    with pytest.raises(ValueError, match=r"^train\(data=...\): torch tensors wanted, got "
                                         "ndarray images and ndarray attributes$"):  # fmt: skip
        T.train(tiny(1), data=arrays, progress=False)


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_run_that_saves_no_step_leaves_nothing_behind(tmp_path, monkeypatch):
    """A full disk at the first checkpoint, or any error before it, left a folder holding only
    config.json; the error names the file."""
    monkeypatch.setattr(torch, "save", full_disk)
    out = tmp_path / "runs" / "x"
    with pytest.raises(T.DiskFull, match=r"x/last.pt: cannot write it \(No space left on device\); "
                                         "nothing saved: free some space and run it again$"):
        train(tiny(2), out, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    def fail_at_1(step, model, history):
        raise RuntimeError("a bug")

    (tmp_path / "mine").mkdir()  # a folder that was there stays, without the run's config.json
    for folder in (out, tmp_path / "mine"):
        with pytest.raises(RuntimeError, match="a bug"):
            train(tiny(2), folder, progress=False, callback=fail_at_1)
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
    assert list((tmp_path / "mine").iterdir()) == []


def test_torch_save_raises_what_the_write_raised(tmp_path, monkeypatch):
    """torch.save turns an exception of the file's write (a full disk, a Ctrl-C) into a
    RuntimeError about its zip writer; atomic_save raises the write's own exception, so a full
    disk reads as one, with its file named, and a Ctrl-C as a Ctrl-C (not as a disk error)."""
    import io

    from vaegan_lite import checkpoint

    class Failing(io.BytesIO):
        def __init__(self, error: BaseException) -> None:
            super().__init__()
            self.error = error

        def write(self, data):
            if self.tell() > 100:  # after the zip's first record, as a disk fills up
                raise self.error
            return super().write(data)

    for error in (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), KeyboardInterrupt()):
        monkeypatch.setattr(checkpoint, "open", lambda *a, e=error: Failing(e), raising=False)
        with pytest.raises(type(error)) as e:
            checkpoint.atomic_save({"w": torch.zeros(10_000)}, tmp_path / "a.pt")
        assert e.value is error and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(checkpoint, "open", lambda *a: Failing(OSError(errno.ENOSPC, "No space "
                                                                      "left on device")),
                        raising=False)  # fmt: skip
    with pytest.raises(T.DiskFull, match=r"x/last.pt: cannot write it \(No space left on device\)"):
        train(tiny(2), tmp_path / "x", progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    def another_error(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(torch, "save", another_error)
    with pytest.raises(RuntimeError, match="a bug"):  # other errors pass through unchanged
        checkpoint.atomic_save({}, tmp_path / "a.pt")


def test_a_ctrl_c_during_the_last_save_waits_for_it(tmp_path, monkeypatch):
    """The loop's deferred Ctrl-C stays in place through the last save: the save completes, and
    the run then stops with a message saying so."""
    real = T.atomic_save

    def save_with_ctrl_c(state, path):
        os.kill(os.getpid(), signal.SIGINT)  # delivered at once, in this (the main) thread
        real(state, path)

    monkeypatch.setattr(T, "atomic_save", save_with_ctrl_c)
    # the caller's handler: Python's default, or SIG_IGN where the shell started the tests in the
    # background (nohup ... &)
    callers = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match=r"the run finished: .*last.pt holds step 2"):
        train(tiny(2), tmp_path, progress=False)
    assert T.read_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert signal.getsignal(signal.SIGINT) is callers  # the caller's again


def test_a_failed_run_removes_only_what_it_wrote(tmp_path):
    """A config.json that something else wrote into the folder while this run built its data
    (not another training: that is refused) stays when this run fails."""
    out = tmp_path / "run"

    def another_run_starts_then_this_one_fails():
        out.mkdir(exist_ok=True)  # made already: this run holds it while it trains
        (out / "config.json").write_text("another run's")
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        train(tiny(2), out, data=another_run_starts_then_this_one_fails, progress=False)
    assert (out / "config.json").read_text() == "another run's"


def test_a_failed_save_keeps_a_folder_that_holds_a_checkpoint(tmp_path, monkeypatch):
    train(tiny(2), tmp_path, progress=False)
    before = (tmp_path / "last.pt").read_bytes()
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(T.DiskFull, match=r"last.pt: cannot write it \(No space left on device\); "
                                         r".*/last.pt holds step 2: free some space"):  # not 4
        train(tiny(4), tmp_path, progress=False)
    assert (tmp_path / "last.pt").read_bytes() == before and (tmp_path / "config.json").exists()
    monkeypatch.undo()
    resumed = train(tiny(4), tmp_path, progress=False)
    straight = train(tiny(4), tmp_path / "b", progress=False)
    want = straight.model.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in resumed.model.state_dict().items())


def test_progress_bars_are_silent_where_tqdm_disable_is_set(monkeypatch):
    """tqdm's notebook bar ignores $TQDM_DISABLE; the book's build sets it so that no chapter page
    holds a widget (which would load require.js and a widget manager from CDNs)."""
    import tqdm.auto
    import tqdm.notebook

    from vaegan_lite._progress import progress_bar

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)  # what tqdm.auto is in Jupyter
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_bar(total=3).disable
    assert progress_bar(total=3, disable=False).disable
    assert T._progress(0, 3, enabled=True).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.std.tqdm)
    bar = progress_bar(total=3, disable=False)
    assert not bar.disable
    bar.close()


def test_a_run_resumed_between_two_logs_logs_what_an_unbroken_one_does(tmp_path, monkeypatch):
    """The steps since the last log are saved with the weights: the first log after a resume
    averages the same steps as an unbroken run's, not only those since the resume."""
    cfg = dataclasses.replace(tiny(8), log_every=4)
    stopped_by_ctrl_c_in_step_3(monkeypatch, lambda: train(cfg, tmp_path / "a", progress=False))
    assert torch.load(tmp_path / "a" / "last.pt", weights_only=True)["step"] == 3
    resumed = train(cfg, tmp_path / "a", progress=False)
    straight = train(cfg, tmp_path / "b", progress=False)
    assert straight.history["step"] == [4.0, 8.0]
    assert resumed.history == straight.history


def test_a_finished_run_trained_further_logs_what_an_unbroken_longer_one_does(tmp_path):
    """A run that ended between two logs logged its end; trained further (a larger --steps),
    that point is not one of the longer run's and its steps count in the next log, so the
    history and the weights are the unbroken run's. The end's log is kept while it is the end."""
    short, long = (dataclasses.replace(tiny(n), log_every=4) for n in (6, 8))
    first = train(short, tmp_path / "a", progress=False)
    assert first.history["step"] == [4.0, 6.0]  # the end, between two logs, is logged
    assert train(short, tmp_path / "a", progress=False).history == first.history
    further = train(long, tmp_path / "a", progress=False)
    straight = train(long, tmp_path / "b", progress=False)
    assert straight.history["step"] == [4.0, 8.0] and further.steps_run == 2
    assert further.history == straight.history
    a, b = further.model.state_dict(), straight.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_end_with_no_log_keeps_every_log_when_trained_further(tmp_path, poison):
    """A run whose last window between two logs had only skipped steps logged nothing at its end:
    training it further must not take a real log for the end's."""
    poison({4})  # step 5 of 5, the only step after the log at 4
    short, long = (dataclasses.replace(tiny(n), log_every=4) for n in (5, 8))
    assert train(short, tmp_path, progress=False).history["step"] == [4.0]
    assert train(long, tmp_path, progress=False).history["step"] == [4.0, 8.0]


def test_a_resumed_log_window_lands_on_the_run_s_device(tmp_path, monkeypatch):
    """The saved window's sums go where the steps add to them, the run's device, not where the
    weights were while the checkpoint was read (the CPU): on a GPU the first step would fail.
    PyTorch's meta device stands in for a GPU."""
    cfg = dataclasses.replace(tiny(8), log_every=4)
    stopped_by_ctrl_c_in_step_3(monkeypatch, lambda: train(cfg, tmp_path, progress=False))
    run = T._start(cfg, "fp32", torch.device("meta"), tmp_path / "last.pt")
    assert run.window.sums and all(v.is_meta for v in run.window.sums.values())
    assert all(p.is_meta for p in run.model.parameters())


def test_a_log_window_over_vae_disl_s_switch_averages_each_statistic_over_its_own_steps():
    """Three GAN steps, then one VAE step, in one window: L_GAN is the mean of three, L_llike of
    one, not both of four."""
    window = T._LogWindow()
    ok = torch.tensor(True)
    for _ in range(3):
        window.add({"L_GAN": torch.tensor(1.0)}, ok)
    window.add({"L_llike": torch.tensor(10.0)}, ok)
    window.add({"L_llike": torch.tensor(99.0)}, torch.tensor(False))  # a skipped step counts not
    sums, counts = window.read_sums()
    assert counts == {"L_GAN": 3, "L_llike": 1}
    assert T._mean_over_processes(sums, counts) == {"L_GAN": 1.0, "L_llike": 10.0}


@pytest.mark.parametrize("images, attrs, says", [
    (torch.zeros(3, 3, 32, 32, dtype=torch.uint8), torch.zeros(3, 0),
     "3 training images, fewer than the batch size 8"),
    (torch.zeros(8, 3, 64, 64, dtype=torch.uint8), torch.zeros(8, 0),
     r"uint8 images \[N, 3, 32, 32\] wanted, got torch.uint8 \[8, 3, 64, 64\]"),
    (torch.zeros(8, 3, 32, 32), torch.zeros(8, 0), r"uint8 images .* wanted, got torch.float32"),
    (torch.zeros(8, 3, 32, 32, dtype=torch.uint8), torch.zeros(7, 0),
     r"attributes \[7, 0\] for 8 images"),
])  # fmt: skip
def test_data_handed_to_train_is_checked_in_one_line(images, attrs, says, tmp_path):
    """What training_tensors checks of what it reads, train(data=...) checks of what it is given
    (too few images were a ZeroDivisionError in the batch sampler), before any file is written."""
    with pytest.raises(ValueError, match=r"^train\(data=\.\.\.\): " + says):
        train(tiny(2), tmp_path / "run", progress=False, data=(images, attrs))
    assert not (tmp_path / "run").exists()


def test_a_run_moved_to_another_precision_goes_on_and_says_so(tmp_path, monkeypatch, capsys):
    """Resumed where "auto" picks another precision (a Colab session with another GPU), a run
    goes on, and says in one line that it is no longer bit for bit an unbroken one."""
    train(tiny(2, precision="auto"), tmp_path, progress=False)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["trained_on"] == ["cpu", "fp32"]
    capsys.readouterr()
    monkeypatch.setattr(T, "pick_precision", lambda precision, device: "bf16")
    r = train(tiny(3, precision="auto"), tmp_path, progress=False)
    assert r.steps_run == 1
    said = capsys.readouterr().out.strip().splitlines()
    assert said == [f"{tmp_path / 'last.pt'}: trained so far on cpu in fp32, now on cpu in bf16: "
                    "the run goes on, though not bit for bit as an unbroken one"]  # fmt: skip
    train(tiny(4, precision="auto"), tmp_path, progress=False)  # bf16 again: nothing to say
    assert capsys.readouterr().out == ""


def test_flip_batch_mirrors_half_by_seed_and_step():
    x = torch.arange(64 * 3 * 4 * 4, dtype=torch.float32).view(64, 3, 4, 4)
    a = T.flip_batch(x, seed=0, step=5)
    assert torch.equal(a, T.flip_batch(x, seed=0, step=5))
    flipped = (a != x).flatten(1).any(1)
    assert 16 < flipped.sum() < 48
    assert torch.equal(a[flipped], x[flipped].flip(-1)) and torch.equal(a[~flipped], x[~flipped])
    assert not torch.equal(a, T.flip_batch(x, seed=0, step=6))
    assert not torch.equal(a, T.flip_batch(x, seed=1, step=5))
    rng = torch.get_rng_state()
    T.flip_batch(x, 0, 0)
    assert torch.equal(rng, torch.get_rng_state())  # the training RNG is left alone


def test_the_readme_s_python_example_trains_resumes_and_draws(tmp_path, monkeypatch):
    """README.md, "From Python": the code as printed, run in an empty folder; then again with two
    more steps, which resumes rather than starting over."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"## From Python\n.*?```python\n(.*?)```", readme, re.S)[1]
    monkeypatch.chdir(tmp_path)
    first: dict = {}
    exec(code, first)
    assert first["run"].steps_run == 20 and (tmp_path / "runs/first/sixteen.png").is_file()
    again: dict = {}
    exec(code.replace("steps=20", "steps=22"), again)
    assert again["run"].steps_run == 2


def test_a_run_resumed_on_other_images_is_refused(tmp_path):
    """train() takes any images: a run resumed on others than it started with would go on as if
    nothing changed. Its checkpoint keeps their fingerprint; other images are refused in one
    line, the checkpoint untouched; older checkpoints (no fingerprint) resume as before."""
    cfg = tiny(2)
    faces = training_tensors(cfg, progress=False)
    train(cfg, tmp_path, data=faces, progress=False)
    before = (tmp_path / "last.pt").read_bytes()
    others = (faces[0].flip(0), faces[1].flip(0))  # the same faces in another order
    with pytest.raises(ValueError, match=r"last.pt was trained on other images than these "
                                         r"\(fingerprint \w+, these \w+\): hand it"):  # fmt: skip
        train(tiny(4), tmp_path, data=others, progress=False)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert train(tiny(4), tmp_path, data=faces, progress=False).steps_run == 2
    old = torch.load(tmp_path / "last.pt", weights_only=True)
    del old["data"]
    torch.save(old, tmp_path / "last.pt")
    assert train(tiny(5), tmp_path, data=others, progress=False).steps_run == 1
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert saved["data"] == T.data_fingerprint(others[0])  # from now on, these are its images


def test_an_unconditional_run_resumes_whatever_attributes_come_with_its_images(tmp_path):
    """An unconditional model never reads the attributes, and train() takes any (even none):
    a run started from Python without them resumed from the command line, which hands it the
    faces' own, was refused as trained "on other images". A conditional run still is, naming
    the attributes; a checkpoint whose fingerprint included the attributes resumes."""
    cfg = tiny(2)
    images, attrs = training_tensors(cfg, progress=False)
    train(cfg, tmp_path / "u", data=(images, attrs[:, :0]), progress=False)
    assert train(tiny(3), tmp_path / "u", data=(images, attrs), progress=False).steps_run == 1
    with pytest.raises(ValueError, match="trained on other images than these"):
        train(tiny(4), tmp_path / "u", data=(images.flip(0), attrs), progress=False)
    old = torch.load(tmp_path / "u" / "last.pt", weights_only=True)
    old["data"] = T.data_fingerprint(images, attrs)  # as checkpoints before this change hold
    del old["data_of"]
    torch.save(old, tmp_path / "u" / "last.pt")
    with pytest.raises(ValueError, match="trained on other images or attributes than these"):
        train(tiny(4), tmp_path / "u", data=(images, 1 - attrs), progress=False)  # can't tell
    assert train(tiny(4), tmp_path / "u", data=(images, attrs), progress=False).steps_run == 1

    cond = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, cond_dim=attrs.shape[1]))
    train(cond, tmp_path / "c", data=(images, attrs), progress=False)
    with pytest.raises(ValueError, match="trained on other images or attributes than these"):
        train(dataclasses.replace(cond, steps=3), tmp_path / "c", data=(images, 1 - attrs),
              progress=False)  # fmt: skip


def test_a_run_folder_is_held_across_processes_and_freed_when_one_dies(tmp_path):
    """Another process training into the folder: this one is refused before it trains, and
    every file stays as it was. Killed, the other lets go of the folder (the kernel drops its
    lock); its lock file is left, taken over by the next training and removed when it ends."""
    import subprocess
    import sys

    from vaegan_lite.files import LOCK_FILE

    code = ("import sys, time\nfrom vaegan_lite.files import exclusive_folder\n"
            "with exclusive_folder(sys.argv[1]) as held:\n    print(held, flush=True)\n"
            "    time.sleep(60)\n")  # fmt: skip
    other = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert other.stdout.readline().strip() == "True"
        with pytest.raises(T.FolderInUse, match="another process is training into it"):
            train(tiny(1), tmp_path, progress=False)
        assert [p.name for p in tmp_path.iterdir()] == [LOCK_FILE]
    finally:
        other.kill()
        other.wait()
    assert train(tiny(1), tmp_path, progress=False).steps_run == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "last.pt", "samples.png"]


def test_the_folder_lock_where_locks_or_the_lock_file_are_refused(tmp_path, monkeypatch):
    """A file system without locks (NFS without lockd, some FUSE mounts): nothing is held and no
    lock file stays behind (it kept a failed run's folder, which then was no longer "fresh").
    Another user's lock file that refuses writing: read-only still takes the lock."""
    import errno
    import fcntl

    from vaegan_lite import files
    from vaegan_lite.files import LOCK_FILE, exclusive_folder

    with exclusive_folder(tmp_path / "a") as held, exclusive_folder(tmp_path / "a") as again:
        assert held and not again

    real_open = os.open

    def no_writing(path, flags, *mode):
        if str(path).endswith(LOCK_FILE) and flags & os.O_RDWR:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, *mode)

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / LOCK_FILE).write_text("")  # left by another user's killed run
    with exclusive_folder(tmp_path / "b") as held:
        monkeypatch.setattr(files.os, "open", no_writing)
        with exclusive_folder(tmp_path / "b") as again:
            assert held and not again
    monkeypatch.undo()

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with exclusive_folder(tmp_path / "c") as held:
        assert held and list((tmp_path / "c").iterdir()) == []
    with pytest.raises(RuntimeError, match="a bug"):
        train(tiny(2), tmp_path / "d", data=lambda: (_ for _ in ()).throw(RuntimeError("a bug")),
              progress=False)  # fmt: skip
    assert not (tmp_path / "d").exists()  # a failed run that saved nothing leaves no folder


def test_a_full_disk_found_before_training_is_not_bad_input(tmp_path, monkeypatch):
    """The check before any work writes a file: on a full disk it said "cannot write in ..." as
    bad input (ValueError, exit 2), like a path under a file. It is DiskFull (exit 1)."""
    import errno
    import tempfile

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "TemporaryFile", full)
    with pytest.raises(T.DiskFull, match=r"^run folder .*/r: cannot write in .* \(No space left"):
        train(tiny(1), tmp_path / "r", progress=False)
    from vaegan_lite.cli import main

    argv = ["train", "--steps", "1", "--out", str(tmp_path / "c"), "--image-size", "32",
            "--width", "0.125", "--latent-dim", "8", "--enc-fc-dim", "32"]  # fmt: skip
    assert main(argv) == 1
    assert list(tmp_path.iterdir()) == []


def test_host_reads_do_not_count_cpu_dtype_conversions():
    """HostReads counts copies from a GPU to the CPU, not CPU-to-CPU conversions."""
    from vaegan_lite.bench import HostReads
    t = torch.ones(3)
    with HostReads() as r:
        t.to("cpu", torch.float64)
        t.double().to(device="cpu", dtype=torch.float16)
    assert r.count == 0 and r.ops > 0
