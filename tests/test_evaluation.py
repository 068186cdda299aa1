"""Tests of the evaluation: rendered-image match, the evaluate modules and `im2latex evaluate` end to end."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from datasets import Image as ImageFeature
from PIL import Image

from im2latex_hf.evaluation.evaluate import Row, scored_texts
from im2latex_hf.latex import tokenize_latex
from im2latex_hf.metrics import METRIC_NAMES, image_match, image_match_rates, load_metric, text_metrics
from im2latex_hf.metrics.confusions import confusion_report
from im2latex_hf.metrics.image_match import RENDER_OPTIONS
from im2latex_hf.rendering import render_formulas

FORMULAS = {
    "square": "x ^ { 2 }",
    "square_terse": "x^2",
    "y_square": "y ^ { 2 }",
    "frac": "\\frac { a } { b }",
    "frac_unbraced": "\\frac a b",
    "thin_space": "a \\, b",
    "no_space": "a b",
    "sum": "\\sum _ { i = 1 } ^ { n } i = \\frac { n ( n + 1 ) } { 2 }",
}


@pytest.fixture(scope="module")
def renders() -> dict[str, Image.Image]:
    results = render_formulas(list(FORMULAS.values()), workers=2, **RENDER_OPTIONS)
    assert all(result.image is not None for result in results), [result.error for result in results]
    return {name: result.image for name, result in zip(FORMULAS, results)}


def _strip(widths: list[tuple[int, bool]], height: int = 20) -> Image.Image:
    """A synthetic image: blocks of (width, inked) columns, ink in the middle rows."""
    columns = [np.full(height, 255, np.uint8) if not inked else np.r_[[255] * 5, [0] * (height - 10), [255] * 5]
               for width, inked in widths for _ in range(width)]  # fmt: skip
    return Image.fromarray(np.stack(columns, axis=1).astype(np.uint8), "L")


def test_identical_renders_match(renders):
    again = render_formulas([FORMULAS["sum"]], **RENDER_OPTIONS)[0].image
    assert image_match(renders["sum"], again) == (True, True)


def test_visually_identical_spellings_match(renders):
    assert image_match(renders["square"], renders["square_terse"]) == (True, True)
    assert image_match(renders["frac"], renders["frac_unbraced"]) == (True, True)


def test_thin_space_only_matches_without_whitespace(renders):
    # \, is 3mu: about 6 columns at 12pt and 200 dpi, over the 5-column tolerance.
    assert image_match(renders["thin_space"], renders["no_space"]) == (False, True)


def test_different_formulas_do_not_match(renders):
    assert image_match(renders["square"], renders["y_square"]) == (False, False)
    assert image_match(renders["sum"], renders["frac"]) == (False, False)


def test_column_run_tolerance():
    base = _strip([(10, True), (10, True)])
    assert image_match(base, _strip([(10, True), (4, False), (10, True)])) == (True, True)
    assert image_match(base, _strip([(10, True), (5, False), (10, True)])) == (False, True)
    # Extra ink columns count even though the gold has nothing there (im2markup would let them pass).
    assert image_match(base, _strip([(20, True), (3, False), (6, True)])) == (False, False)


def test_near_identical_columns_count_as_equal():
    image = np.asarray(_strip([(30, True)])).copy()
    image[0:4, 10:20] = 0  # 4 more ink pixels in each of 10 columns
    assert image_match(_strip([(30, True)]), Image.fromarray(image)) == (True, True)
    image[0:5, 10:20] = 0  # 5 pixels: different columns
    assert image_match(_strip([(30, True)]), Image.fromarray(image)) == (False, False)


def test_image_match_rates_count_render_failures():
    rates = image_match_rates(["x^2", "\\frac {", "y", "z"], ["x ^ { 2 }", "a", "\\frac {", "z"])
    assert rates == {
        "image_match": pytest.approx(2 / 3),
        "image_match_no_space": pytest.approx(2 / 3),
        "evaluated": 3,
        "unrenderable_references": 1,
        "unrenderable_predictions": 1,
    }


def test_evaluate_modules_match_the_functions():
    predictions = ["x^2", "a \\, b", "\\frac { a } { b } + c", "\\alpha"]
    references = ["x ^ { 2 }", "a b", "\\frac { a } { b }", "\\beta"]
    results = {}
    for name in METRIC_NAMES:
        results |= load_metric(name, keep_in_memory=True).compute(predictions=predictions, references=references)
    expected = text_metrics(predictions, references) | image_match_rates(predictions, references)
    assert results == pytest.approx(expected)
    assert results["image_match"] == 0.25 and results["image_match_no_space"] == 0.5  # "+ c" added: no match


def test_load_metric_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown metric"):
        load_metric("bleu")


def test_scored_texts_canonicalise_both_sides():
    rows = [Row(0, "a.png", "a \\le b", prediction="a \\leq b")]
    assert scored_texts(rows, canonical=False) == (["a \\leq b"], ["a \\le b"])
    predictions, references = scored_texts(rows, canonical=True)
    assert predictions == references


def _tiny_dataset(path: Path) -> list[str]:
    """A test split of rendered formulas with one unreadable image (2nd row); returns its formulas."""
    formulas = [FORMULAS["square"], FORMULAS["frac"], FORMULAS["sum"], FORMULAS["y_square"], FORMULAS["no_space"]]
    images = []
    for result in render_formulas(formulas, **RENDER_OPTIONS):
        buffer = io.BytesIO()
        result.image.save(buffer, format="PNG")
        images.append({"bytes": buffer.getvalue(), "path": None})
    images[1] = {"bytes": b"not an image", "path": None}
    split = Dataset.from_dict(
        {"image": images, "formula": formulas, "image_name": [f"{i}.png" for i in range(len(formulas))]}
    ).cast_column("image", ImageFeature())
    DatasetDict({"test": split}).save_to_disk(str(path))
    return formulas


def test_cli_evaluate_end_to_end(tmp_path):
    formulas = _tiny_dataset(tmp_path / "data")
    command = [sys.executable, "-m", "im2latex_hf.cli", "evaluate", "--data", str(tmp_path / "data"),
               "--split", "test", "--limit", "4", "--num-beams", "1", "--max-new-tokens", "20", "--num-errors", "2"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "BLEU-4" in run.stdout and "images/s" in run.stdout

    output = tmp_path / "reports" / "test-beam1"
    report = json.loads((output / "report.json").read_text())
    assert set(report) == {
        "model", "data", "split", "decoding", "canonical", "metrics", "counts", "confusions", "timing", "command",
    }  # fmt: skip
    assert report["split"] == "test" and report["decoding"]["num_beams"] == 1
    assert set(report["metrics"]) == {"bleu4", "edit_accuracy", "exact_match", "image_match", "image_match_no_space"}
    assert {k: report["counts"][k] for k in ("rows", "evaluated", "unreadable", "image_match_evaluated")} == {
        "rows": 4, "evaluated": 4, "unreadable": 1, "image_match_evaluated": 4,
    }  # fmt: skip
    assert report["timing"]["images_per_second"] > 0

    with open(output / "predictions.tsv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert [row["image_name"] for row in rows] == ["0.png", "1.png", "2.png", "3.png"]
    assert [row["gold"] for row in rows] == formulas[:4]
    assert rows[1]["error"].startswith("unreadable image") and not rows[1]["prediction"]
    assert not any(row["score"] for row in rows)  # not verified
    direct = text_metrics([row["prediction"] for row in rows], [row["gold"] for row in rows])  # unreadable: ""
    assert {k: report["metrics"][k] for k in direct} == pytest.approx(direct)
    scored = [Row(i, row["image_name"], row["gold"], prediction=row["prediction"]) for i, row in enumerate(rows)]
    canonical = scored_texts(scored, canonical=True)
    assert report["confusions"] == confusion_report(*canonical).to_dict()
    assert "token errors" in run.stdout

    page = (output / "errors.html").read_text(encoding="utf-8")
    errors = sum(tokenize_latex(row["prediction"]) != tokenize_latex(row["gold"]) for row in rows)
    assert page.count("<tr>") == 1 + min(2, errors)
    assert "data:image/png;base64," in page


def test_cli_evaluate_rerank_reports_both_ways_and_the_score_calibration(tmp_path):
    _tiny_dataset(tmp_path / "data")
    command = [sys.executable, "-m", "im2latex_hf.cli", "evaluate", "--data", str(tmp_path / "data"),
               "--split", "test", "--num-beams", "2", "--rerank", "2", "--max-new-tokens", "12",
               "--output-dir", str(tmp_path / "report")]  # fmt: skip
    run = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "without rerank" in run.stdout and "render-match score" in run.stdout

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["decoding"]["rerank"] == 2 and report["decoding"]["verify"] is True
    assert set(report["metrics_without_rerank"]) == set(report["metrics"])
    with open(tmp_path / "report" / "predictions.tsv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert not rows[1]["score"]  # the unreadable image
    scores = [float(row["score"]) for i, row in enumerate(rows) if i != 1]
    assert all(0 <= value <= 1 for value in scores)

    calibration = report["calibration"]
    assert calibration["rows"] == len(scores) == sum(bin_["rows"] for bin_ in calibration["bins"])
    for threshold in calibration["thresholds"]:
        assert threshold["rows"] == sum(v >= threshold["score_at_least"] for v in scores)
        assert threshold["share"] == pytest.approx(threshold["rows"] / len(scores))
    joint = [float(row["score"]) * float(row["confidence"]) for i, row in enumerate(rows) if i != 1]
    assert all(0 < float(row["confidence"]) <= 1 for i, row in enumerate(rows) if i != 1)
    for threshold in calibration["score_times_confidence"]:  # the 4-decimal TSV values: allow one row of rounding
        assert abs(threshold["rows"] - sum(v >= threshold["score_at_least"] for v in joint)) <= 1
    assert "score × model confidence at least" in run.stdout
    chosen = calibration["pseudo_label_threshold"]
    precise = [t for t in calibration["thresholds"] if (t["image_match"] or 0) >= 0.98 and t["rows"] >= 30]
    assert chosen == (precise[0] if precise else None)  # a few rows: none
    assert ("the pseudo-label threshold" if chosen else "no score threshold reaches") in run.stdout
    plain = report["calibration_without_rerank"]  # the model's own best candidates, scored too
    assert plain["rows"] == calibration["rows"] and set(plain) == set(calibration)
