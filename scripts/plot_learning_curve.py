"""Plot docs/learning_curve.csv (held-out BLEU-4 and eval loss against training images seen) as a PNG: the
bundled models as a line, the A/B arms that were not bundled (``run`` = ``arm``) as separate points.

python scripts/plot_learning_curve.py [--csv docs/learning_curve.csv] [--output im2latex_hf/default_model/learning_curve.png]
"""

from __future__ import annotations

import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import im2latex_hf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default="docs/learning_curve.csv")
    parser.add_argument("--output", default=f"{im2latex_hf.DEFAULT_MODEL}/learning_curve.png")
    args = parser.parse_args()
    with open(args.csv, newline="") as file:
        rows = list(csv.DictReader(file))
    arms = [row for row in rows if row.get("run") == "arm"]
    rows = [row for row in rows if row.get("run") != "arm"]
    images = [int(row["images_seen"]) / 1000 for row in rows]
    bleu = [float(row["heldout_bleu4_greedy"]) for row in rows]
    loss = [float(row["heldout_eval_loss"]) if row["heldout_eval_loss"] else float("nan") for row in rows]

    figure, bleu_axis = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    bleu_axis.plot(images, bleu, "o-", color="tab:blue", label="held-out BLEU-4 (greedy)")
    if arms:
        arm_images = [int(row["images_seen"]) / 1000 for row in arms]
        arm_bleu = [float(row["heldout_bleu4_greedy"]) for row in arms]
        bleu_axis.plot(arm_images, arm_bleu, "x", color="tab:gray", label="A/B arms not bundled")
    bleu_axis.axhline(0.85, color="tab:blue", linestyle=":", linewidth=1, label="target BLEU-4 (test, beam 4)")
    bleu_axis.set_xlabel("training images seen (thousands)")
    bleu_axis.set_ylabel("BLEU-4", color="tab:blue")
    bleu_axis.set_ylim(0, 1)
    loss_axis = bleu_axis.twinx()
    loss_axis.plot(images, loss, "s--", color="tab:red", label="held-out eval loss")
    loss_axis.set_ylabel("eval loss (nats/token)", color="tab:red")
    loss_axis.set_ylim(bottom=0)
    lines = bleu_axis.get_legend_handles_labels()[0] + loss_axis.get_legend_handles_labels()[0]
    labels = bleu_axis.get_legend_handles_labels()[1] + loss_axis.get_legend_handles_labels()[1]
    bleu_axis.legend(lines, labels, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=8)
    bleu_axis.set_title("im2latex_hf bundled model: learning curve (2-core CPU)")
    figure.tight_layout()
    figure.savefig(args.output)
    print(f"{len(rows)} points and {len(arms)} arms -> {args.output}")


if __name__ == "__main__":
    main()
