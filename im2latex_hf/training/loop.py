"""The training loop's parts: the model to train, its learning-rate schedule and one optimizer step."""

from __future__ import annotations

import torch
from transformers import get_scheduler

from ..configuration_im2latex import Im2LatexConfig
from ..modeling_im2latex import Im2LatexForConditionalGeneration
from .config import TrainConfig


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
