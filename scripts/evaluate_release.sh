#!/usr/bin/env bash
# Every figure of the bundled model's card: the im2latex-100k test split (greedy and beam 4), the
# held-out validation rows (never trained on), and test formulas re-rendered in five fonts.
#   bash scripts/evaluate_release.sh [../shared/data]      (reports go to reports/)
# BEAM4_ROWS and ROBUSTNESS_ROWS limit the slower runs to the first rows of their split (default: all
# rows for beam 4; 1,000 per font).
set -euo pipefail
DATA=${1:-../shared/data}
MODEL=${MODEL:-im2latex_hf/default_model}
BEAM4_ROWS=${BEAM4_ROWS:-}
ROBUSTNESS_ROWS=${ROBUSTNESS_ROWS:-1000}
evaluate() { im2latex evaluate --model "$MODEL" "$@"; }

[ -d data/im2latex-100k ] && [ -d data/validation-holdout ] || python scripts/build_dataset.py --data-dir "$DATA/im2latex-100k" \
  --output-dir data/im2latex-100k --held-out-dir data/validation-holdout

evaluate --data data/im2latex-100k --split test --num-beams 1 --output-dir reports/test-beam1
evaluate --data data/validation-holdout --split validation --num-beams 1 --output-dir reports/validation-holdout-beam1
for font in cm lmodern times palatino helvetica; do
  [ -d data/test-$font ] || python scripts/build_rendered_split.py --split test --font $font --limit 2000 --output-dir data/test-$font
  evaluate --data data/test-$font --split test --num-beams 1 --limit "$ROBUSTNESS_ROWS" --output-dir reports/test-$font-beam1
done
evaluate --data data/im2latex-100k --split test --num-beams 4 ${BEAM4_ROWS:+--limit $BEAM4_ROWS} --output-dir reports/test-beam4
evaluate --data data/validation-holdout --split validation --num-beams 4 --output-dir reports/validation-holdout-beam4
