"""Training pieces: the YAML config, the model, data loading, size-bucketed batches, the collator and the step."""

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
from transformers import get_scheduler

from .augmentation import AugmentationConfig, FormulaAugmenter
from .configuration_im2latex import Im2LatexConfig
from .corpus import load_corpus
from .image_processing_im2latex import Im2LatexImageProcessor
from .latex import tokenize_latex
from .modeling_im2latex import Im2LatexForConditionalGeneration
from .preprocessing import InvalidImageError
from .processing_im2latex import Im2LatexProcessor


@dataclass
class DataSource:
    """Rows with `image` and `formula`: a split of a dataset saved with `save_to_disk`, a rendered
    corpus folder (`shard-*.parquet`), or another folder of parquet files (pseudo-labelled pairs).
    `start`/`end` slice it; `repeat` oversamples it."""

    path: str
    split: str = "train"
    start: int | None = None
    end: int | None = None
    repeat: int = 1

    def load(self) -> datasets.Dataset:
        if any(Path(self.path).glob("shard-*.parquet")):
            dataset = load_corpus(self.path)
        elif files := sorted(str(file) for file in Path(self.path).glob("*.parquet")):
            dataset = datasets.Dataset.from_parquet(files)
        else:
            dataset = datasets.load_from_disk(self.path)
            if isinstance(dataset, datasets.DatasetDict):
                dataset = dataset[self.split]
        indices = range(len(dataset))[self.start : self.end]
        selected = dataset.select(indices).select_columns(["image", "formula"])
        return datasets.concatenate_datasets([selected] * self.repeat) if self.repeat > 1 else selected

    @property
    def pseudo_labelled(self) -> bool:
        """Whether this is a folder of `scripts/pseudo_label.py` output (``pseudo-*.parquet``)."""
        return any(Path(self.path).glob("pseudo-*.parquet"))


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


@dataclass
class TrainConfig:
    """Everything `scripts/train.py` needs; loaded from YAML, every field has a default."""

    output_dir: str = "runs/im2latex"
    tokenizer: str = "tokenizer"
    init_from: str | None = None  # start from these weights (a model folder or Hub id) instead of random ones
    # Im2LatexConfig fields: a new model's, or overrides (dropout) of init_from's
    model: dict = field(default_factory=dict)
    image_processor: dict = field(default_factory=dict)  # Im2LatexImageProcessor arguments
    train_data: list[DataSource] = field(default_factory=list)
    eval_data: DataSource | None = None
    eval_samples: int = 300
    max_tokens: int = 150
    augment: bool | dict = True  # False, True (default augmentation) or AugmentationConfig settings
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 500
    max_steps: int = 20000
    lr_scheduler: str = "cosine"  # a transformers scheduler name (see `build_scheduler`)
    # the scheduler's own arguments, e.g. {num_decay_steps: 4000} for "warmup_stable_decay"
    lr_scheduler_kwargs: dict = field(default_factory=dict)
    max_grad_norm: float = 1.0
    channels_last: bool = False  # NHWC convolutions (faster with oneDNN on CPUs, bf16 most)
    mixed_precision: str = "auto"  # "auto": bf16 where the hardware runs it natively (see `resolve_mixed_precision`)
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

    def augmenter(self) -> FormulaAugmenter | None:
        """The training augmenter this config asks for, or None."""
        if self.augment is False:
            return None
        settings = {} if self.augment is True else self.augment
        settings = {name: tuple(value) if isinstance(value, list) else value for name, value in settings.items()}
        return FormulaAugmenter(AugmentationConfig(**settings), seed=self.seed)


def native_bf16() -> bool:
    """Whether this machine runs bf16 natively: a CUDA GPU with bf16, or a CPU with AVX512-BF16 or AMX."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_mixed_precision(setting: str) -> str:
    """Accelerate's `mixed_precision` for a config value: "auto" is "bf16" where bf16 is native, else "no"."""
    if setting == "auto":
        return "bf16" if native_bf16() else "no"
    return setting


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


def build_model(config: TrainConfig, tokenizer) -> Im2LatexForConditionalGeneration:
    """The model to train: ``config.init_from``'s weights (``config.model`` overriding its config), or a new
    model of ``config.model``'s size; in NHWC memory format if ``config.channels_last``."""
    if config.init_from:
        model = Im2LatexForConditionalGeneration.from_pretrained(config.init_from, **config.model)
        if model.config.vocab_size != len(tokenizer):
            raise ValueError(f"{config.init_from} has {model.config.vocab_size} tokens, the tokenizer {len(tokenizer)}")
    else:
        model = Im2LatexForConditionalGeneration(
            Im2LatexConfig(
                vocab_size=len(tokenizer),
                pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                decoder_start_token_id=tokenizer.bos_token_id,
                **config.model,
            )
        )
    return model.to(memory_format=torch.channels_last) if config.channels_last else model


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


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """The config's learning-rate schedule over `max_steps`, by transformers' `get_scheduler`."""
    return get_scheduler(
        config.lr_scheduler,
        optimizer,
        num_warmup_steps=config.warmup_steps,
        num_training_steps=config.max_steps,
        scheduler_specific_kwargs=config.lr_scheduler_kwargs,
    )


def training_step(model, batch: dict, accelerator, optimizer, scheduler, max_grad_norm: float) -> float:
    """One forward and backward pass (an optimizer step once gradients are accumulated); returns the loss.

    A batch whose loss is not finite leaves the BatchNorm statistics as they were, and an optimizer step whose
    gradients are not finite is skipped: one bad batch (or overflow) cannot turn the model into NaN.
    """
    buffers = [buffer.clone() for buffer in model.buffers()]  # BatchNorm statistics: a few thousand numbers
    with accelerator.accumulate(model):
        loss = model(**batch).loss
        accelerator.backward(loss)
        if not torch.isfinite(loss):
            for buffer, saved in zip(model.buffers(), buffers):
                buffer.copy_(saved)
        finite = True
        if accelerator.sync_gradients:
            finite = bool(torch.isfinite(accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)))
        if finite:
            optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return loss.item()
