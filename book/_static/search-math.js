/* The search page quotes each result's text, where its equations are still LaTeX (MathJax
   typesets them only on the page itself): "\(\mathcal{L}_\text{prior}\)". The quotes write them
   as plain text instead, as the code names them: L_prior, Dis_l, γ, X̃ ← Dec(Z). */
(() => {
  const SYMBOLS = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", theta: "θ", lambda: "λ",
    mu: "μ", xi: "ξ", pi: "π", sigma: "σ", phi: "φ", Sigma: "Σ", sum: "Σ", prod: "Π",
    leftarrow: "←", rightarrow: "→", to: "→", gets: "←", mid: "|", Vert: "‖", cdot: "·",
    times: "×", sim: "~", approx: "≈", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠",
    infty: "∞", partial: "∂", nabla: "∇", in: "∈", log: "log", exp: "exp", min: "min",
    max: "max", quad: " ", qquad: " ",
  };
  const ACCENTS = { tilde: "\u0303", hat: "\u0302", bar: "\u0304" };
  const WRAPPERS = /\\(?:mathcal|mathrm|mathbf|mathbb|mathit|text|textrm|operatorname|boldsymbol)\{([^{}]*)\}/g;

  const plain = (tex) => {
    let s = tex, was;
    do {  // innermost first: \mathrm{VAE}_{\mathrm{Dis}_l}
      was = s;
      s = s.replace(WRAPPERS, "$1")
           .replace(/\\(tilde|hat|bar)\{([^{}]*)\}/g, (m, a, x) => x + ACCENTS[a]);
    } while (s !== was);
    return s.replace(/\\([A-Za-z]+)/g, (m, name) => SYMBOLS[name] ?? "")
            .replace(/\\[,;:! ]/g, " ")
            .replace(/[{}]/g, "")
            .replace(/\s+/g, " ")
            .trim();
  };
  const MATH = /\\\(([\s\S]*?)\\\)|\\\[([\s\S]*?)\\\]|\$\$([\s\S]*?)\$\$/g;
  const readable = (text) => text.replace(MATH, (m, a, b, c) => plain(a ?? b ?? c));

  document.addEventListener("DOMContentLoaded", () => {
    // searchtools.js's Search (a global const, not a property of window) is on the search page
    if (typeof Search === "undefined" || !Search.htmlToText) return;
    const htmlToText = Search.htmlToText;
    Search.htmlToText = (html, anchor) => readable(htmlToText(html, anchor));
  });
})();
