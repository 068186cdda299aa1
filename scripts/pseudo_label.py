"""Pseudo-label unlabelled formula images, keeping every beam candidate with the model's confidence in it.

    python scripts/pseudo_label.py --data ../shared/data/im2latex-100k-unlabelled \
        --output-dir ~/.cache/im2latex_hf/pseudo-labels/round-1 [--num-beams 4] [--limit N]

Reads the images of the parquet files in ``--data`` (an ``image`` column, and ``train_row`` if present) in
chunks of ``--shard-size``. The model decodes ``--num-beams`` beam candidates of each image with ONNX Runtime,
in batches of similar sizes, at each of ``--text-scales`` (a stronger teacher: the scales' candidates are
pooled, each LaTeX once, first the scale whose best reading has the highest mean token probability), and each
candidate is stored with its sequence log-probability, the mean and the least probability of its tokens, the
text scale that read it (null: the image processor's own) and whether it compiles (a real, locked-down TeX run). Each chunk becomes
``labels-NNNNN.parquet`` (``index`` into the images, ``train_row``, ``model_commit``, ``error``,
``candidates``), written when the chunk is done, so a stopped run resumes at the first missing chunk.

Nothing is thrown away: `scripts/build_pseudo_pairs.py` selects the training pairs from these files, so a new
selection rule or verifier needs no decoding again. The labels are data: keep them outside the checkout.
Never point this at the test split.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import datasets
import numpy as np
from tqdm.auto import tqdm

from im2latex_hf import DEFAULT_MODEL
from im2latex_hf.inference import OnnxFormulaReader, add_text_scales_argument, pool_scales
from im2latex_hf.onnx.decoding import confidence
from im2latex_hf.preprocessing import InvalidImageError, pad_ink_maps
from im2latex_hf.rendering import render_formulas

CANDIDATE = {
    "latex": datasets.Value("string"),
    "log_prob": datasets.Value("float32"),
    "mean_token_prob": datasets.Value("float32"),
    "min_token_prob": datasets.Value("float32"),
    "text_scale": datasets.Value("float32"),
    "compiles": datasets.Value("bool"),
}
FEATURES = datasets.Features(
    {
        "index": datasets.Value("int64"),
        "train_row": datasets.Value("int64"),
        "model_commit": datasets.Value("string"),
        "error": datasets.Value("string"),
        "candidates": datasets.List(CANDIDATE),
    }
)
COMPILE_CHECK_DPI = 20  # a compile check needs TeX's verdict, not a sharp image


def model_commit(model: str) -> str:
    """The git commit of the checkout holding ``model`` (with "+changes" if its files differ from it), or "unknown"."""
    folder = Path(model) if Path(model).is_dir() else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if changed else "")


def compiling(formulas: list[str]) -> dict[str, bool]:
    """Which of the (distinct) formulas compile, each rendered once."""
    distinct = sorted(set(formulas))
    return {result.formula: result.error is None for result in render_formulas(distinct, dpi=COMPILE_CHECK_DPI)}


def decode_candidates(
    reader: OnnxFormulaReader, ink_maps: list[np.ndarray], num_beams: int, max_new_tokens: int
) -> list[list[dict]]:
    """``num_beams`` candidates of each ink map, best first, each with its LaTeX and confidence."""
    sequences, token_log_probs = reader.model.generate(
        **pad_ink_maps(ink_maps),
        num_beams=num_beams,
        num_return_sequences=num_beams,
        max_new_tokens=max_new_tokens,
        return_token_log_probs=True,
    )
    texts = reader.processor.batch_decode(sequences)
    scores = confidence(token_log_probs)
    flat = [
        {"latex": text} | {name: float(values[i]) for name, values in scores.items()} for i, text in enumerate(texts)
    ]
    return [flat[i : i + num_beams] for i in range(0, len(flat), num_beams)]


def label_chunk(reader: OnnxFormulaReader, chunk: datasets.Dataset, first_index: int, args, commit: str) -> dict:
    """Every image of one chunk with its candidates (or its error), as columns of `FEATURES`."""
    rows = {name: [] for name in FEATURES}
    ink_maps: dict[tuple[int, int], np.ndarray] = {}  # (position, scale number) → ink map
    for position, row in enumerate(chunk):
        rows["index"].append(first_index + position)
        rows["train_row"].append(row.get("train_row", first_index + position))
        rows["model_commit"].append(commit)
        rows["candidates"].append([])
        try:
            maps = [reader.processor.image_processor.ink_map(row["image"], scale) for scale in args.text_scales]
            rows["error"].append(None)
        except InvalidImageError as error:
            rows["error"].append(str(error))
            continue
        ink_maps.update(((position, k), ink) for k, ink in enumerate(maps))
    decoded: dict[tuple[int, int], list[dict]] = {}
    order = sorted(ink_maps, key=lambda key: ink_maps[key].shape[::-1])  # similar sizes together: little padding
    for start in range(0, len(order), args.batch_size):
        batch = order[start : start + args.batch_size]
        found = decode_candidates(reader, [ink_maps[key] for key in batch], args.num_beams, args.max_new_tokens)
        for (position, k), candidates in zip(batch, found):
            decoded[position, k] = [candidate | {"text_scale": args.text_scales[k]} for candidate in candidates]
    for position in {position for position, _ in decoded}:
        per_scale = [decoded[position, k] for k in range(len(args.text_scales))]
        rows["candidates"][position] = pool_scales(
            per_scale, text=lambda candidate: candidate["latex"], surety=lambda candidate: candidate["mean_token_prob"]
        )
    compiles = compiling([c["latex"] for candidates in rows["candidates"] for c in candidates])
    for candidates in rows["candidates"]:
        for candidate in candidates:
            candidate["compiles"] = compiles[candidate["latex"]]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder of parquet files with an image column")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model folder, Hub id or exported ONNX folder")
    parser.add_argument("--num-beams", type=int, default=4, help="beam width; every beam's candidate is kept")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16, help="images decoded together")
    parser.add_argument("--shard-size", type=int, default=1000, help="images per output chunk")
    parser.add_argument(
        "--start",
        type=int,
        default=0,
        help="label from image START on (chunk files are numbered START // --shard-size on)",
    )
    parser.add_argument("--limit", type=int, default=None, help="label at most N images")
    add_text_scales_argument(parser)
    args = parser.parse_args(argv)

    files = sorted(str(path) for path in Path(args.data).glob("*.parquet"))
    if not files:
        parser.error(f"no parquet files in {args.data}")
    unlabelled = datasets.load_dataset("parquet", data_files=files, split="train")
    end = len(unlabelled) if args.limit is None else min(len(unlabelled), args.start + args.limit)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    reader = OnnxFormulaReader.from_pretrained(args.model)
    commit = model_commit(args.model)

    started, labelled = time.perf_counter(), 0
    with tqdm(total=end - args.start, desc="pseudo-labelling", unit="img") as progress:
        for start in range(args.start, end, args.shard_size):
            path = output / f"labels-{start // args.shard_size:05d}.parquet"
            stop = min(start + args.shard_size, end)
            if not path.exists():
                rows = label_chunk(reader, unlabelled.select(range(start, stop)), start, args, commit)
                partial = path.with_suffix(".parquet.partial")
                datasets.Dataset.from_dict(rows, features=FEATURES).to_parquet(str(partial))
                partial.rename(path)
                labelled += stop - start
            progress.update(stop - start)
    seconds = time.perf_counter() - started
    print(f"labelled {labelled} images in {seconds:.0f} s ({labelled / max(seconds, 1e-9):.1f} img/s) into {output}")


if __name__ == "__main__":
    main()
