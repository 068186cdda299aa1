"""Tests of im2latex_hf.data.im2latex: building the DatasetDict from im2latex-100k's original layout."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import Image as ImageFeature
from datasets import load_from_disk
from PIL import Image, ImageDraw

from im2latex_hf.data.im2latex import (
    EMPTY_FORMULA,
    FEATURES,
    INDEX_OUT_OF_RANGE,
    MALFORMED_LINE,
    MISSING_IMAGE,
    UNREADABLE_IMAGE,
    build_im2latex_dataset,
    held_out_split,
)

from .conftest import REPO_ROOT

FORMULAS = [
    "x + 1",
    "",  # empty
    "\\alpha \x0c b",  # a form feed must not split the line (str.splitlines would)
    "y ^ { 2 }",
    "   ",  # blank: empty
    "\\frac { a } { b }",
]
TRAIN_LINES = [
    "a.png 0",  # kept
    "b.png 2",  # kept
    "missing.png 0",  # missing image
    "c.png",  # malformed
    "c.png x",  # malformed
    "c.png 3 extra",  # malformed
    "c.png 99",  # out of range
    "c.png -1",  # out of range
    "c.png 1",  # empty formula
    "c.png 4",  # empty formula
    "corrupt.png 0",  # unreadable: not a PNG
    "truncated.png 3",  # unreadable: PNG cut short
    "d.png 5",  # kept
]
VALIDATION_LINES = ["a.png 3", "d.png 0"]  # the same image may appear in several splits


def _draw(text: str, size: tuple[int, int] = (120, 32)) -> Image.Image:
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((4, 8), text, fill=0)
    return image


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_layout(root: Path, with_test_file: bool = False) -> dict[str, bytes]:
    """Write a tiny im2latex-100k layout under ``root``; returns the good images' PNG bytes by name."""
    image_dir = root / "formula_images_processed"
    image_dir.mkdir(parents=True)
    pngs = {
        name: _png_bytes(_draw(text))
        for name, text in [("a.png", "x+1"), ("b.png", "ab"), ("c.png", "c"), ("d.png", "a/b")]
    }
    for name, data in pngs.items():
        (image_dir / name).write_bytes(data)
    (image_dir / "corrupt.png").write_bytes(b"this is not a png")
    (image_dir / "truncated.png").write_bytes(pngs["a.png"][:60])
    (root / "im2latex_formulas.norm.lst").write_text("\n".join(FORMULAS) + "\n", encoding="utf-8")
    (root / "im2latex_train_filter.lst").write_text("\n".join(TRAIN_LINES) + "\n")
    (root / "im2latex_validate_filter.lst").write_text("\n".join(VALIDATION_LINES) + "\n")
    if with_test_file:
        (root / "im2latex_test_filter.lst").write_text("c.png 0\n")
    return pngs


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "im2latex-100k"
    return root, make_layout(root)


def test_build_counts_every_bad_case(layout, tmp_path, caplog) -> None:
    root, pngs = layout
    with caplog.at_level(logging.WARNING, logger="im2latex_hf.data.im2latex"):
        dataset, report = build_im2latex_dataset(root, cache_dir=tmp_path / "cache")

    assert set(dataset) == {"train", "validation"}
    train = report.splits["train"]
    assert train.found and train.lines == len(TRAIN_LINES) and train.rows == 3
    assert dict(train.skipped) == {
        MISSING_IMAGE: 1,
        MALFORMED_LINE: 3,
        INDEX_OUT_OF_RANGE: 2,
        EMPTY_FORMULA: 2,
        UNREADABLE_IMAGE: 2,
    }
    assert train.examples[MISSING_IMAGE] == ["line 3: 'missing.png 0'"]
    assert report.splits["validation"].rows == 2 and not report.splits["validation"].skipped
    assert not report.splits["test"].found
    assert report.total_skipped == 10

    messages = caplog.text
    assert "missing.png" in messages and "corrupt.png" in messages and "'c.png x'" in messages
    assert "im2latex_test_filter.lst" in messages
    assert "not found" in str(report) and "skipped 2 unreadable_image" in str(report)

    assert dataset["train"].features == FEATURES
    assert dataset["train"]["image_name"] == ["a.png", "b.png", "d.png"]
    assert dataset["train"]["formula"] == ["x + 1", "\\alpha \x0c b", "\\frac { a } { b }"]
    assert dataset["validation"]["formula"] == ["y ^ { 2 }", "x + 1"]
    row = dataset["train"][0]
    expected = np.asarray(Image.open(io.BytesIO(pngs["a.png"])))
    assert row["image"].mode == "L" and np.array_equal(np.asarray(row["image"]), expected)


def test_save_load_round_trip_without_source(layout, tmp_path) -> None:
    root, pngs = layout
    dataset, _ = build_im2latex_dataset(root, cache_dir=tmp_path / "cache")
    dataset.save_to_disk(tmp_path / "saved")
    shutil.rmtree(root)
    shutil.rmtree(tmp_path / "cache")

    loaded = load_from_disk(str(tmp_path / "saved"))
    assert loaded.num_rows == {"train": 3, "validation": 2}
    assert loaded["train"].features == FEATURES
    assert loaded["train"]["formula"] == dataset["train"]["formula"]
    raw = loaded["train"].cast_column("image", ImageFeature(decode=False))
    assert [r["bytes"] for r in raw["image"]] == [pngs["a.png"], pngs["b.png"], pngs["d.png"]]


def test_num_proc_gives_the_same_rows(tmp_path) -> None:
    root = tmp_path / "data"
    make_layout(root, with_test_file=True)
    serial, serial_report = build_im2latex_dataset(root, cache_dir=tmp_path / "c1")
    parallel, parallel_report = build_im2latex_dataset(root, cache_dir=tmp_path / "c2", num_proc=2)
    for split in serial:
        assert parallel[split]["image_name"] == serial[split]["image_name"]
        assert parallel[split]["formula"] == serial[split]["formula"]
    assert str(parallel_report) == str(serial_report)
    assert parallel.num_rows == {"train": 3, "validation": 2, "test": 1}


def test_rebuild_sees_changed_image(layout, tmp_path) -> None:
    root, _ = layout
    build_im2latex_dataset(root, cache_dir=tmp_path / "cache")
    (root / "formula_images_processed" / "a.png").write_bytes(_png_bytes(_draw("new", size=(64, 20))))
    dataset, _ = build_im2latex_dataset(root, cache_dir=tmp_path / "cache")
    assert dataset["train"][0]["image"].size == (64, 20)


def test_held_out_split_is_the_last_validation_rows(layout, tmp_path) -> None:
    root, _ = layout
    dataset, _ = build_im2latex_dataset(root, cache_dir=tmp_path / "cache")
    held_out = held_out_split(dataset, rows=1)
    assert list(held_out) == ["validation"]
    assert held_out["validation"]["formula"] == ["x + 1"]  # the last of ["y ^ { 2 }", "x + 1"]
    with pytest.raises(ValueError, match="cannot hold out 3 of 2"):
        held_out_split(dataset, rows=3)


def test_build_dataset_script_saves_the_held_out_rows_and_reuses_a_built_dataset(layout, tmp_path) -> None:
    root, _ = layout
    command = [sys.executable, str(REPO_ROOT / "scripts" / "build_dataset.py"), "--data-dir", str(root)]
    command += ["--output-dir", str(tmp_path / "dataset"), "--cache-dir", str(tmp_path / "cache")]
    command += ["--held-out-rows", "1"]
    subprocess.run([*command, "--held-out-dir", str(tmp_path / "held-out")], check=True, capture_output=True)
    assert load_from_disk(str(tmp_path / "held-out"))["validation"]["formula"] == ["x + 1"]
    assert load_from_disk(str(tmp_path / "dataset")).num_rows == {"train": 3, "validation": 2}

    shutil.rmtree(root)  # a second run loads the saved DatasetDict: the source is not read again
    result = subprocess.run(
        [*command, "--held-out-dir", str(tmp_path / "again")], check=True, capture_output=True, text=True
    )
    assert "loaded the DatasetDict already at" in result.stdout
    assert load_from_disk(str(tmp_path / "again"))["validation"]["formula"] == ["x + 1"]


def test_split_without_usable_rows_is_left_out(layout, tmp_path) -> None:
    root, _ = layout
    (root / "im2latex_validate_filter.lst").write_text("nothing.png 0\nbad line here\n")
    dataset, report = build_im2latex_dataset(root, cache_dir=tmp_path / "cache")
    assert set(dataset) == {"train"}
    assert report.splits["validation"].rows == 0
    assert dict(report.splits["validation"].skipped) == {MISSING_IMAGE: 1, MALFORMED_LINE: 1}


def test_no_usable_split_raises(layout, tmp_path) -> None:
    root, _ = layout
    (root / "im2latex_train_filter.lst").unlink()
    (root / "im2latex_validate_filter.lst").write_text("")
    with pytest.raises(ValueError, match="no usable rows"):
        build_im2latex_dataset(root, cache_dir=tmp_path / "cache")


def test_missing_formula_file_raises(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="im2latex_formulas.norm.lst"):
        build_im2latex_dataset(tmp_path)


def test_shared_data_row_counts(shared_data_dir: Path, tmp_path: Path) -> None:
    """The real data (about 10 s): every line of the three split files becomes a row."""
    dataset, report = build_im2latex_dataset(shared_data_dir / "im2latex-100k", cache_dir=tmp_path / "cache")
    assert dataset.num_rows == {"train": 3000, "validation": 8475, "test": 9444}
    assert report.total_skipped == 0
    assert dataset["validation"][0]["image"].mode == "L"
