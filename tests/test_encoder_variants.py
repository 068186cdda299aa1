"""The finer-encoder variants (`Im2LatexConfig.stem_pool_stride`) with real parts: a tiny model of each variant
trained on TeX-rendered formulas reads them, its feature grid is the finer one, a reading does not depend on its
batch, it saves and loads with its variant, and its ONNX export reads the same tokens. The bundled weights load
into every variant."""

from __future__ import annotations

import pytest
import torch

from im2latex_hf import DEFAULT_MODEL, Im2LatexConfig, Im2LatexForConditionalGeneration, Im2LatexProcessor
from im2latex_hf.onnx.export import export_onnx
from im2latex_hf.onnx.runtime import OnnxIm2Latex
from im2latex_hf.preprocessing import pad_ink_maps
from im2latex_hf.rendering import render_formulas

from .conftest import TINY_MODEL_FORMULAS as FORMULAS
from .conftest import assert_features_do_not_depend_on_the_batch, train_tiny_model

MAX_NEW_TOKENS = 30
# stem max-pool stride → the feature stride (height, width) after ResNet layer3
VARIANTS = {"1x2": ([1, 2], (8, 16)), "1": (1, (8, 8))}


@pytest.fixture(scope="module")
def images():
    rendered = [result.image for result in render_formulas(FORMULAS, dpi=100)]
    assert all(image is not None for image in rendered)
    return rendered


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request, images):
    stem_pool_stride, feature_stride = VARIANTS[request.param]
    model, processor = train_tiny_model(FORMULAS, images, stem_pool_stride=stem_pool_stride)
    return model, processor, feature_stride


def read(model, processor, images, **settings) -> list[str]:
    with torch.inference_mode():
        return processor.batch_decode(
            model.generate(**processor(images=images), max_new_tokens=MAX_NEW_TOKENS, **settings)
        )


def test_a_variant_reads_its_training_formulas_greedy_and_with_beams(variant, images):
    model, processor, _ = variant
    assert read(model, processor, images) == FORMULAS
    assert read(model, processor, images, num_beams=3) == FORMULAS


def test_a_variant_has_the_finer_feature_grid(variant, images):
    model, processor, (stride_h, stride_w) = variant
    inputs = processor(images=images[:1])
    height, width = inputs["pixel_values"].shape[-2:]
    with torch.inference_mode():
        features = model.get_encoder()(inputs["pixel_values"], inputs["pixel_mask"]).last_hidden_state
    assert features.shape[1] == (height // stride_h) * (width // stride_w)


def test_a_variant_reads_an_image_alike_alone_and_in_a_batch(variant, images):
    model, processor, _ = variant
    assert_features_do_not_depend_on_the_batch(model, processor, images, atol=1e-5)
    assert read(model, processor, images) == [read(model, processor, [image])[0] for image in images]


def test_a_variant_saves_loads_and_exports_to_onnx_with_the_same_readings(variant, images, tmp_path):
    model, processor, _ = variant
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    loaded = Im2LatexForConditionalGeneration.from_pretrained(tmp_path / "model").eval()
    assert loaded.config.stem_pool_stride == model.config.stem_pool_stride
    assert read(loaded, Im2LatexProcessor.from_pretrained(tmp_path / "model"), images) == FORMULAS

    onnx_model = OnnxIm2Latex(export_onnx(model, processor, tmp_path / "onnx"))
    ink_maps = [processor.image_processor.ink_map(image) for image in images]
    with torch.inference_mode():
        pytorch = model.generate(**processor.image_processor.pad(ink_maps), max_new_tokens=MAX_NEW_TOKENS)
    onnx = onnx_model.generate(**pad_ink_maps(ink_maps), max_new_tokens=MAX_NEW_TOKENS)
    assert processor.batch_decode(onnx) == processor.batch_decode(pytorch) == FORMULAS


@pytest.mark.parametrize("stem_pool_stride", [2, [1, 2], 1])
def test_the_bundled_weights_load_into_every_variant(stem_pool_stride):
    model, info = Im2LatexForConditionalGeneration.from_pretrained(
        DEFAULT_MODEL, stem_pool_stride=stem_pool_stride, output_loading_info=True
    )
    assert not any(info.values()), info
    assert model.config.stem_pool_stride == stem_pool_stride


def test_a_stride_the_trunk_cannot_take_is_a_clear_error():
    with pytest.raises(ValueError, match="stem_pool_stride"):
        Im2LatexForConditionalGeneration(Im2LatexConfig(stem_pool_stride=4))
