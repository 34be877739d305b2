"""The optimizer a flag on the device can call off, and the step that decides without the host."""

import copy
import dataclasses
import warnings

import pytest
import torch

from vaegan_lite.config import ModelConfig, StepConfig, TrainConfig
from vaegan_lite.data import training_tensors
from vaegan_lite.models import VAEGAN, make_optimizers
from vaegan_lite.models.vaegan import algorithm1_step, finish_step
from vaegan_lite.optim import RMSprop
from vaegan_lite.train import train

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (a GPU)")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]


def small_net(device):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 4),
    )  # fmt: skip
    return net.to(device)


def backward(net, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 3, 8, 8, generator=g).to(next(net.parameters()).device)
    net.zero_grad()
    net(x).square().sum().backward()


@pytest.mark.parametrize("device", DEVICES)
def test_masked_step_is_torchs_rmsprop_bit_for_bit(device):
    """Where ok is True: the weights and the optimizer's state equal torch.optim.RMSprop's."""
    ours, theirs = small_net(device), small_net(device)
    opt = RMSprop(ours.parameters(), lr=3e-4, alpha=0.9)
    ref = torch.optim.RMSprop(theirs.parameters(), lr=3e-4, alpha=0.9, foreach=True)
    ok = torch.tensor(True, device=device)
    for seed in range(5):
        backward(ours, seed)
        backward(theirs, seed)
        opt.masked_step(ok)
        ref.step()
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(p, q)
    mine, want = opt.state_dict()["state"], ref.state_dict()["state"]
    assert mine.keys() == want.keys()
    for k in want:
        assert torch.equal(mine[k]["square_avg"], want[k]["square_avg"])
        assert torch.equal(mine[k]["step"], want[k]["step"])
    ref.load_state_dict(opt.state_dict())  # the same state: checkpoints load either way


@pytest.mark.parametrize("device", DEVICES)
def test_a_called_off_step_changes_nothing(device):
    """ok False with NaN gradients: no weight and no running average moves."""
    net = small_net(device)
    opt = RMSprop(net.parameters(), lr=3e-4, alpha=0.9)
    backward(net, 0)
    opt.masked_step(torch.tensor(True, device=device))
    weights = [p.clone() for p in net.parameters()]
    avgs = [opt.state[p]["square_avg"].clone() for p in net.parameters()]
    for p in net.parameters():
        p.grad = torch.full_like(p, float("nan"))
    opt.masked_step(torch.tensor(False, device=device))
    assert all(torch.equal(p, w) for p, w in zip(net.parameters(), weights, strict=True))
    assert all(torch.equal(opt.state[p]["square_avg"], a)
               for p, a in zip(net.parameters(), avgs, strict=True))  # fmt: skip


def overflow_step(loss_scale, data_nan=False):
    """One algorithm1_step with a GradScaler at loss_scale; (model before, after, stats, scaler)."""
    cfg = ModelConfig(model="vaegan", image_size=32, width=0.125, latent_dim=8, enc_fc_dim=32)
    torch.manual_seed(0)
    model = VAEGAN(cfg).train()
    before = copy.deepcopy(model)
    opts = make_optimizers(model, ("enc", "dec", "dis"))
    scaler = torch.amp.GradScaler("cpu", init_scale=loss_scale)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    if data_nan:
        x[0, 0, 0, 0] = float("nan")
    stats = algorithm1_step(model, x, opts, StepConfig(), scaler=scaler)
    return before, model, stats, scaler


def moved(before, after, net):
    pairs = zip(getattr(before, net).parameters(), getattr(after, net).parameters(), strict=True)
    return not all(torch.equal(a, b) for a, b in pairs)


def test_an_fp16_overflow_is_the_scalers_affair():
    """Scaled gradients that overflow: as GradScaler does, each network whose gradients overflow
    skips the step and the others move; the step is not a diverged one (ok stays True), no
    weight is NaN, and the scale goes down."""
    before, after, stats, scaler = overflow_step(2.0**127)  # overflows even fp32
    assert bool(stats["ok"]) and torch.isfinite(stats["L_llike"])
    assert all(p.isfinite().all() for p in after.parameters())
    assert not moved(before, after, "enc")  # L_prior + L_llike times 2^127: inf
    assert moved(before, after, "dec") and moved(before, after, "dis")  # theirs stayed finite
    assert scaler.get_scale() == 2.0**126
    _, after, _, scaler = overflow_step(2.0**10)  # no overflow: every network moves
    assert all(moved(before, after, n) for n in ("enc", "dec", "dis"))
    assert scaler.get_scale() == 2.0**10


def test_a_nan_loss_leaves_the_scale_alone():
    """A NaN loss is no overflow: nothing moves, the step is not ok, and GradScaler's scale and
    growth count stay as they were (lowering the scale a NaN step would starve later ones)."""
    before, after, stats, scaler = overflow_step(2.0**10, data_nan=True)
    assert not bool(stats["ok"])
    assert not any(moved(before, after, n) for n in ("enc", "dec", "dis"))
    assert scaler.get_scale() == 2.0**10 and int(scaler._growth_tracker) == 0


def tiny(steps: int, model: str = "vaegan") -> TrainConfig:
    cfg = TrainConfig(
        model=ModelConfig(model=model, image_size=32, width=0.125, latent_dim=8, enc_fc_dim=32),
        steps=steps, batch_size=8, dataset_size=32, log_every=100, flip=True,
    )  # fmt: skip
    return cfg


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_training_steps_do_not_sync(precision):
    """torch's sync debug mode counts every point where the host waits for the GPU: as many for
    12 steps as for 4, so none of them is in a step (the start, the end and the logs have some)."""

    def syncs(steps: int, model: str, xi_dim: int = 0) -> list[str]:
        cfg = dataclasses.replace(tiny(steps, model), device="cuda", precision=precision)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, xi_dim=xi_dim))
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                train(cfg, None, data=training_tensors(cfg, progress=False), progress=False)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return [str(w.message).splitlines()[0] for w in seen if "synchroniz" in str(w.message)]

    for model, xi_dim in (("vaegan", 0), ("gan", 0), ("avae", 0), ("avae", 4)):  # 4: G draws xi
        few, many = syncs(4, model, xi_dim), syncs(12, model, xi_dim)
        assert len(few) == len(many), (model, xi_dim, many)


@pytest.mark.parametrize("ok, nan_gradient", [(False, False), (True, True)])
def test_a_step_that_cannot_be_taken_moves_nothing_with_any_optimizer(ok, nan_gradient):
    """finish_step with SGD (or a user's Adam), not only the package's RMSprop: a step called off
    (ok False) moves nothing, and finite losses with a non-finite gradient move nothing and do
    not count as a good step."""
    torch.manual_seed(0)
    m = VAEGAN(ModelConfig(model="vae", image_size=32, width=0.125, latent_dim=8, enc_fc_dim=64))
    opts = {n: torch.optim.SGD(getattr(m, n).parameters(), lr=1.0) for n in ("enc", "dec")}
    before = copy.deepcopy(m.state_dict())
    updates = {n: [torch.ones_like(p) for p in getattr(m, n).parameters()] for n in ("enc", "dec")}
    if nan_gradient:
        updates["dec"][0][0] = float("nan")
    stats = finish_step(m, updates, opts, None, {}, torch.tensor(ok))
    assert not bool(stats["ok"])
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k
