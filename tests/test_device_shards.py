"""Tests of scripts/build_device_shards.py: the small training images that travel to a GPU machine."""

from __future__ import annotations

import io
import runpy
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from im2latex_hf.data.corpus import FEATURES as CORPUS_FEATURES
from im2latex_hf.image_processing_im2latex import Im2LatexImageProcessor
from im2latex_hf.training import DataSource

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_device_shards.py"
# Read as a file, not imported from scripts/ on sys.path, where scripts/evaluate.py would shadow `evaluate`.
_script = runpy.run_path(str(SCRIPT))
GRAY_LEVELS, compact_image = _script["GRAY_LEVELS"], _script["compact_image"]


def formula_png(text: str) -> bytes:
    """A gray, anti-aliased image of ``text``: black strokes blurred on white, as rendered formulas are."""
    image = Image.new("L", (24 + 9 * len(text), 40), 255)
    ImageDraw.Draw(image).text((12, 12), text, fill=0, font_size=16)
    buffer = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(0.7)).save(buffer, "PNG")
    return buffer.getvalue()


def rows(formulas: list[str]) -> dict:
    return {"image": [{"bytes": formula_png(f), "path": None} for f in formulas], "formula": formulas}


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny im2latex-100k DatasetDict and a tiny rendered corpus folder."""
    features = datasets.Features({"image": datasets.Image(), "formula": datasets.Value("string")})
    real = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows(["x + 1", "a ^ { 2 }"]), features=features),
            "validation": datasets.Dataset.from_dict(rows(["b - c", "\\alpha", "y = 3"]), features=features),
        }
    )
    real.save_to_disk(str(tmp_path / "real"))
    corpus_formulas = [f"z _ {{ {n} }}" for n in range(40)]
    corpus = datasets.Dataset.from_dict(
        {
            **rows(corpus_formulas),
            "source": ["generated"] * 40,
            "font": ["cm"] * 40,
            "font_size": [12] * 40,
            "dpi": [170] * 40,
            "display": [True] * 40,
            "look": ["im2latex"] * 40,
            "stroke": [1] * 40,
        },
        features=CORPUS_FEATURES,
    )
    (tmp_path / "corpus").mkdir()
    corpus.to_parquet(str(tmp_path / "corpus" / "shard-00000.parquet"))
    return tmp_path / "real", tmp_path / "corpus"


def test_compact_image_keeps_what_the_model_sees() -> None:
    original = formula_png("\\frac{a}{b} + x^2")
    compact = compact_image(original)
    decoded = np.asarray(Image.open(io.BytesIO(compact)).convert("L"))
    assert len(np.unique(decoded)) <= GRAY_LEVELS
    assert len(compact) < len(original)
    gray = np.asarray(Image.open(io.BytesIO(original)))
    assert np.abs(decoded.astype(int) - gray).max() <= 255 // (GRAY_LEVELS - 1) // 2 + 1
    processor = Im2LatexImageProcessor()
    before = processor.ink_map(Image.open(io.BytesIO(original)))
    after = processor.ink_map(Image.open(io.BytesIO(compact)))
    assert before.shape == after.shape
    assert np.abs(before - after).mean() < 0.02


def test_build_keeps_held_out_rows_out_and_spends_the_budget(sources, tmp_path: Path) -> None:
    real, corpus = sources
    output = tmp_path / "device"
    mean_kb = np.mean([len(compact_image(formula_png(f"z _ {{ {n} }}"))) for n in range(40)]) / 1024
    real_kb = sum(len(compact_image(formula_png(f))) for f in ["x + 1", "a ^ { 2 }"]) / 1024
    budget_mb = (real_kb + 10.5 * mean_kb) / 1024  # room for the real rows and about 10 rendered ones
    arguments = f"--real {real} --corpus {corpus} --output-dir {output} --max-mb {budget_mb} --eval-rows 2"
    subprocess.run([sys.executable, str(SCRIPT), *arguments.split()], check=True, cwd=tmp_path)
    train = DataSource(str(output / "train")).load()  # as scripts/train.py loads it
    evaluation = DataSource(str(output / "eval")).load()
    formulas = train["formula"]
    # Validation has fewer rows than the 1,000 held out: all of it is held out, none of it trained on.
    assert {"x + 1", "a ^ { 2 }"} <= set(formulas) and not {"b - c", "\\alpha", "y = 3"} & set(formulas)
    assert 8 <= len(formulas) - 2 <= 12, "about the rendered rows the budget has room for"
    assert len(set(formulas)) == len(formulas)
    assert evaluation["formula"] == ["b - c", "\\alpha"]
    image = train[0]["image"]
    assert isinstance(image, Image.Image) and len(np.unique(np.asarray(image.convert("L")))) <= GRAY_LEVELS
    held_out_image = datasets.load_from_disk(str(real))["validation"][0]["image"]
    assert np.array_equal(np.asarray(evaluation[0]["image"]), np.asarray(held_out_image)), "eval images unchanged"
