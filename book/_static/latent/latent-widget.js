/* Latent arithmetic in the reader's browser (vaegan-lite, chapter 5).
 *
 * Every <div class="vaegan-latent"> on the page becomes a widget: a switch between the models
 * (VAE/GAN and VAE: Fig. 6 against Fig. 7), a face picker, a slider per attribute vector with the
 * authors' scale s = 1 marked, "random face" and "reset" buttons, and two large pictures side by
 * side: the original (the chosen face x, or a random sample Dec(z_p)) and the edited face Dec(z) with
 *     z = (code mu(x) of the chosen face, or a draw z_p from N(0, I)) + sum_a slider_a * v_a.
 * Each Dec is a model's decoder exported to ONNX (decoder-KEY.onnx), run by ONNX Runtime Web on
 * the CPU (WebAssembly). Every file comes from this script's own folder: nothing leaves the book.
 * The files (about 15 MB, most of it the runtime) are fetched only when the reader scrolls near the
 * widget, so a reader who never gets there does not pay for them; while they load a progress bar
 * shows how far it got and which files it waits for, and says so when nothing arrives for a while.
 * A file that does not load is named in an error where the widget would be.
 *
 * Needs ort.wasm.min.js loaded first. For tests and benchmarks: window.vaeganLatent.widgets.
 */
(function () {
  "use strict";
  const script = document.currentScript;
  const base = new URL(".", script.src).href; // the folder this script was served from
  const SHOW = 192; // shown size of the original and the edited face, in CSS pixels
  const THUMB = 44; // shown size of a face in the picker
  const ERROR_STYLE = "border:2px solid var(--pst-color-danger,#c33);border-radius:4px;padding:0.6em 0.8em;color:var(--pst-color-danger,#c33)";  // the theme's, readable in light and dark

  const registry = (window.vaeganLatent = window.vaeganLatent || { widgets: [], progress: [] });

  // A file that did not load (or could not be read): its name and what went wrong.
  class LoadError extends Error {
    constructor(file, detail) {
      super(file + ": " + detail);
      this.file = file;
      this.detail = detail;
    }
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

  function errorText(err) {
    if (err instanceof LoadError)
      return `The in-browser widget could not load ${err.file} from ${base} (${err.detail}).`;
    return "The in-browser widget could not start: " + (err && err.message ? err.message : err);
  }

  function fail(root, err) {
    root.setAttribute("data-ready", "failed");
    root.textContent = "";
    el("p", { class: "vaegan-latent-error", role: "alert", style: ERROR_STYLE, text: errorText(err) }, root);
    console.error(err);
  }

  // What keeps every widget of the page from starting, said in place of each.
  const cannotStart = (err) => {
    for (const root of document.querySelectorAll("div.vaegan-latent:not([data-ready])")) fail(root, err);
  };
  if (typeof WebAssembly !== "object")
    return cannotStart(new Error("this browser runs no WebAssembly, which ONNX Runtime Web " +
      "needs to run the decoder"));
  // the runtime's script did not run (the page's own handler has usually said so already)
  if (typeof ort === "undefined")
    return cannotStart(new LoadError("ort.wasm.min.js", "ONNX Runtime Web did not load"));
  ort.env.wasm.wasmPaths = base; // ort-wasm-simd-threaded.mjs from here, not a CDN
  ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no threads anyway
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error"; // ORT's own warnings (e.g. about the CPU) would be console errors

  const MB = (n) => (n / 1e6).toFixed(1);
  // no byte for this long: the bar says the connection may have stalled (tests set it shorter)
  const STALLED_S = registry.stalledS || 20;

  // A progress bar and a line of text, in `parent`, for files whose sizes are known in advance.
  class Progress {
    constructor(parent, what) {
      this.box = el("div", { class: "vaegan-latent-loading", role: "status",
        style: "display:flex;align-items:center;gap:0.6em;font-size:0.9em;margin:0.4em 0" }, parent);
      this.bar = el("progress", { max: "1", value: "0", style: "width:12em" }, this.box);
      this.text = el("span", { text: what + "…" }, this.box);
      this.what = what;
      this.line = what + "…";
      this.waiting = [];
      this.last = performance.now();
      this.timer = setInterval(() => this.check(), 1000);
    }

    // `waiting`: the files not yet complete, named so that a stalled one is the one named; none:
    // every byte is here and the decoder is starting. A total of 0: sizes not known yet.
    update(loaded, total, waiting) {
      this.bar.max = Math.max(total, 1);
      this.bar.value = Math.min(loaded, total);
      this.waiting = waiting;
      const files = waiting.length ? ` (waiting for ${waiting.join(", ")})` : ", starting the decoder";
      const bytes = total ? `: ${MB(loaded)} of ${MB(total)} MB` : "…";
      this.line = `${this.what}${bytes}${files}`;
      this.text.textContent = this.line;
      this.last = performance.now();
    }

    check() {
      if (!this.box.isConnected) return this.remove();
      const idle = (performance.now() - this.last) / 1000;
      if (idle >= STALLED_S && this.waiting.length) // a slow start is not a stalled download
        this.text.textContent = `${this.line}: nothing has arrived for ${Math.round(idle)} s; ` +
          "the connection may have stalled (reloading the page tries again)";
    }

    remove() {
      clearInterval(this.timer);
      this.box.remove();
    }
  }

  // Fetches files, reporting the bytes to every Progress listening. Resolves {file: Uint8Array}.
  function fetchAll(names, sizes, listeners) {
    const total = names.reduce((t, n) => t + (sizes[n] || 0), 0);
    const waiting = new Set(names);
    let loaded = 0;
    const step = (file, k) => {
      loaded += k;
      registry.progress.push([loaded, total, file]);
      for (const p of listeners) p.update(loaded, Math.max(total, loaded), [...waiting]);
    };
    const one = (n) => fetchBytes(n, (k) => step(n, k)).then((bytes) => {
      waiting.delete(n);
      step(n, 0);
      return bytes;
    });
    return Promise.all(names.map(one)).then((parts) =>
      Object.fromEntries(names.map((n, i) => [n, parts[i]])));
  }

  async function fetchBytes(name, onBytes) {
    let r;
    try {
      r = await fetch(base + name);
    } catch (e) {
      throw new LoadError(name, "the request failed: " + e.message);
    }
    if (!r.ok) throw new LoadError(name, `HTTP ${r.status}${r.statusText ? " " + r.statusText : ""}`);
    if (!r.body) {
      const all = new Uint8Array(await r.arrayBuffer());
      onBytes(all.length);
      return all;
    }
    const reader = r.body.getReader();
    const chunks = [];
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
      onBytes(value.length);
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  const WASM = "ort-wasm-simd-threaded.wasm";
  const GLUE = "ort-wasm-simd-threaded.mjs"; // the .wasm's JavaScript, which ORT imports

  async function createSession(file, bytes) {
    try {
      return await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    } catch (e) {
      // ORT starts its WebAssembly backend with the first session: a runtime that will not
      // start (a damaged .wasm) is no fault of the decoder file
      if (/backend/i.test(e.message)) {
        const named = [GLUE, WASM].find((f) => e.message.includes(f)) || WASM;
        throw new LoadError(named, "ONNX Runtime could not start its WebAssembly backend: " + e.message);
      }
      throw new LoadError(file, "ONNX Runtime could not read it: " + e.message);
    }
  }

  // What all widgets of the page share: latent.json, the runtime, the faces, one session per model.
  const shared = {
    listeners: [],
    start: null,
    sessions: {},

    // latent.json, then the runtime, the first model's decoder and the faces, with progress.
    load() {
      if (!this.start) {
        this.start = (async () => {
          for (const p of this.listeners) p.update(0, 0, ["latent.json"]);
          const json = await fetchBytes("latent.json", () => {});
          let data;
          try {
            data = JSON.parse(new TextDecoder().decode(json));
          } catch (e) {
            throw new LoadError("latent.json", "not valid JSON: " + e.message);
          }
          const first = data.models[0];
          const wasm = WASM;
          const glue = GLUE; // fetched here only to name it if missing
          const files = await fetchAll([wasm, glue, first.decoder, data.sprite], data.files || {},
            this.listeners);
          ort.env.wasm.wasmBinary = files[wasm];
          let sprite;
          try {
            sprite = await createImageBitmap(new Blob([files[data.sprite]], { type: "image/png" }));
          } catch (e) {
            throw new LoadError(data.sprite, "not a PNG image");
          }
          this.sessions[first.key] = Promise.resolve(await createSession(first.decoder, files[first.decoder]));
          return { data, sprite };
        })();
      }
      return this.start;
    },

    // A model's session, its decoder fetched (with progress shown in `parent`) the first time.
    session(model, data, parent) {
      if (!this.sessions[model.key]) {
        const progress = new Progress(parent, `Loading the ${model.label} decoder`);
        this.sessions[model.key] = fetchAll([model.decoder], data.files || {}, [progress])
          .then((files) => createSession(model.decoder, files[model.decoder]))
          .finally(() => progress.remove());
        this.sessions[model.key].catch(() => delete this.sessions[model.key]); // try again later
      }
      return this.sessions[model.key];
    },
  };

  // A standard normal draw (Box-Muller), for "random face".
  function gaussian() {
    let u = 0;
    while (u === 0) u = Math.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
  }

  class Widget {
    constructor(root, data, sprite, session) {
      this.root = root;
      this.data = data;
      this.sprite = sprite;
      this.model = data.models[0];
      this.session = session;
      this.D = this.model.latent_dim;
      this.S = data.image_size;
      this.scales = new Float32Array(data.names.length);
      this.face = 0; // the chosen face, or -1 for a random sample z_p
      this.zp = null;
      this.base = Float32Array.from(this.model.faces[0]);
      this.busy = false;
      this.pending = false;
      this.originalStale = true;
      this.decodes = 0; // how many edited faces have been drawn (tests read it)
      this.lastMs = NaN;
      this.build();
      this.render();
    }

    build() {
      const S = this.S;
      const root = this.root;
      root.textContent = "";
      root.style.cssText = "display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start;margin:1em 0";

      // Left: the model switch, the original and the edited face, the buttons.
      const left = el("div", { style: `width:${2 * SHOW + 16}px;max-width:100%` }, root);
      const switcher = el("fieldset", { class: "vaegan-latent-models",
        style: "border:none;padding:0;margin:0 0 0.5em;display:flex;gap:1em;align-items:center;font-size:0.9em" }, left);
      // the theme styles a legend as a heading: this one is a label of the radio buttons' size
      el("legend", { text: "Decoder:", style: "float:left;padding:0;margin:0 0.2em 0 0;font-size:inherit;font-weight:inherit;line-height:inherit;width:auto" }, switcher);
      const group = "vaegan-latent-model-" + registry.widgets.length;
      this.radios = this.data.models.map((m, i) => {
        const label = el("label", { style: "display:flex;gap:0.3em;align-items:center;cursor:pointer" }, switcher);
        const r = el("input", { type: "radio", name: group, value: m.key }, label);
        r.checked = i === 0;
        el("span", { text: m.label }, label);
        r.addEventListener("change", () => r.checked && this.select(m.key));
        return r;
      });
      const pictures = el("div", { style: "display:flex;gap:0.8em" }, left);
      const picture = (label) => {
        // SHOW pixels wide, or less on a narrow screen: the two faces share the row
        const fig = el("figure", { style: `margin:0;padding:0;text-align:center;flex:0 1 ${SHOW}px;min-width:0` }, pictures);
        const c = el("canvas", { width: S, height: S, role: "img", "aria-label": label,
          style: "width:100%;height:auto;aspect-ratio:1;image-rendering:pixelated;border:1px solid #8884;display:block;box-sizing:border-box" }, fig);
        const cap = el("figcaption", { style: "font-size:0.85em;margin-top:0.2em;color:inherit" }, fig);
        const ctx = c.getContext("2d", { willReadFrequently: true });
        return { canvas: c, caption: cap, ctx, pixels: ctx.createImageData(S, S) };
      };
      this.original = picture("original face");
      this.edited = picture("edited face");
      this.original.canvas.classList.add("vaegan-latent-original");
      this.edited.canvas.classList.add("vaegan-latent-edited");
      this.canvas = this.edited.canvas;
      this.ctx = this.edited.ctx; // the edited face (tests read its pixels)
      this.octx = this.original.ctx;
      // not a live region: a screen reader would read the time of every decode as a slider moves
      this.status = el("div", { class: "vaegan-latent-time",
        style: "font-size:0.8em;opacity:0.75;margin-top:0.3em" }, left);
      this.loading = el("div", {}, left); // a decoder's progress bar, when the switch loads one
      const buttons = el("div", { style: "margin-top:0.4em;display:flex;gap:0.4em" }, left);
      this.randomButton = el("button", { type: "button", text: "Random face" }, buttons);
      this.resetButton = el("button", { type: "button", text: "Reset" }, buttons);
      this.randomButton.addEventListener("click", () => this.random());
      this.resetButton.addEventListener("click", () => this.reset());

      // Right: the face picker, the sliders with the authors' scale marked.
      const right = el("div", { style: "flex:1;min-width:18em" }, root);
      el("div", { text: "Face (held out; its code is μ(x) of the encoder):", style: "font-size:0.9em" }, right);
      const picker = el("div", { style: "display:flex;flex-wrap:wrap;gap:3px;margin:0.3em 0 0.8em" }, right);
      this.faceButtons = this.data.models[0].faces.map((_, i) => {
        const b = el("canvas", { width: S, height: S, role: "button", tabindex: "0",
          "aria-label": "face " + (i + 1), "aria-pressed": "false", class: "vaegan-latent-face",
          style: `width:${THUMB}px;height:${THUMB}px;image-rendering:pixelated;cursor:pointer;border:2px solid transparent` }, picker);
        b.getContext("2d").drawImage(this.sprite, i * S, 0, S, S, 0, 0, S, S);
        b.addEventListener("click", () => this.pick(i));
        b.addEventListener("keydown", (e) => {
          if (e.key !== "Enter" && e.key !== " ") return;
          e.preventDefault(); // a button's Space does not scroll the page
          this.pick(i);
        });
        return b;
      });

      const lo = this.data.scale_min, hi = this.data.scale_max, paper = this.data.paper_scale;
      const at = (s) => `calc(8px + ${(s - lo) / (hi - lo)} * (100% - 16px))`; // a range thumb's centre
      const list = "vaegan-latent-scales-" + registry.widgets.length;
      const ticks = el("datalist", { id: list }, right);
      for (const s of [lo, 0, paper, hi]) el("option", { value: String(s) }, ticks);
      // The ruler's columns match the slider rows' (same font size, so the same em widths).
      const ruler = el("div", { style: "display:flex;align-items:flex-end;gap:0.5em;font-size:0.9em" }, right);
      el("span", { text: "scale s", style: "width:9em;opacity:0.75;font-size:0.9em" }, ruler);
      const track = el("div", { style: "flex:1;position:relative;height:1.4em" }, ruler);
      el("span", { style: "width:3em" }, ruler);
      for (const s of [lo, 0, hi])
        el("span", { text: String(s), style: `position:absolute;bottom:0;left:${at(s)};transform:translateX(-50%);opacity:0.75;font-size:0.85em` }, track);
      el("span", { class: "vaegan-latent-paper-mark", text: `s = ${paper} ▾`,
        title: "the authors' code adds each vector once: s = 1",
        style: `position:absolute;bottom:0;left:${at(paper)};transform:translateX(-50%);font-weight:bold;white-space:nowrap;font-size:0.85em` }, track);
      this.sliders = this.data.names.map((name, k) => {
        const row = el("label", { style: "display:flex;align-items:center;gap:0.5em;font-size:0.9em" }, right);
        el("span", { text: this.data.labels[k], style: "width:9em" }, row);
        const s = el("input", { type: "range", min: lo, max: hi, step: "0.05", value: "0", list,
          "data-attribute": name, style: "flex:1;margin:0.3em 0" }, row);
        const v = el("span", { text: "0.00", style: "width:3em;text-align:right;font-variant-numeric:tabular-nums" }, row);
        s.addEventListener("input", () => {
          this.scales[k] = parseFloat(s.value);
          v.textContent = this.scales[k].toFixed(2);
          this.render();
        });
        return { input: s, value: v };
      });
      el("div", { text: `The authors' code adds each vector at s = ${paper} (marked); with every s at 0 the edited face is the model's reconstruction.`,
        style: "font-size:0.8em;opacity:0.75;margin-top:0.3em" }, right);
      this.pick(0, false);
    }

    pick(i, draw = true) {
      this.face = i;
      this.zp = null;
      this.base = Float32Array.from(this.model.faces[i]);
      this.originalStale = true;
      this.showPicked();
      if (draw) this.render();
    }

    random() {
      this.face = -1;
      this.zp = Float32Array.from({ length: this.D }, gaussian);
      this.base = Float32Array.from(this.zp);
      this.originalStale = true;
      this.showPicked();
      this.render();
    }

    // The chosen face's thumbnail is framed, and pressed for a screen reader (none for a sample).
    showPicked() {
      this.faceButtons.forEach((b, j) => {
        b.style.borderColor = j === this.face ? "#e66" : "transparent";
        b.setAttribute("aria-pressed", String(j === this.face));
      });
    }

    reset() {
      this.scales.fill(0);
      for (const s of this.sliders) {
        s.input.value = "0";
        s.value.textContent = "0.00";
      }
      this.render();
    }

    // Switch the decoder (and the vectors and codes) to another model; load it the first time.
    async select(key) {
      if (key === this.model.key) return;
      const model = this.data.models.find((m) => m.key === key);
      const previous = this.model;
      for (const r of this.radios) r.disabled = true;
      try {
        this.session = await shared.session(model, this.data, this.loading);
        this.model = model;
        this.D = model.latent_dim;
        this.base = Float32Array.from(this.zp || model.faces[this.face]);
        this.originalStale = this.zp !== null; // a sample is redrawn by the new decoder
        this.render();
      } catch (err) {
        this.status.textContent = "";
        el("span", { class: "vaegan-latent-error", role: "alert", style: ERROR_STYLE + ";display:inline-block",
          text: errorText(err) + ` Still showing the ${previous.label}.` }, this.status);
        console.error(err);
        for (const r of this.radios) r.checked = r.value === previous.key;
      } finally {
        for (const r of this.radios) r.disabled = false;
      }
    }

    code() {
      const z = Float32Array.from(this.base);
      this.model.vectors.forEach((v, k) => {
        const s = this.scales[k];
        if (s !== 0) for (let d = 0; d < this.D; d++) z[d] += s * v[d];
      });
      return z;
    }

    // Dec(z) => RGBA pixels of a picture (default: the edited face). Returns the milliseconds.
    async decode(z, picture = this.edited) {
      const t0 = performance.now();
      const out = await this.session.run({ z: new ort.Tensor("float32", z, [1, this.D]) });
      const x = out.image.data; // [1, 3, S, S] in [-1, 1]
      const n = this.S * this.S;
      const p = picture.pixels.data;
      for (let i = 0; i < n; i++) {
        p[4 * i] = (x[i] + 1) * 127.5;
        p[4 * i + 1] = (x[n + i] + 1) * 127.5;
        p[4 * i + 2] = (x[2 * n + i] + 1) * 127.5;
        p[4 * i + 3] = 255;
      }
      picture.ctx.putImageData(picture.pixels, 0, 0);
      return performance.now() - t0;
    }

    // The original: the chosen face as drawn, or the random sample Dec(z_p) by the current model.
    async drawOriginal() {
      const S = this.S;
      if (this.zp) {
        await this.decode(this.zp, this.original);
        this.original.caption.textContent = "random sample: Dec(z_p)";
      } else {
        this.original.ctx.drawImage(this.sprite, this.face * S, 0, S, S, 0, 0, S, S);
        this.original.caption.textContent = `original: face ${this.face + 1}`;
      }
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
          if (this.originalStale) {
            this.originalStale = false;
            await this.drawOriginal();
          }
          this.lastMs = await this.decode(this.code());
          this.decodes++;
          const from = this.zp ? "z_p" : "μ(x)";
          this.edited.caption.textContent = `edited: Dec(${from} + Σ s·v)`;
          this.status.textContent = `${this.model.label} decoder: decoded in ${this.lastMs.toFixed(1)} ms in your browser`;
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

  function load(root) {
    root.setAttribute("data-ready", "loading");
    root.textContent = "";
    const progress = new Progress(root, "Loading the in-browser decoder");
    shared.listeners.push(progress);
    shared
      .load()
      .then(async ({ data, sprite }) => {
        const session = await shared.sessions[data.models[0].key];
        progress.remove();
        const w = new Widget(root, data, sprite, session);
        registry.widgets.push(w);
        root.setAttribute("data-ready", "yes");
      })
      .catch((err) => {
        progress.remove();
        fail(root, err);
      });
  }

  // Each widget loads once the reader scrolls within a screen or two of it.
  function start() {
    for (const root of document.querySelectorAll("div.vaegan-latent:not([data-ready])")) {
      root.setAttribute("data-ready", "waiting");
      root.textContent = "";
      el("p", { class: "vaegan-latent-status", text: "The in-browser decoder loads when you " +
        "scroll here." }, root);
      if (!("IntersectionObserver" in window)) {
        load(root);
        continue;
      }
      const seen = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        seen.disconnect();
        load(root);
      }, { rootMargin: "1500px 0px" });
      seen.observe(root);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
