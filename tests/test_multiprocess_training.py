"""scripts/train.py on two CPU processes (Accelerate, gloo): sharded batches, gathered evaluation, checkpoints that
resume on two processes and on one, the best model saved once.

What each process did is recorded by a `sitecustomize` module put on the processes' `PYTHONPATH`: it wraps the
training collator (the rows of each batch), `text_metrics` (the rows each evaluation gathered) and `save_pretrained`
(who saved what), so `scripts/train.py` runs unchanged.

Two CPU processes: Accelerate 1.16's `accelerate launch --cpu --num_processes 2` starts one process (without
`mpirun`, its CPU launcher is the single-process one). `--multi_gpu` is the launcher that starts the processes
(torchrun's); `ACCELERATE_USE_CPU=true` keeps them on the CPU, where Accelerate joins them with gloo.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pytest
import torch
import yaml

from im2latex_hf.rendering import render_formulas
from im2latex_hf.tokenization_im2latex import train_latex_tokenizer

from .conftest import REPO_ROOT

# 10 rows in batches of 3 (size-bucketed): 4 batches an epoch, the short one (1 row) where the seed puts it; with
# the default seed 0 it is the third batch of epoch 0 and the second of epochs 1 and 2 (see `check_run`)
TRAIN_FORMULAS = [
    r"a + b",
    r"x ^ { 2 }",
    r"\frac { 1 } { n }",
    r"\sqrt { y }",
    r"\alpha \beta",
    r"f ( x ) = 0",
    r"a - b",
    r"y _ { 1 }",
    r"\gamma",
    r"n !",
]
BATCHES_PER_EPOCH = 4
TIMEOUT = 300  # seconds a run may take (each takes about 15 on an idle 2-core machine)
# 3 batches, so one process gets a padded one; the first batch's labels are shorter than the second's
EVAL_FORMULAS = [r"b + a", r"\beta", r"m !", r"n ^ { 2 }", r"\sqrt { x }", r"x _ { 2 }", r"b - a"]

RECORDER = """
import json
import os
import sys

if sys.argv and sys.argv[0].endswith("train.py"):
    import im2latex_hf.metrics
    import im2latex_hf.training
    from im2latex_hf.modeling_im2latex import Im2LatexForConditionalGeneration

    _log = open(os.path.join(os.environ["IM2LATEX_TEST_RECORD"], f"{os.getpid()}.jsonl"), "a")

    def _record(**event):
        _log.write(json.dumps({"rank": int(os.environ.get("RANK", 0)), **event}) + "\\n")
        _log.flush()

    _collate = im2latex_hf.training.FormulaCollator.__call__

    def _recorded_collate(self, rows):
        _record(event="batch", formulas=[row["formula"] for row in rows])
        return _collate(self, rows)

    _text_metrics = im2latex_hf.metrics.text_metrics

    def _recorded_text_metrics(predictions, references):
        metrics = _text_metrics(predictions, references)
        _record(event="eval", predictions=len(predictions), references=list(references), bleu4=metrics["bleu4"])
        return metrics

    _save_pretrained = Im2LatexForConditionalGeneration.save_pretrained

    def _recorded_save_pretrained(self, path, *args, **kwargs):
        _record(event="save", folder=os.path.basename(os.path.normpath(str(path))))
        return _save_pretrained(self, path, *args, **kwargs)

    im2latex_hf.training.FormulaCollator.__call__ = _recorded_collate
    im2latex_hf.metrics.text_metrics = _recorded_text_metrics
    Im2LatexForConditionalGeneration.save_pretrained = _recorded_save_pretrained
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(launcher: subprocess.Popen, workers: list[int]) -> None:
    """End a launch that hangs: SIGTERM to the launcher, which ends its workers; else SIGKILL to each of them
    (torchrun's workers run in sessions of their own)."""
    launcher.terminate()
    try:
        launcher.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    for pid in workers:
        try:
            if "train.py" in Path(f"/proc/{pid}/cmdline").read_text():  # still that worker, not a reused pid
                os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass


def train(tmp_path: Path, run: str, num_processes: int, *extra: str) -> tuple[str, list[dict]]:
    """`scripts/train.py --config train.yaml` on `num_processes` CPU processes; its stdout and recorded events."""
    record = tmp_path / "record" / run
    record.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "IM2LATEX_TEST_RECORD": str(record),
        "ACCELERATE_USE_CPU": "true",
        "OMP_NUM_THREADS": "1",
    }
    script = [str(REPO_ROOT / "scripts" / "train.py"), "--config", "train.yaml", *extra]
    if num_processes == 1:
        command = [sys.executable, *script]
    else:
        command = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), *script,
        ]  # fmt: skip
    with open(record / "stdout", "w") as stdout, open(record / "stderr", "w") as stderr:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            stop(process, workers=[int(file.stem) for file in record.glob("*.jsonl")])
            pytest.fail(f"{run}: no end after {TIMEOUT} s\n{(record / 'stderr').read_text()[-3000:]}")
    stdout, stderr = (record / "stdout").read_text(), (record / "stderr").read_text()
    assert process.returncode == 0, stdout[-2000:] + stderr[-4000:]
    events = [json.loads(line) for file in sorted(record.glob("*.jsonl")) for line in file.read_text().splitlines()]
    assert {event["rank"] for event in events} == set(range(num_processes)), "not as many processes as asked"
    return stdout, events


def batches(events: list[dict], rank: int) -> list[list[str]]:
    """The training batches of one process, in order."""
    return [
        e["formulas"]
        for e in events
        if e["event"] == "batch" and e["rank"] == rank and e["formulas"][0] in TRAIN_FORMULAS
    ]


def check_run(events: list[dict], num_processes: int, steps: int, best: float = -1.0) -> float:
    """Each epoch's rows are split between the processes, none twice; every evaluation gathers each row once;
    the first process alone saves best/, once for each BLEU-4 better than `best` (the checkpoint's);
    returns the best BLEU-4."""
    per_process = [batches(events, rank) for rank in range(num_processes)]
    assert all(len(seen) == steps for seen in per_process)
    batches_per_epoch = BATCHES_PER_EPOCH // num_processes
    for start in range(0, steps, batches_per_epoch):
        rows = [row for seen in per_process for batch in seen[start : start + batches_per_epoch] for row in batch]
        assert sorted(rows) == sorted(TRAIN_FORMULAS), f"steps {start}+: {rows}"

    evaluations = [e for e in events if e["event"] == "eval"]
    assert evaluations and len(evaluations) % num_processes == 0
    for evaluation in evaluations:
        assert evaluation["predictions"] == len(EVAL_FORMULAS)
        assert sorted(evaluation["references"]) == sorted(EVAL_FORMULAS)
    improvements = 0
    for evaluation in (e for e in evaluations if e["rank"] == 0):
        if evaluation["bleu4"] > best:
            best, improvements = evaluation["bleu4"], improvements + 1
    saves = [e for e in events if e["event"] == "save" and e["folder"] == "best"]
    assert len(saves) == improvements and all(e["rank"] == 0 for e in saves)
    assert [e["rank"] for e in events if e["event"] == "save" and e["folder"] == "last"] == [0]
    return best


def assert_schedule_follows_the_steps(checkpoint: Path) -> None:
    """The learning-rate schedule has taken one step per optimizer step (max_steps and warmup_steps count those),
    not one per process and step (Accelerate's default without split_batches)."""
    step = torch.load(checkpoint / "custom_checkpoint_0.pkl", weights_only=False)["step"]
    assert torch.load(checkpoint / "scheduler.bin", weights_only=False)["last_epoch"] == step


def test_two_processes_train_evaluate_checkpoint_and_resume_on_two_and_on_one(tmp_path):
    images = [result.image for result in render_formulas(TRAIN_FORMULAS + EVAL_FORMULAS, dpi=100)]
    rows = {"image": images, "formula": TRAIN_FORMULAS + EVAL_FORMULAS}
    dataset = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())
    splits = {"train": range(len(TRAIN_FORMULAS)), "validation": range(len(TRAIN_FORMULAS), len(images))}
    datasets.DatasetDict({name: dataset.select(indices) for name, indices in splits.items()}).save_to_disk(
        tmp_path / "data"
    )
    train_latex_tokenizer(TRAIN_FORMULAS + EVAL_FORMULAS).save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(textwrap.dedent(RECORDER))
    config = {
        "output_dir": "run",
        "tokenizer": "tokenizer",
        "model": {"d_model": 32, "decoder_layers": 1, "decoder_attention_heads": 2, "decoder_ffn_dim": 64},
        "train_data": [{"path": "data", "split": "train"}],
        "eval_data": {"path": "data", "split": "validation"},
        "augment": False,
        "mixed_precision": "no",
        "batch_size": 3,
        "warmup_steps": 1,
        "max_steps": 4,
        "num_workers": 0,
        "log_steps": 1,
        "eval_steps": 2,
        "save_steps": 2,
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    checkpoints = tmp_path / "run" / "checkpoints"

    stdout, events = train(tmp_path, "two", 2)
    best = check_run(events, num_processes=2, steps=4)
    assert sorted(folder.name for folder in checkpoints.iterdir()) == ["checkpoint_0", "checkpoint_1"]
    assert sorted(path.name for path in (checkpoints / "checkpoint_1").glob("random_states_*.pkl")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]
    assert json.loads((tmp_path / "run" / "best" / "training_state.json").read_text())["step"] in (2, 4)
    assert_schedule_follows_the_steps(checkpoints / "checkpoint_1")

    (tmp_path / "train.yaml").write_text(yaml.safe_dump({**config, "max_steps": 6}))
    stdout, events = train(tmp_path, "two-resumed", 2, "--resume")
    assert "resumed at step 4" in stdout and "step 6:" in stdout and "step 2:" not in stdout
    check_run(events, num_processes=2, steps=2, best=best)
    assert sorted(folder.name for folder in checkpoints.iterdir()) == ["checkpoint_1", "checkpoint_2"]
    assert_schedule_follows_the_steps(checkpoints / "checkpoint_2")

    (tmp_path / "train.yaml").write_text(yaml.safe_dump({**config, "max_steps": 8}))
    stdout, events = train(tmp_path, "one-resumed", 1, "--resume")
    assert "resumed at step 6" in stdout and "step 8:" in stdout
    assert len(batches(events, 0)) == 2
    assert sorted(folder.name for folder in checkpoints.iterdir()) == ["checkpoint_2", "checkpoint_3"]
    assert_schedule_follows_the_steps(checkpoints / "checkpoint_3")
