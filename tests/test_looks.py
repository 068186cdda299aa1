"""Tests of im2latex_hf.rendering.looks: the im2latex-100k look replayed on real dvipng renders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from im2latex_hf.rendering import render_formulas
from im2latex_hf.rendering.looks import IM2LATEX_BUCKETS, IM2LATEX_DPI, im2latex_look, ink_box

pytestmark = pytest.mark.skipif(
    shutil.which("latex") is None or shutil.which("dvipng") is None, reason="needs latex and dvipng (TeX Live)"
)

FORMULA = r"\int _ { 0 } ^ { 1 } \frac { d t } { 1 + t ^ { 3 } } = \lambda"


@pytest.fixture(scope="module")
def plain() -> Image.Image:
    [result] = render_formulas([FORMULA], dpi=IM2LATEX_DPI)
    assert result.image is not None, result.error
    return result.image


def test_look_is_a_half_size_bucket_with_the_ink_top_left(plain: Image.Image) -> None:
    image = im2latex_look(plain)
    assert image.mode == "L"
    assert (image.width * 2, image.height * 2) in IM2LATEX_BUCKETS
    pixels = np.asarray(image)
    dark = pixels < 128  # LANCZOS rings faintly a few pixels beyond the ink
    rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
    assert 3 <= rows[0] <= 4 and 3 <= cols[0] <= 4  # 8 px of padding, halved
    assert rows[-1] < image.height - 3 and cols[-1] < image.width - 3
    assert pixels.min() == 0 and pixels.max() == 255


def test_partly_covered_pixels_become_black_and_stroke_sets_the_weight(plain: Image.Image) -> None:
    antialiased = np.asarray(plain)
    assert ((antialiased > 0) & (antialiased < 255)).mean() > 0.05  # dvipng's gray edges
    shares = [ink_box(im2latex_look(plain, stroke=stroke)).mean() for stroke in (-1, 0, 1, 2)]
    assert shares == sorted(shares) and shares[0] < 0.8 * shares[-1]
    plain_half = plain.resize((plain.width // 2, plain.height // 2), Image.Resampling.LANCZOS)
    assert ink_box(im2latex_look(plain, stroke=0)).mean() > ink_box(plain_half).mean()


def test_renderer_look_option_matches_the_function(plain: Image.Image) -> None:
    [result] = render_formulas([FORMULA], dpi=IM2LATEX_DPI, look="im2latex-fast")
    assert np.array_equal(np.asarray(result.image), np.asarray(im2latex_look(plain)))
    with pytest.raises(ValueError, match="unknown look"):
        render_formulas([FORMULA], look="glossy")


def test_formula_larger_than_every_bucket_keeps_its_size() -> None:
    wide = Image.new("L", (1700, 30), 255)
    wide.paste(0, (0, 10, 1700, 14))
    image = im2latex_look(wide, stroke=0)
    assert image.size == ((1700 + 16) // 2, (4 + 16) // 2)


def test_blank_image_is_refused() -> None:
    with pytest.raises(ValueError, match="no ink"):
        im2latex_look(Image.new("L", (40, 20), 255))
