"""Pseudo-label unlabelled formula images: the model reads each one, TeX verifies the reading.

    python scripts/pseudo_label.py --data ../shared/data/im2latex-100k-unlabelled \
        --output-dir data/pseudo-labels/round-1 --threshold T [--rerank 4] [--limit N]
    python scripts/pseudo_label.py ... --num-beams 1 --rerank 1 --backend onnx   # greedy, the fast way

Reads the images of the parquet files in ``--data`` (an ``image`` column, and ``train_row`` if
present) in chunks of ``--shard-size``; for each it decodes ``--rerank`` beam candidates, keeps
the best-verified one (`FormulaReader.read(rerank=...)`) and keeps the pair only when its render
match is at least ``--threshold`` (choose it on the held-out validate rows: ``im2latex evaluate
--verify`` prints the calibration). Each chunk becomes ``pseudo-NNNNN.parquet`` (``image``,
``formula``, ``score``, ``train_row``, ``model_commit``) and ``pseudo-NNNNN.json`` (its counts),
written when the chunk is done, so a stopped run resumes at the first missing chunk. The output
folder is a training data source (`training.DataSource`). Never point it at the test split.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import datasets
from tqdm.auto import tqdm

from im2latex_hf import DEFAULT_MODEL
from im2latex_hf.inference import BACKENDS, FormulaReader

FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "formula": datasets.Value("string"),
        "score": datasets.Value("float32"),
        "train_row": datasets.Value("int64"),
        "model_commit": datasets.Value("string"),
    }
)


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


def label_chunk(reader: FormulaReader, chunk: datasets.Dataset, args: argparse.Namespace, commit: str) -> dict:
    """Read and verify one chunk; returns its kept rows (column lists) and counts."""
    images = [row["image"] for row in chunk]
    readings = reader.read(images, num_beams=args.num_beams, rerank=args.rerank, batch_size=args.batch_size)
    kept = {name: [] for name in FEATURES}
    counts = {"rows": len(chunk), "unreadable": 0, "kept": 0}
    train_rows = chunk["train_row"] if "train_row" in chunk.column_names else [None] * len(chunk)
    for image, train_row, reading in zip(images, train_rows, readings):
        if reading.error is not None:
            counts["unreadable"] += 1
        elif reading.score >= args.threshold:
            counts["kept"] += 1
            for name, value in zip(FEATURES, (image, reading.latex, reading.score, train_row, commit)):
                kept[name].append(value)
    return {"columns": kept, "counts": counts}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder of parquet files with an image column")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--threshold", type=float, required=True, help="the least render match a kept pair has")
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--rerank", type=int, default=4, help="candidates verified per image")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--backend", default="pytorch", choices=BACKENDS, help="onnx: ONNX Runtime (same readings)")
    parser.add_argument("--shard-size", type=int, default=1000, help="images per output chunk")
    parser.add_argument("--limit", type=int, default=None, help="label only the first N images")
    args = parser.parse_args(argv)

    files = sorted(str(path) for path in Path(args.data).glob("*.parquet"))
    if not files:
        parser.error(f"no parquet files in {args.data}")
    unlabelled = datasets.load_dataset("parquet", data_files=files, split="train")
    if args.limit is not None:
        unlabelled = unlabelled.select(range(min(args.limit, len(unlabelled))))
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    reader = FormulaReader.from_pretrained(args.model, backend=args.backend)
    commit = model_commit(args.model)

    starts = range(0, len(unlabelled), args.shard_size)
    totals = {"rows": 0, "unreadable": 0, "kept": 0}
    with tqdm(total=len(unlabelled), desc="pseudo-labelling", unit="img") as progress:
        for number, start in enumerate(starts):
            stem = output / f"pseudo-{number:05d}"
            if not stem.with_suffix(".json").exists():
                chunk = unlabelled.select(range(start, min(start + args.shard_size, len(unlabelled))))
                result = label_chunk(reader, chunk, args, commit)
                partial = stem.with_suffix(".parquet.partial")
                datasets.Dataset.from_dict(result["columns"], features=FEATURES).to_parquet(str(partial))
                partial.rename(stem.with_suffix(".parquet"))
                info = result["counts"] | {"threshold": args.threshold, "rerank": args.rerank, "model_commit": commit}
                stem.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            counts = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
            for name in totals:
                totals[name] += counts[name]
            progress.update(counts["rows"])
            progress.set_postfix(kept=f"{totals['kept'] / max(totals['rows'], 1):.1%}")
    print(
        f"kept {totals['kept']} of {totals['rows']} images ({totals['kept'] / max(totals['rows'], 1):.1%}; "
        f"{totals['unreadable']} unreadable) at render match >= {args.threshold}, in {output}"
    )


if __name__ == "__main__":
    main()
