"""Tests of im2latex_hf.training.augmentation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from PIL import Image, ImageDraw

from im2latex_hf.training import augmentation
from im2latex_hf.training.augmentation import AugmentationConfig, FormulaAugmenter

PROBABILITIES = [f.name for f in dataclasses.fields(AugmentationConfig) if f.name.endswith("_p")]


@pytest.fixture
def formula_image() -> Image.Image:
    image = Image.new("L", (160, 40), 255)
    draw = ImageDraw.Draw(image)
    draw.text((6, 12), "x^2 + y = 1", fill=0)
    draw.line((6, 30, 90, 30), fill=0, width=2)
    return image


def test_output_is_legible_grayscale(formula_image) -> None:
    augmenter = FormulaAugmenter(seed=0)
    for _ in range(30):
        out = augmenter(formula_image)
        pixels = np.asarray(out)
        assert out.mode == "L"
        assert 0.5 * formula_image.width <= out.width <= 2 * formula_image.width
        assert 0.3 * formula_image.height <= out.height <= 3 * formula_image.height
        assert np.median(pixels) > 150, "background stays light"
        assert pixels.min() < 110, "ink stays dark"


def test_same_seed_same_outputs(formula_image) -> None:
    first, second = FormulaAugmenter(seed=42), FormulaAugmenter(seed=42)
    for _ in range(10):
        assert first(formula_image).tobytes() == second(formula_image).tobytes()
    other = FormulaAugmenter(seed=43)
    assert any(first(formula_image).tobytes() != other(formula_image).tobytes() for _ in range(10))


def test_all_probabilities_zero_is_identity(formula_image) -> None:
    out = FormulaAugmenter(AugmentationConfig.disabled(), seed=0)(formula_image)
    assert out is not formula_image
    assert out.mode == "L" and out.size == formula_image.size
    assert out.tobytes() == formula_image.tobytes()


@pytest.mark.parametrize("step", PROBABILITIES)
def test_each_step_alone_changes_the_image(formula_image, step) -> None:
    config = dataclasses.replace(AugmentationConfig.disabled(), **{step: 1.0})
    augmenter = FormulaAugmenter(config, seed=1)
    outputs = [augmenter(formula_image) for _ in range(3)]
    assert all(out.mode == "L" for out in outputs)
    assert any(out.tobytes() != formula_image.tobytes() for out in outputs)


def test_rgb_input_becomes_grayscale(formula_image) -> None:
    out = FormulaAugmenter(seed=0)(formula_image.convert("RGB"))
    assert out.mode == "L"


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="blur_p"):
        AugmentationConfig(blur_p=1.5)
    with pytest.raises(ValueError, match="scale_range"):
        AugmentationConfig(scale_range=(1.2, 0.8))


def test_copy_in_another_process_reseeds(formula_image, monkeypatch) -> None:
    parent = [FormulaAugmenter(seed=5)(formula_image).tobytes() for _ in range(5)]
    child = FormulaAugmenter(seed=5)
    monkeypatch.setattr(augmentation.os, "getpid", lambda: 999_999_999)  # as if unpickled/forked into a worker
    assert [child(formula_image).tobytes() for _ in range(5)] != parent


def test_set_transform_on_a_dataset(formula_image) -> None:
    features = Features({"image": ImageFeature(), "formula": Value("string")})
    dataset = Dataset.from_dict({"image": [formula_image] * 4, "formula": ["a", "b", "c", "d"]}, features=features)
    augmenter = FormulaAugmenter(seed=0)
    dataset.set_transform(augmenter.augment_batch)
    batch = dataset[:4]
    assert batch["formula"] == ["a", "b", "c", "d"]
    assert all(isinstance(image, Image.Image) and image.mode == "L" for image in batch["image"])
    assert dataset[0]["formula"] == "a"
    transformed = dataset.with_transform(FormulaAugmenter(AugmentationConfig.disabled()).augment_batch)
    assert transformed[1]["image"].tobytes() == formula_image.tobytes()
