"""transformers' `pipeline("image-text-to-text")` on the bundled model reads as `generate` does."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from transformers import BatchFeature, pipeline

import im2latex_hf
from im2latex_hf.rendering import render_formulas

FORMULAS = [r"x ^ { 2 } + y ^ { 2 } = 1", r"a + \frac { 1 } { b }", r"\sqrt { x + 2 }"]
GREEDY = {"num_beams": 1, "max_new_tokens": 30}  # cheaper than the generation config's beam 4 and 200 tokens


@pytest.fixture(scope="module")
def reader():
    """The pipeline on the bundled model, and rendered images."""
    images = [result.image for result in render_formulas(FORMULAS, look="im2latex")]
    assert all(image is not None for image in images)
    return pipeline("image-text-to-text", model=im2latex_hf.DEFAULT_MODEL), images


def test_the_pipeline_reads_as_generate_one_image_and_a_list(reader):
    pipe, images = reader
    model, processor = pipe.model, pipe.processor
    assert isinstance(processor, im2latex_hf.Im2LatexProcessor)
    with torch.no_grad():
        alone = processor.batch_decode(model.generate(**processor(images=images[:1])))  # generation config: beam 4
        together = processor.batch_decode(model.generate(**processor(images=images), **GREEDY))
    assert alone[0] and all(together)

    assert pipe(images=images[0], text="") == [{"input_text": "", "generated_text": alone[0]}]
    assert [output["generated_text"] for output in pipe(images=images, text="", generate_kwargs=GREEDY)] == together
    outputs = pipe(images=images, text=["", "", ""], generate_kwargs=GREEDY)
    assert [output["generated_text"] for output in outputs] == together


def test_a_prompt_is_the_start_of_the_reading(reader):
    """Greedy: given the first tokens of its own reading, the model goes on with the rest."""
    pipe, images = reader
    reading = pipe(images=images[0], text="", generate_kwargs=GREEDY)[0]["generated_text"]
    start = " ".join(reading.split()[:3])
    assert pipe(images=images[0], text=start, generate_kwargs=GREEDY)[0]["generated_text"] == reading
    rest = pipe(images=images[0], text=start, return_full_text=False, generate_kwargs=GREEDY)[0]["generated_text"]
    assert start + rest == reading


def test_the_pipeline_runs_from_remote_code_without_the_package(reader, tmp_path):
    """A Hub user without im2latex_hf: `trust_remote_code=True` loads the folder's own copies of the code."""
    pipe, images = reader
    images[0].save(tmp_path / "formula.png")
    expected = pipe(images=images[0], text="", generate_kwargs=GREEDY)[0]["generated_text"]
    script = f"""
import sys
sys.modules["im2latex_hf"] = None  # importing the package now fails: only the model folder's code may be used
from transformers import pipeline
pipe = pipeline("image-text-to-text", model={im2latex_hf.DEFAULT_MODEL!r}, trust_remote_code=True)
assert type(pipe.processor).__module__.startswith("transformers_modules"), type(pipe.processor).__module__
print(pipe(images={str(tmp_path / "formula.png")!r}, text="", generate_kwargs={GREEDY!r})[0]["generated_text"])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == expected


def test_processor_gives_a_batch_feature_with_labels_or_a_decoder_prompt(reader):
    pipe, images = reader
    processor = pipe.processor
    start = processor.tokenizer.bos_token_id

    for_training = processor(images=images[:2], text=FORMULAS[:2])
    assert isinstance(for_training, BatchFeature)
    assert set(for_training) == {"pixel_values", "pixel_mask", "labels"}
    assert for_training["labels"][0, -1] == processor.tokenizer.eos_token_id  # the longest ends with </s>
    assert isinstance(processor(text=FORMULAS), BatchFeature)

    for name, inputs in {
        "the pipeline's call": processor(images=images[:2], text="", return_tensors="pt"),
        "output_labels=False": processor(images=images[:2], text=["", ""], output_labels=False),
    }.items():
        assert isinstance(inputs, BatchFeature), name
        assert set(inputs) == {"pixel_values", "pixel_mask", "decoder_input_ids"}, name
        assert inputs["decoder_input_ids"].tolist() == [[start], [start]], name
    prompt = processor(images=images[:1], text=r"\frac {", output_labels=False)["decoder_input_ids"]
    assert prompt.tolist() == [[start, *processor.tokenizer(r"\frac {", add_special_tokens=False)["input_ids"]]]
    assert "labels" in processor(images=images[:1], text=FORMULAS[:1], return_tensors="pt", output_labels=True)

    with pytest.raises(ValueError, match="as many tokens"):
        processor(images=images[:2], text=["x", r"\frac { a"], output_labels=False)
    with pytest.raises(ValueError, match="2 prompts for 3 images"):
        processor(images=images, text=["", ""], output_labels=False)
