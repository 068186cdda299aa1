"""Training batches: every source's rows, size-bucketed batches, and the collator that makes model inputs."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import datasets
import torch
from PIL import Image

from ..image_processing_im2latex import Im2LatexImageProcessor
from ..latex import tokenize_latex
from ..preprocessing import InvalidImageError
from ..processing_im2latex import Im2LatexProcessor
from .config import DataSource, TrainConfig


def load_train_data(sources: list[DataSource]) -> datasets.Dataset:
    """Every source, concatenated. Pseudo-labelled rows may not outnumber the others (real and rendered pairs),
    so that on average they are at most half of a batch: a guard against the model learning its own mistakes."""
    loaded = [source.load() for source in sources]
    pseudo = sum(len(rows) for source, rows in zip(sources, loaded) if source.pseudo_labelled)
    others = sum(len(rows) for rows in loaded) - pseudo
    if pseudo > others:
        raise ValueError(
            f"{pseudo} pseudo-labelled rows outnumber the {others} real and rendered ones: "
            "lower their repeat or add labelled data"
        )
    return datasets.concatenate_datasets(loaded)


def image_width(image: dict) -> int:
    """Width of an undecoded `datasets.Image` value, read from the file header only."""
    source = io.BytesIO(image["bytes"]) if image.get("bytes") else image["path"]
    with Image.open(source) as opened:
        return opened.width


def add_lengths(dataset: datasets.Dataset, max_tokens: int, num_proc: int | None = None) -> datasets.Dataset:
    """Add `width` and `num_tokens` columns (for bucketing) and drop formulas longer than `max_tokens`."""
    undecoded = dataset.cast_column("image", datasets.Image(decode=False))
    with_lengths = undecoded.map(
        lambda row: {"width": image_width(row["image"]), "num_tokens": len(tokenize_latex(row["formula"]))},
        num_proc=num_proc,
        desc="measuring images and formulas",
    )
    kept = with_lengths.filter(lambda n: 0 < n <= max_tokens, input_columns="num_tokens", num_proc=num_proc)
    return kept.cast_column("image", datasets.Image())


class BucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of similar image width and formula length, in a new random order every epoch.

    Shuffled indices are cut into pools of `pool_batches` batches; each pool is sorted by size and cut
    into batches, and the batches are shuffled, so little compute goes to padding.
    """

    def __init__(self, widths: list[int], lengths: list[int], batch_size: int, seed: int = 0, pool_batches: int = 50):
        self.sizes = list(zip(widths, lengths))
        # not `batch_size`: Accelerate would read that attribute as every batch's size and take the first shorter
        # batch for the last one, which ends an epoch on one process and hangs the others
        self.max_batch_size = batch_size
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        indices = list(range(len(self.sizes)))
        rng.shuffle(indices)
        batches = []
        for start in range(0, len(indices), self.pool):
            pool = sorted(indices[start : start + self.pool], key=lambda i: self.sizes[i])
            batches += [pool[i : i + self.max_batch_size] for i in range(0, len(pool), self.max_batch_size)]
        rng.shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        return -(-len(self.sizes) // self.max_batch_size)


class FormulaCollator:
    """Rows (`image`, `formula`) → model inputs; unreadable images are dropped from the batch."""

    def __init__(self, image_processor: Im2LatexImageProcessor, tokenizer, augment=None):
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.augment = augment

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        ink_maps, formulas = [], []
        for row in rows:
            image = self.augment(row["image"]) if self.augment else row["image"]
            try:
                ink_maps.append(self.image_processor.ink_map(image))
            except InvalidImageError:
                continue
            formulas.append(" ".join(tokenize_latex(row["formula"])))
        batch = dict(self.image_processor.pad(ink_maps))
        encodings = self.tokenizer(formulas, padding=True, return_tensors="pt")
        batch["labels"] = encodings["input_ids"].masked_fill(encodings["attention_mask"] == 0, -100)
        return batch


def build_train_loader(config: TrainConfig, processor: Im2LatexProcessor) -> torch.utils.data.DataLoader:
    """The training `DataLoader`: every source of ``config.train_data``, bucketed batches, augmentation."""
    train_set = add_lengths(load_train_data(config.train_data), config.max_tokens)
    sampler = BucketBatchSampler(train_set["width"], train_set["num_tokens"], config.batch_size, seed=config.seed)
    return torch.utils.data.DataLoader(
        train_set.select_columns(["image", "formula"]),
        batch_sampler=sampler,
        collate_fn=FormulaCollator(processor.image_processor, processor.tokenizer, config.augmenter()),
        num_workers=config.num_workers,
        persistent_workers=config.num_workers > 0,
    )
