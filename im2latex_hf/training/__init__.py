"""Training: the run's config (`config`), its batches (`data`), the loop's parts (`loop`) and augmentation."""

from .config import DataSource, TrainConfig, native_bf16, resolve_mixed_precision
from .data import BucketBatchSampler, FormulaCollator, add_lengths, build_train_loader, image_width, load_train_data
from .loop import build_model, build_scheduler, training_step

__all__ = [
    "BucketBatchSampler",
    "DataSource",
    "FormulaCollator",
    "TrainConfig",
    "add_lengths",
    "build_model",
    "build_scheduler",
    "build_train_loader",
    "image_width",
    "load_train_data",
    "native_bf16",
    "resolve_mixed_precision",
    "training_step",
]
