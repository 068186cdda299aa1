"""scripts/pseudo_label.py on images the test renders and a tiny model trained to read most of them."""

from __future__ import annotations

import json
import subprocess
import sys

import datasets
import pytest

from im2latex_hf.looks import IM2LATEX_DPI
from im2latex_hf.rendering import render_formulas
from im2latex_hf.training import DataSource

from .conftest import REPO_ROOT, train_tiny_model

KNOWN = [r"x ^ { 2 } + y ^ { 2 } = 1", r"\frac { a } { b }", r"\sum _ { i = 1 } ^ { n } i", r"\sqrt { 2 }"]
UNKNOWN = r"\int _ { 0 } ^ { 1 } f ( x ) d x \neq \Gamma"  # never trained on: its reading is wrong


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A folder of unlabelled parquet (image, train_row) and a saved tiny model that reads KNOWN."""
    folder = tmp_path_factory.mktemp("pseudo")
    images = [result.image for result in render_formulas(KNOWN + [UNKNOWN], look="im2latex", dpi=IM2LATEX_DPI)]
    model, processor = train_tiny_model(KNOWN, images[: len(KNOWN)])
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    unlabelled = datasets.Dataset.from_dict(
        {"image": images, "train_row": [10, 11, 12, 13, 14]},
        features=datasets.Features({"image": datasets.Image(), "train_row": datasets.Value("int32")}),
    )
    (folder / "unlabelled").mkdir()
    unlabelled.to_parquet(str(folder / "unlabelled" / "part-0.parquet"))
    return folder


def run(setup, *extra: str, output: str = "labels"):
    command = [sys.executable, str(REPO_ROOT / "scripts" / "pseudo_label.py"), "--data", str(setup / "unlabelled"),
               "--model", str(setup / "model"), "--output-dir", str(setup / output), "--num-beams", "2",
               "--rerank", "2", "--shard-size", "2", *extra]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_verified_readings_are_kept_with_score_row_and_commit_and_runs_resume(setup):
    first = run(setup, "--threshold", "0.95", "--limit", "2")
    assert "of 2 images" in first.stdout
    assert sorted(path.name for path in (setup / "labels").iterdir()) == ["pseudo-00000.json", "pseudo-00000.parquet"]

    run(setup, "--threshold", "0.95")  # resumes: chunk 0 is kept as it is, chunks 1 and 2 are labelled
    counts = [json.loads((setup / "labels" / f"pseudo-{n:05d}.json").read_text()) for n in range(3)]
    assert [c["rows"] for c in counts] == [2, 2, 1]

    pairs = DataSource(str(setup / "labels")).load()  # a training data source as it is
    labels = datasets.Dataset.from_parquet(sorted(str(p) for p in (setup / "labels").glob("*.parquet")))
    assert len(pairs) == len(labels) == sum(c["kept"] for c in counts)
    truth = dict(zip([10, 11, 12, 13, 14], KNOWN + [UNKNOWN]))
    assert set(labels["train_row"]) >= {10, 11, 12, 13}  # the readings the model gets right pass
    for row in labels:
        assert row["formula"] == truth[row["train_row"]] and row["score"] >= 0.95 and row["model_commit"]
    assert 14 not in labels["train_row"]  # the wrong reading does not


def test_the_onnx_backend_keeps_the_same_pairs(setup, tmp_path, monkeypatch):
    monkeypatch.setenv("IM2LATEX_CACHE", str(tmp_path / "cache"))  # the export goes here
    run(setup, "--threshold", "0.95", "--num-beams", "1", "--rerank", "1", output="greedy")
    run(setup, "--threshold", "0.95", "--num-beams", "1", "--rerank", "1", "--backend", "onnx", output="greedy-onnx")
    pytorch, onnx = (
        datasets.Dataset.from_parquet(sorted(str(p) for p in (setup / name).glob("*.parquet")))
        for name in ("greedy", "greedy-onnx")
    )
    assert len(pytorch) >= len(KNOWN) - 1  # greedy reads most of what the model was trained on
    assert pytorch["formula"] == onnx["formula"] and pytorch["train_row"] == onnx["train_row"]
    assert onnx["score"] == pytest.approx(pytorch["score"])
