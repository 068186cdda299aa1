"""The user-formula benchmark: well-known formulas in many looks, read by a model (see im2latex_hf/evaluation/user_benchmark.py).

    python scripts/benchmark_users.py                                  # the bundled model, greedy, every look
    python scripts/benchmark_users.py --backend onnx --num-beams 4 --output user-benchmark.json
    python scripts/benchmark_users.py --looks cm-100,im2latex --limit 20 --model runs/best
    python scripts/benchmark_users.py --list-images images.json                # what another program should read
    python scripts/benchmark_users.py --predictions predictions.json --every 5 # score its readings (read_with_peer.py)

Prints a markdown table by look (image match, canonical exact match), the 10 worst readings and the timing;
the images are cached in ~/.cache/im2latex_hf/user-benchmark/.
"""

import sys

from im2latex_hf.evaluation.user_benchmark import main

if __name__ == "__main__":
    sys.exit(main())
