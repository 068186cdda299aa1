"""Training pairs from `scripts/pseudo_label.py`'s labels: real images with their selected reading, or the
readings rendered back into images.

    python scripts/build_pseudo_pairs.py --labels LABELS --data ../shared/data/im2latex-100k-unlabelled \
        --output-dir PAIRS --kind real --min-token-prob 0.5
    python scripts/build_pseudo_pairs.py --labels LABELS --data ../shared/data/im2latex-100k-unlabelled \
        --output-dir PAIRS --kind real --min-render-match 0.5 --workers 2
    python scripts/build_pseudo_pairs.py --labels LABELS --output-dir PAIRS --kind rendered [--look im2latex]

``real``: each image whose best candidate compiles and whose least token probability is at least
``--min-token-prob`` (choose it by the held-out gain it gives), as ``pseudo-NNNNN.parquet`` (``image``,
``formula``, ``train_row``, ``min_token_prob``, ``render_match``). With ``--min-render-match`` the verifier
(`metrics.verification.verify`, the local match for im2latex-look images) scores every candidate that
compiles and passes the probability bar, and the image keeps its best-verified candidate if that scores at
least the threshold (on held-out, a greedy reading scoring 0.5 or more is right 98% of the time: see
docs/verification.md). `training.DataSource` keeps such pairs to at most half of the training rows.

``rendered``: the first candidate of each image that compiles, rendered with TeX in ``--look`` (correct by
construction, whatever the image showed), as ``rendered-NNNNN.parquet`` (``image``, ``formula``,
``train_row``). Both are training data sources as they are.

Each labels file becomes one pairs file, and a pairs file that exists is kept, so a stopped run resumes:
give a new ``--output-dir`` for a new rule or threshold.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datasets
from tqdm.auto import tqdm

from im2latex_hf.metrics.verification import verify
from im2latex_hf.rendering import render_formulas
from im2latex_hf.rendering.looks import IM2LATEX_DPI, LOOKS

PAIR_FEATURES = {
    "real": datasets.Features(
        {
            "image": datasets.Image(),
            "formula": datasets.Value("string"),
            "train_row": datasets.Value("int64"),
            "min_token_prob": datasets.Value("float32"),
            "render_match": datasets.Value("float32"),
        }
    ),
    "rendered": datasets.Features(
        {"image": datasets.Image(), "formula": datasets.Value("string"), "train_row": datasets.Value("int64")}
    ),
}


def eligible(candidate: dict, min_token_prob: float) -> bool:
    """Whether a candidate may become a real-image pair's formula: it compiles and passes the probability bar."""
    return candidate["compiles"] and candidate["min_token_prob"] >= min_token_prob


def render_matches(
    labels: datasets.Dataset, images: datasets.Dataset, min_token_prob: float, workers: int, chunk: int = 100
) -> list[list[float]]:
    """The verifier's score of every candidate of every labelled image (0 for one that is not `eligible`).

    Two chunks of ``chunk`` images are verified at once, so that one chunk's scoring (Python, one core) runs
    while the other's TeX runs render.
    """

    def chunk_scores(start: int) -> list[list[float]]:
        rows = labels.select(range(start, min(start + chunk, len(labels))))
        candidates = [[c["latex"] for c in row["candidates"] if eligible(c, min_token_prob)] for row in rows]
        to_verify = [i for i, latex in enumerate(candidates) if latex]  # an image without candidates is not read
        verified = verify(
            images.select([rows[i]["index"] for i in to_verify])["image"],
            [candidates[i] for i in to_verify],
            workers=workers,
        )
        found = iter(verification.score for verifications in verified for verification in verifications)
        return [[next(found) if eligible(c, min_token_prob) else 0.0 for c in row["candidates"]] for row in rows]

    starts = range(0, len(labels), chunk)
    with ThreadPoolExecutor(max_workers=2) as pool:
        scored = tqdm(pool.map(chunk_scores, starts), total=len(starts), desc="verifying", unit="chunk")
        return [scores for chunk_scored in scored for scores in chunk_scored]


def select_real(
    labels: datasets.Dataset,
    min_token_prob: float,
    scores: list[list[float]] | None = None,
    min_render_match: float = 0.0,
) -> list[tuple[int, int, str, float, float | None]]:
    """(index, train_row, latex, min token prob, render match) of each image's selected reading.

    Without ``scores``: the best candidate, if it is `eligible`. With them: the best-verified eligible
    candidate (the more probable of equals), if it scores at least ``min_render_match``.
    """
    selected = []
    for i, row in enumerate(labels):
        candidates = row["candidates"]
        if scores is None:
            if candidates and eligible(candidates[0], min_token_prob):
                best = candidates[0]
                selected.append((row["index"], row["train_row"], best["latex"], best["min_token_prob"], None))
            continue
        ranked = [j for j, c in enumerate(candidates) if eligible(c, min_token_prob)]
        if ranked:
            j = max(ranked, key=lambda j: (scores[i][j], -j))
            if scores[i][j] >= min_render_match:
                best = candidates[j]
                selected.append((row["index"], row["train_row"], best["latex"], best["min_token_prob"], scores[i][j]))
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
    parser.add_argument(
        "--min-render-match", type=float, default=None, help="--kind real: verify, and keep readings scoring this much"
    )
    parser.add_argument("--look", choices=LOOKS, default="im2latex-fast", help="--kind rendered: the render's look")
    parser.add_argument("--workers", type=int, default=1, help="TeX runs at once (renders, verification)")
    args = parser.parse_args(argv)
    if args.kind == "real" and not args.data:
        parser.error("--kind real needs --data, the labelled images")

    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    if args.kind == "real":
        files = sorted(str(file) for file in Path(args.data).glob("*.parquet"))
        images = datasets.load_dataset("parquet", data_files=files, split="train").select_columns(["image"])
    for path in sorted(Path(args.labels).glob("labels-*.parquet")):
        target = output / path.name.replace("labels-", "pseudo-" if args.kind == "real" else "rendered-")
        if target.exists():
            print(f"{target.name}: kept (made before)")
            continue
        labels = datasets.Dataset.from_parquet(str(path))
        if args.kind == "real":
            scores = None
            if args.min_render_match is not None:
                scores = render_matches(labels, images, args.min_token_prob, args.workers)
            selected = select_real(labels, args.min_token_prob, scores, args.min_render_match or 0.0)
            index, train_row, formula, min_prob, match = zip(*selected) if selected else ([], [], [], [], [])
            columns = {"image": images.select(index)["image"], "formula": formula, "train_row": train_row,
                       "min_token_prob": min_prob, "render_match": match}  # fmt: skip
        else:
            selected = select_rendered(labels)
            dpi = IM2LATEX_DPI if args.look == "im2latex-fast" else 100
            rendered = render_formulas([f for _, f in selected], look=args.look, dpi=dpi, workers=args.workers)
            kept = [(row, result) for (row, _), result in zip(selected, rendered) if result.image is not None]
            columns = {"image": [r.image for _, r in kept], "formula": [r.formula for _, r in kept],
                       "train_row": [row for row, _ in kept]}  # fmt: skip
        partial = target.with_suffix(".parquet.partial")  # renamed when whole, so a stopped run leaves no half file
        datasets.Dataset.from_dict(columns, features=PAIR_FEATURES[args.kind]).to_parquet(str(partial))
        partial.rename(target)
        print(f"{target.name}: {len(columns['formula'])} pairs of {len(labels)} labelled images")


if __name__ == "__main__":
    main()
