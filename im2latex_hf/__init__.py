"""im2latex_hf: printed math formula images → LaTeX, as a Hugging Face transformers model.

Using the package's model API registers the model with the Auto classes::

    import im2latex_hf
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(im2latex_hf.DEFAULT_MODEL)
    processor = AutoProcessor.from_pretrained(im2latex_hf.DEFAULT_MODEL)

For a Hub repo id, call ``im2latex_hf.register()`` first (or pass ``trust_remote_code=True``).
``import im2latex_hf`` itself stays light (no torch, no transformers), so the CLI and the ONNX Runtime
backend start fast: the names below are loaded, and the Auto classes registered, on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEFAULT_MODEL": "bundled_model",
    "FormulaReader": "inference",
    "Im2LatexConfig": "configuration_im2latex",
    "Im2LatexForConditionalGeneration": "modeling_im2latex",
    "Im2LatexImageProcessor": "image_processing_im2latex",
    "Im2LatexProcessor": "processing_im2latex",
    "InvalidImageError": "preprocessing",
}


def register() -> None:
    """Register the im2latex config, model, image processor and processor with transformers' Auto classes."""
    importlib.import_module(".auto_registration", __name__)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name != "InvalidImageError":
        register()
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [*_EXPORTS, "register"]
