"""Tests of im2latex_hf.data.textbook_generation: textbook-style formulas that normalize and render (real TeX)."""

from __future__ import annotations

import pytest

from im2latex_hf.data.normalization import normalize_latex
from im2latex_hf.data.textbook_generation import generate_textbook_formulas
from im2latex_hf.rendering import render_formulas


def test_formulas_are_distinct_and_deterministic_for_a_seed() -> None:
    formulas = list(generate_textbook_formulas(200, seed=3))
    assert len(formulas) == len(set(formulas)) == 200
    assert list(generate_textbook_formulas(200, seed=3)) == formulas
    assert list(generate_textbook_formulas(200, seed=4)) != formulas


def test_formulas_cover_the_textbook_shapes() -> None:
    text = "\n".join(generate_textbook_formulas(400, seed=0))
    for shape in ("\\binom", "\\begin{cases}", "matrix}", "\\lim_", "\\int", "\\sum_", "\\|", "\\frac{d", "\\mathbb"):
        assert shape in text, shape


def test_shapes_restrict_the_grammar() -> None:
    formulas = list(generate_textbook_formulas(50, seed=2, shapes=["cases", "matrix_equation"]))
    assert all("\\begin{cases}" in f or "matrix}" in f for f in formulas)
    assert any("\\begin{cases}" in f for f in formulas) and any("matrix}" in f for f in formulas)
    assert list(generate_textbook_formulas(50, seed=2, shapes=None)) == list(generate_textbook_formulas(50, seed=2))
    with pytest.raises(ValueError, match="unknown or no textbook shapes"):
        next(generate_textbook_formulas(5, shapes=["fraction"]))


def test_formulas_normalize_and_render_with_tex() -> None:
    formulas = list(generate_textbook_formulas(60, seed=1))
    normalized = [normalize_latex(formula) for formula in formulas]
    results = render_formulas(normalized, font="cm", font_size=12, dpi=100, display=True, batch_size=60)
    failures = [(formula, result.error) for formula, result in zip(normalized, results) if result.image is None]
    assert not failures
