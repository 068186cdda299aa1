"""Decoding speed on the CPU (or GPU), PyTorch and ONNX Runtime: latency per formula and batch throughput.

    python scripts/benchmark.py [--model PATH_OR_ID] [--images 'examples/*.png' ...] [--repeats 3]
    python scripts/benchmark.py --data ../shared/data/im2latex-100k --split test --limit 40
    python scripts/benchmark.py --model MODEL --only onnx --beams 1     # one row: ONNX greedy

Prints one table: for PyTorch (KV cache on; off: everything recomputed at each step; ``static``: a static
cache, ``compiled``: a static cache and the decoding step compiled by ``generate`` with ``torch.compile``;
``bf16``: cache on, under ``torch.autocast`` in bfloat16, on CPUs with native bf16 only) and ONNX Runtime (`im2latex_hf.onnx`,
always cached; ``onnx-int8``: the decoder with int8 weights), greedy and beam-4
decoding, the median and p90 milliseconds to decode one formula at batch 1, the formulas/s at batch 16
(images sorted by size, as `FormulaReader` batches them), the mean generated tokens (the end token
included), and the share of formulas with the very tokens PyTorch (float32, cached) gives. Timed: the model
(`generate`, encoder included) on preprocessed images; PyTorch and the ONNX encoder use the same number
of threads.
``--only`` keeps some rows (``onnx``, ``onnx-int8``, ``pytorch`` or ``pytorch/VARIANT``), ``--beams`` some
decodings; PyTorch with its cache still decodes once, untimed and unprinted when not asked for, to give the reference tokens.
Images: ``--images`` (files or glob patterns), or the first ``--limit`` images of a ``--split`` of ``--data``
(im2latex-100k's original layout, or a folder saved by scripts/build_dataset.py).
"""

from __future__ import annotations

import argparse
import glob
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.generation import CompileConfig

import im2latex_hf
from im2latex_hf.data.im2latex import IMAGE_DIR, SPLIT_FILES
from im2latex_hf.onnx import onnx_model_folder
from im2latex_hf.onnx.runtime import OnnxIm2Latex
from im2latex_hf.preprocessing import pad_ink_maps
from im2latex_hf.training import native_bf16

Generate = Callable[[list[np.ndarray]], np.ndarray]
"""Ink maps → generated token ids (one row per image)."""


def dataset_images(data: str, split: str, limit: int) -> list:
    """The first ``limit`` images of ``split`` of im2latex-100k's original layout or a saved dataset folder."""
    folder = Path(data)
    if (folder / SPLIT_FILES[split]).is_file():
        names = [line.split()[0] for line in (folder / SPLIT_FILES[split]).read_text().splitlines() if line.strip()]
        paths = [folder / IMAGE_DIR / name for name in names]
        return [str(path) for path in paths if path.is_file()][:limit]
    from datasets import load_from_disk

    rows = load_from_disk(data)[split]
    return list(rows.select(range(min(limit, len(rows))))["image"])


def measure(generate: Generate, ink_maps: list[np.ndarray], repeats: int) -> tuple[list[float], float, list[list[int]]]:
    """Seconds per formula at batch 1 (each image ``repeats`` times), formulas/s at batch 16, and the tokens."""
    generate(ink_maps[:1])  # warm-up
    latencies, sequences = [], []
    for ink_map in ink_maps:
        for _ in range(repeats):
            start = time.perf_counter()
            generated = generate([ink_map])
            latencies.append(time.perf_counter() - start)
        sequences.append(generated[0].tolist())  # batch 1: no padding
    by_size = sorted(ink_maps, key=lambda ink_map: ink_map.shape[::-1])
    by_size = [by_size[i % len(by_size)] for i in range(max(16, len(by_size)))]
    start = time.perf_counter()
    for first in range(0, len(by_size), 16):
        generate(by_size[first : first + 16])
    return latencies, len(by_size) / (time.perf_counter() - start), sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=im2latex_hf.DEFAULT_MODEL, help="PyTorch model folder or Hub id")
    parser.add_argument("--images", nargs="+", default=["examples/*.png"], help="image files or glob patterns")
    parser.add_argument("--data", help="read images from this dataset instead of --images")
    parser.add_argument("--split", default="test", choices=sorted(SPLIT_FILES))
    parser.add_argument("--limit", type=int, default=40, help="images taken from --data")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per image at batch 1")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="for PyTorch")
    parser.add_argument("--only", nargs="+", metavar="ROW", help="only these rows: onnx, onnx-int8, pytorch[/VARIANT]")
    parser.add_argument("--beams", nargs="+", type=int, default=[1, 4], help="beam widths (default: 1 4)")
    args = parser.parse_args()

    if args.data:
        images = dataset_images(args.data, args.split, args.limit)
    else:
        images = [path for pattern in args.images for path in sorted(glob.glob(pattern)) or [pattern]]
    model = AutoModelForImageTextToText.from_pretrained(args.model).to(args.device).eval()
    processor = AutoProcessor.from_pretrained(args.model)
    onnx_folder = onnx_model_folder(args.model)
    onnx_models = {
        "onnx": OnnxIm2Latex(onnx_folder, threads=torch.get_num_threads()),
        "onnx-int8": OnnxIm2Latex(onnx_folder, threads=torch.get_num_threads(), int8=True),
    }
    ink_maps = [processor.image_processor.ink_map(image) for image in images]

    def pytorch(bf16: bool = False, **settings) -> Generate:
        def generate(batch: list[np.ndarray]) -> np.ndarray:
            with torch.inference_mode(), torch.autocast(args.device, dtype=torch.bfloat16, enabled=bf16):
                inputs = processor.image_processor.pad(batch).to(args.device)
                return model.generate(**inputs, **settings, max_new_tokens=args.max_new_tokens).cpu().numpy()

        return generate

    compile_config = CompileConfig(dynamic=True, mode="default")  # one graph for every image size
    compile_config._compile_all_devices = True  # generate compiles on GPUs only unless told so
    static = {"cache_implementation": "static"}

    def onnx(backend: str, **settings) -> Generate:
        onnx_model = onnx_models[backend]
        return lambda batch: onnx_model.generate(**pad_ink_maps(batch), **settings, max_new_tokens=args.max_new_tokens)

    print(
        f"model {args.model}, {len(images)} images; PyTorch on {args.device}, ONNX Runtime on the CPU; "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'backend':<10} {'decoding':<9} {'variant':<9} {'median ms':>10} {'p90 ms':>8} "
        f"{'batch 16 formulas/s':>20} {'tokens':>7} {'same as PyTorch':>16}"
    )

    def wanted(backend: str, variant: str) -> bool:
        return not args.only or backend in args.only or f"{backend}/{variant}" in args.only

    for num_beams in args.beams:
        name = "greedy" if num_beams == 1 else f"beam {num_beams}"
        runs = [
            ("pytorch", "cache", pytorch(num_beams=num_beams, use_cache=True)),
            ("pytorch", "no cache", pytorch(num_beams=num_beams, use_cache=False)),
            ("pytorch", "static", pytorch(num_beams=num_beams, **static, disable_compile=True)),
            ("pytorch", "compiled", pytorch(num_beams=num_beams, **static, compile_config=compile_config)),
            *([("pytorch", "bf16", pytorch(bf16=True, num_beams=num_beams))] if native_bf16() else []),
            ("onnx", "", onnx("onnx", num_beams=num_beams)),
            ("onnx-int8", "", onnx("onnx-int8", num_beams=num_beams)),
        ]
        reference = None
        for backend, variant, generate in runs:
            if not wanted(backend, variant):
                if reference is None:  # the first run's tokens are the reference: decoded once, untimed
                    reference = [generate([ink_map])[0].tolist() for ink_map in ink_maps]
                continue
            latencies, throughput, sequences = measure(generate, ink_maps, args.repeats)
            reference = reference or sequences
            same = sum(a == b for a, b in zip(sequences, reference)) / len(sequences)
            p90 = statistics.quantiles(latencies, n=10)[-1] if len(latencies) > 1 else latencies[0]
            print(
                f"{backend:<10} {name:<9} {variant:<9} {statistics.median(latencies) * 1000:>10.1f} "
                f"{p90 * 1000:>8.1f} {throughput:>20.2f} {statistics.mean(map(len, sequences)) - 1:>7.1f} {same:>16.1%}"
            )


if __name__ == "__main__":
    main()
