"""Render a training corpus into parquet shards (recipes: see im2latex_hf.data.corpus).

    python3 scripts/build_corpus.py --data-dir ../shared/data --output-dir data/corpus-im2latex --recipe im2latex \
        --generated 145000 --workers 2     # the release corpus: about 300K images in the im2latex look
    python3 scripts/build_corpus.py --data-dir ../shared/data --output-dir data/corpus --workers 2   # mixed

Resumable: rerunning the same command skips the shards already written. For a long build in the
background: ``nohup nice -n 19 python3 scripts/build_corpus.py ... > data/corpus.log 2>&1 &``.
"""

from __future__ import annotations

import argparse
import json
import logging

from im2latex_hf.data.corpus import (
    DEFAULT_GENERATED,
    DEFAULT_LOOKS_PER_FORMULA,
    DEFAULT_SHARD_SIZE,
    MANIFEST_FILE,
    RECIPES,
    build_corpus,
)
from im2latex_hf.evaluation.user_benchmark import FORMULAS_FILE, read_formulas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with im2latex-100k/ and formulas/school-math.lst")
    parser.add_argument("--output-dir", required=True, help="corpus folder (shards, manifest, plan)")
    parser.add_argument("--generated", type=int, default=DEFAULT_GENERATED, help="formulas to generate")
    parser.add_argument("--textbook", type=int, default=0, help="textbook-style formulas to generate (mixed recipe)")
    parser.add_argument(
        "--textbook-shapes", type=lambda text: text.split(","), default=None,
        help="only these textbook shapes, comma-separated (e.g. cases,binomial,matrix_equation; default: all)",
    )  # fmt: skip
    parser.add_argument("--looks-per-formula", type=int, default=DEFAULT_LOOKS_PER_FORMULA, help="images per formula")
    parser.add_argument("--school-math-limit", type=int, default=None, help="read only this many school-math lines")
    parser.add_argument("--recipe", choices=RECIPES, default="mixed", help="formula sources and looks")
    parser.add_argument("--workers", type=int, default=2, help="TeX runs at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="images per shard")
    parser.add_argument("--max-shards", type=int, default=None, help="stop after rendering this many new shards")
    parser.add_argument(
        "--benchmark-formulas", default=str(FORMULAS_FILE),
        help="formulas no corpus may contain, one a line (default: the users' benchmark, %(default)s)",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    manifest = build_corpus(
        args.data_dir, args.output_dir, generated=args.generated, textbook=args.textbook, textbook_shapes=args.textbook_shapes,
        looks_per_formula=args.looks_per_formula,
        school_math_limit=args.school_math_limit, seed=args.seed, shard_size=args.shard_size,
        recipe=args.recipe, benchmark_formulas=read_formulas(args.benchmark_formulas), workers=args.workers,
        max_shards=args.max_shards, progress=True,
    )  # fmt: skip
    print(json.dumps({key: manifest[key] for key in ("complete", "shards", "formulas", "images")}, indent=2))
    print(f"full manifest: {args.output_dir}/{MANIFEST_FILE}")


if __name__ == "__main__":
    main()
