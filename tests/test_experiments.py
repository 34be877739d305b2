"""Chapter 6's experiments: the measuring functions on known answers, and the whole reproduction
(benchmarks/reproduce.py) at smoke size, which makes every table and figure of the chapter."""

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vaegan_lite import metrics
from vaegan_lite.book import experiments as E
from vaegan_lite.book.runs import SMOKE_RUNS, get_preset
from vaegan_lite.config import PLANS
from vaegan_lite.metrics import inception_scores
from vaegan_lite.nets import Encoder

ROOT = Path(__file__).resolve().parents[1]


def test_knn_error_on_a_known_answer():
    # Two clusters; attribute 0 follows the cluster, attribute 1 is its opposite except for one
    # training point per cluster (outvoted 4 to 1 by the other neighbours).
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 3, generator=g) * 0.1, torch.randn(5, 3, generator=g) * 0.1 + 10
    train_x = torch.cat([a, b])
    train_y = torch.tensor([[1, 0]] * 5 + [[0, 1]] * 5, dtype=torch.float32)
    train_y[0, 1], train_y[5, 1] = 1, 0
    test_x = torch.tensor([[0.0, 0, 0], [10.0, 10, 10]])
    test_y = torch.tensor([[1.0, 0], [0.0, 0]])  # the second vector's attribute 1 is "wrong"
    err = E.knn_error(train_x, train_y, test_x, test_y, k=5)
    assert err.tolist() == [0.0, 0.5]


def test_attribute_scores_perfect_and_opposite():
    y = torch.tensor([[1.0, 0, 1, 0]])
    cos, err = E.attribute_scores(y.clone(), y)
    assert cos.item() == pytest.approx(1) and err.item() == 0
    cos, err = E.attribute_scores(1 - y, y)
    assert cos.item() == pytest.approx(-1) and err.item() == pytest.approx(16)  # (2)^2 x 4
    # an all-absent vector still has a cosine (it is -1 everywhere after the +-1 mapping)
    cos, _ = E.attribute_scores(torch.zeros(1, 4), torch.zeros(1, 4))
    assert cos.item() == pytest.approx(1)


def test_regressor_has_the_encoders_architecture():
    reg = E.AttributeRegressor(32, 17, 0.125)
    enc = Encoder(32, 17, 0.125)
    shapes = [p.shape for p in reg.enc.parameters()]
    assert shapes == [p.shape for p in enc.parameters()]
    assert reg(torch.randn(4, 3, 32, 32)).shape == (4, 17)


class _Constant(torch.nn.Module):
    """A 'regressor' that reads the attribute probabilities off the image's first pixels."""

    def probabilities(self, x):
        return x[:, 0, 0, :4].add(1).div(2)


class _Decoder(torch.nn.Module):
    """A conditional 'model' whose sample shows y's signs exactly, but attribute 0's flipped
    where z < 0: cosine 1 or 0.5 with y (4 attributes), squared error 0 or 4."""

    latent_dim = 1

    def decode(self, z, y):
        self.z = z  # the draws, to score them by hand
        signs = 2 * y - 1
        signs[:, 0] *= torch.where(z[:, 0] < 0, -1.0, 1.0)
        img = torch.zeros(len(z), 3, 4, 4)
        img[:, 0, 0, :4] = signs
        return img

    def sample(self, n, *, y=None, generator=None):  # as VAEGAN.sample: z_p from the generator
        return self.decode(torch.randn(n, self.latent_dim, generator=generator), y)


def test_table2_scores_takes_the_best_of_k_for_cosine_and_the_mean_for_mse():
    y = torch.tensor([[1.0, 0, 1, 1], [0.0, 1, 0, 0]])
    model = _Decoder()
    ten = E.table2_scores(model, _Constant(), None, y, samples_per_vector=10, seed=0)
    right = (model.z[:, 0] >= 0).float().view(2, 10)  # [vector, sample]: attribute 0 right?
    cos = 0.5 + 0.5 * right
    assert (cos.mean(1) < cos.max(1).values).any()  # best of k and mean of k differ here
    assert ten == {"cosine": pytest.approx(cos.max(1).values.mean().item()),
                   "mse": pytest.approx(4 * (1 - right).mean().item())}  # fmt: skip
    real = E.table2_scores(None, _Constant(), (2 * y - 1)[:, None, None].expand(2, 3, 1, 4), y, 10)
    assert real == {"cosine": pytest.approx(1), "mse": pytest.approx(0)}


def _result(vae_fd, vaegan_fd, knn_dis, knn_pixels):
    run = {"mse": 0.1, "recon_sharpness": 0.1, "sample_sharpness": 0.1, "fd": 1.0,
           "texture_fd": 1.0}
    five = {m: [dict(run), dict(run)] for m in E.FIVE_MODELS}
    five["vae"][0]["fd"] = five["vae"][1]["fd"] = vae_fd
    five["vaegan"][0]["fd"] = five["vaegan"][1]["fd"] = vaegan_fd
    t2 = {m: [{"cosine": 0.5, "mse": 1.0}] for m in ("test set", *E.CONDITIONAL_MODELS)}
    return {"five_models": five, "table2": t2, "five_models_real": {"sample_sharpness": 0.2},
            "knn": {"pixels": [knn_pixels], "gan": [[knn_dis]], "vaegan": [[knn_dis]]}}  # fmt: skip


def test_claims_are_read_from_the_numbers():
    rows = str(E.claims(_result(vae_fd=200, vaegan_fd=100, knn_dis=0.1, knn_pixels=0.3)))
    assert "| 100 < 200? | yes |" in rows and "| 0.1 < 0.3? | yes |" in rows
    rows = str(E.claims(_result(vae_fd=100, vaegan_fd=200, knn_dis=0.3, knn_pixels=0.1)))
    assert "| 200 < 100? | no |" in rows and "| 0.3 < 0.1? | no |" in rows


def test_every_claim_row_compares_the_models_it_names():
    """Each row's two sides, and its spread, come from the models and the measure its claim
    names: every model gets its own figure for every measure (and its own spread over two seeds),
    so a row that took the wrong model, or the highest where it means the lowest, gives other
    numbers than these, worked out by hand from the figures below."""
    figures = {  # model: (fd, texture_fd, sample_sharpness, recon_sharpness, mse)
        "vae": (50.0, 9.0, 1.0, 1.0, 0.1), "vae_disl": (40.0, 8.0, 5.0, 0.5, 0.4),
        "vaegan_dis0": (30.0, 7.0, 3.0, 2.0, 0.2), "vaegan": (20.0, 6.0, 4.0, 3.0, 0.3),
        "gan": (10.0, 5.0, 2.0, 0.0, 0.0),
    }  # fmt: skip
    keys = ("fd", "texture_fd", "sample_sharpness", "recon_sharpness", "mse")
    half = {m: 0.01 * (i + 1) for i, m in enumerate(figures)}  # each model its own spread
    five = {m: [{k: v - sign * half[m] for k, v in zip(keys, figures[m], strict=True)}
                for sign in (1, -1)] for m in figures}  # fmt: skip
    t2 = {"test set": [{"cosine": 0.5, "mse": 9.0}], "vae": [{"cosine": 0.5, "mse": 2.0}],
          "gan": [{"cosine": 0.5, "mse": 3.0}], "vaegan": [{"cosine": 0.5, "mse": 1.0}]}
    knn = {"pixels": [0.5, 0.5], "gan": [[0.2, 0.2], [0.4, 0.4]], "vaegan": [[0.1, 0.1]]}
    res = {"five_models": five, "table2": t2, "five_models_real": {"sample_sharpness": 4.5},
           "knn": knn}  # fmt: skip
    # the std of v - h and v + h; a row's spread is the larger of its two sides'
    spread = {m: 2**0.5 * half[m] for m in figures}
    want = [
        (20.0, "<", 50.0, spread["vaegan"]),  # sample FD: VAE/GAN against the VAE
        (6.0, "<", 9.0, spread["vaegan"]),  # texture FD
        (2.0, ">", 1.0, spread["gan"]),  # the least sharp of Dis0, VAE/GAN, GAN (the GAN)
        (5.0, ">", 4.5, spread["vae_disl"]),  # VAE_Dis_l against real faces
        (3.0, ">", 2.0, spread["vaegan"]),  # recon.: against the blurrier of VAE, Dis0
        (0.1, "<", 0.2, spread["vaegan_dis0"]),  # MSE: against the next lowest (Dis0)
        (1.0, "<", 2.0, 0.0),  # Table 2: VAE/GAN against the VAE, one seed each
        (1.0, "<", 3.0, 0.0),  # ... against the GAN
        (0.3, "<", 0.5, 2**0.5 * 0.1),  # k-NN in the GAN's Dis_l, over its two seeds
        (0.1, "<", 0.5, 0.0),  # ... in VAE/GAN's
    ]
    got = [(a, op, b, s) for _, a, op, b, s in E.claim_rows(res)]
    assert len(got) == len(want)
    for i, (row, expected) in enumerate(zip(got, want, strict=True)):
        assert row[1] == expected[1] and row[0] == pytest.approx(expected[0]), (i, row)
        assert row[2] == pytest.approx(expected[2]) and row[3] == pytest.approx(expected[3]), (
            i, row)


def test_inception_scores_run_or_say_why_in_one_line(capfd):
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores, skipped = inception_scores(x, x.flip(0), x)
    # torchmetrics' KID warns of its feature buffer: noise in a chapter
    assert not [w for w in caught if "extracted features" in str(w.message)]
    assert set(scores) | {s.split()[0].lower() for s in skipped} >= {"fid", "kid", "lpips"}
    assert all("\n" not in s and " skipped: " in s for s in skipped)
    assert all(re.search("download|install", s) for s in skipped), skipped  # and nothing else
    assert all(isinstance(v, float) for v in scores.values())
    out, err = capfd.readouterr()  # torch.hub's "Downloading: ... to /local/path" stays out
    assert "Downloading" not in out + err, out + err


def test_inception_scores_report_what_the_metrics_compute(monkeypatch):
    """Where the metrics can run (Colab): each one's figure, computed on images mapped to [0, 1]
    (normalize=True) INCEPTION_BATCH at a time, real as real; KID's subset no larger than the
    sets."""
    pytest.importorskip("torchmetrics.image.fid")
    import torchmetrics.image.fid as fid
    import torchmetrics.image.kid as kid
    import torchmetrics.image.lpip as lpip

    seen = []

    class Metric:
        def to(self, device):
            assert torch.device(device) == torch.device("cpu")  # no GPU here: they stay
            return self

    class Distance(Metric):  # FID's and KID's interface
        def __init__(self, **kw):
            assert kw["normalize"] and kw.get("subset_size", 4) <= 4, kw

        def update(self, x, real):
            seen.append((type(self).__name__, real, x.min().item(), x.max().item()))

    class FID(Distance):
        def compute(self):
            return torch.tensor(12.5)

    class KID(Distance):
        def compute(self):
            return torch.tensor(0.25), torch.tensor(0.0625)

    class LPIPS(Metric):
        def __init__(self, net, normalize):
            assert normalize

        def update(self, a, b):
            seen.append(("LPIPS", None, min(a.min(), b.min()).item(), max(a.max(), b.max()).item()))

        def compute(self):
            return torch.tensor(0.125)

    monkeypatch.setattr(fid, "FrechetInceptionDistance", FID)
    monkeypatch.setattr(kid, "KernelInceptionDistance", KID)
    monkeypatch.setattr(lpip, "LearnedPerceptualImagePatchSimilarity", LPIPS)
    monkeypatch.setattr(metrics, "INCEPTION_BATCH", 3)  # 4 images: two batches of each set
    x = torch.linspace(-1, 1, 4 * 3 * 8 * 8).view(4, 3, 8, 8)
    scores, skipped = inception_scores(x, x.flip(0), x)
    assert skipped == []
    assert scores == {"fid": 12.5, "kid": 0.25, "kid_std": 0.0625, "lpips": 0.125}
    assert [(name, real) for name, real, _, _ in seen] == [
        ("FID", True), ("FID", True), ("FID", False), ("FID", False), ("KID", True),
        ("KID", True), ("KID", False), ("KID", False), ("LPIPS", None), ("LPIPS", None)]
    assert min(lo for *_, lo, _ in seen) == 0.0 and max(hi for *_, hi in seen) == 1.0


def test_inception_scores_raise_a_mistake_rather_than_skip_it(monkeypatch):
    """Offline or without the extra, a metric is skipped; a wrong call is an error, not a skip."""
    pytest.importorskip("torchmetrics.image.fid")
    import torchmetrics.image.fid as fid

    def wrong(*args, **kwargs):
        raise TypeError("__init__() got an unexpected keyword argument 'feature'")

    monkeypatch.setattr(fid, "FrechetInceptionDistance", wrong)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with pytest.raises(TypeError, match="unexpected keyword"):
        inception_scores(x, x.flip(0))


def test_inception_scores_give_up_on_a_download_that_hangs(monkeypatch):
    """A machine whose connections hang (an offline GPU box) costs seconds, not minutes a metric."""
    pytest.importorskip("torchmetrics.image.fid")
    import torchmetrics.image.fid as fid
    import torchmetrics.image.kid as kid
    import torchmetrics.image.lpip as lpip

    server = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    url = f"http://127.0.0.1:{server.getsockname()[1]}/weights.pth"

    timeouts = []

    def download(*args, **kwargs):
        timeouts.append(socket.getdefaulttimeout())  # what urlopen waits for, at most
        return urllib.request.urlopen(url).read()

    for module, name in ((fid, "FrechetInceptionDistance"), (kid, "KernelInceptionDistance"),
                         (lpip, "LearnedPerceptualImagePatchSimilarity")):  # fmt: skip
        monkeypatch.setattr(module, name, download)
    monkeypatch.setattr(metrics, "DOWNLOAD_TIMEOUT_S", 0.5)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with server:
        scores, skipped = inception_scores(x, x.flip(0), x)
    assert scores == {} and len(skipped) == 3 and timeouts == [0.5] * 3
    assert all("timed out" in s for s in skipped), skipped
    assert socket.getdefaulttimeout() is None


def test_the_plan_lists_every_run_once_with_its_settings():
    preset, plan = get_preset("cpu"), PLANS["cpu"]
    runs = E.run_configs(preset, plan, 17)
    assert plan.seeds >= 5 and plan.table2_seeds >= 5 and PLANS["gpu"].table2_seeds == 25
    assert len(runs) == 5 * 5 + 3 + 3 * 5
    assert runs["06_experiments/cond-vaegan-s4"].model.cond_dim == 17
    assert runs["06_experiments/vaegan-gamma10-s0"].step.gamma == pytest.approx(10 * preset.gamma)
    assert runs["06_experiments/gan-s3"].seed == 3
    # the GAN-trained runs use joint Dis batches (separate ones collapsed, chapter 2)
    joint = [n for n, c in runs.items() if c.step.dis_batch == "joint"]
    model = {n: n.split("/")[1].rsplit("-s", 1)[0].removeprefix("cond-") for n in runs}
    assert joint == [n for n in runs if model[n] in ("gan", "vae_disl")]
    assert len(joint) == 5 + 5 + 5 and runs["06_experiments/vaegan-s0"].step.dis_batch == "separate"


def run_reproduce(*args, runs):
    """benchmarks/reproduce.py as a command, in a process of its own."""
    env = dict(os.environ, OMP_NUM_THREADS="1", VAEGAN_RUNS=str(runs))
    return subprocess.run([sys.executable, "benchmarks/reproduce.py", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=900)  # fmt: skip


@pytest.fixture
def reproduce_here(capsys, monkeypatch):
    """reproduce.py's main in this process, on one thread as run_reproduce's are (a new Python
    would spend seconds importing torch for each call): (exit code, what it printed)."""

    def call(*args: str, runs: Path) -> tuple[int, str]:
        monkeypatch.setenv("VAEGAN_RUNS", str(runs))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            code = reproduce_module().main(list(args))
        finally:
            torch.set_num_threads(threads)
        return code, capsys.readouterr().out

    return call


def test_reproduce_at_smoke_writes_results_figures_and_reads_them_back(tmp_path, monkeypatch,
                                                                      reproduce_here):
    out = tmp_path / "results"
    r = run_reproduce("--preset", "smoke", "--out", str(out), "--jobs", "2", runs=tmp_path / "runs")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "runs" / "smoke" / E.FOLDER).glob("*/last.pt"))) == 18
    res = json.loads((out / "results.json").read_text())
    plan = PLANS["smoke"]
    assert [len(res["five_models"][m]) for m in E.FIVE_MODELS] == [plan.seeds] * 5
    assert "mse" not in res["five_models"]["gan"][0] and "fd" in res["five_models"]["gan"][0]
    assert len(res["gamma_sweep"]) == len(plan.gamma_factors)
    assert [len(res["table2"][m]) for m in E.CONDITIONAL_MODELS] == [plan.table2_seeds] * 3
    assert len(res["knn"]["pixels"]) == len(res["attr_names"]) == 17
    assert res["provenance"]["code"]["git_commit"]
    assert len(res["trained_runs"]) == 18  # all of them: the run folder was empty
    for name in E.FIGURES:
        assert (out / name).stat().st_size > 1000, name
    # the figures can be drawn again from the results and the faces alone
    faces = E.read_faces(out / E.FACES)
    assert faces.keys() == set(E.FACE_FIGURES)
    assert all(rows[label].shape == (8, 3, 32, 32) for rows in faces.values() for label in rows)
    (out / "fig3_samples.png").unlink()
    assert reproduce_here("--redraw", str(out), runs=tmp_path / "runs")[0] == 0
    assert (out / "fig3_samples.png").stat().st_size > 1000
    # the printed tables are made from the JSON
    assert str(E.table2(res)) in r.stdout and str(E.claims(res)) in r.stdout
    # a second call reads the results instead of measuring again
    code, said = reproduce_here("--preset", "smoke", "--out", str(out), runs=tmp_path / "runs")
    assert code == 0 and "runs ready" not in said
    assert json.loads((out / "results.json").read_text()) == res
    # results made with other run settings (say, an older default) are measured again
    calls = []
    with monkeypatch.context() as m:
        m.setattr(E, "write_results", lambda *a, **k: calls.append(a) or {"new": 1})
        assert E.load_or_reproduce(get_preset("smoke"), plan, out)[0] == res and not calls
        res["run_configs"]["06_experiments/gan-s0"]["step"]["dis_batch"] = "separate"
        (out / "results.json").write_text(json.dumps(res))
        assert E.load_or_reproduce(get_preset("smoke"), plan, out)[0] == {"new": 1}
        assert len(calls) == 1
    # --rerun measures again; the results say that no run was trained for them this time
    assert reproduce_here("--preset", "smoke", "--out", str(out), "--rerun",
                          runs=tmp_path / "runs")[0] == 0  # fmt: skip
    assert json.loads((out / "results.json").read_text())["trained_runs"] == []


def refusal(capsys, *args: str) -> str:
    """reproduce.py's refusal of its command line, in this process: exit 2 and one line."""
    with pytest.raises(SystemExit) as e:
        reproduce_module().main(list(args))
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    return err


def test_reproduce_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    assert "huge" in refusal(capsys, "--preset", "huge")
    assert "--jobs" in refusal(capsys, "--preset", "smoke", "--jobs", "0")
    f = tmp_path / "a-file"
    f.write_text("x")
    assert "a-file" in refusal(capsys, "--preset", "smoke", "--out", str(f))
    assert f.read_text() == "x"


def test_the_gpu_plan_never_starts_unasked(monkeypatch, tmp_path, capsys):
    """Chapter 6 at gpu says what the plan trains and stops, unless the reader cuts the runs short
    (VAEGAN_STEPS) or asks for the whole plan (VAEGAN_FULL_PLAN=1)."""
    from vaegan_lite.book import experiments
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import PLANS

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    monkeypatch.setenv("VAEGAN_DATA", str(tmp_path / "no-data"))
    monkeypatch.delenv("VAEGAN_STEPS", raising=False)
    monkeypatch.delenv("VAEGAN_FULL_PLAN", raising=False)
    gpu = get_preset("gpu")
    with pytest.raises(experiments.PlanTooLarge, match="VAEGAN_FULL_PLAN=1"):
        experiments.announce(gpu, PLANS["gpu"], tmp_path)
    said = capsys.readouterr().out
    assert "runs (0 already started)" in said and f"batch {gpu.batch_size}" in said
    monkeypatch.setenv("VAEGAN_FULL_PLAN", "1")
    experiments.announce(gpu, PLANS["gpu"], tmp_path)  # asked for: no stop
    monkeypatch.delenv("VAEGAN_FULL_PLAN")
    experiments.announce(get_preset("smoke"), PLANS["smoke"], tmp_path)  # other presets: no stop


def test_chapter_6_at_gpu_trains_a_plan_for_one_session(monkeypatch, tmp_path, capsys):
    """At the gpu preset chapter 6 picks the gpu-synthetic plan's runs, sized on this machine to
    train in SESSION_TRAIN_S, says so (and how to get the whole plan) before anything trains, and
    remembers the size; the whole plan only when asked for, and the other presets as they are."""

    from vaegan_lite import bench
    from vaegan_lite.book import experiments
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import GPU_SYNTHETIC, PLANS

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    monkeypatch.setenv("VAEGAN_DATA", str(tmp_path / "no-data"))
    for var in ("VAEGAN_STEPS", "VAEGAN_FULL_PLAN"):
        monkeypatch.delenv(var, raising=False)
    timed = []
    monkeypatch.setattr(bench, "seconds_per_step",
                        lambda cfg, steps, **kw: timed.append(cfg) or 0.05)  # fmt: skip
    gpu = get_preset("gpu")
    session, plan = experiments.chapter_plan(gpu)
    said = capsys.readouterr().out
    # without CelebA, beside the synthetic stand-in's other runs
    assert gpu.runs_folder == "synthetic" and session.runs_folder == "synthetic/session"
    assert plan == PLANS[GPU_SYNTHETIC]
    assert replace(session, steps=gpu.steps, gan_steps=gpu.gan_steps, runs_folder="synthetic",
                   checkpoint_every=gpu.checkpoint_every, log_every=gpu.log_every) == gpu
    assert len(timed) == 1 and timed[0].model.width == gpu.width
    steps = experiments.steps_to_fit(gpu, plan, 1, experiments.SESSION_TRAIN_S, 0.05)
    assert session.steps == steps and f"{steps:,} steps each" in said
    assert "VAEGAN_FULL_PLAN=1" in said
    minutes = experiments.plan_load(session, plan) * steps * 0.05 / 60
    assert minutes <= experiments.SESSION_TRAIN_S / 60 and f"about {minutes:.0f} min" in said
    assert "more than" not in said
    assert (tmp_path / "gpu" / "synthetic" / experiments.SESSION / "session.json").is_file()
    experiments.announce(session, plan, tmp_path)  # not refused: this is the plan it picked
    assert experiments.chapter_plan(gpu) == (session, plan) and len(timed) == 1  # remembered
    # A damaged timing is refused in a line naming it, not re-timed under runs it sized.
    sizing = tmp_path / "gpu" / "synthetic" / experiments.SESSION / "session.json"
    for text, says in [("{", "not a JSON file"), ('{"steps": 5}', "no steps and seconds_per_step"),
                       ('{"steps": "5", "seconds_per_step": 1}', "no steps")]:
        sizing.write_text(text)
        with pytest.raises(ValueError, match=f"^{re.escape(str(sizing))}: {says}"):
            experiments.chapter_plan(gpu)
    assert len(timed) == 1
    monkeypatch.setenv("VAEGAN_FULL_PLAN", "1")
    assert experiments.chapter_plan(gpu) == (gpu, PLANS["gpu"])
    cpu = get_preset("cpu")
    assert experiments.chapter_plan(cpu) == (cpu, PLANS["cpu"])


def test_chapter_6_says_when_a_slow_gpu_overruns_the_session(monkeypatch, tmp_path, capsys):
    """On a GPU too slow for even the fewest steps per run (steps_to_fit's floor) in the session's
    budget, chapter 6 says so before it trains, and how to cut the runs shorter."""
    from vaegan_lite import bench
    from vaegan_lite.book import experiments
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import GPU_SYNTHETIC, PLANS

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    monkeypatch.setenv("VAEGAN_DATA", str(tmp_path / "no-data"))
    for var in ("VAEGAN_STEPS", "VAEGAN_FULL_PLAN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(bench, "seconds_per_step", lambda cfg, steps, **kw: 10.0)
    session, plan = experiments.chapter_plan(get_preset("gpu"))
    said = capsys.readouterr().out
    assert session.steps == 100
    minutes = experiments.plan_load(session, plan) * 100 * 10.0 / 60
    assert minutes > experiments.SESSION_TRAIN_S / 60 and plan == PLANS[GPU_SYNTHETIC]
    assert f"about {minutes:.0f} min" in said
    assert f"more than the {experiments.SESSION_TRAIN_S / 60:.0f} min" in said
    assert "VAEGAN_STEPS" in said


def test_chapter_6_cut_short_trains_the_sessions_runs_measured_as_a_quick_look(monkeypatch,
                                                                              tmp_path, capsys):
    """$VAEGAN_STEPS (a quick look that the cells run) at the gpu preset: the gpu-synthetic
    plan's runs cut to those steps, not the whole plan's 103, timed nothing, and measured on at
    most the cut preset's held-out faces, as running.md says; the whole plan only when asked
    for, and measured the same way."""
    from vaegan_lite import bench
    from vaegan_lite.book import experiments
    from vaegan_lite.book.runs import CUT_TEST_SIZE, get_preset
    from vaegan_lite.config import GPU_SYNTHETIC, PLANS

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    monkeypatch.setenv("VAEGAN_DATA", str(tmp_path / "no-data"))
    monkeypatch.delenv("VAEGAN_FULL_PLAN", raising=False)
    monkeypatch.setenv("VAEGAN_STEPS", "200")
    monkeypatch.setattr(bench, "seconds_per_step", lambda *a, **kw: pytest.fail("timed"))
    gpu = get_preset("gpu")
    preset, plan = experiments.chapter_plan(gpu)
    said = capsys.readouterr().out
    assert preset == gpu and preset.steps == 200 and preset.test_size == CUT_TEST_SIZE
    whole = PLANS[GPU_SYNTHETIC]
    assert (plan.seeds, plan.table2_seeds, plan.gamma_factors) == (
        whole.seeds, whole.table2_seeds, whole.gamma_factors)
    # measured on the cut preset's held-out faces, where the whole session plan's are more
    assert whole.n_eval > CUT_TEST_SIZE and whole.knn_train > CUT_TEST_SIZE
    assert (plan.n_eval, plan.n_vectors, plan.knn_train, plan.knn_test, plan.regressor_steps) == (
        CUT_TEST_SIZE, whole.n_vectors, CUT_TEST_SIZE, CUT_TEST_SIZE, 200)
    n = len(experiments.run_configs(preset, plan, len(experiments._attr_names(preset))))
    assert f"trains the {GPU_SYNTHETIC} plan's {n} runs at that length" in said and n < 30
    experiments.announce(preset, plan, tmp_path)  # not refused
    monkeypatch.setenv("VAEGAN_FULL_PLAN", "1")
    preset, plan = experiments.chapter_plan(gpu)
    assert (plan.seeds, plan.table2_seeds) == (PLANS["gpu"].seeds, PLANS["gpu"].table2_seeds)
    assert plan.n_eval == plan.knn_train == CUT_TEST_SIZE < PLANS["gpu"].n_eval
    cpu = get_preset("cpu")
    _, plan = experiments.chapter_plan(cpu)
    assert plan.knn_train == CUT_TEST_SIZE < PLANS["cpu"].knn_train


def test_results_that_do_not_match_are_made_in_the_run_folder_not_the_package(monkeypatch,
                                                                                tmp_path):
    """A cpu preset that is not the committed results' (here shorter runs) reproduces into the
    run folder: nothing is written into an installed package."""

    from vaegan_lite.book import experiments as E
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import PLANS

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    wrote = []
    monkeypatch.setattr(E, "write_results", lambda preset, plan, out, **kw: wrote.append(out))
    E.load_or_reproduce(replace(get_preset("cpu"), steps=10), PLANS["cpu"])
    assert wrote == [tmp_path / "cpu" / E.FOLDER]
    # nor does reproduce.py's default --out for runs cut short ($VAEGAN_STEPS) name the package's
    assert E.results_dir(get_preset("cpu")) == E.RESULTS / "experiments-cpu"
    monkeypatch.setenv("VAEGAN_STEPS", "20")
    assert E.results_dir(get_preset("cpu")) == tmp_path / "cpu" / "steps-20" / E.FOLDER


def test_the_cpu_preset_reads_the_committed_results_without_training(monkeypatch):
    """Chapter 6 at the cpu preset (the book's build) reads vaegan_lite/results/experiments-cpu:
    settings added to TrainConfig since they were made take their defaults and do not invalidate
    them (a stale match would retrain 43 runs, about 100 minutes, in the middle of `make book`)."""
    from vaegan_lite.book import experiments as E
    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import PLANS

    def refuse(*args, **kwargs):
        raise AssertionError("load_or_reproduce started reproducing the committed cpu results")

    monkeypatch.setattr(E, "write_results", refuse)
    res, out = E.load_or_reproduce(get_preset("cpu"), PLANS["cpu"])
    assert out == E.RESULTS / "experiments-cpu" and res["preset"] == "cpu"


def test_parts_by_seed_merge_into_the_whole(tmp_path, device_tool_losses, reproduce_here):
    """A plan made in parts (seeds 1 and 0, e.g. in two GPU sessions) and merged equals the plan
    made at once from the same runs; parts that overlap or differ are refused."""
    out = {k: tmp_path / k for k in ("a", "b", "whole", "merged")}
    runs = tmp_path / "runs"
    for key, seed in (("b", "1"), ("a", "0")):
        assert reproduce_here("--preset", "smoke", "--seeds", seed, "--out", str(out[key]),
                              runs=runs)[0] == 0  # fmt: skip
    assert not (out["b"] / "fig3_samples.png").exists()  # the figures come with seed 0
    assert not device_tool_losses(out["a"], also=1)  # tools/gpu_experiments.sh: + its log
    a, b = out["a"] / "results-seeds-0.json", out["b"] / "results-seeds-1.json"
    assert reproduce_here("--merge", str(b), str(a), "--out", str(out["merged"]), runs=runs)[0] == 0
    assert reproduce_here("--preset", "smoke", "--out", str(out["whole"]), runs=runs)[0] == 0
    merged, whole = (json.loads((out[k] / "results.json").read_text()) for k in ("merged", "whole"))
    for key in ("five_models", "gamma_sweep", "table2", "knn", "five_models_real", "run_configs",
                "seeds", "plan", "preset_settings"):  # fmt: skip
        assert merged[key] == whole[key], key
    assert whole["trained_runs"] == [] and len(merged["trained_runs"]) == 18
    assert "recon_judge_acc" in whole["five_models"]["vae"][0]
    assert len(merged["provenance"]["parts"]) == 2
    for name in E.FIGURES:
        assert (out["merged"] / name).is_file(), name
    parts = [json.loads(p.read_text()) for p in (a, b)]
    with pytest.raises(ValueError, match=r"seeds \[0, 0, 1\]"):
        E.merge_results([*parts, parts[0]])
    with pytest.raises(ValueError, match=r"seeds \[1\]"):
        E.merge_results([parts[1]])
    other = {**parts[1], "plan": {**parts[1]["plan"], "n_eval": 7}}
    with pytest.raises(ValueError, match="differ in 'plan'"):
        E.merge_results([parts[0], other])
    # --part-per-seed makes both parts in one call, seed 0's written before seed 1 is taken up
    code, said = reproduce_here("--preset", "smoke", "--seeds", "1", "0", "--part-per-seed",
                                "--out", str(tmp_path / "c"), runs=runs)  # fmt: skip
    assert code == 0
    written = [line.split()[1] for line in said.splitlines() if line.startswith("wrote ")]
    assert [Path(w).name for w in written] == ["results-seeds-0.json", "results-seeds-1.json"]
    assert said.index("results-seeds-0.json") < said.index("8 runs ready")
    for part, path in zip(parts, (a, b), strict=True):
        again = json.loads((tmp_path / "c" / path.name).read_text())
        for key in ("five_models", "table2", "knn", "seeds", "run_configs"):
            assert again[key] == part[key], (path.name, key)


def test_gpu_synthetic_plan_and_its_sizing(tmp_path, monkeypatch, capsys):
    from vaegan_lite.config import GPU_SYNTHETIC, gpu_synthetic_preset

    plan, preset = PLANS[GPU_SYNTHETIC], gpu_synthetic_preset(3000)
    assert plan.seeds >= 2 and plan.table2_seeds >= 2 and len(plan.gamma_factors) >= 4
    assert (preset.image_size, preset.width, preset.batch_size, preset.data) == (
        64, 1.0, 64, "synthetic")  # Table 1's networks at 64x64, on the synthetic faces
    # VAE_Dis_l's GAN as large a share as at the gpu preset (20,000 to 62,500)
    assert preset.steps == 3000 and preset.gan_steps == 960 and preset.dataset_size >= 100_000
    # 18 runs of the smoke plan dealt to 2 processes: 9 each, one VAE_Dis_l in each, here 4/3
    # of a run (a GAN a third as long)
    smoke, smoke_plan = replace(get_preset("smoke"), gan_steps=2), PLANS["smoke"]
    # 0.85 of 100 s / (28/3 units * 0.01 s) = 910
    assert E.steps_to_fit(smoke, smoke_plan, 2, 100.0, 0.01) == 900
    # the smoke preset's own GAN is 4 steps to 6: 0.85 * 100 / (29/3 * 0.01) = 879
    assert E.steps_to_fit(get_preset("smoke"), smoke_plan, 2, 100.0, 0.01) == 800
    # seed 1 alone: 8 runs, 4 and 4 1/3 units: 0.85 * 100 / (13/3 * 0.01) = 1961
    assert E.steps_to_fit(smoke, smoke_plan, 2, 100.0, 0.01, seeds=[1]) == 1900
    assert E.steps_to_fit(smoke, smoke_plan, 2, 100.0, 0.01, margin=1.0) == 1000
    # one part per seed, one after the other: 16/3 + 13/3 units: 0.85 * 100 / (29/3 * 0.01) = 879
    assert E.steps_to_fit(smoke, smoke_plan, 2, 100.0, 0.01, part_per_seed=True) == 800
    assert E.steps_to_fit(smoke, smoke_plan, 2, 0.001, 0.01) == 100  # never below one unit
    assert 0 < E.parallel_seconds_per_step(smoke, jobs=2, steps=5) < 10
    monkeypatch.setenv("VAEGAN_RUNS", "/nonexistent")
    assert "leave out --preset" in refusal(capsys, "--plan", GPU_SYNTHETIC, "--preset", "cpu")
    assert "--plan" in refusal(capsys, "--preset", "smoke", "--steps", "5")
    assert "seeds are [0, 1]" in refusal(capsys, "--preset", "smoke", "--seeds", "7")
    # --merge without --out or --plan: not into the cpu preset's results
    assert "--merge: give --plan" in refusal(capsys, "--merge", "part.json")
    assert "leave out --seeds and --part-per-seed" in refusal(
        capsys, "--merge", "part.json", "--out", "x", "--part-per-seed")
    # a part is never written into the package's results
    assert "give --out" in refusal(capsys, "--preset", "cpu", "--seeds", "0")
    # a part of the gpu preset's whole plan is refused as the whole is, before anything trains
    # (from the command line: the refusal comes from experiments, as one line)
    r = run_reproduce("--preset", "gpu", "--part-per-seed", "--out", str(tmp_path / "gpu"),
                      runs=tmp_path / "runs")  # fmt: skip
    assert r.returncode == 2 and "VAEGAN_FULL_PLAN=1" in r.stderr, r.stderr
    assert not list((tmp_path / "runs").rglob("*.pt")) and not (tmp_path / "gpu").exists()


def test_chapters_show_gpu_synthetic_results_when_they_ship(tmp_path, monkeypatch, capsys,
                                                           reproduce_here):
    """With results of the gpu-synthetic plan in the package (here: smoke results standing in),
    chapter 6's cell shows their figures, tables and the claims for both; chapters 3 and 4 their
    figures. Without them, one line says how to make them."""
    from vaegan_lite.config import GPU_SYNTHETIC

    monkeypatch.setattr(E, "RESULTS", tmp_path / "results")
    assert E.gpu_synthetic_figures("fig4_reconstructions.png") == []
    assert f"--plan {GPU_SYNTHETIC}" in capsys.readouterr().out
    assert E.gpu_synthetic_figures("fig3_samples.png", provenance=False) == []
    assert capsys.readouterr().out == ""  # the cell before said there are none
    out = tmp_path / "results" / f"experiments-{GPU_SYNTHETIC}"
    assert reproduce_here("--preset", "smoke", "--out", str(out), runs=tmp_path / "runs")[0] == 0
    paths = E.gpu_synthetic_figures("fig4_reconstructions.png", "fig3_samples.png")
    said = capsys.readouterr().out
    assert [p.name for p in paths] == ["fig4_reconstructions.png", "fig3_samples.png"]
    assert "steps of batch 16 per run, 18 runs" in said and "CPU cores" in said
    again = E.gpu_synthetic_figures("fig3_samples.png", provenance=False)
    assert again == [out / "fig3_samples.png"]
    assert "CPU cores" not in capsys.readouterr().out  # said once, by the first cell
    # The section's cells, from its first code line to the next markdown cell (the cell
    # headers between are comments to Python).
    source = (ROOT / "notebooks" / "06_experiments.py").read_text()
    section = source.split("from vaegan_lite.config import GPU_SYNTHETIC\n")[1]
    section = section.split("# %% [markdown]")[0]
    shown = []
    cpu = json.loads((ROOT / "vaegan_lite/results/experiments-cpu/results.json").read_text())
    exec(section, {"experiments": E, "GPU_SYNTHETIC": GPU_SYNTHETIC, "results": cpu,
                   "display": lambda *a: shown.extend(a), "Image": lambda filename: filename})
    assert shown[:3] == [str(out / f) for f in ("fig3_samples.png", "fig4_reconstructions.png",
                                                "fig5_gamma.png")]  # fmt: skip
    tables = [str(t) for t in shown[3:]]
    assert "recon. judge accuracy" in tables[0]
    assert tables[1].startswith(f"| claim | cpu: ours | holds? | {GPU_SYNTHETIC}: ours | holds? |")
    capsys.readouterr()
    for chapter in ("03_learned_similarity", "04_vaegan_training"):
        # the section's cells: from the first call's cell to the next markdown cell
        source = (ROOT / "notebooks" / f"{chapter}.py").read_text()
        _, calls = source.split("\nfor path in gpu_synthetic_figures(", 1)
        section = "for path in gpu_synthetic_figures(" + calls.split("# %% [markdown]")[0]
        shown = []
        exec(section, {"gpu_synthetic_figures": E.gpu_synthetic_figures, "Image": lambda filename:
                       filename, "display": shown.append})  # fmt: skip
        assert shown == [str(out / f) for f in ("fig4_reconstructions.png", "fig3_samples.png")]
        said = capsys.readouterr().out
        assert said.count("CPU cores") == 1, (chapter, said)  # the results' line, once


def test_a_part_of_a_64x64_synthetic_plan_is_measured_with_the_64x64_judge(tmp_path, monkeypatch):
    """gpu-synthetic's path (64x64 synthetic faces, the 64x64 judge, the judge's accuracy on
    reconstructions, a part by seed, its figures) with tiny networks and runs, on a CPU."""

    from vaegan_lite.config import Plan, gpu_synthetic_preset

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path / "runs"))
    preset = replace(gpu_synthetic_preset(2), width=1 / 16, latent_dim=16, dataset_size=256,
                     batch_size=16)  # fmt: skip
    assert E.judge_for(preset).config.image_size == 64
    plan = Plan(1, 1, (0.1, 1.0), 32, 16, 2, 4, 64, 32)
    res = E.write_results(preset, plan, tmp_path / "out", seeds=[0], log=lambda s: None)
    assert (tmp_path / "out" / "results-seeds-0.json").is_file()
    assert all(0 <= r["recon_judge_acc"] <= 1 for m in ("vae", "vaegan") for r in
               res["five_models"][m])  # fmt: skip
    merged = E.merge_results([res])
    E.check_results(merged, E.merge_plan(merged))
    line = E.provenance_line(merged)  # the machine worded as load_or_train words it
    where = E.trained_on(res["provenance"]["machine"])
    assert "64x64 synthetic faces" in line and f"made on {where} with torch" in line
    # a part's figures are drawn when the parts are merged: seed 0's part keeps their faces
    assert E.read_faces(tmp_path / "out" / E.FACES).keys() == set(E.FACE_FIGURES)
    assert not list((tmp_path / "out").glob("*.png"))


def test_a_plans_models_are_read_when_measured_not_held(tmp_path, monkeypatch):
    """A plan's models together outgrow a GPU (the gpu plan's 103 runs: about 21 GB), so
    train_runs holds them only up to HOLD_BYTES: past it, each is read from its checkpoint when
    asked for, with the weights its training ended with, in its layout, and only the last one
    asked for is kept."""
    import gc
    import weakref

    from vaegan_lite.config import Plan, gpu_synthetic_preset

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path / "runs"))
    preset = replace(gpu_synthetic_preset(2), width=1 / 16, latent_dim=16, dataset_size=256,
                     batch_size=16)  # fmt: skip
    trained = {}

    def keep_weights(name, *args, **kwargs):
        run = load_or_train(name, *args, **kwargs)
        trained[name] = {k: v.clone() for k, v in run.model.state_dict().items()}
        return run

    load_or_train = E.load_or_train
    monkeypatch.setattr(E, "load_or_train", keep_weights)
    plan = Plan(1, 1, (0.1, 1.0), 32, 16, 2, 4, 64, 32)
    models = E.train_runs(preset, plan, progress=False)
    assert models.held() == list(models) and len(models) > 5  # small models: all held
    monkeypatch.setattr(E, "HOLD_BYTES", 0)
    models = E.train_runs(preset, plan, progress=False)  # read back, none held
    assert set(models) == set(trained) and len(models) == len(trained) and not models.held()
    first, second = list(models)[:2]
    assert first in models and "no such run" not in models
    model = models[first]
    assert models[first] is model  # asked again (kNN reads a run twice): not read again
    for k, v in model.state_dict().items():
        assert torch.equal(v, trained[first][k]), k
    assert not model.training and model.train_config.channels_last
    assert next(model.dis.parameters()).is_contiguous(memory_format=torch.channels_last)
    gone = weakref.ref(model)
    del model
    assert models[second] is not None
    gc.collect()
    assert gone() is None, "a run asked for earlier is still held"


def test_smoke_runs_are_one_folder_per_process_tree_removed_at_exit():
    """The smoke preset's runs: the same folder on every call and in the processes a run starts
    (train_in_processes' workers), and gone when the process that made it exits."""
    show = ("from vaegan_lite.book.runs import runs_dir; from vaegan_lite.config import PRESETS; "
            "print(runs_dir(PRESETS['smoke']))")  # fmt: skip
    code = (f"{show}; import subprocess, sys; from vaegan_lite.book.runs import runs_dir; "
            "a = runs_dir(PRESETS['smoke']); (a / 'run').mkdir(); "
            f"subprocess.run([sys.executable, '-c', {show!r}], check=True)")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("VAEGAN_RUNS", SMOKE_RUNS)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert len(out) == 2 and out[0] == out[1], out
    assert not Path(out[0]).exists()


def test_a_killed_process_smoke_folder_goes_when_the_next_one_is_made(tmp_path):
    """A process killed before its exit handler ran (a kernel shut down at once) leaves its smoke
    folder; the next process that makes one removes it, and leaves those of live processes."""
    code = ("from vaegan_lite.book.runs import smoke_runs; import os; p = smoke_runs(); "
            "(p / 'run').mkdir(); print(p, flush=True); os._exit(9)")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("VAEGAN_RUNS", SMOKE_RUNS)}
    env["TMPDIR"] = str(tmp_path)
    killed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    assert Path(killed).is_dir() and Path(killed).parent == tmp_path
    alive = tmp_path / f"vaegan-smoke-{os.getpid()}-x"
    alive.mkdir()
    show = "from vaegan_lite.book.runs import smoke_runs; print(smoke_runs())"
    subprocess.run([sys.executable, "-c", show], env=env, check=True, capture_output=True)
    assert not Path(killed).exists() and alive.is_dir()


def test_a_vaegan_runs_that_cannot_hold_runs_is_named(tmp_path, monkeypatch):
    """$VAEGAN_RUNS pointing at a file (or a read-only place) is said as such, with the variable's
    name, before any run starts."""
    from vaegan_lite.book.runs import runs_dir
    from vaegan_lite.config import PRESETS

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path / "file" / "runs"))
    with pytest.raises(ValueError, match=r"^VAEGAN_RUNS=.*/file/runs: .*/file is a file, not a"):
        runs_dir(PRESETS["cpu"])
    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path / "runs"))
    assert runs_dir(PRESETS["cpu"]) == tmp_path / "runs" / "cpu" / PRESETS["cpu"].runs_folder


def reproduce_module():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks/reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_faces() -> dict[str, dict[str, torch.Tensor]]:
    """Faces for each figure that shows some: two rows of two small random images."""
    g = torch.Generator().manual_seed(0)
    return {name: {f"row {i}": torch.rand(2, 3, 8, 8, generator=g) * 2 - 1 for i in range(2)}
            for name in E.FACE_FIGURES}  # fmt: skip


def write_part(folder: Path, res: dict, seeds: list[int], figures: bool = True) -> Path:
    """A part of the committed cpu results, as reproduce --seeds would write it (seed 0's with
    the faces of its figures)."""
    part = {k: v for k, v in res.items()
            if 0 in seeds or k not in ("inception", "gamma_sweep")}  # fmt: skip
    part["seeds"] = seeds
    for key, models in (("five_models", E.FIVE_MODELS), ("table2", E.CONDITIONAL_MODELS),
                        ("knn", ("gan", "vaegan"))):  # fmt: skip
        part[key] = {**res[key], **{m: [res[key][m][s] for s in seeds] for m in models}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / E.part_file(seeds)
    path.write_text(json.dumps(part))
    if figures and 0 in seeds:
        E.save_faces(fake_faces(), folder / E.FACES)
    return path


def test_merge_checks_every_part_and_figure_before_writing_anything(tmp_path, capsys,
                                                                   monkeypatch):
    """A part that is not JSON, not an object, lacks a table, is short, or holds a NaN or negative
    FD, and a seed-0 part without its faces or with a broken faces file: one line naming the
    file, and --out is not made (it kept 2 of 5 figures and no results.json; the package's stored
    figures with --plan). Real parts give the figures, drawn from seed 0's faces."""
    tool = reproduce_module()
    res = json.loads((ROOT / "vaegan_lite/results/experiments-cpu/results.json").read_text())
    a, b = write_part(tmp_path / "a", res, [0, 1]), write_part(tmp_path / "b", res, [2, 3, 4])
    out = tmp_path / "out"
    seen = []  # the seeds Fig. 5's tradeoff is drawn with: every part's, not seed 0's alone
    draw = E.tradeoff_figure
    monkeypatch.setattr(E, "tradeoff_figure",
                        lambda r, g: seen.append(len(r["five_models"]["vaegan"])) or draw(r, g))
    assert tool.merge([b, a], out) == 0  # real parts pass the checks
    assert seen == [len(res["five_models"]["vaegan"])] == [5]
    merged = json.loads((out / "results.json").read_text())
    assert merged["five_models"] == res["five_models"] and merged["seeds"] == res["seeds"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*E.FIGURES, E.FACES, "results.json"])
    assert all((out / name).stat().st_size > 1000 for name in E.FIGURES)
    assert E.read_faces(out / E.FACES).keys() == fake_faces().keys()
    capsys.readouterr()

    def refused(paths: list[Path], says: str) -> None:
        with pytest.raises(ValueError, match=says) as e:
            tool.merge(paths, tmp_path / "new")
        assert "\n" not in str(e.value) and not (tmp_path / "new").exists()

    faces = (tmp_path / "a" / E.FACES).read_bytes()
    (tmp_path / "a" / E.FACES).unlink()
    refused([a, b], f"seed 0's part.* lacks {E.FACES}")
    (tmp_path / "a" / E.FACES).write_bytes(faces[: len(faces) // 2])  # cut short
    refused([a, b], f"{E.FACES}: not the faces of a results folder")
    wrong = fake_faces()  # a file that opens, with a figure missing, then a row of another shape
    del wrong["fig8_conditional.png"]
    E.save_faces(wrong, tmp_path / "a" / E.FACES)
    refused([a, b], f"{E.FACES}: no faces for fig8_conditional.png")
    wrong = fake_faces()
    wrong["fig3_samples.png"]["row 0"] = torch.zeros(2, 3, 8, 9)
    E.save_faces(wrong, tmp_path / "a" / E.FACES)
    refused([a, b], rf"{E.FACES}: rows of faces of shapes .*not one \[N, C, H, W\]")
    (tmp_path / "a" / E.FACES).write_bytes(faces)
    bad = json.loads(b.read_text())
    cases = [("{not json", "not a JSON file"), ("[1, 2]", "a JSON list, not a results part"),
             (json.dumps({k: v for k, v in bad.items() if k != "table2"}), "no 'table2'"),
             (json.dumps({**bad, "plan": [1]}), "not a results part")]  # fmt: skip
    for key, value in (("fd", float("nan")), ("fd", -1.0)):
        rows = [dict(r) for r in bad["five_models"]["vae"]]
        rows[1][key] = value
        cases.append((json.dumps({**bad, "five_models": {**bad["five_models"], "vae": rows}}),
                      "fails the results check"))  # fmt: skip
    short = {**bad["table2"], "vaegan": bad["table2"]["vaegan"][:-1]}
    cases.append((json.dumps({**bad, "table2": short}), r"table2\['vaegan'\] holds 2 runs"))
    for text, says in cases:
        b.write_text(text)
        refused([a, b], f"--merge {b}: .*{says}")
    # and from the command line: one line, exit 2
    r = run_reproduce("--merge", str(a), str(b), "--out", str(tmp_path / "new"), runs=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and str(b) in r.stderr, r.stderr


def test_redraw_needs_a_results_folder_and_nothing_else(tmp_path, capsys):
    """--redraw on a folder without results or faces says which file, in one line; with other
    options it is refused before anything is read."""
    tool = reproduce_module()
    with pytest.raises(ValueError, match=r"results\.json: cannot be read"):
        tool.main(["--redraw", str(tmp_path)])
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(ValueError, match=rf"{E.FACES}: not the faces of a results folder"):
        tool.main(["--redraw", str(tmp_path)])
    E.save_faces(fake_faces(), tmp_path / E.FACES)
    (tmp_path / "fig3_samples.png").write_bytes(b"kept")
    with pytest.raises(ValueError, match=r"results\.json: not a plan's results \(KeyError"):
        tool.main(["--redraw", str(tmp_path)])
    assert (tmp_path / "fig3_samples.png").read_bytes() == b"kept"  # nothing drawn over
    with pytest.raises(SystemExit) as e:
        tool.main(["--redraw", str(tmp_path), "--preset", "smoke"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "leave out the other options" in err and err.count("\n") == 1


@pytest.mark.parametrize("args, says", [
    (["--preset", "smoke", "--seeds", "7"], "seeds are [0, 1]"),
    (["--plan", "gpu-synthetic", "--steps", "0"], "--steps must be >= 1"),
    (["--plan", "gpu-synthetic", "--steps", "-5"], "--steps must be >= 1"),
    (["--plan", "gpu-synthetic", "--budget-s", "0"], "--budget-s must be a positive"),
    (["--plan", "gpu-synthetic", "--budget-s", "-1"], "--budget-s must be a positive"),
    (["--plan", "gpu-synthetic", "--budget-s", "nan"], "--budget-s must be a positive"),
    (["--preset", "smoke", "--steps", "0"], "size a --plan's runs"),
])  # fmt: skip
def test_reproduce_refuses_bad_sizes_before_any_work_or_folder(tmp_path, capsys, args, says):
    """--steps 0 became 100 steps; --budget-s <= 0 ran the timing first; --seeds 7 left an empty
    --out folder behind."""
    with pytest.raises(SystemExit) as e:
        reproduce_module().main([*args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("preset_name", ["smoke", "cpu"])
def test_the_chapters_held_out_faces_are_not_training_faces(preset_name):
    """Every "held-out" figure of the book rests on this: test_images are the faces after the
    training set of the chapters' configs, the same ones attributes.held_out_faces gives for a
    model trained on it, and none of them is a training face."""
    from vaegan_lite.attributes import held_out_faces
    from vaegan_lite.book.runs import test_images
    from vaegan_lite.config import config_for
    from vaegan_lite.data import training_tensors
    from vaegan_lite.images import to_uint8
    from vaegan_lite.models import VAEGAN

    preset = get_preset(preset_name)
    cfg = config_for(preset, "vae")
    x, y = test_images(preset, 64)
    model = VAEGAN(cfg.model)
    model.train_config = cfg
    hx, hy, _ = held_out_faces(model, 64)
    assert torch.equal(x, hx) and torch.equal(y, hy)
    seen = {bytes(face.numpy()) for face in training_tensors(cfg, progress=False)[0]}  # all
    assert len(seen) > 0.99 * cfg.dataset_size  # (the faces differ from each other)
    assert not any(bytes(face.numpy()) in seen for face in to_uint8(x))


def test_claim_verdicts_say_when_a_difference_is_within_the_seeds_spread():
    from vaegan_lite.book.tables import claims_table, seed_spread

    assert seed_spread([1.0, 3.0], [5.0]) == pytest.approx(2**0.5)  # one seed: no spread
    assert seed_spread([2.0]) == 0.0
    rows = [("a below b", 1.0, "<", 2.0, 0.5), ("a above b", 1.0, ">", 2.0, 0.5),
            ("close", 1.0, "<", 1.4, 0.5), ("close, wrong way", 1.4, "<", 1.0, 0.5),
            ("one seed", 1.0, "<", 1.01, 0.0)]  # fmt: skip
    verdicts = [line.rsplit("|", 2)[1].strip() for line in claims_table(rows).splitlines()[2:]]
    assert verdicts == ["yes", "no", "within a seed's spread", "within a seed's spread", "yes"]


def test_claims_of_the_committed_cpu_results_use_each_sides_seed_spread():
    res = json.loads((E.results_dir(get_preset("cpu")) / "results.json").read_text())
    rows = E.claim_rows(res)
    assert all(len(r) == 5 and r[4] >= 0 for r in rows)
    fm = res["five_models"]
    first = rows[0]  # VAE/GAN's sample FD against the VAE's
    sd = max(float(torch.tensor([r["fd"] for r in fm[m]], dtype=torch.float64).std())
             for m in ("vaegan", "vae"))  # fmt: skip
    assert first[4] == pytest.approx(sd)


def test_the_regressor_is_read_back_only_for_the_same_steps(tmp_path, monkeypatch):
    """Table 2's regressor is kept in the runs folder by seed and steps: a plan that trains it
    for another number of steps trains its own rather than reading a stale one back."""

    from vaegan_lite.book.runs import get_preset
    from vaegan_lite.config import PLANS

    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path))
    preset, plan = get_preset("cpu"), replace(PLANS["smoke"], regressor_steps=2)
    preset = replace(preset, dataset_size=64, width=0.125)
    first = E.train_regressor(preset, plan)
    files = sorted(p.name for p in tmp_path.rglob("regressor-*"))
    assert files == ["regressor-s0-2steps.pt"]
    again = E.train_regressor(preset, plan)  # read back: the same weights
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                 again.state_dict().values(), strict=True))
    E.train_regressor(preset, replace(plan, regressor_steps=3))
    assert sorted(p.name for p in tmp_path.rglob("regressor-*")) == [
        "regressor-s0-2steps.pt", "regressor-s0-3steps.pt"]


def test_a_part_that_diverges_leaves_the_next_seed_to_train(tmp_path, monkeypatch, capsys):
    """One seed's run that diverges on the GPU must not cost the other seed's part: it says so
    in a line, goes on, writes the part that trained, and exits 1."""
    from vaegan_lite.train import TrainingDiverged

    tool = reproduce_module()
    written = []

    def write_results(preset, plan, out, jobs, seeds, commit):
        if seeds == [0]:
            raise TrainingDiverged("training diverged: 50 steps in a row had a non-finite loss")
        written.append(seeds)

    monkeypatch.setattr(tool.experiments, "write_results", write_results)
    monkeypatch.setattr(tool.experiments, "announce", lambda *a, **k: None)
    monkeypatch.setenv("VAEGAN_RUNS", str(tmp_path / "runs"))
    args = ["--preset", "smoke", "--seeds", "0", "1", "--part-per-seed", "--out", str(tmp_path)]
    assert tool.main(args) == 1
    assert written == [[1]]
    err = capsys.readouterr().err
    assert "seeds [0]: training diverged" in err and "not written" in err


def test_the_prepared_gpu_experiments_run_returns_its_parts(tmp_path, device_tool_losses):
    """tools/gpu_experiments.sh as the device call runs it (timeout, tee, the cleanup after it), at
    the smoke preset's sizes (DRY_RUN=1): each seed's part, written before the next seed trains,
    the faces with seed 0 and the log, in files the device tool brings back; --merge then draws
    the figures from them."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OUT": str(out), "DRY_RUN": "1", "JOBS": "1", "OMP_NUM_THREADS": "1",
           "VAEGAN_RUNS": str(tmp_path / "runs"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    r = subprocess.run(["bash", "tools/gpu_experiments.sh", "0" * 40], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    log = (out / "reproduce.log").read_text()
    assert log.index("results-seeds-0.json") < log.index("results-seeds-1.json"), log[-2000:]
    for seed in (0, 1):
        part = json.loads((out / "exp" / E.part_file([seed])).read_text())
        assert part["seeds"] == [seed] and part["provenance"]["code"]["git_commit"] == "0" * 40
        created = part["provenance"]["created"]  # the time of day too
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", created), created
    assert (out / "exp" / E.FACES).is_file() and not list(out.rglob("*.png"))
    assert not device_tool_losses(out) and not list(out.rglob(".*.tmp*"))
    parts = [str(out / "exp" / E.part_file([seed])) for seed in (0, 1)]
    assert reproduce_module().merge([Path(p) for p in parts], tmp_path / "merged") == 0
    assert all((tmp_path / "merged" / name).stat().st_size > 1000 for name in E.FIGURES)
    if not torch.cuda.is_available():  # not a dry run: it stops at once, where it would have
        del env["DRY_RUN"]  # trained on the CPU until the call's time ran out
        (empty := tmp_path / "empty").mkdir()
        r = subprocess.run(["bash", "tools/gpu_experiments.sh", "0" * 40], cwd=ROOT,
                           env={**env, "OUT": str(empty)}, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
        says = f"gpu_experiments: torch {torch.__version__} sees no CUDA device here"
        assert r.returncode == 1 and says in r.stdout, r.stdout + r.stderr
        assert says in (empty / "reproduce.log").read_text() and not (empty / "exp").exists()


def test_mean_std_digits_go_by_magnitude():
    """``mean_std``'s digits go by magnitude: negative values of 1 or more get 2 decimals."""
    from vaegan_lite.book.tables import mean_std
    assert mean_std([-5.0, -3.0]) == "-4.00 ± 1.41"
    assert mean_std([0.5, 0.25]) == "0.3750 ± 0.1768"


def test_test_images_offset_continues_the_held_out_faces():
    """``test_images``' offset moves along the held-out synthetic faces."""
    from vaegan_lite.book.runs import get_preset, test_images
    preset = get_preset("smoke")
    x, a = test_images(preset, 5)
    y, b = test_images(preset, 2, offset=3)
    assert torch.equal(y, x[3:]) and torch.equal(b, a[3:])


def test_table1_shows_our_mse_for_images_in_0_1():
    """Our MSE is measured on images in [-1, 1]; Table 1 shows it for [0, 1], a quarter of it,
    beside the paper's numbers."""
    from vaegan_lite.book.tables import table1

    lines = str(table1({"VAE": [{"mse": 0.4, "fd": 10.0, "kl": 5.0}]})).splitlines()
    assert lines[2] == "| VAE | 0.1000 | 10.00 | 5.00 | 0.03 ± 0.00 | 0.18 ± 0.00 | 60.04 ± 0.47 |"


def test_a_difference_equal_to_the_spread_is_within_it():
    """"within a seed's spread" where the difference is no larger than the spread: equal too."""
    from vaegan_lite.book.tables import claims_table

    verdict = str(claims_table([("edge", 1.0, "<", 1.5, 0.5)])).splitlines()[2]
    assert verdict.endswith("| within a seed's spread |")


def test_claims_compared_refuses_results_that_check_other_claims():
    """Side by side only where both sets check the same claims: else a row would pair one
    claim's verdict with another's."""
    from vaegan_lite.book.tables import claims_compared

    row = ("a below b", 1.0, "<", 2.0, 0.0)
    both = claims_compared({"x": [row], "y": [row]})
    assert "| a below b | 1 < 2? | yes | 1 < 2? | yes |" in both
    with pytest.raises(ValueError, match="must check the same claims"):
        claims_compared({"x": [row], "y": [("another", 1.0, "<", 2.0, 0.0)]})
