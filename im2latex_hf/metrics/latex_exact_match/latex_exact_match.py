"""LaTeX exact match: an `evaluate` module of im2latex_hf, loaded offline with ``im2latex_hf.metrics.load_metric("latex_exact_match")``."""

import datasets
import evaluate

from im2latex_hf.metrics import exact_match

_CITATION = """\
@inproceedings{deng2017image,
  title={Image-to-Markup Generation with Coarse-to-Fine Attention},
  author={Deng, Yuntian and Kanervisto, Anssi and Ling, Jeffrey and Rush, Alexander M.},
  booktitle={Proceedings of the 34th International Conference on Machine Learning},
  year={2017}
}
"""
_DESCRIPTION = """Fraction of predictions whose LaTeX token sequence equals the reference's (whitespace ignored)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted LaTeX formulas (strings).
    references: gold LaTeX formulas (strings), one per prediction.
Returns:
    exact_match: fraction of exact token matches, in 0..1.
Examples:
    >>> metric = im2latex_hf.metrics.load_metric("latex_exact_match")
    >>> metric.compute(predictions=["x ^ { 2 }"], references=["x^{2}"])
    {'exact_match': 1.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LatexExactMatch(evaluate.Metric):
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
        return {"exact_match": exact_match(predictions, references)}
