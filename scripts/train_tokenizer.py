"""Train the LaTeX tokenizer and save it (default: the top-level `tokenizer/` folder).

    python scripts/train_tokenizer.py --data-dir ../shared/data/im2latex-100k [--extra-formulas FILE ...]

The vocabulary comes from the formulas of the im2latex-100k train and validate splits (never test)
and from any extra formula files (one normalized formula a line, e.g. the training corpus's labels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from im2latex_hf.data.im2latex import split_formulas
from im2latex_hf.tokenization_im2latex import train_latex_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="im2latex-100k folder (original layout)")
    parser.add_argument("--extra-formulas", type=Path, nargs="*", default=[], help="more formula files")
    parser.add_argument("--min-frequency", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("tokenizer"))
    args = parser.parse_args()

    formulas = [f for split in ("train", "validation") for f in split_formulas(args.data_dir, split)]
    for path in args.extra_formulas:
        formulas += path.read_text(encoding="utf-8").splitlines()
    tokenizer = train_latex_tokenizer(formulas, min_frequency=args.min_frequency)
    tokenizer.save_pretrained(args.output)
    print(f"{len(tokenizer)} tokens from {len(formulas):,} formulas → {args.output}")


if __name__ == "__main__":
    main()
