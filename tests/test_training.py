"""scripts/train.py end to end on a tiny rendered dataset: steps, evaluation, best model, checkpoints, resume."""

from __future__ import annotations

import json
import subprocess
import sys

import datasets
import yaml
from transformers import AutoModelForImageTextToText, AutoProcessor

from im2latex_hf.rendering import render_formulas
from im2latex_hf.tokenization_im2latex import train_latex_tokenizer
from im2latex_hf.training import BucketBatchSampler

from .conftest import REPO_ROOT

FORMULAS = [r"a + b", r"x ^ { 2 }", r"\frac { 1 } { n }", r"\sqrt { y }", r"\alpha \beta", r"f ( x ) = 0"]


def run_train(config_path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO_ROOT / "scripts" / "train.py"), "--config", str(config_path), *extra]
    result = subprocess.run(command, capture_output=True, text=True, cwd=config_path.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_train_evaluate_checkpoint_and_resume(tmp_path):
    images = [result.image for result in render_formulas(FORMULAS, dpi=100)]
    dataset = datasets.Dataset.from_dict({"image": images, "formula": FORMULAS}).cast_column("image", datasets.Image())
    datasets.DatasetDict({"train": dataset, "validation": dataset}).save_to_disk(tmp_path / "data")
    train_latex_tokenizer(FORMULAS).save_pretrained(tmp_path / "tokenizer")
    config = {
        "output_dir": "run",
        "tokenizer": "tokenizer",
        "model": {"d_model": 32, "decoder_layers": 1, "decoder_attention_heads": 2, "decoder_ffn_dim": 64},
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
