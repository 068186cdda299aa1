"""The shipped LaTeX tokenizer (`tokenizer/`) on real im2latex-100k formulas."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from im2latex_hf.latex import tokenize_latex
from im2latex_hf.tokenization_im2latex import train_latex_tokenizer

from .conftest import REPO_ROOT


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(REPO_ROOT / "tokenizer")


def split_formulas(data_dir, split: str) -> list[str]:
    formulas = (data_dir / "im2latex_formulas.norm.lst").read_text(encoding="utf-8").split("\n")
    pairs = [line.split() for line in (data_dir / f"im2latex_{split}_filter.lst").read_text().splitlines()]
    return [formulas[int(number)] for _, number in pairs]


def test_special_tokens_and_eos(tokenizer):
    assert [tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id] == [
        0, 1, 2, 3,
    ]  # fmt: skip
    ids = tokenizer(r"\frac { a } { b }")["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id and tokenizer.bos_token_id not in ids


def test_latex_units_stay_whole_and_spaces_separate_commands(tokenizer):
    tokens = tokenizer.tokenize(r"\left( \alpha b \right) \begin{array} { c } x \end{array} \mathrm { d }")
    assert tokens[:4] == [r"\left(", r"\alpha", "b", r"\right)"] and r"\begin{array}" in tokens
    assert tokenizer.decode(tokenizer(r"\alpha b")["input_ids"], skip_special_tokens=True) == r"\alpha b"
    # unspaced input is split the same way
    assert tokenizer.tokenize(r"\frac{a}{b}") == tokenizer.tokenize(r"\frac { a } { b }")


def test_round_trip_on_every_im2latex_formula(tokenizer, shared_data_dir):
    """decode(encode(x)) gives back x's tokens for every formula; train and validate ones never hit <unk>."""
    data_dir = shared_data_dir / "im2latex-100k"
    vocabulary = set(tokenizer.get_vocab())
    formulas = (data_dir / "im2latex_formulas.norm.lst").read_text(encoding="utf-8").split("\n")
    for formula in formulas:
        ids = tokenizer(formula)["input_ids"]
        tokens = tokenize_latex(formula)
        known = [token for token in tokens if token in vocabulary]
        assert tokenize_latex(tokenizer.decode(ids, skip_special_tokens=True)) == known
        assert ids.count(tokenizer.unk_token_id) == len(tokens) - len(known)
    for split in ("train", "validate"):  # the tokenizer's training splits
        for formula in split_formulas(data_dir, split):
            assert tokenizer.unk_token_id not in tokenizer(formula)["input_ids"], formula


def test_train_tokenizer_learns_the_vocabulary_of_its_formulas():
    tokenizer = train_latex_tokenizer([r"x ^ { 2 }", r"\sqrt { y }"])
    assert set(tokenizer.get_vocab()) == {"<pad>", "<s>", "</s>", "<unk>", "x", "^", "{", "2", "}", r"\sqrt", "y"}
    assert tokenizer(r"\beta")["input_ids"] == [tokenizer.unk_token_id, tokenizer.eos_token_id]
