"""The exported folder's graph files and tensor names, shared by the exporter and the runtime."""

ENCODER_FILE, DECODER_FILE = "encoder.onnx", "decoder.onnx"
DECODER_INT8_FILE = "decoder_int8.onnx"
"""The decoder with int8 weights (onnxruntime's dynamic quantization), for the ``onnx-int8`` backend."""
EXPORT_VERSION = 2
"""Bumped when the graphs' inputs or outputs change, so that cached exports are redone."""


def cache_names(num_layers: int, prefix: str) -> list[str]:
    """Names of the per-layer cache tensors: ``{prefix}_{key|value}_{layer}``, keys and values alternating."""
    return [f"{prefix}_{kind}_{layer}" for layer in range(num_layers) for kind in ("key", "value")]
