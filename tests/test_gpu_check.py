"""tools/gpu_check.py, and the tests it runs on a GPU.

On any machine: the CPU dry run writes the JSON the GPU run will (every section, its status, the
bench rows), a spent budget skips sections instead of failing, the documented device call fits
the device tool's 2000 characters, and the peak table finds the right GPUs.

On a GPU (tools/gpu_check.py runs ``pytest -k cuda``; elsewhere they skip): one training step of
each model moves every parameter on CUDA as on the CPU, exact resume is bitwise on CUDA, and
auto precision trains (bf16 from compute capability 8.0, fp16 with a GradScaler below).
"""

import copy
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from vaegan_lite.config import MODEL_NAMES, MODELS, StepConfig
from vaegan_lite.models import model_spec
from vaegan_lite.train import pick_precision, train

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "gpu_check.py"
spec = importlib.util.spec_from_file_location("gpu_check", TOOL)
gpu_check = sys.modules["gpu_check"] = importlib.util.module_from_spec(spec)  # (dataclasses)
spec.loader.exec_module(gpu_check)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (a GPU)")
STATUSES = {"ok", "failed", "error", "timeout", "skipped"}


def run_tool(*args, cwd):
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


# --- the tool, on the CPU ------------------------------------------------------------------------


@pytest.mark.slow
def test_cpu_dry_run_writes_every_section(tmp_path, device_tool_losses):
    """The JSON CI checks: every section there, in order, with a status; the figures' fields."""
    fine, broken = tmp_path / "fine.py", tmp_path / "broken.py"
    fine.write_text("import os\nprint('steps', os.environ['VAEGAN_STEPS'])\n")
    broken.write_text("raise RuntimeError('Expected all tensors to be on the same device')\n")
    out = tmp_path / "out" / "gpu_check.json"
    p = run_tool("--cpu-dry-run", "--out", str(out), "--commit", "f" * 40, "--chapters",
                 str(fine), str(broken), cwd=tmp_path)  # fmt: skip
    # the broken chapter: exit 1, naming the section, with the JSON written whole
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1] == (
        "gpu_check: chapters did not pass (the JSON says why)"), p.stderr
    report = json.loads(out.read_text())
    sections = report["sections"]
    assert report["mode"] == "cpu-dry-run" and tuple(sections) == gpu_check.SECTION_NAMES
    assert all(s["status"] in STATUSES and s["seconds"] >= 0 for s in sections.values())
    prov = sections["provenance"]["result"]
    assert prov["torch"] == torch.__version__ and len(prov["commit"]) == 40 and prov["date_utc"]
    assert prov["faces_warmup_s"] >= 0  # the renderer compiled before the CUDA tests run

    tests = sections["cuda_tests"]
    assert tests["status"] == "ok", tests
    assert tests["result"]["skipped"] >= 1 and tests["result"]["failed"] == 0  # no CUDA here

    resume = sections["resume"]["result"]
    assert sections["resume"]["status"] == "ok"
    assert set(resume["deterministic"]) == set(gpu_check.RESUME_VARIANTS)
    assert all(r["bitwise_equal"] for r in resume["deterministic"].values())
    assert set(resume["steps_per_s"]) == {"deterministic", "default", "benchmark"}

    bench = sections["bench"]
    assert bench["status"] == "ok"
    rows = {(r["model"], r["variant"]): r for r in bench["result"]["rows"]}
    assert set(rows) == ({(m, v) for m in MODELS for v in gpu_check.BENCH_VARIANTS}
                         | {(m, "channels_last") for m in MODEL_NAMES})  # fmt: skip
    for r in rows.values():
        assert r["images_per_s"] > 0 and r["gflop_per_image"] > 0
        assert r["pipelined_images_per_s"] > 0
        assert "mfu" in r and r["mfu"] is None  # a CPU is not in the peak table

    assert sections["pythae"]["status"] in ("ok", "skipped")
    assert sections["bench_compile"]["status"] == "skipped"

    chapters = sections["chapters"]
    runs = chapters["result"]["runs"]
    assert chapters["status"] == "failed" and list(runs) == ["fine", "broken"]
    assert runs["fine"]["status"] == "ok" and "steps 6" in runs["fine"]["tail"]
    assert runs["broken"]["returncode"] != 0 and "same device" in runs["broken"]["tail"]
    assert (out.parent / "gpu_check_chapter_broken.log").exists()
    assert "gpu_check (cpu-dry-run)" in p.stdout
    assert not device_tool_losses(out.parent, also=1)  # and the call's tee'd gpu_check.log

    # What CONTRIBUTING says to do with the JSON: every chapter's running box from its rows.
    chapters = sorted(str(p) for p in (ROOT / "notebooks").glob("[0-9A]*.py"))
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "time_chapters.py"), *chapters,
                        "--from-gpu-check", str(out), "--dry-run"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("(not written)") == len(chapters)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_without_cuda_the_check_stops_at_once_unless_asked_for_a_dry_run(tmp_path):
    """It fell back to the CPU dry run by itself: on a device machine whose CUDA failed, the one
    call spent its whole budget at toy sizes and exited 0."""
    out = tmp_path / "gpu_check.json"
    p = run_tool("--out", str(out), "--commit", "f" * 40, cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        f"gpu_check: torch {torch.__version__} sees no CUDA device here; --cpu-dry-run runs the "
        "sections at toy sizes on the CPU"]  # fmt: skip
    assert not out.exists()


def test_a_spent_budget_skips_sections_and_still_writes_the_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    p = run_tool("--cpu-dry-run", "--budget-s", "0", "--out", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    sections = json.loads(out.read_text())["sections"]
    assert {s["status"] for s in sections.values()} == {"skipped"}
    assert all("budget" in s["reason"] for s in sections.values())


NO_IPYTHON = """
import importlib.abc, sys
class NoIPython(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "IPython":
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoIPython())
"""


def test_a_chapter_runs_where_ipython_is_missing(tmp_path):
    """The GPU machine has no IPython: the chapter runner stubs what the chapters display with."""
    chapter = tmp_path / "chapter.py"
    chapter.write_text("from vaegan_lite.book.runs import running_box\n"
                       "from vaegan_lite.book.source import show_source\n"
                       "from vaegan_lite.train import lr_at\n"
                       "running_box('01_vae')\nshow_source(lr_at)\nprint('chapter done')\n")
    code = NO_IPYTHON + f"sys.argv = {[str(TOOL), '--run-chapter', str(chapter)]!r}\n"
    code += f"import runpy; runpy.run_path({str(TOOL)!r}, run_name='__main__')\n"
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "stub" in p.stdout and "chapter done" in p.stdout


@pytest.mark.parametrize("chapter", [Path(c).stem for c in gpu_check.CHAPTERS])
def test_chapters_run_as_the_check_runs_them(tmp_path, chapter):
    """The chapters as the chapters section runs them: scripts without IPython, in an empty
    folder, every run cut short by VAEGAN_STEPS (the dry run's count). Their asserts must hold on
    a cut run's curves: on the GPU the section cuts the gpu preset's runs the same way."""
    env = {**os.environ, "VAEGAN_PRESET": "smoke", "MPLBACKEND": "Agg",
           "VAEGAN_STEPS": str(gpu_check.CPU_DRY.chapter_steps), "VAEGAN_RUNS": str(tmp_path / "r"),
           "VAEGAN_DATA": str(tmp_path / "data")}  # fmt: skip
    path = ROOT / "notebooks" / f"{chapter}.py"
    code = NO_IPYTHON + f"sys.argv = {[str(TOOL), '--run-chapter', str(path)]!r}\n"
    code += f"import runpy; runpy.run_path({str(TOOL)!r}, run_name='__main__')\n"
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)  # fmt: skip
    assert p.returncode == 0, p.stdout[-1500:] + p.stderr[-1500:]
    assert "stub" in p.stdout


def test_documented_device_call_fits_the_device_tool():
    call = gpu_check.device_call("0" * 40)
    assert len(call["command"]) < 2000 and call["carry"] == [".whl"]
    budget = float(re.search(r"--budget-s (\d+)", call["command"]).group(1))
    assert call["timeout_s"] <= 600 and call["timeout_s"] >= budget + 60  # start-up, margin
    # The docstring shows the same command (wrapped): the later session copies it from there.
    words = " ".join(gpu_check.__doc__.split())
    assert gpu_check.DEVICE_COMMAND.format(commit="COMMIT") in words


@pytest.mark.parametrize("name, tflops, precision", [
    ("NVIDIA H200", 989.4, "bf16"), ("NVIDIA H100 80GB HBM3", 989.4, "bf16"),
    ("NVIDIA H100 PCIe", 756.0, "bf16"), ("NVIDIA A100-SXM4-80GB", 312.0, "bf16"),
    ("NVIDIA L4", 121.0, "bf16"), ("Tesla T4", 65.0, "fp16"), ("NVIDIA L40S", None, None),
])  # fmt: skip
def test_peak_table(name, tflops, precision):
    peak = gpu_check.peak_for(name)
    assert (peak["tflops"], peak["precision"]) == (tflops, precision)


def test_pythae_contender_is_built_on_the_device_asked_for_meta_as_cuda():
    """pythae_compare builds pythae's step on torch's default device: under torch.device(meta)
    its model and batch must all be on meta (on a GPU: on the GPU)."""
    pytest.importorskip("pythae")
    step = gpu_check.contender_step(gpu_check.load_compare(), "pythae fp32",
                                    torch.device("meta"), 32, 2)  # fmt: skip
    cells = dict(zip(step.__code__.co_freevars, (c.cell_contents for c in step.__closure__),
                     strict=True))  # fmt: skip
    assert cells["x"].device.type == "meta"
    assert {p.device.type for p in cells["model"].parameters()} == {"meta"}


# --- on a GPU ------------------------------------------------------------------------------------


@pytest.fixture
def cpu_noise(monkeypatch):
    """torch.randn and randn_like draw on the CPU, then move: the same noise on any device."""
    randn = torch.randn

    def randn_anywhere(*size, device=None, dtype=None, generator=None, **kw):
        x = randn(*size, dtype=dtype, generator=generator, **kw)
        return x if device is None else x.to(device)

    def randn_like(t, *, dtype=None, **kw):
        return randn(t.shape, dtype=dtype or t.dtype).to(t.device)

    monkeypatch.setattr(torch, "randn", randn_anywhere)
    monkeypatch.setattr(torch, "randn_like", randn_like)


def test_a_failing_pythae_contender_loses_only_its_own_row(tmp_path, monkeypatch):
    """pythae has never run on CUDA here: if its step fails on the GPU, our rows still come."""
    for name in ("pythae", "pythae.models", "pythae.trainers"):  # importable, as when carried
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    real = gpu_check.contender_step

    def contender_step(compare, name, *args):
        if name.startswith("pythae"):
            raise RuntimeError("Expected all tensors to be on the same device")
        return real(compare, name, *args)

    monkeypatch.setattr(gpu_check, "contender_step", contender_step)
    check = gpu_check.Check(tmp_path / "gpu_check.json", gpu_check.CPU_DRY, torch.device("cpu"),
                            end=math.inf)  # fmt: skip
    res = {}
    assert gpu_check.pythae_side_by_side(check, res) is False  # a row failed
    assert "same device" in res["failed"]["pythae fp32"] and "ours fp32" in res["contenders"]
    assert res["contenders"]["ours fp32"]["ratio_to_pythae_fp32"] is None



def test_contenders_share_one_model_flop_count(tmp_path):
    """MFU of every contender from the model's FLOPs (our fp32 step), not from what it executes:
    pythae's extra backward passes are no useful work. Ratios come with every row."""
    rows = {"pythae fp32": {"images_per_s": 100.0, "executed_gflop_per_image": 30.0,
                            "step_s_median": 0.64, "step_cpu_s_median": 0.1},
            "ours fp32": {"images_per_s": 300.0, "executed_gflop_per_image": 20.0,
                          "step_s_median": 0.21, "step_cpu_s_median": 0.05}}  # fmt: skip
    res = {"contenders": rows}
    gpu_check.compare_rows(res, gpu_check.load_compare(), peak_tflops=100.0)
    assert res["model_gflop_per_image"] == 20.0
    assert rows["pythae fp32"]["mfu"] == pytest.approx(100 * 20e9 / 100e12)  # not 30 GFLOP's
    assert rows["ours fp32"]["mfu"] == pytest.approx(300 * 20e9 / 100e12)
    assert rows["ours fp32"]["ratio_to_pythae_fp32"] == 3.0
    assert res["like_for_like"]["fp32"]["wall"] == pytest.approx(0.64 / 0.21)
    del rows["ours fp32"]  # without our step there is no model count: no MFU, not a wrong one
    gpu_check.compare_rows(res, gpu_check.load_compare(), peak_tflops=100.0)
    assert rows["pythae fp32"]["mfu"] is None


def test_a_row_the_time_runs_out_in_is_named_in_the_json(tmp_path, monkeypatch):
    """A compiled row can spend the section's time compiling: the JSON then says which row it
    was, and a finished compiled row takes its FLOPs from the eager channels_last row."""
    check = gpu_check.Check(tmp_path / "gpu_check.json", gpu_check.CPU_DRY, torch.device("cpu"),
                            end=math.inf)  # fmt: skip
    check.report = {"sections": {"bench": {"result": {"rows": [
        {"model": "vae", "variant": "channels_last", "gflop_per_image": 7.0}]}}}}

    def bench(cfg, steps, warmup):
        if cfg.model.model == "gan":
            raise gpu_check.Timeout("stopped after 1 s")
        return types.SimpleNamespace(images_per_s=10.0, step_seconds=[0.1], flops_per_image=1e9,
                                     peak_flops=1e12, fraction_of_peak=0.01, conv_peak_flops=1e12,
                                     pipelined_images_per_s=12.0)  # fmt: skip

    monkeypatch.setattr(gpu_check, "bench", bench)
    monkeypatch.setattr(gpu_check, "toy_peaks", lambda: __import__("contextlib").nullcontext())
    res = {}
    with pytest.raises(gpu_check.Timeout):
        gpu_check.bench_rows(check, res, gpu_check.COMPILE_VARIANT, ("vae", "gan", "vaegan"))
    vae, gan = res["rows"]
    assert "error" not in vae and vae["gflop_per_image"] == 7.0
    assert vae["counted_gflop_per_image"] == 1.0 and vae["mfu"] is None  # no peak: a CPU
    assert vae["flops_from"] == "the eager channels_last row of this model"
    assert vae["dynamo_frames"] == vae["dynamo_frames_ok"] == 0  # counted from this row's reset
    assert gan["model"] == "gan" and gan["error"].startswith("unfinished")
    assert {"tf32_convolutions", "tf32_matmuls"} <= set(gan)


@pytest.mark.parametrize("used", ["all", 10.0])
def test_chapter_4_gets_twice_a_chapters_share_of_the_time(tmp_path, monkeypatch, used):
    """The chapters split the section's time by CHAPTER_WEIGHTS; what one leaves goes on."""
    clock, given = [0.0], {}

    def run_logged(cmd, log, timeout, **kw):
        share = given[Path(cmd[-1]).stem] = timeout + 2  # before the margin chapters() keeps
        clock[0] += share if used == "all" else used
        return {"returncode": 0, "seconds": 1.0, "tail": "", "log": log.name}

    monkeypatch.setattr(gpu_check, "run_logged", run_logged)
    monkeypatch.setattr(gpu_check.time, "monotonic", lambda: clock[0])
    check = gpu_check.Check(tmp_path / "gpu_check.json", gpu_check.CPU_DRY, torch.device("cpu"),
                            end=200.0)  # fmt: skip
    check.report = {"sections": {}, "chapters_arg": list(gpu_check.CHAPTERS)}
    assert gpu_check.chapters(check, {}) is True
    want = [50.0, 100.0, 50.0] if used == "all" else [50.0, 190 * 2 / 3, 180.0]
    assert list(given.values()) == pytest.approx(want)
    assert list(given) == ["01_vae", "04_vaegan_training", "A1_making_it_fast"]


def test_cpu_noise_draws_from_the_cpu_generator(cpu_noise):
    """The fixture's draw for another device takes the CPU generator's numbers (checked on meta)."""
    torch.manual_seed(3)
    on_cpu = torch.randn_like(torch.empty(2, 5, dtype=torch.float64))
    state = torch.get_rng_state()
    torch.manual_seed(3)
    on_meta = torch.randn_like(torch.empty(2, 5, dtype=torch.float64, device="meta"))
    assert torch.equal(torch.get_rng_state(), state)
    assert (on_meta.device.type, on_meta.shape, on_meta.dtype) == ("meta", on_cpu.shape,
                                                                   on_cpu.dtype)  # fmt: skip


@needs_cuda
@pytest.mark.parametrize("name", MODELS)
def test_cuda_step_matches_cpu(name, batch, small_model, applied_update, assert_same, cpu_noise):
    """One step of each model (float64, the same noise, SGD lr 1) changes every parameter on CUDA
    as on the CPU: the GPU runs the same algorithm, not merely something that trains."""
    cfg = StepConfig(gamma=0.37)
    step = model_spec(name).step(cfg.disl_pretrain_steps, cfg)
    model = small_model(name)
    want = applied_update(step, copy.deepcopy(model), batch, cfg)
    got = applied_update(step, model.cuda(), batch.cuda(), cfg)
    for net in want:
        on_gpu = [g.cpu() for g in got[net]]
        if max(w.abs().max().item() for w in want[net]) == 0:  # a net this model leaves alone
            assert all(g.abs().max().item() == 0 for g in on_gpu), net
        else:
            assert_same(on_gpu, want[net], f"{name} {net}")


@needs_cuda
@pytest.mark.parametrize("switches", list(gpu_check.RESUME_VARIANTS.values()),
                         ids=list(gpu_check.RESUME_VARIANTS))  # fmt: skip
def test_cuda_resume_is_bitwise(tmp_path, switches):
    cfg = gpu_check.paper_config("smoke", "vaegan", device="cuda", steps=6, log_every=3,
                                 deterministic=True, **switches)  # fmt: skip
    r = gpu_check.resume_check(cfg, 3, tmp_path)  # as chapter 4's proof: deterministic=True alone
    assert r["bitwise_equal"], r


@needs_cuda
@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_cuda_mixed_precision_trains(precision):
    """auto is bf16 from compute capability 8.0, fp16 with a GradScaler below; both train."""
    cfg = gpu_check.paper_config("smoke", "vaegan", device="cuda", steps=4, log_every=1,
                                 precision=precision, channels_last=True)  # fmt: skip
    r = train(cfg, data=gpu_check.random_data(cfg, 64), progress=False)
    native = "bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp16"
    assert pick_precision(precision, torch.device("cuda")) == (native if precision == "auto"
                                                                else "fp16")  # fmt: skip
    assert all(p.is_cuda and p.isfinite().all() for p in r.model.parameters())
    assert all(math.isfinite(v) for v in r.history["L_GAN"])


@pytest.mark.parametrize("args, says", [
    (["--budget-s", "nan"], "--budget-s must be a number of seconds >= 0, got nan"),
    (["--budget-s", "-5"], "--budget-s must be a number of seconds >= 0, got -5"),
    (["--out", "{tmp}"], "is a folder: name the JSON file"),
    (["--out", "{tmp}/file/gpu_check.json"], "file is a file, not a folder"),
])  # fmt: skip
def test_bad_budget_or_out_is_refused_before_any_section(tmp_path, capsys, args, says):
    """--out a folder or under a file gave a traceback at the first save, after a section had
    run; a NaN or negative budget skipped every section and exited 0."""
    (tmp_path / "file").write_text("x")
    args = [arg.format(tmp=tmp_path) for arg in args]
    with pytest.raises(SystemExit) as e:
        gpu_check.parse_args(["--cpu-dry-run", *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    # the device call's printing and the chapters' child never write the JSON: not checked
    assert gpu_check.parse_args(["--print-device-call", *args]).print_device_call
