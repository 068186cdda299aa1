"""Tests of the faithful im2latex look (``look="im2latex"``): real pdflatex + Ghostscript runs on our own formulas."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from im2latex_hf.rendering import FAITHFUL_LOOK, FAST_LOOK, LOOKS, RenderResult, render_file, render_formulas, tex
from im2latex_hf.rendering.looks import IM2LATEX_BUCKETS, IM2LATEX_DPI, ink_box

pytestmark = pytest.mark.skipif(
    shutil.which("pdflatex") is None or shutil.which("gs") is None, reason="needs pdflatex (TeX Live) and Ghostscript"
)

FRACTION = r"\frac { a + b } { 2 }"
SUM = r"\sum _ { i = 1 } ^ { n } x _ { i } ^ { 2 } = \alpha"
RULE = r"\rule{2cm}{1cm}"  # 157.5 x 78.7 px at 200 dpi
SPACED = r"x \hspace { 1 c m } y"  # TeX's recovery: a 1 pt space, then an italic "cm", as in the dataset's images
BATCH = [FRACTION, r"\frac { 1 } {", SUM, r"\phantom { x }", "", SPACED, RULE]


def ink(result: RenderResult) -> np.ndarray:
    assert result.error is None and result.image is not None, result.error
    return np.asarray(result.image)


@pytest.fixture(scope="module")
def batch() -> list[RenderResult]:
    return render_formulas(BATCH, look=FAITHFUL_LOOK)


@pytest.fixture(scope="module")
def alone() -> dict[str, np.ndarray]:
    """Each formula that renders, in a batch of its own."""
    return {formula: ink(render_formulas([formula], look="im2latex")[0]) for formula in (FRACTION, SUM, SPACED)}


def test_the_look_is_reachable_by_name_and_the_fast_look_keeps_its_own() -> None:
    assert FAITHFUL_LOOK == "im2latex" and FAST_LOOK == "im2latex-fast"
    assert {"plain", "im2latex", "im2latex-fast"} == set(LOOKS)
    with pytest.raises(ValueError, match="unknown look"):
        render_formulas([FRACTION], look="im2latex-faithful")


def test_images_have_im2latex_geometry(batch: list[RenderResult]) -> None:
    for result in (batch[0], batch[2], batch[6]):
        pixels = ink(result)
        assert result.image.mode == "L"
        assert (result.image.width * 2, result.image.height * 2) in IM2LATEX_BUCKETS  # bucketed, then halved
        dark = pixels < 128
        rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
        assert 3 <= rows[0] <= 4 and 3 <= cols[0] <= 4  # 8 px of padding, halved
        assert pixels.min() == 0 and pixels.max() == 255
        assert len(np.unique(pixels)) > 10  # LANCZOS grays at the edges
    # 200 dpi, every partly covered pixel black: the 2 cm x 1 cm rule covers 158-159 x 79-80 px, halved.
    rule = ink_box(batch[6].image)
    assert 78 <= rule.shape[1] <= 81 and 39 <= rule.shape[0] <= 41
    assert rule.mean() > 0.97


def test_glyphs_have_the_size_of_the_calibrated_fast_look(batch: list[RenderResult]) -> None:
    # 10 pt at 200 dpi: as large as the dvipng look's 12 pt at its calibrated 171 dpi (both fit the dataset).
    [fast] = render_formulas([SUM], look=FAST_LOOK, dpi=IM2LATEX_DPI)
    ours, theirs = ink_box(batch[2].image), ink_box(fast.image)
    assert 0.93 < ours.shape[1] / theirs.shape[1] < 1.07 and 0.9 < ours.shape[0] / theirs.shape[0] < 1.1


def test_the_recipe_fixes_size_resolution_and_style(alone: dict[str, np.ndarray]) -> None:
    [other] = render_formulas([SUM], look=FAITHFUL_LOOK, dpi=100, font_size=20, display=False)
    assert np.array_equal(ink(other), alone[SUM])


def test_failures_have_a_reason_and_neighbours_render_as_alone(
    batch: list[RenderResult], alone: dict[str, np.ndarray]
) -> None:
    assert [result.index for result in batch] == list(range(len(BATCH)))
    assert batch[1].image is None and batch[1].error.startswith("! File ended while scanning use of \\frac")
    assert batch[3].image is None and batch[3].error == "the formula rendered no ink"
    assert batch[4].image is None and batch[4].error == "empty formula"
    for position in (0, 2, 5):  # before and after the failures: exactly what they are alone
        assert np.array_equal(ink(batch[position]), alone[BATCH[position]])


def test_a_recovered_error_keeps_its_page_in_the_batch(tex_runs: list[str], alone: dict[str, np.ndarray]) -> None:
    formulas = [FRACTION, SPACED, SUM, SPACED]
    results = render_formulas(formulas, look=FAITHFUL_LOOK)
    assert tex_runs == ["pdflatex", "gs"]  # TeX's error recovery left its state as it was: nothing runs again
    assert results[1].recovered.startswith("! Illegal unit of measure") and results[2].recovered is None
    for formula, result in zip(formulas, results):
        assert np.array_equal(ink(result), alone[formula])


def test_tex_errors_are_recovered_as_in_the_dataset(batch: list[RenderResult]) -> None:
    assert batch[5].recovered.startswith("! Illegal unit of measure")  # rendered, and the error kept
    assert batch[0].recovered is None and batch[2].recovered is None
    # No amsmath: \operatorname and \binom are dropped (their arguments stay), so "cos" is italic letters.
    named, letters, matrix = render_formulas(
        [r"\operatorname { c o s } x", r"{ c o s } x", r"\left( \begin{matrix} { a } & { b } \\ \end{matrix} \right)"],
        look=FAITHFUL_LOOK,
    )
    assert np.array_equal(ink(named), ink(letters)) and named.recovered is None
    assert ink(matrix).size and matrix.recovered.startswith("! ")  # cells run together, as the dataset has them


@pytest.mark.parametrize(
    "formula",
    [
        r"\input{/etc/passwd}",
        r"\immediate\write18{touch pwned}",
        r"\openin5=x",
        r"\pdfliteral{0 0 m 99 99 l S}",
        r"\begin{input}{/etc/passwd}\end{input}",
        r"^^5cinput{/etc/passwd}",
    ],
)
def test_hostile_latex_is_rejected(formula: str) -> None:
    [result] = render_formulas([formula], look=FAITHFUL_LOOK)
    assert result.image is None and result.error.startswith("forbidden command")


def test_tex_itself_reads_and_writes_nothing_outside_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the up-front filter off, TeX's own restrictions still hold in the faithful look's pdflatex runs."""
    monkeypatch.setattr(tex, "_FORBIDDEN_RE", re.compile(r"(?!)"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    secret = work / "secret.tex"
    secret.write_text("\\rule{3cm}{3cm}\n")  # a big black box, if it were read
    pwned, written = tmp_path / "pwned", work / "written.txt"
    formulas = [
        rf"\input{{{secret}}}",
        r"\input{../secret}",
        r"\input{/etc/passwd}",
        rf"\openin5={secret} \read5 to \x \x",
        rf"x \immediate\write18{{touch {pwned}}}",
        rf"\immediate\openout5={written} \immediate\write5{{x}} \immediate\closeout5 x",
        r"\immediate\openout5=../written.txt \immediate\write5{x} \immediate\closeout5 x",
        FRACTION,
    ]
    results = render_formulas(formulas, look=FAITHFUL_LOOK)
    for result in results[:4] + results[5:7]:
        assert result.image is None and result.error.startswith("! "), result
        assert "root:" not in result.error
    assert not pwned.exists()  # no shell: \write18 only reaches the log
    ink(results[7])
    assert sorted(path.name for path in work.iterdir()) == ["secret.tex"]  # temp folders are gone too


def test_render_file_in_the_faithful_look(tmp_path: Path) -> None:
    source = tmp_path / "formulas.txt"
    source.write_text(f"{FRACTION}\n\\frac {{ 1 }} {{\n")
    summary = render_file(source, tmp_path / "out", look="im2latex")
    assert (summary.rendered, summary.failed) == (1, 1)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["0.png", "failures.tsv"]
