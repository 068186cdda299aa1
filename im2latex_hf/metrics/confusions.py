"""Token confusions: which gold tokens a model reads as which, from a token alignment of gold and prediction.

Each pair of formulas (space-separated LaTeX tokens) is aligned by Levenshtein edit operations over tokens. A
substitution counts as the confusion (gold token, predicted token); a token the prediction drops counts as
(gold token, ``MISSING``), one it adds as (``MISSING``, predicted token). The small-mark group gathers the
confusions the finer-encoder work targets: accents, primes and dots, and letters that differ by a small mark
(``\\tau``/``r``, ``\\nu``/``v``). Layout tokens (braces, ``_``, ``^``, spaces) move with any misalignment, so
confusions between them, or of one of them with nothing, are only counted (``layout``), not listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

MISSING = "∅"
ACCENTS = frozenset(
    r"\bar \tilde \hat \dot \ddot \vec \check \breve \acute \grave \widetilde \widehat \overline \underline "
    r"\overrightarrow \overleftarrow".split()
)
PRIMES_AND_DOTS = frozenset(r"' \prime . , \cdot \cdots \ldots \dots \ddots \vdots".split())
LOOK_ALIKES = frozenset(
    frozenset(pair) for pair in (("\\tau", "r"), ("\\nu", "v"), ("\\iota", "i"), ("\\imath", "i"), ("\\jmath", "j"))
)
SMALL_MARKS = ACCENTS | PRIMES_AND_DOTS
LAYOUT = frozenset(r"{ } _ ^ ~ \, \; \: \! \quad \qquad".split()) | {"\\ "}


def is_layout(gold: str, predicted: str) -> bool:
    """Whether a confusion is between layout tokens (or a layout token and nothing)."""
    return {gold, predicted} <= LAYOUT | {MISSING}


def is_small_mark(gold: str, predicted: str) -> bool:
    """Whether a confusion belongs to the small-mark group: either side an accent, prime or dot, or a look-alike
    pair of letters."""
    return gold in SMALL_MARKS or predicted in SMALL_MARKS or frozenset((gold, predicted)) in LOOK_ALIKES


def token_confusions(predictions: Sequence[str], references: Sequence[str]) -> Counter[tuple[str, str]]:
    """(gold token, predicted token) → count, over all pairs; ``MISSING`` stands for a dropped or added token."""
    counts: Counter[tuple[str, str]] = Counter()
    for prediction, reference in zip(predictions, references, strict=True):
        gold, predicted = reference.split(), prediction.split()
        for operation in Levenshtein.editops(gold, predicted):
            if operation.tag == "replace":
                counts[gold[operation.src_pos], predicted[operation.dest_pos]] += 1
            elif operation.tag == "delete":
                counts[gold[operation.src_pos], MISSING] += 1
            else:
                counts[MISSING, predicted[operation.dest_pos]] += 1
    return counts


@dataclass
class ConfusionReport:
    """The commonest confusions outside layout, and totals: all token errors, layout ones, small-mark ones."""

    top: list[tuple[str, str, int, bool]]  # gold, predicted, count, small mark
    total: int
    layout: int
    small_marks: int

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "layout": self.layout,
            "small_marks": self.small_marks,
            "top": [{"gold": g, "predicted": p, "count": n, "small_mark": s} for g, p, n, s in self.top],
        }

    def lines(self) -> list[str]:
        """A table, one confusion a line; small marks are starred."""
        rows = [f"  {'count':>5}  {'gold':<16} {'read as':<16}"]
        rows += [f"  {n:5d}  {g:<16} {p:<16}{' *' if s else ''}" for g, p, n, s in self.top]
        rows.append(
            f"  {self.total} token errors: {self.layout} of layout (braces, scripts, spaces), "
            f"{self.small_marks} of small marks (*)"
        )
        return rows


def confusion_report(predictions: Sequence[str], references: Sequence[str], top: int = 15) -> ConfusionReport:
    counts = token_confusions(predictions, references)
    listed = [(pair, n) for pair, n in counts.most_common() if not is_layout(*pair)][:top]
    return ConfusionReport(
        top=[(g, p, n, is_small_mark(g, p)) for (g, p), n in listed],
        total=sum(counts.values()),
        layout=sum(n for pair, n in counts.items() if is_layout(*pair)),
        small_marks=sum(n for (g, p), n in counts.items() if is_small_mark(g, p)),
    )
