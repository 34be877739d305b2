"""The book's glue: what the chapters need beyond the paper's code. Nothing below imports it.

    runs.py         run folders, load-or-train, held-out faces, the "Running this chapter" box,
                    the text's claims held to the results (check_claim)
    tables.py       Markdown tables (chapter 7's Table 1, the speed table of "Making it fast")
    plotting.py     image grids and curves with matplotlib
    live.py         redraw samples and curves while a run trains (chapter 4)
    widgets.py      the ipywidgets latent-arithmetic widget (chapter 5, with a kernel)
    web.py          the same widget in the static book: ONNX decoder, assets (chapter 5)
    experiments.py  the paper's experiments at a preset's size (chapter 6)
    toy.py          the AVAE paper's 2D toy (chapter 7)
    showcase.py     the shipped VAE and VAE/GAN side by side (chapter 4, tools/make_figures.py)
    source.py       show the package's own source in a chapter
    diagrams/       the model diagrams (SVG), shown as a cell's output: diagram("vaegan")
"""

from .plotting import use_book_style

use_book_style()  # every chapter imports the book's glue: one style for all its figures
