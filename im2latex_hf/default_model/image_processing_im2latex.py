"""Image processor: any formula image → a normalised ink map the model reads (`pixel_values`, `pixel_mask`).

The work is done by `preprocessing.FormulaPreprocessor` (numpy and Pillow only, shared with the ONNX
Runtime backend); this class gives it the transformers image-processor interface: saving, loading,
Auto classes and torch tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_base import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor

from .preprocessing import FormulaPreprocessor, ImageLike, InvalidImageError, pad_ink_maps


class Im2LatexImageProcessor(FormulaPreprocessor, BaseImageProcessor):
    __doc__ = FormulaPreprocessor.__doc__

    model_input_names = ["pixel_values", "pixel_mask"]

    def __call__(
        self, images: ImageLike | Sequence[ImageLike], return_tensors: str | None = "pt", **kwargs
    ) -> BatchFeature:
        return self.preprocess(images, return_tensors=return_tensors)

    def preprocess(self, images: ImageLike | Sequence[ImageLike], return_tensors: str | None = "pt") -> BatchFeature:
        """Process one image or a list; images are padded (right/bottom) to the largest in the batch."""
        if isinstance(images, (Image.Image, np.ndarray, str, Path)):
            images = [images]
        return self.pad([self.ink_map(image) for image in images], return_tensors=return_tensors)

    def pad(self, ink_maps: Sequence[np.ndarray], return_tensors: str | None = "pt") -> BatchFeature:
        """Batch ink maps from `ink_map` (see `preprocessing.pad_ink_maps`), as torch tensors by default."""
        data = pad_ink_maps(ink_maps)
        if return_tensors == "pt":
            data = {key: torch.from_numpy(value) for key, value in data.items()}
        return BatchFeature(data=data)


__all__ = ["Im2LatexImageProcessor", "InvalidImageError"]
