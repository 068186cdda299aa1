#!/usr/bin/env bash
# Every data folder that configs/self_training_textbook.yaml reads, built from the shared data (resumable:
# finished folders and shards are kept). Two cores: the unlabelled images are read on one while the corpora
# render on the other; then the readings are verified on both.
#   bash scripts/build_training_data.sh [../shared/data]
# MODEL reads the unlabelled images (default: the bundled model) into data/pseudo-labels/round-$ROUND, and the
# verified pairs go to data/pseudo-pairs/round-$ROUND-verified. The configs' round-9 pairs were read by round 8's
# model (the bundled weights of commit ba9110e); a newer model reads them a little differently.
# Its parts, run so on a 2-core Intel Xeon: labelling 37 min, the corpora 17 min beside it, verifying about 20
# core-minutes.
set -euo pipefail
DATA=${1:-../shared/data}
MODEL=${MODEL:-im2latex_hf/default_model}
ROUND=${ROUND:-9}
export OMP_NUM_THREADS=1

python scripts/build_dataset.py --data-dir "$DATA/im2latex-100k" --output-dir data/im2latex-100k \
  --held-out-dir data/validation-holdout

python scripts/pseudo_label.py --model "$MODEL" --data "$DATA/im2latex-100k-unlabelled" \
  --output-dir "data/pseudo-labels/round-$ROUND" --num-beams 1 --shard-size 1000 &
labelling=$!

corpus() { python scripts/build_corpus.py --data-dir "$DATA" --workers 1 "$@"; }
corpus --output-dir data/corpus-textbook --school-math-limit 0 --textbook 40000 --generated 0 --seed 21
corpus --output-dir data/corpus-mixed --recipe mixed --school-math-limit 20000 --generated 2000 \
  --looks-per-formula 2 --seed 12
corpus --output-dir data/corpus-im2latex --recipe im2latex --generated 72500 --looks-per-formula 2 --seed 10
wait "$labelling"

python scripts/build_pseudo_pairs.py --labels "data/pseudo-labels/round-$ROUND" \
  --data "$DATA/im2latex-100k-unlabelled" --output-dir "data/pseudo-pairs/round-$ROUND-verified" \
  --kind real --min-render-match 0.5 --workers 2
