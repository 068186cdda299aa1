"""Training pairs from `scripts/pseudo_label.py`'s labels: real images with their selected reading, or the
readings rendered back into images.

    python scripts/build_pseudo_pairs.py --labels LABELS --data ../shared/data/im2latex-100k-unlabelled \
        --output-dir PAIRS --kind real --min-token-prob 0.5
    python scripts/build_pseudo_pairs.py --labels LABELS --output-dir PAIRS --kind rendered [--look im2latex]

``real``: each image whose best candidate compiles and whose least token probability is at least
``--min-token-prob`` (choose it by the held-out gain it gives), as ``pseudo-NNNNN.parquet`` (``image``,
``formula``, ``train_row``, ``min_token_prob``): `training.DataSource` keeps such pairs to at most half of
the training rows. ``rendered``: the first candidate of each image that compiles, rendered with TeX in
``--look`` (correct by construction, whatever the image showed), as ``rendered-NNNNN.parquet`` (``image``,
``formula``, ``train_row``). Both are training data sources as they are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import datasets

from im2latex_hf.rendering import render_formulas
from im2latex_hf.rendering.looks import IM2LATEX_DPI, LOOKS

PAIR_FEATURES = {
    "real": datasets.Features(
        {
            "image": datasets.Image(),
            "formula": datasets.Value("string"),
            "train_row": datasets.Value("int64"),
            "min_token_prob": datasets.Value("float32"),
        }
    ),
    "rendered": datasets.Features(
        {"image": datasets.Image(), "formula": datasets.Value("string"), "train_row": datasets.Value("int64")}
    ),
}


def select_real(labels: datasets.Dataset, min_token_prob: float) -> list[tuple[int, int, str, float]]:
    """(index, train_row, latex, min token prob) of each image whose best candidate compiles and passes the bar."""
    selected = []
    for row in labels:
        best = row["candidates"][0] if row["candidates"] else None
        if best and best["compiles"] and best["min_token_prob"] >= min_token_prob:
            selected.append((row["index"], row["train_row"], best["latex"], best["min_token_prob"]))
    return selected


def select_rendered(labels: datasets.Dataset) -> list[tuple[int, str]]:
    """(train_row, latex) of each image's first candidate that compiles."""
    selected = []
    for row in labels:
        compiling = [candidate["latex"] for candidate in row["candidates"] if candidate["compiles"]]
        if compiling:
            selected.append((row["train_row"], compiling[0]))
    return selected


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", required=True, help="scripts/pseudo_label.py's output folder")
    parser.add_argument("--data", help="the images that were labelled (--kind real)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--kind", choices=sorted(PAIR_FEATURES), required=True)
    parser.add_argument("--min-token-prob", type=float, default=0.0, help="--kind real: the least token probability")
    parser.add_argument("--look", choices=LOOKS, default="im2latex-fast", help="--kind rendered: the render's look")
    parser.add_argument("--workers", type=int, default=1, help="--kind rendered: TeX runs at once")
    args = parser.parse_args(argv)
    if args.kind == "real" and not args.data:
        parser.error("--kind real needs --data, the labelled images")

    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    if args.kind == "real":
        files = sorted(str(file) for file in Path(args.data).glob("*.parquet"))
        images = datasets.load_dataset("parquet", data_files=files, split="train").select_columns(["image"])
    for path in sorted(Path(args.labels).glob("labels-*.parquet")):
        labels = datasets.Dataset.from_parquet(str(path))
        if args.kind == "real":
            selected = select_real(labels, args.min_token_prob)
            index, train_row, formula, min_prob = zip(*selected) if selected else ([], [], [], [])
            columns = {"image": images.select(index)["image"], "formula": formula, "train_row": train_row,
                       "min_token_prob": min_prob}  # fmt: skip
            target = output / path.name.replace("labels-", "pseudo-")
        else:
            selected = select_rendered(labels)
            dpi = IM2LATEX_DPI if args.look == "im2latex-fast" else 100
            rendered = render_formulas([f for _, f in selected], look=args.look, dpi=dpi, workers=args.workers)
            kept = [(row, result) for (row, _), result in zip(selected, rendered) if result.image is not None]
            columns = {"image": [r.image for _, r in kept], "formula": [r.formula for _, r in kept],
                       "train_row": [row for row, _ in kept]}  # fmt: skip
            target = output / path.name.replace("labels-", "rendered-")
        datasets.Dataset.from_dict(columns, features=PAIR_FEATURES[args.kind]).to_parquet(str(target))
        print(f"{target.name}: {len(columns['formula'])} pairs of {len(labels)} labelled images")


if __name__ == "__main__":
    main()
