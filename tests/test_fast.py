"""models/fast.py's steps apply the same updates as the reference steps of models/vaegan.py,
with fewer FLOPs.

Both steps run from the same weights and the same random draws (float64, SGD with lr 1, so a
parameter's change is minus the applied gradient); every network's change and every BatchNorm
running statistic must agree to rounding, for each modelling switch the fast step treats apart.
"""

import copy

import pytest
import torch
from torch import nn
from torch._functorch import config as functorch_config

from vaegan_lite.bench import StepRunner, count_flops
from vaegan_lite.cli import main
from vaegan_lite.config import PRESETS, ModelConfig, StepConfig, TrainConfig, config_for
from vaegan_lite.data import training_tensors
from vaegan_lite.models import algorithm1_step, gan_step, model_spec
from vaegan_lite.models.fast import algorithm1_step_fast, gan_step_fast
from vaegan_lite.train import train


@pytest.fixture
def compare(small_model, applied_update, assert_same):
    return lambda *args, **kw: _compare(small_model, applied_update, assert_same, *args, **kw)


def _compare(small_model, applied_update, assert_same, ref_step, fast_step, batch, cfg,
             model="vaegan", **kw):  # fmt: skip
    """Run both steps from the same state; assert equal updates and BatchNorm statistics."""
    m_ref = small_model(model)
    m_fast = copy.deepcopy(m_ref)
    want = applied_update(ref_step, m_ref, batch, cfg, **kw)
    got = applied_update(fast_step, m_fast, batch, cfg, **kw)
    moved = 0
    for net in ("enc", "dec", "dis"):
        if all(d.abs().max() == 0 for d in want[net]):
            assert all(d.abs().max() == 0 for d in got[net]), f"{net} moved, it must not"
            continue
        assert_same(got[net], want[net], net)
        moved += 1
    assert moved > 0
    for (name, a), b in zip(m_ref.named_buffers(), m_fast.buffers(), strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12), name


@pytest.mark.parametrize("dis_batch", ["separate", "joint"])
@pytest.mark.parametrize("variant", ["saturating", "non_saturating"])
def test_vaegan_step_matches_reference(batch, dis_batch, variant, gamma, compare):
    cfg = StepConfig(gamma=gamma, gan_variant=variant, dis_batch=dis_batch)
    compare(algorithm1_step, algorithm1_step_fast, batch, cfg)


@pytest.mark.parametrize("variant", ["saturating", "non_saturating"])
def test_authors_variant_matches_reference(batch, variant, compare):
    # w instead of gamma, Dis never sees reconstructions, the equilibrium trick (which skips
    # Dec or Dis on this batch: the fast step then computes no gradient for it).
    cfg = StepConfig(w=1e-3, dis_sees_recon=False, gan_variant=variant, equilibrium=True,
                     eq_center=0.9, eq_margin=0.05)  # fmt: skip
    compare(algorithm1_step, algorithm1_step_fast, batch, cfg)
    cfg.equilibrium = False
    compare(algorithm1_step, algorithm1_step_fast, batch, cfg)


@pytest.mark.parametrize("adversarial", [False, True])
def test_pixel_models_match_reference(batch, adversarial, gamma, compare):
    """vae (pixel likelihood, no GAN) and vaegan_dis0 (pixel likelihood + GAN)."""
    cfg = StepConfig(gamma=gamma, pixel_sigma=0.3)
    model = "vaegan_dis0" if adversarial else "vae"
    compare(algorithm1_step, algorithm1_step_fast, batch, cfg, model=model,
            metric="pixel", adversarial=adversarial)  # fmt: skip


def test_frozen_metric_matches_reference(batch, small_model, applied_update, assert_same):
    """VAE_{Dis_l}'s second phase, as the trainer picks it: cfg.fast chooses the fast twin."""
    m_ref = small_model("vae_disl")
    m_fast = copy.deepcopy(m_ref)
    ref, fast = StepConfig(), StepConfig(fast=True)
    want = applied_update(model_spec("vae_disl").step(0, ref), m_ref, batch, ref)
    got = applied_update(model_spec("vae_disl").step(0, fast), m_fast, batch, fast)
    for net in ("enc", "dec"):
        assert_same(got[net], want[net], net)
    assert all(d.abs().max() == 0 for d in want["dis"] + got["dis"])  # the metric stays frozen
    for (name, a), b in zip(m_ref.named_buffers(), m_fast.buffers(), strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12), name


@pytest.mark.parametrize("dis_batch", ["separate", "joint"])
@pytest.mark.parametrize("variant", ["saturating", "non_saturating"])
def test_gan_step_matches_reference(batch, dis_batch, variant, compare):
    cfg = StepConfig(gan_variant=variant, dis_batch=dis_batch)
    compare(gan_step, gan_step_fast, batch, cfg, model="gan")


def test_fp16_scaler_and_bf16_autocast(batch, small_model, applied_update, gamma):
    """The loss scaling of fp16 (GradScaler) and bf16 autocast go through the fast step too."""
    cfg = StepConfig(gamma=gamma)
    m_ref = small_model().float()
    m_fast = copy.deepcopy(m_ref)
    x = batch.float()
    kw = {"scaler": torch.amp.GradScaler("cpu", init_scale=2.0**10)}
    want = applied_update(algorithm1_step, m_ref, x, cfg, **kw)
    kw = {"scaler": torch.amp.GradScaler("cpu", init_scale=2.0**10)}
    got = applied_update(algorithm1_step_fast, m_fast, x, cfg, **kw)
    for net in ("enc", "dec", "dis"):
        for g, w in zip(got[net], want[net], strict=True):
            assert torch.allclose(g, w, rtol=1e-4, atol=1e-6 * w.abs().max().item()), net
    # bf16 rounds differently in the two steps' orders of work: the same direction, not digits
    m_ref = small_model().float()
    m_fast = copy.deepcopy(m_ref)
    want = applied_update(algorithm1_step, m_ref, x, cfg,
                          autocast=torch.autocast("cpu", dtype=torch.bfloat16))  # fmt: skip
    got = applied_update(algorithm1_step_fast, m_fast, x, cfg,
                         autocast=torch.autocast("cpu", dtype=torch.bfloat16))  # fmt: skip
    for net in ("enc", "dec", "dis"):
        g, w = (torch.cat([d.flatten() for d in u[net]]) for u in (got, want))
        assert torch.isfinite(g).all() and w.abs().max() > 0, net
        assert torch.nn.functional.cosine_similarity(g, w, dim=0) > 0.999, net  # gamma x3: 0.995


@pytest.fixture
def flops(small_model):
    return lambda *args, **kw: _flops(small_model, *args, **kw)


def _flops(small_model, step, cfg, batch, model="vaegan", **kw):
    m = small_model(model)
    opts = {n: torch.optim.SGD(getattr(m, n).parameters(), lr=0.0) for n in ("enc", "dec", "dis")}
    return count_flops(lambda: step(m, batch, opts, cfg, **kw))


def test_fast_step_never_does_more_work(batch, flops):
    for variant in ("saturating", "non_saturating"):
        for dis_batch in ("separate", "joint"):
            cfg = StepConfig(gan_variant=variant, dis_batch=dis_batch)
            ref, fast = flops(algorithm1_step, cfg, batch), flops(algorithm1_step_fast, cfg, batch)
            assert fast <= ref * 1.001, (variant, dis_batch)
    # Saturating loss, separate statistics: Dis's weight pass also gives Dec its upstream.
    cfg = StepConfig(gan_variant="saturating")
    assert flops(algorithm1_step_fast, cfg, batch) < 0.95 * flops(algorithm1_step, cfg, batch)
    # VAE: Enc and Dec share one pass.
    kw = {"metric": "pixel", "adversarial": False}
    fast = flops(algorithm1_step_fast, cfg, batch, "vae", **kw)
    assert fast < 0.9 * flops(algorithm1_step, cfg, batch, "vae", **kw)


@pytest.mark.parametrize("model", ["vaegan", "gan", "vae"])
def test_training_with_fast_equals_training_without(model):
    """train() with --fast: the same weights after a few steps (float32, to rounding)."""
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))  # not the test order's
    data = (images, torch.zeros(16, 0))
    nets = ModelConfig(model=model, image_size=32, width=0.125, latent_dim=8, enc_fc_dim=64)
    out = []
    for fast in (False, True):
        cfg = TrainConfig(model=copy.deepcopy(nets), step=StepConfig(fast=fast), batch_size=8,
                          dataset_size=16, steps=3, device="cpu", log_every=1)  # fmt: skip
        out.append(train(cfg, progress=False, data=data))
    a, b = (r.model.state_dict() for r in out)
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6), k
    assert out[0].history.keys() == out[1].history.keys()


def test_bench_command_prints_flops_peak_and_img_per_s(monkeypatch, capsys):
    import vaegan_lite.bench as bench

    # The peaks are large matmuls/convolutions (seconds on a CPU): faked here, timed in bench.
    monkeypatch.setattr(bench, "matmul_peak", lambda device, precision: (1e11, 5e10))
    monkeypatch.setattr(bench, "conv_peak", lambda device, precision: (2e11, 1e11))
    argv = ["bench", "--model", "vaegan", "--image-size", "32", "--width", "0.125",
            "--batch-size", "4", "--steps", "2", "--warmup", "1", "--device", "cpu", "--fast",
            "--channels-last", "--precision", "bf16"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].endswith(" img/s") and float(lines[-1].split()[0]) > 0
    text = "\n".join(lines)
    assert "model FLOPs per image" in text and "fraction of the bf16 matmul peak" in text


def test_bench_times_each_step_alone_then_all_back_to_back(monkeypatch):
    """bench runs warm-up, one counted step, ``steps`` steps timed alone, then ``steps`` run back
    to back (synced once, as training runs them), and reports a rate for both."""
    import vaegan_lite.bench as bench

    monkeypatch.setattr(bench, "matmul_peak", lambda device, precision: (1e11, 5e10))
    monkeypatch.setattr(bench, "conv_peak", lambda device, precision: (2e11, 1e11))
    calls, syncs = [], []
    step = StepRunner.__call__
    monkeypatch.setattr(StepRunner, "__call__", lambda self: (calls.append(1), step(self))[1])
    monkeypatch.setattr(bench, "_sync", lambda device: syncs.append(len(calls)))
    r = bench.bench(config_for(PRESETS["smoke"], "vaegan"), steps=3, warmup=2)
    assert len(calls) == 2 + 1 + 3 + 3
    assert syncs[-2:] == [6, 9]  # the last three steps: one sync before, one after
    assert r.images_per_s > 0 and r.pipelined_images_per_s > 0 and len(r.step_seconds) == 3


@pytest.mark.parametrize("model", ["vae", "vaegan", "bigan"])
def test_compile_covers_every_trained_network_in_training_and_in_bench(monkeypatch, model):
    """compile=True compiles each network the model trains (BiGAN's joint Dis too), the same in
    train() and in bench's StepRunner, so the bench times what training runs."""
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: compiled.append(self))
    cfg = config_for(PRESETS["smoke"], model, steps=0, compile=True)
    want = model_spec(model).networks
    r = train(cfg, None, data=training_tensors(cfg, progress=False), progress=False)
    assert compiled == [getattr(r.model, n) for n in want]
    compiled.clear()
    runner = StepRunner(cfg)
    assert compiled == [getattr(runner.model, n) for n in want]


@pytest.mark.parametrize("sees_recon", [True, False])
def test_the_fakes_cross_entropy_is_over_the_fakes_dis_is_trained_on(batch, small_model,
                                                                    sees_recon):
    """The equilibrium trick reads fake_bce: with dis_sees_recon=False (the authors' CelebA run)
    Dis is trained on Dec(z_p) only, so the reconstructions must not count in it, in either step."""
    cfg = StepConfig(dis_sees_recon=sees_recon)
    for step in (algorithm1_step, algorithm1_step_fast):
        model = small_model("vaegan")
        seen: list[torch.Tensor] = []  # Dis's logits, call by call: x, then x~, then x_p
        model.dis.register_forward_hook(lambda mod, inp, out, seen=seen: seen.append(out[0]))
        opts = {n: torch.optim.SGD(getattr(model, n).parameters(), lr=0.0)
                for n in ("enc", "dec", "dis")}  # fmt: skip
        torch.manual_seed(1)
        stats = step(model, batch, opts, cfg)
        assert len(seen) == 3, step.__name__  # separate batches: x, then x~, then x_p
        real, recon, prior = seen
        both, only_prior = (nn.functional.softplus(f.float()).mean()
                            for f in (torch.cat([recon, prior]), prior))  # fmt: skip
        assert not torch.allclose(both, only_prior, rtol=1e-4)  # the check can tell them apart
        want = both if sees_recon else only_prior
        assert torch.allclose(stats["fake_bce"], want, rtol=1e-6), step.__name__


@pytest.mark.parametrize("model", ["vaegan", "bigan", "avae"])
def test_compiled_networks_train_a_step(monkeypatch, model):
    """A compiled model trains: Algorithm 1's three gradients from one graph (retain_graph) work
    through compiled backward graphs. aot_eager traces as the GPU's inductor does, without a
    C++ compiler."""
    compile_ = nn.Module.compile
    monkeypatch.setattr(nn.Module, "compile",
                        lambda self, *a, **k: compile_(self, backend="aot_eager"))
    default = functorch_config.donated_buffer  # a torch config: monkeypatch cannot see it
    functorch_config.donated_buffer = True  # torch's default, which prepare_model must undo
    try:
        # Two layouts in one process, as a benchmark runs them: the second compiles the
        # networks' code again, and that compile donates buffers.
        for channels_last in (False, True):
            cfg = config_for(PRESETS["smoke"], model, steps=3, compile=True,
                             channels_last=channels_last)  # fmt: skip
            r = train(cfg, None, data=training_tensors(cfg, progress=False), progress=False)
            assert r.steps_run == 3 and all(p.isfinite().all() for p in r.model.parameters())
    finally:
        functorch_config.donated_buffer = default


@pytest.mark.parametrize("model", ["vae", "vaegan"])
def test_beta_weighs_the_encoders_kl_alone(batch, small_model, applied_update, compare, model):
    """StepConfig.beta (the AVAE paper's weight on VAE/GAN's KL) scales one term of Enc's update,
    L_prior's, and leaves Dec's and Dis's alone; the fast step agrees."""
    kw = {"metric": "pixel", "adversarial": False} if model == "vae" else {}
    compare(algorithm1_step, algorithm1_step_fast, batch, StepConfig(beta=2.5), model=model, **kw)
    m = small_model(model)
    ups = {b: applied_update(algorithm1_step, copy.deepcopy(m), batch, StepConfig(beta=b), **kw)
           for b in (1.0, 2.0, 3.5)}  # fmt: skip
    for net in ("dec", "dis"):
        assert all(torch.equal(a, b) for a, b in zip(ups[1.0][net], ups[3.5][net], strict=True))
    # plain SGD with a unit rate: Enc moves by -(grad L_llike + beta grad L_prior), linear in beta
    one = [b - a for a, b in zip(ups[1.0]["enc"], ups[2.0]["enc"], strict=True)]
    assert max(d.abs().max() for d in one) > 0
    for a, b, d in zip(ups[1.0]["enc"], ups[3.5]["enc"], one, strict=True):
        torch.testing.assert_close(b - a, 2.5 * d, rtol=1e-5, atol=1e-9)


def test_bench_times_vae_disl_on_its_frozen_metric():
    """``bench`` times vae_disl's second phase (a VAE on the frozen Dis): Dis does not move."""
    from vaegan_lite.bench import StepRunner
    from vaegan_lite.config import TrainConfig
    cfg = TrainConfig(model=ModelConfig(model="vae_disl", image_size=32, width=0.125,
                                        latent_dim=8, enc_fc_dim=32), batch_size=4, device="cpu",
                      steps=10, step=StepConfig(disl_pretrain_steps=5))
    run = StepRunner(cfg)
    before = copy.deepcopy(run.model.dis.state_dict())
    run()
    for k, v in run.model.dis.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bench_reports_the_flops_of_one_step_per_image(monkeypatch, one_thread):
    """flops_per_image is one counted training step's FLOPs over the batch, not the batch's."""
    import vaegan_lite.bench as bench

    monkeypatch.setattr(bench, "matmul_peak", lambda device, precision: (1e11, 5e10))
    monkeypatch.setattr(bench, "conv_peak", lambda device, precision: (2e11, 1e11))
    cfg = TrainConfig(model=ModelConfig(image_size=32, width=0.125, latent_dim=8, enc_fc_dim=32),
                      batch_size=4, dataset_size=4, steps=1, device="cpu")  # fmt: skip
    r = bench.bench(cfg, steps=1, warmup=0)
    assert r.flops_per_image == count_flops(StepRunner(cfg)) / cfg.batch_size > 0
    assert r.fraction_of_peak == pytest.approx(r.images_per_s * r.flops_per_image / 1e11)


def test_the_matmul_peak_counts_two_flops_per_multiply_add(monkeypatch):
    """An n x n matmul is 2 n^3 FLOPs: the peak (and so every "fraction of peak") rests on it.
    A clock that moves one second per reading makes the best of the runs one second long."""
    import types

    import vaegan_lite.bench as bench

    ticks = {"wall": 0.0, "cpu": 0.0}

    def tick(kind):
        ticks[kind] += 1.0
        return ticks[kind]

    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: tick("wall"),
                                                             process_time=lambda: tick("cpu")))
    n, reps = 16, 3
    assert bench.matmul_peak(torch.device("cpu"), "fp32", n=n, reps=reps) == (2 * n**3 * reps,) * 2
