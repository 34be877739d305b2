"""Data-parallel training through torchrun: 2 processes, gloo on the CPU, the real CLI.

One run folder written by process 0 alone, per-process noise, bitwise-exact resume with the same
number of processes, a clear refusal with another number. The weights of the two processes are
compared at every checkpoint by train() itself (distributed.check_in_sync), so a gradient that
was not averaged fails the run.
"""

import math
import os
import subprocess
import sys

import pytest
import torch

from vaegan_lite import load_checkpoint

TINY = ["--model", "vaegan", "--seed", "3", "--device", "cpu", "--image-size", "32",
        "--width", "0.125", "--latent-dim", "16", "--batch-size", "8", "--dataset-size", "64",
        "--no-progress", "--log-every", "2", "--flip"]  # fmt: skip


def run(out, steps, nproc=2, *extra):
    cmd = [sys.executable, "-m", "vaegan_lite", "train"]
    if nproc > 1:
        cmd[1:2] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                    "-m"]  # fmt: skip
    cmd += ["--steps", str(steps), "--out", str(out), *TINY, *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_torchrun_two_processes_checkpoint_and_exact_resume(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = run(a, 4, 2, "--checkpoint-every", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("trained vaegan to step 4") == 1  # process 0 reports, once
    assert sorted(p.name for p in a.iterdir()) == ["config.json", "last.pt", "samples.png"]
    ckpt = torch.load(a / "last.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["world_size"] == 2
    s0, s1 = ckpt["rng_ranks"]
    assert not torch.equal(s0["torch"], s1["torch"])  # each process draws its own noise
    h = ckpt["history"]
    assert h["step"] == [2.0, 4.0]
    assert all(math.isfinite(v) for k in ("L_prior", "L_llike", "L_GAN") for v in h[k])
    model = load_checkpoint(a / "last.pt")
    x = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 32, 32) and x.abs().max() <= 1

    # 2 steps, then resumed to 4: bit for bit the run above.
    assert run(b, 2).returncode == 0
    r = run(b, 4)
    assert r.returncode == 0, r.stderr
    resumed = torch.load(b / "last.pt", weights_only=True)
    for k, v in ckpt["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    assert resumed["history"] == h

    # Another number of processes would change the run: refused in one line.
    r = run(b, 6, 1)
    assert r.returncode == 2 and "2 process(es)" in r.stderr and "Traceback" not in r.stderr


def _primitives(rank: int, init: str) -> None:
    """distributed's primitives in a 2-process gloo group, checked against what each must give."""
    import torch.distributed as dist

    from vaegan_lite import distributed as D

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        assert D.enabled() and D.world_size() == 2 and D.rank() == rank
        g = [torch.full((2, 3), float(rank)), torch.full((4,), 10.0 * rank)]
        avg = D.average(g)  # the mean over the processes, not the sum
        assert torch.equal(avg[0], torch.full((2, 3), 0.5))
        assert torch.equal(avg[1], torch.full((4,), 5.0))
        batch = torch.arange(8)
        assert torch.equal(D.shard(batch), batch[4 * rank : 4 * rank + 4])  # disjoint halves
        assert float(D.mean(torch.tensor(float(rank)))) == 0.5
        assert bool(D.all_of(torch.tensor(True))) and not D.all_true(rank == 0)
        assert D.gather(rank) == [0, 1]
        model = torch.nn.Linear(2, 2)
        with torch.no_grad():
            model.weight.fill_(1.0)
            model.bias.fill_(float(rank))  # the processes disagree
        try:
            D.check_in_sync(model)
        except RuntimeError as e:
            assert "hold different weights" in str(e)
        else:
            raise AssertionError("check_in_sync missed weights that differ")
        model.bias.data.fill_(0.0)
        D.check_in_sync(model)  # the same now: no error
        bn = torch.nn.BatchNorm1d(3)
        bn.running_mean.fill_(float(rank))  # each process's own statistics
        bn.running_var.fill_(1.0 + rank)
        D.broadcast_buffers(bn)  # process 0's, everywhere (DDP's broadcast_buffers)
        assert torch.equal(bn.running_mean, torch.zeros(3))
        assert torch.equal(bn.running_var, torch.ones(3))
    finally:
        dist.destroy_process_group()


def test_the_primitives_average_shard_and_catch_drift(tmp_path):
    """average is a mean (a sum would keep two processes in sync as well, and train wrongly),
    shard gives each process its own half, check_in_sync fires on weights that differ, and
    broadcast_buffers gives every process process 0's BatchNorm statistics."""
    import torch.multiprocessing as mp

    mp.spawn(_primitives, args=(f"file://{tmp_path / 'store'}",), nprocs=2, join=True)
