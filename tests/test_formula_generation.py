"""Tests of im2latex_hf.data.formula_generation: determinism, well-formed output, bounds, variety."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from im2latex_hf.data.formula_generation import generate_formulas
from im2latex_hf.data.normalization import normalize_latex
from im2latex_hf.latex import join_tokens, tokenize_latex

SEEDS = [
    "x + y = z",
    "a ^ { 2 } + b ^ { 2 } = c ^ { 2 }",
    "E = m c ^ { 2 }",
    "f ( x ) = 3 x - 1 7",
    r"\alpha + \beta \leq \gamma",
    r"\int _ { 0 } ^ { 1 } g ( t ) d t = G",
    r"\sum _ { n = 1 } ^ { N } n = \frac { N ( N + 1 ) } { 2 }",
    r"A \cdot B \neq 0",
    r"\hat { H } \psi = E \psi",
    r"\mathbf { F } = q \mathbf { v } \times \mathbf { B }",
]


def _balanced(tokens: list[str]) -> bool:
    depth = 0
    for token in tokens:
        depth += (token == "{") - (token == "}")
        if depth < 0:
            return False
    return depth == 0


def _check_well_formed(formulas: list[str], seeds: list[str], max_tokens: int = 150) -> None:
    seed_texts = {join_tokens(tokenize_latex(seed)) for seed in seeds}
    assert len(set(formulas)) == len(formulas)
    for formula in formulas:
        tokens = tokenize_latex(formula)
        assert formula == join_tokens(tokens)
        assert 0 < len(tokens) <= max_tokens
        assert _balanced(tokens), formula
        assert formula not in seed_texts
        normalize_latex(formula)  # parses: \left/\right matched, every command has its arguments


def test_deterministic_for_a_seed() -> None:
    first = list(generate_formulas(SEEDS, 40, seed=3))
    assert first == list(generate_formulas(SEEDS, 40, seed=3))
    assert first != list(generate_formulas(SEEDS, 40, seed=4))


def test_output_is_well_formed_new_and_bounded() -> None:
    formulas = list(generate_formulas(SEEDS, 300, seed=0))
    assert len(formulas) == 300
    _check_well_formed(formulas, SEEDS)
    short = list(generate_formulas(SEEDS, 50, seed=1, max_tokens=20))
    _check_well_formed(short, SEEDS, max_tokens=20)


def test_mutations_are_varied() -> None:
    formulas = list(generate_formulas(SEEDS, 300, seed=0))
    tokens = [set(tokenize_latex(formula)) for formula in formulas]
    for wanted in (r"\frac", r"\sqrt", r"\left(", r"\begin{array}", "_", "^"):
        assert sum(wanted in found for found in tokens) >= 3, wanted
    assert any(found & {r"\hat", r"\bar", r"\tilde", r"\vec", r"\dot", r"\ddot", r"\check"} for found in tokens)
    assert any(found & {r"\mathrm", r"\mathcal", r"\mathbb"} for found in tokens)
    assert any(found & {r"\pm", r"\mp", r"\times"} for found in tokens)  # operator swaps
    assert any(found & {r"\approx", r"\equiv", r"\sim", r"\propto"} for found in tokens)  # relation swaps
    assert sum(bool(found & set("45689")) for found in tokens) >= 3  # new numbers (the seeds have 0 1 2 3 7)


def test_rejects_unusable_seeds() -> None:
    with pytest.raises(ValueError):
        next(generate_formulas(["{ x", r"\frac { a }"], 1))


def test_generates_from_im2latex(shared_data_dir: Path) -> None:
    lines = (shared_data_dir / "im2latex-100k" / "im2latex_formulas.norm.lst").read_text(encoding="utf-8").splitlines()
    seeds = lines[::40]
    _check_well_formed(list(generate_formulas(seeds, 200, seed=5)), seeds)


@pytest.mark.skipif(not (shutil.which("latex") and shutil.which("dvipng")), reason="needs latex and dvipng")
def test_generated_formulas_render() -> None:
    from im2latex_hf.rendering import render_formulas

    results = render_formulas(list(generate_formulas(SEEDS, 24, seed=2)))
    assert [result.error for result in results if result.image is None] == []
