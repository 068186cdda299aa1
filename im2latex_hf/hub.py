"""Publishing to the Hugging Face Hub: the model with its processor and card, and the rendered corpus."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import DatasetCard, ModelCard
from transformers import AutoModelForImageTextToText, AutoProcessor

from .data.corpus import load_corpus

DATASET_CARD = """---
license: other
task_categories: [image-to-text]
tags: [latex, math, ocr, im2latex]
---
# im2latex rendered training corpus

Formula images rendered with TeX Live by `im2latex_hf` (`scripts/build_corpus.py`): im2latex-100k
training formulas, school-math formulas converted to im2latex's token style, and formulas generated
by recombining and mutating them, each rendered in several fonts, sizes and resolutions. Formulas of
the im2latex-100k validate and test splits are excluded. Columns: `image`, `formula` (space-separated
LaTeX tokens), `source`, `font`, `font_size`, `dpi`, `display`.

## Composition

```json
{manifest}
```
"""


def push_model(model_dir: Path, repo_id: str, private: bool = False) -> None:
    """Model, processor (tokenizer included) and the folder's README.md as the model card."""
    AutoModelForImageTextToText.from_pretrained(model_dir).push_to_hub(repo_id, private=private)
    AutoProcessor.from_pretrained(model_dir).push_to_hub(repo_id, private=private)
    if (model_dir / "README.md").is_file():
        ModelCard.load(model_dir / "README.md").push_to_hub(repo_id)


def push_corpus(corpus_dir: Path, repo_id: str, private: bool = False) -> None:
    """The corpus shards as a Hub dataset, with a card stating its composition."""
    load_corpus(corpus_dir).push_to_hub(repo_id, private=private)
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    DatasetCard(DATASET_CARD.replace("{manifest}", json.dumps(manifest, indent=2))).push_to_hub(
        repo_id, repo_type="dataset"
    )
