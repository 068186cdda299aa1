"""ONNX Runtime inference: an exported model folder (see `export`) read with numpy, onnxruntime and tokenizers.

Imports neither torch nor transformers, so that a cold `im2latex predict --backend onnx` starts fast. The
decoding loop is numpy (`decoding`) rather than transformers' `generate` driving ORT (optimum-onnx): that
would import torch and transformers (seconds of start-up), while a Python step over ORT adds little to a
decoder step.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from ..preprocessing import FormulaPreprocessor
from .decoding import beam_search, greedy_search
from .layout import DECODER_FILE, DECODER_INT8_FILE, ENCODER_FILE, cache_names


class OnnxIm2Latex:
    """The encoder and decoder sessions of an exported model, with `generate` as in transformers.

    ``threads``: the encoder's intra-op threads; by default ``$OMP_NUM_THREADS`` (as torch), else ONNX Runtime's
    own choice. ``int8``: decode with the int8-weight decoder (``decoder_int8.onnx``).
    """

    def __init__(self, folder: str | Path, threads: int | None = None, int8: bool = False):
        folder = Path(folder)
        self.config = SimpleNamespace(**json.loads((folder / "config.json").read_text()))
        generation = folder / "generation_config.json"
        self.length_penalty = (
            json.loads(generation.read_text()).get("length_penalty", 1.0) if generation.is_file() else 1.0
        )
        decoder = folder / (DECODER_INT8_FILE if int8 else DECODER_FILE)
        if not decoder.is_file():
            raise OSError(f"no {decoder.name} in {folder}: export the model again (im2latex export-onnx)")
        self.encoder = _session(folder / ENCODER_FILE, threads if threads is not None else _env_threads())
        # A decoder step is a few small matrix products: thread hand-offs cost more than they save. Greedy,
        # batch 1, 2 cores: 41.5 ms a formula with one decoder thread, 50.2 with ORT's default, 65.5 with two.
        self.decoder = _session(decoder, 1)
        self._cross_names = cache_names(self.config.decoder_layers, "cross")
        self._past_names = cache_names(self.config.decoder_layers, "past")

    def generate(
        self,
        pixel_values: np.ndarray,
        pixel_mask: np.ndarray,
        num_beams: int = 1,
        num_return_sequences: int = 1,
        max_new_tokens: int = 200,
        return_token_log_probs: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Token ids (batch · num_return_sequences, 1 + generated), the start token first, as `generate` gives them;
        with ``return_token_log_probs``, also each generated token's log-probability (NaN after the end)."""
        if num_return_sequences > num_beams:
            raise ValueError(f"num_return_sequences ({num_return_sequences}) must not exceed num_beams ({num_beams})")
        memory_mask, *cross = self.encoder.run(None, {"pixel_values": pixel_values, "pixel_mask": pixel_mask})
        if num_beams > 1:  # each image's beams side by side, as generate expands them
            memory_mask, cross = np.repeat(memory_mask, num_beams, 0), [np.repeat(c, num_beams, 0) for c in cross]
        rows, heads, _, head_dim = cross[0].shape
        inputs = {"memory_mask": memory_mask, **dict(zip(self._cross_names, cross))}
        inputs.update(dict.fromkeys(self._past_names, np.zeros((rows, heads, 0, head_dim), dtype=cross[0].dtype)))
        max_positions = self.config.max_position_embeddings

        def step(tokens: np.ndarray, reorder: np.ndarray | None) -> np.ndarray:
            length = inputs[self._past_names[0]].shape[2] + 1
            if length > max_positions:  # as the PyTorch decoder says it
                raise ValueError(
                    f"sequence of {length} tokens is longer than max_position_embeddings ({max_positions})"
                )
            if reorder is not None:
                inputs.update({name: inputs[name][reorder] for name in self._past_names})
            logits, *present = self.decoder.run(None, {**inputs, "input_ids": tokens[:, None]})
            inputs.update(zip(self._past_names, present))
            return logits

        config, batch = self.config, pixel_values.shape[0]
        ids = (config.decoder_start_token_id, config.eos_token_id, config.pad_token_id)
        if num_beams == 1:
            sequences, log_probs = greedy_search(step, batch, *ids, max_new_tokens)
        else:
            sequences, log_probs = beam_search(
                step, batch, num_beams, *ids, max_new_tokens, num_return_sequences, self.length_penalty
            )
        return (sequences, log_probs) if return_token_log_probs else sequences


def _env_threads() -> int:
    """``$OMP_NUM_THREADS`` (as torch reads it), else 0: ONNX Runtime's own choice."""
    return int(os.environ.get("OMP_NUM_THREADS", 0))


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxProcessor:
    """An exported folder's processor without transformers: `preprocessing.FormulaPreprocessor` with the
    saved settings, and the `tokenizers` tokenizer."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        settings = json.loads((folder / "processor_config.json").read_text())["image_processor"]
        parameters = inspect.signature(FormulaPreprocessor).parameters
        self.image_processor = FormulaPreprocessor(
            **{key: value for key, value in settings.items() if key in parameters}
        )
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))

    def batch_decode(self, sequences: np.ndarray) -> list[str]:
        return self.tokenizer.decode_batch(sequences.tolist(), skip_special_tokens=True)
