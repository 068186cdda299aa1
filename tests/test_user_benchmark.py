"""The user-formula benchmark (`im2latex_hf.evaluation.user_benchmark`): its formulas, its looks (real TeX and Chromium
runs), its scoring and its command line with the bundled model, on a handful of formulas."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from im2latex_hf.data.normalization import normalize_latex
from im2latex_hf.evaluation import user_benchmark as ub
from im2latex_hf.latex import tokenize_latex

REPO_ROOT = Path(__file__).resolve().parents[1]
FORMULAS = [r"E = mc^2", r"\binom{n}{k} = \frac{n!}{k!(n-k)!}", r"A = \begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}"]
LOOKS = {look.name: look for look in ub.LOOKS}


def has_ink(path: str) -> bool:
    gray = np.asarray(Image.open(path).convert("L"), dtype=np.int16)
    return gray.size > 0 and int(np.median(gray)) - int(gray.min()) > 100


def test_formulas_file_holds_200_formulas_that_normalize_into_the_vocabulary():
    formulas = ub.read_formulas()
    assert len(formulas) >= 200
    assert len(set(formulas)) == len(formulas)
    vocabulary = set(json.loads((REPO_ROOT / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"])
    for formula in formulas:
        for canonical in (False, True):
            tokens = tokenize_latex(normalize_latex(formula, canonical=canonical))
            assert set(tokens) <= vocabulary, (formula, set(tokens) - vocabulary)
    readme_examples = [
        line.split("\t")[1] for line in (REPO_ROOT / "examples" / "formulas.txt").read_text().splitlines()
    ]
    assert set(readme_examples) <= set(formulas)


@pytest.mark.parametrize("name", [look.name for look in ub.LOOKS if look.kind != "katex"])
def test_each_tex_and_phone_look_draws_every_formula_and_caches_it(name, tmp_path):
    samples = ub.render_look(FORMULAS, LOOKS[name], tmp_path)
    assert [sample.error for sample in samples] == [None] * len(FORMULAS)
    assert all(has_ink(sample.image) for sample in samples)
    again = ub.render_look(FORMULAS, LOOKS[name], tmp_path)  # from the cache, the same files
    assert [sample.image for sample in again] == [sample.image for sample in samples]


def test_phone_copy_is_deterministic_and_degraded():
    render = Image.new("L", (120, 40), 255)
    render.paste(0, (20, 10, 100, 30))
    copy = ub.phone_copy(render, seed=3)
    assert copy == ub.phone_copy(render, seed=3) != ub.phone_copy(render, seed=4)
    photo = Image.open(io.BytesIO(copy))
    assert photo.format == "JPEG"
    assert photo.width > render.width and photo.height > render.height  # paper around it, turned
    assert 190 <= np.median(np.asarray(photo.convert("L"))) <= 240  # gray paper, not white


def test_katex_look_draws_every_formula(tmp_path):
    try:
        samples = ub.render_look(FORMULAS, LOOKS["katex"], tmp_path)
    except ub.LookUnavailable as error:
        pytest.skip(str(error))
    assert [sample.error for sample in samples] == [None] * len(FORMULAS)
    assert all(has_ink(sample.image) for sample in samples)


def test_scoring_a_right_and_a_wrong_reading():
    right = ub.Sample("cm-150", 0, r"E = mc^2", image="x.png", prediction=r"E = m c ^ { 2 }")
    spelt_otherwise = ub.Sample("cm-150", 1, r"\binom{n}{k}", image="x.png", prediction=r"{ n \choose k }")
    wrong = ub.Sample("cm-150", 2, r"E = mc^2", image="x.png", prediction=r"E = n c ^ { 2 }")
    unread = ub.Sample("cm-150", 3, r"E = mc^2", image="x.png", error="blank image")
    ub.score_samples([right, spelt_otherwise, wrong, unread])
    assert (right.image_match, right.exact_match) == (True, True)
    assert (spelt_otherwise.image_match, spelt_otherwise.exact_match) == (True, True)
    assert (wrong.image_match, wrong.exact_match) == (False, False)
    assert (unread.image_match, unread.exact_match) == (False, False)
    assert ub.worst([right, spelt_otherwise, wrong, unread]) == [unread, wrong]
    table = ub.summarize([right, spelt_otherwise, wrong, unread], [LOOKS["cm-150"]])["cm-150"]
    assert (table["images"], table["image_match"], table["exact_match_count"]) == (4, 0.5, 2)
    shapes = ub.summarize_shapes([right, spelt_otherwise, wrong, unread])
    assert list(shapes) == ["binomial", "other"]
    assert (shapes["binomial"]["formulas"], shapes["binomial"]["image_match"]) == (1, 1.0)
    assert (shapes["other"]["formulas"], shapes["other"]["images"], shapes["other"]["exact_match_count"]) == (3, 3, 1)


def test_formula_shapes_take_the_first_that_matches():
    assert ub.formula_shape(r"\binom{n}{k} = \frac{n!}{k!(n-k)!}") == "binomial"
    assert ub.formula_shape(r"\| A \begin{pmatrix} 1 \\ 2 \end{pmatrix} \|") == "matrix"
    assert ub.formula_shape(r"\iint_D f \, dA") == "integral"
    assert ub.formula_shape(r"\dfrac{a}{b}") == "fraction"
    assert ub.formula_shape("E = mc^2") == "other"


def test_command_line_reads_two_formulas_in_two_looks(tmp_path, capsys):
    formulas = tmp_path / "formulas.txt"
    formulas.write_text("# two formulas\nE = mc^2\na^2 + b^2 = c^2\n")
    report = tmp_path / "report.json"
    argv = ["--formulas", str(formulas), "--looks", "cm-150,im2latex", "--cache-dir", str(tmp_path / "cache")]
    assert ub.main([*argv, "--output", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "| look | images | image match | w/o spaces | exact match |" in printed
    assert "| cm-150: Computer Modern, 150 dpi | 2 |" in printed
    assert "| **mean of the looks** | 4 |" in printed
    assert "| other | 2 | 4 |" in printed  # the by-shape table: neither formula has a listed shape
    readings = json.loads(report.read_text())["readings"]
    assert [(r["look"], r["index"]) for r in readings] == [
        ("cm-150", 0),
        ("cm-150", 1),
        ("im2latex", 0),
        ("im2latex", 1),
    ]
    assert all(r["prediction"] for r in readings)
    assert len(list((tmp_path / "cache").glob("*/*/*.png"))) == 4


def test_command_line_scores_readings_made_elsewhere(tmp_path, capsys):
    """--list-images writes what to read, --predictions scores another program's readings of it."""
    argv = ["--looks", "cm-150,im2latex", "--limit", "3", "--cache-dir", str(tmp_path / "cache")]
    listed = tmp_path / "images.json"
    assert ub.main([*argv, "--list-images", str(listed)]) == 0
    images = json.loads(listed.read_text())
    assert [(image["key"], image["look"], image["index"]) for image in images] == [
        (f"{look}/{index}", look, index) for look in ("cm-150", "im2latex") for index in range(3)
    ]
    assert all(Path(image["path"]).is_file() for image in images)

    gold = ub.read_formulas()[:3]
    predictions = {image["key"]: gold[image["index"]] for image in images}  # cm-150 all right
    predictions["im2latex/1"] = "y = \\log x"  # wrong
    predictions["im2latex/2"] = None  # the reader failed
    predictions[images[0]["path"]] = predictions.pop("cm-150/0")  # keyed by the image's path
    file, report = tmp_path / "predictions.json", tmp_path / "report.json"
    file.write_text(json.dumps(predictions))
    assert ub.main([*argv, "--predictions", str(file), "--output", str(report)]) == 0
    assert f"predictions from {file}: 3 formulas in 2 looks" in capsys.readouterr().out
    result = json.loads(report.read_text())
    assert result["reader"] == f"predictions from {file}" and "model" not in result
    assert [result["looks"][look]["image_match_count"] for look in ("cm-150", "im2latex")] == [3, 1]
    assert [result["looks"][look]["exact_match_count"] for look in ("cm-150", "im2latex")] == [3, 1]
    assert result["readings"][-1]["error"] == "the reader gave no reading"

    del predictions["im2latex/2"], predictions["cm-150/2"]
    file.write_text(json.dumps(predictions))
    assert ub.main([*argv, "--predictions", str(file)]) == 2
    assert "2 of the 6 images have no reading" in capsys.readouterr().err
    assert ub.main([*argv, "--predictions", str(file), "--every", "2"]) == 2  # formulas 0 and 2: 2 missing
    assert ub.main([*argv, "--limit", "2", "--predictions", str(file)]) == 0  # the first 2 formulas: all there
    assert "| im2latex: im2latex-100k's look | 2 | 0.500 (1) |" in capsys.readouterr().out


def test_unknown_look_is_refused(capsys):
    assert ub.main(["--looks", "cm-150,watercolour"]) == 2
    assert "watercolour" in capsys.readouterr().err
