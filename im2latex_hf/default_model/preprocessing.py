"""Formula image preprocessing in numpy and Pillow only: any image → the normalised ink map the model reads.

Steps for each image: load and convert to 8-bit grayscale (RGBA, palette, CMYK, 16-bit and float
modes handled; a dark background is inverted), stretch contrast between the background and the
darkest ink, crop to the ink, rescale when the text height is far from the training text height,
cap the size, add a margin and pad to a multiple of the trunk's stride. Values are ink = 1,
background = 0, so batch padding (zeros) looks exactly like more background.

The transformers image processor (`image_processing_im2latex`) and the ONNX Runtime backend both call
this module, which imports neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

ImageLike = Image.Image | np.ndarray | str | Path


class InvalidImageError(ValueError):
    """The input cannot be read as a formula image (unreadable, empty, blank or too large)."""


def load_image(path: str | Path) -> Image.Image:
    """Open an image file, turning every failure into an `InvalidImageError` that names the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError:
        raise InvalidImageError("no such file") from None
    except IsADirectoryError:
        raise InvalidImageError("is a directory, not an image") from None
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise InvalidImageError(f"not a readable image ({error})") from None
    except OSError as error:
        raise InvalidImageError(f"cannot read image ({error})") from None


def open_image(image: ImageLike) -> Image.Image | np.ndarray:
    """A file path opened as an image (`InvalidImageError` if it cannot be); images and arrays as they are."""
    return load_image(image) if isinstance(image, (str, Path)) else image


def to_grayscale(image: Image.Image | np.ndarray) -> np.ndarray:
    """8-bit grayscale array (dark ink on a light background) from any PIL mode or numpy array."""
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] in (1, 3, 4):
            image = image[:, :, 0] if image.shape[2] == 1 else image
        if image.ndim not in (2, 3) or image.size == 0:
            raise InvalidImageError(f"expected an (H, W) or (H, W, C) array, got shape {image.shape}")
        if image.dtype != np.uint8:
            image = _scale_to_uint8(image.astype(np.float64))
        image = Image.fromarray(image)
    if image.width == 0 or image.height == 0:
        raise InvalidImageError("image is empty (0 pixels)")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        gray = _scale_to_uint8(np.asarray(image, dtype=np.float64))
    elif image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        gray = np.asarray(Image.alpha_composite(white, rgba).convert("L"))
    else:
        gray = np.asarray(image.convert("RGB").convert("L"))
    if np.median(gray) < 128:  # light ink on a dark background
        gray = 255 - gray
    return gray


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map an integer or float array of unknown range (8/16/32-bit, 0..1 floats) onto 0..255."""
    high = float(np.nanmax(values)) if values.size else 0.0
    full_scale = 1.0 if high <= 1.0 else 255.0 if high <= 255 else 65535.0 if high <= 65535 else high
    return np.clip(np.nan_to_num(values) / full_scale * 255.0, 0, 255).astype(np.uint8)


def ink_levels(image: Image.Image | np.ndarray, min_contrast: int, crop_above: float) -> np.ndarray:
    """Ink in [0, 1] (background 0, darkest pixel 1), cropped to the pixels above ``crop_above``.

    Raises `InvalidImageError` when background and darkest pixel differ by less than ``min_contrast``.
    """
    gray = to_grayscale(image).astype(np.float32)
    background, darkest = float(np.median(gray)), float(gray.min())
    if background - darkest < min_contrast:
        raise InvalidImageError("image is blank: no ink found")
    ink = np.clip((background - gray) / (background - darkest), 0.0, 1.0)
    rows, cols = np.flatnonzero((ink > crop_above).any(axis=1)), np.flatnonzero((ink > crop_above).any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def text_height(ink: np.ndarray) -> float:
    """Median height of the glyph clusters (runs of columns holding ink): a scale estimate robust to layout."""
    columns = ink.any(axis=0)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], columns.astype(np.int8), [0]])))
    heights = []
    for start, stop in zip(edges[::2], edges[1::2]):
        rows = np.flatnonzero(ink[:, start:stop].any(axis=1))
        heights.append(rows[-1] - rows[0] + 1)
    return float(np.median(heights))


def _resize(values: np.ndarray, height: int, width: int) -> np.ndarray:
    resized = Image.fromarray(values.astype(np.float32), mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized), 0.0, 1.0)


class FormulaPreprocessor:
    r"""
    Turns formula images into ink maps and batches them as numpy `pixel_values` (batch, 1, H, W) and
    `pixel_mask` (batch, H, W).

    Args:
        target_text_height (`float`): glyph height (pixels) of the training images (see `text_height`).
        scale_tolerance (`float`): images whose text height is within this factor of the target are not rescaled.
        min_contrast (`int`): the smallest gray-level difference between background and ink; below it the
            image is treated as blank.
        margin (`int`): background pixels added around the cropped formula.
        size_multiple (`int`): height and width are padded to a multiple of this (the trunk's stride).
        max_height, max_width (`int`): larger formulas are shrunk to fit.
        max_input_pixels (`int`): inputs with more pixels are rejected before any work.
    """

    def __init__(
        self,
        target_text_height: float = 10.0,
        scale_tolerance: float = 2.0,
        min_contrast: int = 40,
        margin: int = 8,
        size_multiple: int = 16,
        max_height: int = 320,
        max_width: int = 1280,
        max_input_pixels: int = 50_000_000,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.target_text_height = target_text_height
        self.scale_tolerance = scale_tolerance
        self.min_contrast = min_contrast
        self.margin = margin
        self.size_multiple = size_multiple
        self.max_height = max_height
        self.max_width = max_width
        self.max_input_pixels = max_input_pixels

    def ink_map(self, image: ImageLike, text_scale: float | None = None) -> np.ndarray:
        """One image → float32 ink map (ink 1, background 0), cropped, scale-normalised, with margin.

        ``text_scale`` rescales the image so that its text height is ``text_scale`` × the training text height,
        whatever ``scale_tolerance`` says (to read an image at several scales); None keeps the tolerance rule.
        """
        image = open_image(image)
        height, width = (image.shape[:2]) if isinstance(image, np.ndarray) else (image.height, image.width)
        if height * width > self.max_input_pixels:
            raise InvalidImageError(f"image too large: {width}x{height} pixels (limit {self.max_input_pixels:,})")
        ink = ink_levels(image, self.min_contrast, crop_above=0.25)

        scale = self.target_text_height * (text_scale or 1.0) / text_height(ink > 0.5)
        tolerance = self.scale_tolerance if text_scale is None else 1.02
        if not 1 / tolerance <= scale <= tolerance:
            ink = _resize(ink, max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale)))
        room_h, room_w = self.max_height - 2 * self.margin, self.max_width - 2 * self.margin
        if ink.shape[0] > room_h or ink.shape[1] > room_w:
            shrink = min(room_h / ink.shape[0], room_w / ink.shape[1])
            ink = _resize(ink, max(1, int(ink.shape[0] * shrink)), max(1, int(ink.shape[1] * shrink)))

        padded_h = _round_up(ink.shape[0] + 2 * self.margin, self.size_multiple)
        padded_w = _round_up(ink.shape[1] + 2 * self.margin, self.size_multiple)
        canvas = np.zeros((padded_h, padded_w), dtype=np.float32)
        canvas[self.margin : self.margin + ink.shape[0], self.margin : self.margin + ink.shape[1]] = ink
        return canvas


def pad_ink_maps(ink_maps: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Batch ink maps from `FormulaPreprocessor.ink_map`: zero padding on the right and bottom, `pixel_mask` 1
    inside each map."""
    if len(ink_maps) == 0:
        raise ValueError("no images given")
    height, width = max(m.shape[0] for m in ink_maps), max(m.shape[1] for m in ink_maps)
    pixel_values = np.zeros((len(ink_maps), 1, height, width), dtype=np.float32)
    pixel_mask = np.zeros((len(ink_maps), height, width), dtype=np.int64)
    for i, ink in enumerate(ink_maps):
        pixel_values[i, 0, : ink.shape[0], : ink.shape[1]] = ink
        pixel_mask[i, : ink.shape[0], : ink.shape[1]] = 1
    return {"pixel_values": pixel_values, "pixel_mask": pixel_mask}


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


__all__ = [
    "FormulaPreprocessor",
    "ImageLike",
    "InvalidImageError",
    "ink_levels",
    "load_image",
    "open_image",
    "pad_ink_maps",
    "text_height",
    "to_grayscale",
]
