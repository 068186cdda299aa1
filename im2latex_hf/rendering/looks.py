"""Looks: post-processing that makes rendered formulas look like a dataset's images.

im2latex-100k's images (im2markup's pipeline) were made like this: pdflatex, the PDF rasterized at
200 dpi with an alpha channel that was then dropped (so every partly covered pixel became black:
bold strokes), grayscale, crop to the ink, 8 px of padding, pasted top-left on white into the
smallest of a list of bucket sizes, then downsampled ×2 with LANCZOS. `im2latex_look` replays those
steps on a render. The ``im2latex`` look renders like the dataset did (pdflatex, Ghostscript: see
`faithful`) and then applies it with no stroke change; the faster ``im2latex-fast`` look applies it to
an antialiased ``dvipng`` render, with `IM2LATEX_DPI` and `IM2LATEX_STROKE` calibrated so that glyph
size and stroke weight match the real images (`scripts/compare_look.py` measures both looks).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

FAITHFUL_LOOK = "im2latex"
FAST_LOOK = "im2latex-fast"
LOOKS = ("plain", FAITHFUL_LOOK, FAST_LOOK)
"""``plain``: dvipng's antialiased image cropped to the ink; ``im2latex``: im2latex-100k's own recipe
(pdflatex + Ghostscript, `faithful`), pixel for pixel close to the dataset's images; ``im2latex-fast``:
`im2latex_look` of the dvipng image, several times faster (for corpus building)."""

IM2LATEX_DPI = 171
"""Render resolution (before the ×2 downsampling) at which dvipng's glyphs match im2latex-100k's in size."""
IM2LATEX_STROKE = 1
"""Pixels of horizontal ink growth (at render resolution) that bring dvipng's strokes to im2latex-100k's weight."""

IM2LATEX_PADDING = 8
IM2LATEX_BUCKETS = (
    (240, 100), (320, 80), (400, 80), (400, 100), (480, 80), (480, 100), (560, 80), (560, 100), (640, 80),
    (640, 100), (720, 80), (720, 100), (720, 120), (720, 200), (800, 100), (800, 320), (1000, 200),
    (1000, 400), (1200, 200), (1600, 200), (1600, 1600),
)  # fmt: skip
"""im2markup's (width, height) buckets, tried in this order; the first one the padded image fits is used."""


def im2latex_look(image: Image.Image, stroke: int = IM2LATEX_STROKE) -> Image.Image:
    """An antialiased render (black on white, any size) → an image in im2latex-100k's look.

    Partly covered pixels become black, strokes grow ``stroke`` pixels wider (negative: thinner), then
    crop, pad, bucket and downsample ×2 as im2markup did. A blank image raises ``ValueError``.
    """
    ink = crop_to_ink(_widen(np.pad(np.asarray(image.convert("L")) < 255, abs(stroke)), stroke))
    height, width = ink.shape[0] + 2 * IM2LATEX_PADDING, ink.shape[1] + 2 * IM2LATEX_PADDING
    bucket = next(((w, h) for w, h in IM2LATEX_BUCKETS if width <= w and height <= h), None)
    canvas_width, canvas_height = bucket or (width + width % 2, height + height % 2)
    canvas = np.full((canvas_height, canvas_width), 255, dtype=np.uint8)
    canvas[IM2LATEX_PADDING : IM2LATEX_PADDING + ink.shape[0], IM2LATEX_PADDING : IM2LATEX_PADDING + ink.shape[1]] = (
        np.where(ink, 0, 255)
    )
    return Image.fromarray(canvas).resize((canvas_width // 2, canvas_height // 2), Image.Resampling.LANCZOS)


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """A boolean ink mask cropped to its ink; ``ValueError`` if it holds none."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise ValueError("the image has no ink")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def ink_box(image: Image.Image, threshold: int = 128) -> np.ndarray:
    """The pixels darker than ``threshold`` as a boolean mask, cropped to them (how looks are compared)."""
    return crop_to_ink(np.asarray(image.convert("L")) < threshold)


def _widen(ink: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate (``pixels`` > 0) or erode (< 0) a boolean ink mask horizontally by ``|pixels|`` pixels."""
    for _ in range(abs(pixels)):
        inner = ink[:, 1:] | ink[:, :-1] if pixels > 0 else ink[:, 1:] & ink[:, :-1]
        ink = np.pad(inner, ((0, 0), (0, 1)))
    return ink


__all__ = [
    "FAITHFUL_LOOK",
    "FAST_LOOK",
    "LOOKS",
    "IM2LATEX_DPI",
    "IM2LATEX_STROKE",
    "IM2LATEX_BUCKETS",
    "crop_to_ink",
    "im2latex_look",
    "ink_box",
]
