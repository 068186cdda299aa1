#!/usr/bin/env bash
# Train from the bundled model on a lent GPU machine, in one call of the `device` tool (a fresh machine each time).
#   here, once:  python scripts/build_device_shards.py --real data/im2latex-100k --corpus data/corpus-im2latex \
#                    --output-dir .devdata --max-mb 38
#                bash scripts/pack_device_packages.sh .devpkgs
#                (both folders are git-ignored; the checkout plus both must stay under the tool's 64 MiB)
#   device:      bash scripts/train_on_device.sh      carry: [.devdata, .devpkgs]   timeout_s: 570
# Phase 1 holds the stable lr for STABLE_SECONDS and measures the speed. Phase 2 resumes from its checkpoint and
# decays the lr to 0 over as many steps as fit before DEADLINE_S seconds after the start. $OUT gets best.tar and
# last.tar (float16 model folders made by scripts/release_model.py) and train.log.
set -uo pipefail
start=$SECONDS
STABLE_SECONDS=${STABLE_SECONDS:-240}
DEADLINE_S=${DEADLINE_S:-480}
CONFIG=${CONFIG:-configs/train_device.yaml}
OUT=${OUT:-runs/device-out}
RUN=$(python3 -c "import yaml, sys; print(yaml.safe_load(open(sys.argv[1]))['output_dir'])" "$CONFIG")
log=$OUT/train.log
mkdir -p "$OUT"
if [ -d .devpkgs ]; then  # see scripts/pack_device_packages.sh
  mkdir -p /tmp/site && tar -xJf .devpkgs/site.tar.xz -C /tmp/site \
    && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .devpkgs/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export USE_HUB_KERNELS=0 HF_HUB_OFFLINE=1  # nothing outside the machine can be reached (the kernels package is not carried)
python3 -c "import torch, transformers, datasets, accelerate, timm, PIL.features as f
print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__,
      'accelerate', accelerate.__version__, 'timm', timm.__version__, 'webp', f.check('webp'),
      'gpu', torch.cuda.get_device_name() if torch.cuda.is_available() else None)" 2>&1 | tee -a "$log"

release() {  # the run's best/ and last/ as float16 model folders, one tar each
  for which in best last; do
    [ -d "$RUN/$which" ] || continue
    rm -rf "/tmp/release/$which"
    python3 scripts/release_model.py "$RUN/$which" --output "/tmp/release/$which" >>"$log" 2>&1 \
      && tar -cf "$OUT/$which.tar" -C /tmp/release "$which"
  done
}

minutes() { python3 -c "import sys; print(max(float(sys.argv[1]), 0) / 60)" "$1"; }
timeout $((STABLE_SECONDS + 150)) python3 scripts/train.py --config "$CONFIG" --max-minutes "$(minutes "$STABLE_SECONDS")" \
  2>&1 | tee -a "$log"
release
step=$(sed -n 's/.*stopped after .* at step \([0-9]*\).*/\1/p' "$log" | tail -1)
[ -n "$step" ] || { echo "phase 1 did not stop on time; no phase 2" | tee -a "$log"; exit 1; }
overhead=$((SECONDS - start - STABLE_SECONDS))  # start-up, the final evaluation and checkpoint, the release
left=$((DEADLINE_S - (SECONDS - start) - overhead))
decay=$(python3 -c "import sys; s, t, l = map(int, sys.argv[1:]); print(max(int(s / t * l), 0))" "$step" "$STABLE_SECONDS" "$left")
echo "phase 1: $step steps in ${STABLE_SECONDS}s (+${overhead}s around it); phase 2 decays over $decay steps" | tee -a "$log"
[ "$decay" -gt 0 ] || exit 0
sed "s/num_decay_steps: [0-9]*/num_decay_steps: $decay/" "$CONFIG" >/tmp/phase2.yaml
timeout $((left + 120)) python3 scripts/train.py --config /tmp/phase2.yaml --resume --max-steps $((step + decay)) \
  --max-minutes "$(minutes $((left + 30)))" 2>&1 | tee -a "$log"
release
echo "done in $((SECONDS - start))s" | tee -a "$log"
