"""Evaluate a model on a split of the im2latex dataset (same as `im2latex evaluate`).

    python3 scripts/evaluate.py --split validation --limit 200 --num-beams 1
    python3 scripts/evaluate.py --model runs/best --split test   # writes reports/test-beam4/

Writes report.json, predictions.tsv and errors.html; see im2latex_hf/evaluation/evaluate.py.
"""

import sys
from pathlib import Path

# `python scripts/evaluate.py` puts this folder first on sys.path, where this file would stand in for the
# `evaluate` package that the metrics load (`evaluate.load`): take the folder off.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from im2latex_hf.evaluation.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
