"""Render verification with real TeX: correct, wrong, non-compiling and hostile LaTeX; the reader, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from im2latex_hf import InvalidImageError
from im2latex_hf.inference import FormulaReader
from im2latex_hf.metrics.verification import compare, ink_levels, is_im2latex_look, render_match, verify
from im2latex_hf.rendering import render_formulas
from im2latex_hf.rendering.looks import IM2LATEX_DPI

from .conftest import HOSTILE_LATEX

FORMULA = r"\frac { a + b } { 2 } = \int _ { 0 } ^ { 1 } f ( x ) d x"
NEAR_MISS = r"\frac { a + b } { 3 } = \int _ { 0 } ^ { 1 } f ( x ) d x"  # one symbol changed
OTHER = r"\sum _ { n = 1 } ^ { \infty } \frac { 1 } { n ^ { 2 } }"


@pytest.fixture(scope="module")
def im2latex_image() -> Image.Image:
    """FORMULA in im2latex-100k's look (bucket-sized, bold, ×2 down), as the dataset's images are."""
    return render_formulas([FORMULA], look="im2latex-fast", dpi=IM2LATEX_DPI)[0].image


@pytest.fixture(scope="module")
def times_image() -> Image.Image:
    """FORMULA in another look: Times, antialiased, 150 dpi, on a margin of white."""
    image = render_formulas([FORMULA], font="times", dpi=150)[0].image
    canvas = Image.new("L", (image.width + 30, image.height + 20), 255)
    canvas.paste(image, (15, 10))
    return canvas


def test_the_im2latex_look_is_recognised(im2latex_image, times_image):
    assert is_im2latex_look(im2latex_image)
    assert not is_im2latex_look(times_image)


def test_correct_latex_scores_high_and_wrong_latex_low(im2latex_image):
    correct, near_miss, other = verify([im2latex_image], [[FORMULA, NEAR_MISS, OTHER]])[0]
    assert correct.score > 0.95 and correct.look == "im2latex" and correct.reason is None
    assert correct.rendered is not None
    assert near_miss.score < correct.score - 0.02  # re-ranking prefers the correct one
    assert other.score < 0.5


def test_an_image_in_another_font_is_compared_in_that_font(times_image):
    correct, other = verify([times_image], [[FORMULA, OTHER]])[0]
    assert correct.look == other.look == "times"  # one look per image, the best one
    assert correct.score > 0.85 and other.score < 0.5


def test_score_is_one_for_identical_ink_and_reflects_the_aspect_ratio():
    ink = ink_levels(render_formulas([FORMULA], dpi=100)[0].image)
    assert compare(ink, ink) == pytest.approx(1.0)
    wider = np.pad(ink, ((0, 0), (0, ink.shape[1] // 4)))
    wider[:, -3:] = 1.0  # an extra bar at the end
    assert compare(wider, ink) < 0.85


def test_latex_that_does_not_compile_scores_zero_with_the_tex_error(im2latex_image):
    result = verify([im2latex_image], [[r"\frac { a } {"]])[0][0]
    assert result.score == 0 and result.rendered is None and result.reason.startswith("!")
    assert render_match(im2latex_image, r"\undefinedcommand x") == 0


@pytest.mark.parametrize("latex", list(HOSTILE_LATEX.values()), ids=list(HOSTILE_LATEX))
def test_hostile_latex_scores_zero_and_writes_nothing(im2latex_image, tmp_path, monkeypatch, latex):
    monkeypatch.chdir(tmp_path)
    result = verify([im2latex_image], [[latex]])[0][0]
    assert result.score == 0 and result.reason
    assert not any(tmp_path.iterdir())


def test_latex_that_loops_scores_zero_within_the_time_limit(im2latex_image):
    start = time.monotonic()
    looping, correct = verify([im2latex_image], [[r"\def\x{\x}\x", FORMULA]], timeout=2)[0]
    assert time.monotonic() - start < 15
    assert looping.score == 0 and "timed out" in looping.reason
    assert correct.score > 0.95  # its neighbour in the TeX run still renders


def test_unreadable_or_blank_images_raise_invalid_image_error(tmp_path):
    not_an_image = tmp_path / "text.png"
    not_an_image.write_text("hello")
    with pytest.raises(InvalidImageError):
        verify([not_an_image], [[FORMULA]])
    with pytest.raises(InvalidImageError, match="blank"):
        render_match(Image.new("L", (100, 40), 255), FORMULA)


@pytest.fixture(scope="module")
def reader() -> FormulaReader:
    return FormulaReader.from_pretrained()


def test_reader_verifies_and_reranks(reader, im2latex_image, times_image):
    images = [im2latex_image, times_image]
    settings = {"num_beams": 3, "max_new_tokens": 12, "text_scales": (None,)}  # one scale: one candidate list
    plain = reader.read(images, **settings)
    assert all(reading.score is None for reading in plain)

    verified = reader.read(images, **settings, verify=True)
    for before, after in zip(plain, verified):
        assert after.latex == before.latex and 0 <= after.score <= 1
        assert after.score == render_match(im2latex_image if after is verified[0] else times_image, after.latex)

    reranked = reader.read(images, **settings, rerank=3)
    for before, after in zip(plain, reranked):
        assert len(after.candidates) == 3
        assert after.candidates[0][0] == before.latex  # the model's best comes first
        scores = [verification.score for _, verification in after.candidates]
        best = scores.index(max(scores))  # the first of equal scores: ties go to the model
        assert (after.latex, after.score) == (after.candidates[best][0], scores[best])
    with pytest.raises(ValueError, match="rerank"):
        reader.read(images, rerank=0)


def im2latex(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "im2latex_hf.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)


def test_cli_verify_prints_the_score_or_a_one_line_error(im2latex_image, tmp_path):
    path = tmp_path / "formula.png"
    im2latex_image.save(path)
    result = im2latex("verify", "--image", str(path), "--latex", FORMULA)
    assert result.returncode == 0 and float(result.stdout) > 0.95

    result = im2latex("verify", "--image", str(path), "--latex", r"\frac { a } {")
    assert result.returncode == 0 and float(result.stdout) == 0 and "does not render: !" in result.stderr

    (tmp_path / "broken.png").write_bytes(b"not a png")
    result = im2latex("verify", "--image", str(tmp_path / "broken.png"), "--latex", FORMULA)
    assert result.returncode == 1 and not result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and "broken.png" in result.stderr


def test_cli_predict_verify_adds_a_score_column(im2latex_image, tmp_path):
    path = tmp_path / "formula.png"
    im2latex_image.save(path)
    fast = ["--num-beams", "2", "--max-new-tokens", "8"]
    result = im2latex("predict", "--verify", "--with-names", *fast, str(path))
    assert result.returncode == 0, result.stderr
    name, latex, score = result.stdout.rstrip("\n").split("\t")
    assert name == str(path) and latex and 0 <= float(score) <= 1

    result = im2latex("predict", "--rerank", "2", "--verify", *fast, str(path))
    assert result.returncode == 0, result.stderr
    latex, score = result.stdout.rstrip("\n").split("\t")
    assert 0 <= float(score) <= 1
