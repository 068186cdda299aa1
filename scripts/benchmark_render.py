"""Benchmark the renderer on im2latex-100k's validation formulas: formulas/s and success rate.

python3 scripts/benchmark_render.py --data-dir /work/shared/data/im2latex-100k --n 1000 --workers 2
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from im2latex_hf.rendering import DEFAULT_BATCH_SIZE, FONTS, render_formulas


def validate_formulas(data_dir: Path, n: int | None) -> list[str]:
    """The first ``n`` (all if None) formulas of the validation split, in split order."""
    formulas = (data_dir / "im2latex_formulas.norm.lst").read_text(encoding="utf-8").split("\n")
    lines = (data_dir / "im2latex_validate_filter.lst").read_text(encoding="utf-8").split("\n")
    numbers = [int(line.split()[1]) for line in lines if line.strip()]
    return [formulas[number] for number in numbers[:n]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with im2latex_formulas.norm.lst")
    parser.add_argument("--n", type=int, default=1000, help="how many validation formulas (0: all)")
    parser.add_argument("--font", default="cm", choices=sorted(FONTS))
    parser.add_argument("--font-size", type=int, default=12)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--inline", action="store_true", help="text style instead of display style")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--show-errors", type=int, default=10, help="how many most common errors to print")
    args = parser.parse_args()

    formulas = validate_formulas(args.data_dir, args.n or None)
    start = time.perf_counter()
    results = render_formulas(
        formulas, font=args.font, font_size=args.font_size, dpi=args.dpi, display=not args.inline,
        workers=args.workers, batch_size=args.batch_size,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    failures = [result for result in results if result.image is None]
    rendered = len(results) - len(failures)
    print(
        f"rendered {rendered} of {len(results)} formulas ({100 * rendered / len(results):.2f}%) "
        f"in {seconds:.1f} s: {len(results) / seconds:.1f} formulas/s "
        f"(font={args.font}, font size={args.font_size}, dpi={args.dpi}, workers={args.workers}, "
        f"batch size={args.batch_size})"
    )
    errors = collections.Counter(result.error.split(" (at:")[0] for result in failures)
    for error, count in errors.most_common(args.show_errors):
        print(f"{count:6d}  {error}")


if __name__ == "__main__":
    main()
