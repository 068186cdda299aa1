"""Re-render the formulas of a dataset split with the project's renderer, in another font, for robustness tests.

    python scripts/build_rendered_split.py --data data/im2latex-100k --split test --font palatino \\
        --output-dir data/test-palatino [--limit 1000] [--dpi 100]
    im2latex evaluate --data data/test-palatino --split test

Writes a DatasetDict with the one split (columns image, formula, image_name) that `im2latex evaluate`
reads like the original. Formulas that do not render are left out and counted. The default 100 dpi
at 12 pt matches the scale of im2latex-100k's processed images (rendered at 200 dpi, downsampled by 2).
"""

from __future__ import annotations

import argparse

import datasets

from im2latex_hf.rendering import FONTS, iter_render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/im2latex-100k", help="a load_from_disk DatasetDict")
    parser.add_argument("--split", default="test")
    parser.add_argument("--font", default="cm", choices=sorted(FONTS))
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument("--limit", type=int, default=None, help="first N rows only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output-dir", required=True)
    args = parser.parse_args()

    split = datasets.load_from_disk(args.data)[args.split]
    if args.limit is not None:
        split = split.select(range(min(args.limit, len(split))))
    formulas, names = split["formula"], split["image_name"]
    rows: dict[str, list] = {"image": [], "formula": [], "image_name": []}
    for result in iter_render(formulas, font=args.font, dpi=args.dpi, workers=args.workers):
        if result.image is not None:
            rows["image"].append(result.image)
            rows["formula"].append(result.formula)
            rows["image_name"].append(names[result.index])
    rendered = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())
    datasets.DatasetDict({args.split: rendered}).save_to_disk(args.output_dir)
    print(f"{len(rendered)} of {len(formulas)} formulas rendered in {args.font} at {args.dpi} dpi → {args.output_dir}")


if __name__ == "__main__":
    main()
