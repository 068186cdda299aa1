"""Tests of im2latex_hf.data.corpus: planning, rendering, sharding and resuming the training corpus (real TeX)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from datasets import Dataset
from datasets import Image as ImageFeature
from PIL import Image

from im2latex_hf.data import corpus
from im2latex_hf.data.corpus import (
    DUPLICATE,
    FEATURES,
    HELD_OUT,
    IN_BENCHMARK,
    LOOK_DPI_RANGE,
    LOOK_FONT_SIZES,
    LOOK_FONTS,
    TOO_LONG,
    UNNORMALIZABLE,
    build_corpus,
    load_corpus,
    plan_corpus,
)
from im2latex_hf.data.normalization import normalize_latex
from im2latex_hf.rendering.looks import IM2LATEX_BUCKETS

FORMULAS = [
    "x + 1",  # 0 train
    "a + b",  # 1 validate; also in train: held out
    "\\frac { 1 } { 2 }",  # 2 test
    "y ^ { 2 }",  # 3 train
    " ".join(["x"] * 151),  # 4 train: too long
    "\\undefinedcommandxyz { x }",  # 5 train: TeX fails on it
    "y ^ 2",  # 6 train: the same as 3 once canonical
]
TRAIN = [0, 3, 4, 5, 6, 1]
SCHOOL_MATH = [
    "a+b",  # held out (validate)
    "\\frac12",  # held out (test)
    "x+1",  # duplicate of a train formula
    "z^2+1",
    "\\sqrt{x}",
    "\u00e9",  # non-ASCII: cannot be normalized
    "",  # blank line: not a formula
    "q=r",
]
KEPT = ["x + 1", "y ^ { 2 }", "\\undefinedcommandxyz { x }", "z ^ { 2 } + 1", "\\sqrt { x }", "q = r"]
EXPECTED_DROPS = {
    "im2latex-train": {DUPLICATE: 1, HELD_OUT: 1, TOO_LONG: 1},
    "school-math": {DUPLICATE: 1, HELD_OUT: 2, UNNORMALIZABLE: 1},
}
OPTIONS = {"generated": 0, "looks_per_formula": 2, "shard_size": 5}  # 12 looks: shards of 5, 5 and 2


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A tiny data folder in the shared data's layout."""
    root = tmp_path / "data"
    im2latex = root / "im2latex-100k"
    im2latex.mkdir(parents=True)
    (im2latex / "im2latex_formulas.norm.lst").write_text("".join(f"{f}\n" for f in FORMULAS), encoding="utf-8")
    for name, numbers in (("train", TRAIN), ("validate", [1]), ("test", [2])):
        lines = "".join(f"{n:04d}.png {n}\n" for n in numbers)
        (im2latex / f"im2latex_{name}_filter.lst").write_text(lines, encoding="utf-8")
    (root / "formulas").mkdir()
    (root / "formulas" / "school-math.lst").write_text("\n".join(SCHOOL_MATH) + "\n", encoding="utf-8")
    return root


def _shards(output: Path) -> list[Path]:
    return sorted(output.glob("shard-*.parquet"))


def test_plan_excludes_held_out_drops_long_and_dedupes(data_dir: Path) -> None:
    plan = plan_corpus(data_dir, **OPTIONS)
    assert plan.formulas == KEPT
    assert plan.sources == ["im2latex-train"] * 3 + ["school-math"] * 3
    assert plan.drops == EXPECTED_DROPS


def test_plan_looks_are_random_within_ranges_and_deterministic(data_dir: Path) -> None:
    plan = plan_corpus(data_dir, generated=0, looks_per_formula=3, seed=1)
    assert Counter(look.formula for look in plan.looks) == {index: 3 for index in range(len(KEPT))}
    for look in plan.looks:
        assert look.font in LOOK_FONTS and look.font_size in LOOK_FONT_SIZES
        assert LOOK_DPI_RANGE[0] <= look.dpi <= LOOK_DPI_RANGE[1]
    assert plan_corpus(data_dir, generated=0, looks_per_formula=3, seed=1).looks == plan.looks
    assert plan_corpus(data_dir, generated=0, looks_per_formula=3, seed=2).looks != plan.looks


def test_plan_generates_formulas_through_the_same_filters(data_dir: Path) -> None:
    plan = plan_corpus(data_dir, generated=20, seed=0)
    generated = [f for f, source in zip(plan.formulas, plan.sources, strict=True) if source == "generated"]
    assert generated, "the generator added formulas"
    assert len(generated) + sum(plan.drops.get("generated", {}).values()) == 20
    assert plan.formulas[: len(KEPT)] == KEPT
    assert not {"a + b", "\\frac { 1 } { 2 }"} & set(plan.formulas)


def test_build_writes_shards_manifest_and_formulas(data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "corpus"
    manifest = build_corpus(data_dir, output, **OPTIONS)

    assert [p.name for p in _shards(output)] == ["shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet"]
    assert not list(output.glob("*.tmp"))
    dataset = load_corpus(output, cache_dir=tmp_path / "cache")
    assert dataset.features == FEATURES
    assert len(dataset) == 10, "12 looks, 2 of them of the formula TeX cannot render"
    assert set(dataset["formula"]) == set(KEPT) - {"\\undefinedcommandxyz { x }"}
    row = dataset[0]
    assert isinstance(row["image"], Image.Image) and row["image"].mode == "L"
    assert row["font"] in LOOK_FONTS and row["font_size"] in LOOK_FONT_SIZES and isinstance(row["display"], bool)
    # The shards carry datasets' Image feature themselves: a plain parquet load decodes images too.
    plain = Dataset.from_parquet(str(_shards(output)[0]), cache_dir=str(tmp_path / "cache"))
    assert plain.features["image"] == ImageFeature()
    assert isinstance(plain[0]["image"], Image.Image)

    assert manifest == json.loads((output / "manifest.json").read_text())
    assert manifest["complete"] and manifest["shards"] == {"planned": 3, "finished": 3}
    assert manifest["formulas"] == {"im2latex-train": 3, "school-math": 3, "total": 6}
    assert manifest["dropped_formulas"] == EXPECTED_DROPS
    images = manifest["images"]
    assert (images["planned"], images["rendered"], images["failed"]) == (12, 10, 2)
    assert images["by_source"] == dict(Counter(dataset["source"])) == {"im2latex-train": 4, "school-math": 6}
    assert images["by_font"] == dict(Counter(dataset["font"]))
    assert sum(images["by_font_size"].values()) == sum(images["by_style"].values()) == 10
    assert sum(manifest["render_errors"].values()) == 2
    assert (output / "formulas.txt").read_text(encoding="utf-8").splitlines() == KEPT


def test_resume_skips_finished_shards(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "corpus"
    partial = build_corpus(data_dir, output, max_shards=1, **OPTIONS)
    assert not partial["complete"] and partial["images"]["rendered"] + partial["images"]["failed"] == 5
    first = _shards(output)
    assert len(first) == 1
    mtime = first[0].stat().st_mtime_ns

    manifest = build_corpus(data_dir, output, **OPTIONS)
    assert len(_shards(output)) == 3 and first[0].stat().st_mtime_ns == mtime
    assert manifest["complete"] and manifest["images"]["rendered"] + manifest["images"]["failed"] == 12

    def no_rendering(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished corpus was rendered again")

    monkeypatch.setattr(corpus, "render_formulas", no_rendering)
    assert build_corpus(data_dir, output, **OPTIONS) == manifest


def test_resume_with_other_options_is_refused(data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "corpus"
    build_corpus(data_dir, output, max_shards=0, **OPTIONS)
    with pytest.raises(ValueError, match="other inputs or options"):
        build_corpus(data_dir, output, **{**OPTIONS, "shard_size": 4})
    with pytest.raises(ValueError, match="other inputs or options"):
        build_corpus(data_dir, output, **OPTIONS, benchmark_formulas=["q = r"])


def test_plan_keeps_out_the_benchmark_formulas_in_any_spelling(data_dir: Path) -> None:
    plan = plan_corpus(data_dir, **OPTIONS, benchmark_formulas=["y^2", "\\sqrt x"])
    assert plan.formulas == [f for f in KEPT if f not in ("y ^ { 2 }", "\\sqrt { x }")]
    # train's "y ^ { 2 }" and "y ^ 2" (a duplicate without the benchmark), school-math's "\\sqrt{x}"
    assert plan.drops["im2latex-train"] == {HELD_OUT: 1, IN_BENCHMARK: 2, TOO_LONG: 1}
    assert plan.drops["school-math"] == {**EXPECTED_DROPS["school-math"], IN_BENCHMARK: 1}


def test_plan_adds_textbook_formulas_normalized_and_filtered(data_dir: Path) -> None:
    plan = plan_corpus(data_dir, **{**OPTIONS, "textbook": 30})
    textbook = [f for f, source in zip(plan.formulas, plan.sources, strict=True) if source == "textbook"]
    assert len(textbook) + sum(plan.drops.get("textbook", {}).values()) == 30
    assert textbook and all(normalize_latex(f) == f for f in textbook)
    assert plan.formulas[: len(KEPT)] == KEPT
    with pytest.raises(ValueError, match="mixed recipe"):
        plan_corpus(data_dir, textbook=5, recipe="im2latex")


def test_plan_draws_only_the_textbook_shapes_asked_for(data_dir: Path, tmp_path: Path) -> None:
    plan = plan_corpus(data_dir, **{**OPTIONS, "textbook": 20, "textbook_shapes": ["cases", "binomial"]})
    textbook = [f for f, source in zip(plan.formulas, plan.sources, strict=True) if source == "textbook"]
    assert textbook and all("\\begin{cases}" in f or "\\binom" in f for f in textbook)
    assert plan.config["textbook_shapes"] == ["cases", "binomial"]
    assert "textbook_shapes" not in plan_corpus(data_dir, **OPTIONS).config  # older plans still resume
    output = tmp_path / "corpus"
    build_corpus(data_dir, output, max_shards=0, **{**OPTIONS, "textbook": 20, "textbook_shapes": ["cases"]})
    with pytest.raises(ValueError, match="other inputs or options"):
        build_corpus(data_dir, output, **{**OPTIONS, "textbook": 20})


def test_im2latex_recipe_trains_on_validate_but_never_on_held_out_rows(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    im2latex = data_dir / "im2latex-100k"
    formulas = (im2latex / "im2latex_formulas.norm.lst").read_text(encoding="utf-8")
    (im2latex / "im2latex_formulas.norm.lst").write_text(formulas + "b ^ { 3 }\nc - d\n", encoding="utf-8")
    (im2latex / "im2latex_validate_filter.lst").write_text("7.png 7\n0001.png 1\n8.png 8\n", encoding="utf-8")
    monkeypatch.setattr(corpus, "HELD_OUT_ROWS", 1)  # the last validate row, "c - d", is held out
    plan = plan_corpus(data_dir, generated=0, looks_per_formula=4, recipe="im2latex")
    assert dict(zip(plan.formulas, plan.sources, strict=True)) == {
        "x + 1": "im2latex-train",
        "y ^ { 2 }": "im2latex-train",
        "\\undefinedcommandxyz { x }": "im2latex-train",
        "a + b": "im2latex-train",  # a validate row that may be trained on: no longer held out
        "b ^ { 3 }": "im2latex-validate",
    }
    assert "school-math" not in plan.drops, "the im2latex recipe has no school-math formulas"
    assert {look.look for look in plan.looks} <= {"im2latex", "plain"}
    calibrated = [look for look in plan.looks if look.look == "im2latex" and look.font == "cm" and look.font_size == 12]
    assert calibrated, "most looks are the calibrated im2latex look"
    with pytest.raises(ValueError, match="unknown recipe"):
        plan_corpus(data_dir, recipe="fancy")


def test_im2latex_recipe_renders_images_in_the_look(data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "corpus"
    manifest = build_corpus(data_dir, output, generated=0, looks_per_formula=3, recipe="im2latex")
    dataset = load_corpus(output, cache_dir=tmp_path / "cache")
    assert set(manifest["images"]["by_look"]) <= {"im2latex", "plain"}
    for row in dataset:
        if row["look"] == "im2latex":  # bucketed and halved: the bucket sizes over 2
            assert (row["image"].width * 2, row["image"].height * 2) in IM2LATEX_BUCKETS
