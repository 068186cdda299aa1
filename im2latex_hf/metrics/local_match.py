"""Local match: a render-match score that one wrong symbol decides, for images in im2latex-100k's look.

`verification` compares an image with a render that only approximates the dataset's pipeline, so it
must tolerate differences as large as a wrong glyph. The faithful ``im2latex`` look (`rendering.faithful`)
draws a formula nearly pixel for pixel as the dataset's images were drawn, so a comparison can be strict:

1. **Ink.** Image and render (both grayscale, im2latex geometry) become ink in [0, 1], cropped to the
   pixels that are not (nearly) white.
2. **Global alignment.** The render is placed on the image at the shift (up to `GLOBAL_SHIFT` pixels each
   way) with the least total absolute difference.
3. **Local alignment.** A column-wise dynamic time warping of the render's columns onto the image's, in a
   band of `BAND` columns around the diagonal: matching two columns costs their summed absolute ink
   difference (at the best of three vertical phases: as drawn, half a pixel up or down, since the
   rasterizer's sub-pixel phase puts a rule on one row or across two; `HALF_PIXEL`); each column the warp
   stretches or squeezes costs `STEP_COST`. Drift that builds up along
   a formula is absorbed; a symbol that is missing, added or changed is not (its columns match nothing,
   and a changed width costs steps).
4. **Worst local discrepancy.** Along the warping path, each image column gets the cost of the cells and
   steps the path spends on it; the discrepancy is the largest sum over `WINDOW` consecutive columns
   (about a glyph's width), in ink pixels, each pixel's difference less `TOLERANCE` (the rasterizer's
   sub-pixel noise); `TIE` times the whole path's cost is added, so that of two readings with the same
   worst window the one that differs less elsewhere wins, and `TIE_RAW` times the plain total difference
   along the path (no tolerance), for differences that all lie under the tolerance. The score is
   ``1 / (1 + (discrepancy / SCALE) ** POWER)``: 1 for identical ink, 0.5 at `SCALE` ink pixels, and one
   wrong glyph anywhere decides it, however long the formula.

`match` scores candidates against images in the im2latex look. `verification.verify` uses it for the
images whose geometry is im2latex-100k's (`verification.is_im2latex_look`: a halved im2markup bucket size,
ink starting at the halved padding); any other image (screenshot, other font or resolution) keeps its own,
less sharp comparison against the look that fits it best. This module does not import `verification`.

LaTeX that does not render (TeX stops, a forbidden command, no ink, a timeout) scores 0. **Recovered
renders:** the faithful look replays the dataset's TeX error recovery (no amsmath: ``\\begin{matrix}`` or
``\\hspace { 1 c m }`` raise errors there, and the dataset's images are what TeX recovered to). A candidate
whose faithful render was recovered (`RenderResult.recovered`) counts only if it also compiles without
error in the project's own renderer (the ``plain`` look: amsmath, spaced lengths allowed), and is then
scored against the recovered render, as the dataset drew it; otherwise it scores 0 with that renderer's
error (an undefined command, unbalanced braces, a double superscript), as in `verification`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..preprocessing import ImageLike, open_image, to_grayscale
from ..rendering import DEFAULT_TIMEOUT, iter_render
from ..rendering.looks import FAITHFUL_LOOK

GLOBAL_SHIFT = 3
"""Pixels the render may shift each way, as a whole, to meet the image."""
BAND = 4
"""Columns the local alignment may drift from the diagonal."""
STEP_COST = 1.0
"""Cost of one column of stretch or squeeze in the local alignment, in ink pixels."""
WINDOW = 8
"""Columns over which the worst local discrepancy is summed (about a glyph's width)."""
TOLERANCE = 0.3
"""Per-pixel ink difference ignored: the rasterizer's sub-pixel noise (a wrong glyph differs by more)."""
SCALE = 2.0
"""Ink pixels of discrepancy at which the score is 0.5 (``1 / (1 + (discrepancy / SCALE) ** POWER)``)."""
POWER = 3
HALF_PIXEL = True
"""Whether a render column may also meet the image half a pixel up or down (see `_column_costs`)."""
TIE = 0.05
"""Weight of the whole path's cost added to the worst window's (breaks ties between equally bad worst windows)."""
TIE_RAW = 0.001
"""Weight of the total absolute difference along the warping path, no tolerance: breaks the remaining ties (a
faint accent changed for another, every pixel's difference under `TOLERANCE`)."""
CHECK_DPI = 50
"""Resolution of the ``plain`` render that checks a recovered candidate compiles (only its error matters)."""
WHITE = 0.04
"""Ink below this is background when cropping."""
_OUTSIDE = 1e6  # the cost of a cell outside the canvas: never on a path
CACHE_SIZE = 4096
"""Faithful renders kept, by LaTeX string (a few MB: bucket-sized grayscale images)."""


def ink(image: ImageLike | np.ndarray) -> np.ndarray:
    """Ink in [0, 1] (white 0, black 1) of a grayscale image, cropped to the pixels that are not white."""
    gray = to_grayscale(image).astype(np.float32)
    values = 1.0 - gray / 255.0
    mask = values > WHITE
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return values[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def discrepancy(image_ink: np.ndarray, render_ink: np.ndarray) -> float:
    """The worst local discrepancy (ink pixels) between two cropped inks, after global then local alignment."""
    a, b = _globally_aligned(image_ink, render_ink)
    costs, raw = _column_costs(a, b)
    path_costs, cells = _warp(costs)
    window = min(WINDOW, path_costs.size)
    sums = np.convolve(path_costs, np.ones(window), mode="valid")
    raw_total = float(raw[cells[:, 0], cells[:, 1]].sum())
    return (float(sums.max()) if sums.size else 0.0) + TIE * float(path_costs.sum()) + TIE_RAW * raw_total


def score(image_ink: np.ndarray, render_ink: np.ndarray) -> float:
    """The local-match score in [0, 1] of a render against an image, both as `ink` gives them."""
    if image_ink.size == 0 or render_ink.size == 0:
        return 0.0
    return 1.0 / (1.0 + (discrepancy(image_ink, render_ink) / SCALE) ** POWER)


def _globally_aligned(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both inks on one canvas, the render at its best whole shift (least total absolute difference)."""
    s = GLOBAL_SHIFT
    height, width = max(a.shape[0], b.shape[0]) + 2 * s, max(a.shape[1], b.shape[1]) + 2 * s
    fixed = np.zeros((height, width), dtype=np.float32)
    fixed[s : s + a.shape[0], s : s + a.shape[1]] = a
    best, best_moved = math.inf, None
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            moved = np.zeros_like(fixed)
            moved[s + dy : s + dy + b.shape[0], s + dx : s + dx + b.shape[1]] = b
            total = float(np.abs(fixed - moved).sum())
            if total < best:
                best, best_moved = total, moved
    return fixed, best_moved


def _column_costs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``costs[i, k]``: the ink difference of image column ``i`` and render column ``i + k - BAND``; and ``raw``,
    the same without `TOLERANCE`.

    Each pixel's absolute difference less `TOLERANCE`, summed down the column, at the best of three
    vertical phases of the render column (as drawn, half a pixel up, half a pixel down: the rasterizer
    puts a horizontal rule on one row or across two, depending on the page's sub-pixel phase).
    """
    width = a.shape[1]
    padded = np.pad(b, ((1, 1), (BAND, BAND)))
    phases = [padded[1:-1]]
    if HALF_PIXEL:
        phases += [(padded[1:-1] + padded[:-2]) / 2, (padded[1:-1] + padded[2:]) / 2]
    costs = np.full((width, 2 * BAND + 1), np.inf, dtype=np.float32)
    raw = np.full((width, 2 * BAND + 1), np.inf, dtype=np.float32)
    for phase in phases:
        for k in range(2 * BAND + 1):
            difference = np.abs(a - phase[:, k : k + width])
            np.minimum(raw[:, k], difference.sum(axis=0), out=raw[:, k])
            np.minimum(costs[:, k], np.maximum(difference - TOLERANCE, 0.0).sum(axis=0), out=costs[:, k])
    # Cells whose render column lies outside the canvas are never on a path.
    for k in range(2 * BAND + 1):
        offset = k - BAND
        if offset < 0:
            costs[:-offset, k] = _OUTSIDE
        elif offset > 0:
            costs[width - offset :, k] = _OUTSIDE
    return costs, raw


def _warp(costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic time warping in the band: the cost the optimal path spends on each image column, and its cells.

    Cell ``(i, k)`` pairs image column ``i`` with render column ``i + k - BAND``. A cell is entered
    diagonally (from ``(i - 1, k)``), holding the render column (from ``(i - 1, k + 1)``, one step) or
    skipping a render column (from ``(i, k - 1)``, one step). Plain Python: the band is a dozen cells,
    too few for numpy's per-call cost.
    """
    width, bands = costs.shape
    step = STEP_COST
    table = costs.tolist()
    infinity = math.inf
    previous = [infinity] * bands
    previous[BAND] = 0.0  # the path starts at both first columns
    moves = []  # per row: 0 diagonal, 1 render column held, 2 render column skipped
    for i in range(width):
        row = table[i]
        current = [0.0] * bands
        row_moves = [0] * bands
        left = infinity
        for k in range(bands):
            diagonal = previous[k]
            held = previous[k + 1] + step if k + 1 < bands else infinity
            best, move = (diagonal, 0) if diagonal <= held else (held, 1)
            if left < best:
                best, move = left, 2
            current[k] = best + row[k]
            row_moves[k] = move
            left = current[k] + step
        moves.append(row_moves)
        previous = current
    # Back from both last columns, charging each image column its cells and steps.
    spent = [0.0] * width
    cells = []
    i, k = width - 1, BAND
    while i >= 0 and 0 <= k < bands:
        spent[i] += table[i][k]
        cells.append((i, k))
        move = moves[i][k]
        if move == 2:
            spent[i] += step
            k -= 1
        elif move == 1:
            spent[i] += step
            i, k = i - 1, k + 1
        else:
            i -= 1
    return np.asarray(spent), np.asarray(cells, dtype=np.intp).reshape(-1, 2)


class FaithfulRender(NamedTuple):
    """A LaTeX string in the faithful look, as the local match uses it."""

    image: Image.Image | None
    """The render (im2latex geometry); None if it does not count as rendered (see the module docstring)."""
    error: str | None
    """Why there is no image: TeX's error, a forbidden command, a timeout."""
    recovered: str | None
    """TeX's first error when the image is the page TeX's error recovery made (and the LaTeX compiles in the
    project's own renderer)."""


class _RenderCache:
    """The last `CACHE_SIZE` faithful renders, by LaTeX string (thread-safe)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, FaithfulRender] = OrderedDict()
        self._lock = Lock()

    def get(self, latex: str) -> FaithfulRender | None:
        with self._lock:
            entry = self._entries.get(latex)
            if entry is not None:
                self._entries.move_to_end(latex)
            return entry

    def put(self, latex: str, entry: FaithfulRender) -> None:
        with self._lock:
            self._entries[latex] = entry
            self._entries.move_to_end(latex)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


_CACHE = _RenderCache()


def faithful_renders(
    latexes: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, workers: int = 2
) -> list[FaithfulRender]:
    """Each LaTeX string in the faithful look, cached by string; the renders not cached share TeX runs
    (``workers`` at once, each limited to ``timeout`` seconds)."""
    missing = list(dict.fromkeys(latex for latex in latexes if _CACHE.get(latex) is None))
    if missing:
        batch_size = max(1, min(64, -(-len(missing) // workers)))  # every worker busy on small calls too
        made = {
            render.formula: FaithfulRender(render.image, render.error, render.recovered)
            for render in iter_render(
                missing, look=FAITHFUL_LOOK, timeout=timeout, workers=workers, batch_size=batch_size
            )
        }
        recovered = [latex for latex, render in made.items() if render.recovered is not None]
        if recovered:  # they count only if they compile in the project's own renderer
            for check in iter_render(recovered, dpi=CHECK_DPI, timeout=timeout, workers=workers):
                if check.image is None:
                    made[check.formula] = FaithfulRender(None, check.error, None)
        for latex, render in made.items():
            _CACHE.put(latex, render)
    found = {latex: _CACHE.get(latex) for latex in set(latexes)}
    return [found[latex] for latex in latexes]  # type: ignore[misc]


@dataclass
class LocalMatch:
    """How well one LaTeX string, rendered in the faithful look, draws one image."""

    score: float
    """In [0, 1] (see the module docstring); 0 when it did not render."""
    rendered: Image.Image | None = None
    """The faithful render (im2latex geometry), for showing next to the image; None if it did not render."""
    reason: str | None = None
    """Why the score is 0 (TeX's error, a forbidden command, a timeout), or for a counted render that TeX's error
    recovery made in the faithful look, TeX's first error there; None otherwise."""


def match_renders(image_ink: np.ndarray, renders: Sequence[FaithfulRender]) -> list[LocalMatch]:
    """Score faithful renders against one image's `ink`."""
    return [
        LocalMatch(0.0, reason=render.error)
        if render.image is None
        else LocalMatch(score(image_ink, ink(render.image)), render.image, render.recovered)
        for render in renders
    ]


def match(
    images: Sequence[ImageLike],
    candidates: Sequence[Sequence[str]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = 2,
) -> list[list[LocalMatch]]:
    """Score every candidate LaTeX of every image (in the im2latex look): result ``[i][j]`` is candidate ``j`` of
    image ``i``. The renders of all candidates share TeX runs (``workers`` at once) and are cached by string.

    For images in any look, `verification.verify` chooses between this and its own comparison.
    """
    if len(images) != len(candidates):
        raise ValueError(f"{len(images)} images but {len(candidates)} candidate lists")
    renders = faithful_renders([latex for latexes in candidates for latex in latexes], timeout=timeout, workers=workers)
    results, position = [], 0
    for image, latexes in zip(images, candidates):
        image_ink = ink(open_image(image))
        results.append(match_renders(image_ink, renders[position : position + len(latexes)]))
        position += len(latexes)
    return results


def render_match(image: ImageLike, latex: str, *, timeout: float = DEFAULT_TIMEOUT) -> float:
    """How well ``latex`` draws ``image`` (in the im2latex look), in [0, 1]; 0 if it does not render."""
    return match([image], [[latex]], timeout=timeout)[0][0].score


__all__ = [
    "FaithfulRender",
    "LocalMatch",
    "discrepancy",
    "faithful_renders",
    "ink",
    "match",
    "match_renders",
    "render_match",
    "score",
]
