"""Evaluate a model on a split of an im2latex dataset: decode, score, and write a report.

Shared by ``im2latex evaluate`` and ``scripts/evaluate.py``. The split (a ``datasets.load_from_disk``
folder with ``image``, ``formula`` and ``image_name`` columns) is read with ``FormulaReader`` and
scored with the package's ``evaluate`` modules (corpus BLEU-4, edit accuracy and exact match on
LaTeX tokens) and im2markup's rendered-image match (the functions behind its module, so that each
prediction is rendered once for the metric and the calibration alike). The output folder gets
``report.json``, ``predictions.tsv`` and ``errors.html`` (the worst errors with input image and both
renderings).
Rows whose image cannot be read are counted and scored as empty predictions.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image
from rapidfuzz.distance import Levenshtein
from tqdm.auto import tqdm

from ..bundled_model import DEFAULT_MODEL
from ..inference import BACKENDS, FormulaReader, add_text_scales_argument
from ..latex import join_tokens, tokenize_latex
from ..metrics import PairMatch, load_metric, match_rates, pair_matches
from ..metrics.confusions import confusion_report
from ..metrics.image_match import RENDER_OPTIONS

DEFAULT_DATA = "data/im2latex-100k"
READ_CHUNK = 256
"""Rows handed to the reader at once: bounds memory and paces the progress bar."""
TEXT_METRICS = ("latex_bleu", "latex_edit_accuracy", "latex_exact_match")


@dataclass
class Row:
    """One evaluated example: the prediction, or why the image could not be read."""

    index: int
    image_name: str
    gold: str
    prediction: str | None = None
    error: str | None = None
    score: float | None = None  # render-match score of the prediction (with --verify or --rerank)
    confidence: float | None = None  # the model's geometric-mean token probability of the prediction
    model_best: str | None = None  # with --rerank: the model's own best candidate, before re-ranking
    model_best_score: float | None = None  # and its render-match score


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The evaluation options, for the CLI subcommand and the script alike."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model folder or Hub repo id (default: bundled)")
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help=f"a load_from_disk dataset folder, or im2latex-100k's original layout (default: {DEFAULT_DATA})",
    )
    parser.add_argument("--split", default="test", choices=["test", "validation", "train"])
    parser.add_argument("--num-beams", type=int, default=4, help="beam width; 1 is greedy decoding")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16, help="images per generate() call")
    parser.add_argument(
        "--verify", action="store_true", help="score each prediction by render match; report the score's calibration"
    )
    parser.add_argument(
        "--rerank", type=int, default=None, metavar="K",
        help="re-rank K candidates by render match; report the metrics with and without (implies --verify)",
    )  # fmt: skip
    add_text_scales_argument(parser)
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N rows")
    parser.add_argument("--canonical", action="store_true", help="canonicalise both sides before token metrics")
    parser.add_argument(
        "--no-image-match",
        dest="image_match",
        action="store_false",
        help="skip rendering (unless --verify or --rerank)",
    )
    parser.add_argument("--render-workers", type=int, default=2, help="TeX processes for image match")
    parser.add_argument("--num-errors", type=int, default=50, help="worst errors shown in errors.html")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument(
        "--backend",
        default="pytorch",
        choices=BACKENDS,
        help="onnx: ONNX Runtime on the CPU; onnx-int8: with an int8 decoder",
    )
    parser.add_argument("--output-dir", default=None, help="default: reports/<split>-beam<K>")


def run_evaluation(args: argparse.Namespace) -> int:
    """Evaluate as ``args`` say, write the report files and print a summary; returns an exit status."""
    from datasets import Image as ImageFeature
    from datasets import load_from_disk

    from ..data.im2latex import FORMULA_FILE, build_im2latex_dataset

    start = time.perf_counter()
    try:
        if (Path(args.data) / FORMULA_FILE).is_file():  # im2latex-100k's original layout: build it first
            dataset = build_im2latex_dataset(args.data, progress=True)[0][args.split]
        else:
            dataset = load_from_disk(args.data)[args.split]
    except (FileNotFoundError, KeyError) as error:
        print(f"im2latex: cannot load split {args.split!r} of {args.data}: {error}", file=sys.stderr)
        return 2
    if args.limit is not None:
        dataset = dataset.select(range(min(args.limit, len(dataset))))
    dataset = dataset.cast_column("image", ImageFeature(decode=False))
    try:
        reader = FormulaReader.from_pretrained(args.model, device=args.device, backend=args.backend)
    except (OSError, ValueError) as error:
        print(f"im2latex: cannot load model {args.model}: {error}", file=sys.stderr)
        return 2

    decode_start = time.perf_counter()
    rows = decode(
        reader,
        dataset,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        verify=args.verify,
        rerank=args.rerank,
        text_scales=args.text_scales,
    )
    decode_seconds = time.perf_counter() - decode_start
    unreadable = [row for row in rows if row.prediction is None]
    if len(unreadable) == len(rows):
        print(f"im2latex: no image of {args.data} [{args.split}] could be read", file=sys.stderr)
        return 1
    for row in unreadable:  # scored as an empty prediction: wrong, not left out
        row.prediction = row.model_best = ""

    score_start = time.perf_counter()
    verify = bool(args.verify or args.rerank)
    render = args.image_match or verify  # each prediction is rendered against its gold once, for both uses
    pairs = render_pairs(rows, workers=args.render_workers) if render else None
    predictions, references = scored_texts(rows, canonical=args.canonical)
    metrics, counts = score(predictions, references, pairs)
    counts = {"rows": len(rows), "evaluated": len(rows), "unreadable": len(unreadable)} | counts
    extra = {"confusions": confusion_report(*scored_texts(rows, canonical=True)).to_dict()}
    if verify:
        extra["calibration"] = calibration(rows, pairs)
    if args.rerank:  # the model's own best candidates (plain beam search): their metrics and the score's meaning
        model_best_rows = [replace(row, prediction=row.model_best, score=row.model_best_score) for row in rows]
        kept = [row.model_best == row.prediction for row in rows]  # their pairs are rendered already
        fresh = iter(render_pairs([r for r, k in zip(model_best_rows, kept) if not k], workers=args.render_workers))
        model_best_pairs = [pair if k else next(fresh) for pair, k in zip(pairs, kept)]
        extra["metrics_without_rerank"] = score(
            *scored_texts(model_best_rows, canonical=args.canonical), model_best_pairs
        )[0]
        extra["calibration_without_rerank"] = calibration(model_best_rows, model_best_pairs)
    timing = {
        "decode_seconds": round(decode_seconds, 2),
        "images_per_second": round(len(rows) / decode_seconds, 2),
        "scoring_seconds": round(time.perf_counter() - score_start, 2),
    }

    output_dir = Path(args.output_dir or f"reports/{args.split}-beam{args.num_beams}")
    output_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(rows, output_dir / "predictions.tsv")
    write_errors_html(
        rows, predictions, references, dataset, output_dir / "errors.html", args.num_errors, args.render_workers
    )
    timing["total_seconds"] = round(time.perf_counter() - start, 2)
    report = {
        "model": args.model,
        "data": args.data,
        "split": args.split,
        "decoding": {
            "num_beams": args.num_beams,
            "max_new_tokens": args.max_new_tokens,
            "batch_size": args.batch_size,
            "device": str(reader.device),
            "backend": args.backend,
            "verify": verify,
            "rerank": args.rerank,
            "text_scales": ["auto" if scale is None else scale for scale in args.text_scales],
        },
        "canonical": args.canonical,
        "metrics": metrics,
        "counts": counts,
        **extra,
        "timing": timing,
        "command": shlex.join(sys.argv),
    }
    (output_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(summary(report, output_dir))
    return 0


def render_pairs(rows: list[Row], *, workers: int) -> list[PairMatch]:
    """Each row's raw prediction rendered and compared with its gold (im2markup's image-match rule)."""
    return pair_matches([row.prediction for row in rows], [row.gold for row in rows], workers=workers)


def score(
    predictions: list[str], references: list[str], pairs: list[PairMatch] | None
) -> tuple[dict[str, float], dict[str, int]]:
    """(metrics, image-match counts): the token metrics from the package's ``evaluate`` modules, and the
    image-match rates of the rendered ``pairs`` (`render_pairs`; None skips image match)."""
    metrics: dict[str, float] = {}
    for name in TEXT_METRICS:
        metrics |= load_metric(name, keep_in_memory=True).compute(predictions=predictions, references=references)
    if pairs is None:
        return metrics, {}
    counts = match_rates(pairs)
    metrics["image_match"] = counts.pop("image_match")
    metrics["image_match_no_space"] = counts.pop("image_match_no_space")
    counts["image_match_evaluated"] = counts.pop("evaluated")
    return metrics, counts


def decode(
    reader,
    dataset,
    *,
    num_beams: int,
    max_new_tokens: int,
    batch_size: int,
    verify: bool = False,
    rerank: int | None = None,
    text_scales: tuple[float | None, ...] = (None,),
) -> list[Row]:
    """Read every row's image (``image`` not decoded: bytes or path); unreadable images get an error."""
    rows = []
    with tqdm(total=len(dataset), desc="decoding", unit="img") as progress:
        for start in range(0, len(dataset), READ_CHUNK):
            chunk = dataset[start : start + READ_CHUNK]
            chunk_rows = [
                Row(start + i, name, gold) for i, (name, gold) in enumerate(zip(chunk["image_name"], chunk["formula"]))
            ]
            images = {}
            for row, value in zip(chunk_rows, chunk["image"]):
                try:
                    images[row.index] = open_image(value)
                except (OSError, ValueError, Image.DecompressionBombError) as error:
                    row.error = f"unreadable image: {error}"
            readings = reader.read(
                list(images.values()),
                num_beams=num_beams,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                verify=verify,
                rerank=rerank,
                text_scales=text_scales,
            )
            for index, reading in zip(images, readings):
                row = chunk_rows[index - start]
                row.prediction, row.error, row.score = reading.latex, reading.error, reading.score
                row.confidence = reading.confidence
                row.model_best, row.model_best_score = reading.latex, reading.score
                if reading.candidates:  # re-ranked: the model's own best is its first candidate
                    row.model_best, row.model_best_score = reading.candidates[0][0], reading.candidates[0][1].score
            rows += chunk_rows
            progress.update(len(chunk_rows))
    return rows


SCORE_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
"""Lower edges of the calibration table's score bins (the last bin includes 1)."""
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)
"""Score thresholds the calibration reports the share kept and the precision of."""
PSEUDO_LABEL_PRECISION = 0.98
"""The image-match precision a pseudo-label threshold must reach (`scripts/pseudo_label.py --threshold`)..."""
PSEUDO_LABEL_MIN_ROWS = 30
"""...over at least this many rows (fewer say too little about the precision)."""


def calibration(rows: list[Row], pairs: list[PairMatch]) -> dict[str, list[dict]]:
    """How the render-match score relates to correctness, over the rows that were read and whose gold renders.

    ``bins``: per score bin, the rows in it and their image-match rate (im2markup's rule, prediction
    against gold) and exact-match rate. ``thresholds``: per threshold, the share of rows scoring at
    least that, and the image-match rate among them (its precision). ``pseudo_label_threshold``: the
    lowest of those thresholds whose precision is at least `PSEUDO_LABEL_PRECISION` over at least
    `PSEUDO_LABEL_MIN_ROWS` rows (None if none is).
    """
    scored = [
        (row.score, pair.match, tokenize_latex(row.prediction) == tokenize_latex(row.gold))
        for row, pair in zip(rows, pairs, strict=True)
        if row.score is not None and pair.reference_renders
    ]
    edges = (*SCORE_BINS, float("inf"))
    bins = []
    for low, high in zip(edges, edges[1:]):
        members = [(match, exact) for value, match, exact in scored if low <= value < high]
        bins.append(
            {
                "score_from": low,
                "score_to": min(high, 1.0),
                "rows": len(members),
                "image_match": _rate(match for match, _ in members),
                "exact_match": _rate(exact for _, exact in members),
            }
        )
    thresholds = _thresholds([(value, match) for value, match, _ in scored])
    joint = _thresholds(
        [
            (row.score * row.confidence, pair.match)
            for row, pair in zip(rows, pairs)
            if row.score is not None and row.confidence is not None and pair.reference_renders
        ]
    )
    precise = [
        t
        for t in thresholds
        if t["image_match"] is not None
        and t["image_match"] >= PSEUDO_LABEL_PRECISION
        and t["rows"] >= PSEUDO_LABEL_MIN_ROWS
    ]
    return {
        "rows": len(scored),
        "bins": bins,
        "thresholds": thresholds,
        "score_times_confidence": joint,
        "pseudo_label_threshold": precise[0] if precise else None,
    }


def _thresholds(values: list[tuple[float, bool]]) -> list[dict]:
    """Per threshold: the rows whose value is at least it, their share, and their image-match rate (precision)."""
    thresholds = []
    for low in THRESHOLDS:
        members = [match for value, match in values if value >= low]
        thresholds.append(
            {
                "score_at_least": low,
                "rows": len(members),
                "share": round(len(members) / len(values), 4) if values else None,
                "image_match": _rate(members),
            }
        )
    return thresholds


def _rate(flags) -> float | None:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4) if flags else None


def open_image(value: dict) -> Image.Image:
    """A dataset ``Image(decode=False)`` value (``{"bytes", "path"}``) as a loaded PIL image."""
    image = Image.open(io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"])
    image.load()
    return image


def scored_texts(rows: list[Row], *, canonical: bool) -> tuple[list[str], list[str]]:
    """(predictions, references) as the token metrics see them: canonicalised when asked."""
    predictions = [row.prediction for row in rows]
    references = [row.gold for row in rows]
    if canonical:
        from ..data.normalization import canonicalize_tokens

        predictions, references = (
            [join_tokens(canonicalize_tokens(tokenize_latex(text))) for text in texts]
            for texts in (predictions, references)
        )
    return predictions, references


def write_predictions(rows: list[Row], path: Path) -> None:
    """``image_name``, ``gold``, ``prediction``, ``error``, ``score`` (render match, when verified) and
    ``confidence`` (the model's) per row, tab-separated, with a header."""
    lines = ["image_name\tgold\tprediction\terror\tscore\tconfidence"]
    for row in rows:
        score = "" if row.score is None else f"{row.score:.4f}"
        confidence = "" if row.confidence is None else f"{row.confidence:.4f}"
        fields = (row.image_name, row.gold, row.prediction, row.error, score, confidence)
        lines.append("\t".join(_one_line(text or "") for text in fields))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_errors_html(
    rows: list[Row],
    predictions: list[str],
    references: list[str],
    dataset,
    path: Path,
    count: int,
    workers: int,
) -> None:
    """A page of the ``count`` worst errors by token edit distance (of the scored texts): input image,
    prediction and gold with their renderings side by side."""
    from ..rendering import render_formulas

    distances = [
        Levenshtein.distance(tokenize_latex(prediction), tokenize_latex(reference))
        for prediction, reference in zip(predictions, references)
    ]
    worst = sorted((i for i, distance in enumerate(distances) if distance), key=lambda i: -distances[i])[:count]
    renders = render_formulas(
        [rows[i].gold for i in worst] + [rows[i].prediction for i in worst], workers=workers, **RENDER_OPTIONS
    )
    gold_renders, prediction_renders = renders[: len(worst)], renders[len(worst) :]
    cells = []
    for rank, (i, gold, prediction) in enumerate(zip(worst, gold_renders, prediction_renders), start=1):
        row = rows[i]
        cells.append(
            f"<tr><td>{rank}<br><small>{html.escape(row.image_name)}</small><br>distance {distances[i]}</td>"
            f"<td>{_img(None, row.error) if row.error else _img(open_image(dataset[row.index]['image']))}</td>"
            f"<td>{_img(prediction.image, prediction.error)}<pre>{html.escape(row.prediction or '')}</pre></td>"
            f"<td>{_img(gold.image, gold.error)}<pre>{html.escape(row.gold)}</pre></td></tr>"
        )
    path.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>im2latex errors</title><style>"
        "body{font-family:sans-serif}td{border-top:1px solid #ccc;padding:6px;vertical-align:top}"
        "pre{white-space:pre-wrap;max-width:40em}.error{color:#b00}</style></head><body>"
        f"<h1>Worst {len(worst)} errors by token edit distance</h1>"
        "<table><tr><th>#</th><th>input</th><th>prediction</th><th>gold</th></tr>\n"
        + "\n".join(cells)
        + "\n</table></body></html>\n",
        encoding="utf-8",
    )


def summary(report: dict, output_dir: Path) -> str:
    """One screen of results."""
    metrics, counts, timing, decoding = report["metrics"], report["counts"], report["timing"], report["decoding"]
    lines = [
        f"{report['model']} on {report['data']} [{report['split']}], beam {decoding['num_beams']}"
        + (f", {decoding['backend']}" if decoding["backend"] != "pytorch" else "")
        + (", canonical" if report["canonical"] else ""),
        f"  BLEU-4          {metrics['bleu4']:.4f}",
        f"  edit accuracy   {metrics['edit_accuracy']:.4f}",
        f"  exact match     {metrics['exact_match']:.4f}",
    ]
    if "image_match" in metrics:
        lines += [
            f"  image match     {metrics['image_match']:.4f}   w/o whitespace {metrics['image_match_no_space']:.4f}",
            (
                f"                  ({counts['image_match_evaluated']} gold rendered, "
                f"{counts['unrenderable_references']} gold and {counts['unrenderable_predictions']} predictions failed)"
            ),
        ]
    if "metrics_without_rerank" in report:
        plain = report["metrics_without_rerank"]
        lines.append(
            f"  without rerank  BLEU-4 {plain['bleu4']:.4f}, exact match {plain['exact_match']:.4f}"
            + (f", image match {plain['image_match']:.4f}" if "image_match" in plain else "")
            + f" (the model's best of {decoding['rerank']})"
        )
    if "calibration" in report:
        lines.append("  render-match score: rows, image match (prediction vs gold)")
        for bin_ in report["calibration"]["bins"]:
            rate = "-" if bin_["image_match"] is None else f"{bin_['image_match']:.3f}"
            lines.append(f"    {bin_['score_from']:.2f}-{bin_['score_to']:.2f}   {bin_['rows']:5d}   {rate}")
        for key, name in (("thresholds", "score"), ("score_times_confidence", "score × model confidence")):
            lines.append(f"  {name} at least: share of rows, image match among them (precision)")
            for threshold in report["calibration"].get(key, []):
                share = "-" if threshold["share"] is None else f"{threshold['share']:.1%}"
                rate = "-" if threshold["image_match"] is None else f"{threshold['image_match']:.3f}"
                lines.append(f"    {threshold['score_at_least']:.2f}   {share:>6}   {rate}")
        chosen = report["calibration"]["pseudo_label_threshold"]
        lines.append(
            f"  score >= {chosen['score_at_least']:.2f} keeps {chosen['share']:.1%} of rows at image-match precision "
            f"{chosen['image_match']:.3f} (the pseudo-label threshold)"
            if chosen
            else f"  no score threshold reaches image-match precision {PSEUDO_LABEL_PRECISION} "
            f"over {PSEUDO_LABEL_MIN_ROWS} rows or more"
        )
    confusions = report["confusions"]
    lines.append(
        f"  token errors    {confusions['total']} (canonical LaTeX): {confusions['layout']} of layout, "
        f"{confusions['small_marks']} of small marks (*); the commonest others, gold → read as (∅: none):"
    )
    lines += [
        f"    {row['count']:5d}  {row['gold']} → {row['predicted']}{' *' if row['small_mark'] else ''}"
        for row in confusions["top"][:10]
    ]
    lines += [
        f"  rows            {counts['rows']} ({counts['evaluated']} evaluated, {counts['unreadable']} unreadable)",
        (
            f"  decoding        {timing['images_per_second']:.1f} images/s on {decoding['device']} "
            f"({timing['decode_seconds']:.1f} s; total {timing['total_seconds']:.1f} s)"
        ),
        f"  wrote           {output_dir}/report.json, predictions.tsv, errors.html",
    ]
    return "\n".join(lines)


def _img(image: Image.Image | None, error: str | None = None) -> str:
    """An ``<img>`` with the image inlined as base64 PNG, or the error text."""
    if image is None:
        return f"<p class='error'>{html.escape(error or 'no image')}</p>"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return f"<img src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def _one_line(text: str) -> str:
    """Text safe for a TSV field: tabs and line breaks become spaces."""
    return " ".join(text.replace("\t", " ").splitlines())


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/evaluate.py``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_evaluation(parser.parse_args(argv))
