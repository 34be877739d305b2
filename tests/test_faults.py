"""Faults a long run meets, through the CLI on a tiny CelebA-layout folder: a checkpoint write
killed half-way, a hard crash between checkpoints, Ctrl-C, a NaN batch, divergence, an unsafe
checkpoint file. After a crash or an interruption the run resumes to the same bits as a run that
never stopped."""

import copy
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from vaegan_lite.checkpoint import CheckpointError, read_checkpoint
from vaegan_lite.cli import main

REPO = Path(__file__).resolve().parent.parent
TINY = ["--model", "vaegan", "--image-size", "32", "--width", "0.125", "--latent-dim", "16",
        "--batch-size", "4", "--seed", "3", "--device", "cpu", "--no-progress",
        "--log-every", "1"]  # fmt: skip

# Runs the CLI in a fresh process with one thread (as the tests' own runs), after ``setup`` has
# planted a fault in it.
RUNNER = """
import os, signal, sys
import torch
torch.set_num_threads(1)
{setup}
from vaegan_lite.cli import main
sys.exit(main(sys.argv[1:]))
"""
IN_BATCH = """
import vaegan_lite.train as T
real, n = T.to_unit_range, [0]
def with_fault(images):  # called once a step, with the step's batch
    n[0] += 1
    if n[0] == {batch}:
        {fault}
    return real(images)
T.to_unit_range = with_fault
"""


# one thread: the same arithmetic in and out of subprocesses; a busy machine
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def celeba(tmp_path_factory, fake_celeba):
    root = tmp_path_factory.mktemp("faults_data")
    fake_celeba(root, 12)  # 8 training images: two batches an epoch
    return root


def argv(celeba, out, steps, *extra):
    return ["train", "--data", "celeba", "--data-root", str(celeba), "--steps", str(steps),
            "--out", str(out), *TINY, *extra]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread_here():
    """This module's runs on one thread, as RUNNER's (bitwise comparisons); restored after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def straight(celeba, tmp_path_factory):
    """8 steps in one go: what every interrupted run must come back to."""
    out = tmp_path_factory.mktemp("straight")
    assert main(argv(celeba, out, 8)) == 0
    return torch.load(out / "last.pt", weights_only=True)


def run_with_fault(setup, args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", RUNNER.format(setup=setup), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def assert_same_run(a, b):
    assert a["step"] == b["step"]
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for net in a["optim"]:
        for i, state in a["optim"][net]["state"].items():
            other = b["optim"][net]["state"][i]
            for k, v in state.items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(other[k])), (net, i, k)
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert a["history"] == b["history"]


def test_4_plus_4_steps_equal_8_steps_bitwise(celeba, straight, tmp_path):
    assert main(argv(celeba, tmp_path, 4)) == 0
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 4
    assert main(argv(celeba, tmp_path, 8)) == 0
    assert_same_run(torch.load(tmp_path / "last.pt", weights_only=True), straight)


def test_a_checkpoint_write_killed_half_way_leaves_the_previous_one(celeba, straight, tmp_path):
    assert main(argv(celeba, tmp_path, 4)) == 0
    before = (tmp_path / "last.pt").read_bytes()
    # The process dies (no cleanup, no finally) after writing half of the next checkpoint.
    setup = """
import io
real_save = torch.save
def half_then_die(obj, f, *args, **kwargs):
    buf = io.BytesIO()
    real_save(obj, buf, *args, **kwargs)
    f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
    f.flush()
    os._exit(9)
torch.save = half_then_die
"""
    r = run_with_fault(setup, argv(celeba, tmp_path, 8))
    assert r.returncode == 9, r.stderr
    assert (tmp_path / "last.pt").read_bytes() == before
    assert read_checkpoint(tmp_path / "last.pt")["step"] == 4
    half = [p for p in tmp_path.iterdir() if p.name.startswith(".last.pt.")]
    assert len(half) == 1  # the killed write went to a temporary file, never renamed
    with pytest.raises(Exception):  # noqa: B017 - any error: it is half a file
        torch.load(half[0], weights_only=True)
    assert main(argv(celeba, tmp_path, 8)) == 0  # rerun: resumes from step 4
    assert_same_run(torch.load(tmp_path / "last.pt", weights_only=True), straight)


def test_a_hard_crash_loses_only_the_steps_since_the_last_checkpoint(celeba, straight, tmp_path):
    setup = IN_BATCH.format(batch=6, fault="os._exit(9)")  # like kill -9, or a lost Colab runtime
    r = run_with_fault(setup, argv(celeba, tmp_path, 8, "--checkpoint-every", "2"))
    assert r.returncode == 9, r.stderr
    assert read_checkpoint(tmp_path / "last.pt")["step"] == 4
    assert main(argv(celeba, tmp_path, 8)) == 0
    assert_same_run(torch.load(tmp_path / "last.pt", weights_only=True), straight)


def test_ctrl_c_saves_the_finished_step_exits_130_and_resumes_exactly(celeba, straight, tmp_path):
    setup = IN_BATCH.format(batch=3, fault="os.kill(os.getpid(), signal.SIGINT)")
    r = run_with_fault(setup, argv(celeba, tmp_path, 8))
    assert r.returncode == 130, r.stderr
    assert "interrupted: the last completed step is saved" in r.stderr
    assert read_checkpoint(tmp_path / "last.pt")["step"] == 3
    assert main(argv(celeba, tmp_path, 8)) == 0
    assert_same_run(torch.load(tmp_path / "last.pt", weights_only=True), straight)


def test_an_injected_nan_is_survived(celeba, tmp_path, monkeypatch, capsys, poison):
    poison({1, 2})
    assert main(argv(celeba, tmp_path, 5)) == 0
    said = "non-finite loss or gradient, update skipped (said once)"
    assert capsys.readouterr().out.count(said) == 1
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["step"] == 5 and ckpt["history"]["step"] == [1.0, 4.0, 5.0]  # 2, 3 skipped
    assert all(torch.isfinite(v.float()).all() for v in ckpt["model"].values())
    assert all(v == v for vals in ckpt["history"].values() for v in vals if v is not None)


def test_divergence_exits_1_and_keeps_the_last_good_state(
    celeba, tmp_path, monkeypatch, capsys, poison
):
    assert main(argv(celeba, tmp_path / "good", 2)) == 0  # the two good steps alone
    good = torch.load(tmp_path / "good" / "last.pt", weights_only=True)["model"]
    poison(set(range(2, 100)))
    assert main([*argv(celeba, tmp_path / "run", 50), "--max-nonfinite", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "training diverged: 3 steps in a row had a NaN/Inf loss or gradient" in err[0]
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["step"] == 5  # saved when it stopped, with the good weights of step 2
    assert ckpt["model"].keys() == good.keys()
    assert all(torch.equal(v, good[k]) for k, v in ckpt["model"].items())


class Payload:
    """Runs a shell command when unpickled without weights_only."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("mmap", [True, False])  # sample reads it mapped, a resume not
def test_an_unreadable_checkpoint_says_what_is_wrong_with_it(tmp_path, mmap):
    """torch.load's own messages (a miniz error, "mmap can only be used with files saved
    with ...", "invalid load key") say little of the file: one reason each, in a few words."""
    good = tmp_path / "good.pt"
    torch.save({"format": "vaegan-lite/1", "weights": torch.zeros(4096)}, good)
    files = {"empty.pt": b"", "text.pt": b"not a checkpoint\n" * 8,
             "cut.pt": good.read_bytes()[:1000]}  # fmt: skip
    why = {"empty.pt": "an empty file", "text.pt": "not a file in torch.save's (zip) format",
           "cut.pt": "cut short or damaged: its archive cannot be read"}  # fmt: skip
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError) as e:
            read_checkpoint(tmp_path / name, mmap=mmap)
        assert str(e.value) == f"{tmp_path / name}: not a readable checkpoint ({why[name]})"


@pytest.mark.parametrize("mmap", [True, False])
def test_a_flipped_bit_in_a_weight_is_refused(tmp_path, mmap):
    """torch.load never checks its archive's CRC-32s: one flipped bit in a weight loaded as a
    slightly different weight, finite, so sample drew and a resume trained on without a word."""
    assert main(["train", "--model", "vae", "--data", "synthetic", "--image-size", "32",
                 "--width", "0.125", "--latent-dim", "8", "--batch-size", "4",
                 "--dataset-size", "8", "--steps", "1", "--device", "cpu", "--no-progress",
                 "--out", str(tmp_path / "run")]) == 0  # fmt: skip
    good = tmp_path / "run" / "last.pt"
    read_checkpoint(good, mmap=mmap)  # as written: no complaint
    with zipfile.ZipFile(good) as z:
        record = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size > 64)
    data = bytearray(good.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[record.header_offset + 26:
                                                    record.header_offset + 30])  # fmt: skip
    data[record.header_offset + 30 + name_len + extra_len + record.file_size // 2] ^= 0x10
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(data)
    assert torch.load(bad, weights_only=True)["step"] == 1  # torch reads it as if nothing were
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(bad, mmap=mmap)
    assert str(e.value) == (f"{bad}: damaged checkpoint: its record {record.filename!r} no "
                            "longer matches its checksum")  # fmt: skip


def test_a_checkpoint_that_cannot_be_opened_is_one_line(tmp_path, monkeypatch):
    """Saying why a file is unreadable reads its first bytes; where it cannot be opened at all
    (no permission: root, as tests run, reads anything) that was a traceback."""
    import errno
    from pathlib import Path

    (tmp_path / "locked.pt").write_bytes(b"PK\x03\x04")

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(torch, "load", refused)
    monkeypatch.setattr(Path, "open", refused)
    with pytest.raises(CheckpointError, match=r"locked.pt: not a readable checkpoint \(it cannot "
                                              r"be opened: Permission denied\)$"):  # fmt: skip
        read_checkpoint(tmp_path / "locked.pt")


def test_checkpoints_are_read_with_weights_only(tmp_path, capsys):
    bad, pwned = tmp_path / "evil.pt", tmp_path / "pwned"
    torch.save({"format": "vaegan-lite/1", "model": Payload(pwned)}, bad)
    with pytest.raises(CheckpointError, match="evil.pt: not a readable checkpoint .it holds "
                       "Python objects other than tensors"):  # fmt: skip
        read_checkpoint(bad)
    assert main(["sample", "--checkpoint", str(bad), "--out", str(tmp_path / "s.png")]) == 2
    assert "evil.pt" in capsys.readouterr().err
    assert not pwned.exists() and not (tmp_path / "s.png").exists()


def test_nan_weights_never_replace_the_last_good_checkpoint(celeba, tmp_path, monkeypatch, capsys):
    """A weight went NaN before step 3 (as a bug would make it): the divergence keeps step 2's
    last.pt, says so, and the run resumes from it. An fp32 run is not told to use fp32."""
    import vaegan_lite.train as T

    real = T._set_lr

    def set_lr(opts, cfg, t):
        if t == 2:  # step 3
            with torch.no_grad():
                opts["dec"].param_groups[0]["params"][0].view(-1)[0] = float("nan")
        real(opts, cfg, t)

    monkeypatch.setattr(T, "_set_lr", set_lr)
    args = argv(celeba, tmp_path, 50, "--checkpoint-every", "2", "--max-nonfinite", "1")
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'last.pt'} was kept at step 2" in err[0], err
    assert "fp32" not in err[0]
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v.float()).all() for v in ckpt["model"].values())
    monkeypatch.setattr(T, "_set_lr", real)
    assert main(argv(celeba, tmp_path, 4)) == 0  # resumes from the good state
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert all(torch.isfinite(v.float()).all() for v in ckpt["model"].values())


@pytest.mark.parametrize("damage, says", [
    (lambda c: c.update(step=10**12), "step 1000000000000 is past the 2 steps"),
    (lambda c: next(iter(c["model"].values())).fill_(float("nan")), "are not finite"),
])  # fmt: skip
def test_a_checkpoint_damaged_later_is_refused_in_one_line(tmp_path, capsys, damage, says):
    """A step past the run's end (lr_at divided by zero) or NaN weights (training never saves
    them): the file is damaged, for resume and for sample alike."""
    run = tmp_path / "run"
    assert main(["train", "--model", "vae", "--steps", "2", "--batch-size", "4", "--dataset-size",
                 "8", "--width", "0.125", "--image-size", "32", "--latent-dim", "8",
                 "--no-progress", "--out", str(run)]) == 0  # fmt: skip
    ckpt = torch.load(run / "last.pt", weights_only=True)
    damage(ckpt)
    torch.save(ckpt, run / "last.pt")
    capsys.readouterr()
    with pytest.raises(CheckpointError, match=says):
        read_checkpoint(run / "last.pt")
    assert main(["sample", "--checkpoint", str(run / "last.pt"), "--out",
                 str(tmp_path / "s.png")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1 and not (tmp_path / "s.png").exists()
    with pytest.raises(CheckpointError, match="a run folder; its checkpoint is .*last.pt"):
        read_checkpoint(run)


def test_a_folder_without_a_checkpoint_is_named_as_a_folder(tmp_path):
    with pytest.raises(CheckpointError, match=r"a folder without a checkpoint \(no last.pt"):
        read_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "missing.pt")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    assert main(["train", "--model", "vae", "--steps", "2", "--batch-size", "4", "--dataset-size",
                 "8", "--width", "0.125", "--image-size", "32", "--latent-dim", "8",
                 "--no-progress", "--out", str(run)]) == 0
    return torch.load(run / "last.pt", weights_only=True)


@pytest.mark.parametrize("damage, says", [
    (lambda c: next(v for v in c["model"].values() if v.is_floating_point()).fill_(float("inf")),
     "are not finite"),
])
def test_read_checkpoint_refuses_infinite_weights(
        tiny_ckpt, tmp_path, damage, says):
    """``read_checkpoint`` refuses infinite weights, not only NaN ones."""
    ckpt = copy.deepcopy(tiny_ckpt)
    damage(ckpt)
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=says):
        read_checkpoint(tmp_path / "last.pt")


def test_a_checkpoint_saved_without_crcs_is_read(tiny_ckpt, tmp_path):
    """A checkpoint saved without CRCs (``set_crc32_options(False)``, which stores 0) is read."""
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(tiny_ckpt, tmp_path / "last.pt")
    finally:
        torch.serialization.set_crc32_options(True)
    assert read_checkpoint(tmp_path / "last.pt")["step"] == 2


def test_weights_that_do_not_fit_are_said_with_how_many_others():
    """weights_misfit names the first key of each kind and counts the others exactly."""
    from vaegan_lite.checkpoint import weights_misfit

    want = {k: torch.zeros(2) for k in ("a", "b", "c")}
    got = {"a": torch.zeros(3), "x": torch.zeros(1), "y": torch.zeros(1), "z": torch.zeros(1)}
    assert weights_misfit(want, got) == ("missing: b and 1 more; unexpected: x and 2 more; "
                                         "wrong shape: a (3,), model (2,)")  # fmt: skip
    assert weights_misfit(want, dict(want)) == ""
