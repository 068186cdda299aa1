"""The faithful im2latex look: a formula drawn the way im2latex-100k's images were made.

Measured against the real validate images (``scripts/compare_look.py --look im2latex``), the dataset's
images were made like this, and the look replays each step:

1. pdflatex on ``\\documentclass{article}`` at its default 10 pt, ``\\pagestyle{empty}``, **no package
   at all** (no amsmath, no amssymb: with amsfonts ``\\hbar`` is another glyph), the formula in
   ``\\begin{displaymath}...\\end{displaymath}``, TeX's error recovery included:
   ``\\operatorname { c o s }`` is an undefined command there, dropped, so the image shows an italic
   *cos*; ``\\hspace { 1 c m }`` is a 1 pt space followed by an italic *cm*; ``matrix`` and ``cases``
   run their cells together on one line; ``\\mathbb { R }`` would be an italic *R*.
2. The PDF page cropped to the display's box, without any border (``preview``'s ``tightpage`` with
   ``\\PreviewBorder`` 0): the page size sets Ghostscript's sub-pixel phase, and the page edges clip ink
   that sticks out of the box.
3. Ghostscript at 200 dpi with 4-bit text antialiasing; every pixel that is not white becomes black
   (the original dropped an alpha channel): the bold strokes of the dataset.
4. Crop to the ink, pad 8 px, paste top-left into the smallest of im2markup's buckets, LANCZOS ×2
   downsampling (`looks.im2latex_look` with no stroke change).

The recipe fixes size (10 pt), resolution (200 dpi) and display style; only the font can change.
This module holds the recipe (document and Ghostscript command); `tex` runs it in its sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence

DPI = 200
"""Ghostscript's resolution, before the ×2 downsampling: the dataset's."""
TEXT_ALPHA_BITS = 4
GRAPHICS_ALPHA_BITS = 4
"""Ghostscript's antialiasing (1, 2 or 4 bits); 4 and 4 match the dataset's ink boxes best."""

PREAMBLE = r"""\documentclass{article}
\pagestyle{empty}
\usepackage[active,tightpage,displaymath]{preview}
\setlength\PreviewBorder{0pt}
% What TeX's error recovery did to these amsmath commands without amsmath: drop them (their arguments stay).
\def\operatorname{}
\def\binom{}
"""
"""Everything before the renderer's markers and ``\\begin{document}``; font lines go after it."""

FORMULA = "\\imbegin{{{position}}}\\begin{{displaymath}}\n{formula}\n\\end{{displaymath}}\\imend{{{position}}}\n"
"""One formula of a batch, between the renderer's markers; each display is one page (``preview``)."""


def document(formulas: Sequence[str], setup: str, font_lines: str = "") -> str:
    """The LaTeX document rendering ``formulas`` one a page; ``setup`` defines the markers and begins the document."""
    body = "".join(FORMULA.format(position=position, formula=formula) for position, formula in enumerate(formulas))
    return PREAMBLE + (font_lines + "\n" if font_lines else "") + setup + body + "\\end{document}\n"


def ghostscript_command(pages: int, dpi: int = DPI) -> list[str]:
    """Ghostscript rasterizing pages 1..``pages`` of ``doc.pdf`` to ``page<N>.png`` (8-bit gray), locked down."""
    return [
        "gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOPROMPT", "-sDEVICE=pnggray", f"-r{dpi}",
        f"-dTextAlphaBits={TEXT_ALPHA_BITS}", f"-dGraphicsAlphaBits={GRAPHICS_ALPHA_BITS}",
        "-dFirstPage=1", f"-dLastPage={pages}", "-sOutputFile=page%d.png", "doc.pdf",
    ]  # fmt: skip


__all__ = ["DPI", "GRAPHICS_ALPHA_BITS", "PREAMBLE", "TEXT_ALPHA_BITS", "document", "ghostscript_command"]
