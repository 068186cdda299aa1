"""`im2latex predict` and `im2latex render` as a user runs them: real processes, the bundled model, real TeX."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from im2latex_hf.rendering.looks import IM2LATEX_BUCKETS

FAST = ["--num-beams", "1", "--max-new-tokens", "8"]


def im2latex(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "im2latex_hf.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A good rendered formula in several modes, and every kind of bad input."""
    from im2latex_hf.rendering import render_formulas

    folder = tmp_path_factory.mktemp("images")
    formula = render_formulas([r"a ^ { 2 } + b ^ { 2 } = c ^ { 2 }"], dpi=100)[0].image
    paths = {"good": folder / "good.png"}
    formula.save(paths["good"])
    for mode in ("RGBA", "CMYK", "P"):
        paths[mode] = folder / f"{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
        formula.convert(mode).save(paths[mode])
    paths["16-bit"] = folder / "16bit.png"
    Image.fromarray(np.asarray(formula, dtype=np.uint16) * 257).save(paths["16-bit"])
    paths["missing"] = folder / "missing.png"
    paths["text"] = folder / "text.png"
    paths["text"].write_text("hello")
    paths["empty"] = folder / "empty.png"
    paths["empty"].write_bytes(b"")
    paths["1x1"] = folder / "one.png"
    Image.new("L", (1, 1), 0).save(paths["1x1"])
    paths["blank"] = folder / "blank.png"
    Image.new("RGB", (400, 100), "white").save(paths["blank"])
    paths["huge"] = folder / "huge.png"
    huge = Image.new("L", (9_000, 6_000), 255)
    huge.paste(formula, (10, 10))
    huge.save(paths["huge"])
    return paths


def test_predict_prints_one_line_per_image_in_any_mode(images):
    names = ["good", "RGBA", "CMYK", "P", "16-bit"]
    result = im2latex("predict", *FAST, *(str(images[n]) for n in names))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(names)
    assert "Loading weights" not in result.stderr  # no progress bar for the small bundled model


@pytest.mark.parametrize(
    ("bad", "message"),
    [("missing", "no such file"), ("text", "not a readable image"), ("empty", "not a readable image"),
     ("1x1", "blank"), ("blank", "blank"), ("huge", "too large")],
)  # fmt: skip
def test_bad_input_gets_one_line_error_and_good_images_still_print(images, bad, message):
    result = im2latex("predict", *FAST, "--with-names", str(images["good"]), str(images[bad]))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("im2latex:")]
    assert len(errors) == 1 and errors[0].startswith(f"im2latex: {images[bad]}: ") and message in errors[0]
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{images['good']}\t")


def test_predict_reads_greedy_at_four_text_scales_unless_told_otherwise():
    from im2latex_hf.cli import build_parser
    from im2latex_hf.inference import READING_TEXT_SCALES

    default = build_parser().parse_args(["predict", "x.png"])
    assert default.num_beams == 1 and default.text_scales == READING_TEXT_SCALES == (None, 0.8, 1.0, 1.25)
    chosen = build_parser().parse_args(["predict", "x.png", "--num-beams", "4", "--text-scales", "auto"])
    assert chosen.num_beams == 4 and chosen.text_scales == (None,)


def test_predict_with_a_model_that_does_not_exist():
    result = im2latex("predict", "--model", "/nonexistent/model", "x.png")
    assert result.returncode == 2 and "cannot load model" in result.stderr and "Traceback" not in result.stderr
    assert "no such model folder" in result.stderr and "Repo id must be" not in result.stderr


def test_the_command_starts_without_torch_or_transformers():
    """`im2latex --help` and the parsing of every subcommand import no heavy library (they cost seconds)."""
    script = """
import sys
from im2latex_hf.cli import build_parser
build_parser().parse_args(["predict", "--backend", "onnx", "x.png"])
print(sorted({"torch", "transformers", "timm", "datasets", "gradio", "onnxruntime"} & set(sys.modules)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
    assert im2latex("--help").returncode == 0


def test_render_writes_images_failures_and_summary(tmp_path):
    (tmp_path / "formulas.txt").write_text("x ^ { 2 }\n\\undefinedcommand\n\n\\frac { 1 } { 2 }\n")
    result = im2latex("render", "--input", str(tmp_path / "formulas.txt"), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 1  # some lines failed
    assert "rendered 2 of 4 formulas" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["0.png", "3.png"]
    failures = (tmp_path / "out" / "failures.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in failures] == ["1", "2"]
    assert "Undefined control sequence" in failures[0]


def test_render_in_the_im2latex_look(tmp_path):
    (tmp_path / "formulas.txt").write_text("x ^ { 2 } + \\frac { 1 } { 2 }\n")
    plain, look = tmp_path / "plain", tmp_path / "look"
    assert im2latex("render", "--input", str(tmp_path / "formulas.txt"), "--output-dir", str(plain)).returncode == 0
    result = im2latex(
        "render", "--input", str(tmp_path / "formulas.txt"), "--output-dir", str(look), "--look", "im2latex"
    )
    assert result.returncode == 0, result.stderr
    image = Image.open(look / "0.png")
    assert (image.width * 2, image.height * 2) in IM2LATEX_BUCKETS  # bucketed, then halved
    assert np.asarray(image)[:2].min() > 200 and np.asarray(image).min() == 0  # padding above black ink
    assert np.asarray(Image.open(plain / "0.png"))[0].min() < 255  # the plain look is cropped to the ink
