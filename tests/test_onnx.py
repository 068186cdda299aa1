"""The ONNX Runtime backend with real parts: a tiny model trained on TeX-rendered formulas, exported by
torch.onnx, read by ONNX Runtime, and compared token by token with PyTorch's `generate`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from itertools import product
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image

from im2latex_hf import Im2LatexForConditionalGeneration, Im2LatexProcessor
from im2latex_hf.cli import main as cli_main
from im2latex_hf.inference import FormulaReader, OnnxFormulaReader
from im2latex_hf.onnx import onnx_model_folder
from im2latex_hf.onnx.layout import DECODER_FILE, DECODER_INT8_FILE, ENCODER_FILE
from im2latex_hf.onnx.runtime import OnnxIm2Latex
from im2latex_hf.preprocessing import pad_ink_maps
from im2latex_hf.rendering import render_formulas

from .conftest import REPO_ROOT, train_tiny_model
from .conftest import TINY_MODEL_FORMULAS as FORMULAS

# Formulas the model never saw, in many sizes: it reads them less surely, a harder case for parity.
UNSEEN = [f"{a} ^ {{ {n} }} {op} {b}" for a, b, n, op in product("akmx", "byz", "23", "+-=")] + [
    rf"\frac {{ {a} }} {{ {b} + {n} }}" for a, b, n in product("anx", "by", "1234")
]
MAX_NEW_TOKENS = 30  # the tiny model has 64 positions


class Trained(NamedTuple):
    model: Im2LatexForConditionalGeneration
    processor: Im2LatexProcessor
    folder: str
    images: list[Image.Image]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """``$IM2LATEX_CACHE`` for this module: exports of PyTorch models land in a fresh folder."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IM2LATEX_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained until it reads its six formulas, saved as a PyTorch model folder."""
    images = [result.image for result in render_formulas(FORMULAS, dpi=100)]
    model, processor = train_tiny_model(FORMULAS, images)
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return Trained(model, processor, str(folder), images)


@pytest.fixture(scope="module")
def exported(trained, onnx_cache):
    """The tiny model's ONNX export, made on first use into the cache (`onnx_model_folder`)."""
    return onnx_model_folder(trained.folder)


@pytest.fixture(scope="module")
def images(trained):
    """114 images of many sizes: the training formulas at three resolutions, and 96 formulas never seen."""
    images = list(trained.images)
    for formulas, dpi in ((FORMULAS, 80), (FORMULAS, 130), (UNSEEN, 100)):
        images += [result.image for result in render_formulas(formulas, dpi=dpi)]
    assert len(images) >= 100 and all(image is not None for image in images)
    return images


def trim(sequence) -> list[int]:
    """Token ids up to and including the first end token (the rest is padding)."""
    tokens = list(map(int, sequence))
    return tokens[: tokens.index(2) + 1] if 2 in tokens else tokens


def decode_both(
    trained, exported, images, max_new_tokens: int = MAX_NEW_TOKENS, **settings
) -> tuple[list[list[int]], list[list[int]], list[np.ndarray]]:
    """PyTorch and ONNX token sequences for every image, in batches of 16 images of different sizes."""
    model, processor = trained.model, trained.processor
    onnx_model = OnnxIm2Latex(exported)
    ink_maps = [processor.image_processor.ink_map(image) for image in images]
    pytorch, onnx = [], []
    for start in range(0, len(ink_maps), 16):
        batch = ink_maps[start : start + 16]
        with torch.inference_mode():
            generated = model.generate(
                **processor.image_processor.pad(batch), max_new_tokens=max_new_tokens, **settings
            )
        pytorch += [trim(row) for row in generated]
        onnx += [
            trim(row) for row in onnx_model.generate(**pad_ink_maps(batch), max_new_tokens=max_new_tokens, **settings)
        ]
    return pytorch, onnx, ink_maps


def top_two_gap(model, ink_map: np.ndarray, prefix: list[int]) -> float:
    """The gap between the two largest PyTorch logits for the token after ``prefix``."""
    inputs = pad_ink_maps([ink_map])
    with torch.inference_mode():
        logits = model(
            pixel_values=torch.from_numpy(inputs["pixel_values"]),
            pixel_mask=torch.from_numpy(inputs["pixel_mask"]),
            decoder_input_ids=torch.tensor([prefix]),
        ).logits[0, -1]
    first, second = logits.topk(2).values.tolist()
    return first - second


def test_greedy_gives_pytorch_tokens(trained, exported, images):
    pytorch, onnx, ink_maps = decode_both(trained, exported, images, num_beams=1)
    differ = [i for i in range(len(images)) if pytorch[i] != onnx[i]]
    assert len(differ) <= 0.01 * len(images), f"{len(differ)} of {len(images)} readings differ"
    for i in differ:  # only where PyTorch itself nearly hesitates
        split = next(j for j, (a, b) in enumerate(zip(pytorch[i], onnx[i])) if a != b)
        assert top_two_gap(trained.model, ink_maps[i], pytorch[i][:split]) < 1e-3
    assert len({len(sequence) for sequence in pytorch}) > 3  # readings of many lengths, not one stuck pattern


@pytest.mark.parametrize("max_new_tokens", [MAX_NEW_TOKENS, 8])  # 8: most hypotheses end at the length limit
def test_beam_search_gives_pytorch_tokens(trained, exported, images, max_new_tokens):
    """Beam 4, all four hypotheses in order (their ranking tests the scores, the length penalty and the stop)."""
    pytorch, onnx, _ = decode_both(trained, exported, images, max_new_tokens, num_beams=4, num_return_sequences=4)
    assert sum(a == b for a, b in zip(pytorch[::4], onnx[::4])) >= 0.99 * len(images)  # the best hypotheses
    assert sum(a == b for a, b in zip(pytorch, onnx)) >= 0.99 * len(pytorch)
    assert len({len(sequence) for sequence in pytorch}) > 3


def test_a_batch_reads_as_each_image_alone(trained, exported, images):
    reader = FormulaReader.from_pretrained(trained.folder, backend="onnx")
    mixed = images[::7]
    assert len({reader.processor.image_processor.ink_map(image).shape for image in mixed}) > 5  # padded batches
    for num_beams in (1, 4):
        together = reader.read(mixed, num_beams=num_beams, max_new_tokens=MAX_NEW_TOKENS)
        alone = [reader.read([image], num_beams=num_beams, max_new_tokens=MAX_NEW_TOKENS)[0] for image in mixed]
        assert [r.latex for r in together] == [r.latex for r in alone]


def test_readers_of_both_backends_agree_on_readings_and_errors(trained, exported, tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    inputs = [
        *trained.images,
        str(tmp_path / "missing.png"),
        str(tmp_path / "text.png"),
        np.full((40, 200), 255, dtype=np.uint8),  # blank
        np.zeros((0, 10), dtype=np.uint8),  # empty
        Image.new("L", (9_000, 6_000), 255),  # too large
    ]
    pytorch = FormulaReader.from_pretrained(trained.folder, device="cpu")
    onnx = FormulaReader.from_pretrained(trained.folder, backend="onnx")
    assert isinstance(onnx, OnnxFormulaReader)
    for num_beams in (1, 4):  # at the one text scale the tiny model was trained at
        expected = pytorch.read(inputs, num_beams=num_beams, max_new_tokens=MAX_NEW_TOKENS, text_scales=(None,))
        got = onnx.read(inputs, num_beams=num_beams, max_new_tokens=MAX_NEW_TOKENS, text_scales=(None,))
        assert [(r.latex, r.error) for r in got] == [(r.latex, r.error) for r in expected]
    assert [r.latex for r in expected[: len(FORMULAS)]] == FORMULAS
    assert all(r.error for r in expected[len(FORMULAS) :])


def test_int8_decoder_reads_what_it_was_trained_on(trained, exported):
    """The ``onnx-int8`` backend (int8 decoder weights) still reads the trained formulas, greedy and beam 4."""
    reader = FormulaReader.from_pretrained(trained.folder, backend="onnx-int8")
    assert (exported / DECODER_INT8_FILE).stat().st_size < (exported / DECODER_FILE).stat().st_size
    for num_beams in (1, 4):  # at the one text scale the tiny model was trained at
        readings = reader.read(trained.images, num_beams=num_beams, max_new_tokens=MAX_NEW_TOKENS, text_scales=(None,))
        assert [reading.latex for reading in readings] == FORMULAS


def test_model_errors_are_those_of_the_pytorch_backend(trained):
    for backend in ("pytorch", "onnx"):
        with pytest.raises(OSError, match="^no such model folder$"):
            FormulaReader.from_pretrained("/nonexistent/model", backend=backend)
    with pytest.raises(ValueError, match="unknown backend"):
        FormulaReader.from_pretrained(trained.folder, backend="tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU"):
        FormulaReader.from_pretrained(trained.folder, device="cuda", backend="onnx")


def test_export_is_cached_and_reused(trained, exported, onnx_cache):
    assert exported.parent == onnx_cache / "onnx" and len(list((onnx_cache / "onnx").iterdir())) == 1
    for name in (
        ENCODER_FILE,
        DECODER_FILE,
        DECODER_INT8_FILE,
        "config.json",
        "generation_config.json",
        "tokenizer.json",
    ):
        assert (exported / name).is_file(), name
    written = (exported / ENCODER_FILE).stat().st_mtime_ns
    assert onnx_model_folder(trained.folder) == exported  # found again, not exported again
    assert onnx_model_folder(exported) == exported  # an exported folder is used as it is
    assert (exported / ENCODER_FILE).stat().st_mtime_ns == written
    # Another process reuses it too, and reads without importing torch or transformers.
    script = f"""
import sys
from im2latex_hf.inference import FormulaReader
reading = FormulaReader.from_pretrained({trained.folder!r}, backend="onnx").read([{str(REPO_ROOT / "examples" / "euler_identity.png")!r}])
assert reading[0].latex is not None
heavy = sorted({{"torch", "transformers", "timm"}} & set(sys.modules))
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(list((onnx_cache / "onnx").iterdir())) == 1
    assert (exported / ENCODER_FILE).stat().st_mtime_ns == written


def test_export_onnx_command_writes_a_complete_model_folder(trained, exported, images, tmp_path, capsys):
    output = tmp_path / "exported"
    assert cli_main(["export-onnx", "--model", trained.folder, "--output", str(output)]) == 0
    assert f"to {output}" in capsys.readouterr().out
    for name in (
        ENCODER_FILE,
        DECODER_FILE,
        DECODER_INT8_FILE,
        "config.json",
        "tokenizer.json",
        "processor_config.json",
    ):
        assert (output / name).is_file(), name
    assert onnx_model_folder(output) == output
    reader = FormulaReader.from_pretrained(str(output), backend="onnx")
    cached = FormulaReader.from_pretrained(trained.folder, backend="onnx")
    subset = images[::10]
    assert [r.latex for r in reader.read(subset, num_beams=1)] == [r.latex for r in cached.read(subset, num_beams=1)]


def test_predict_command_with_the_onnx_backend(trained, exported, onnx_cache, tmp_path):
    """`im2latex predict --backend onnx` prints what the PyTorch backend prints: readings and one-line errors."""
    good = tmp_path / "good.png"
    trained.images[0].save(good)
    (tmp_path / "text.png").write_text("hello")
    Image.new("RGB", (400, 100), "white").save(tmp_path / "blank.png")
    paths = [str(good), str(tmp_path / "text.png"), str(tmp_path / "missing.png"), str(tmp_path / "blank.png")]
    command = [sys.executable, "-m", "im2latex_hf.cli", "predict", "--model", trained.folder, "--with-names", *paths]
    environment = {**os.environ, "IM2LATEX_CACHE": str(onnx_cache)}
    results = {
        backend: subprocess.run([*command, "--backend", backend], capture_output=True, text=True, env=environment)
        for backend in ("pytorch", "onnx")
    }
    pytorch, onnx = results["pytorch"], results["onnx"]
    assert onnx.returncode == pytorch.returncode == 1
    assert onnx.stdout == pytorch.stdout == f"{good}\t{FORMULAS[0]}\n"
    errors = [line for line in onnx.stderr.splitlines() if line.startswith("im2latex:")]
    assert errors == [line for line in pytorch.stderr.splitlines() if line.startswith("im2latex:")]
    assert len(errors) == 3 and "Traceback" not in onnx.stderr
    missing = subprocess.run(
        [*command[:4], "--backend", "onnx", "--model", "/nonexistent/model", str(good)], capture_output=True, text=True
    )
    assert missing.returncode == 2 and missing.stderr.startswith(
        "im2latex: cannot load model /nonexistent/model: no such"
    )


def test_evaluate_command_with_the_onnx_backend(trained, exported, tmp_path, capsys):
    from datasets import Dataset, DatasetDict
    from datasets import Image as ImageFeature

    split = Dataset.from_dict(
        {"image": trained.images, "formula": FORMULAS, "image_name": [f"{i}.png" for i in range(6)]}
    )
    DatasetDict({"test": split.cast_column("image", ImageFeature())}).save_to_disk(str(tmp_path / "data"))
    arguments = ["--data", str(tmp_path / "data"), "--model", trained.folder, "--backend", "onnx", "--num-beams", "1"]
    assert cli_main(["evaluate", *arguments, "--no-image-match", "--output-dir", str(tmp_path / "report")]) == 0
    assert ", onnx" in capsys.readouterr().out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["decoding"]["backend"] == "onnx" and report["metrics"]["exact_match"] == 1.0


def test_app_serves_the_onnx_backend_when_asked(trained, exported, onnx_cache, tmp_path):
    """``IM2LATEX_BACKEND=onnx python app.py`` reads with ONNX Runtime (the reading PyTorch gives, no torch loaded)."""
    gradio_client = pytest.importorskip("gradio_client")
    image = tmp_path / "formula.png"
    trained.images[1].save(image)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environment = {"IM2LATEX_BACKEND": "onnx", "IM2LATEX_MODEL": trained.folder, "IM2LATEX_CACHE": str(onnx_cache)}
    server = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "app.py"), "--port", str(port)],
        env={**os.environ, **environment, "GRADIO_ANALYTICS_ENABLED": "False"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()
                time.sleep(1)
        latex, *_ = client.predict(gradio_client.handle_file(str(image)), 1, MAX_NEW_TOKENS, api_name="/predict")
        assert latex == FORMULAS[1]
        maps = Path(f"/proc/{server.pid}/maps")
        libraries = maps.read_text() if maps.exists() else ""
        assert "libtorch" not in libraries
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_readings_carry_confidence_and_several_text_scales_keep_the_likeliest(trained, exported):
    """Both backends give each reading the geometric mean of its token probabilities, alike; read at several text
    scales, an image keeps the reading of the scale the model is surest of."""
    images = trained.images[:3] + [result.image for result in render_formulas(FORMULAS[3:], dpi=160)]
    scales = (None, 0.8, 1.25)
    pytorch = FormulaReader.from_pretrained(trained.folder, device="cpu")
    onnx = FormulaReader.from_pretrained(trained.folder, backend="onnx")
    for num_beams in (1, 3):
        confidences = {}
        for name, reader in (("pytorch", pytorch), ("onnx", onnx)):
            settings = {"num_beams": num_beams, "max_new_tokens": MAX_NEW_TOKENS}
            alone = [reader.read(images, text_scales=(scale,), **settings) for scale in scales]
            pooled = reader.read(images, text_scales=scales, **settings)
            for i, reading in enumerate(pooled):
                likeliest = max((found[i] for found in alone), key=lambda r: r.confidence)
                assert reading.latex == likeliest.latex
                assert reading.confidence == pytest.approx(likeliest.confidence)
                assert 0 < reading.confidence <= 1
            confidences[name] = [r.confidence for r in pooled]
            assert len({r.latex for found in alone for r in found}) > len(images) / 2  # the scales read differently
        assert confidences["onnx"] == pytest.approx(confidences["pytorch"], abs=1e-4)
    with pytest.raises(ValueError, match="text_scales"):
        onnx.read(images, text_scales=())
