"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from im2latex_hf import Im2LatexConfig, Im2LatexForConditionalGeneration, Im2LatexImageProcessor, Im2LatexProcessor
from im2latex_hf.tokenization_im2latex import train_latex_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The read-only shared data folder (``IM2LATEX_DATA_DIR`` or ``../shared/data``); skips if absent."""
    path = Path(os.environ.get("IM2LATEX_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "im2latex-100k").is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path


HOSTILE_LATEX = {  # what a verifier must score 0 without reading or writing a file (test_verification, test_local_match)
    "input": r"\input{/etc/passwd}",
    "shell-escape": r"\immediate\write18{touch pwned}",
    "openin": r"\newread\r \openin\r=/etc/hostname \read\r to\x \x",
    "csname": r"\csname input\endcsname{/etc/passwd}",
}

TINY_MODEL_FORMULAS = [  # what the tiny test models learn to read (test_model, test_onnx)
    r"x ^ { 2 } + y ^ { 2 } = 1",
    r"\frac { a } { b }",
    r"\alpha + \beta",
    r"\sum _ { i = 1 } ^ { n } i",
    r"e ^ { i \pi } + 1 = 0",
    r"\sqrt { 2 }",
]


@pytest.fixture
def tex_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The programs the renderer runs during the test (latex, dvipng, pdflatex, gs), in order; the runs are real."""
    from im2latex_hf.rendering import tex

    runs: list[str] = []
    real_run = tex._run_tex

    def counted(command: list[str], *args):
        runs.append(command[0])
        return real_run(command, *args)

    monkeypatch.setattr(tex, "_run_tex", counted)
    return runs


def train_tiny_model(
    formulas: list[str], images: list, **config_overrides
) -> tuple[Im2LatexForConditionalGeneration, Im2LatexProcessor]:
    """A tiny model (and its processor, tokenizer trained on ``formulas``) trained until it reproduces them.

    ``config_overrides`` are further `Im2LatexConfig` fields (an encoder variant's, say)."""
    torch.manual_seed(0)
    processor = Im2LatexProcessor(Im2LatexImageProcessor(), train_latex_tokenizer(formulas))
    config = Im2LatexConfig(
        vocab_size=len(processor.tokenizer), d_model=64, decoder_layers=2, decoder_attention_heads=4,
        decoder_ffn_dim=128, dropout=0.0, max_position_embeddings=64, **config_overrides,
    )  # fmt: skip
    model = Im2LatexForConditionalGeneration(config)
    batch = processor(images=images, text=formulas)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(300):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if loss.item() < 0.01:
            break
    model.eval()  # BatchNorm statistics: the running ones from training
    return model, processor


def assert_features_do_not_depend_on_the_batch(model, processor, images: list, atol: float) -> None:
    """Each image's encoder features in a batch of all ``images`` are those it gets alone, in its valid cells."""
    together = processor(images=images)
    with torch.inference_mode():
        batched = model.get_encoder()(together["pixel_values"], together["pixel_mask"])
        for i, image in enumerate(images):
            alone = processor(images=[image])
            features = model.get_encoder()(alone["pixel_values"], alone["pixel_mask"]).last_hidden_state[0]
            valid = batched.attention_mask[i]
            assert valid.sum() == len(features)
            torch.testing.assert_close(batched.last_hidden_state[i][valid], features, atol=atol, rtol=0)
