"""LaTeX BLEU-4: an `evaluate` module of im2latex_hf, loaded offline with ``im2latex_hf.metrics.load_metric("latex_bleu")``."""

import datasets
import evaluate

from im2latex_hf.metrics import bleu4

_CITATION = """\
@inproceedings{deng2017image,
  title={Image-to-Markup Generation with Coarse-to-Fine Attention},
  author={Deng, Yuntian and Kanervisto, Anssi and Ling, Jeffrey and Rush, Alexander M.},
  booktitle={Proceedings of the 34th International Conference on Machine Learning},
  year={2017}
}
"""
_DESCRIPTION = """Corpus BLEU-4 on LaTeX tokens (im2markup's tokenization; formulas split into commands, symbols and
characters, as multi-bleu.perl scored the normalized token files), from 0 to 1."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted LaTeX formulas (strings).
    references: gold LaTeX formulas (strings), one per prediction.
Returns:
    bleu4: corpus BLEU-4 in 0..1.
Examples:
    >>> metric = im2latex_hf.metrics.load_metric("latex_bleu")
    >>> metric.compute(predictions=["x ^ { 2 }"], references=["x^{2}"])
    {'bleu4': 1.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LatexBleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/harvardnlp/im2markup"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        return {"bleu4": bleu4(predictions, references)}
