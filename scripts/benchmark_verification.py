"""What render verification adds to reading: time per image for plain, verified and re-ranked reads.

    python scripts/benchmark_verification.py --data data/validation-holdout --split validation [--limit 40]

Reads ``--limit`` images of a ``load_from_disk`` split one at a time (batch 1, as a user reading a
screenshot) with beam 4 at one text scale, three ways: plain, ``verify=True`` and ``rerank=4``, and prints
the median milliseconds per image of each and what verification adds. Pause any training while it runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import datasets

from im2latex_hf import DEFAULT_MODEL
from im2latex_hf.inference import FormulaReader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--data", required=True, help="a load_from_disk dataset folder")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--rerank", type=int, default=4)
    args = parser.parse_args()

    split = datasets.load_from_disk(args.data)[args.split]
    images = [row["image"] for row in split.select(range(min(args.limit, len(split))))]
    reader = FormulaReader.from_pretrained(args.model)
    settings = {
        "plain": {},
        "verify": {"verify": True},
        f"rerank {args.rerank}": {"rerank": args.rerank},
    }
    one_scale = {"num_beams": args.num_beams, "text_scales": (None,)}
    reader.read(images[:1], **one_scale, verify=True)  # warm-up: model and TeX's caches
    medians = {}
    for name, options in settings.items():
        seconds = []
        for image in images:
            start = time.perf_counter()
            reader.read([image], **one_scale, **options)
            seconds.append(time.perf_counter() - start)
        medians[name] = statistics.median(seconds) * 1000
    print(f"{len(images)} images of {args.data} [{args.split}], batch 1, beam {args.num_beams}")
    for name, median in medians.items():
        added = "" if name == "plain" else f"   (+{median - medians['plain']:.0f} ms)"
        print(f"  {name:<10} {median:8.0f} ms per image (median){added}")


if __name__ == "__main__":
    main()
