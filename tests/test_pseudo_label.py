"""scripts/pseudo_label.py and scripts/build_pseudo_pairs.py on images the test renders and a tiny model
trained to read most of them."""

from __future__ import annotations

import runpy
import subprocess
import sys

import datasets
import numpy as np
import pytest
import torch

from im2latex_hf import Im2LatexForConditionalGeneration, Im2LatexProcessor
from im2latex_hf.metrics.verification import render_match
from im2latex_hf.rendering import render_formulas
from im2latex_hf.rendering.looks import IM2LATEX_DPI
from im2latex_hf.training import DataSource, load_train_data

from .conftest import REPO_ROOT, train_tiny_model

KNOWN = [r"x ^ { 2 } + y ^ { 2 } = 1", r"\frac { a } { b }", r"\sum _ { i = 1 } ^ { n } i", r"\sqrt { 2 }"]
UNKNOWN = r"\int _ { 0 } ^ { 1 } f ( x ) d x \neq \Gamma"  # never trained on: its reading is wrong
TRAIN_ROWS = [10, 11, 12, 13, 14]
BEAMS = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A folder of unlabelled parquet (image, train_row), a saved tiny model that reads KNOWN, and its labels."""
    folder = tmp_path_factory.mktemp("pseudo")
    images = [result.image for result in render_formulas(KNOWN + [UNKNOWN], look="im2latex-fast", dpi=IM2LATEX_DPI)]
    model, processor = train_tiny_model(KNOWN, images[: len(KNOWN)])
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    unlabelled = datasets.Dataset.from_dict(
        {"image": images, "train_row": TRAIN_ROWS},
        features=datasets.Features({"image": datasets.Image(), "train_row": datasets.Value("int32")}),
    )
    (folder / "unlabelled").mkdir()
    unlabelled.to_parquet(str(folder / "unlabelled" / "part-0.parquet"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IM2LATEX_CACHE", str(folder / "cache"))  # the ONNX export goes here
        first = run("pseudo_label.py", *label_args(folder), "--limit", "2")
        assert "labelled 2 images" in first.stdout
        assert [p.name for p in (folder / "labels").iterdir()] == ["labels-00000.parquet"]
        run("pseudo_label.py", *label_args(folder))  # resumes: chunk 0 is kept, chunks 1 and 2 are labelled
    return folder


def label_args(folder) -> list[str]:
    return ["--data", str(folder / "unlabelled"), "--model", str(folder / "model"), "--output-dir",
            str(folder / "labels"), "--num-beams", str(BEAMS), "--shard-size", "2"]  # fmt: skip


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / script), *args], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def load(folder, pattern: str) -> datasets.Dataset:
    return datasets.Dataset.from_parquet(sorted(str(path) for path in folder.glob(pattern)))


def test_every_image_keeps_all_its_candidates_with_confidence(setup):
    labels = load(setup / "labels", "labels-*.parquet")
    assert labels["index"] == [0, 1, 2, 3, 4] and labels["train_row"] == TRAIN_ROWS
    assert all(row["model_commit"] and row["error"] is None for row in labels)
    for row in labels:
        candidates = row["candidates"]
        assert len(candidates) == BEAMS and len({c["latex"] for c in candidates}) == BEAMS
        for c in candidates:
            assert c["log_prob"] < 0 and 0 < c["min_token_prob"] <= c["mean_token_prob"] <= 1
    best = {row["train_row"]: row["candidates"][0] for row in labels}
    read_right = [row for row, formula in zip(TRAIN_ROWS, KNOWN) if best[row]["latex"] == formula]
    assert len(read_right) >= 3 and all(best[row]["compiles"] for row in read_right)


def test_confidence_is_the_pytorch_models_own(setup):
    """Each candidate's log-probability, as ONNX Runtime's beam search kept it, equals the PyTorch model's
    teacher-forced log-probability of the same tokens."""
    model = Im2LatexForConditionalGeneration.from_pretrained(setup / "model").eval()
    processor = Im2LatexProcessor.from_pretrained(setup / "model")
    images = load(setup / "unlabelled", "*.parquet")["image"]
    labels = load(setup / "labels", "labels-*.parquet")
    for image, row in zip(images, labels):
        for candidate in row["candidates"]:
            tokens = processor.tokenizer(candidate["latex"], add_special_tokens=False)["input_ids"]
            prompt = torch.tensor([[model.config.decoder_start_token_id, *tokens]])
            target = torch.tensor([*tokens, model.config.eos_token_id])
            with torch.inference_mode():
                logits = model(**processor(images=[image]), decoder_input_ids=prompt).logits[0]
            token_log_probs = logits.log_softmax(-1).gather(1, target[:, None])[:, 0].numpy()
            assert candidate["log_prob"] == pytest.approx(float(token_log_probs.sum()), abs=1e-3)
            assert candidate["min_token_prob"] == pytest.approx(float(np.exp(token_log_probs).min()), abs=1e-4)


def test_several_text_scales_pool_their_candidates(setup, monkeypatch):
    monkeypatch.setenv("IM2LATEX_CACHE", str(setup / "cache"))  # the ONNX export made by the setup
    output = setup / "labels-two-scales"
    run("pseudo_label.py", "--data", str(setup / "unlabelled"), "--model", str(setup / "model"), "--output-dir",
        str(output), "--num-beams", str(BEAMS), "--shard-size", "5", "--text-scales", "auto,1.3")  # fmt: skip
    one_scale = load(setup / "labels", "labels-*.parquet")
    for row, single in zip(load(output, "labels-*.parquet"), one_scale):
        candidates = row["candidates"]
        assert len({c["latex"] for c in candidates}) == len(candidates) <= 2 * BEAMS  # each reading once
        assert {None if c["text_scale"] is None else round(c["text_scale"], 3) for c in candidates} <= {None, 1.3}
        auto = [c["latex"] for c in candidates if c["text_scale"] is None]
        assert set(auto) <= {c["latex"] for c in single["candidates"]}  # the image processor's scale, as before
        best_of_scale = {}
        for c in candidates:
            best_of_scale.setdefault(c["text_scale"], c["mean_token_prob"])
        assert candidates[0]["mean_token_prob"] == max(best_of_scale.values())  # the surest scale first


def test_compile_check_catches_latex_that_does_not_compile(setup):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        from pseudo_label import compiling
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    assert compiling([r"\frac { a } { b }", r"\frac { a }", r"x ^ { 2 } ^ { 3 }", r"\frac { a } { b }"]) == {
        r"\frac { a } { b }": True,
        r"\frac { a }": False,
        r"x ^ { 2 } ^ { 3 }": False,
    }


def test_real_image_pairs_take_the_confident_best_candidates(setup):
    labels = load(setup / "labels", "labels-*.parquet")
    probs = sorted(row["candidates"][0]["min_token_prob"] for row in labels)
    threshold = probs[1]  # keeps all but the least confident image
    run("build_pseudo_pairs.py", "--labels", str(setup / "labels"), "--data", str(setup / "unlabelled"),
        "--output-dir", str(setup / "real"), "--kind", "real", "--min-token-prob", str(threshold))  # fmt: skip
    pairs = load(setup / "real", "pseudo-*.parquet")
    best = {row["train_row"]: row["candidates"][0] for row in labels}
    expected = [row for row in TRAIN_ROWS if best[row]["min_token_prob"] >= threshold and best[row]["compiles"]]
    assert pairs["train_row"] == expected and len(expected) >= 3
    images = dict(zip(TRAIN_ROWS, load(setup / "unlabelled", "*.parquet")["image"]))
    for row in pairs:
        assert row["formula"] == best[row["train_row"]]["latex"]
        assert np.array_equal(np.asarray(row["image"]), np.asarray(images[row["train_row"]]))  # the real image
    source = DataSource(str(setup / "real"))
    assert source.pseudo_labelled and len(source.load()) == len(pairs)
    with pytest.raises(ValueError, match="outnumber"):  # never more than half of the training rows
        load_train_data([source, DataSource(str(setup / "real"), end=1)])


def test_verified_real_image_pairs_keep_the_best_verified_reading(setup):
    """With --min-render-match, each image keeps the candidate that the verifier scores highest, and only if it
    scores enough: the images the model reads right keep their own formula, the one it misreads is dropped."""
    command = ["--labels", str(setup / "labels"), "--data", str(setup / "unlabelled"),
               "--output-dir", str(setup / "verified"), "--kind", "real", "--min-render-match", "0.5"]  # fmt: skip
    run("build_pseudo_pairs.py", *command)
    pairs = load(setup / "verified", "pseudo-*.parquet")
    again = run("build_pseudo_pairs.py", *command)  # resumes: every pairs file is there, so none is made again
    assert again.stdout.count("kept (made before)") == len(list((setup / "labels").glob("labels-*.parquet"))) == 3
    gold = dict(zip(TRAIN_ROWS, KNOWN + [UNKNOWN]))
    labels = {row["train_row"]: row["candidates"] for row in load(setup / "labels", "labels-*.parquet")}
    read_right = [row for row in TRAIN_ROWS[:-1] if any(c["latex"] == gold[row] for c in labels[row])]
    assert len(read_right) >= 3
    assert pairs["train_row"] == read_right  # the misread UNKNOWN image (row 14) is not kept
    images = dict(zip(TRAIN_ROWS, load(setup / "unlabelled", "*.parquet")["image"]))
    for row in pairs:
        assert row["formula"] == gold[row["train_row"]] and row["render_match"] >= 0.5
        assert row["render_match"] == pytest.approx(render_match(images[row["train_row"]], row["formula"]), abs=1e-6)
        compiling = [c["latex"] for c in labels[row["train_row"]] if c["compiles"]]
        others = [render_match(images[row["train_row"]], latex) for latex in compiling if latex != row["formula"]]
        assert all(score <= row["render_match"] for score in others)


def test_verifying_chunks_side_by_side_keeps_each_images_scores_in_order(setup):
    """build_pseudo_pairs verifies two chunks at once: one image per chunk gives the scores that one chunk gives."""
    render_matches = runpy.run_path(str(REPO_ROOT / "scripts" / "build_pseudo_pairs.py"))["render_matches"]
    labels = load(setup / "labels", "labels-*.parquet")
    images = load(setup / "unlabelled", "*.parquet").select_columns(["image"])
    one_chunk = render_matches(labels, images, 0.0, workers=1)
    assert [len(scores) for scores in one_chunk] == [len(row["candidates"]) for row in labels]
    assert max(max(scores) for scores in one_chunk) >= 0.5  # real scores, not all zeros
    assert render_matches(labels, images, 0.0, workers=1, chunk=1) == one_chunk


def test_back_rendered_pairs_render_a_compiling_candidate(setup):
    run("build_pseudo_pairs.py", "--labels", str(setup / "labels"), "--output-dir", str(setup / "rendered"),
        "--kind", "rendered", "--look", "im2latex-fast")  # fmt: skip
    pairs = load(setup / "rendered", "rendered-*.parquet")
    labels = {row["train_row"]: row["candidates"] for row in load(setup / "labels", "labels-*.parquet")}
    assert len(pairs) == sum(any(c["compiles"] for c in candidates) for candidates in labels.values()) >= 4
    for row in pairs:
        assert row["formula"] == next(c["latex"] for c in labels[row["train_row"]] if c["compiles"])
        assert row["image"].size[0] > 10 and np.asarray(row["image"].convert("L")).min() < 128  # ink
    assert not DataSource(str(setup / "rendered")).pseudo_labelled  # right by construction
