"""Compare our im2latex-look renders with im2latex-100k's real images, formula by formula.

    python scripts/compare_look.py --data-dir ../shared/data/im2latex-100k [--n 1000] [--dpi 171] [--stroke 1]
        [--sheet reports/look_contact_sheet.png]
    python scripts/compare_look.py --data-dir ../shared/data/im2latex-100k --look im2latex --every 28 --n 300 \
        [--worst-sheet reports/look_worst.png]

Renders the first N validation formulas (with ``--every K``: every K-th row; never the held-out last 1,000
rows, never test) in ``--look`` (``im2latex-fast``, the default: dvipng at ``--dpi`` then
`looks.im2latex_look` with ``--stroke``; ``im2latex``: im2latex-100k's own recipe, pdflatex + Ghostscript,
where ``--dpi`` and ``--stroke`` do not apply), crops ours and the real image to the ink (pixels below 128)
and prints the median width ratio, the median height ratio and the ink ratio: the median over pairs of the
share of pixels below 128 inside the ink box, ours / real. ``--dpi`` and ``--stroke`` override the
calibrated `looks.IM2LATEX_DPI` / `looks.IM2LATEX_STROKE`, to calibrate them.

Then the fidelity figures, both images cropped to any pixel that is not white: the share of rows whose
ink box has exactly the real one's size, and the median (over rows) of the mean absolute pixel difference
over the ink (pixels not white in either image) at the best shift of up to 1 px each way. Rows whose real
image is blank (the dataset's renderer failed on them) are left out. ``--worst-sheet`` writes the rows
that differ most, real (left) and ours (right).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from PIL import Image

from im2latex_hf.data.im2latex import HELD_OUT_ROWS, build_im2latex_dataset
from im2latex_hf.rendering import iter_render
from im2latex_hf.rendering.looks import (
    FAITHFUL_LOOK,
    FAST_LOOK,
    IM2LATEX_DPI,
    IM2LATEX_STROKE,
    im2latex_look,
    ink_box,
)

SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def ink_difference(real: Image.Image, ours: Image.Image) -> tuple[bool, float]:
    """(same ink-box size, mean absolute difference over the ink at the best shift of ±1 px), both cropped
    to the pixels that are not white; the ink is the pixels not white in either image."""
    a = np.asarray(real.convert("L"))
    b = np.asarray(ours.convert("L"))
    a, b = _crop_to_non_white(a), _crop_to_non_white(b)
    height, width = max(a.shape[0], b.shape[0]) + 2, max(a.shape[1], b.shape[1]) + 2
    fixed = np.full((height, width), 255, dtype=np.int16)
    fixed[1 : 1 + a.shape[0], 1 : 1 + a.shape[1]] = a
    best = 255.0
    for dy, dx in SHIFTS:
        moved = np.full((height, width), 255, dtype=np.int16)
        moved[1 + dy : 1 + dy + b.shape[0], 1 + dx : 1 + dx + b.shape[1]] = b
        ink = (fixed < 255) | (moved < 255)
        best = min(best, float(np.abs(fixed - moved)[ink].mean()))
    return a.shape == b.shape, best


def _crop_to_non_white(pixels: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero((pixels < 255).any(axis=1)), np.flatnonzero((pixels < 255).any(axis=0))
    return pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def contact_sheet(pairs: list[tuple[Image.Image, Image.Image]], path: str) -> None:
    """Real (left) and ours (right), a pair a row, on a gray ground."""
    gap = 6
    width = max(real.width for real, _ in pairs) + max(ours.width for _, ours in pairs) + 3 * gap
    height = sum(max(real.height, ours.height) + gap for real, ours in pairs) + gap
    sheet = Image.new("L", (width, height), 160)
    y = gap
    left = max(real.width for real, _ in pairs) + 2 * gap
    for real, ours in pairs:
        sheet.paste(real, (gap, y))
        sheet.paste(ours, (left, y))
        y += max(real.height, ours.height) + gap
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="im2latex-100k in its original layout")
    parser.add_argument("--n", type=int, default=1000, help="validation formulas to compare")
    parser.add_argument("--every", type=int, default=1, help="take every K-th validation row (28: 267 rows)")
    parser.add_argument(
        "--look", choices=(FAST_LOOK, FAITHFUL_LOOK), default=FAST_LOOK, help="the look to compare (see above)"
    )
    parser.add_argument("--dpi", type=int, default=IM2LATEX_DPI, help="render resolution before the ×2 downsampling")
    parser.add_argument("--stroke", type=int, default=IM2LATEX_STROKE, help="stroke widening in render pixels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--sheet",
        help="write a contact sheet (real | ours) of the first 12 pairs here (it holds dataset images: keep it out of git)",
    )
    parser.add_argument(
        "--worst-sheet", help="write the --worst rows that differ most (real | ours) here (keep it out of git)"
    )
    parser.add_argument("--worst", type=int, default=12, help="rows on --worst-sheet")
    args = parser.parse_args()

    validation = build_im2latex_dataset(args.data_dir)[0]["validation"]
    rows = validation.select(range(0, len(validation) - HELD_OUT_ROWS, args.every)[: args.n])
    width_ratios, height_ratios, ink_ratios, pairs = [], [], [], []
    same_sizes, differences, blank = [], [], 0
    failed = 0
    start = time.perf_counter()
    if args.look == FAITHFUL_LOOK:
        results = iter_render(rows["formula"], look=FAITHFUL_LOOK, workers=args.workers)
    else:
        results = iter_render(rows["formula"], dpi=args.dpi, workers=args.workers)
    for index, (real, result) in enumerate(zip(rows["image"], results)):
        if result.image is None:
            failed += 1
            continue
        if np.asarray(real.convert("L")).min() == 255:  # the dataset's own render failed
            blank += 1
            continue
        ours = result.image if args.look == FAITHFUL_LOOK else im2latex_look(result.image, stroke=args.stroke)
        real_ink, our_ink = ink_box(real), ink_box(ours)
        width_ratios.append(our_ink.shape[1] / real_ink.shape[1])
        height_ratios.append(our_ink.shape[0] / real_ink.shape[0])
        ink_ratios.append(our_ink.mean() / real_ink.mean())
        if len(pairs) < 12:
            pairs.append((real.convert("L"), ours))
        same, difference = ink_difference(real, ours)
        same_sizes.append(same)
        differences.append((difference, index, real.convert("L"), ours))
    seconds = time.perf_counter() - start
    settings = f"dpi {args.dpi}, stroke {args.stroke}" if args.look == FAST_LOOK else "pdflatex + Ghostscript"
    print(f"{len(width_ratios)} formulas compared ({failed} failed to render), {args.look} look, {settings}")
    print(
        f"median width ratio {statistics.median(width_ratios):.3f}, "
        f"median height ratio {statistics.median(height_ratios):.3f}, "
        f"ink ratio {statistics.median(ink_ratios):.3f}"
    )
    scores = [difference for difference, *_ in differences]
    print(
        f"fidelity on {len(same_sizes)} rows ({blank} blank real images left out, {failed} failed renders): "
        f"exact ink-box size {sum(same_sizes)}/{len(same_sizes)} = {sum(same_sizes) / len(same_sizes):.1%}, "
        f"median ink difference {statistics.median(scores):.1f} of 255 (mean {statistics.mean(scores):.1f}), "
        f"rendered in {seconds:.0f} s"
    )
    if args.sheet:
        contact_sheet(pairs, args.sheet)
        print(f"contact sheet: {args.sheet}")
    if args.worst_sheet:
        worst = sorted(differences, key=lambda row: row[0], reverse=True)[: args.worst]
        contact_sheet([(real, ours) for _, _, real, ours in worst], args.worst_sheet)
        rows_named = ", ".join(f"{args.every * index} ({difference:.0f})" for difference, index, _, _ in worst)
        print(f"worst rows (validation row, difference): {rows_named}; sheet: {args.worst_sheet}")


if __name__ == "__main__":
    main()
