"""Training pieces: the YAML config, data loading, size-bucketed batches and the collator."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
import yaml
from PIL import Image

from .corpus import load_corpus
from .image_processing_im2latex import Im2LatexImageProcessor, InvalidImageError
from .latex import tokenize_latex


@dataclass
class DataSource:
    """Rows with `image` and `formula`: a split of a dataset saved with `save_to_disk`, or a rendered
    corpus folder (`shard-*.parquet`). `start`/`end` slice it; `repeat` oversamples it."""

    path: str
    split: str = "train"
    start: int | None = None
    end: int | None = None
    repeat: int = 1

    def load(self) -> datasets.Dataset:
        if any(Path(self.path).glob("shard-*.parquet")):
            dataset = load_corpus(self.path)
        else:
            dataset = datasets.load_from_disk(self.path)
            if isinstance(dataset, datasets.DatasetDict):
                dataset = dataset[self.split]
        indices = range(len(dataset))[self.start : self.end]
        selected = dataset.select(indices).select_columns(["image", "formula"])
        return datasets.concatenate_datasets([selected] * self.repeat) if self.repeat > 1 else selected


@dataclass
class TrainConfig:
    """Everything `scripts/train.py` needs; loaded from YAML, every field has a default."""

    output_dir: str = "runs/im2latex"
    tokenizer: str = "tokenizer"
    init_from: str | None = None  # start from these weights (a model folder or Hub id) instead of random ones
    model: dict = field(default_factory=dict)  # Im2LatexConfig fields, for a new model
    image_processor: dict = field(default_factory=dict)  # Im2LatexImageProcessor arguments
    train_data: list[DataSource] = field(default_factory=list)
    eval_data: DataSource | None = None
    eval_samples: int = 300
    max_tokens: int = 150
    augment: bool = True
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 500
    max_steps: int = 20000
    lr_scheduler: str = "cosine"
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # "bf16" on GPUs
    num_workers: int = 2
    log_steps: int = 20
    eval_steps: int = 1000
    save_steps: int = 1000
    eval_num_beams: int = 1
    seed: int = 0

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        values = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
        values["train_data"] = [DataSource(**source) for source in values.get("train_data", [])]
        if values.get("eval_data"):
            values["eval_data"] = DataSource(**values["eval_data"])
        return cls(**values)


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
        self.batch_size = batch_size
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
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        rng.shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        return -(-len(self.sizes) // self.batch_size)


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
