"""scripts/train.py end to end on a tiny rendered dataset: steps, evaluation, best model, checkpoints, resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import datasets
import pytest
import torch
import yaml
from accelerate import Accelerator
from transformers import AutoModelForImageTextToText, AutoProcessor

from im2latex_hf import Im2LatexConfig, Im2LatexForConditionalGeneration
from im2latex_hf.rendering import render_formulas
from im2latex_hf.tokenization_im2latex import train_latex_tokenizer
from im2latex_hf.training import (
    BucketBatchSampler,
    DataSource,
    TrainConfig,
    build_scheduler,
    load_train_data,
    resolve_mixed_precision,
    training_step,
)
from im2latex_hf.training.augmentation import AugmentationConfig

from .conftest import REPO_ROOT

TINY_MODEL = {"d_model": 32, "decoder_layers": 1, "decoder_attention_heads": 2, "decoder_ffn_dim": 64}
FORMULAS = [r"a + b", r"x ^ { 2 }", r"\frac { 1 } { n }", r"\sqrt { y }", r"\alpha \beta", r"f ( x ) = 0"]


def run_train(config_path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO_ROOT / "scripts" / "train.py"), "--config", str(config_path), *extra]
    result = subprocess.run(command, capture_output=True, text=True, cwd=config_path.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def save_rendered_dataset(tmp_path, formulas: list[str], splits: tuple[str, ...]) -> list:
    """`formulas` rendered by TeX as every split of `tmp_path/data`, and a tokenizer in `tmp_path/tokenizer`;
    returns the images."""
    images = [result.image for result in render_formulas(formulas, dpi=100)]
    dataset = datasets.Dataset.from_dict({"image": images, "formula": formulas}).cast_column("image", datasets.Image())
    datasets.DatasetDict({split: dataset for split in splits}).save_to_disk(tmp_path / "data")
    train_latex_tokenizer(FORMULAS).save_pretrained(tmp_path / "tokenizer")
    return images


def test_train_evaluate_checkpoint_and_resume(tmp_path):
    images = save_rendered_dataset(tmp_path, FORMULAS, ("train", "validation"))
    config = {
        "output_dir": "run",
        "tokenizer": "tokenizer",
        "model": TINY_MODEL,
        "train_data": [{"path": "data", "split": "train", "repeat": 2}],
        "eval_data": {"path": "data", "split": "validation"},
        "batch_size": 4,
        "warmup_steps": 1,
        "max_steps": 4,
        "num_workers": 0,
        "log_steps": 1,
        "eval_steps": 2,
        "save_steps": 2,
    }
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(config))

    first = run_train(config_path)
    run = tmp_path / "run"
    assert "step 2:" in first.stdout and "step 4:" in first.stdout
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]
    state = json.loads((run / "best" / "training_state.json").read_text())
    assert {"step", "bleu4", "exact_match", "edit_accuracy", "eval_loss"} <= set(state)
    assert list((run / "logs").rglob("events.out.tfevents.*")), "no TensorBoard log"
    model = AutoModelForImageTextToText.from_pretrained(run / "best")
    processor = AutoProcessor.from_pretrained(run / "best")
    generated = model.generate(**processor(images=images[:2]), max_new_tokens=5)
    assert len(processor.batch_decode(generated)) == 2

    config["max_steps"] = 6
    config_path.write_text(yaml.safe_dump(config))
    resumed = run_train(config_path, "--resume")
    assert "resumed at step 4" in resumed.stdout
    assert "step 6:" in resumed.stdout and "step 2:" not in resumed.stdout
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint_1", "checkpoint_2"]

    # a new run that starts from the trained weights (e.g. the bundled model) instead of random ones
    config.update(output_dir="finetune", init_from="run/best", max_steps=2, model={})
    config_path.write_text(yaml.safe_dump(config))
    run_train(config_path)
    finetuned = AutoModelForImageTextToText.from_pretrained(tmp_path / "finetune" / "best")
    assert finetuned.config.d_model == 32  # the initial model's size, not the default config's


def test_resume_after_ten_checkpoints_numbers_the_next_one_after_the_highest(tmp_path):
    """checkpoint_10 sorts before checkpoint_9 as text; resuming must still save checkpoint_11."""
    save_rendered_dataset(tmp_path, FORMULAS[:2], ("train",))
    config = {
        "output_dir": "run",
        "model": TINY_MODEL,
        "train_data": [{"path": "data", "split": "train"}],
        "batch_size": 2,
        "max_steps": 11,
        "num_workers": 0,
        "save_steps": 1,
    }
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(config))
    run_train(config_path)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["checkpoint_10", "checkpoint_9"]
    config["max_steps"] = 12
    config_path.write_text(yaml.safe_dump(config))
    assert "resumed at step 11" in run_train(config_path, "--resume").stdout
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["checkpoint_10", "checkpoint_11"]


def test_a_run_started_from_the_decay_start_goes_on_at_the_stable_learning_rate(tmp_path):
    """warmup-stable-decay keeps the state at the decay's start; a later run started from it (--resume-from)
    has its step count and trains on at the stable lr until its own decay."""
    save_rendered_dataset(tmp_path, FORMULAS[:2], ("train", "validation"))
    config = {
        "output_dir": "session1",
        "model": TINY_MODEL,
        "train_data": [{"path": "data", "split": "train"}],
        "eval_data": {"path": "data", "split": "validation"},
        "batch_size": 2,
        "learning_rate": 1e-3,
        "lr_scheduler": "warmup_stable_decay",
        "lr_scheduler_kwargs": {"num_decay_steps": 2, "decay_type": "linear"},
        "warmup_steps": 1,
        "max_steps": 6,
        "num_workers": 0,
        "eval_steps": 100,
        "save_steps": 100,
    }
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(config))
    run_train(config_path)
    decay_start = tmp_path / "session1" / "decay_start"
    assert torch.load(decay_start / "custom_checkpoint_0.pkl", weights_only=False)["step"] == 4

    config.update(output_dir="session2", max_steps=10, save_steps=2)
    config_path.write_text(yaml.safe_dump(config))
    second = run_train(config_path, "--resume-from", str(decay_start))
    assert f"started from {decay_start} at step 4" in second.stdout
    checkpoints = tmp_path / "session2" / "checkpoints"
    scheduler_at = {  # step -> learning rate, from the second run's checkpoints (steps 6, 8, 10; the last two kept)
        torch.load(folder / "custom_checkpoint_0.pkl", weights_only=False)["step"]: torch.load(
            folder / "scheduler.bin", weights_only=False
        )["_last_lr"][0]
        for folder in checkpoints.iterdir()
    }
    assert scheduler_at[8] == pytest.approx(1e-3)  # still stable: session 1 had decayed to 0 by step 6
    assert scheduler_at[10] == pytest.approx(0.0)
    assert (tmp_path / "session2" / "decay_start").is_dir()
    assert (tmp_path / "session2" / "best" / "model.safetensors").is_file()  # a best of its own


def test_pseudo_labelled_rows_may_not_outnumber_the_labelled_ones(tmp_path):
    images = [result.image for result in render_formulas(FORMULAS[:3], dpi=100)]
    rows = datasets.Dataset.from_dict({"image": images, "formula": FORMULAS[:3]}).cast_column("image", datasets.Image())
    for folder, name in (("pseudo", "pseudo-00000.parquet"), ("labelled", "part-0.parquet")):
        (tmp_path / folder).mkdir()
        rows.to_parquet(str(tmp_path / folder / name))
    pseudo, labelled = DataSource(str(tmp_path / "pseudo")), DataSource(str(tmp_path / "labelled"))
    assert pseudo.pseudo_labelled and not labelled.pseudo_labelled

    assert len(load_train_data([pseudo, labelled])) == 6  # as many: allowed
    with pytest.raises(ValueError, match="6 pseudo-labelled rows outnumber the 3 real and rendered ones"):
        load_train_data([DataSource(str(tmp_path / "pseudo"), repeat=2), labelled])


def test_bucket_sampler_groups_similar_sizes_and_covers_every_row():
    widths = [10 * (i % 50) for i in range(1000)]
    lengths = [i % 7 for i in range(1000)]
    sampler = BucketBatchSampler(widths, lengths, batch_size=8, seed=1, pool_batches=10)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert len(batches) == len(sampler)
    spread = sum(max(widths[i] for i in b) - min(widths[i] for i in b) for b in batches) / len(batches)
    assert spread < 100  # random batches of 8 would spread over ~380
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_augment_setting_builds_the_configured_augmenter(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("augment: {blur_p: 0.0, pad_range: [2, 4]}\n")
    augmenter = TrainConfig.from_yaml(path).augmenter()
    assert augmenter.config.blur_p == 0.0 and augmenter.config.pad_range == (2, 4)
    assert augmenter.config.jpeg_p == AugmentationConfig().jpeg_p  # the rest keep their defaults
    path.write_text("augment: false\n")
    assert TrainConfig.from_yaml(path).augmenter() is None
    path.write_text("augment: {sparkle_p: 0.5}\n")
    with pytest.raises(TypeError, match="sparkle_p"):
        TrainConfig.from_yaml(path).augmenter()


def test_warmup_stable_decay_schedule_from_yaml_holds_the_lr_then_decays_it_to_zero(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(
        "learning_rate: 0.001\nwarmup_steps: 10\nmax_steps: 100\nlr_scheduler: warmup_stable_decay\n"
        "lr_scheduler_kwargs: {num_decay_steps: 40, decay_type: linear}\n"
    )
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = build_scheduler(TrainConfig.from_yaml(path), optimizer)
    rates = []
    for _ in range(100):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[0] == 0 and rates[5] == pytest.approx(5e-4)  # warmup
    assert rates[10:60] == [pytest.approx(1e-3)] * 50  # stable
    assert rates[80] == pytest.approx(5e-4) and rates[99] < 5e-5  # linear decay over the last 40 steps


def test_bf16_training_autocasts_the_model_and_keeps_fp32_weights():
    """mixed_precision bf16 (what "auto" picks on a CPU with native bf16) runs the layers in bf16."""
    assert resolve_mixed_precision("no") == "no" and resolve_mixed_precision("bf16") == "bf16"
    assert resolve_mixed_precision("auto") in ("bf16", "no")
    model = Im2LatexForConditionalGeneration(
        Im2LatexConfig(vocab_size=20, d_model=32, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64)
    )
    accelerator = Accelerator(mixed_precision="bf16", cpu=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    output_dtypes = []
    accelerator.unwrap_model(model).lm_head.register_forward_hook(lambda m, i, o: output_dtypes.append(o.dtype))
    batch = {
        "pixel_values": torch.rand(2, 1, 32, 64),
        "pixel_mask": torch.ones(2, 32, 64, dtype=torch.long),
        "labels": torch.randint(3, 20, (2, 6)),
    }
    losses = [training_step(model, batch, accelerator, optimizer, scheduler, max_grad_norm=1.0) for _ in range(8)]
    assert output_dtypes[0] == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert losses[-1] < losses[0]


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
def test_a_batch_with_non_finite_gradients_is_skipped_and_training_goes_on():
    """One bad batch (NaN pixels: NaN loss and gradients) leaves weights and BatchNorm statistics as they were;
    good batches still train."""
    model = Im2LatexForConditionalGeneration(
        Im2LatexConfig(vocab_size=20, d_model=32, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64)
    )
    accelerator = Accelerator(cpu=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    batch = {
        "pixel_values": torch.rand(2, 1, 32, 64),
        "pixel_mask": torch.ones(2, 32, 64, dtype=torch.long),
        "labels": torch.randint(3, 20, (2, 6)),
    }
    bad = {**batch, "pixel_values": torch.full((2, 1, 32, 64), float("nan"))}
    before = {name: p.detach().clone() for name, p in [*model.named_parameters(), *model.named_buffers()]}
    assert math.isnan(training_step(model, bad, accelerator, optimizer, scheduler, max_grad_norm=1.0))
    assert all(torch.equal(p, before[name]) for name, p in [*model.named_parameters(), *model.named_buffers()])
    losses = [training_step(model, batch, accelerator, optimizer, scheduler, max_grad_norm=1.0) for _ in range(8)]
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())
