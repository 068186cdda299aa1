"""LaTeX image match: an `evaluate` module of im2latex_hf, loaded offline with ``im2latex_hf.metrics.load_metric("latex_image_match")``."""

import datasets
import evaluate

from im2latex_hf.metrics import image_match_rates

_CITATION = """\
@inproceedings{deng2017image,
  title={Image-to-Markup Generation with Coarse-to-Fine Attention},
  author={Deng, Yuntian and Kanervisto, Anssi and Ling, Jeffrey and Rush, Alexander M.},
  booktitle={Proceedings of the 34th International Conference on Machine Learning},
  year={2017}
}
"""
_DESCRIPTION = """Rendered-image match in im2markup's convention: prediction and reference are rendered alike with
TeX (Computer Modern, 12pt, display style, 200 dpi, cropped), binarised and compared column by
column; runs of fewer than 5 differing columns are tolerated. A second figure ignores blank
columns. Needs `latex` and `dvipng` (TeX Live). See im2latex_hf/metrics/image_match.py."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted LaTeX formulas (strings).
    references: gold LaTeX formulas (strings), one per prediction.
    workers: TeX processes rendering in parallel (default 2).
Returns:
    image_match: fraction of predictions whose rendering matches the reference's.
    image_match_no_space: the same, ignoring blank columns.
    evaluated: references that rendered (the rates' denominator).
    unrenderable_references: references that failed to render (left out).
    unrenderable_predictions: predictions that failed to render (counted as mismatches).
Examples:
    >>> metric = im2latex_hf.metrics.load_metric("latex_image_match")
    >>> metric.compute(predictions=["x^2", "a \\, b"], references=["x ^ { 2 }", "a b"])
    {'image_match': 0.5, 'image_match_no_space': 1.0, 'evaluated': 2, 'unrenderable_references': 0, 'unrenderable_predictions': 0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LatexImageMatch(evaluate.Metric):
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

    def _compute(self, predictions: list[str], references: list[str], workers: int = 2) -> dict[str, float | int]:
        return image_match_rates(predictions, references, workers=workers)
