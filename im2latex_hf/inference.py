"""Reading formula images with a trained model: batching, decoding options and per-image errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from . import DEFAULT_MODEL
from .image_processing_im2latex import ImageLike, InvalidImageError


@dataclass
class Reading:
    """The LaTeX read from one image, or why the image could not be read."""

    latex: str | None = None
    error: str | None = None


class FormulaReader:
    """A model and its processor, ready to turn images into LaTeX."""

    def __init__(self, model, processor, device: str | torch.device | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.processor = processor

    @classmethod
    def from_pretrained(cls, name_or_path: str = DEFAULT_MODEL, device: str | None = None) -> FormulaReader:
        """Load from a local folder or a Hub repo id (the bundled model by default)."""
        return cls(
            AutoModelForImageTextToText.from_pretrained(name_or_path),
            AutoProcessor.from_pretrained(name_or_path),
            device,
        )

    @torch.inference_mode()
    def read(
        self, images: Sequence[ImageLike], num_beams: int = 4, max_new_tokens: int = 200, batch_size: int = 16
    ) -> list[Reading]:
        """Read each image; a bad image gets an error `Reading` and does not stop the others."""
        readings: list[Reading] = [Reading() for _ in images]
        ink_maps = {}
        for i, image in enumerate(images):
            try:
                ink_maps[i] = self.processor.image_processor.ink_map(image)
            except InvalidImageError as error:
                readings[i].error = str(error)
        # Similar sizes together: less padding per batch.
        order = sorted(ink_maps, key=lambda i: ink_maps[i].shape[::-1])
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            inputs = self.processor.image_processor.pad([ink_maps[i] for i in indices]).to(self.device)
            generated = self.model.generate(
                **inputs, num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False
            )
            for i, latex in zip(indices, self.processor.batch_decode(generated)):
                readings[i].latex = latex
        return readings
