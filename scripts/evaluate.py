"""Evaluate a model on a split of the im2latex dataset (same as `im2latex evaluate`).

    python3 scripts/evaluate.py --split validation --limit 200 --num-beams 1
    python3 scripts/evaluate.py --model runs/best --split test   # writes reports/test-beam4/

Writes report.json, predictions.tsv and errors.html; see im2latex_hf/evaluation.py.
"""

import sys

from im2latex_hf.evaluation import main

if __name__ == "__main__":
    sys.exit(main())
