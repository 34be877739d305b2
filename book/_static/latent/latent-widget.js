/* Latent arithmetic in the reader's browser (vaegan-lite, chapter 5).
 *
 * Every <div class="vaegan-latent"> on the page becomes a widget: a face picker, a slider per
 * attribute vector, "random face" and "reset" buttons, and a canvas showing Dec(z) with
 *     z = (code of the chosen face, or a draw from N(0, I)) + sum_a slider_a * v_a.
 * Dec is the VAE/GAN's decoder exported to ONNX (decoder.onnx), run by ONNX Runtime Web on the
 * CPU (WebAssembly). Every file comes from this script's own folder: nothing leaves the book.
 *
 * Needs ort.wasm.min.js loaded first. For tests and benchmarks: window.vaeganLatent.widgets.
 */
(function () {
  "use strict";
  const script = document.currentScript;
  const base = new URL(".", script.src).href; // the folder this script was served from
  const SHOW = 160; // shown size of a decoded face, in CSS pixels

  ort.env.wasm.wasmPaths = base; // ort-wasm-simd-threaded.{mjs,wasm} from here, not a CDN
  ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no threads anyway
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error"; // ORT's own warnings (e.g. about the CPU) would be console errors

  const registry = (window.vaeganLatent = window.vaeganLatent || { widgets: [] });
  let shared = null; // one session and one latent.json for all widgets of the page

  function load() {
    if (!shared) {
      shared = Promise.all([
        fetch(base + "latent.json").then((r) => {
          if (!r.ok) throw new Error("latent.json: HTTP " + r.status);
          return r.json();
        }),
        ort.InferenceSession.create(base + "decoder.onnx", { executionProviders: ["wasm"] }),
        new Promise((resolve, reject) => {
          const img = new Image();
          img.onload = () => resolve(img);
          img.onerror = () => reject(new Error("faces.png did not load"));
          img.src = base + "faces.png";
        }),
      ]);
    }
    return shared;
  }

  function el(tag, attrs, parent) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "style") e.style.cssText = v;
      else e.setAttribute(k, v);
    }
    if (parent) parent.appendChild(e);
    return e;
  }

  // A standard normal draw (Box-Muller), for "random face".
  function gaussian() {
    let u = 0;
    while (u === 0) u = Math.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
  }

  class Widget {
    constructor(root, data, session, sprite) {
      this.root = root;
      this.data = data;
      this.session = session;
      this.sprite = sprite;
      this.D = data.latent_dim;
      this.S = data.image_size;
      this.scales = new Float32Array(data.names.length);
      this.base = Float32Array.from(data.faces[0]);
      this.busy = false;
      this.pending = false;
      this.decodes = 0; // how many decodes have been drawn (tests read it)
      this.lastMs = NaN;
      this.build();
      this.render();
    }

    build() {
      const S = this.S;
      const root = this.root;
      root.textContent = "";
      root.style.cssText = "display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start;margin:1em 0";
      const left = el("div", {}, root);
      this.canvas = el("canvas", { width: S, height: S, "aria-label": "decoded face",
        style: `width:${SHOW}px;height:${SHOW}px;image-rendering:pixelated;border:1px solid #8884` }, left);
      this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
      this.pixels = this.ctx.createImageData(S, S);
      this.status = el("div", { class: "vaegan-latent-time", style: "font-size:0.8em;opacity:0.7" }, left);
      const buttons = el("div", { style: "margin-top:0.4em;display:flex;gap:0.4em" }, left);
      this.randomButton = el("button", { type: "button", text: "Random face" }, buttons);
      this.resetButton = el("button", { type: "button", text: "Reset" }, buttons);
      this.randomButton.addEventListener("click", () => this.random());
      this.resetButton.addEventListener("click", () => this.reset());

      const right = el("div", { style: "flex:1;min-width:16em" }, root);
      el("div", { text: "Face (its code is mu(x) of the encoder):", style: "font-size:0.9em" }, right);
      const picker = el("div", { style: "display:flex;flex-wrap:wrap;gap:3px;margin:0.3em 0 0.8em" }, right);
      this.faceButtons = this.data.faces.map((_, i) => {
        const b = el("canvas", { width: S, height: S, role: "button", tabindex: "0",
          "aria-label": "face " + (i + 1), class: "vaegan-latent-face",
          style: "width:40px;height:40px;image-rendering:pixelated;cursor:pointer;border:2px solid transparent" }, picker);
        b.getContext("2d").drawImage(this.sprite, i * S, 0, S, S, 0, 0, S, S);
        b.addEventListener("click", () => this.pick(i));
        b.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") this.pick(i); });
        return b;
      });
      this.sliders = this.data.names.map((name, k) => {
        const row = el("label", { style: "display:flex;align-items:center;gap:0.5em;font-size:0.9em" }, right);
        el("span", { text: this.data.labels[k], style: "width:9em" }, row);
        const s = el("input", { type: "range", min: this.data.scale_min, max: this.data.scale_max,
          step: "0.05", value: "0", "data-attribute": name, style: "flex:1" }, row);
        const v = el("span", { text: "0.00", style: "width:3em;text-align:right;font-variant-numeric:tabular-nums" }, row);
        s.addEventListener("input", () => {
          this.scales[k] = parseFloat(s.value);
          v.textContent = this.scales[k].toFixed(2);
          this.render();
        });
        return { input: s, value: v };
      });
      this.pick(0, false);
    }

    pick(i, draw = true) {
      this.base = Float32Array.from(this.data.faces[i]);
      this.faceButtons.forEach((b, j) => (b.style.borderColor = j === i ? "#e66" : "transparent"));
      if (draw) this.render();
    }

    random() {
      this.base = Float32Array.from({ length: this.D }, gaussian);
      this.faceButtons.forEach((b) => (b.style.borderColor = "transparent"));
      this.render();
    }

    reset() {
      this.scales.fill(0);
      for (const s of this.sliders) {
        s.input.value = "0";
        s.value.textContent = "0.00";
      }
      this.render();
    }

    code() {
      const z = Float32Array.from(this.base);
      this.data.vectors.forEach((v, k) => {
        const s = this.scales[k];
        if (s !== 0) for (let d = 0; d < this.D; d++) z[d] += s * v[d];
      });
      return z;
    }

    // Dec(z) => RGBA pixels of the canvas. Returns the milliseconds it took.
    async decode(z) {
      const t0 = performance.now();
      const out = await this.session.run({ z: new ort.Tensor("float32", z, [1, this.D]) });
      const x = out.image.data; // [1, 3, S, S] in [-1, 1]
      const n = this.S * this.S;
      const p = this.pixels.data;
      for (let i = 0; i < n; i++) {
        p[4 * i] = (x[i] + 1) * 127.5;
        p[4 * i + 1] = (x[n + i] + 1) * 127.5;
        p[4 * i + 2] = (x[2 * n + i] + 1) * 127.5;
        p[4 * i + 3] = 255;
      }
      this.ctx.putImageData(this.pixels, 0, 0);
      return performance.now() - t0;
    }

    // Slider moves arrive faster than decodes: keep one decode running and one pending.
    async render() {
      if (this.busy) {
        this.pending = true;
        return;
      }
      this.busy = true;
      try {
        do {
          this.pending = false;
          this.lastMs = await this.decode(this.code());
          this.decodes++;
          this.status.textContent = `decoded in ${this.lastMs.toFixed(1)} ms in your browser`;
        } while (this.pending);
      } catch (err) {
        this.status.textContent = "decoding failed: " + err;
        console.error(err);
      } finally {
        this.busy = false;
      }
    }

    // Benchmark: mean ms per decoded image over n random codes (after a warm-up).
    async bench(n = 100) {
      const codes = Array.from({ length: n + 5 }, () => Float32Array.from({ length: this.D }, gaussian));
      for (const z of codes.slice(0, 5)) await this.decode(z);
      const t0 = performance.now();
      for (const z of codes.slice(5)) await this.decode(z);
      return (performance.now() - t0) / n;
    }
  }

  function start() {
    for (const root of document.querySelectorAll("div.vaegan-latent:not([data-ready])")) {
      root.setAttribute("data-ready", "loading");
      load()
        .then(([data, session, sprite]) => {
          const w = new Widget(root, data, session, sprite);
          registry.widgets.push(w);
          root.setAttribute("data-ready", "yes");
        })
        .catch((err) => {
          root.setAttribute("data-ready", "failed");
          root.textContent = "The in-browser decoder could not start: " + err;
          console.error(err);
        });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
