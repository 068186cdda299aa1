"""The image processor on real rendered formulas in every odd form an image can take."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps
from transformers import AutoImageProcessor
from transformers.models.auto import image_processing_auto as auto_image_logging
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as transformers_logging

from im2latex_hf import Im2LatexImageProcessor, InvalidImageError
from im2latex_hf.inference import parse_text_scales
from im2latex_hf.preprocessing import text_height
from im2latex_hf.rendering import render_formulas


@pytest.fixture(scope="module")
def formula() -> Image.Image:
    """x^2 + y^2 at im2latex's scale (about 100 dpi), with a white border."""
    image = render_formulas([r"x ^ { 2 } + y ^ { 2 } = \frac { 1 } { 2 }"], dpi=100)[0].image
    return ImageOps.expand(image, border=20, fill=255)


@pytest.fixture(scope="module")
def processor() -> Im2LatexImageProcessor:
    return Im2LatexImageProcessor()


def test_ink_map_is_cropped_padded_and_inverted(formula, processor):
    ink = processor.ink_map(formula)
    assert ink.dtype == np.float32 and ink.shape[0] % 16 == 0 and ink.shape[1] % 16 == 0
    assert ink.max() == pytest.approx(1.0) and ink.min() == 0.0
    margin = processor.margin
    assert not ink[:margin].any() and not ink[:, :margin].any()  # the border is gone, a fixed margin added
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert rows[0] == margin and cols[0] == margin


@pytest.mark.parametrize(
    "convert",
    [
        lambda im: im.convert("RGB"),
        lambda im: im.convert("CMYK"),
        lambda im: im.convert("P"),
        lambda im: im.convert("1", dither=Image.Dither.NONE),
        lambda im: Image.fromarray(np.asarray(im, dtype=np.uint16) * 257),  # 16-bit
        lambda im: Image.fromarray(np.asarray(im, dtype=np.float32) / 255.0),  # float 0..1
        lambda im: ImageOps.invert(im),  # light ink on a dark background
        lambda im: Image.merge("RGBA", [Image.new("L", im.size, 0)] * 3 + [ImageOps.invert(im)]),  # ink as alpha
        lambda im: np.asarray(im.convert("RGB")),  # numpy (H, W, 3)
    ],
    ids=["RGB", "CMYK", "palette", "1-bit", "16-bit", "float", "dark", "RGBA-alpha", "numpy"],
)
def test_odd_modes_give_the_same_ink_map(formula, processor, convert):
    reference = processor.ink_map(formula)
    ink = processor.ink_map(convert(formula))
    assert ink.shape == reference.shape
    # the same ink, up to anti-aliasing (which may also move the crop by a pixel)
    assert abs(int((ink > 0.5).sum()) - int((reference > 0.5).sum())) < 0.05 * (reference > 0.5).sum()


def test_large_text_is_scaled_to_the_training_size(formula, processor):
    reference = processor.ink_map(formula)
    big = formula.resize((formula.width * 4, formula.height * 4), Image.Resampling.BICUBIC)
    ink = processor.ink_map(big)
    assert abs(ink.shape[0] - reference.shape[0]) <= 16 and abs(ink.shape[1] - reference.shape[1]) <= 32


def test_a_text_scale_sets_the_text_height_whatever_the_tolerance(formula, processor):
    """`ink_map(image, text_scale)` rescales even within the tolerance (to read at several scales); None does not."""
    target = processor.target_text_height
    assert text_height(processor.ink_map(formula, 1.0) > 0.5) == pytest.approx(target, abs=1)
    for scale in (0.8, 1.5):
        assert text_height(processor.ink_map(formula, scale) > 0.5) == pytest.approx(
            target * scale, rel=0.15
        )  # clusters merge or split a little
    natural = text_height(processor.ink_map(formula) > 0.5)  # within scale_tolerance of the target: left as it is
    assert 1 / processor.scale_tolerance < natural / target < 0.9


def test_text_scales_of_the_command_line():
    assert parse_text_scales("auto,1.0,1.3") == (None, 1.0, 1.3)
    for bad in ("big", "1.0,,2", "0.1", "auto,9"):
        with pytest.raises(ValueError, match="text scales"):
            parse_text_scales(bad)


def test_formula_longer_than_the_limit_is_shrunk_to_fit(formula, processor):
    wide = Image.new("L", (formula.width * 30, formula.height), 255)
    for i in range(30):
        wide.paste(formula, (i * formula.width, 0))
    ink = processor.ink_map(wide)
    assert ink.shape[1] <= processor.max_width and ink.shape[0] <= processor.max_height


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (Image.new("L", (300, 80), 255), "blank"),
        (Image.new("L", (300, 80), 40), "blank"),
        (Image.new("L", (1, 1), 0), "blank"),
        (Image.new("L", (0, 5)), "empty"),
        (Image.new("L", (10_000, 6_000), 255), "too large"),
    ],
    ids=["white", "gray", "1x1", "zero-width", "huge"],
)
def test_bad_images_raise_a_clear_error(processor, image, message):
    with pytest.raises(InvalidImageError, match=message):
        processor.ink_map(image)


def test_unreadable_files_raise_a_clear_error(processor, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    for name, message in [("notes.png", "not a readable image"), ("empty.png", "not a readable image"),
                          ("missing.png", "no such file")]:  # fmt: skip
        with pytest.raises(InvalidImageError, match=message):
            processor.ink_map(tmp_path / name)


def test_batch_padding_and_mask(formula, processor):
    small = formula.crop((0, 0, formula.width // 2, formula.height))
    batch = processor([formula, small])
    single = processor([small])
    height, width = single["pixel_values"].shape[-2:]
    assert batch["pixel_values"].shape[0] == 2
    assert batch["pixel_mask"][1].sum() == height * width
    assert (batch["pixel_values"][1, 0, :height, :width] == single["pixel_values"][0, 0]).all()
    assert not batch["pixel_values"][1, 0, :, width:].any()


def test_auto_image_processor_loads_it_without_a_backend_warning(processor, tmp_path):
    """Whichever backend transformers prefers (torchvision when installed), our one class loads, silently."""
    processor.save_pretrained(tmp_path)
    transformers_logging.warning_once.cache_clear()  # so a warning another test already drew is drawn again
    for backend in (None, "torchvision", "pil"):
        with CaptureLogger(auto_image_logging.logger) as captured:
            loaded = AutoImageProcessor.from_pretrained(tmp_path, backend=backend)
        assert type(loaded) is Im2LatexImageProcessor
        assert captured.out == ""
