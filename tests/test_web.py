"""The static latent-arithmetic widget (web.py, book/_static/latent/).

The browser tests open the widget in headless Chromium (Debian's `chromium`, driven by playwright),
served from 127.0.0.1 by a local http.server thread, and check that moving a slider changes the
decoded picture, that every request stays on 127.0.0.1 and that the console shows no error.
They are skipped, saying why, only where chromium or playwright is missing (.ci/run installs both).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vaegan_lite.attributes import encode, held_out_faces
from vaegan_lite.book import web
from vaegan_lite.shipped import pretrained

ROOT = Path(__file__).resolve().parents[1]
# The built book (make book); VAEGAN_BOOK_HTML points elsewhere (e.g. jupyter-book --path-output).
BOOK_HTML = Path(os.environ.get("VAEGAN_BOOK_HTML") or ROOT / "_build" / "html")
BUILT_PAGE = BOOK_HTML / "notebooks" / "05_latent_arithmetic.html"
CHROMIUM = os.environ.get("VAEGAN_CHROMIUM") or shutil.which("chromium")
LOCAL = ("http://127.0.0.1:", "data:")  # the only URLs the page may load
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# --- the committed assets -----------------------------------------------------------------------


def test_runtime_is_vendored_with_version_and_licence():
    record = json.loads((web.STATIC / "runtime.json").read_text())
    assert record["package"] == "onnxruntime-web" and record["license"] == "MIT"
    for name, size in record["files"].items():
        assert (web.STATIC / name).stat().st_size == size, f"{name} differs from runtime.json"
    assert set(record["files"]) == set(web.RUNTIME_FILES)
    assert "MIT License" in (web.STATIC / "LICENSE-onnxruntime-web.txt").read_text()
    # Only the WebAssembly CPU build: no WebGL/WebGPU bundles, no source maps.
    extra = {p.name for p in web.STATIC.iterdir()} - set(web.RUNTIME_FILES) - set(web.WIDGET_FILES)
    assert extra <= {"decoder.onnx", "latent.json", "faces.png"}, extra


def test_committed_decoder_and_codes_match_the_shipped_vaegan():
    ort = pytest.importorskip("onnxruntime")
    model = pretrained("synthetic-vaegan")
    session = ort.InferenceSession(str(web.STATIC / "decoder.onnx"))
    z = torch.randn(3, model.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model.decode(z)
    got = np.concatenate([session.run(None, {"z": zi[None].numpy()})[0] for zi in z])
    np.testing.assert_allclose(got, want.numpy(), atol=2e-5)
    data = json.loads((web.STATIC / "latent.json").read_text())
    assert data["names"] == list(web.WIDGET_ATTRS) and data["latent_dim"] == model.latent_dim
    faces, _, _ = held_out_faces(model, web.WIDGET_FACES)
    np.testing.assert_allclose(np.array(data["faces"]), encode(model, faces).numpy(), atol=2e-5)
    assert all(np.linalg.norm(v) > 0.1 for v in data["vectors"])


def test_export_decoder_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    from vaegan_lite.config import ModelConfig
    from vaegan_lite.models import VAEGAN

    torch.manual_seed(0)
    model = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).eval()
    path = web.export_decoder(model, tmp_path / "dec.onnx")  # raises if onnxruntime disagrees
    assert path.stat().st_size > 1000 and not list(tmp_path.glob("*.data"))


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
    """The committed assets and a page that embeds the widget, as the chapter does."""
    folder = tmp_path_factory.mktemp("site")
    shutil.copytree(web.STATIC, folder / "_static" / "latent")
    (folder / "notebooks").mkdir()
    (folder / "notebooks" / "page.html").write_text(
        web.standalone_page("../_static/latent/").replace("<h1>", "<h1 id='title'>")
    )
    return folder


def drive(browser, url: str) -> dict:
    """Open url, use the widget; returns what happened (pixels, requests, console errors)."""
    page = browser.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Anything not on 127.0.0.1 is recorded (above) and refused, so the page cannot depend on it.
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(LOCAL) else r.abort())
    page.goto(url)
    w = "window.vaeganLatent.widgets[0]"
    page.wait_for_function(f"window.vaeganLatent && {w} && {w}.decodes > 0", timeout=60_000)
    pixels = f"Array.from({w}.ctx.getImageData(0, 0, {w}.S, {w}.S).data)"

    def after(action) -> list[int]:
        n = page.evaluate(f"{w}.decodes")
        action()
        page.wait_for_function(f"{w}.decodes > {n} && !{w}.busy", timeout=30_000)
        return page.evaluate(pixels)

    out = {"start": page.evaluate(pixels)}
    out["slider"] = after(lambda: page.locator("input[data-attribute=Eyeglasses]").fill("1.5"))
    out["reset"] = after(lambda: page.get_by_role("button", name="Reset").click())
    out["face"] = after(lambda: page.locator("canvas.vaegan-latent-face").nth(3).click())
    out["random"] = after(lambda: page.get_by_role("button", name="Random face").click())
    out["status"] = page.locator(".vaegan-latent-time").inner_text()
    page.close()
    return {**out, "requests": requests, "errors": errors}


# Console errors that Jupyter Book 1.x's theme logs on every page of a fresh build, whatever the
# page holds (sphinx-book-theme declares thebe's URL twice; pydata-sphinx-theme complains about an
# empty stored colour mode in a new browser profile). Not the widget's: only these are allowed.
THEME_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode")


def check(result: dict) -> None:
    def changed(a, b):
        return np.abs(np.array(a, dtype=int) - np.array(b, dtype=int)).sum() > 0

    assert len(result["start"]) > 0 and max(result["start"]) > 0, "nothing was drawn"
    assert changed(result["start"], result["slider"]), "moving a slider changed nothing"
    assert result["reset"] == result["start"], "reset did not bring the first face back"
    assert changed(result["reset"], result["face"]), "picking another face changed nothing"
    assert changed(result["face"], result["random"]), "a random face changed nothing"
    outside = [u for u in result["requests"] if not u.startswith(LOCAL)]
    assert not outside, f"requests left localhost: {outside}"
    assert any(u.endswith("ort-wasm-simd-threaded.wasm") for u in result["requests"])
    errors = [e for e in result["errors"] if not any(t in e for t in THEME_NOISE)]
    assert not errors, f"console errors: {errors}"
    assert "ms" in result["status"]


@pytest.mark.browser
def test_widget_decodes_in_the_browser(browser, site):
    with web.serve(site) as url:
        check(drive(browser, url + "notebooks/page.html"))


@pytest.mark.browser
def test_widget_in_the_built_book(browser):
    if not BUILT_PAGE.exists():
        pytest.skip("the book is not built (make book); the committed assets are tested above")
    with web.serve(BOOK_HTML) as url:
        check(drive(browser, url + "notebooks/05_latent_arithmetic.html"))
