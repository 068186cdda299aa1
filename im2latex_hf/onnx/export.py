"""Export a trained model to ONNX: an encoder graph and a one-step decoder graph with an explicit cache.

* ``encoder.onnx``: ``pixel_values`` (batch, 1, H, W), ``pixel_mask`` (batch, H, W) → ``memory_mask``
  (batch, cells) and each decoder layer's cross-attention keys and values, computed once per image.
* ``decoder.onnx``: one new token a sequence, ``input_ids`` (batch, 1), with ``memory_mask``, the
  cross-attention keys/values and the self-attention keys/values of the tokens so far (``past_*``, length 0
  at the first step) → ``logits`` (batch, vocab) and the self-attention keys/values with the new token
  (``present_*``).
* ``decoder_int8.onnx``: the same decoder with int8 weights (`onnxruntime.quantization.quantize_dynamic`),
  read by the ``onnx-int8`` backend.

Both graphs run the model's own modules (`Im2LatexForConditionalGeneration`, its `EncoderDecoderCache`),
traced by `torch.onnx.export` (the dynamo exporter), so the ONNX model computes what PyTorch computes.
The output folder also gets the config, generation config, tokenizer and processor: it is a complete
model folder for `FormulaReader.from_pretrained(folder, backend="onnx")`.
"""

from __future__ import annotations

import copy
import logging
import shutil
import warnings
from pathlib import Path

import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import nn
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from .. import register
from .layout import DECODER_FILE, DECODER_INT8_FILE, ENCODER_FILE, cache_names

OPSET = 18


class EncoderGraph(nn.Module):
    """Image → feature mask and every decoder layer's cross-attention keys/values."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        encoded = self.model.encoder(pixel_values, pixel_mask)
        memory = encoded.last_hidden_state
        cross = []
        for layer in self.model.decoder.layers:
            attention = layer.cross_attn
            cross += [
                attention._split_heads(attention.k_proj(memory)),
                attention._split_heads(attention.v_proj(memory)),
            ]
        return (encoded.attention_mask, *cross)


class DecoderStepGraph(nn.Module):
    """One decoding step: the model's decoder over a cache built from explicit key/value tensors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.num_layers = len(model.decoder.layers)

    def forward(
        self, input_ids: torch.Tensor, memory_mask: torch.Tensor, *caches: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        n = self.num_layers
        cross, past = caches[: 2 * n], caches[2 * n :]
        self_cache, cross_cache = DynamicCache(), DynamicCache()
        for layer in range(n):
            self_cache.update(past[2 * layer], past[2 * layer + 1], layer)
            cross_cache.update(cross[2 * layer], cross[2 * layer + 1], layer)
        cache = EncoderDecoderCache(self_cache, cross_cache)
        cache.is_updated = dict.fromkeys(range(n), True)  # cross-attention keys/values are given
        hidden = self.model.decoder(input_ids, None, memory_mask[:, None, None, :], cache)
        logits = self.model.lm_head(hidden[:, -1])
        present = [tensor for layer in self_cache.layers for tensor in (layer.keys, layer.values)]
        return (logits, *present)


def export_onnx(model: nn.Module, processor, output_dir: str | Path) -> Path:
    """Write ``encoder.onnx``, ``decoder.onnx`` and the model's config, tokenizer and processor to ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    config = model.config
    n, heads = config.decoder_layers, config.decoder_attention_heads
    head_dim = config.d_model // heads
    pixel_values = torch.rand(2, 1, 64, 192)
    pixel_mask = torch.ones(2, 64, 192, dtype=torch.int64)
    pixel_mask[1, :, 160:] = 0
    cross_names = cache_names(n, "cross")
    options = {"opset_version": OPSET, "dynamo": True, "external_data": False, "verbose": False}
    with torch.no_grad(), warnings.catch_warnings():
        # Axes shared by several inputs (batch, height, width) keep their names; the exporter warns all the same.
        warnings.filterwarnings("ignore", message="# The axis name", category=UserWarning)
        torch.onnx.export(
            EncoderGraph(model).eval(),
            (pixel_values, pixel_mask),
            str(output_dir / ENCODER_FILE),
            input_names=["pixel_values", "pixel_mask"],
            output_names=["memory_mask", *cross_names],
            dynamic_shapes=({0: "batch", 2: "height", 3: "width"}, {0: "batch", 1: "height", 2: "width"}),
            **options,
        )
        memory_mask, *cross = EncoderGraph(model)(pixel_values, pixel_mask)
        past = [torch.zeros(2, heads, 3, head_dim) for _ in range(2 * n)]
        torch.onnx.export(
            DecoderStepGraph(model).eval(),
            (torch.full((2, 1), config.decoder_start_token_id), memory_mask, *cross, *past),
            str(output_dir / DECODER_FILE),
            input_names=["input_ids", "memory_mask", *cross_names, *cache_names(n, "past")],
            output_names=["logits", *cache_names(n, "present")],
            dynamic_shapes=(
                {0: "batch"},
                {0: "batch", 1: "cells"},
                (*[{0: "batch", 2: "cells"}] * (2 * n), *[{0: "batch", 2: "past_length"}] * (2 * n)),  # the *caches
            ),
            **options,
        )
    config.save_pretrained(output_dir)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(output_dir)
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # quantize_dynamic's warning (pre-process shapes first) is for large CNNs
    try:
        quantize_dynamic(output_dir / DECODER_FILE, output_dir / DECODER_INT8_FILE, weight_type=QuantType.QInt8)
    finally:
        root_logger.setLevel(level)
    processor.save_pretrained(output_dir)
    return output_dir


def export_pretrained(name_or_path: str | Path, output_dir: str | Path) -> Path:
    """Load a PyTorch model folder or Hub repo id and export it to ``output_dir`` (`export_onnx`), with its model card."""
    register()
    model = AutoModelForImageTextToText.from_pretrained(str(name_or_path)).eval()
    export_onnx(model, AutoProcessor.from_pretrained(str(name_or_path)), output_dir)
    card = Path(name_or_path) / "README.md"
    if card.is_file():
        shutil.copy(card, Path(output_dir) / "README.md")
    return Path(output_dir)
