"""LaTeX edit accuracy: an `evaluate` module of im2latex_hf, loaded offline with ``im2latex_hf.metrics.load_metric("latex_edit_accuracy")``."""

import datasets
import evaluate

from im2latex_hf.metrics import edit_accuracy

_CITATION = """\
@inproceedings{deng2017image,
  title={Image-to-Markup Generation with Coarse-to-Fine Attention},
  author={Deng, Yuntian and Kanervisto, Anssi and Ling, Jeffrey and Rush, Alexander M.},
  booktitle={Proceedings of the 34th International Conference on Machine Learning},
  year={2017}
}
"""
_DESCRIPTION = """Token-level edit accuracy, im2markup's normalized edit distance score:
1 - sum of token Levenshtein distances / sum of max(prediction length, reference length)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted LaTeX formulas (strings).
    references: gold LaTeX formulas (strings), one per prediction.
Returns:
    edit_accuracy: 1 - normalized token edit distance, in 0..1.
Examples:
    >>> metric = im2latex_hf.metrics.load_metric("latex_edit_accuracy")
    >>> metric.compute(predictions=["x ^ { 2 }"], references=["x^{2}"])
    {'edit_accuracy': 1.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LatexEditAccuracy(evaluate.Metric):
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
        return {"edit_accuracy": edit_accuracy(predictions, references)}
