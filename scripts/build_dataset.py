"""Build the im2latex-100k DatasetDict from the original layout and save it (optionally push it).

python3 scripts/build_dataset.py --data-dir DIR --output-dir OUT [--push-to-hub REPO_ID] [--num-proc N]
"""

from __future__ import annotations

import argparse
import logging
import time

from im2latex_hf.data.im2latex import build_im2latex_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder in im2latex-100k's original layout")
    parser.add_argument("--output-dir", required=True, help="where to save_to_disk the DatasetDict")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also push the DatasetDict to this Hub repo")
    parser.add_argument("--num-proc", type=int, default=None, help="worker processes for checking and writing")
    parser.add_argument("--cache-dir", default=None, help="datasets cache for the Arrow files (default: HF's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    start = time.perf_counter()
    dataset, report = build_im2latex_dataset(
        args.data_dir, num_proc=args.num_proc, cache_dir=args.cache_dir, progress=True
    )
    built = time.perf_counter()
    print(report)
    for split, rows in dataset.num_rows.items():
        print(f"{split}: {rows} rows")
    dataset.save_to_disk(args.output_dir, num_proc=args.num_proc)
    saved = time.perf_counter()
    print(f"built in {built - start:.1f} s, saved to {args.output_dir} in {saved - built:.1f} s")
    if args.push_to_hub:
        dataset.push_to_hub(args.push_to_hub)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")


if __name__ == "__main__":
    main()
