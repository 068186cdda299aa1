"""Metrics in im2markup's convention, as functions and as `evaluate` modules shipped in this folder.

Token-level text metrics (formulas as space-separated LaTeX tokens): ``bleu4``, ``edit_accuracy``,
``exact_match``, ``text_metrics``. Rendered-image match: ``image_match``, ``image_match_rates``,
``pair_matches``, ``match_rates`` (see ``image_match.py``). Each has an ``evaluate`` module in a
sub-folder (``latex_bleu``, ``latex_edit_accuracy``, ``latex_exact_match``, ``latex_image_match``),
loaded offline with ``load_metric(name)`` or ``evaluate.load(str(METRICS_DIR / name))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import sacrebleu
from rapidfuzz.distance import Levenshtein

from ..latex import tokenize_latex
from .image_match import PairMatch, image_match, image_match_rates, match_rates, pair_matches

METRICS_DIR = Path(__file__).resolve().parent
"""The folder holding the ``evaluate`` metric modules (one sub-folder each)."""

METRIC_NAMES = ("latex_bleu", "latex_edit_accuracy", "latex_exact_match", "latex_image_match")


def bleu4(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 on LaTeX tokens (as multi-bleu.perl on the normalized token files), in 0..1."""
    hypotheses = [" ".join(tokenize_latex(p)) for p in predictions]
    refs = [" ".join(tokenize_latex(r)) for r in references]
    return sacrebleu.corpus_bleu(hypotheses, [refs], tokenize="none", force=True).score / 100.0


def edit_accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """1 − Σ token Levenshtein distance / Σ max(length): im2markup's normalized edit distance score."""
    distance = total = 0
    for prediction, reference in zip(predictions, references, strict=True):
        pred_tokens, ref_tokens = tokenize_latex(prediction), tokenize_latex(reference)
        distance += Levenshtein.distance(pred_tokens, ref_tokens)
        total += max(len(pred_tokens), len(ref_tokens))
    return 1.0 - distance / total if total else 1.0


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of predictions whose token sequence equals the reference's."""
    pairs = list(zip(predictions, references, strict=True))
    return sum(tokenize_latex(p) == tokenize_latex(r) for p, r in pairs) / len(pairs) if pairs else 0.0


def text_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """BLEU-4, edit accuracy and exact match together."""
    return {
        "bleu4": bleu4(predictions, references),
        "edit_accuracy": edit_accuracy(predictions, references),
        "exact_match": exact_match(predictions, references),
    }


def load_metric(name: str, **kwargs):
    """Load one of this package's ``evaluate`` modules (``METRIC_NAMES``) from its folder, offline.

    Keyword arguments go to ``evaluate.load`` (e.g. ``keep_in_memory=True``).
    """
    import evaluate

    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; choose one of {', '.join(METRIC_NAMES)}")
    return evaluate.load(str(METRICS_DIR / name), **kwargs)


__all__ = [
    "METRICS_DIR",
    "METRIC_NAMES",
    "PairMatch",
    "bleu4",
    "edit_accuracy",
    "exact_match",
    "image_match",
    "image_match_rates",
    "load_metric",
    "match_rates",
    "pair_matches",
    "text_metrics",
]
