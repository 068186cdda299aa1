"""Decoding speed of a model on the CPU (or GPU): latency per formula and batch throughput, with and without the cache.

    python scripts/benchmark.py [--model PATH_OR_ID] [--images examples/*.png] [--repeats 5]

Prints, for greedy and beam-4 decoding, the median and p90 latency of one formula at batch 1 and the
throughput at batch 16, each with the KV cache (the default) and without it (everything recomputed
at each step), so the cache's gain shows.
"""

from __future__ import annotations

import argparse
import glob
import statistics
import time

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

import im2latex_hf


def time_generate(model, inputs, settings: dict) -> float:
    """Seconds one `generate` call takes."""
    start = time.perf_counter()
    model.generate(**inputs, **settings)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=im2latex_hf.DEFAULT_MODEL)
    parser.add_argument("--images", nargs="+", default=sorted(glob.glob("examples/*.png")))
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per image at batch 1")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    model = AutoModelForImageTextToText.from_pretrained(args.model).to(args.device).eval()
    processor = AutoProcessor.from_pretrained(args.model)
    singles = [processor(images=[image]).to(args.device) for image in args.images]
    batch16 = processor(images=[args.images[i % len(args.images)] for i in range(16)]).to(args.device)
    print(f"model {args.model} on {args.device} ({torch.get_num_threads()} threads), {len(args.images)} images")
    print(f"{'decoding':<10} {'cache':<6} {'median ms':>10} {'p90 ms':>8} {'batch 16 formulas/s':>20} {'tokens':>7}")

    for num_beams in (1, 4):
        for use_cache in (True, False):
            settings = dict(num_beams=num_beams, use_cache=use_cache, max_new_tokens=args.max_new_tokens)
            with torch.inference_mode():
                model.generate(**singles[0], **settings)  # warm-up
                latencies = [time_generate(model, s, settings) for s in singles for _ in range(args.repeats)]
                tokens = sum(model.generate(**s, **settings).shape[1] - 1 for s in singles) / len(singles)
                throughput = 16 / time_generate(model, batch16, settings)
            p90 = statistics.quantiles(latencies, n=10)[-1] if len(latencies) > 1 else latencies[0]
            name = "greedy" if num_beams == 1 else f"beam {num_beams}"
            print(
                f"{name:<10} {'yes' if use_cache else 'no':<6} {statistics.median(latencies) * 1000:>10.1f} "
                f"{p90 * 1000:>8.1f} {throughput:>20.2f} {tokens:>7.1f}"
            )


if __name__ == "__main__":
    main()
