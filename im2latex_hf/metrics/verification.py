"""Render-verified reading: how well a LaTeX string draws a formula image, as a score in [0, 1].

The LaTeX is rendered with the project's TeX renderer (`rendering.iter_render`, locked down as
always) in the look nearest the image, and the two are compared:

* **im2latex-100k's images: the local match.** An image in im2latex-100k's look (see below) is compared
  with a render in the faithful ``im2latex`` look by `local_match`: global then column-wise DTW
  alignment, scored by the worst local discrepancy, so one wrong symbol decides the score. Unless it
  was not drawn by the dataset's pipeline after all: when none of its candidates' faithful renders
  scores `LOCAL_DOUBT` or more but one scores `LOCAL_FALLBACK` or more in the window comparison below
  (an image in the im2latex geometry from another renderer, such as the ``im2latex-fast`` look), it
  keeps the window comparison's scores. ``local=False`` gives the window comparison for every image.

The window comparison, for every other image:

* **Look.** An image in im2latex-100k's look (its size is one of im2markup's buckets halved and its
  ink starts at the bucket padding) is compared with a render in that look (`looks.im2latex_look`).
  Any other image is compared in each of `LOOKS` (the im2latex look and every font of the renderer,
  plain), and the look whose best candidate scores highest is kept for all of that image's
  candidates, so that candidates are compared in one look.
* **Ink.** Both become ink levels in [0, 1] (the image processor's grayscale, which also inverts
  light ink on dark, stretched between background and darkest pixel), cropped to the ink. The render
  is scaled to the image's ink box (at most `WORK_HEIGHT` pixels high), so that a slightly different
  overall width does not shift everything after it, and both are blurred by a pixel.
* **Score.** Our renders are not pixel-exact copies of another pipeline's images, and one wrong symbol
  is a small part of a long formula, so the comparison is local: in windows as wide as the ink is
  high (half overlapping), the cosine similarity of the two ink images at their best relative shift
  (up to `MAX_SHIFT` pixels each way, a pixel vertically). The score is the worst window's,
  times the ratio of the two ink boxes' aspect ratios (smaller over larger), which the scaling would
  otherwise hide. A symbol missing, added or changed anywhere lowers it.

A LaTeX string that does not render (TeX error, forbidden command, timeout) scores 0, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..preprocessing import ImageLike, open_image, to_grayscale
from ..preprocessing import ink_levels as processor_ink_levels
from ..rendering import DEFAULT_TIMEOUT, FAITHFUL_LOOK, FONTS, iter_render
from ..rendering.looks import IM2LATEX_BUCKETS, IM2LATEX_DPI, IM2LATEX_PADDING
from . import local_match

WORK_HEIGHT = 64
"""Ink boxes taller than this are compared at this height (pixels)."""
MIN_WINDOW = 16
"""The narrowest comparison window (pixels); windows are otherwise as wide as the ink is high."""
MAX_SHIFT = 2
"""Pixels a window's render may shift horizontally to meet the image (vertically: 1)."""
MIN_CONTRAST = 40
"""Gray levels between background and darkest pixel below which an image counts as blank."""
LOCAL_DOUBT = 0.5
LOCAL_FALLBACK = 0.9
"""An im2latex-geometry image whose best local match is under `LOCAL_DOUBT` while the window comparison gives a
candidate `LOCAL_FALLBACK` or more was not drawn by the dataset's pipeline: it keeps the window comparison's scores."""


@dataclass(frozen=True)
class Look:
    """How a candidate is rendered for comparison."""

    name: str
    font: str
    look: str  # a `looks.LOOKS` name
    dpi: int


IM2LATEX_LOOK = Look("im2latex", "cm", "im2latex-fast", IM2LATEX_DPI)
LOOKS = (IM2LATEX_LOOK, *(Look(font, font, "plain", 200) for font in FONTS))
"""The looks an image that is not in im2latex-100k's look is compared in."""


@dataclass
class Verification:
    """How well one LaTeX string draws one image."""

    score: float
    """In [0, 1]: 1 is a render that covers the image's ink exactly (see the module docstring)."""
    look: str | None = None
    """The `Look` name the LaTeX was rendered in (None if it did not render)."""
    rendered: Image.Image | None = None
    """The render (grayscale, cropped to the ink), for showing next to the image."""
    reason: str | None = None
    """Why the score is 0 when the LaTeX did not render: TeX's error, a forbidden command, a timeout; for a
    faithful render that TeX's error recovery made (scored, see `local_match`), TeX's first error."""


def render_match(image: ImageLike, latex: str, *, timeout: float = DEFAULT_TIMEOUT) -> float:
    """How well ``latex`` draws ``image``, in [0, 1]; 0 if it does not render (see `verify` for the reason)."""
    return verify([image], [[latex]], timeout=timeout)[0][0].score


def verify(
    images: Sequence[ImageLike],
    candidates: Sequence[Sequence[str]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = 2,
    local: bool = True,
) -> list[list[Verification]]:
    """Score every candidate LaTeX of every image: result ``[i][j]`` is candidate ``j`` of image ``i``.

    All renders of one look share TeX runs (``workers`` at once, each limited to ``timeout`` seconds).
    Images in im2latex-100k's look are scored by the local match unless ``local`` is False (see the
    module docstring). An image that cannot be read or has no ink raises `InvalidImageError`; a
    candidate never raises.
    """
    if len(images) != len(candidates):
        raise ValueError(f"{len(images)} images but {len(candidates)} candidate lists")
    images = [open_image(image) for image in images]  # each file read once
    inks = [ink_levels(image) for image in images]
    in_im2latex_look = [is_im2latex_look(image) for image in images]
    matched = _local_matches(images, candidates, in_im2latex_look if local else [False] * len(images), timeout, workers)
    looks_of = [
        [] if i in matched else [IM2LATEX_LOOK] if fixed else list(LOOKS) for i, fixed in enumerate(in_im2latex_look)
    ]
    scored = _render_and_score(inks, candidates, looks_of, timeout, workers)
    results = []
    for i, image_candidates in enumerate(candidates):
        if i in matched:
            results.append(matched[i])
            continue
        if not image_candidates:
            results.append([])
            continue
        best_look = max(looks_of[i], key=lambda look: max(v.score for v in scored[i, look.name]))
        results.append(scored[i, best_look.name])
    return results


def _local_matches(
    images: list, candidates: Sequence[Sequence[str]], eligible: list[bool], timeout: float, workers: int
) -> dict[int, list[Verification]]:
    """Image index → its candidates' verifications, for the eligible images: the local match's, or for an image
    that the window comparison shows was drawn by another renderer (see `LOCAL_FALLBACK`), the window comparison's."""
    chosen = [i for i, ok in enumerate(eligible) if ok and candidates[i]]
    if not chosen:
        return {}
    found = local_match.match(
        [images[i] for i in chosen], [candidates[i] for i in chosen], timeout=timeout, workers=workers
    )
    matched = {
        i: [Verification(m.score, FAITHFUL_LOOK if m.rendered is not None else None, m.rendered, m.reason) for m in ms]
        for i, ms in zip(chosen, found)
    }
    doubtful = [i for i in chosen if max(v.score for v in matched[i]) < LOCAL_DOUBT]
    if doubtful:  # drawn by another renderer in the same geometry? The window comparison decides.
        by_window = verify(
            [images[i] for i in doubtful],
            [candidates[i] for i in doubtful],
            timeout=timeout,
            workers=workers,
            local=False,
        )
        for i, verifications in zip(doubtful, by_window):
            if max(v.score for v in verifications) >= LOCAL_FALLBACK:
                matched[i] = verifications
    return matched


def _render_and_score(
    inks: list[np.ndarray],
    candidates: Sequence[Sequence[str]],
    looks_of: list[list[Look]],
    timeout: float,
    workers: int,
) -> dict[tuple[int, str], list[Verification]]:
    """``(image index, look name)`` → the verifications of that image's candidates in that look. The looks render
    side by side (``workers`` at once), so that one image's few candidates do not wait for one look after another."""

    def render_look(look: Look, jobs: list[tuple[int, str]]) -> list:
        return list(
            iter_render(
                (latex for _, latex in jobs), font=look.font, dpi=look.dpi, look=look.look, timeout=timeout,
                workers=workers,
            )
        )  # fmt: skip

    jobs_of = {
        look: [(i, latex) for i, image_looks in enumerate(looks_of) if look in image_looks for latex in candidates[i]]
        for look in LOOKS
    }
    with ThreadPoolExecutor(max_workers=workers) as pool:
        renders_of = {look: pool.submit(render_look, look, jobs) for look, jobs in jobs_of.items() if jobs}
    scored: dict[tuple[int, str], list[Verification]] = {}
    for look, renders in renders_of.items():
        for (i, _), render in zip(jobs_of[look], renders.result()):
            if render.image is None:
                verification = Verification(0.0, reason=render.error)
            else:
                verification = Verification(compare(inks[i], ink_levels(render.image)), look.name, render.image)
            scored.setdefault((i, look.name), []).append(verification)
    return scored


def ink_levels(image: ImageLike) -> np.ndarray:
    """The image's ink in [0, 1], cropped to the ink; `InvalidImageError` if it cannot be read or is blank."""
    return processor_ink_levels(open_image(image), MIN_CONTRAST, crop_above=0.5)


def is_im2latex_look(image: ImageLike) -> bool:
    """Whether an image looks made by im2markup's pipeline: a halved bucket size, ink from the halved padding."""
    image = open_image(image)
    height, width = image.shape[:2] if isinstance(image, np.ndarray) else (image.height, image.width)
    if (2 * width, 2 * height) not in IM2LATEX_BUCKETS:
        return False
    ink = to_grayscale(image) < 128
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    padding = IM2LATEX_PADDING // 2
    return rows.size > 0 and abs(int(rows[0]) - padding) <= 1 and abs(int(cols[0]) - padding) <= 1


def compare(image_ink: np.ndarray, render_ink: np.ndarray) -> float:
    """The score of a render's ink levels against an image's, both cropped to the ink (see the module docstring)."""
    height = min(image_ink.shape[0], WORK_HEIGHT)
    width = max(1, round(image_ink.shape[1] * height / image_ink.shape[0]))
    target = _blur(_resize(image_ink, height, width))
    render = _blur(_resize(render_ink, height, width))
    # Column sums of target × shifted render and of the squares, for every shift: windows are then sums of columns.
    padded = np.pad(render, ((1, 1), (MAX_SHIFT, MAX_SHIFT)))
    shifted = np.stack(
        [padded[1 + dy : 1 + dy + height, MAX_SHIFT + dx : MAX_SHIFT + dx + width]
         for dy in (-1, 0, 1) for dx in range(-MAX_SHIFT, MAX_SHIFT + 1)]
    )  # fmt: skip
    products = np.cumsum(np.pad((shifted * target).sum(axis=1), ((0, 0), (1, 0))), axis=1)
    render_power = np.cumsum(np.pad((shifted**2).sum(axis=1), ((0, 0), (1, 0))), axis=1)
    target_power = np.cumsum(np.pad((target**2).sum(axis=0), (1, 0)))
    window = min(width, max(MIN_WINDOW, height))
    step = max(1, window // 2)
    worst = 1.0
    for start in range(0, max(1, width - step), step):
        stop = min(width, start + window)
        power_t = target_power[stop] - target_power[start]
        power_r = render_power[:, stop] - render_power[:, start]
        if power_t < 1 and power_r.max() < 1:
            continue  # blank in both: a space
        cosines = (products[:, stop] - products[:, start]) / np.sqrt(power_t * power_r + 1e-9)
        worst = min(worst, float(cosines.max()))
    aspect = (image_ink.shape[1] / image_ink.shape[0]) / (render_ink.shape[1] / render_ink.shape[0])
    return max(0.0, worst) * min(aspect, 1 / aspect)


def _resize(ink: np.ndarray, height: int, width: int) -> np.ndarray:
    if ink.shape == (height, width):
        return ink
    return np.asarray(Image.fromarray(ink, mode="F").resize((width, height), Image.Resampling.BILINEAR))


def _blur(ink: np.ndarray) -> np.ndarray:
    """A light blur (half the weight stays, half goes to the four neighbours): tolerance to sub-pixel offsets."""
    padded = np.pad(ink, 1)
    neighbours = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    return (4 * ink + neighbours) / 8


__all__ = [
    "LOCAL_DOUBT",
    "LOCAL_FALLBACK",
    "LOOKS",
    "Look",
    "Verification",
    "compare",
    "ink_levels",
    "is_im2latex_look",
    "render_match",
    "verify",
]
