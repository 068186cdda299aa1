"""Gradio app: a printed math formula image in, its LaTeX out.

    python app.py [--model PATH_OR_HUB_ID] [--backend pytorch|onnx] [--host 0.0.0.0] [--port 7860]

The model is ``--model``, else ``$IM2LATEX_MODEL``, else the one bundled with ``im2latex_hf``; it runs in
PyTorch, or in ONNX Runtime with ``--backend onnx`` or ``$IM2LATEX_BACKEND=onnx``.
Host and port default to Gradio's (``$GRADIO_SERVER_NAME``/``$GRADIO_SERVER_PORT``, as set on
Hugging Face Spaces, else 127.0.0.1:7860). The HTTP API endpoint is ``/predict``; see docs/app.md.

Requests are queued and batched: waiting requests (up to ``MAX_BATCH_SIZE``) are read together,
grouped by their decoding settings. Each request's problems (no image, not an image, blank, too
large, bad settings) come back as its own status message and never fail the rest of its batch.
Every reading is verified: rendered by TeX and scored against the image (`im2latex_hf.metrics.verification`).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, BinaryIO

import gradio as gr
from PIL import Image, ImageOps, UnidentifiedImageError

from im2latex_hf.bundled_model import DEFAULT_MODEL
from im2latex_hf.inference import BACKENDS, READING_TEXT_SCALES, FormulaReader
from im2latex_hf.preprocessing import InvalidImageError

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_PIXELS = 20_000_000
"""Larger uploads are rejected from their header, before being decoded."""
MAX_FILE_SIZE = "20mb"
"""Gradio refuses larger uploads outright."""
MAX_BATCH_SIZE = 16
MAX_QUEUE_SIZE = 256
MAX_BEAMS = 8
DEFAULT_BEAMS = 1
DEFAULT_MAX_NEW_TOKENS = 200
RERANK = None
"""Candidates re-ranked by render match (`FormulaReader.read`'s ``rerank``); None: the model's best."""
LATEX_DELIMITERS = [{"left": "$$", "right": "$$", "display": True}]
PREVIEW_PLACEHOLDER = "*The LaTeX, rendered, appears here.*"
# Runs in the browser whenever the LaTeX box changes (a reading or the user's edit).
PREVIEW_JS = f"(latex) => (latex ? '$$' + latex + '$$' : '{PREVIEW_PLACEHOLDER}')"


def example_images(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """The example images, in the order of ``formulas.txt`` (written by scripts/make_examples.py)."""
    listing = folder / "formulas.txt"
    if not listing.exists():
        return []
    names = [line.split("\t", 1)[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [folder / name for name in names if (folder / name).exists()]


def upload_source(upload: dict | None) -> str | BinaryIO:
    """Where an image payload's bytes are: its uploaded file, or its base64 ``data:`` URL."""
    upload = upload or {}
    if upload.get("path"):
        return upload["path"]
    url = upload.get("url") or ""
    if url.startswith("data:"):
        try:
            return io.BytesIO(base64.b64decode(url.partition(",")[2], validate=True))
        except binascii.Error:
            raise InvalidImageError("the data URL is not valid base64") from None
    raise ValueError("no image: upload, paste or drop a formula image first")


def open_image(source: str | BinaryIO, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an image file, refusing it from its header alone if it has more than ``max_pixels`` pixels."""
    try:
        image = Image.open(source)
    except Image.DecompressionBombError:
        raise InvalidImageError(f"image too large (limit {max_pixels:,} pixels)") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidImageError("not a readable image file (PNG, JPEG, WebP, BMP, GIF or TIFF)") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise InvalidImageError(
                f"image too large: {width}×{height} = {width * height:,} pixels (limit {max_pixels:,}); "
                "crop it to the formula or scale it down"
            )
        try:
            image.load()
        except (OSError, ValueError):
            raise InvalidImageError("the image file is damaged or truncated") from None
        return ImageOps.exif_transpose(image)


def whole_number(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``, or a ``ValueError`` saying what was expected."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number.is_integer() and low <= number <= high):
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(number)


def failure(error: Exception | str) -> str:
    """The status line of a request that got no LaTeX."""
    message = str(error)
    return f"⚠ {message[:1].upper()}{message[1:]}."


def build_demo(reader: FormulaReader, max_pixels: int = MAX_PIXELS, max_batch_size: int = MAX_BATCH_SIZE) -> gr.Blocks:
    """The app's Blocks, queued, reading with ``reader``; launch it with ``launch``."""
    max_tokens_limit = getattr(reader.model.config, "max_position_embeddings", 513) - 1

    def predict(
        image: list[dict | None], num_beams: list[Any], max_new_tokens: list[Any]
    ) -> tuple[list[str | None], list[float | None], list[Image.Image | None], list[str]]:
        """Batched: request i is (image[i], num_beams[i], max_new_tokens[i]) →
        (LaTeX or None, render-match score or None, the LaTeX rendered or None, status message)."""
        latex: list[str | None] = [None] * len(image)
        score: list[float | None] = [None] * len(image)
        rendered: list[Image.Image | None] = [None] * len(image)
        status = [""] * len(image)
        groups: dict[tuple[int, int], list[tuple[int, Image.Image]]] = defaultdict(list)
        for i, (upload, beams, length) in enumerate(zip(image, num_beams, max_new_tokens)):
            try:
                settings = (
                    whole_number(beams, "Beams (num_beams)", 1, MAX_BEAMS),
                    whole_number(length, "Max length (max_new_tokens)", 1, max_tokens_limit),
                )
                groups[settings].append((i, open_image(upload_source(upload), max_pixels)))
            except ValueError as error:
                status[i] = failure(error)
        for (beams, length), members in groups.items():
            start = time.perf_counter()
            readings = reader.read(
                [opened for _, opened in members],
                num_beams=beams,
                max_new_tokens=length,
                batch_size=max_batch_size,
                verify=True,
                rerank=RERANK,
                text_scales=READING_TEXT_SCALES,
            )
            seconds = time.perf_counter() - start
            for (i, _), reading in zip(members, readings):
                if reading.error is not None:
                    status[i] = failure(reading.error)
                    continue
                latex[i], score[i], rendered[i] = reading.latex, round(reading.score, 3), reading.verification.rendered
                reason = reading.verification.reason
                verdict = f"render match {reading.score:.2f}." if reason is None else f"it does not render: {reason}"
                status[i] = (
                    f"✓ Read in {seconds:.1f} s ({beams} beam{'s' * (beams > 1)} at {len(READING_TEXT_SCALES)} text sizes, "
                    f"at most {length} tokens); {verdict}"
                )
        return latex, score, rendered, status

    with gr.Blocks(title="im2latex: formula image → LaTeX", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# im2latex: formula image → LaTeX\n"
            "Upload, paste or drop an image of a printed formula, then press **Read formula**. "
            "The LaTeX appears in the box (copy button at its top right; edit it and the rendering follows). "
            "API: `/predict`, see *Use via API* at the bottom of the page."
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(
                    label="Formula image", sources=["upload", "clipboard"], type="filepath", image_mode=None,
                    height=220, elem_id="formula-image",
                )  # fmt: skip
                with gr.Row():
                    num_beams = gr.Slider(
                        1, MAX_BEAMS, value=DEFAULT_BEAMS, step=1, label="Beams",
                        info=f"beam search width at each of {len(READING_TEXT_SCALES)} text sizes: more is slower",
                        elem_id="num-beams",
                    )  # fmt: skip
                    max_new_tokens = gr.Slider(
                        1, max_tokens_limit, value=min(DEFAULT_MAX_NEW_TOKENS, max_tokens_limit), step=1,
                        label="Max length", info="most LaTeX tokens to write", elem_id="max-new-tokens",
                    )  # fmt: skip
                button = gr.Button("Read formula", variant="primary", elem_id="read-button")
            with gr.Column():
                latex = gr.Code(
                    label="LaTeX", language="latex", lines=3, interactive=True, wrap_lines=True,
                    show_line_numbers=False, buttons=["copy"], elem_id="latex-output",
                )  # fmt: skip
                preview = gr.Markdown(
                    PREVIEW_PLACEHOLDER, container=True, latex_delimiters=LATEX_DELIMITERS, min_height=80,
                    elem_id="latex-preview",
                )  # fmt: skip
                with gr.Row():
                    rendered = gr.Image(
                        label="The reading, rendered by TeX (compare it with the image)", type="pil",
                        interactive=False, height=120, elem_id="rendered-reading",
                    )  # fmt: skip
                    score = gr.Number(
                        label="Render match", info="0-1: how well the rendered reading matches the image",
                        precision=3, interactive=False, elem_id="render-match",
                    )  # fmt: skip
                status = gr.Markdown(label="status", elem_id="status")
        examples = example_images()
        if examples:
            gr.Examples([[str(path)] for path in examples], inputs=[image], label="Examples (click one, then Read)")

        # The upload is opened here, not by gr.Image: a file that is not an image then fails alone, with a
        # clear message, instead of failing Gradio's preprocessing for the whole batch.
        button.click(
            predict, inputs=[image, num_beams, max_new_tokens], outputs=[latex, score, rendered, status],
            api_name="predict",
            api_description="Read a formula image. Returns (LaTeX, or None if the image could not be read; "
            "its render-match score in 0-1; the LaTeX rendered by TeX; a status message saying why or how long "
            "it took).",
            batch=True, max_batch_size=max_batch_size, preprocess=False,
        )  # fmt: skip
        latex.change(None, inputs=latex, outputs=preview, js=PREVIEW_JS)
    # One model: one batch at a time; concurrent requests are served by batching them.
    return demo.queue(default_concurrency_limit=1, max_size=MAX_QUEUE_SIZE)


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, **options: Any) -> None:
    """Serve ``demo`` (blocks unless ``prevent_thread_lock=True`` is among ``options``)."""
    demo.launch(server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE, **options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the im2latex Gradio app.")
    parser.add_argument(
        "--model", default=os.environ.get("IM2LATEX_MODEL", DEFAULT_MODEL),
        help="model folder or Hugging Face Hub id (default: $IM2LATEX_MODEL, else the bundled model)",
    )  # fmt: skip
    parser.add_argument(
        "--backend", default=os.environ.get("IM2LATEX_BACKEND", "pytorch"), choices=BACKENDS,
        help="onnx: ONNX Runtime on the CPU, a PyTorch model exported at first use; onnx-int8: with int8 decoder "
        "weights (default: $IM2LATEX_BACKEND, else pytorch)",
    )  # fmt: skip
    parser.add_argument("--host", help="address to listen on, 0.0.0.0 for all (default: Gradio's, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: Gradio's, 7860)")
    args = parser.parse_args(argv)
    reader = FormulaReader.from_pretrained(args.model, backend=args.backend)
    launch(build_demo(reader), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
