"""Publish a trained model (weights, config, code for trust_remote_code, tokenizer, processor, model card)
and optionally the rendered training corpus (parquet shards + dataset card) to the Hugging Face Hub.

    huggingface-cli login        # or HF_TOKEN=...
    python scripts/push_to_hub.py --model im2latex_hf/default_model --repo-id USER/im2latex
    python scripts/push_to_hub.py --model ... --repo-id USER/im2latex --corpus data/corpus --dataset-repo-id USER/im2latex-corpus
"""

from __future__ import annotations

import argparse
from pathlib import Path

import im2latex_hf
from im2latex_hf.hub import push_corpus, push_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path(im2latex_hf.DEFAULT_MODEL), help="model folder")
    parser.add_argument("--repo-id", required=True, help="USER/NAME of the model repo")
    parser.add_argument("--corpus", type=Path, help="corpus folder (shard-*.parquet, manifest.json) to publish too")
    parser.add_argument("--dataset-repo-id", help="USER/NAME of the dataset repo (with --corpus)")
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args()
    if args.corpus and not args.dataset_repo_id:
        parser.error("--corpus needs --dataset-repo-id")
    push_model(args.model, args.repo_id, args.private)
    print(f"model: https://huggingface.co/{args.repo_id}")
    if args.corpus:
        push_corpus(args.corpus, args.dataset_repo_id, args.private)
        print(f"corpus: https://huggingface.co/datasets/{args.dataset_repo_id}")


if __name__ == "__main__":
    main()
