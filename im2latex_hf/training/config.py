"""The training run's settings: `scripts/train.py`'s YAML config, its data sources and mixed precision."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
import yaml

from ..data.corpus import load_corpus
from .augmentation import AugmentationConfig, FormulaAugmenter


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
