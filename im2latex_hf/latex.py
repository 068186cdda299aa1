"""LaTeX tokens: the one definition of how a formula splits into tokens.

The token format is im2latex-100k's: commands (``\\frac``), escaped symbols (``\\{``, ``\\,``),
sized delimiters (``\\left(``), environment markers (``\\begin{array}``) and single characters,
written with one space between tokens. A space is never part of a token except ``\\ `` (control
space), so joining tokens with spaces always compiles to the same formula.
"""

from __future__ import annotations

import re

# Alternatives are tried in order: the longest LaTeX units first, a single character last.
LATEX_TOKEN_PATTERN = (
    r"\\(?:begin|end)\{[a-zA-Z]+\*?\}"  # \begin{array}, \end{matrix}
    r"|\\(?:left|right)(?![a-zA-Z])(?:\\[a-zA-Z]+|\\[^a-zA-Z]|[^\s\\])"  # \left( \right\} \left\langle
    r"|\\operatorname\*"
    r"|\\[a-zA-Z]+"  # \frac, \alpha
    r"|\\[^a-zA-Z]"  # \{ \, \\ and the control space "\ "
    r"|-{2,3}"  # -- and --- are single tokens in im2latex-100k
    r"|\S"  # any other single character
)
_TOKEN_RE = re.compile(LATEX_TOKEN_PATTERN)


def tokenize_latex(formula: str) -> list[str]:
    """Split a LaTeX formula into im2latex-style tokens (whitespace is dropped)."""
    return _TOKEN_RE.findall(formula)


def join_tokens(tokens: list[str]) -> str:
    """Join tokens with single spaces: the im2latex-100k normalized format."""
    return " ".join(tokens)
