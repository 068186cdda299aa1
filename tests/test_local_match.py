"""The local match with real TeX runs: a right reading beats one wrong symbol of each kind; hostile, broken and
recovered LaTeX; scores in [0, 1]; images in other looks go to today's verifier."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from im2latex_hf.metrics import local_match
from im2latex_hf.metrics.verification import is_im2latex_look, verify
from im2latex_hf.rendering import render_formulas
from im2latex_hf.rendering.looks import IM2LATEX_DPI

from .conftest import HOSTILE_LATEX

FORMULA = r"\bar { x } ^ { \prime } + \hat { y } = 2 \tau \, d t"
CORRUPTIONS = {  # one symbol changed, of the kinds the model makes
    "bar_tilde": r"\tilde { x } ^ { \prime } + \hat { y } = 2 \tau \, d t",
    "hat_dot": r"\bar { x } ^ { \prime } + \dot { y } = 2 \tau \, d t",
    "tau_r": r"\bar { x } ^ { \prime } + \hat { y } = 2 r \, d t",
    "digit": r"\bar { x } ^ { \prime } + \hat { y } = 3 \tau \, d t",
    "sign": r"\bar { x } ^ { \prime } - \hat { y } = 2 \tau \, d t",
    "letter": r"\bar { x } ^ { \prime } + \hat { y } = 2 \tau \, d s",
    "drop_prime": r"\bar { x } + \hat { y } = 2 \tau \, d t",
    "drop_thin_space": r"\bar { x } ^ { \prime } + \hat { y } = 2 \tau d t",
}
LONG = r"f ( x ) = \sum _ { n = 0 } ^ { \infty } \frac { f ^ { ( n ) } ( a ) } { n ! } ( x - a ) ^ { n } + \int _ { 0 } ^ { 1 } g"
LONG_CORRUPTIONS = [
    LONG.replace("n = 0", "n = 1"),
    LONG.replace("( x - a )", "( x + a )"),
    LONG.replace("+ \\int _ { 0 } ^ { 1 } g", "+ \\int _ { 0 } ^ { 1 } q"),
]


@pytest.fixture(scope="module")
def images() -> dict[str, Image.Image]:
    """The formulas in the faithful im2latex look, as im2latex-100k's images were made."""
    results = render_formulas([FORMULA, LONG], look="im2latex")
    assert all(result.image is not None for result in results), [result.error for result in results]
    return {"short": results[0].image, "long": results[1].image}


def _shifted(image: Image.Image, dx: int, dy: int) -> Image.Image:
    """The same image with its ink moved by (dx, dy) pixels on its canvas."""
    canvas = Image.new("L", image.size, 255)
    canvas.paste(image, (dx, dy))
    return canvas


def test_faithful_renders_are_in_the_im2latex_look(images):
    assert all(is_im2latex_look(image) for image in images.values())


@pytest.mark.parametrize("shift", [(0, 0), (1, 1)], ids=["as-rendered", "shifted-one-pixel"])
def test_a_right_reading_beats_each_kind_of_one_symbol_corruption(images, shift):
    image = _shifted(images["short"], *shift)
    right, *wrong = local_match.match([image], [[FORMULA, *CORRUPTIONS.values()]])[0]
    assert right.score >= 0.9 and right.reason is None
    assert right.rendered is not None
    for kind, result in zip(CORRUPTIONS, wrong):
        assert result.score < right.score, (kind, result.score, right.score)
        assert result.score < 0.9, (kind, result.score)


def test_one_wrong_symbol_decides_a_long_formula(images):
    right, *wrong = local_match.match([images["long"]], [[LONG, *LONG_CORRUPTIONS]])[0]
    assert right.score > 0.95
    assert max(result.score for result in wrong) < 0.6  # the rest of the formula matching does not dilute it


@pytest.mark.parametrize("latex", list(HOSTILE_LATEX.values()), ids=list(HOSTILE_LATEX))
def test_hostile_latex_scores_zero_and_writes_nothing(images, latex, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = local_match.match([images["short"]], [[latex]])[0][0]
    assert result.score == 0 and result.rendered is None and result.reason
    assert list(tmp_path.iterdir()) == []


def test_a_reading_that_does_not_compile_scores_zero(images):
    stopped, unbalanced, undefined = local_match.match(
        [images["short"]],
        [[r"\frac { x } {", r"\bar { x } ^ { \prime", FORMULA.replace("d t", r"d \undefinedcommand t")]],
    )[0]
    assert stopped.score == 0 and stopped.rendered is None and stopped.reason.startswith("!")  # TeX made no page
    # TeX recovers from these in the faithful look, but they do not compile in the project's renderer: 0 all the same.
    assert unbalanced.score == 0 and unbalanced.rendered is None and unbalanced.reason.startswith("! Missing }")
    assert undefined.score == 0 and undefined.reason.startswith("! Undefined control sequence")
    assert local_match.render_match(images["short"], r"\frac { a } {") == 0


def test_a_render_made_by_tex_error_recovery_counts_when_the_reading_compiles():
    """Without amsmath (the dataset's pipeline) a spaced length and a matrix raise TeX errors, and the dataset's
    images are what TeX recovered to; the readings compile in the project's renderer, so they count."""
    readings = [
        r"a \hspace { 1 c m } b",
        r"\left( \begin{matrix} { a } & { b } \\ { c } & { d } \\ \end{matrix} \right)",
    ]
    for render, latex in zip(render_formulas(readings, look="im2latex"), readings):
        assert render.recovered is not None
        right = local_match.match([render.image], [[latex, latex.replace("b", "h")]])[0]
        assert right[0].score == pytest.approx(1.0) and right[0].reason == render.recovered
        assert right[1].score < right[0].score


def test_scores_lie_between_zero_and_one(images):
    readings = [FORMULA, LONG, *CORRUPTIONS.values(), *LONG_CORRUPTIONS, "x", r"\frac { 1 } { 2 }", "", "a +"]
    for image in images.values():
        for result in local_match.match([image], [readings])[0]:
            assert 0.0 <= result.score <= 1.0
    ink = local_match.ink(images["short"])
    assert local_match.score(ink, ink) == pytest.approx(1.0)
    assert local_match.score(ink, np.zeros((0, 0), dtype=np.float32)) == 0.0


def test_local_alignment_absorbs_drift_that_a_fixed_comparison_would_not():
    """Two blank columns inserted mid-formula shift everything after them: the warp pays two steps for it."""
    ink = local_match.ink(render_formulas([LONG], look="im2latex")[0].image)
    middle = ink.shape[1] // 2
    while ink[:, middle].any():  # a column between glyphs
        middle += 1
    drifted = np.concatenate([ink[:, :middle], np.zeros((ink.shape[0], 2), np.float32), ink[:, middle:]], axis=1)
    assert local_match.discrepancy(ink, drifted) <= 2 * local_match.STEP_COST + 0.5
    assert local_match.score(ink, drifted) > local_match.score(ink, ink[:, ::-1])


def test_verify_uses_the_local_match_for_images_in_the_im2latex_look(images):
    readings = [FORMULA, CORRUPTIONS["hat_dot"], r"\frac { x } {"]
    verified = verify([images["short"]], [readings])[0]
    matched = local_match.match([images["short"]], [readings])[0]
    assert [v.score for v in verified] == [m.score for m in matched]
    assert verified[0].look == "im2latex" and verified[-1].look is None and verified[-1].reason.startswith("!")
    todays = verify([images["short"]], [readings], local=False)[0]  # today's comparison, kept for comparisons
    assert todays[0].look == "im2latex" and todays[0].score != verified[0].score


def test_images_in_other_looks_keep_todays_comparison():
    image = render_formulas([LONG], font="times", dpi=150)[0].image
    canvas = Image.new("L", (image.width + 30, image.height + 20), 255)
    canvas.paste(image, (15, 10))
    assert not is_im2latex_look(canvas)
    right, wrong = verify([canvas], [[LONG, r"\sum _ { n = 1 } ^ { \infty } \frac { 1 } { n ^ { 2 } }"]])[0]
    assert right.look == wrong.look == "times"  # today's look choice
    assert right.score > 0.85 and right.score > wrong.score


def test_an_image_in_the_im2latex_geometry_from_another_renderer_keeps_todays_comparison():
    """The im2latex-fast look (dvipng) has the geometry but not the dataset's glyphs: no faithful render matches it,
    today's comparison does, and its scores are kept."""
    image = render_formulas([LONG], look="im2latex-fast", dpi=IM2LATEX_DPI)[0].image
    assert is_im2latex_look(image)
    assert local_match.render_match(image, LONG) < 0.5
    right, wrong = verify([image], [[LONG, LONG_CORRUPTIONS[0]]])[0]
    assert right.score > 0.9 and right.score > wrong.score


def test_renders_are_cached_by_latex_string(images, monkeypatch):
    local_match.match([images["short"]], [[FORMULA]])
    calls = []
    monkeypatch.setattr(local_match, "iter_render", lambda *args, **kwargs: calls.append(args) or iter(()))
    again = local_match.match([images["short"]], [[FORMULA]])[0][0]
    assert calls == [] and again.score >= 0.9


def test_mismatched_lengths_raise(images):
    with pytest.raises(ValueError):
        local_match.match([images["short"]], [])
