"""Where the model shipped inside the package lives (weights, tokenizer, processor, model card)."""

from pathlib import Path

DEFAULT_MODEL = str(Path(__file__).resolve().parent / "default_model")
"""Path of the bundled model folder."""
