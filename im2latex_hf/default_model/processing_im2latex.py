"""Processor: the image processor and the LaTeX tokenizer behind one object."""

from __future__ import annotations

from transformers import ProcessorMixin
from transformers.image_processing_base import BatchFeature

from .preprocessing import ImageLike


class Im2LatexProcessor(ProcessorMixin):
    """`processor(images=..., text=...)` gives `pixel_values`, `pixel_mask` and `labels`;
    `processor.batch_decode(generated_ids)` gives LaTeX strings."""

    def __init__(self, image_processor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, tokenizer, **kwargs)

    def __call__(
        self, images: ImageLike | list[ImageLike] | None = None, text: str | list[str] | None = None, **kwargs
    ) -> BatchFeature:
        """Images → pixel values and mask; text → `labels` (padding set to -100) or `input_ids` without images."""
        if images is None and text is None:
            raise ValueError("pass images, text or both")
        inputs = self.image_processor(images) if images is not None else BatchFeature()
        if text is not None:
            encodings = self.tokenizer(text, padding=True, return_tensors="pt")
            if images is None:
                return encodings
            inputs["labels"] = encodings["input_ids"].masked_fill(encodings["attention_mask"] == 0, -100)
        return inputs

    def batch_decode(self, sequences, skip_special_tokens: bool = True, **kwargs) -> list[str]:
        return self.tokenizer.batch_decode(sequences, skip_special_tokens=skip_special_tokens, **kwargs)

    def decode(self, sequence, skip_special_tokens: bool = True, **kwargs) -> str:
        return self.tokenizer.decode(sequence, skip_special_tokens=skip_special_tokens, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return self.image_processor.model_input_names + ["labels"]


__all__ = ["Im2LatexProcessor"]
