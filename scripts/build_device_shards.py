"""Pack training images small enough to travel to a GPU machine (scripts/train_on_device.sh).

    python scripts/build_device_shards.py --real data/im2latex-100k --corpus data/corpus-im2latex \
        --output-dir .devdata --max-mb 38

Writes OUTPUT_DIR/train/part-*.parquet (every real train image, the validation rows before the held-out
ones, then rendered corpus images in a seeded random order until the size budget is spent) and
OUTPUT_DIR/eval/part-0.parquet (the first EVAL_ROWS held-out validation rows, their images unchanged), in
`datasets`' parquet format. Training images are stored in 16 gray levels as lossless WebP: about 1 KB an
image, 40% of the original PNGs, and no visible change once the image processor has scaled them.
"""

from __future__ import annotations

import argparse
import io
import random
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

from im2latex_hf.data.corpus import load_corpus
from im2latex_hf.data.im2latex import HELD_OUT_ROWS

GRAY_LEVELS = 16
ROWS_PER_PART = 5000
PROBE_ROWS = 500


def compact_image(image_bytes: bytes) -> bytes:
    """The image in grayscale, quantized to GRAY_LEVELS levels, as lossless WebP."""
    gray = np.asarray(Image.open(io.BytesIO(image_bytes)).convert("L"), dtype=np.uint16)
    step = 255 // (GRAY_LEVELS - 1)
    quantized = ((gray * (GRAY_LEVELS - 1) + 127) // 255 * step).astype(np.uint8)
    buffer = io.BytesIO()
    # method 1, the fastest that keeps within 1% of the smallest files here
    Image.fromarray(quantized).save(buffer, "WEBP", lossless=True, method=1, quality=0)
    return buffer.getvalue()


def compacted(rows: datasets.Dataset) -> datasets.Dataset:
    """`image` and `formula` of ``rows``, each image through `compact_image`."""
    undecoded = rows.select_columns(["image", "formula"]).cast_column("image", datasets.Image(decode=False))
    return undecoded.map(
        lambda image: {"image": {"bytes": compact_image(image["bytes"]), "path": None}},
        input_columns="image",
        desc="compacting images",
    )


def encoded_mb(rows: datasets.Dataset) -> float:
    return sum(len(image["bytes"]) for image in rows["image"]) / 2**20


def write_parts(rows: datasets.Dataset, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, start in enumerate(range(0, len(rows), ROWS_PER_PART)):
        part = rows.select(range(start, min(start + ROWS_PER_PART, len(rows))))
        part.cast_column("image", datasets.Image()).to_parquet(str(folder / f"part-{number}.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", required=True, help="im2latex-100k saved by scripts/build_dataset.py")
    parser.add_argument("--corpus", required=True, help="a folder of scripts/build_corpus.py")
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--max-mb", type=float, default=40.0, help="size budget of the training images")
    parser.add_argument("--eval-rows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    real = datasets.load_from_disk(args.real)
    validation = real["validation"]
    cut = max(len(validation) - HELD_OUT_ROWS, 0)
    train_rows = datasets.concatenate_datasets([real["train"], validation.select(range(cut))]).select_columns(
        ["image", "formula"]
    )
    held_out = validation.select(range(cut, len(validation)))
    eval_rows = held_out.select(range(min(args.eval_rows, len(held_out)))).select_columns(["image", "formula"])

    real_part = compacted(train_rows)
    real_mb = encoded_mb(real_part)
    corpus = load_corpus(args.corpus)
    order = list(range(len(corpus)))
    random.Random(args.seed).shuffle(order)
    # The first images in this order give the corpus's mean encoded size, to take about the budget; they are
    # also the first ones taken.
    probe = compacted(corpus.select(order[:PROBE_ROWS]))
    taken = max(0, int((args.max_mb - real_mb) / (encoded_mb(probe) / len(probe))))
    corpus_part = probe.select(range(min(taken, len(probe))))
    if taken > len(probe):
        corpus_part = datasets.concatenate_datasets([corpus_part, compacted(corpus.select(order[len(probe) : taken]))])
    train = datasets.concatenate_datasets([real_part, corpus_part]).shuffle(seed=args.seed)

    write_parts(train, args.output_dir / "train")
    write_parts(eval_rows, args.output_dir / "eval")
    print(
        f"{len(train)} training images ({len(real_part)} real, {len(corpus_part)} rendered), "
        f"{real_mb + encoded_mb(corpus_part):.1f} MB of images; {len(eval_rows)} eval rows -> {args.output_dir}"
    )


if __name__ == "__main__":
    main()
