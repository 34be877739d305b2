"""Decode time per image of the book's in-browser widget, in headless Chromium (target: <= 30 ms).

python benchmarks/web_decode.py                     # the committed book/_static/latent/
python benchmarks/web_decode.py --n 200 --repeats 7 --chromium /usr/bin/chromium

Serves the widget's assets from 127.0.0.1, opens them in headless Chromium (playwright) and times
the widget's own decode path: ONNX Runtime Web (WebAssembly, one thread) running the first model's
decoder (decoder-vaegan.onnx) on one latent code, then the [-1, 1] => RGBA conversion and the
canvas draw. Prints the median over
--repeats runs of the mean over --n random codes (after a warm-up), in ms per image, plus the
time until the first picture. Wall times: on a machine busy with other jobs they include waiting.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from vaegan_lite.book import web
from vaegan_lite.cli import OneLineParser

TARGET_MS = 30.0


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=Path, default=web.STATIC, help="the widget's folder")
    ap.add_argument("--n", type=int, default=100, help="decodes per run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        shutil.copytree(args.assets, site / "latent")
        (site / "latent" / "index.html").write_text(web.standalone_page())
        with web.serve(site) as url, sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=args.chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page()
            t0 = time.perf_counter()
            page.goto(url + "latent/index.html")
            w = "window.vaeganLatent.widgets[0]"
            ready = f"window.vaeganLatent && {w} && {w}.decodes > 0"
            page.wait_for_function(ready, timeout=120_000)
            first = time.perf_counter() - t0
            runs = [page.evaluate(f"{w}.bench({args.n})") for _ in range(args.repeats)]
            version = page.evaluate("ort.env.versions.web || ort.env.versions.common")
            browser_version = browser.version
            browser.close()
    ms = statistics.median(runs)
    print(f"ONNX Runtime Web {version}, Chromium {browser_version} (headless)")
    print(f"page load to first decoded face: {first:.2f} s")
    print(f"decode: {ms:.2f} ms/image (median of {args.repeats} x {args.n}; runs: "
          + ", ".join(f"{r:.2f}" for r in runs) + f"); target <= {TARGET_MS:.0f} ms: "
          + ("met" if ms <= TARGET_MS else "MISSED"))  # fmt: skip


if __name__ == "__main__":
    main()
