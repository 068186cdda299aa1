"""Reading formula images with a trained model: batching, decoding options and per-image errors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .bundled_model import DEFAULT_MODEL
from .metrics.verification import Verification
from .metrics.verification import verify as verify_candidates
from .preprocessing import ImageLike, InvalidImageError, pad_ink_maps

if TYPE_CHECKING:
    import torch

    from .onnx.runtime import OnnxIm2Latex, OnnxProcessor


@dataclass
class Reading:
    """The LaTeX read from one image, or why the image could not be read.

    With ``verify`` or ``rerank``, ``verification`` says how well the LaTeX's render matches the image
    (`verification.Verification`: score, look, render, reason), and with ``rerank`` ``candidates``
    holds every decoded candidate with its verification, best model score first.
    """

    latex: str | None = None
    error: str | None = None
    verification: Verification | None = None
    candidates: list[tuple[str, Verification]] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        """The render-match score in [0, 1] (None when not verified)."""
        return None if self.verification is None else self.verification.score


BACKENDS = ("pytorch", "onnx", "onnx-int8")


class FormulaReader:
    """A model and its processor, ready to turn images into LaTeX (PyTorch; `OnnxFormulaReader`: ONNX Runtime)."""

    def __init__(self, model, processor, device: str | torch.device | None = None):
        import torch

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.processor = processor

    @classmethod
    def from_pretrained(
        cls, name_or_path: str = DEFAULT_MODEL, device: str | None = None, backend: str = "pytorch"
    ) -> FormulaReader:
        """Load from a local folder or a Hub repo id (the bundled model by default).

        ``backend="onnx"`` reads with ONNX Runtime on the CPU (`OnnxFormulaReader`); ``"onnx-int8"`` with the
        decoder's weights in int8 (faster; see the README's benchmark for its accuracy).
        """
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        if backend.startswith("onnx"):
            return OnnxFormulaReader.from_pretrained(name_or_path, device, int8=backend == "onnx-int8")
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from . import register

        register()
        with _model_not_found(name_or_path), _quiet_loading(Path(name_or_path).is_dir()):
            model = AutoModelForImageTextToText.from_pretrained(name_or_path)
        return cls(model, AutoProcessor.from_pretrained(name_or_path), device)

    def read(
        self,
        images: Sequence[ImageLike],
        num_beams: int = 4,
        max_new_tokens: int = 200,
        batch_size: int = 16,
        verify: bool = False,
        rerank: int | None = None,
    ) -> list[Reading]:
        """Read each image; a bad image gets an error `Reading` and does not stop the others.

        ``verify`` renders each reading and scores it against its image (`Reading.score`). ``rerank=k``
        decodes ``k`` candidates (beam search, at least ``k`` beams), scores each so, and keeps the best
        (ties go to the model's order); it implies ``verify``.
        """
        if rerank is not None and rerank < 1:
            raise ValueError(f"rerank must be a positive number of candidates, got {rerank}")
        per_image = rerank or 1
        readings: list[Reading] = [Reading() for _ in images]
        ink_maps = {}
        for i, image in enumerate(images):
            try:
                ink_maps[i] = self.processor.image_processor.ink_map(image)
            except InvalidImageError as error:
                readings[i].error = str(error)
        candidates: dict[int, list[str]] = {}
        # Similar sizes together: less padding per batch.
        order = sorted(ink_maps, key=lambda i: ink_maps[i].shape[::-1])
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            texts = self._decode([ink_maps[i] for i in indices], max(num_beams, per_image), per_image, max_new_tokens)
            for position, i in enumerate(indices):
                candidates[i] = texts[position * per_image : (position + 1) * per_image]
        if verify or rerank:
            indices = sorted(candidates)
            scored = verify_candidates([images[i] for i in indices], [candidates[i] for i in indices])
            for i, verifications in zip(indices, scored):
                best = max(range(per_image), key=lambda j: verifications[j].score)  # first of equals: model order
                readings[i].latex, readings[i].verification = candidates[i][best], verifications[best]
                if rerank:
                    readings[i].candidates = list(zip(candidates[i], verifications))
        else:
            for i, texts in candidates.items():
                readings[i].latex = texts[0]
        return readings

    def _decode(self, ink_maps: list[np.ndarray], num_beams: int, per_image: int, max_new_tokens: int) -> list[str]:
        """``per_image`` LaTeX candidates for each ink map, best first."""
        import torch

        inputs = self.processor.image_processor.pad(ink_maps).to(self.device)
        with torch.inference_mode():
            generated = self.model.generate(
                **inputs,
                num_beams=num_beams,
                num_return_sequences=per_image,
                max_new_tokens=max_new_tokens,
                do_sample=False,
            )
        return self.processor.batch_decode(generated)


class OnnxFormulaReader(FormulaReader):
    """`FormulaReader` over ONNX Runtime sessions (`onnx.runtime`), on the CPU; imports no torch or transformers
    unless a PyTorch model has to be exported first."""

    def __init__(self, model: OnnxIm2Latex, processor: OnnxProcessor):
        self.device = "cpu"
        self.model = model
        self.processor = processor

    @classmethod
    def from_pretrained(
        cls, name_or_path: str = DEFAULT_MODEL, device: str | None = None, int8: bool = False
    ) -> OnnxFormulaReader:
        """Load an exported folder (`im2latex export-onnx`) as it is; a PyTorch model folder or Hub repo id is
        exported at first use and the export cached (`onnx.onnx_model_folder`). ``int8``: the int8-weight decoder."""
        from .onnx import onnx_model_folder
        from .onnx.runtime import OnnxIm2Latex, OnnxProcessor

        if device not in (None, "cpu"):
            raise ValueError(f"the onnx backend runs on the CPU, not on {device!r}")
        with _model_not_found(name_or_path):
            folder = onnx_model_folder(name_or_path)
        return cls(OnnxIm2Latex(folder, int8=int8), OnnxProcessor(folder))

    def _decode(self, ink_maps: list[np.ndarray], num_beams: int, per_image: int, max_new_tokens: int) -> list[str]:
        generated = self.model.generate(
            **pad_ink_maps(ink_maps),
            num_beams=num_beams,
            num_return_sequences=per_image,
            max_new_tokens=max_new_tokens,
        )
        return self.processor.batch_decode(generated)


@contextmanager
def _model_not_found(name_or_path: str) -> Iterator[None]:
    """Says "no such model folder" (and why a Hub id failed) when ``name_or_path`` is neither a folder nor a Hub model."""
    try:
        yield
    except (OSError, ValueError) as error:
        if Path(name_or_path).exists():
            raise
        if name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1:  # a path, not a Hub id
            raise OSError("no such model folder") from error
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise OSError(f"no such model folder, and no Hub model of that name could be loaded ({reason})") from error


@contextmanager
def _quiet_loading(quiet: bool) -> Iterator[None]:
    """Without transformers' progress bars while ``quiet`` (a local folder loads in a blink; Hub downloads keep theirs)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was_enabled:
            hf_logging.enable_progress_bar()
