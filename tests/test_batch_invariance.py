"""A reading does not depend on its batch: images of very different sizes read alone and together give the
same encoder features in their valid cells and the same tokens, with PyTorch and ONNX Runtime, for the bundled
model and a tiny one. Batch padding must stay zero through every trunk layer (BatchNorm shifts, and the
stem's max-pool, whose window at an image's edge reads valid cells)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from im2latex_hf import DEFAULT_MODEL, Im2LatexForConditionalGeneration, Im2LatexProcessor
from im2latex_hf.onnx import onnx_model_folder
from im2latex_hf.onnx.runtime import OnnxIm2Latex
from im2latex_hf.preprocessing import pad_ink_maps
from im2latex_hf.rendering import render_formulas

from .conftest import assert_features_do_not_depend_on_the_batch, train_tiny_model

FORMULAS = [
    r"E = m c ^ { 2 }",  # short
    r"\int _ { - \infty } ^ { \infty } e ^ { - x ^ { 2 } } d x = \sqrt { \pi } + \sum _ { n = 1 } ^ { N } "
    r"\frac { 1 } { n ^ { 2 } } - \alpha \beta \gamma",  # long and flat
    r"\left( \begin{array} { c } a \\ b \\ c \\ d \end{array} \right)",  # tall and narrow
]
TOLERANCE = 1e-5
MAX_NEW_TOKENS = 60


@pytest.fixture(scope="module")
def images():
    rendered = [result.image for result in render_formulas(FORMULAS, dpi=100)]
    assert all(image is not None for image in rendered)
    return rendered


@pytest.fixture(scope="module", params=["tiny", "bundled"])
def model_folder(request, images, tmp_path_factory) -> str:
    if request.param == "bundled":
        return DEFAULT_MODEL
    model, processor = train_tiny_model(FORMULAS, images)
    folder = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IM2LATEX_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def test_image_sizes_differ(images):
    widths, heights = zip(*(image.size for image in images))
    assert max(widths) > 4 * min(widths) and max(heights) > 2 * min(heights)


def test_pytorch_features_and_tokens_do_not_depend_on_the_batch(model_folder, images):
    model = Im2LatexForConditionalGeneration.from_pretrained(model_folder).eval()
    processor = Im2LatexProcessor.from_pretrained(model_folder)
    assert_features_do_not_depend_on_the_batch(model, processor, images, atol=TOLERANCE)
    together = processor(images=images)
    with torch.inference_mode():
        for num_beams in (1, 4):
            settings = {"num_beams": num_beams, "max_new_tokens": MAX_NEW_TOKENS}
            read_together = processor.batch_decode(model.generate(**together, **settings))
            read_alone = [
                processor.batch_decode(model.generate(**processor(images=[im]), **settings))[0] for im in images
            ]
            assert read_together == read_alone, num_beams


def test_onnx_features_and_tokens_do_not_depend_on_the_batch(model_folder, images, onnx_cache):
    model = OnnxIm2Latex(onnx_model_folder(model_folder))
    processor = Im2LatexProcessor.from_pretrained(model_folder)
    ink_maps = [processor.image_processor.ink_map(image) for image in images]
    together = pad_ink_maps(ink_maps)
    mask, *cross = model.encoder.run(None, together)
    for i, ink_map in enumerate(ink_maps):
        alone_mask, *alone_cross = model.encoder.run(None, pad_ink_maps([ink_map]))
        valid = mask[i].astype(bool)
        assert valid.sum() == alone_mask[0].astype(bool).sum()
        for batched_values, values in zip(cross, alone_cross):  # every layer's cross-attention keys and values
            np.testing.assert_allclose(batched_values[i][:, valid], values[0], atol=TOLERANCE, rtol=0)
    for num_beams in (1, 4):
        settings = {"num_beams": num_beams, "max_new_tokens": MAX_NEW_TOKENS}
        read_together = processor.batch_decode(model.generate(**together, **settings))
        read_alone = [processor.batch_decode(model.generate(**pad_ink_maps([ink]), **settings))[0] for ink in ink_maps]
        assert read_together == read_alone, num_beams
