"""The static latent-arithmetic widget (web.py, book/_static/latent/).

The browser tests open the widget in headless Chromium (Debian's `chromium`, driven by playwright),
served from 127.0.0.1 by a local http.server thread, and check that moving a slider changes the
decoded picture, that every request stays on 127.0.0.1 and that the console shows no error.
They are skipped, saying why, only where chromium or playwright is missing (.ci/run installs both).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_reference import PAGE as API_PAGE
from test_reference import SETTINGS, targets

from vaegan_lite.attributes import IN_WIDGETS, encode, held_out_faces
from vaegan_lite.book import web
from vaegan_lite.cli import build_parser
from vaegan_lite.config import ModelConfig
from vaegan_lite.models import VAEGAN
from vaegan_lite.shipped import pretrained

ROOT = Path(__file__).resolve().parents[1]
# The built book (make book); VAEGAN_BOOK_HTML points elsewhere (e.g. jupyter-book --path-output).
BOOK_HTML = Path(os.environ.get("VAEGAN_BOOK_HTML") or ROOT / "_build" / "html")
BUILT_PAGE = BOOK_HTML / "notebooks" / "05_latent_arithmetic.html"
CHROMIUM = os.environ.get("VAEGAN_CHROMIUM") or shutil.which("chromium")
LOCAL = ("http://127.0.0.1:", "data:")  # the only URLs the page may load
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# --- the committed assets -----------------------------------------------------------------------


WASM = "ort-wasm-simd-threaded.wasm"
# What a fresh clone's book/_static/latent/ holds: the .wasm only as .xz (the .wasm is git-ignored).
COMMITTED = [*(web.PACKED.get(n, n) for n in web.RUNTIME_FILES), *web.WIDGET_FILES]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_runtime_is_vendored_with_version_and_licence():
    record = json.loads((web.STATIC / "runtime.json").read_text())
    assert record["package"] == "onnxruntime-web" and record["license"] == "MIT"
    for name, size in record["files"].items():  # the .wasm: unpacked on importing web
        data = (web.STATIC / name).read_bytes()
        assert len(data) == size, f"{name} differs from runtime.json"
        assert sha256(data) == record["sha256"][name], f"{name} differs from runtime.json"
    assert set(record["files"]) == set(record["sha256"]) == set(web.RUNTIME_FILES)
    assert record["compressed"] == web.PACKED == {WASM: WASM + ".xz"}
    assert "MIT License" in (web.STATIC / "LICENSE-onnxruntime-web.txt").read_text()
    # Only the WebAssembly CPU build: no WebGL/WebGPU bundles, no source maps.
    extra = {p.name for p in web.STATIC.iterdir()} - set(web.RUNTIME_FILES) - set(web.WIDGET_FILES)
    assert extra == set(web.data_files()) | set(web.PACKED.values()), extra


def test_the_committed_xz_unpacks_to_the_vendored_wasm():
    """The .wasm (11.9 MB) is committed as .xz (1.9 MB); decompressed, it is byte for byte the
    file runtime.json records (onnxruntime-web 1.23.2's dist/ort-wasm-simd-threaded.wasm)."""
    record = json.loads((web.STATIC / "runtime.json").read_text())
    packed = (web.STATIC / web.PACKED[WASM]).read_bytes()
    data = lzma.decompress(packed)
    assert len(data) == record["files"][WASM] == 11905541
    vendored = "45eaee27761ad883742a8d4b8fce1538d60ce43b51adf1726fafccc59b8c1a15"  # npm's
    assert sha256(data) == record["sha256"][WASM] == vendored
    assert data[:4] == b"\0asm" and len(packed) < 2.5e6
    # The .wasm is generated: git ignores it, and the book's build leaves the .xz out of _build.
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/book/_static/latent/ort-wasm-simd-threaded.wasm" in ignored
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "vaegan_lite.book.web" in config["sphinx"]["extra_extensions"]
    assert "**/*.wasm.xz" in config["exclude_patterns"]


@pytest.fixture
def fresh(tmp_path) -> Path:
    """The runtime folder as a fresh clone has it: the committed files, no .wasm."""
    folder = tmp_path / "fresh"
    folder.mkdir()
    for name in COMMITTED:
        shutil.copyfile(web.STATIC / name, folder / name)
    return folder


def test_unpack_runtime_writes_the_wasm_once_and_checks_it(fresh):
    record = json.loads((fresh / "runtime.json").read_text())
    wasm = fresh / WASM
    assert web.unpack_runtime(fresh) == {WASM: wasm}
    assert sha256(wasm.read_bytes()) == record["sha256"][WASM]
    assert wasm.read_bytes() == (web.STATIC / WASM).read_bytes()
    assert sorted(p.name for p in fresh.iterdir()) == sorted([*COMMITTED, WASM])  # no temp file
    # Current: left as it is. Stale (another version's bytes): written again.
    inode = wasm.stat().st_ino
    web.unpack_runtime(fresh)
    assert wasm.stat().st_ino == inode
    wasm.write_bytes(b"\0asm stale")
    web.unpack_runtime(fresh)
    assert sha256(wasm.read_bytes()) == record["sha256"][WASM]
    # Into another folder; a folder without the .xz (a built book's) is left alone.
    other = fresh.parent / "other"
    assert web.unpack_runtime(fresh, other) == {WASM: other / WASM}
    assert (other / WASM).read_bytes() == wasm.read_bytes()
    assert web.unpack_runtime(other) == {} and [p.name for p in other.iterdir()] == [WASM]
    # A .xz that decompresses to other bytes than runtime.json's is refused.
    (fresh / web.PACKED[WASM]).write_bytes(lzma.compress(b"\0asm other"))
    wasm.unlink()
    refused = r"decompresses to 10 bytes .* not the ort-wasm-simd-threaded\.wasm of .*runtime\.json"
    with pytest.raises(ValueError, match=refused):
        web.unpack_runtime(fresh)
    assert not wasm.exists()


def _import_web_beside(folder: Path, checkout: bool, expr: str) -> tuple[Path, str]:
    """A copy of the package in ``folder`` with the widget's committed files in
    book/_static/latent/ beside it (and the book's configuration, for a checkout); imports web
    there in a fresh interpreter and returns (that static folder, the printed ``expr``)."""
    shutil.copytree(ROOT / "vaegan_lite", folder / "vaegan_lite",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    if checkout:
        for name in ("_config.yml", "_toc.yml"):  # what makes the folder a checkout
            shutil.copyfile(ROOT / name, folder / name)
    static = folder / "book" / "_static" / "latent"
    static.mkdir(parents=True)
    for name in COMMITTED:
        shutil.copyfile(web.STATIC / name, static / name)
    code = f"from vaegan_lite.book import web; print({expr})"
    env = {**os.environ, "PYTHONPATH": str(folder)}
    out = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    return static, out.stdout.strip()


def test_importing_web_in_a_fresh_checkout_unpacks_the_wasm(tmp_path):
    """Chapter 5 (also under nbval), the tests and benchmarks/web_decode.py read the .wasm from
    book/_static/latent/: importing vaegan_lite.book.web in a checkout writes it there."""
    static, printed = _import_web_beside(tmp_path, checkout=True, expr="web.STATIC")
    assert printed == str(static), printed
    assert (static / WASM).read_bytes() == (web.STATIC / WASM).read_bytes()


def test_importing_web_after_a_pip_install_writes_nothing_above_the_package(tmp_path):
    """In site-packages the folder above the package is not the repository, even where a
    book/_static/latent/ happens to sit there: importing web leaves it alone."""
    static, printed = _import_web_beside(tmp_path, checkout=False, expr="web.checkout_static()")
    assert printed == "None" and not (static / WASM).exists()


def test_sphinx_extension_unpacks_when_the_build_starts(monkeypatch):
    calls, hooks = [], {}

    class App:
        def connect(self, event, fn):
            hooks[event] = fn

    monkeypatch.setattr(web, "unpack_runtime", lambda *a: calls.append(a) or {})
    meta = web.setup(App())
    assert meta["parallel_read_safe"]
    assert list(hooks) == ["builder-inited", "env-get-outdated", "html-page-context"]
    hooks["builder-inited"](App())
    assert calls == [()]  # the default folder, book/_static/latent/
    # A page's scripts, each once (sphinx-thebe's settings came twice), in their order.
    from sphinx.builders.html._assets import _JavaScript

    a, b = _JavaScript("a.js"), _JavaScript("b.js", defer="defer")
    thebe = _JavaScript(None, body='const THEBE_JS_URL = "x"')  # as the app registers it
    again = _JavaScript("", body='const THEBE_JS_URL = "x"')  # as the builder takes it in
    context = {"script_files": [a, thebe, b, again, _JavaScript("b.js", defer="defer")]}
    hooks["html-page-context"](App(), "intro", "page.html", context, None)
    assert context["script_files"] == [a, thebe, b]


def test_a_changed_static_file_alone_rewrites_a_page(tmp_path):
    """Sphinx copies html_static_path only when it writes a page: an edit to the widget's JS
    alone reached the built book once some page changed too. What Sphinx does not copy (an
    excluded or hidden file or folder, a template) must not rewrite a page on every build."""
    static, built = tmp_path / "book" / "_static", tmp_path / "_build" / "html" / "_static"
    theme = tmp_path / "theme_static"  # an extension's folder: its "_t" files are templates
    for folder, files in ((static / "latent", ["widget.js", "runtime.wasm.xz", ".hidden"]),
                          (static / ".ipynb_checkpoints", ["custom-checkpoint.css"]),
                          (theme, ["button.js_t", "page.css.JINJA"])):  # fmt: skip
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_text(name)
    (tmp_path / "logo.svg").write_text("logo")  # an entry that is a file, not a folder
    (built / "latent").mkdir(parents=True)
    (built / "latent" / "widget.js").write_text("widget.js")  # the copies a build made
    (built / "logo.svg").write_text("logo")

    class App:
        outdir, confdir = str(built.parent), str(tmp_path)
        builder = type("Builder", (), {"format": "html"})()

        class config:
            html_static_path = ["book/_static", str(theme), "logo.svg"]
            exclude_patterns = ["**/*.wasm.xz", "**.ipynb_checkpoints"]
            root_doc = "book/intro"

    outdated = lambda: web.stale_static_files(App(), None, set(), set(), set())  # noqa: E731
    assert outdated() == []  # the .xz, the hidden file, the checkpoints, the templates
    (static / "latent" / "widget.js").write_text("widget.js, edited")
    assert outdated() == ["book/intro"]
    (built / "latent" / "widget.js").write_text("widget.js, edited")
    assert outdated() == []
    (tmp_path / "logo.svg").write_text("logo, edited")
    assert outdated() == ["book/intro"]
    (built / "logo.svg").write_text("logo, edited")
    (static / "custom.css").write_text("new")
    assert outdated() == ["book/intro"]
    App.builder.format = "latex"  # no _static to copy into
    assert outdated() == []


def test_vendor_runtime_commits_the_wasm_compressed(tmp_path):
    dist = tmp_path / "package" / "dist"
    dist.mkdir(parents=True)
    (dist.parent / "package.json").write_text(
        json.dumps({"name": "onnxruntime-web", "version": "9.9.9", "license": "MIT"})
    )
    files = {name: f"{name} bytes ".encode() * 1000 for name in web.RUNTIME_FILES}
    for name, data in files.items():
        (dist / name).write_bytes(data)
    out = tmp_path / "out"
    record = web.vendor_runtime(dist.parent, out)
    assert record["files"] == {n: len(d) for n, d in files.items()}
    assert record["sha256"] == {n: sha256(d) for n, d in files.items()}
    assert json.loads((out / "runtime.json").read_text()) == record
    assert lzma.decompress((out / web.PACKED[WASM]).read_bytes()) == files[WASM]
    assert (out / WASM).read_bytes() == files[WASM]  # unpacked beside it, for use right away
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*web.RUNTIME_FILES, *web.PACKED.values(), "runtime.json"]
    )


@pytest.mark.parametrize("key,shipped", [(k, n) for k, _, n in web.MODELS])
def test_committed_decoders_and_codes_match_the_shipped_models(key, shipped):
    ort = pytest.importorskip("onnxruntime")
    model = pretrained(shipped)
    session = ort.InferenceSession(str(web.STATIC / web.decoder_file(key)))
    z = torch.randn(3, model.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model.decode(z)
    got = np.concatenate([session.run(None, {"z": zi[None].numpy()})[0] for zi in z])
    np.testing.assert_allclose(got, want.numpy(), atol=2e-5)
    data = json.loads((web.STATIC / "latent.json").read_text())
    entry = {m["key"]: m for m in data["models"]}[key]
    assert entry["decoder"] == web.decoder_file(key) and entry["latent_dim"] == model.latent_dim
    faces, _, _ = held_out_faces(model, web.WIDGET_FACES)
    np.testing.assert_allclose(np.array(entry["faces"]), encode(model, faces).numpy(), atol=2e-5)
    assert len(entry["vectors"]) == len(data["names"])
    assert all(np.linalg.norm(v) > 0.1 for v in entry["vectors"])


def test_widget_offers_the_attributes_of_the_kernel_widget():
    data = json.loads((web.STATIC / "latent.json").read_text())
    assert data["names"] == list(web.WIDGET_ATTRS) == list(IN_WIDGETS)
    assert [m["key"] for m in data["models"]] == [k for k, _, _ in web.MODELS]
    assert data["scale_min"] < data["paper_scale"] == 1 < data["scale_max"]
    # The progress bar's sizes are the files' own.
    for name, size in data["files"].items():
        assert (web.STATIC / name).stat().st_size == size, name
    assert set(data["files"]) >= {"ort-wasm-simd-threaded.wasm", "faces.png"} | {
        m["decoder"] for m in data["models"]
    }
    # The chapter computes vectors for every attribute; its kernel widget shows these by default.
    chapter = (ROOT / "notebooks" / "05_latent_arithmetic.py").read_text()
    assert "A.attribute_vectors(m, train_set)" in chapter
    call = chapter.split("latent_arithmetic({")[1].split("\n\n")[0]
    assert "test_x[:12])" in call and "names=" not in call
    widgets = (ROOT / "vaegan_lite" / "book" / "widgets.py").read_text()
    assert "names: Sequence[str] = IN_WIDGETS," in widgets


def test_write_assets_replaces_old_decoders(tmp_path, fresh):
    pytest.importorskip("onnxruntime")
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    torch.manual_seed(0)
    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    (tmp_path / "decoder.onnx").write_bytes(b"old")
    faces = torch.rand(2, 3, 32, 32) * 2 - 1
    vectors = {"Smiling": torch.randn(8)}
    # The runtime as a fresh clone has it: the .wasm is unpacked from its .xz into tmp_path.
    sizes = web.write_assets({"a": ("A", model, vectors), "b": ("B", model, vectors)}, faces,
                             tmp_path, runtime=fresh)  # fmt: skip
    assert {"decoder-a.onnx", "decoder-b.onnx", "index.html", *web.RUNTIME_FILES} <= set(sizes)
    assert "decoder.onnx" not in sizes and web.PACKED[WASM] not in sizes
    assert (tmp_path / WASM).read_bytes() == (web.STATIC / WASM).read_bytes()
    assert not (fresh / WASM).exists()  # the runtime folder is only read
    data = json.loads((tmp_path / "latent.json").read_text())
    assert [m["label"] for m in data["models"]] == ["A", "B"] and data["names"] == ["Smiling"]
    assert data["files"]["decoder-b.onnx"] == sizes["decoder-b.onnx"]
    assert data["files"][WASM] == sizes[WASM] == 11905541
    with pytest.raises(ValueError, match="differ"):
        other = {"Bangs": vectors["Smiling"]}
        web.widget_data({"a": ("A", model, vectors), "b": ("B", model, other)}, faces)


def test_write_assets_that_fail_on_the_way_leave_the_widget_as_it_was(tmp_path, fresh):
    """All or nothing: when the second model's vectors do not match the first's (widget_data,
    after both decoders were exported), no decoder, sprite or latent.json is replaced."""
    pytest.importorskip("onnxruntime")
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    before = {"decoder-a.onnx": b"old a", "latent.json": b"{}", "faces.png": b"old png"}
    for name, data in before.items():
        (tmp_path / name).write_bytes(data)
    faces = torch.rand(2, 3, 32, 32) * 2 - 1
    models = {"a": ("A", model, {"Smiling": torch.randn(8)}),
              "b": ("B", model, {"Bangs": torch.randn(8)})}  # fmt: skip
    with pytest.raises(ValueError, match="differ"):
        web.write_assets(models, faces, tmp_path, runtime=fresh)
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, name
    assert not (tmp_path / "decoder-b.onnx").exists()
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_write_assets_without_the_runtime_says_where_it_is_and_writes_nothing(tmp_path):
    """After a pip install the default runtime folder (the repository's) does not exist: that was
    a FileNotFoundError about one file of it, after the output folder was made."""
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    models = {"a": ("A", model, {"Smiling": torch.randn(8)})}
    out = tmp_path / "widget"
    with pytest.raises(FileNotFoundError, match=r"not in .*nowhere \(no ort\.wasm\.min\.js\); "
                                                r"it is the book/_static/latent/ folder"):
        web.write_assets(models, torch.zeros(1, 3, 32, 32), out, runtime=tmp_path / "nowhere")
    assert not out.exists()


def test_write_assets_without_the_compressed_wasm_names_it(tmp_path, fresh):
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    models = {"a": ("A", model, {"Smiling": torch.randn(8)})}
    (fresh / web.PACKED[WASM]).unlink()
    out = tmp_path / "widget"
    said = r"not in .*fresh \(no ort-wasm-simd-threaded\.wasm\.xz\); it is the book/_static/latent/"
    with pytest.raises(FileNotFoundError, match=said):
        web.write_assets(models, torch.zeros(1, 3, 32, 32), out, runtime=fresh)
    assert not out.exists()


def test_export_decoder_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    torch.manual_seed(0)
    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    path = web.export_decoder(model, tmp_path / "dec.onnx")  # raises if onnxruntime disagrees
    assert path.stat().st_size > 1000 and not list(tmp_path.glob("*.data"))


def test_a_decoder_that_fails_its_check_leaves_the_file_that_was_there(tmp_path, monkeypatch):
    """The widget's decoder must match its latent.json: an export whose check fails replaces
    nothing and leaves no partial file."""
    ort = pytest.importorskip("onnxruntime")
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    old = tmp_path / "dec.onnx"
    old.write_bytes(b"the decoder the widget uses now")

    class Wrong:  # an onnxruntime that disagrees with PyTorch
        def __init__(self, *args, **kwargs):
            pass

        def run(self, names, feeds):
            return [torch.zeros(1, 3, 32, 32).numpy() + 5]

    monkeypatch.setattr(ort, "InferenceSession", Wrong)
    with pytest.raises(RuntimeError, match="onnxruntime and PyTorch differ"):
        web.export_decoder(model, old)
    assert old.read_bytes() == b"the decoder the widget uses now"
    assert [p.name for p in tmp_path.iterdir()] == ["dec.onnx"]


def test_export_decoder_leaves_a_training_model_in_train_mode(tmp_path):
    """It exported Dec in eval mode and left it there: a run that exported along the way went on
    training Dec with BatchNorm's running statistics."""
    pytest.importorskip("onnxruntime")
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    torch.manual_seed(0)
    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).train()
    web.export_decoder(model, tmp_path / "dec.onnx")  # checked against Dec in eval mode
    assert all(m.training for m in model.modules())


def test_widget_html_loads_only_relative_assets():
    html = web.widget_html("../_static/latent/")
    assert 'src="../_static/latent/ort.wasm.min.js"' in html
    assert 'src="../_static/latent/latent-widget.js"' in html
    assert "http" not in html


# --- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or not Path(CHROMIUM).exists():
        pytest.skip("no chromium: install it with `sudo apt-get install chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="no playwright (make venv)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The committed assets and a page that embeds the widget, as the chapter does; as in the
    book's build, the .wasm is unpacked from the committed .xz, which is left out."""
    folder = tmp_path_factory.mktemp("site")
    latent = folder / "_static" / "latent"
    shutil.copytree(web.STATIC, latent, ignore=shutil.ignore_patterns("*.wasm", "*.wasm.xz"))
    assert web.unpack_runtime(web.STATIC, latent) == {WASM: latent / WASM}
    record = json.loads((latent / "runtime.json").read_text())
    assert sha256((latent / WASM).read_bytes()) == record["sha256"][WASM]
    (folder / "notebooks").mkdir()
    (folder / "notebooks" / "page.html").write_text(
        web.standalone_page("../_static/latent/").replace("<h1>", "<h1 id='title'>")
    )
    return folder


def open_page(browser, url: str, throttle: float | None = None, missing: str | None = None,
              scheme: str = "light", width: int = 1280, scroll: bool = False,
              answer: dict | None = None, init: str | None = None):  # fmt: skip
    """A new page at url, recording requests and console errors; ``throttle``: download speed in
    bytes/s; ``missing``: a file of the widget the server answers with 404; ``scheme``: the
    reader's colour scheme, light or dark; ``width``: the window's, in CSS pixels; ``scroll``:
    scroll to the widget, which loads only when the reader comes near it (a short page's loads
    at once); ``answer``: file ->
    "garbage" (served as it) or "hang" (never answered); ``init``: a script run before the
    page's own."""
    page = browser.new_page(color_scheme=scheme, viewport={"width": width, "height": 800})
    if init:
        page.add_init_script(init)
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        url = r.request.url
        file = url.split("?")[0].rsplit("/", 1)[-1]
        if missing and file == missing:
            r.fulfill(status=404, body="not found")
        elif (answer or {}).get(file) == "garbage":
            r.fulfill(status=200, body=b"\x00not what it should be" * 1000)
        elif (answer or {}).get(file) == "hang":
            return  # never answered: the request waits, as on a stalled connection
        elif url.startswith(LOCAL):
            r.continue_()
        else:  # anything not on 127.0.0.1 is recorded (above) and refused
            r.abort()

    page.route("**/*", route)
    if throttle:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20,
                 "downloadThroughput": throttle, "uploadThroughput": -1})  # fmt: skip
    page.goto(url)
    if scroll:
        page.locator(".vaegan-latent").scroll_into_view_if_needed()
    return page, requests, errors


W = "window.vaeganLatent.widgets[0]"


def drive(browser, url: str, throttle: float | None = None) -> dict:
    """Open url, use the widget; returns what happened (pixels, requests, console errors...)."""
    page, requests, errors = open_page(browser, url, throttle, scroll=True)
    out = {}
    if throttle:  # the progress bar, seen while the files arrive
        bar = ".vaegan-latent-loading progress"
        page.wait_for_function(f"(b => b && b.value > 0 && b.value < b.max)"
                               f"(document.querySelector('{bar}'))", timeout=30_000)  # fmt: skip
        out["loading"] = page.locator(".vaegan-latent-loading").inner_text()
        out["loading_visible"] = page.locator(bar).is_visible()
    page.wait_for_function(f"window.vaeganLatent && {W} && {W}.decodes > 0", timeout=60_000)
    pixels = f"Array.from({W}.ctx.getImageData(0, 0, {W}.S, {W}.S).data)"
    original = f"Array.from({W}.octx.getImageData(0, 0, {W}.S, {W}.S).data)"

    def after(action) -> list[int]:
        n = page.evaluate(f"{W}.decodes")
        action()
        page.wait_for_function(f"{W}.decodes > {n} && !{W}.busy", timeout=60_000)
        return page.evaluate(pixels)

    def box(selector):
        b = page.locator(selector).bounding_box()
        return (b["width"], b["height"])

    out["progress"] = page.evaluate("window.vaeganLatent.progress")
    out["start"] = page.evaluate(pixels)
    out["original_start"] = page.evaluate(original)
    out["sizes"] = {"original": box("canvas.vaegan-latent-original"),
                    "edited": box("canvas.vaegan-latent-edited")}  # fmt: skip
    out["attributes"] = page.locator("input[type=range]").evaluate_all(
        "xs => xs.map(x => x.dataset.attribute)"
    )
    out["ticks"] = page.locator("input[type=range]").evaluate_all(
        "xs => xs.map(x => Array.from(x.list ? x.list.options : []).map(o => Number(o.value)))"
    )
    mark = page.locator(".vaegan-latent-paper-mark")
    out["mark"] = (mark.inner_text(), mark.is_visible())
    out["requests_before_switch"] = list(requests)
    out["slider"] = after(lambda: page.locator("input[data-attribute=Eyeglasses]").fill("1.5"))
    out["reset"] = after(lambda: page.get_by_role("button", name="Reset").click())
    out["face"] = after(lambda: page.locator("canvas.vaegan-latent-face").nth(3).click())
    out["original_face"] = page.evaluate(original)
    out["vae"] = after(lambda: page.get_by_role("radio", name="VAE", exact=True).check())
    out["model"] = page.evaluate(f"{W}.model.key")
    out["vaegan"] = after(lambda: page.get_by_role("radio", name="VAE/GAN").check())
    out["random"] = after(lambda: page.get_by_role("button", name="Random face").click())
    out["original_random"] = page.evaluate(original)
    out["status"] = page.locator(".vaegan-latent-time").inner_text()
    page.close()
    return {**out, "requests": requests, "errors": errors}


# Console errors that Jupyter Book 1.x's theme logs on every page of a fresh build, whatever the
# page holds (sphinx-book-theme declares thebe's URL twice; pydata-sphinx-theme complains about an
# empty stored colour mode in a new browser profile). Not the widget's: only these are allowed.
THEME_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode")


def changed(a, b) -> bool:
    return np.abs(np.array(a, dtype=int) - np.array(b, dtype=int)).sum() > 0


def check(result: dict) -> None:
    assert len(result["start"]) > 0 and max(result["start"]) > 0, "nothing was drawn"
    # The original, as large as the edited face, beside it; a picked face is drawn as it is.
    assert result["sizes"]["original"] == result["sizes"]["edited"]
    assert result["sizes"]["original"][0] >= 150, result["sizes"]
    assert max(result["original_start"]) > 0 and changed(result["original_start"], result["start"])
    assert changed(result["original_start"], result["original_face"]), "the original stayed"
    # The kernel widget's attributes, each slider with the authors' s = 1 marked.
    assert result["attributes"] == list(IN_WIDGETS)
    assert all(1 in t for t in result["ticks"]), result["ticks"]
    assert result["mark"][0].startswith("s = 1") and result["mark"][1], result["mark"]
    assert changed(result["start"], result["slider"]), "moving a slider changed nothing"
    assert result["reset"] == result["start"], "reset did not bring the first face back"
    assert changed(result["reset"], result["face"]), "picking another face changed nothing"
    # The switch: the VAE's decoder loads only when asked for, and draws another picture.
    vae = web.decoder_file("vae")
    assert not any(u.endswith(vae) for u in result["requests_before_switch"])
    assert any(u.endswith(vae) for u in result["requests"])
    assert result["model"] == "vae" and changed(result["face"], result["vae"])
    assert result["vaegan"] == result["face"], "switching back did not bring the VAE/GAN's face"
    # A random face: its original is the decoded sample itself (the sliders are at 0).
    assert changed(result["face"], result["random"]), "a random face changed nothing"
    assert result["original_random"] == result["random"], "the original is not Dec(z_p)"
    # Progress was reported as the files arrived, up to their full size.
    loaded, total, _ = result["progress"][-1]
    assert loaded == total > 10e6 and any(0 < p[0] < p[1] for p in result["progress"])
    outside = [u for u in result["requests"] if not u.startswith(LOCAL)]
    assert not outside, f"requests left localhost: {outside}"
    assert any(u.endswith("ort-wasm-simd-threaded.wasm") for u in result["requests"])
    errors = [e for e in result["errors"] if not any(t in e for t in THEME_NOISE)]
    assert not errors, f"console errors: {errors}"
    assert "ms" in result["status"] and "VAE/GAN" in result["status"]


@pytest.mark.browser
def test_widget_decodes_in_the_browser(browser, site):
    with web.serve(site) as url:
        result = drive(browser, url + "notebooks/page.html", throttle=4e6)
    check(result)
    # While the files load (throttled to 4 MB/s here), a bar and how many MB of how many.
    assert result["loading_visible"] and " of " in result["loading"] and "MB" in result["loading"]


@pytest.mark.browser
@pytest.mark.parametrize("missing", ["latent.json", "ort-wasm-simd-threaded.wasm",
                                     web.decoder_file("vaegan"), "faces.png", "latent-widget.js",
                                     "ort.wasm.min.js"])  # fmt: skip
def test_widget_names_a_missing_file(browser, site, missing):
    with web.serve(site) as url:
        page, _, _ = open_page(browser, url + "notebooks/page.html", missing=missing)
        error = page.locator(".vaegan-latent-error")
        error.wait_for(state="visible", timeout=60_000)
        text = error.inner_text()
        page.close()
    assert missing in text and "could not load" in text, text


@pytest.mark.browser
def test_the_widget_loads_only_when_the_reader_scrolls_near_it(browser, book_html):
    """Its files are some 15 MB: a reader of chapter 5 who never reaches the widget, far down the
    page, downloads none of them (on a phone, on mobile data); scrolling there loads it."""
    with web.serve(book_html) as url:
        page, requests, errors = open_page(browser, url + "notebooks/05_latent_arithmetic.html",
                                           scroll=False)  # fmt: skip
        page.wait_for_load_state("networkidle")
        waiting = page.locator(".vaegan-latent").inner_text()
        before = list(requests)
        page.locator(".vaegan-latent").scroll_into_view_if_needed()
        page.wait_for_function(f"window.vaeganLatent && {W} && {W}.decodes > 0", timeout=60_000)
        page.close()
    heavy = (".wasm", ".onnx", "latent.json", "faces.png")
    assert not [u for u in before if u.endswith(heavy)], before
    assert "when you scroll here" in waiting, waiting
    assert any(u.endswith(WASM) for u in requests)


@pytest.mark.browser
def test_a_face_is_picked_from_the_keyboard_without_scrolling_the_page(browser, book_html):
    """Space on a face (a button) picks it, as Enter does, and does not also scroll the page
    away from it; the picked face is pressed for a screen reader, the others not."""
    with web.serve(book_html) as url:
        page, _, _ = open_page(browser, url + "notebooks/05_latent_arithmetic.html", width=390,
                               scroll=True)  # fmt: skip
        page.wait_for_function(f"window.vaeganLatent && {W} && {W}.decodes > 0", timeout=60_000)
        scrolls = page.evaluate("document.scrollingElement.scrollHeight > innerHeight + 100")
        face = page.locator("canvas.vaegan-latent-face").nth(2)
        face.focus()
        # after the widget's own handler: whether it kept the browser from scrolling (Chrome
        # scrolls smoothly, so scrollY alone may not have moved yet)
        page.evaluate("document.addEventListener('keydown', e => window.spaceKept = "
                      "e.key === ' ' && e.defaultPrevented)")  # fmt: skip
        y, n = page.evaluate("scrollY"), page.evaluate(f"{W}.decodes")
        page.keyboard.press(" ")
        page.wait_for_function(f"{W}.decodes > {n} && !{W}.busy", timeout=60_000)
        page.wait_for_timeout(500)
        kept = page.evaluate("window.spaceKept")
        pressed = page.locator("canvas.vaegan-latent-face").evaluate_all(
            "xs => xs.map(x => x.getAttribute('aria-pressed'))")
        moved = page.evaluate("scrollY") - y
        page.close()
    assert scrolls, "the page is too short to show a scroll"
    assert kept and moved == 0, f"Space scrolled the page by {moved} px"
    assert pressed[2] == "true" and pressed.count("true") == 1, pressed


@pytest.mark.browser
def test_a_browser_without_webassembly_is_told_so(browser, site):
    with web.serve(site) as url:
        page, _, _ = open_page(browser, url + "notebooks/page.html",
                               init="delete window.WebAssembly")  # fmt: skip
        error = page.locator(".vaegan-latent-error")
        error.wait_for(state="visible", timeout=30_000)
        text = error.inner_text()
        page.close()
    assert "WebAssembly" in text and ".onnx" not in text and ".js" not in text, text


@pytest.mark.browser
@pytest.mark.parametrize("damaged", [WASM, "ort-wasm-simd-threaded.mjs"])
def test_a_damaged_runtime_is_named_not_the_decoder(browser, site, damaged):
    """ONNX Runtime starts its WebAssembly (the .wasm and its .mjs) with the first session: a
    runtime that did not start made the error blame the decoder file, which was fine."""
    with web.serve(site) as url:
        page, _, _ = open_page(browser, url + "notebooks/page.html", answer={damaged: "garbage"})
        error = page.locator(".vaegan-latent-error")
        error.wait_for(state="visible", timeout=60_000)
        text = error.inner_text()
        page.close()
    assert f"could not load {damaged}" in text, text
    assert web.decoder_file("vaegan") not in text, text


BAR_SAYS = "/{}/.test(document.querySelector('.vaegan-latent-loading')?.textContent)"


@pytest.mark.browser
@pytest.mark.parametrize("stalled", [WASM, "latent.json"])
def test_a_stalled_download_names_the_file_it_waits_for(browser, site, stalled):
    """A file whose download stops: the bar names it (not the last file that arrived) and says,
    after a while with nothing new, that the connection may have stalled."""
    init = "window.vaeganLatent = {widgets: [], progress: [], stalledS: 2}"
    with web.serve(site) as url:
        page, _, _ = open_page(browser, url + "notebooks/page.html", answer={stalled: "hang"},
                               init=init)  # fmt: skip
        page.wait_for_function(BAR_SAYS.format("nothing has arrived"), timeout=30_000)
        text = page.locator(".vaegan-latent-loading").inner_text()
        page.close()
    assert f"(waiting for {stalled})" in text and "stalled" in text, text


@pytest.mark.browser
def test_a_slow_start_after_the_download_is_not_called_a_stalled_one(browser, site):
    """Every byte is there and the decoder takes its time to start (a slow phone): the bar says
    so, not that the connection may have stalled."""
    init = """window.vaeganLatent = {widgets: [], progress: [], stalledS: 1};
      const made = window.createImageBitmap.bind(window);
      window.createImageBitmap = (...a) =>
        new Promise(r => setTimeout(r, 4000)).then(() => made(...a));"""
    with web.serve(site) as url:
        page, _, _ = open_page(browser, url + "notebooks/page.html", init=init)
        page.wait_for_function(BAR_SAYS.format("starting the decoder"), timeout=30_000)
        page.wait_for_timeout(2500)  # past stalledS with nothing arriving
        text = page.locator(".vaegan-latent-loading").inner_text()
        page.wait_for_function(f"window.vaeganLatent && {W} && {W}.decodes > 0", timeout=60_000)
        page.close()
    assert "starting the decoder" in text and "nothing has arrived" not in text, text


@pytest.mark.browser
def test_widget_names_a_missing_decoder_when_switching(browser, site):
    vae = web.decoder_file("vae")
    with web.serve(site) as url:
        page, _, _ = open_page(browser, url + "notebooks/page.html", missing=vae)
        page.wait_for_function(f"window.vaeganLatent && {W} && {W}.decodes > 0", timeout=60_000)
        page.get_by_role("radio", name="VAE", exact=True).click()  # it fails, and unchecks itself
        error = page.locator(".vaegan-latent-error")
        error.wait_for(state="visible", timeout=30_000)
        text = error.inner_text()
        model = page.evaluate(f"{W}.model.key")
        checked = page.get_by_role("radio", name="VAE/GAN").is_checked()
        page.close()
    assert vae in text and model == "vaegan" and checked, text


@pytest.fixture(scope="module")
def book_html(tmp_path_factory) -> Path:
    """The built book: make book's (or $VAEGAN_BOOK_HTML's), else one built here from the
    notebooks' stored outputs without running them (seconds), so that a fresh clone's CI checks
    the built pages too."""
    if BUILT_PAGE.exists():
        return BOOK_HTML
    out = tmp_path_factory.mktemp("book")
    stored = (ROOT / "_config.yml").read_text()
    config = stored.replace("execute_notebooks: cache", 'execute_notebooks: "off"')
    assert config != stored, "_config.yml no longer says execute_notebooks: cache"
    # local extensions are found relative to the config file, which is not in the repository
    local = config.replace(": book/_ext", f": {ROOT / 'book' / '_ext'}")
    assert local != config, "_config.yml no longer loads book/_ext"
    config = local
    (out / "_config.yml").write_text(config)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    r = subprocess.run([str(jupyter_book), "build", str(ROOT), "--path-output", str(out),
                        "--config", str(out / "_config.yml"), "-W", "-n", "--keep-going"],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, VAEGAN_PRESET="smoke", TQDM_DISABLE="1"))  # fmt: skip
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return out / "_build" / "html"


@pytest.mark.browser
def test_widget_in_the_built_book(browser, book_html):
    with web.serve(book_html) as url:
        check(drive(browser, url + "notebooks/05_latent_arithmetic.html"))


# Once MathJax has typeset the page: the equations it could not, by their error text.
MATH_ERRORS = """() => (window.MathJax?.startup?.promise ?? Promise.resolve()).then(() =>
  [...document.querySelectorAll("mjx-merror")].map(e => "MathJax: " + e.textContent))"""


# What a cell printed that runs past the edge of its box, by its first words.
HIDDEN_OUTPUT = """() => [...document.querySelectorAll("div.cell_output div.output.stream pre")]
  .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => "output runs past its box: " + pre.textContent.slice(0, 60))"""


def test_reference_page_shows_the_package(book_html):
    """The built reference (book/api.md) holds an entry for every object its directives name
    (autodoc imported each one), every field of the settings' dataclasses with its text, every
    flag of every subcommand in that subcommand's section (from cli.build_parser), and no path of
    the machine that built it (a default such as pretrained's weights folder). Each signature
    parsed as Python: one that did not is plain text without its links."""
    html = (book_html / "book" / "api.html").read_text()
    ids = set(re.findall(r'id="([^"]+)"', html))
    missing = [t for t in targets(API_PAGE.read_text()) if t not in ids]
    assert not missing, f"the built api.html has no entry for {missing}"
    for where, cls in SETTINGS.items():
        for f in dataclasses.fields(cls):
            entry = re.search(rf'id="{re.escape(where)}\.{f.name}">.*?</dt>\s*<dd><p>(.+?)</p>',
                              html, re.S)  # fmt: skip
            assert entry and entry[1].strip(), f"api.html shows no text for {where}.{f.name}"
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    commands = list(sub.choices)
    for i, (command, parser) in enumerate(sub.choices.items()):
        start = html.find(f'id="vaegan-lite-{command}"')
        assert start >= 0, f"no section for vaegan-lite {command}"
        end = html.find(f'id="vaegan-lite-{commands[i + 1]}"') if i + 1 < len(commands) else None
        section = html[start:end]
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f">{flag}<" in section, f"vaegan-lite {command} {flag} is not shown"
    assert "PosixPath(" not in html and str(ROOT) not in html
    assert "&lt;factory&gt;" not in html, "a dataclass's signature did not parse"
    # The page's contents list its classes and functions, not their members (book/_ext), which
    # ran the list to some 150 lines
    contents = html[html.index('class="page-toc'):]
    contents = contents[:contents.index("</nav>")]
    assert 'href="#vaegan_lite.TrainConfig"' in contents, "the contents lost the classes"
    assert 'href="#vaegan_lite.TrainConfig.steps"' not in contents, "the contents list members"


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])  # a phone, a laptop
def test_every_built_page_loads_without_an_error(browser, book_html, width):
    """What a reader's browser console would show: no script error, no console error and no
    file the page asks for that the site lacks (the theme's mode, a favicon, a doubled thebe
    settings script were each one on every page); no equation MathJax could not typeset
    (shown in its place, in red: Sphinx sets a display equation with a line break in a split
    environment, where a \\tag is not allowed); and no page wider than the window (a long
    inline call made a phone's page scroll sideways: a wide equation, table or listing
    scrolls in its own box). Wider than a phone, what a cell prints wraps, as in Jupyter: no
    line of it hides its end (a printed command or result) behind a scroll bar."""
    pages = sorted(p.relative_to(book_html).as_posix() for p in book_html.rglob("*.html"))
    pages = [name for name in pages if not name.startswith("_")]  # the theme's templates
    assert len(pages) > 10, pages
    found = {}
    with web.serve(book_html) as url:
        for name in pages:
            # chapter 5's widget loads once scrolled to: its requests and errors are checked too
            widget = name.endswith("05_latent_arithmetic.html")
            page, _, errors = open_page(browser, url + name, width=width, scroll=widget)
            page.wait_for_load_state("networkidle")
            errors += page.evaluate(MATH_ERRORS)
            wide = page.evaluate("() => document.documentElement.scrollWidth")
            if wide > width:
                errors.append(f"{wide} px wide")
            if width >= 720:
                errors += page.evaluate(HIDDEN_OUTPUT)
            page.close()
            if errors:
                found[name] = errors
    assert not found


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_menu_buttons_open_the_chapters_and_the_contents(browser, book_html, width):
    """The buttons at the top of a page do what they show. With the theme's own top bar (which
    pydata-sphinx-theme 0.17 adds unless navbar_persistent is set), its hidden menu button took
    the click handler, and the visible one opened nothing: on a phone no button showed the list
    of chapters. On a phone each button opens its list; on a laptop the menu button hides the
    chapters' sidebar."""
    with web.serve(book_html) as url:
        page, _, errors = open_page(browser, url + "notebooks/04_vaegan_training.html", width=width)
        page.wait_for_load_state("networkidle")
        chapters = page.get_by_role("link", name="1. The variational autoencoder", exact=False)
        assert chapters.first.is_visible() == (width > 960)
        page.locator(".primary-toggle:visible").click()
        if width > 960:  # the sidebar slides away
            page.wait_for_function("() => document.querySelector('#pst-primary-sidebar')"
                                   ".getBoundingClientRect().right <= 0")  # fmt: skip
        else:
            chapters.first.wait_for(state="visible", timeout=5_000)
            page.keyboard.press("Escape")
            page.locator(".secondary-toggle:visible").click()  # "On this page"
            page.locator("#pst-secondary-sidebar-modal").get_by_role(
                "link", name="Checkpoints and resume").wait_for(state="visible", timeout=5_000)
        page.close()
    assert not errors


# Each box that may scroll sideways: its kind, whether it does, and how wide its edges fade
# (start, end) with the reader at its start and then at its end.
SIDEWAYS = """async () => {
  const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const fades = e => ["start", "end"].map(side =>
    parseFloat(getComputedStyle(e).getPropertyValue("--vaegan-fade-" + side)));
  const boxes = [...document.querySelectorAll(".pst-scrollable-table-container, div.math, "
    + "div.cell_output div.output:is(.stream, .text_plain) pre")];
  const found = [];
  for (const e of boxes) {
    const kind = e.matches("div.math") ? "equation" : e.matches("pre") ? "output" : "table";
    e.scrollLeft = 0; await frame();
    const atStart = fades(e);
    e.scrollLeft = e.scrollWidth; await frame();
    const atEnd = fades(e);
    e.focus({focusVisible: true}); await frame();  // tabbed to: the focus ring is not masked
    const focused = document.activeElement !== e || getComputedStyle(e).maskImage === "none";
    e.blur();
    found.push([kind, e.scrollWidth > e.clientWidth + 1, atStart, atEnd, focused]);
    e.scrollLeft = 0;
  }
  return found;
}"""


@pytest.mark.browser
def test_boxes_that_scroll_sideways_fade_where_more_is_hidden(browser, book_html):
    """On a phone wide tables, display equations and printed lines scroll inside their boxes,
    and nothing showed that they do: the edge fades on the side where more is hidden, and
    stops fading once the reader has scrolled to that end. A box that fits does not fade, and
    one the reader has tabbed to is drawn whole, with its focus ring (a mask would clip it)."""
    found = []
    with web.serve(book_html) as url:
        for name in ("book/notation.html", "notebooks/01_vae.html"):
            page, _, errors = open_page(browser, url + name, width=390)
            page.wait_for_load_state("networkidle")
            page.evaluate("() => window.MathJax?.startup?.promise")
            found += page.evaluate(SIDEWAYS)
            page.close()
            assert not errors
    scrolling = {kind for kind, scrolls, _, _, _ in found if scrolls}
    assert scrolling == {"table", "equation", "output"}, found  # each kind, on a phone
    assert all(focused for *_, focused in found)
    for kind, scrolls, (start_0, end_0), (start_1, end_1), _ in found:
        if scrolls:
            assert start_0 == 0 < end_0 and end_1 == 0 < start_1, (kind, start_0, end_0)
        else:
            assert start_0 == end_0 == start_1 == end_1 == 0, kind


@pytest.mark.browser
def test_search_results_quote_equations_as_plain_text(browser, book_html):
    """The search page quotes each result's text, where equations are still LaTeX (MathJax sets
    them only on the page): quotes read "\\(\\mathcal{L}_\\text{prior} + ...\\)". They read
    "L_prior + L_llike^Dis_l", as the code names them (book/_static/search-math.js)."""
    def quotes(query: str) -> tuple[list[str], list[str], object]:
        page, _, errors = open_page(browser, f"{url}search.html?q={query}")
        page.wait_for_function("() => /Search finished/.test(document.querySelector("
                               "'#search-results')?.textContent ?? '')", timeout=60_000)
        page.wait_for_load_state("networkidle")  # each result's page, fetched for its quote
        return page.locator("#search-results p.context").all_text_contents(), errors, page

    with web.serve(book_html) as url:
        prior, errors, page = quotes("prior")
        # only equations are rewritten: a listing's backslashes and $$ stay as they are
        made_up = page.evaluate(r"""() => Search.htmlToText('<div role="main"><pre>' +
            're.compile(r"\\(\\d+\\)"); echo $$</pre> <span class="math">' +
            '\\(\\gamma \\tfrac12 \\frac{\\mu_{\\theta}}{2\\sigma^2}\\)</span></div>')""")
        page.close()
        gamma, more_errors, page = quotes("gamma")
        page.close()
    assert not errors and not more_errors
    assert len(prior) > 5
    assert not [q for q in prior if re.search(r"\\[(\[]|\\(?:mathcal|mathrm|text)\{", q)]
    assert any("L_prior ← D_KL(q(Z | X) ‖ p(Z))" in q for q in prior), prior  # Algorithm 1
    assert " ".join(made_up.split()) == (r're.compile(r"\(\d+\)"); echo $$ gamma 1/2 '
                                         "(mu_theta)/(2 sigma^2)")
    # a Greek letter keeps its name: a search for it quotes the equation that has it
    assert len(gamma) > 5 and all("gamma" in q.lower() for q in gamma), gamma


# WCAG's relative luminance of a CSS colour, and of the first background behind an element
LUMINANCE = """const lum = c => c.match(/[\\d.]+/g).slice(0, 3).map(v => v / 255)
  .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
  .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
const behind = el => {
  for (let n = el; n; n = n.parentElement) {
    const c = getComputedStyle(n).backgroundColor, v = c.match(/[\\d.]+/g);
    if (!(v.length === 4 && Number(v[3]) === 0)) return lum(c);
  }
  return 1;  // the browser's white
};"""
CONTRAST = f"""el => {{ {LUMINANCE}
  const [a, b] = [lum(getComputedStyle(el).color), behind(el)];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}}"""


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_widget_reads_well_in_the_readers_colour_scheme(browser, book_html, scheme):
    """The theme follows the reader's light or dark setting. In dark mode it set the widget on a
    light panel, where the browser drew the radio buttons and sliders for a dark page (the
    chosen model read as the other one, the thumbs vanished), and the captions and the error
    were light on light. The widget sits on a background of the reader's scheme, and its text
    (captions, an error: here a decoder the site lacks) keeps a contrast of 4.5."""
    with web.serve(book_html) as url:
        page, _, _ = open_page(browser, url + "notebooks/05_latent_arithmetic.html",
                               missing=web.decoder_file("vae"), scheme=scheme,
                               scroll=True)  # fmt: skip
        page.wait_for_function(f"window.vaeganLatent && {W} && {W}.decodes > 0", timeout=60_000)
        page.get_by_role("radio", name="VAE", exact=True).click()  # fails: its decoder is missing
        page.locator(".vaegan-latent-error").wait_for(state="visible", timeout=30_000)
        ratios = page.locator(".vaegan-latent figcaption, .vaegan-latent-error").evaluate_all(
            f"els => els.map({CONTRAST})")
        widget = page.locator(".vaegan-latent")
        under = widget.evaluate(f"el => {{ {LUMINANCE} return behind(el) }}")
        page.close()
    assert len(ratios) == 3 and min(ratios) >= 4.5, ratios
    assert under < 0.2 if scheme == "dark" else under > 0.5, under


def test_each_widget_decoder_is_at_most_8_mb():
    """The browser widget downloads one decoder per model: each stays within 8 MB."""
    decoders = sorted(web.STATIC.glob("decoder-*.onnx"))
    assert decoders
    for path in decoders:
        assert path.stat().st_size <= 8e6, f"{path.name}: {path.stat().st_size / 1e6:.1f} MB"


def test_built_pages_load_nothing_from_the_network(book_html):
    """The built book works offline: no page loads a script, stylesheet or image from elsewhere."""
    pages = sorted(book_html.rglob("*.html"))
    assert len(pages) > 10, pages
    remote = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(https?://[^\"]+)\"")
    found = {p.relative_to(book_html).as_posix(): remote.findall(p.read_text()) for p in pages}
    assert not {page: urls for page, urls in found.items() if urls}


def test_widget_data_keeps_the_scale_range():
    """latent.json carries the slider range it was given."""
    from vaegan_lite.book.web import widget_data
    m = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    data = widget_data({"a": ("A", m, {"Smiling": torch.randn(8)})},
                       torch.rand(2, 3, 32, 32) * 2 - 1, scale_range=(-1.0, 3.0))
    assert (data["scale_min"], data["scale_max"]) == (-1.0, 3.0)


def test_the_sprite_holds_the_faces_side_by_side(tmp_path):
    """faces.png is one row [S, N*S], face i in columns i*S to (i+1)*S: where the widget's
    script cuts each thumbnail from."""
    from PIL import Image

    from vaegan_lite.images import to_uint8

    faces = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    got = np.asarray(Image.open(web.save_sprite(faces, tmp_path / "faces.png")))
    assert got.shape == (8, 24, 3)
    for i, face in enumerate(to_uint8(faces)):
        assert np.array_equal(got[:, 8 * i : 8 * i + 8], face.permute(1, 2, 0).numpy()), i
