"""Train the LaTeX tokenizer and save it (default: the top-level `tokenizer/` folder).

    python scripts/train_tokenizer.py --data-dir ../shared/data/im2latex-100k [--extra-formulas FILE ...]

The vocabulary comes from the formulas of the im2latex-100k train and validate splits (never test)
and from any extra formula files (one normalized formula a line, e.g. the training corpus's labels).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from im2latex_hf.tokenization_im2latex import train_latex_tokenizer


def split_formulas(data_dir: Path, split: str) -> Iterator[str]:
    """Formulas of one im2latex-100k split (`<image> <line number>` lines into im2latex_formulas.norm.lst)."""
    formulas = (data_dir / "im2latex_formulas.norm.lst").read_text(encoding="utf-8", errors="replace").split("\n")
    for line in (data_dir / f"im2latex_{split}_filter.lst").read_text().splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit() and int(fields[1]) < len(formulas):
            yield formulas[int(fields[1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="im2latex-100k folder (original layout)")
    parser.add_argument("--extra-formulas", type=Path, nargs="*", default=[], help="more formula files")
    parser.add_argument("--min-frequency", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("tokenizer"))
    args = parser.parse_args()

    formulas = [f for split in ("train", "validate") for f in split_formulas(args.data_dir, split)]
    for path in args.extra_formulas:
        formulas += path.read_text(encoding="utf-8").splitlines()
    tokenizer = train_latex_tokenizer(formulas, min_frequency=args.min_frequency)
    tokenizer.save_pretrained(args.output)
    print(f"{len(tokenizer)} tokens from {len(formulas):,} formulas → {args.output}")


if __name__ == "__main__":
    main()
