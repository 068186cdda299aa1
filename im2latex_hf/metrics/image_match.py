"""Rendered-image match in im2markup's convention (``scripts/evaluation/evaluate_image.py``), reimplemented.

Gold and prediction are rendered alike (Computer Modern, 12pt, display style, 200 dpi, cropped to
the ink), binarised (gray <= 128 is ink), bottom-padded to the same height and compared column by
column: columns differing in fewer than 5 pixels count as equal, the two column sequences are
aligned by Levenshtein distance, and the images match unless some run of differing columns is 5
or more columns long. The second figure ("w/o whitespace") first drops blank columns.

One deliberate difference: im2markup measures a run only by the gold's columns, so columns
inserted in the prediction never count and a prediction that adds symbols to the gold can still
match. Here a run counts the longer of its two sides, and adjacent edits form one run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
from PIL import Image
from rapidfuzz.distance import Levenshtein

from ..rendering import iter_render

INK_THRESHOLD = 128
"""Gray levels up to this are ink."""
COLUMN_TOLERANCE = 5
"""Columns differing in fewer than this many pixels are the same column."""
RUN_TOLERANCE = 5
"""Runs of fewer than this many differing columns are tolerated."""
RENDER_OPTIONS = {"font": "cm", "font_size": 12, "dpi": 200, "display": True}
"""How both sides are rendered for comparison."""


def image_match(a: Image.Image, b: Image.Image) -> tuple[bool, bool]:
    """Whether two formula images match: (with whitespace, ignoring blank columns)."""
    height = max(a.height, b.height)
    columns_a, columns_b = _ink_columns(a, height), _ink_columns(b, height)
    with_space = _columns_match(columns_a, columns_b)
    no_space = _columns_match(columns_a[columns_a.any(axis=1)], columns_b[columns_b.any(axis=1)])
    return with_space, no_space


@dataclass(frozen=True)
class PairMatch:
    """One prediction against its reference, both rendered."""

    reference_renders: bool
    prediction_renders: bool
    match: bool
    match_no_space: bool


def pair_matches(predictions: Sequence[str], references: Sequence[str], *, workers: int = 2) -> list[PairMatch]:
    """Render each prediction and its reference alike and compare them (`image_match`), pair by pair."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    interleaved = (formula for pair in zip(references, predictions) for formula in pair)
    results = iter_render(interleaved, workers=workers, **RENDER_OPTIONS)
    matches = []
    while pair := list(islice(results, 2)):
        gold, prediction = pair
        if gold.image is None or prediction.image is None:
            matches.append(PairMatch(gold.image is not None, prediction.image is not None, False, False))
        else:
            matches.append(PairMatch(True, True, *image_match(gold.image, prediction.image)))
    return matches


def image_match_rates(
    predictions: Sequence[str], references: Sequence[str], *, workers: int = 2
) -> dict[str, float | int]:
    """Render predictions and references and return the image-match rates and counts (`match_rates`)."""
    return match_rates(pair_matches(predictions, references, workers=workers))


def match_rates(pairs: Sequence[PairMatch]) -> dict[str, float | int]:
    """The image-match rates and counts of compared pairs (`pair_matches`).

    Rates are over the references that render (``evaluated``), as im2markup counted only rendered
    gold images; a prediction that fails to render is a mismatch.
    """
    rendered = [pair for pair in pairs if pair.reference_renders]
    evaluated = len(rendered)
    return {
        "image_match": sum(pair.match for pair in rendered) / evaluated if evaluated else 0.0,
        "image_match_no_space": sum(pair.match_no_space for pair in rendered) / evaluated if evaluated else 0.0,
        "evaluated": evaluated,
        "unrenderable_references": len(pairs) - evaluated,
        "unrenderable_predictions": sum(not pair.prediction_renders for pair in rendered),
    }


def _ink_columns(image: Image.Image, height: int) -> np.ndarray:
    """Binarised image as a (width, height) boolean array of columns, padded with blank rows at the bottom."""
    ink = np.asarray(image.convert("L")) <= INK_THRESHOLD
    return np.pad(ink, ((0, height - ink.shape[0]), (0, 0))).T


def _column_codes(a: np.ndarray, b: np.ndarray) -> tuple[list[int], list[int]]:
    """One code per column of both images; a column close to an earlier distinct column shares its code."""
    codes: dict[bytes, int] = {}
    distinct = np.empty((len(a) + len(b), a.shape[1]), dtype=bool)
    count = 0

    def code(column: np.ndarray) -> int:
        nonlocal count
        key = column.tobytes()
        if key not in codes:
            close = np.flatnonzero(np.count_nonzero(distinct[:count] != column, axis=1) < COLUMN_TOLERANCE)
            if close.size:
                codes[key] = int(close[0])
            else:
                codes[key] = count
                distinct[count] = column
                count += 1
        return codes[key]

    return [code(column) for column in a], [code(column) for column in b]


def _columns_match(a: np.ndarray, b: np.ndarray) -> bool:
    """True unless the aligned column sequences differ in a run of ``RUN_TOLERANCE`` or more columns."""
    codes_a, codes_b = _column_codes(a, b)
    run_a = run_b = 0
    for opcode in Levenshtein.opcodes(codes_a, codes_b):
        if opcode.tag == "equal":
            run_a = run_b = 0
            continue
        run_a += opcode.src_end - opcode.src_start
        run_b += opcode.dest_end - opcode.dest_start
        if max(run_a, run_b) >= RUN_TOLERANCE:
            return False
    return True
