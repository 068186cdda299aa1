"""Build the im2latex-100k DatasetDict from the original layout and save it (optionally push it).

python3 scripts/build_dataset.py --data-dir DIR --output-dir OUT [--held-out-dir DIR] [--push-to-hub REPO_ID]

``--held-out-dir`` also saves the last 1,000 validation rows on their own (the held-out set that chooses
checkpoints and releases, `data/validation-holdout`). An ``--output-dir`` that already holds the
DatasetDict is loaded, not built again.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from datasets import load_from_disk

from im2latex_hf.data.im2latex import HELD_OUT_ROWS, build_im2latex_dataset, held_out_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder in im2latex-100k's original layout")
    parser.add_argument("--output-dir", required=True, help="where to save_to_disk the DatasetDict")
    parser.add_argument("--held-out-dir", help="also save the last --held-out-rows validation rows here")
    parser.add_argument("--held-out-rows", type=int, default=HELD_OUT_ROWS, help="validation rows held out")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also push the DatasetDict to this Hub repo")
    parser.add_argument("--num-proc", type=int, default=None, help="worker processes for checking and writing")
    parser.add_argument("--cache-dir", default=None, help="datasets cache for the Arrow files (default: HF's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if (Path(args.output_dir) / "dataset_dict.json").is_file():
        dataset = load_from_disk(args.output_dir)
        print(f"loaded the DatasetDict already at {args.output_dir}")
    else:
        start = time.perf_counter()
        dataset, report = build_im2latex_dataset(
            args.data_dir, num_proc=args.num_proc, cache_dir=args.cache_dir, progress=True
        )
        built = time.perf_counter()
        print(report)
        dataset.save_to_disk(args.output_dir, num_proc=args.num_proc)
        print(f"built in {built - start:.1f} s, saved to {args.output_dir} in {time.perf_counter() - built:.1f} s")
    for split, rows in dataset.num_rows.items():
        print(f"{split}: {rows} rows")
    if args.held_out_dir:
        held_out_split(dataset, args.held_out_rows).save_to_disk(args.held_out_dir)
        print(f"the last {args.held_out_rows} validation rows saved to {args.held_out_dir}")
    if args.push_to_hub:
        dataset.push_to_hub(args.push_to_hub)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")


if __name__ == "__main__":
    main()
