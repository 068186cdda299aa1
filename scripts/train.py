"""Train the im2latex model with Accelerate.

    accelerate launch scripts/train.py --config configs/train.yaml      # or: python scripts/train.py ...
    python scripts/train.py --config configs/train.yaml --resume        # go on from the last checkpoint
    python scripts/train.py --config configs/train_campaign_wsd.yaml --resume-from STATE --max-steps N

Checkpoints (`accelerator.save_state`) go to OUTPUT_DIR/checkpoints, the model with the best
validation BLEU-4 to OUTPUT_DIR/best (`save_pretrained`: weights, tokenizer, processor), TensorBoard
logs to OUTPUT_DIR/logs. With the warmup-stable-decay schedule, the training state at the decay's
start is also kept in OUTPUT_DIR/decay_start: a later run started from it (`--resume-from`) goes on
with the stable learning rate, the optimizer state and the step count, and decays again at its own end.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from im2latex_hf import Im2LatexImageProcessor, Im2LatexProcessor
from im2latex_hf.metrics import text_metrics
from im2latex_hf.training import (
    FormulaCollator,
    TrainConfig,
    build_model,
    build_scheduler,
    build_train_loader,
    resolve_mixed_precision,
    training_step,
)


class TrainingProgress:
    """Step count and best score, saved and restored with Accelerate's checkpoints."""

    def __init__(self):
        self.step = 0
        self.best_bleu = -1.0

    def state_dict(self) -> dict:
        return {"step": self.step, "best_bleu": self.best_bleu}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.best_bleu = state["step"], state["best_bleu"]


@torch.no_grad()
def evaluate(model, loader, processor, accelerator: Accelerator, num_beams: int) -> dict[str, float]:
    """Loss and text metrics of greedy (or beam) decoding on the evaluation loader."""
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    losses, predictions, references = [], [], []
    for batch in loader:
        losses.append(accelerator.gather_for_metrics(model(**batch).loss.reshape(1)))
        generated = unwrapped.generate(
            pixel_values=batch["pixel_values"], pixel_mask=batch["pixel_mask"], num_beams=num_beams, max_new_tokens=200
        )
        labels = batch["labels"].masked_fill(batch["labels"] == -100, processor.tokenizer.pad_token_id)
        labels = accelerator.pad_across_processes(labels, dim=1, pad_index=processor.tokenizer.pad_token_id)
        generated = accelerator.pad_across_processes(generated, dim=1, pad_index=processor.tokenizer.pad_token_id)
        predictions += processor.batch_decode(accelerator.gather_for_metrics(generated))
        references += processor.batch_decode(accelerator.gather_for_metrics(labels))
    model.train()
    return {"eval_loss": torch.cat(losses).mean().item(), **text_metrics(predictions, references)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML file of TrainConfig settings")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTPUT_DIR")
    parser.add_argument(
        "--resume-from",
        type=Path,
        default=None,
        metavar="STATE",
        help="start from a saved training state, e.g. an earlier run's OUTPUT_DIR/decay_start (--resume wins "
        "once this run has checkpoints of its own)",
    )
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    parser.add_argument("--max-steps", type=int, default=None, help="override max_steps of the config")
    args = parser.parse_args()
    config = TrainConfig.from_yaml(args.config)
    if args.max_steps is not None:
        config.max_steps = args.max_steps
    output_dir = Path(config.output_dir)

    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(config.mixed_precision),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with="tensorboard",
        project_config=ProjectConfiguration(
            project_dir=str(output_dir),
            logging_dir=str(output_dir / "logs"),
            automatic_checkpoint_naming=True,
            total_limit=2,
        ),
    )
    set_seed(config.seed)

    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer)
    processor = Im2LatexProcessor(Im2LatexImageProcessor(**config.image_processor), tokenizer)
    model = build_model(config, tokenizer)
    model.generation_config.max_new_tokens = 200
    model.generation_config.num_beams = 4

    with accelerator.main_process_first():
        train_loader = build_train_loader(config, processor)
        eval_set = config.eval_data.load() if config.eval_data else None
    if eval_set is not None:
        eval_set = eval_set.select(range(min(config.eval_samples, len(eval_set))))
    sampler = train_loader.batch_sampler
    eval_loader = None
    if eval_set is not None:
        eval_loader = torch.utils.data.DataLoader(
            eval_set, batch_size=config.batch_size, collate_fn=FormulaCollator(processor.image_processor, tokenizer)
        )

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = build_scheduler(config, optimizer)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    # max_steps and warmup_steps count optimizer steps: one schedule step per optimizer step, not one per process
    scheduler.split_batches = True
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)
    progress = TrainingProgress()
    accelerator.register_for_checkpointing(progress)

    checkpoints = output_dir / "checkpoints"
    if args.resume and checkpoints.is_dir() and any(checkpoints.iterdir()):
        accelerator.load_state()  # the latest automatically named checkpoint
        numbers = [int(folder.name.rsplit("_", 1)[-1]) for folder in checkpoints.iterdir()]
        accelerator.project_configuration.iteration = max(numbers) + 1  # numerically: checkpoint_10 after _9
        accelerator.print(f"resumed at step {progress.step}")
    elif args.resume_from is not None:
        accelerator.load_state(str(args.resume_from))
        progress.best_bleu = -1.0  # this run's best/ starts afresh
        accelerator.print(f"started from {args.resume_from} at step {progress.step}")
    accelerator.init_trackers("im2latex", config={k: str(v) for k, v in vars(config).items()})

    decay_start = None
    if config.lr_scheduler == "warmup_stable_decay":
        decay_start = config.max_steps - config.lr_scheduler_kwargs["num_decay_steps"]
    batches_per_epoch = len(train_loader)
    started = time.monotonic()
    bar = tqdm(
        total=config.max_steps,
        initial=progress.step,
        disable=not accelerator.is_local_main_process,
        mininterval=1 if sys.stderr.isatty() else 60,  # a log file gets a line a minute
    )
    model.train()
    running_loss, logged_steps, skipped_steps, out_of_time = 0.0, 0, 0, False
    while progress.step < config.max_steps:
        epoch, skip = divmod(progress.step * config.gradient_accumulation_steps, batches_per_epoch)
        sampler.set_epoch(epoch)
        loader = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
        for batch in loader:
            loss = training_step(model, batch, accelerator, optimizer, scheduler, config.max_grad_norm)
            if math.isfinite(loss):
                running_loss += loss / config.gradient_accumulation_steps
            else:
                skipped_steps += 1  # training_step skipped its update
            if not accelerator.sync_gradients:
                continue
            progress.step += 1
            logged_steps += 1
            bar.update(1)
            if progress.step % config.log_steps == 0:
                mean_loss = running_loss / max(logged_steps - skipped_steps, 1)
                accelerator.log(
                    {
                        "train_loss": mean_loss,
                        "lr": scheduler.get_last_lr()[0],
                        "epoch": epoch,
                        "skipped_steps": skipped_steps,
                    },
                    step=progress.step,
                )
                bar.set_postfix(loss=f"{mean_loss:.3f}", skipped=skipped_steps, refresh=False)  # at the bar's own pace
                running_loss, logged_steps, skipped_steps = 0.0, 0, 0
            out_of_time = args.max_minutes is not None and time.monotonic() - started > args.max_minutes * 60
            if args.max_minutes is not None and accelerator.num_processes > 1:  # all processes stop at one step
                out_of_time = bool(
                    accelerator.reduce(torch.tensor(float(out_of_time), device=accelerator.device), "max")
                )
            done = progress.step >= config.max_steps or out_of_time
            if eval_loader is not None and (progress.step % config.eval_steps == 0 or done):
                metrics = evaluate(model, eval_loader, processor, accelerator, config.eval_num_beams)
                accelerator.log(metrics, step=progress.step)
                accelerator.print(f"step {progress.step}: " + json.dumps({k: round(v, 4) for k, v in metrics.items()}))
                if metrics["bleu4"] > progress.best_bleu:
                    progress.best_bleu = metrics["bleu4"]
                    if accelerator.is_main_process:
                        accelerator.unwrap_model(model).save_pretrained(output_dir / "best")
                        processor.save_pretrained(output_dir / "best")
                        (output_dir / "best" / "training_state.json").write_text(
                            json.dumps({"step": progress.step, **metrics}, indent=2)
                        )
            if progress.step % config.save_steps == 0 or done or progress.step == decay_start:
                saved = accelerator.save_state()
                if progress.step == decay_start and accelerator.is_main_process:
                    shutil.rmtree(output_dir / "decay_start", ignore_errors=True)
                    shutil.copytree(saved, output_dir / "decay_start")
            if done:
                break
        if out_of_time:
            accelerator.print(f"stopped after {args.max_minutes} minutes at step {progress.step}; resume with --resume")
            break
    bar.close()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(output_dir / "last")
        processor.save_pretrained(output_dir / "last")
    accelerator.end_training()
    accelerator.print(f"{math.ceil(time.monotonic() - started)} s; best validation BLEU-4 {progress.best_bleu:.4f}")


if __name__ == "__main__":
    main()
