"""Reading formula images with a trained model: batching, decoding options and per-image errors."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from .bundled_model import DEFAULT_MODEL
from .metrics.verification import Verification
from .metrics.verification import verify as verify_candidates
from .preprocessing import ImageLike, InvalidImageError, open_image, pad_ink_maps

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
    confidence: float | None = None  # geometric mean of the reading's token probabilities, by the model
    verification: Verification | None = None
    candidates: list[tuple[str, Verification]] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        """The render-match score in [0, 1] (None when not verified)."""
        return None if self.verification is None else self.verification.score


BACKENDS = ("pytorch", "onnx", "onnx-int8")
Candidate = TypeVar("Candidate")
READING_TEXT_SCALES: tuple[float | None, ...] = (None, 0.8, 1.0, 1.25)
"""The text heights an image is read at by default (`FormulaReader.read`, ``im2latex predict``, the app): as the
image processor sets it, and 0.8, 1.0 and 1.25 times the training text height. Greedy at these four reads better
than beam 4 at one, on held-out im2latex-100k and on the users' benchmark, at about its cost (docs/evaluation.md)."""


def pool_scales(
    per_scale: Sequence[Sequence[Candidate]], text: Callable[[Candidate], str], surety: Callable[[Candidate], float]
) -> list[Candidate]:
    """One image's candidates read at several text scales (each scale's best first), pooled: the scales in order of
    their best candidate's ``surety``, highest first, and each ``text`` once, where it first comes."""
    order = sorted(range(len(per_scale)), key=lambda k: -surety(per_scale[k][0]))
    pooled: dict[str, Candidate] = {}
    for candidate in (candidate for k in order for candidate in per_scale[k]):
        pooled.setdefault(text(candidate), candidate)
    return list(pooled.values())


def parse_text_scales(value: str) -> tuple[float | None, ...]:
    """``--text-scales`` of the command line: comma-separated text heights (× the training one), ``auto`` for the
    image processor's own rule; e.g. ``auto,1.0,1.3``."""
    try:
        scales = tuple(None if part.strip() == "auto" else float(part) for part in value.split(","))
    except ValueError:
        raise ValueError(f"text scales are numbers or 'auto', comma-separated, not {value!r}") from None
    if any(scale is not None and not 0.25 <= scale <= 4 for scale in scales):
        raise ValueError(f"text scales must lie between 0.25 and 4, not {value!r}")
    return scales


def add_text_scales_argument(parser: argparse.ArgumentParser, default: tuple[float | None, ...] = (None,)) -> None:
    """``--text-scales`` (see `parse_text_scales`), for the commands that read images."""
    shown = ",".join("auto" if scale is None else f"{scale:g}" for scale in default)
    parser.add_argument(
        "--text-scales",
        type=parse_text_scales,
        default=default,
        help="read each image at these text heights (x the training one; 'auto': the image processor's rule), "
        "comma-separated, e.g. auto,0.8,1.0,1.25, and keep the most likely reading (with --verify or --rerank: "
        f"the best verified); default: {shown}",
    )


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
        num_beams: int = 1,
        max_new_tokens: int = 200,
        batch_size: int = 16,
        verify: bool = False,
        rerank: int | None = None,
        text_scales: Sequence[float | None] = READING_TEXT_SCALES,
    ) -> list[Reading]:
        """Read each image; a bad image gets an error `Reading` and does not stop the others.

        ``verify`` renders each reading and scores it against its image (`Reading.score`). ``rerank=k``
        decodes ``k`` candidates (beam search, at least ``k`` beams), scores each so, and keeps the best
        (ties go to the model's order); it implies ``verify``. ``text_scales`` reads each image at each of these
        text heights (× the training text height; None: the image processor's own rule, see
        `FormulaPreprocessor.ink_map`; default `READING_TEXT_SCALES`): the candidates of all scales are pooled, and the
        most likely one is kept, or with ``verify``/``rerank`` the one the verifier scores best.
        """
        if rerank is not None and rerank < 1:
            raise ValueError(f"rerank must be a positive number of candidates, got {rerank}")
        if not text_scales:
            raise ValueError("text_scales needs at least one scale")
        per_image = rerank or 1
        readings: list[Reading] = [Reading() for _ in images]
        ink_maps: dict[tuple[int, int], np.ndarray] = {}  # (image, scale) → ink map
        for i, image in enumerate(images):
            try:
                image = open_image(image)  # once for all scales
                maps = [self.processor.image_processor.ink_map(image, scale) for scale in text_scales]
            except InvalidImageError as error:
                readings[i].error = str(error)
                continue
            ink_maps.update(((i, k), ink) for k, ink in enumerate(maps))
        decoded: dict[tuple[int, int], list[tuple[str, float]]] = {}  # candidates with their mean log-probability
        # Similar sizes together: less padding per batch.
        order = sorted(ink_maps, key=lambda key: ink_maps[key].shape[::-1])
        for start in range(0, len(order), batch_size):
            keys = order[start : start + batch_size]
            texts, log_probs = self._decode(
                [ink_maps[key] for key in keys], max(num_beams, per_image), per_image, max_new_tokens
            )
            found = list(zip(texts, log_probs))
            for position, key in enumerate(keys):
                decoded[key] = found[position * per_image : (position + 1) * per_image]
        candidates: dict[int, list[tuple[str, float]]] = {}  # each scale's in the model's order, each text once
        for i in sorted({i for i, _ in decoded}):
            per_scale = [decoded[i, k] for k in range(len(text_scales))]
            candidates[i] = pool_scales(per_scale, text=lambda found: found[0], surety=lambda found: found[1])
        indices = sorted(candidates)
        verified = [[] for _ in indices]
        if verify or rerank:  # all images' candidates at once: they share TeX runs
            verified = verify_candidates([images[i] for i in indices], [[t for t, _ in candidates[i]] for i in indices])
        for i, verifications in zip(indices, verified):
            found, chosen = candidates[i], 0
            if verifications:
                chosen = max(range(len(found)), key=lambda j: verifications[j].score)  # first of equals: most likely
                readings[i].verification = verifications[chosen]
            if rerank:
                readings[i].candidates = [(text, v) for (text, _), v in zip(found, verifications)]
            readings[i].latex, readings[i].confidence = found[chosen][0], math.exp(found[chosen][1])
        return readings

    def _decode(
        self, ink_maps: list[np.ndarray], num_beams: int, per_image: int, max_new_tokens: int
    ) -> tuple[list[str], list[float]]:
        """``per_image`` LaTeX candidates for each ink map, best first, and each one's mean token log-probability."""
        import torch

        inputs = self.processor.image_processor.pad(ink_maps).to(self.device)
        with torch.inference_mode():
            generated = self.model.generate(
                **inputs,
                num_beams=num_beams,
                num_return_sequences=per_image,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
            steps = self.model.compute_transition_scores(  # each generated token's log-probability
                generated.sequences,
                generated.scores,
                generated.beam_indices if num_beams > 1 else None,
                normalize_logits=num_beams == 1,  # beam search's scores are log-probabilities already
            )
            tokens = generated.sequences[:, 1 : 1 + steps.shape[1]]  # after the start token
            ends = torch.isin(tokens, torch.tensor(self.model.generation_config.eos_token_id, device=tokens.device))
            valid = (ends.cumsum(1) - ends.int()) == 0  # up to the first end token, itself included
            log_probs = torch.where(valid, steps, 0.0).sum(1) / valid.sum(1)
        return self.processor.batch_decode(generated.sequences), log_probs.float().tolist()


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

    def _decode(
        self, ink_maps: list[np.ndarray], num_beams: int, per_image: int, max_new_tokens: int
    ) -> tuple[list[str], list[float]]:
        generated, token_log_probs = self.model.generate(
            **pad_ink_maps(ink_maps),
            num_beams=num_beams,
            num_return_sequences=per_image,
            max_new_tokens=max_new_tokens,
            return_token_log_probs=True,
        )
        return self.processor.batch_decode(generated), np.nanmean(token_log_probs, axis=1).tolist()


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
