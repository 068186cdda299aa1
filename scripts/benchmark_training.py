"""Training speed: the real training loop (data loader, augmentation, forward, backward, AdamW) per setting.

    python scripts/benchmark_training.py [--config configs/train_campaign.yaml] [--steps 40] [--warmup 5]
    python scripts/benchmark_training.py --stem-pool-strides 2 1x2 1     # the finer-encoder variants instead

For each setting the model, loader and optimizer are built from the config as `scripts/train.py`
builds them, `--warmup` steps run untimed, then `--steps` are timed. One line per setting (speed and
mean loss: the same batches from the same weights, so bf16's loss can be checked against fp32's); the last
line compares the release recipe (the config as it is: `mixed_precision` "auto" is bf16 where the CPU
or GPU runs it natively, and `channels_last`) with fp32 without channels_last, the pipeline before them.
With `--stem-pool-strides`, the settings are the release recipe at each stride of the trunk stem's max-pool
(`Im2LatexConfig.stem_pool_stride`: 2 as built, 1x2 for finer rows, 1 for finer rows and columns), and the
last line gives each one's step time relative to the first. Pause any other training while it runs, or the
figures measure the load.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from itertools import islice
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from transformers import AutoTokenizer, get_scheduler

from im2latex_hf import Im2LatexImageProcessor, Im2LatexProcessor
from im2latex_hf.training import TrainConfig, build_model, build_train_loader, resolve_mixed_precision, training_step

BUILD_COMMANDS = {  # how the README's Data section builds the folders the training configs read
    "data/im2latex-100k": "python scripts/build_dataset.py --data-dir ../shared/data/im2latex-100k "
    "--output-dir data/im2latex-100k",
    "data/corpus-im2latex": "python scripts/build_corpus.py --data-dir ../shared/data --output-dir "
    "data/corpus-im2latex --recipe im2latex --generated 145000 --workers 2",
}


def measure(config: TrainConfig, steps: int, warmup: int) -> tuple[float, float]:
    """Images a second and the mean training loss over `steps` steps after `warmup` untimed ones.

    Every setting sees the same batches in the same order from the same weights, so the losses compare.
    """
    AcceleratorState._reset_state(reset_partial_state=True)  # one process, several settings: a fresh state each
    set_seed(config.seed)
    accelerator = Accelerator(mixed_precision=resolve_mixed_precision(config.mixed_precision))
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer)
    processor = Im2LatexProcessor(Im2LatexImageProcessor(**config.image_processor), tokenizer)
    model = build_model(config, tokenizer)
    loader = build_train_loader(config, processor)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_scheduler("constant", optimizer)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    model.train()
    batches = iter(loader)
    for batch in islice(batches, warmup):
        training_step(model, batch, accelerator, optimizer, scheduler, config.max_grad_norm)
    images, losses = 0, []
    start = time.perf_counter()
    for batch in islice(batches, steps):  # loading the next batch is part of the timed loop
        losses.append(training_step(model, batch, accelerator, optimizer, scheduler, config.max_grad_norm))
        images += len(batch["pixel_values"])
    return images / (time.perf_counter() - start), sum(losses) / len(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/train_campaign.yaml", help="training config (data, model)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument(
        "--stem-pool-strides", nargs="+", metavar="S", help="compare these stem max-pool strides: 2, 1x2 or 1"
    )
    args = parser.parse_args()
    if not Path(args.config).is_file():
        parser.error(f"{args.config} not found: run from the repository's root, or pass --config")
    config = TrainConfig.from_yaml(args.config)
    for path in [source.path for source in config.train_data] + [config.tokenizer]:
        if not Path(path).exists():
            first = BUILD_COMMANDS.get(Path(path).as_posix(), "see README.md, section Data")
            parser.error(f"{path} (from {args.config}) not found; build it first: {first}")

    release = resolve_mixed_precision(config.mixed_precision)
    if args.stem_pool_strides:
        settings = {
            f"stem_pool_stride {stride}": replace(
                config, model={**config.model, "stem_pool_stride": parse_stride(stride)}
            )
            for stride in args.stem_pool_strides
        }
    else:
        settings = {
            "fp32": replace(config, mixed_precision="no", channels_last=False),
            "fp32, channels_last": replace(config, mixed_precision="no", channels_last=True),
            f"release recipe ({release}, channels_last {config.channels_last})": config,
        }
    speeds = {}
    for name, setting in settings.items():
        speeds[name], loss = measure(setting, args.steps, args.warmup)
        print(
            f"{name}: {speeds[name]:.1f} img/s, mean loss {loss:.4f} "
            f"(batch {config.batch_size}, {args.steps} steps after {args.warmup})",
            flush=True,
        )
    if args.stem_pool_strides:
        first = speeds[list(settings)[0]]
        print("step time: " + ", ".join(f"{name} {first / speed:.2f}x" for name, speed in speeds.items()))
        return
    release_speed = speeds[list(settings)[-1]]
    print(f"training: {release_speed:.1f} img/s (release recipe), {speeds['fp32']:.1f} img/s (fp32, no other change)")


def parse_stride(text: str) -> int | list[int]:
    """ "2" → 2, "1x2" → [1, 2] (height, width)."""
    parts = [int(part) for part in text.split("x")]
    return parts[0] if len(parts) == 1 else parts


if __name__ == "__main__":
    main()
