"""The `im2latex` command: predict (image → LaTeX), verify (LaTeX vs image → score), render (LaTeX → images),
evaluate (a split → metrics), export-onnx (a model → ONNX graphs for the onnx backend).

Imports stay inside the subcommands, so that `--help` and the ONNX backend start without torch or transformers."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .bundled_model import DEFAULT_MODEL
from .inference import BACKENDS, READING_TEXT_SCALES, add_text_scales_argument


def _predict(args: argparse.Namespace) -> int:
    from .inference import FormulaReader

    try:
        reader = FormulaReader.from_pretrained(args.model, device=args.device, backend=args.backend)
    except (OSError, ValueError) as error:
        print(f"im2latex: cannot load model {args.model}: {error}", file=sys.stderr)
        return 2
    readings = reader.read(
        args.images,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        verify=args.verify,
        rerank=args.rerank,
        text_scales=args.text_scales,
    )
    for path, reading in zip(args.images, readings):
        if reading.error is not None:
            print(f"im2latex: {path}: {reading.error}", file=sys.stderr)
            continue
        columns = [path] if args.with_names else []
        columns.append(reading.latex)
        if args.verify:
            columns.append(f"{reading.score:.3f}")
            if reading.verification.reason:
                print(f"im2latex: {path}: the reading does not render: {reading.verification.reason}", file=sys.stderr)
        print("\t".join(columns), flush=True)
    return 1 if any(reading.error is not None for reading in readings) else 0


def _export_onnx(args: argparse.Namespace) -> int:
    from .onnx.export import export_pretrained

    try:
        export_pretrained(args.model, args.output)
    except (OSError, ValueError) as error:
        print(f"im2latex: cannot load model {args.model}: {error}", file=sys.stderr)
        return 2
    print(f"exported {args.model} to {args.output}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .metrics.verification import verify
    from .preprocessing import InvalidImageError

    try:
        verification = verify([args.image], [[args.latex]], timeout=args.timeout)[0][0]
    except InvalidImageError as error:
        print(f"im2latex: {args.image}: {error}", file=sys.stderr)
        return 1
    print(f"{verification.score:.3f}")
    if verification.reason:
        print(f"im2latex: the LaTeX does not render: {verification.reason}", file=sys.stderr)
    return 0


def _render(args: argparse.Namespace) -> int:
    from .rendering import render_file
    from .rendering.looks import IM2LATEX_DPI

    if not Path(args.input).is_file():
        print(f"im2latex: {args.input}: no such file", file=sys.stderr)
        return 2
    summary = render_file(
        args.input,
        args.output_dir,
        font=args.font,
        font_size=args.font_size,
        dpi=args.dpi or (IM2LATEX_DPI if args.look == "im2latex-fast" else 200),
        display=not args.inline,
        look=args.look,
        workers=args.workers,
    )
    print(summary)
    return 0 if summary.failed == 0 else 1


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluation.evaluate import run_evaluation

    return run_evaluation(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="im2latex", description="Printed math formula images to LaTeX.")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="print the LaTeX of each image, one line per image")
    predict.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    predict.add_argument("--model", default=DEFAULT_MODEL, help="model folder or Hub repo id (default: bundled)")
    predict.add_argument("--num-beams", type=int, default=1, help="beam width; 1 (default) is greedy decoding")
    predict.add_argument("--max-new-tokens", type=int, default=200)
    predict.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    predict.add_argument(
        "--backend", default="pytorch", choices=BACKENDS,
        help="onnx: ONNX Runtime on the CPU (a PyTorch model is exported at first use and cached); "
        "onnx-int8: the same with int8 decoder weights",
    )  # fmt: skip
    predict.add_argument("--with-names", action="store_true", help="prefix each line with the image path and a tab")
    predict.add_argument(
        "--verify",
        action="store_true",
        help="add a tab and the render-match score (0-1: how well the LaTeX draws the image)",
    )
    predict.add_argument(
        "--rerank", type=int, default=None, metavar="K", help="decode K candidates and keep the best-verified one"
    )
    add_text_scales_argument(predict, default=READING_TEXT_SCALES)
    predict.set_defaults(run=_predict)

    verify = commands.add_parser(
        "verify", help="score how well a LaTeX string draws an image (0-1), by rendering it with TeX"
    )
    verify.add_argument("--image", required=True, help="the formula image")
    verify.add_argument("--latex", required=True, help="the LaTeX to check")
    from .rendering import DEFAULT_TIMEOUT, FONTS
    from .rendering.looks import LOOKS

    verify.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds each TeX run may take")
    verify.set_defaults(run=_verify)

    render = commands.add_parser("render", help="render LaTeX formulas (one a line) to PNG images with TeX")
    render.add_argument("--input", required=True, help="text file, one formula a line")
    render.add_argument("--output-dir", required=True, help="writes <line number, from 0>.png and failures.tsv here")
    render.add_argument("--font", default="cm", choices=sorted(FONTS))
    render.add_argument("--font-size", type=int, default=12, help="points")
    render.add_argument(
        "--look",
        default="plain",
        choices=LOOKS,
        help="im2latex: im2latex-100k's own recipe (pdflatex + Ghostscript); im2latex-fast: its dvipng copy",
    )
    render.add_argument(
        "--dpi", type=int, default=None, help="default 200; with --look im2latex-fast the calibrated dpi"
    )
    render.add_argument("--inline", action="store_true", help="inline (text) style instead of display style")
    render.add_argument("--workers", type=int, default=2, help="TeX processes in parallel")
    render.set_defaults(run=_render)

    export = commands.add_parser(
        "export-onnx", help="export a model to ONNX (encoder and decoder graphs) for `predict --backend onnx`"
    )
    export.add_argument("--model", default=DEFAULT_MODEL, help="model folder or Hub repo id (default: bundled)")
    export.add_argument("--output", required=True, help="folder to write: graphs, config, tokenizer and processor")
    export.set_defaults(run=_export_onnx)

    from .evaluation.evaluate import add_arguments

    evaluate = commands.add_parser(
        "evaluate", help="decode a dataset split and score it (BLEU-4, edit, exact, image match)"
    )
    add_arguments(evaluate)
    evaluate.set_defaults(run=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="im2latex: %(message)s")
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
