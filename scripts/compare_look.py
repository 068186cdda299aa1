"""Compare our im2latex-look renders with im2latex-100k's real images, formula by formula.

    python scripts/compare_look.py --data-dir ../shared/data/im2latex-100k [--n 1000] [--dpi 171] [--stroke 1]
        [--sheet reports/look_contact_sheet.png]

Renders the first N validation formulas (never the held-out last 1,000 rows, never test) with
``look="im2latex"`` settings, crops ours and the real image to the ink (pixels below 128) and prints
the median width ratio, the median height ratio and the ink ratio: the median over pairs of the
share of pixels below 128 inside the ink box, ours / real. ``--dpi`` and ``--stroke`` override the
calibrated `looks.IM2LATEX_DPI` / `looks.IM2LATEX_STROKE`, to calibrate them.
"""

from __future__ import annotations

import argparse
import statistics

from PIL import Image

from im2latex_hf.data.im2latex import HELD_OUT_ROWS, build_im2latex_dataset
from im2latex_hf.rendering import iter_render
from im2latex_hf.rendering.looks import IM2LATEX_DPI, IM2LATEX_STROKE, im2latex_look, ink_box


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
    parser.add_argument("--dpi", type=int, default=IM2LATEX_DPI, help="render resolution before the ×2 downsampling")
    parser.add_argument("--stroke", type=int, default=IM2LATEX_STROKE, help="stroke widening in render pixels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--sheet",
        help="write a contact sheet (real | ours) of the first 12 pairs here (it holds dataset images: keep it out of git)",
    )
    args = parser.parse_args()

    validation = build_im2latex_dataset(args.data_dir)[0]["validation"]
    rows = validation.select(range(min(args.n, len(validation) - HELD_OUT_ROWS)))
    width_ratios, height_ratios, ink_ratios, pairs = [], [], [], []
    failed = 0
    results = iter_render(rows["formula"], dpi=args.dpi, workers=args.workers)
    for real, result in zip(rows["image"], results):
        if result.image is None:
            failed += 1
            continue
        ours = im2latex_look(result.image, stroke=args.stroke)
        real_ink, our_ink = ink_box(real), ink_box(ours)
        width_ratios.append(our_ink.shape[1] / real_ink.shape[1])
        height_ratios.append(our_ink.shape[0] / real_ink.shape[0])
        ink_ratios.append(our_ink.mean() / real_ink.mean())
        if len(pairs) < 12:
            pairs.append((real.convert("L"), ours))
    print(f"{len(width_ratios)} formulas compared ({failed} failed to render), dpi {args.dpi}, stroke {args.stroke}")
    print(
        f"median width ratio {statistics.median(width_ratios):.3f}, "
        f"median height ratio {statistics.median(height_ratios):.3f}, "
        f"ink ratio {statistics.median(ink_ratios):.3f}"
    )
    if args.sheet:
        contact_sheet(pairs, args.sheet)
        print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
