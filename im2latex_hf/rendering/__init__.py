"""Rendering: LaTeX to images with TeX Live (`tex`), in the looks the model reads (`looks`)."""

from .looks import FAITHFUL_LOOK, FAST_LOOK, IM2LATEX_DPI, LOOKS, im2latex_look
from .tex import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_TIMEOUT,
    FONT_SIZES,
    FONTS,
    RenderResult,
    RenderSummary,
    iter_render,
    render_file,
    render_formulas,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_TIMEOUT",
    "FAITHFUL_LOOK",
    "FAST_LOOK",
    "FONTS",
    "FONT_SIZES",
    "IM2LATEX_DPI",
    "LOOKS",
    "RenderResult",
    "RenderSummary",
    "im2latex_look",
    "iter_render",
    "render_file",
    "render_formulas",
]
