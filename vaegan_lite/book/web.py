"""The latent-arithmetic widget that works in the static book: no kernel, no server, no CDN.

An ipywidget needs a Python kernel to compute anything, and the published book has none. So the
book also carries a widget that does the arithmetic and runs the decoder in the reader's browser:
the decoder is exported to ONNX with ``torch.onnx`` and run by ONNX Runtime Web (WebAssembly).
Everything it needs is a file of the built book, under ``_static/latent/``:

    ort.wasm.min.js            ONNX Runtime Web, WebAssembly build (vendored: runtime.json, LICENSE)
    ort-wasm-simd-threaded.*   its .mjs glue and its .wasm binary
    latent-widget.js           the widget: model switch, sliders, face picker, two canvases
    decoder-vaegan.onnx        Dec of the shipped VAE/GAN, z [1, D] => image [1, 3, S, S]
    decoder-vae.onnx           Dec of the shipped VAE (loaded when the reader switches to it)
    latent.json                per model: attribute vectors and the faces' codes; file sizes
    faces.png                  the faces, side by side

The runtime and latent-widget.js are committed in book/_static/latent/ (``vendor_runtime`` copies
the runtime out of the npm package into STATIC); ``write_assets`` writes the rest, and
``widget_html`` is the HTML a chapter displays to embed the widget.

The .wasm (11.9 MB) is committed xz-compressed, as ort-wasm-simd-threaded.wasm.xz (1.9 MB): the
repository stays small enough to copy. ``unpack_runtime`` writes the .wasm itself next to it
(git-ignored), checked against the sha256 in runtime.json: on importing this module in a checkout,
in ``write_assets`` and, as a Sphinx extension (_config.yml), before the book's build copies
book/_static/ into _build/html/_static/ (which leaves the .xz out: exclude_patterns).
"""

from __future__ import annotations

import contextlib
import copy
import filecmp
import functools
import hashlib
import http.server
import io
import json
import lzma
import os
import shutil
import tarfile
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..attributes import (
    AUTHORS_SCALE,
    IN_WIDGETS,
    Vectors,
    attribute_vectors,
    encode,
    held_out_faces,
    labelled_images,
)
from ..data import SyntheticFaces
from ..files import atomic_path, atomic_paths
from ..images import to_uint8
from ..shipped import pretrained, sha256
from .runs import IN_CHECKOUT, ROOT

STATIC = ROOT / "book" / "_static" / "latent"  # in a checkout of the repository
RUNTIME_PACKAGE = "onnxruntime-web"
# The smallest set that runs a model on the CPU: the WebAssembly-only bundle (no WebGL/WebGPU),
# its Emscripten glue and one .wasm binary (SIMD; threads are used only when the page is
# cross-origin isolated, which a static book is not).
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
WIDGET_FILES = ("latent-widget.js", "runtime.json", "LICENSE-onnxruntime-web.txt")
# Runtime files committed compressed (xz: 1.9 MB where gzip gives 3.1), {served: committed}; the
# served file is generated from the committed one (unpack_runtime) and git-ignored.
PACKED = {"ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm.xz"}
XZ_PRESET = 9 | lzma.PRESET_EXTREME
OPSET = 18
# The models the widget switches between, Fig. 6 against Fig. 7: (key, label, shipped name). The
# first is shown when the page opens; the others' decoders load when the reader picks them.
MODELS = (("vaegan", "VAE/GAN", "synthetic-vaegan"), ("vae", "VAE", "synthetic-vae"))
# The widget's sliders: the attributes chapter 5 shows, and Male (the kernel widget offers the
# same), and how many held-out faces it offers.
WIDGET_ATTRS = IN_WIDGETS
WIDGET_FACES = 12


def decoder_file(key: str) -> str:
    """The ONNX file name of the decoder of MODELS' ``key``."""
    return f"decoder-{key}.onnx"


def data_files() -> tuple[str, ...]:
    """The files write_assets writes (the rest of the folder is the runtime and the widget)."""
    return ("latent.json", "faces.png", *(decoder_file(k) for k, _, _ in MODELS))


def export_decoder(model: Any, path: str | Path, opset: int = OPSET, check: bool = True) -> Path:
    """Write Dec as ONNX (one file, input ``z`` [1, latent_dim], output ``image`` [1, C, H, W]).

    The exporter folds each BatchNorm (eval mode: running statistics) into the layer before it.
    It exports a float32 copy of Dec on the CPU, as the browser runs it: the model itself, on a
    GPU or still training, is left as it was. With ``check``, onnxruntime's output must match
    PyTorch's to 1e-4.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dec = copy.deepcopy(model.dec).cpu().float().eval()
    z = torch.randn(1, model.latent_dim, generator=torch.Generator().manual_seed(0))
    # Written beside path and renamed over it once checked: a failed export or check leaves
    # the file that was there (the widget's decoder must match its latent.json).
    with atomic_path(path) as tmp:
        # The exporter reports its progress on stdout; a chapter's output should not show it.
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(dec, (z,), str(tmp), input_names=["z"], output_names=["image"],
                              opset_version=opset, dynamo=True, external_data=False,
                              optimize=True, verbose=False)  # fmt: skip
        if check:
            try:
                import onnxruntime as ort
            except ImportError as e:
                raise ImportError("export_decoder(check=True) runs the decoder in onnxruntime: "
                                  "pip install 'vaegan-lite[onnx]'") from e  # fmt: skip

            session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            got = torch.from_numpy(session.run(None, {"z": z.numpy()})[0])
            with torch.no_grad():
                want = dec(z)
            err = float((got - want).abs().max())
            if err > 1e-4:
                raise RuntimeError(f"{path}: onnxruntime and PyTorch differ by {err:.2g}")
    return path


def _rounded(t: torch.Tensor) -> list:
    return [round(float(v), 5) for v in t]


def widget_data(
    models: dict[str, tuple[str, Any, Vectors]],
    faces: torch.Tensor,
    labels: dict[str, str] | None = None,
    scale_range: tuple[float, float] = (-2.0, 2.0),
    files: dict[str, int] | None = None,
) -> dict[str, Any]:
    """What latent.json holds. ``models``: {key: (label, model, vectors)}, every model with the
    same attributes; per model its decoder's file, its attribute vectors and the faces' codes
    mu(x), as plain lists. ``files``: {file: bytes} of what the widget fetches, for its progress
    bar."""
    names = None
    entries = []
    for key, (label, model, vectors) in models.items():
        if names is None:
            names = list(vectors)
        elif list(vectors) != names:
            raise ValueError(f"{key}: attributes {list(vectors)} differ from {names}")
        entries.append({
            "key": key,
            "label": label,
            "decoder": decoder_file(key),
            "latent_dim": int(model.latent_dim),
            "vectors": [_rounded(v) for v in vectors.values()],
            "faces": [_rounded(c) for c in encode(model, faces)],
        })  # fmt: skip
    return {
        "image_size": int(faces.shape[-1]),
        "names": names,
        "labels": [(labels or {}).get(n, n.replace("_", " ")) for n in names],
        "models": entries,
        "sprite": "faces.png",
        "scale_min": scale_range[0],
        "scale_max": scale_range[1],
        "paper_scale": AUTHORS_SCALE,
        "files": dict(files or {}),
    }


def save_sprite(faces: torch.Tensor, path: str | Path) -> Path:
    """The faces [N, 3, S, S] in [-1, 1] side by side in one PNG [S, N*S]."""
    from PIL import Image  # Pillow: only when image files are read or written

    x = to_uint8(faces)
    strip = torch.cat(list(x), dim=2).permute(1, 2, 0).contiguous().numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(strip).save(tmp, optimize=True)
    return Path(path)


def _has(folder: Path, name: str) -> bool:
    """Whether ``folder`` holds the runtime file ``name``, or its compressed form."""
    return (folder / name).is_file() or (name in PACKED and (folder / PACKED[name]).is_file())


def checkout_static() -> Path | None:
    """The widget's folder book/_static/latent/ of the repository, or None: after a pip install
    (no checkout around the package) or before the folder exists."""
    return STATIC if IN_CHECKOUT and STATIC.is_dir() else None


def unpack_runtime(folder: str | Path = STATIC, out: str | Path | None = None) -> dict[str, Path]:
    """Write each PACKED file (the .wasm) of ``folder`` uncompressed into ``out`` (by default
    ``folder`` itself) from its .xz there, unless ``out`` already holds the bytes runtime.json
    records (size and sha256). The decompressed bytes must match that record (ValueError if not).
    A folder without the .xz (e.g. a built book's) is left alone. Returns {served name: path} of
    the files that come from a .xz, written now or already current."""
    folder = Path(folder)
    out = folder if out is None else Path(out)
    record_file = folder / "runtime.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    done = {}
    for name, stored in PACKED.items():
        if not (folder / stored).is_file():
            continue
        target = out / name
        size, digest = record.get("files", {}).get(name), record.get("sha256", {}).get(name)
        current = target.is_file() and target.stat().st_size == size
        if digest is not None and current and sha256(target) == digest:
            done[name] = target
            continue
        data = lzma.decompress((folder / stored).read_bytes())
        got = hashlib.sha256(data).hexdigest()
        if digest is not None and (got != digest or len(data) != size):
            raise ValueError(f"{folder / stored} decompresses to {len(data)} bytes (sha256 "
                             f"{got[:12]}...), not the {name} of {record_file} ({size} bytes, "
                             f"sha256 {digest[:12]}...)")  # fmt: skip
        # atomic: other processes (pytest workers, a chapter's kernel) may be reading or
        # unpacking the same folder at the same time
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
        done[name] = target
    return done


def write_assets(
    models: dict[str, tuple[str, Any, Vectors]],
    faces: torch.Tensor,
    out: str | Path = STATIC,
    labels: dict[str, str] | None = None,
    runtime: str | Path = STATIC,
    page: bool = True,
) -> dict[str, int]:
    """Write one decoder-KEY.onnx per model of ``models`` ({key: (label, model, vectors)}, the
    first shown first), latent.json and faces.png into ``out`` (by default the book's static
    folder), removing decoders of earlier versions; copy the runtime and the widget script there
    from ``runtime`` when they differ; with ``page``, also an index.html that shows the widget on
    its own. Returns {file: bytes}."""
    out, runtime = Path(out), Path(runtime)
    # Checked before anything is written: after a pip install the default runtime folder (the
    # repository's) does not exist, and a half-written widget folder would be left behind.
    if missing := [n for n in RUNTIME_FILES + WIDGET_FILES if not _has(runtime, n)]:
        raise FileNotFoundError(
            f"write_assets: the widget's runtime is not in {runtime} (no "
            f"{PACKED.get(missing[0], missing[0])}); it is the book/_static/latent/ folder of a "
            "checkout of the repository, not part of a pip install: pass runtime= a copy of that "
            "folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    unpacked = unpack_runtime(runtime, out)  # the .wasm from its .xz, where the folder has one
    if runtime.resolve() != out.resolve():
        for name in RUNTIME_FILES + WIDGET_FILES:
            if name not in unpacked:
                shutil.copyfile(runtime / name, out / name)
    wanted = sorted({decoder_file(key) for key in models})
    # The decoders, the sprite, the page and latent.json are written beside their files and
    # renamed over them together at the end, latent.json last: an export, a check or widget_data
    # that fails leaves the widget as it was.
    names = ["latent.json", *(["index.html"] if page else []), *wanted, "faces.png"]
    with atomic_paths(*(out / name for name in names)) as paths:
        staged = dict(zip(names, paths, strict=True))
        for key, (_, model, _) in models.items():
            export_decoder(model, staged[decoder_file(key)])
        save_sprite(faces, staged["faces.png"])
        # What the widget fetches (latent.json aside), with sizes, so that its progress bar
        # knows the total before the first byte arrives.
        files = {name: (staged.get(name) or out / name).stat().st_size
                 for name in [*RUNTIME_FILES[1:], *wanted, "faces.png"]}  # fmt: skip
        data = widget_data(models, faces, labels, files=files)
        staged["latent.json"].write_text(json.dumps(data, separators=(",", ":")) + "\n")
        if page:
            staged["index.html"].write_text(standalone_page())
    for old in out.glob("decoder*.onnx"):  # last: until now, the old latent.json used them
        if old.name not in wanted:
            old.unlink()
    return {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}


def book_assets(out: str | Path = STATIC, n: int = 10000) -> dict[str, int]:
    """(Re)write the book's widget data from the shipped VAE/GAN and VAE (MODELS): each model's
    vectors for WIDGET_ATTRS from its first n training faces (as the authors did), and the first
    WIDGET_FACES held-out faces to pick from. Run by `make pretrained` (tools/train_pretrained.py
    --only web)."""
    loaded = {key: (label, pretrained(name)) for key, label, name in MODELS}
    first = next(iter(loaded.values()))[1]
    cfg = first.train_config
    for _, model in loaded.values():  # one set of faces (and training faces) serves them all
        c = model.train_config
        if (c.dataset_size, c.data_seed, model.image_size) != (
            cfg.dataset_size, cfg.data_seed, first.image_size
        ):  # fmt: skip
            raise ValueError("the widget's models must be trained on the same faces")
    train_faces = labelled_images(SyntheticFaces(cfg.dataset_size, first.image_size,
                                                 seed=cfg.data_seed), n)  # fmt: skip
    models = {
        key: (label, model, attribute_vectors(model, train_faces, names=WIDGET_ATTRS))
        for key, (label, model) in loaded.items()
    }
    faces, _, _ = held_out_faces(first, WIDGET_FACES)
    return write_assets(models, faces, out, page=False)


# Shown in place of the widget when one of its scripts does not load (the page itself defines it,
# so that it works when latent-widget.js is the file that is missing).
MISSING_SCRIPT = """window.vaeganLatentMissing = window.vaeganLatentMissing || function (file) {
  document.querySelectorAll("div.vaegan-latent:not([data-ready=yes])").forEach(function (root) {
    root.setAttribute("data-ready", "failed");
    root.textContent = "";
    var p = document.createElement("p");
    p.className = "vaegan-latent-error";
    p.setAttribute("role", "alert");
    p.style.cssText = "border:2px solid #c33;border-radius:4px;padding:0.6em 0.8em;color:#c33";
    p.textContent = "The in-browser widget could not load " + file + " from " +
      root.getAttribute("data-base") + " (the file is missing). The widget needs the built " +
      "book's _static/latent/ folder; in Jupyter or Colab, use the live widget above.";
    root.appendChild(p);
  });
};"""


def widget_html(base: str = "../_static/latent/") -> str:
    """The HTML a chapter displays to embed the widget; ``base`` is the assets' folder relative to
    the page (a chapter page of the built book lives in _build/html/notebooks/)."""
    return f"""<div class="vaegan-latent" data-base="{base}">
<p class="vaegan-latent-status">The in-browser widget runs here in the published book, with
JavaScript on (it needs the book's <code>_static/latent/</code> files). In Jupyter or Colab, use
the live widget above.</p>
</div>
<script>{MISSING_SCRIPT}</script>
<script src="{base}ort.wasm.min.js" onerror="vaeganLatentMissing('ort.wasm.min.js')"></script>
<script src="{base}latent-widget.js" onerror="vaeganLatentMissing('latent-widget.js')"></script>
"""


def standalone_page(base: str = "./") -> str:
    """A page with the widget alone (write_assets' index.html), assets at ``base``."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Latent arithmetic</title>
<link rel="icon" href="data:,"></head>
<body>
<h1>Latent arithmetic in the browser</h1>
{widget_html(base)}</body></html>
"""


@contextlib.contextmanager
def serve(folder: str | Path, port: int = 0) -> Iterator[str]:
    """Serve ``folder`` on http://127.0.0.1:PORT/ from a background thread (port 0: any free one);
    yields the base URL. For looking at the widget locally (browsers refuse file:// for it)."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

    handler = functools.partial(Handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def vendor_runtime(package: str | Path, out: str | Path) -> dict[str, Any]:
    """Copy RUNTIME_FILES out of the onnxruntime-web npm package (its folder or the .tgz that
    ``npm pack onnxruntime-web@VERSION`` writes) into ``out``, the PACKED ones (the .wasm) as
    .xz, which is what is committed (the .wasm itself is unpacked beside it); write runtime.json
    (version, licence, the files' sizes and sha256 uncompressed). Returns that record. A
    maintainer's step in a checkout, ``out`` being ``STATIC`` there (no default: in an installed
    package STATIC is outside it)."""
    package, out = Path(package), Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        if package.is_file():
            with tarfile.open(package) as tar:
                tar.extractall(tmp, filter="data")
            package = Path(tmp) / "package"
        meta = json.loads((package / "package.json").read_text())
        if meta.get("name") != RUNTIME_PACKAGE:
            raise ValueError(f"{package}: not the {RUNTIME_PACKAGE} npm package")
        out.mkdir(parents=True, exist_ok=True)
        files, digests = {}, {}
        for name in RUNTIME_FILES:
            data = (package / "dist" / name).read_bytes()
            files[name], digests[name] = len(data), hashlib.sha256(data).hexdigest()
            if name in PACKED:
                (out / PACKED[name]).write_bytes(lzma.compress(data, preset=XZ_PRESET))
            else:
                (out / name).write_bytes(data)
    record = {
        "package": RUNTIME_PACKAGE,
        "version": meta["version"],
        "license": meta.get("license"),
        "source": f"npm pack {RUNTIME_PACKAGE}@{meta['version']} (files from its dist/)",
        "files": files,  # bytes, uncompressed: what the browser fetches
        "sha256": digests,
        "compressed": {name: PACKED[name] for name in RUNTIME_FILES if name in PACKED},
    }
    (out / "runtime.json").write_text(json.dumps(record, indent=2) + "\n")
    unpack_runtime(out)
    return record


def setup(app: Any) -> dict[str, Any]:
    """As a Sphinx extension (_config.yml, sphinx.extra_extensions): unpack the runtime into
    book/_static/latent/ when the build starts, before Sphinx copies the static files; copy an
    edited static file even when no page changed (stale_static_files); each page's scripts
    once (one_of_each_script)."""
    app.connect("builder-inited", lambda app: unpack_runtime())
    app.connect("env-get-outdated", stale_static_files)
    app.connect("html-page-context", one_of_each_script)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def stale_static_files(app: Any, env: Any, added: set[str], changed: set[str],
                       removed: set[str]) -> list[str]:  # fmt: skip
    """Sphinx copies the static files only when it writes a page: an edit to one of them alone
    (the widget's JS, custom.css) would not reach a built book. Where a file of
    html_static_path differs from its copy in the build, rewrite the first page, which copies
    them all. Left out as Sphinx leaves them: what exclude_patterns or a leading dot exclude
    (folders pruned whole), and templates ("_t", ".jinja"), which it renders rather than copies."""
    if getattr(app.builder, "format", None) != "html":
        return []
    from sphinx.util.matching import Matcher  # Sphinx is the book's, not the package's

    built, skip = Path(app.outdir) / "_static", Matcher([*app.config.exclude_patterns, "**/.*"])
    for entry in app.config.html_static_path:
        source = Path(app.confdir) / entry
        pairs = [(source, built / source.name)] if source.is_file() else []
        for folder, dirs, files in os.walk(source):
            rel = Path(folder).relative_to(source)
            dirs[:] = [d for d in dirs if not skip((rel / d).as_posix())]
            pairs += [(Path(folder, f), built / rel / f) for f in files
                      if not skip((rel / f).as_posix())]  # fmt: skip
        for path, copied in pairs:
            if not path.name.lower().endswith(("_t", ".jinja")) and (
                    not copied.is_file() or not filecmp.cmp(path, copied, shallow=False)):
                return [app.config.root_doc]
    return []


def one_of_each_script(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                       doctree: Any) -> None:  # fmt: skip
    """Keep each of a page's scripts once: sphinx-thebe 0.3 (which Jupyter Book 1 always loads)
    registers its inline settings script once the build is under way, and pages got it twice,
    once with no file name (None) and once with an empty one: the second ``const THEBE_JS_URL``
    was a SyntaxError in the console of every page."""
    if "script_files" not in context:
        return
    seen, kept = set(), []
    for js in context["script_files"]:
        attributes = getattr(js, "attributes", {})
        key = (str(getattr(js, "filename", js) or ""), getattr(js, "priority", 500),
               tuple(sorted((k, str(v)) for k, v in attributes.items())))  # fmt: skip
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"][:] = kept


# In a checkout (not a pip install) the .wasm is a generated file: make sure whatever reads the
# folder finds it, current (chapter 5 lists the files' sizes, the tests and benchmarks serve it).
if IN_CHECKOUT and any((STATIC / stored).is_file() for stored in PACKED.values()):
    try:
        unpack_runtime()
    except (OSError, ValueError) as e:
        warnings.warn(f"the widget's runtime could not be unpacked: {e}", stacklevel=2)
