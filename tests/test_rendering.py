"""Tests of the LaTeX renderer with real latex + dvipng runs (some 15 s of TeX in all)."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from im2latex_hf.rendering import FONTS, RenderResult, iter_render, render_file, render_formulas, tex

pytestmark = pytest.mark.skipif(
    shutil.which("latex") is None or shutil.which("dvipng") is None, reason="needs latex and dvipng (TeX Live)"
)

FRACTION = r"\frac { a + b } { 2 }"
SUM = r"\sum _ { i = 1 } ^ { n } x _ { i } ^ { 2 } = \alpha"


def ink(result: RenderResult) -> np.ndarray:
    """The rendered pixels, asserting that rendering succeeded."""
    assert result.error is None and result.image is not None, result.error
    return np.asarray(result.image)


@pytest.fixture
def no_blacklist(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let forbidden commands through to TeX, to test TeX's own restrictions."""
    monkeypatch.setattr(tex, "_FORBIDDEN_RE", re.compile(r"(?!)"))


@pytest.fixture
def secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TeX file outside the renderer's temp folders, which would render as a big black box if read.

    Temp folders go under ``tmp_path/work``, so the secret is also reachable as ``../secret``.
    """
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "work"))
    path = tmp_path / "work" / "secret.tex"
    path.write_text("\\rule{3cm}{3cm}\n")
    return path


def test_renders_grayscale_image_cropped_to_ink() -> None:
    [result] = render_formulas([FRACTION])
    pixels = ink(result)
    assert result.index == 0 and result.formula == FRACTION
    assert result.image.mode == "L"
    assert pixels.min() == 0 and pixels.max() == 255  # black ink on white
    for edge in (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]):
        assert edge.min() < 255  # no margin: ink touches every side


def test_ink_outside_the_formula_box_is_kept() -> None:
    smashed, normal = render_formulas([r"\smash { \frac { a } { b } } \hspace { - 1 c m }", r"\frac { a } { b }"])
    assert ink(smashed).shape == ink(normal).shape


def test_fonts_render_and_differ() -> None:
    assert {"cm", "lmodern", "times", "palatino", "helvetica"} <= set(FONTS)
    images = {font: ink(render_formulas([SUM], font=font)[0]) for font in FONTS}
    fonts = list(images)
    for i, first in enumerate(fonts):
        for second in fonts[i + 1 :]:
            a, b = images[first], images[second]
            assert a.shape != b.shape or not np.array_equal(a, b), (first, second)


def test_bigger_dpi_font_size_and_display_style_give_bigger_images() -> None:
    base = ink(render_formulas([SUM])[0]).shape
    assert ink(render_formulas([SUM], dpi=400)[0]).shape > base
    assert ink(render_formulas([SUM], font_size=20)[0]).shape > base
    inline = ink(render_formulas([SUM], display=False)[0]).shape
    assert inline[0] < base[0]  # limits beside the sum, not above and below


def test_bad_formula_fails_with_tex_error_and_neighbours_render() -> None:
    formulas = [FRACTION, r"\undefinedmacro x", SUM, r"x \end{document}", FRACTION, "", "{ x"]
    results = render_formulas(formulas)
    assert [result.index for result in results] == list(range(len(formulas)))
    assert results[1].image is None and results[1].error.startswith("! Undefined control sequence.")
    assert "\\undefinedmacro" in results[1].error
    assert results[3].image is None and results[3].error.startswith("! ")
    assert results[5].error == "empty formula"
    assert results[6].image is None and results[6].error.startswith("! ")
    alone = {formula: ink(render_formulas([formula])[0]) for formula in (FRACTION, SUM)}
    for position in (0, 2, 4):  # the neighbours are exactly what they are alone
        assert np.array_equal(ink(results[position]), alone[formulas[position]])


def test_an_error_that_leaves_tex_as_it_found_it_costs_no_run_again(tex_runs: list[str]) -> None:
    results = render_formulas([FRACTION, r"\undefinedmacro x", SUM, r"\alsoundefined y", FRACTION])
    assert tex_runs == ["latex", "dvipng"]  # the formulas after each error stand: one run for the batch
    assert [result.error is None for result in results] == [True, False, True, False, True]
    assert np.array_equal(ink(results[2]), ink(render_formulas([SUM])[0]))


def test_formulas_after_one_that_leaves_a_conditional_open_are_rendered_again() -> None:
    # No error, but TeX is left inside a conditional: the next formula's \fi would close it without a word.
    opened, closing, after = render_formulas([r"\iftrue x", r"\fi", SUM])
    assert ink(opened).size
    assert closing.image is None and closing.error.startswith("! Extra \\fi")  # as alone
    assert np.array_equal(ink(after), ink(render_formulas([SUM])[0]))


def test_streaming_in_parallel_keeps_input_order() -> None:
    formulas = [FRACTION, SUM, r"\bad", "x", SUM, FRACTION, "y"]
    results = list(iter_render(iter(formulas), workers=2, batch_size=2))
    assert [result.formula for result in results] == formulas
    assert [result.index for result in results] == list(range(len(formulas)))
    assert [result.error is None for result in results] == [True, True, False, True, True, True, True]


@pytest.mark.parametrize(
    "formula", [r"\immediate\write18{touch pwned}", r"\input{/etc/passwd}", r"\openin5=x", r"\include{x}"]
)
def test_dangerous_commands_are_rejected(formula: str) -> None:
    [result] = render_formulas([formula])
    assert result.image is None and result.error.startswith("forbidden command")


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown font"):
        render_formulas([FRACTION], font="comic")
    with pytest.raises(ValueError, match="font size"):
        render_formulas([FRACTION], font_size=13)


@pytest.mark.usefixtures("no_blacklist")
def test_write18_runs_no_shell(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    render_formulas([rf"x \immediate\write18{{touch {target}}}", r"x \immediate\write18{touch pwned}"])
    assert not target.exists()


@pytest.mark.usefixtures("no_blacklist")
def test_files_outside_the_temp_folder_cannot_be_read(secret: Path) -> None:
    formulas = [
        rf"\input{{{secret}}}",
        r"\input{../secret}",
        rf"\openin5={secret} \read5 to \x \x",
        r"\input{/etc/passwd}",
        FRACTION,
    ]
    results = render_formulas(formulas)
    for result in results[:4]:
        assert result.image is None and result.error.startswith("! "), result
        assert "root:" not in result.error
    ink(results[4])


@pytest.mark.usefixtures("no_blacklist")
def test_files_outside_the_temp_folder_cannot_be_written(secret: Path) -> None:
    outside = secret.parent / "written.txt"
    formulas = [
        rf"\immediate\openout5={outside} \immediate\write5{{x}} \immediate\closeout5 x",
        r"\immediate\openout5=../written.txt \immediate\write5{x} \immediate\closeout5 x",
        r"\immediate\openout5=.written.txt \immediate\write5{x} \immediate\closeout5 x",
    ]
    results = render_formulas(formulas)
    assert all(result.image is None for result in results)
    assert sorted(path.name for path in secret.parent.iterdir()) == ["secret.tex"]  # temp folders are gone too


def test_endless_loop_times_out_and_neighbours_render() -> None:
    start = time.perf_counter()
    results = render_formulas([FRACTION, r"\def \a { \a } \a", SUM], timeout=2)
    assert time.perf_counter() - start < 10
    assert results[1].image is None and "timed out" in results[1].error
    ink(results[0])
    ink(results[2])


def test_render_file_writes_images_failures_and_summary(tmp_path: Path) -> None:
    source = tmp_path / "formulas.txt"
    source.write_text(f"{FRACTION}\n\\undefinedmacro\n\n{SUM}\n")
    summary = render_file(source, tmp_path / "out", dpi=100)
    out = tmp_path / "out"
    assert sorted(path.name for path in out.iterdir()) == ["0.png", "3.png", "failures.tsv"]
    failures = [line.split("\t") for line in (out / "failures.tsv").read_text().splitlines()]
    assert [number for number, _ in failures] == ["1", "2"]
    assert failures[0][1].startswith("! Undefined control sequence.") and failures[1][1] == "empty formula"
    assert (summary.total, summary.rendered, summary.failed) == (4, 2, 2)
    assert re.fullmatch(
        rf"rendered 2 of 4 formulas \(2 failed, see {re.escape(str(out))}/failures.tsv\) in \d+\.\d s", str(summary)
    )


def test_renders_real_im2latex_formulas(shared_data_dir: Path) -> None:
    data = shared_data_dir / "im2latex-100k"
    formulas = (data / "im2latex_formulas.norm.lst").read_text(encoding="utf-8").split("\n")
    pairs = (data / "im2latex_validate_filter.lst").read_text(encoding="utf-8").split("\n")[:40]
    results = render_formulas([formulas[int(pair.split()[1])] for pair in pairs])
    assert sum(result.image is not None for result in results) >= 38
