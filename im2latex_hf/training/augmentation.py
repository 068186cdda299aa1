"""Training augmentation of formula images (PIL "L", black ink on white), PIL and numpy only.

Steps, each applied with its own probability: scale, rotation and shear (one resampling), white
margins around the ink (padding and position jitter), ink/paper tint and contrast, Gaussian blur,
Gaussian noise, JPEG artefacts.

    augmenter = FormulaAugmenter(seed=0)
    train = dataset["train"].with_transform(augmenter.augment_batch)
"""

from __future__ import annotations

import io
import math
import os
import sys
from dataclasses import dataclass, fields

import numpy as np
from PIL import Image, ImageFilter

_INK_THRESHOLD = 245  # pixels darker than this count as ink when finding the formula's bounding box


@dataclass(frozen=True)
class AugmentationConfig:
    """Probability (``*_p``) and strength of each augmentation; defaults keep formulas legible."""

    scale_p: float = 0.5
    scale_range: tuple[float, float] = (0.8, 1.25)  # size factor
    rotate_p: float = 0.3
    max_rotation: float = 1.5  # degrees, either way
    shear_p: float = 0.3
    max_shear: float = 0.15  # horizontal shear x += shear * y, either way
    pad_p: float = 0.5
    pad_range: tuple[int, int] = (1, 24)  # white margin drawn per side around the ink, pixels
    tint_p: float = 0.5
    ink_range: tuple[int, int] = (0, 60)  # grey level black ink becomes
    paper_range: tuple[int, int] = (195, 255)  # grey level white paper becomes
    blur_p: float = 0.25
    blur_radius: tuple[float, float] = (0.3, 0.8)  # pixels
    noise_p: float = 0.3
    noise_std: tuple[float, float] = (2.0, 12.0)  # grey levels
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 85)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_p") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be in [0, 1], got {value}")
            if isinstance(value, tuple) and not (len(value) == 2 and value[0] <= value[1]):
                raise ValueError(f"{f.name} must be a (low, high) pair with low <= high, got {value}")

    @classmethod
    def disabled(cls) -> AugmentationConfig:
        """A config that applies nothing (every probability 0)."""
        return cls(**{f.name: 0.0 for f in fields(cls) if f.name.endswith("_p")})


class FormulaAugmenter:
    """Random augmentation of formula images; ``seed`` makes the sequence of outputs reproducible.

    A copy in another process (a ``DataLoader`` worker) reseeds itself from ``seed`` and the worker's
    seed, so workers do not repeat each other's augmentations.
    """

    def __init__(self, config: AugmentationConfig = AugmentationConfig(), seed: int | None = None) -> None:
        self.config = config
        self._seed = seed if seed is not None else np.random.SeedSequence().entropy
        self._rng = np.random.default_rng(self._seed)
        self._pid = os.getpid()

    def __call__(self, image: Image.Image) -> Image.Image:
        """Return an augmented "L" copy of ``image`` (converted to "L" first if needed)."""
        rng = self._process_rng()
        cfg = self.config
        image = image.convert("L")  # a copy, even when already "L"
        if rng.random() < cfg.scale_p:
            image = _scale(image, rng.uniform(*cfg.scale_range))
        rotation = rng.uniform(-cfg.max_rotation, cfg.max_rotation) if rng.random() < cfg.rotate_p else 0.0
        shear = rng.uniform(-cfg.max_shear, cfg.max_shear) if rng.random() < cfg.shear_p else 0.0
        if rotation or shear:
            image = _rotate_and_shear(image, rotation, shear)
        if rng.random() < cfg.pad_p:
            lo, hi = cfg.pad_range
            image = _repad(image, *(int(m) for m in rng.integers(lo, hi, size=4, endpoint=True)))
        if rng.random() < cfg.tint_p:
            image = _tint(
                image,
                int(rng.integers(*cfg.ink_range, endpoint=True)),
                int(rng.integers(*cfg.paper_range, endpoint=True)),
            )
        if rng.random() < cfg.blur_p:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(*cfg.blur_radius)))
        if rng.random() < cfg.noise_p:
            noisy = np.asarray(image, dtype=np.float32) + rng.normal(0.0, rng.uniform(*cfg.noise_std), image.size[::-1])
            image = Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))
        if rng.random() < cfg.jpeg_p:
            image = _jpeg(image, int(rng.integers(*cfg.jpeg_quality, endpoint=True)))
        return image

    def augment_batch(self, batch: dict) -> dict:
        """Batch transform for ``Dataset.set_transform``/``with_transform``: augments ``batch["image"]``."""
        return {**batch, "image": [self(image) for image in batch["image"]]}

    def _process_rng(self) -> np.random.Generator:
        pid = os.getpid()
        if pid != self._pid:  # a copy in a new process must not replay its parent's random stream
            self._pid = pid
            self._rng = np.random.default_rng([self._seed, _worker_seed()])
        return self._rng


def _worker_seed() -> int:
    """The torch ``DataLoader`` worker's seed when in one (reproducible under ``torch.manual_seed``), else the pid."""
    torch = sys.modules.get("torch")  # only if already imported: torch is not a dependency of this module
    info = torch.utils.data.get_worker_info() if torch is not None else None
    return info.seed if info is not None else os.getpid()


def _scale(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _rotate_and_shear(image: Image.Image, degrees: float, shear: float) -> Image.Image:
    """Rotate and shear in one resampling; the canvas grows to keep every corner, filled white."""
    theta = math.radians(degrees)
    forward = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]]) @ np.array(
        [[1.0, shear], [0.0, 1.0]]
    )
    corners = forward @ np.array([[0, image.width, 0, image.width], [0, 0, image.height, image.height]])
    low, high = corners.min(axis=1), corners.max(axis=1)
    size = tuple(int(math.ceil(v)) for v in high - low)
    inverse = np.linalg.inv(forward)
    offset = inverse @ low  # output pixel (x, y) samples input inverse @ ((x, y) + low)
    data = (*inverse[0], offset[0], *inverse[1], offset[1])
    return image.transform(size, Image.Transform.AFFINE, data, Image.Resampling.BICUBIC, fillcolor=255)


def _repad(image: Image.Image, left: int, top: int, right: int, bottom: int) -> Image.Image:
    """Crop to the ink and put the given white margins around it (a blank image is returned as is)."""
    box = image.point(lambda v: 255 if v < _INK_THRESHOLD else 0).getbbox()
    if box is None:
        return image
    ink = image.crop(box)
    canvas = Image.new("L", (ink.width + left + right, ink.height + top + bottom), 255)
    canvas.paste(ink, (left, top))
    return canvas


def _tint(image: Image.Image, ink: int, paper: int) -> Image.Image:
    """Map black to ``ink`` and white to ``paper`` linearly (lower contrast, grey background)."""
    return image.point([round(ink + (paper - ink) * v / 255) for v in range(256)])


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("L")
