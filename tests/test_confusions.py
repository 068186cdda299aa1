"""Token confusions from an alignment of gold and prediction, with the small-mark group and layout apart."""

from __future__ import annotations

from im2latex_hf.metrics.confusions import MISSING, confusion_report, is_small_mark, token_confusions


def test_substitutions_drops_and_additions_are_counted_by_token():
    references = [r"\bar { x } + y", r"a ^ { \prime } = b", r"\tau = 1"]
    predictions = [r"\tilde { x } + y", r"a = b", r"r = 1 ."]
    counts = token_confusions(predictions, references)
    assert counts[r"\bar", r"\tilde"] == 1
    assert counts[r"\prime", MISSING] == 1 and counts["^", MISSING] == 1
    assert counts[MISSING, "."] == 1
    assert counts[r"\tau", "r"] == 1
    assert sum(counts.values()) == 1 + 4 + 1 + 1  # `^ { \prime }` dropped: four tokens
    assert token_confusions(references, references) == {}


def test_small_marks_are_accents_primes_dots_and_look_alike_letters():
    assert is_small_mark(r"\bar", r"\tilde") and is_small_mark(r"\hat", r"\dot")
    assert is_small_mark(r"\prime", MISSING) and is_small_mark(MISSING, ".")
    assert is_small_mark(r"\tau", "r") and is_small_mark("v", r"\nu")
    assert not is_small_mark("a", "b") and not is_small_mark(r"\alpha", r"\beta")


def test_the_report_lists_the_commonest_non_layout_confusions_and_counts_the_rest():
    references = [r"\bar { x }", r"\bar { y }", r"x _ { 1 }", r"\alpha"]
    predictions = [r"\tilde { x }", r"\tilde { y }", r"x 1", r"\beta"]
    report = confusion_report(predictions, references, top=5)
    assert report.top == [(r"\bar", r"\tilde", 2, True), (r"\alpha", r"\beta", 1, False)]
    assert (report.total, report.layout, report.small_marks) == (6, 3, 2)
    assert report.to_dict()["top"][0] == {"gold": r"\bar", "predicted": r"\tilde", "count": 2, "small_mark": True}
    assert any(r"\bar" in line and line.endswith("*") for line in report.lines())
