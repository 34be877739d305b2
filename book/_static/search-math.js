/* The search page quotes each result's text, where its equations are still LaTeX (MathJax
   typesets them only on the page itself): "\(\mathcal{L}_\text{prior}\)". The quotes write them
   as plain text instead, as the code names them: L_prior, Dis_l, gamma, sigma_E, X̃ ← Dec(Z).
   Greek letters keep their names, so a search for "gamma" finds its quote. Only the page's
   equations (span.math, div.math) are rewritten: code listings stay as they are. */
(() => {
  const SYMBOLS = {
    leftarrow: "←", gets: "←", rightarrow: "→", to: "→", mid: "|", vert: "|", lvert: "|",
    rvert: "|", Vert: "‖", lVert: "‖", rVert: "‖", cdot: "·", odot: "⊙", times: "×",
    sim: "~", approx: "≈", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠", ll: "≪",
    gg: "≫", pm: "±", infty: "∞", partial: "∂", nabla: "∇", in: "∈", sum: "Σ", prod: "Π",
    dots: "…", ldots: "…", cdots: "…", varepsilon: "epsilon", quad: " ", qquad: " ",
  };
  // sizes and layout: nothing to read
  const DROPPED = new Set(["left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr",
    "Bigl", "Bigr", "displaystyle", "textstyle", "limits", "nonumber", "notag"]);
  const ACCENTS = { tilde: "\u0303", hat: "\u0302", bar: "\u0304" };
  const WRAPPERS = /\\(?:mathcal|mathrm|mathbf|mathbb|mathit|mathsf|text|textrm|operatorname|boldsymbol)\{([^{}]*)\}/g;

  const plain = (tex) => {
    let s = tex.replace(/\\(?:tag|label)\{[^{}]*\}|\\(?:begin|end)\{[^{}]*\}/g, " ");
    let was;
    do {  // innermost first: \mathrm{VAE}_{\mathrm{Dis}_l}, \frac{1}{2\sigma^2}
      was = s;
      s = s.replace(WRAPPERS, "$1")
           .replace(/([_^])\{([^{}]*)\}/g, "$1$2")  // x_{\theta_e}: x_\theta_e
           .replace(/\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}/g, "($1)/($2)")
           .replace(/\\overset\{([^{}]*)\}\{([^{}]*)\}/g, "$1$2")  // +←: add to
           .replace(/\\sqrt\{([^{}]*)\}/g, "sqrt($1)")
           .replace(/\\(tilde|hat|bar)\{([^{}]*)\}/g, (m, a, x) => x + ACCENTS[a]);
    } while (s !== was);
    return s.replace(/\\[dt]?frac\s*(\d)(\d)/g, "$1/$2")  // \tfrac12
            .replace(/\\(tilde|hat|bar)\s*([A-Za-z])/g, (m, a, x) => x + ACCENTS[a])
            .replace(/\\([A-Za-z]+)/g, (m, name, at, all) => {
              if (DROPPED.has(name)) return "";
              const word = SYMBOLS[name] ?? name;  // \gamma, \tanh: their names
              return /^\w/.test(word) && /[A-Za-z0-9]/.test(all[at - 1] ?? "") ? " " + word : word;
            })
            .replace(/\\\\|&|\\[,;:! ]/g, " ")
            .replace(/[{}]/g, "")
            .replace(/\s+/g, " ")
            .trim();
  };
  const MATH = /\\\(([\s\S]*?)\\\)|\\\[([\s\S]*?)\\\]/g;

  document.addEventListener("DOMContentLoaded", () => {
    // searchtools.js's Search (a global const, not a property of window) is on the search page
    if (typeof Search === "undefined" || !Search.htmlToText) return;
    const htmlToText = Search.htmlToText;
    Search.htmlToText = (html, anchor) => {
      const page = new DOMParser().parseFromString(html, "text/html");
      for (const math of page.querySelectorAll("span.math, div.math")) {
        math.textContent = math.textContent.replace(MATH, (m, a, b) => ` ${plain(a ?? b)} `);
      }
      return htmlToText(page.documentElement.outerHTML, anchor);
    };
  });
})();
