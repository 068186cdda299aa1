"""Make a trained checkpoint the bundled model: its files go to im2latex_hf/default_model, the weights as float16.

    python scripts/release_model.py runs/campaign/best [--output im2latex_hf/default_model]
    python scripts/release_model.py runs/round3-A/last runs/round3-C/last   # their average

Several checkpoints (of one architecture, e.g. two arms trained from the same start) are released as their
element-wise average, a "model soup": the float64 mean of every floating-point tensor, BatchNorm's running
statistics included; integer tensors (BatchNorm's step counts) come from the first checkpoint.

The weights are stored in float16 safetensors (half the size in git) while the config keeps
``dtype: float32``, so `from_pretrained` upcasts them at load. The model card (README.md) and the
learning curve plot of the output folder are kept. Prints the largest weight change the float16
rounding made.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForImageTextToText, AutoProcessor

import im2latex_hf

KEPT = ("README.md", "learning_curve.png")  # the output folder's own files
WEIGHTS = "model.safetensors"


def averaged_state_dict(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the state dicts (float64 sums, returned as float32); integer tensors from the
    first."""
    if any(state.keys() != states[0].keys() for state in states):
        raise SystemExit("the checkpoints have different weights: only one architecture can be averaged")
    return {
        name: torch.stack([state[name].double() for state in states]).mean(0).float()
        if tensor.is_floating_point()
        else tensor
        for name, tensor in states[0].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "checkpoints", nargs="+", help="model folders saved by scripts/train.py (best/ or last/); several: averaged"
    )
    parser.add_argument("--output", default=im2latex_hf.DEFAULT_MODEL, help="the bundled model folder")
    args = parser.parse_args()

    model = AutoModelForImageTextToText.from_pretrained(args.checkpoints[0], dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(args.checkpoints[0])
    if len(args.checkpoints) > 1:  # the first checkpoint is loaded once, as the model the average goes into
        others = [
            AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).state_dict()
            for folder in args.checkpoints[1:]
        ]
        model.load_state_dict(averaged_state_dict([model.state_dict(), *others]))
    output = Path(args.output)
    with tempfile.TemporaryDirectory() as folder:
        staged = Path(folder)
        model.save_pretrained(staged)  # config (dtype float32), generation config, code, float32 weights
        processor.save_pretrained(staged)
        weights = load_file(staged / WEIGHTS)
        half = {name: t.half() if t.is_floating_point() else t for name, t in weights.items()}
        save_file(half, staged / WEIGHTS, metadata={"format": "pt"})
        for name in KEPT:
            if (output / name).exists():
                shutil.copy2(output / name, staged / name)
        shutil.rmtree(output, ignore_errors=True)
        shutil.copytree(staged, output, copy_function=shutil.copyfile)  # the umask's modes, not the temp folder's
    output.chmod(0o755)

    reloaded = AutoModelForImageTextToText.from_pretrained(output)
    change = max(
        (a - b).abs().max().item() for a, b in zip(model.state_dict().values(), reloaded.state_dict().values())
    )
    dtype = next(reloaded.parameters()).dtype
    print(f"{output}: {(output / WEIGHTS).stat().st_size / 1e6:.1f} MB of weights, loads as {dtype}, "
          f"largest float16 rounding {change:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
