"""Normalize LaTeX formulas to im2latex-100k's token format, optionally canonicalising them.

``normalize_latex(formula)`` turns LaTeX in any common style (hand-written, Mathpix-like
``\\frac{a}{b}``, or already normalized) into what im2markup's KaTeX-based preprocessing writes:
tokens of ``tokenize_latex`` joined by single spaces, and

* sub/superscript arguments always braced (``x ^ { 2 }``), subscript before superscript;
* ``{a \\over b}`` → ``{ \\frac { a } { b } }``, ``\\choose`` → ``\\binom``; ``{\\rm x}`` → ``\\mathrm { x }``;
* ``\\sin`` → ``\\operatorname { s i n }``, ``\\lim`` → ``\\operatorname* { l i m }``;
* ``\\text``-like commands → ``\\mathrm { ... }`` with text spaces written ``~``;
* ``$``, ``\\label{...}``, comments, ``\\limits``/``\\nolimits``, ``\\(`` ``\\)`` ``\\[`` ``\\]`` removed; ``\\\\``
  becomes ``\\,`` outside environments (as im2markup did); ``\\left (`` → ``\\left(``,
  ``\\begin {array}`` → ``\\begin{array}``; ``pmatrix``-like environments →
  ``\\left( \\begin{matrix} ... \\end{matrix} \\right)``;
* runs of primes and a prime before ``^`` → ``f ^ { \\prime \\prime }``, ``f ^ { \\prime 2 }``: spaced out,
  ``f ' '`` would be a double superscript to TeX. A lone ``'`` stays;
* a few commands missing from im2latex-100k's vocabulary become their nearest member
  (``VOCABULARY_SUBSTITUTES``: ``\\leqslant`` → ``\\leq``, ``\\boldsymbol`` → ``\\mathbf``, ``\\dfrac`` → ``\\frac``...).
  These change glyphs slightly: render the normalized label, not the source.

Everything else (braces, unbraced ``\\frac 1 2``, ``{ \\cal L }``, spacing) is kept, so
normalized im2latex-100k lines come back unchanged. Formulas that cannot be normalized
(non-ASCII characters, unbalanced braces or ``\\left``/``\\right``, a command missing its
argument, commands or ``$`` inside ``\\text``) raise ``ValueError``.

``canonical=True`` also rewrites spellings that render the same (up to a thin space, 3mu)
into one canonical form, so a model is not asked to guess invisible choices. The policy, in
full in ``docs/canonical_latex.md``:

* synonyms: ``\\lbrace``→``\\{``, ``\\lbrack``→``[``, ``\\vert``→``|``, ``\\Vert``→``\\|``, ``\\sp``→``^``,
  ``\\sb``→``_``, ``\\to``→``\\rightarrow``, ``\\le``→``\\leq``, ``\\ge``→``\\geq``, ``\\ne``/``\\not =``→``\\neq``,
  ``\\ast``→``*``, ``\\left<``→``\\left\\langle``, ``'``→``^ { \\prime }``, ``\\dots``-family → ``\\ldots``
  or ``\\cdots`` (amsmath's rule: ``\\cdots`` before a binary operator, relation or integral);
* font switches ``{ \\bf x }``, ``\\cal``, ``\\it``, ``\\sf``, ``\\tt`` → ``\\mathbf { x }``...;
  ``\\mathrm { s i n }`` → ``\\operatorname { s i n }`` for the standard operator names;
* every command argument braced (``\\frac { 1 } { 2 }``), ``{ { x } }`` → ``{ x }``, and braces around
  one ordinary symbol dropped where TeX typesets the same (``a { b } c`` → ``a b c``);
* ``\\left( ... \\right)`` (also ``[ ]``, ``\\{ \\}``, ``| |``, ``\\| \\|``, ``\\langle \\rangle``) → plain
  delimiters when the content is one line of ordinary height (letters, digits, operators,
  simple subscripts; no ``^``, fraction, root, accent, big operator or array) and no script follows;
* horizontal spaces: a run of spacing commands (``\\,`` ``\\:`` ``\\;`` ``\\!`` ``~`` ``\\ `` ``\\quad``
  ``\\qquad`` ``\\hspace {...}``...) is measured in mu and written as nothing (< 4.5mu), ``~``
  (< 12mu), ``\\quad`` (< 27mu) or ``\\qquad``; spaces at either end of the formula, ``\\vspace``,
  ``\\nonumber``, ``\\notag`` and a leading ``\\displaystyle`` (formulas are rendered in display
  style) are dropped, and a formula wrapped whole in braces is unwrapped.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..latex import join_tokens, tokenize_latex

# --------------------------------------------------------------------------- token classes

LETTERS = frozenset(string.ascii_letters)
DIGITS = frozenset(string.digits)
GREEK_LOWER = (
    "\\alpha", "\\beta", "\\gamma", "\\delta", "\\epsilon", "\\varepsilon", "\\zeta", "\\eta", "\\theta",
    "\\vartheta", "\\iota", "\\kappa", "\\lambda", "\\mu", "\\nu", "\\xi", "\\pi", "\\varpi", "\\rho", "\\varrho",
    "\\sigma", "\\varsigma", "\\tau", "\\upsilon", "\\phi", "\\varphi", "\\chi", "\\psi", "\\omega",
)  # fmt: skip
GREEK_UPPER = (
    "\\Gamma", "\\Delta", "\\Theta", "\\Lambda", "\\Xi", "\\Pi", "\\Sigma", "\\Upsilon", "\\Phi", "\\Psi",
    "\\Omega",
)  # fmt: skip
ORDINARY_SYMBOLS = frozenset({
    "\\infty", "\\partial", "\\nabla", "\\hbar", "\\ell", "\\imath", "\\jmath", "\\aleph", "\\wp", "\\Re", "\\Im",
    "\\emptyset", "\\forall", "\\exists", "\\neg", "\\angle", "\\triangle", "\\top", "\\bot", "\\flat", "\\sharp",
    "\\natural", "\\%", "\\#",
})  # fmt: skip
BINARY_OPERATORS = frozenset({
    "+", "-", "*", "\\pm", "\\mp", "\\times", "\\div", "\\cdot", "\\circ", "\\bullet", "\\ast", "\\star", "\\cap",
    "\\cup", "\\wedge", "\\vee", "\\land", "\\lor", "\\oplus", "\\otimes", "\\ominus", "\\odot", "\\setminus",
    "\\dagger", "\\ddagger", "\\diamond", "\\sqcup", "\\sqcap", "\\uplus", "\\amalg", "\\wr", "\\triangleleft",
    "\\triangleright", "\\bigtriangleup", "\\bigtriangledown",
})  # fmt: skip
RELATIONS = frozenset({
    "=", "<", ">", ":", "\\leq", "\\geq", "\\le", "\\ge", "\\neq", "\\ne", "\\equiv", "\\approx", "\\sim",
    "\\simeq", "\\cong", "\\propto", "\\in", "\\notin", "\\ni", "\\subset", "\\supset", "\\subseteq", "\\supseteq",
    "\\ll", "\\gg", "\\perp", "\\parallel", "\\mid", "\\to", "\\rightarrow", "\\leftarrow", "\\gets",
    "\\Rightarrow", "\\Leftarrow", "\\Leftrightarrow", "\\leftrightarrow", "\\longrightarrow", "\\longleftarrow",
    "\\Longrightarrow", "\\Longleftarrow", "\\longleftrightarrow", "\\Longleftrightarrow", "\\mapsto",
    "\\longmapsto", "\\doteq", "\\models", "\\vdash", "\\dashv", "\\asymp", "\\prec", "\\succ", "\\preceq",
    "\\succeq", "\\bowtie", "\\rightleftharpoons", "\\hookrightarrow", "\\rightharpoonup",
})  # fmt: skip
BIG_OPERATORS = frozenset({
    "\\sum", "\\prod", "\\coprod", "\\int", "\\iint", "\\iiint", "\\oint", "\\bigcup", "\\bigcap", "\\bigoplus",
    "\\bigotimes", "\\bigodot", "\\bigvee", "\\bigwedge", "\\bigsqcup", "\\biguplus",
})  # fmt: skip
ACCENTS = frozenset({
    "\\hat", "\\bar", "\\tilde", "\\vec", "\\dot", "\\ddot", "\\dddot", "\\check", "\\breve", "\\acute", "\\grave",
    "\\mathring", "\\widehat", "\\widetilde", "\\overline", "\\underline", "\\overrightarrow", "\\overleftarrow",
    "\\overleftrightarrow", "\\overbrace", "\\underbrace", "\\overparen", "\\underparen",
})  # fmt: skip
FONT_COMMANDS = frozenset({
    "\\mathrm", "\\mathbf", "\\mathit", "\\mathcal", "\\mathbb", "\\mathsf", "\\mathtt", "\\mathfrak", "\\mathscr",
    "\\mathnormal", "\\textrm", "\\textbf", "\\textit",
})  # fmt: skip
SPACE_WIDTHS_MU: dict[str, float] = {
    "\\,": 3, "\\thinspace": 3, "\\:": 4, "\\>": 4, "\\medspace": 4, "\\;": 5, "\\thickspace": 5,
    "\\!": -3, "\\negthinspace": -3, "\\negmedspace": -4, "\\negthickspace": -5,
    "~": 6, "\\ ": 6, "\\enspace": 9, "\\enskip": 9, "\\quad": 18, "\\qquad": 36,
}  # fmt: skip
"""Width of each horizontal spacing command in mu (1/18 em)."""

_OPERATOR_NAMES = (
    "arccos", "arcsin", "arctan", "arg", "cos", "cosh", "cot", "coth", "csc", "deg", "dim", "exp", "hom", "ker", "lg",
    "ln", "log", "sec", "sin", "sinh", "tan", "tanh",
)  # fmt: skip
_LIMIT_OPERATOR_NAMES = ("det", "gcd", "inf", "lim", "max", "min", "Pr", "sup")

# --------------------------------------------------------------------------- token rewrites

VOCABULARY_SUBSTITUTES: dict[str, str] = {
    "\\leqslant": "\\leq", "\\geqslant": "\\geq", "\\boldsymbol": "\\mathbf", "\\bm": "\\mathbf",
    "\\varnothing": "\\emptyset", "\\dfrac": "\\frac", "\\tfrac": "\\frac", "\\dbinom": "\\binom",
    "\\tbinom": "\\binom", "\\lt": "<", "\\gt": ">",
}  # fmt: skip
"""Commands absent from im2latex-100k's vocabulary → the closest command it has (may change glyphs)."""

_MATRIX_DELIMITERS = {
    "pmatrix": ("\\left(", "\\right)"), "bmatrix": ("\\left[", "\\right]"), "Bmatrix": ("\\left\\{", "\\right\\}"),
    "vmatrix": ("\\left|", "\\right|"), "Vmatrix": ("\\left\\|", "\\right\\|"),
}  # fmt: skip
_EXPANSIONS: dict[str, list[str]] = {
    **{f"\\{name}": ["\\operatorname", "{", *name, "}"] for name in _OPERATOR_NAMES},
    **{f"\\{name}": ["\\operatorname*", "{", *name, "}"] for name in _LIMIT_OPERATOR_NAMES},
    **{f"\\begin{{{env}}}": [left, "\\begin{matrix}"] for env, (left, _) in _MATRIX_DELIMITERS.items()},
    **{f"\\end{{{env}}}": ["\\end{matrix}", right] for env, (_, right) in _MATRIX_DELIMITERS.items()},
}
"""Tokens rewritten as several: operator names as im2markup writes them, amsmath's delimited matrices."""
_DROPPED = frozenset({"\\limits", "\\nolimits", "\\(", "\\)", "\\[", "\\]"})

_SYNONYMS: dict[str, str] = {
    "\\lbrace": "\\{", "\\rbrace": "\\}", "\\lbrack": "[", "\\rbrack": "]", "\\vert": "|", "\\Vert": "\\|",
    "\\sp": "^", "\\sb": "_", "\\to": "\\rightarrow", "\\gets": "\\leftarrow", "\\le": "\\leq",
    "\\ge": "\\geq", "\\ne": "\\neq", "\\ast": "*", "\\dag": "\\dagger", "\\ddag": "\\ddagger",
    "\\land": "\\wedge", "\\lor": "\\vee", "\\lnot": "\\neg", "\\owns": "\\ni",
}  # fmt: skip
"""Canonical mode: commands TeX defines as the same symbol."""
_DELIMITER_SYNONYMS = {**_SYNONYMS, "<": "\\langle", ">": "\\rangle", "\\lvert": "|", "\\rvert": "|"}
_DOTS = frozenset({"\\dots", "\\dotso", "\\dotsc", "\\dotsb", "\\dotsm", "\\dotsi", "\\mathellipsis"})
_CANONICAL_DROPPED = frozenset({"\\nonumber", "\\notag"})

# --------------------------------------------------------------------------- formula tree


@dataclass
class Leaf:
    """A token that takes no argument."""

    token: str


@dataclass
class Group:
    """A braced group ``{ ... }``."""

    items: list[Node]


@dataclass
class Command:
    """A command with its arguments (a Group, or a single node when written unbraced)."""

    name: str
    args: list[Node]
    optional: list[Node] | None = None  # \sqrt [ n ]


@dataclass
class Script:
    """A subscript (``_``) or superscript (``^``) with its argument."""

    op: str
    arg: Node


@dataclass
class Delimited:
    """``\\left( ... \\right)`` or an environment ``\\begin{array} { c c } ... \\end{array}``."""

    open: str
    items: list[Node]
    close: str
    spec: Group | None = None


Node = Leaf | Group | Command | Script | Delimited

ARITY: dict[str, int] = {
    "\\frac": 2, "\\binom": 2, "\\stackrel": 2, "\\overset": 2, "\\underset": 2,
    "\\sqrt": 1, "\\operatorname": 1, "\\operatorname*": 1, "\\hspace": 1, "\\vspace": 1,
    "\\phantom": 1, "\\hphantom": 1, "\\vphantom": 1, "\\boxed": 1, "\\fbox": 1, "\\pmod": 1,
    "\\substack": 1, "\\mathop": 1, "\\mathbin": 1, "\\mathrel": 1, "\\mathord": 1,
    **dict.fromkeys(ACCENTS | FONT_COMMANDS, 1),
}  # fmt: skip
"""Commands whose arguments the parser attaches to them."""

_SWITCHES = {"\\rm": "\\mathrm"}
_CANONICAL_SWITCHES = {**_SWITCHES, "\\bf": "\\mathbf", "\\cal": "\\mathcal", "\\it": "\\mathit",
                       "\\sf": "\\mathsf", "\\tt": "\\mathtt"}  # fmt: skip
_INFIX = {"\\over": "\\frac", "\\choose": "\\binom"}
_CELL_SEPARATORS = frozenset({"&", "\\\\", "\\cr"})
_LEFT_RE = re.compile(r"\\left(?![a-zA-Z])")
_RIGHT_RE = re.compile(r"\\right(?![a-zA-Z])")
_SIZED_DELIMITER_RE = re.compile(r"(\\left|\\right)(?![a-zA-Z])(.+)")


class _Parser:
    """Recursive-descent parser from prepared tokens to a list of nodes."""

    def __init__(self, tokens: list[str], switches: dict[str, str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.switches = switches

    def parse(self) -> list[Node]:
        items = self._sequence(lambda token: False)
        return self._rewrite(items)

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _sequence(self, stop: Callable[[str], bool]) -> list[Node]:
        items = []
        while (token := self._peek()) is not None and not stop(token):
            items.append(self._atom(in_sequence=True, previous=items[-1] if items else None))
        return items

    def _expect(self, accept: Callable[[str], bool], what: str) -> str:
        token = self._peek()
        if token is None or not accept(token):
            raise ValueError(f"expected {what} at token {self.pos}, found {token!r}")
        self.pos += 1
        return token

    def _atom(self, *, in_sequence: bool, previous: Node | None = None) -> Node:
        token = self.tokens[self.pos]
        self.pos += 1
        if token == "{":
            return self._group(in_sequence and not may_take_argument(previous))
        if token == "}" or _RIGHT_RE.match(token) or token.startswith("\\end{"):
            raise ValueError(f"unbalanced {token!r} at token {self.pos - 1}")
        if token in ("^", "_"):
            return Script(token, self._argument())
        if _LEFT_RE.match(token):
            items = self._rewrite(self._sequence(_RIGHT_RE.match))
            return Delimited(token, items, self._expect(_RIGHT_RE.match, "\\right"))
        if token.startswith("\\begin{"):
            spec = None
            if token in ("\\begin{array}", "\\begin{tabular}", "\\begin{subarray}") and self._peek() == "{":
                self.pos += 1
                spec = Group(self._sequence(lambda t: t == "}"))
                self._expect(lambda t: t == "}", "}")
            items = self._rewrite(self._sequence(lambda t: t.startswith("\\end{")))
            close = token.replace("\\begin", "\\end", 1)
            return Delimited(token, items, self._expect(lambda t: t == close, close), spec)
        if token in ARITY:
            optional = None
            if token == "\\sqrt" and self._peek() == "[":
                self.pos += 1
                optional = self._rewrite(self._sequence(lambda t: t == "]"))
                self._expect(lambda t: t == "]", "]")
            return Command(token, [self._argument() for _ in range(ARITY[token])], optional)
        return Leaf(token)

    def _argument(self) -> Node:
        token = self._peek()
        if token is None or token in ("}", "&", "\\\\") or _RIGHT_RE.match(token) or token.startswith("\\end{"):
            raise ValueError(f"missing argument at token {self.pos}")
        return self._atom(in_sequence=False)

    def _group(self, may_unwrap: bool) -> Node:
        items = self._sequence(lambda t: t == "}")
        self._expect(lambda t: t == "}", "}")
        switched = bool(items) and isinstance(items[0], Leaf) and items[0].token in self.switches
        items = self._rewrite(items)
        if switched and may_unwrap and len(items) == 1:
            return items[0]  # {\rm x} -> \mathrm { x }, unless the group may be an argument
        return Group(items)

    def _rewrite(self, items: list[Node]) -> list[Node]:
        """Apply font switches and ``\\over`` cell by cell; put subscripts before superscripts."""
        out: list[Node] = []
        cell: list[Node] = []
        for node in items:
            if isinstance(node, Leaf) and node.token in _CELL_SEPARATORS:
                out += self._rewrite_cell(cell) + [node]
                cell = []
            else:
                cell.append(node)
        out += self._rewrite_cell(cell)
        for k in range(1, len(out) - 1):
            before, sup, sub = out[k - 1], out[k], out[k + 1]
            if not isinstance(before, Script) and _is_script(sup, "^") and _is_script(sub, "_"):
                out[k], out[k + 1] = sub, sup
        return out

    def _rewrite_cell(self, cell: list[Node]) -> list[Node]:
        for k, node in enumerate(cell):
            if isinstance(node, Leaf) and node.token in self.switches:
                cell = cell[:k] + [Command(self.switches[node.token], [Group(self._rewrite_cell(cell[k + 1 :]))])]
                break
        infix = [k for k, node in enumerate(cell) if isinstance(node, Leaf) and node.token in _INFIX]
        if len(infix) > 1:
            raise ValueError("ambiguous: several \\over in one group")
        if infix:
            k = infix[0]
            cell = [Command(_INFIX[cell[k].token], [Group(cell[:k]), Group(cell[k + 1 :])])]
        return cell


def _is_script(node: Node, op: str) -> bool:
    return isinstance(node, Script) and node.op == op


def parse_tokens(tokens: list[str], *, canonical_switches: bool = False) -> list[Node]:
    """Parse prepared tokens into a formula tree (``ValueError`` if unbalanced or an argument is missing)."""
    return _Parser(tokens, _CANONICAL_SWITCHES if canonical_switches else _SWITCHES).parse()


def tree_tokens(nodes: list[Node], *, brace_arguments: bool = False) -> list[str]:
    """The tokens of a formula tree; sub/superscript arguments are braced (except base-less ones
    when ``brace_arguments`` is false, as im2markup writes them), command arguments too if ``brace_arguments``."""
    out: list[str] = []
    _emit(nodes, out, brace_arguments)
    return out


def _emit(nodes: list[Node], out: list[str], brace_arguments: bool) -> None:
    for position, node in enumerate(nodes):
        if isinstance(node, Leaf):
            out.append(node.token)
        elif isinstance(node, Group):
            out.append("{")
            _emit(node.items, out, brace_arguments)
            out.append("}")
        elif isinstance(node, Script):
            out.append(node.op)
            # im2markup braces the argument of a script with a base, keeps a base-less one as written
            keep = position == 0 and not brace_arguments or isinstance(node.arg, Group)
            _emit([node.arg if keep else Group([node.arg])], out, brace_arguments)
        elif isinstance(node, Command):
            out.append(node.name)
            if node.optional is not None:
                out.append("[")
                _emit(node.optional, out, brace_arguments)
                out.append("]")
            for arg in node.args:
                _emit([Group([arg]) if brace_arguments and not isinstance(arg, Group) else arg], out, brace_arguments)
        else:
            out.append(node.open)
            _emit([node.spec] if node.spec else [], out, brace_arguments)
            _emit(node.items, out, brace_arguments)
            out.append(node.close)


def child_sequences(node: Node) -> Iterator[list[Node]]:
    """The node lists directly inside a node (group contents, arguments, delimited contents)."""
    if isinstance(node, (Group, Delimited)):
        yield node.items
    elif isinstance(node, Script):
        yield from child_sequences(node.arg) if isinstance(node.arg, Group) else ()
    elif isinstance(node, Command):
        if node.optional is not None:
            yield node.optional
        for arg in node.args:
            if isinstance(arg, Group):
                yield arg.items


# --------------------------------------------------------------------------- source cleaning

_TEXT_RE = re.compile(r"\\(text|mbox|hbox|textrm|textup|textnormal|textbf|textit)\s*\{")
_TEXT_FONTS = {"textbf": "\\mathbf", "textit": "\\mathit"}
_LABEL_RE = re.compile(r"\\label\s*\{[^{}]*\}")
_COMMENT_RE = re.compile(r"(?<!\\)%.*")
_DOLLAR_RE = re.compile(r"(?<!\\)\$")


def _clean_source(formula: str) -> str:
    """String-level steps: reject non-ASCII; drop comments, labels, ``$``; convert ``\\text{...}``."""
    if not formula.isascii():
        raise ValueError("formula contains non-ASCII characters")
    source = _LABEL_RE.sub(" ", _COMMENT_RE.sub("", formula))
    if _TEXT_RE.search(source):
        source = _convert_text(source)
    return _DOLLAR_RE.sub(" ", source)


def _convert_text(source: str) -> str:
    """``\\text{a b}`` → ``\\mathrm{a ~ b}``; in already tokenized input spaces only separate tokens."""
    pretokenized = len(tokenize_latex(source)) == len(source.split())
    parts, pos = [], 0
    while match := _TEXT_RE.search(source, pos):
        end = _closing_brace(source, match.end() - 1)
        content = source[match.end() : end]
        if "$" in content or re.search(r"\\[a-zA-Z]", content):
            raise ValueError("math or commands inside \\text")
        if not pretokenized:
            content = re.sub(r"\s+", " ~ ", content)
        parts += [source[pos : match.start()], _TEXT_FONTS.get(match.group(1), "\\mathrm"), " {", content, "} "]
        pos = end + 1
    return "".join(parts) + source[pos:]


def _closing_brace(source: str, open_index: int) -> int:
    depth, k = 0, open_index
    while k < len(source):
        if source[k] == "\\":
            k += 1
        elif source[k] == "{":
            depth += 1
        elif source[k] == "}":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    raise ValueError("unbalanced braces in \\text")


# --------------------------------------------------------------------------- token passes


def _merge_split_tokens(tokens: list[str]) -> list[str]:
    """``\\left (`` → ``\\left(``, ``\\begin { array }`` → ``\\begin{array}``, ``\\operatorname *`` → ``\\operatorname*``."""
    out: list[str] = []
    k = 0
    while k < len(tokens):
        token = tokens[k]
        if token in ("\\left", "\\right") and k + 1 < len(tokens):
            out.append(token + tokens[k + 1])
            k += 2
        elif token in ("\\begin", "\\end") and tokens[k + 1 : k + 2] == ["{"] and "}" in tokens[k + 2 :]:
            close = tokens.index("}", k + 2)
            out.append(token + "{" + "".join(tokens[k + 2 : close]) + "}")
            k = close + 1
        elif token == "\\operatorname" and tokens[k + 1 : k + 2] == ["*"]:
            out.append("\\operatorname*")
            k += 2
        elif token == "*" and out and out[-1] in ("\\hspace", "\\vspace"):
            k += 1  # \hspace* differs from \hspace only at line breaks
        else:
            out.append(token)
            k += 1
    return out


def _prepare_tokens(tokens: list[str], canonical: bool) -> list[str]:
    tokens = _merge_split_tokens(tokens)
    in_environment = any(token.startswith("\\begin{") for token in tokens)
    out: list[str] = []
    for token in tokens:
        if token in _DROPPED or (canonical and token in _CANONICAL_DROPPED):
            continue
        if token == "\\\\" and not in_environment:
            token = "\\,"
        token = VOCABULARY_SUBSTITUTES.get(token, token)
        if canonical:
            token = _canonical_token(token)
        out += _EXPANSIONS.get(token, [token])
    return _canonical_token_pass(out) if canonical else _spaced_primes_pass(out)


def _canonical_token(token: str) -> str:
    if match := _SIZED_DELIMITER_RE.fullmatch(token):  # \left\lbrace -> \left\{
        return match[1] + _DELIMITER_SYNONYMS.get(match[2], match[2])
    return _SYNONYMS.get(token, token)


def _canonical_token_pass(tokens: list[str]) -> list[str]:
    """Context-dependent token rewrites: ``\\not =``, dots, primes, spacing runs, ``\\vspace``."""
    out: list[str] = []
    k = 0
    while k < len(tokens):
        token = tokens[k]
        following = tokens[k + 1] if k + 1 < len(tokens) else None
        widths, end = _space_run(tokens, k)
        if end > k:
            negative = any(width < 0 for width in widths)
            out += tokens[k:end] if negative else _space_tokens(sum(widths))  # \! \! overprints glyphs: keep
            k = end
        elif token == "\\not" and following == "=":
            out.append("\\neq")
            k += 2
        elif token in _DOTS:
            cdots = following in BINARY_OPERATORS or following in RELATIONS or following in BIG_OPERATORS
            out.append("\\cdots" if cdots else "\\ldots")
            k += 1
        elif token == "'":
            primes, k = _prime_run(tokens, k)
            out += primes
        elif token == "\\vspace" and following == "{" and "}" in tokens[k:]:
            k = tokens.index("}", k) + 1
        else:
            out.append(token)
            k += 1
    return out


def _prime_run(tokens: list[str], start: int) -> tuple[list[str], int]:
    """The primes from ``start`` on (and a superscript right after them) as one ``^ { \\prime ... }``.

    Returns the rewritten tokens and the index after what they replace.
    """
    end = start
    while end < len(tokens) and tokens[end] == "'":
        end += 1
    out = ["^", "{"] + ["\\prime"] * (end - start)
    after = tokens[end + 1] if tokens[end : end + 1] == ["^"] and end + 1 < len(tokens) else None
    if after == "{":  # x'^{2} -> x^{\prime 2}: the group's "}" closes it
        end += 2
    elif after is not None and after != "}" and after not in ARITY:  # x'^2 -> x^{\prime 2}
        out += [after, "}"]
        end += 2
    else:
        out.append("}")
    return out, end


def _spaced_primes_pass(tokens: list[str]) -> list[str]:
    """Rewrite the primes that TeX misreads once tokens are spaced: ``f ' '`` and ``f ' ^ 2`` are double
    superscripts, so ``f''`` and ``f'^2`` become ``f ^ { \\prime \\prime }`` and ``f ^ { \\prime 2 }``.
    A lone ``'`` stays, as im2latex-100k writes it."""
    out: list[str] = []
    k = 0
    while k < len(tokens):
        if tokens[k] == "'" and tokens[k + 1 : k + 2] in (["'"], ["^"]):
            primes, k = _prime_run(tokens, k)
            out += primes
        else:
            out.append(tokens[k])
            k += 1
    return out


_UNIT_MU = {"mu": 1.0, "em": 18.0, "ex": 7.75, "pt": 1.8, "bp": 1.81, "pc": 21.6, "mm": 5.12, "cm": 51.2, "in": 130.1}
_DIMENSION_RE = re.compile(r"(-?\d*\.?\d+)(mu|em|ex|pt|bp|pc|mm|cm|in)")


def _space_run(tokens: list[str], start: int) -> tuple[list[float], int]:
    """Widths (mu, 10pt font) of the spacing commands from ``start`` on, and the index after them."""
    widths, k = [], start
    while k < len(tokens):
        if tokens[k] in SPACE_WIDTHS_MU:
            widths.append(SPACE_WIDTHS_MU[tokens[k]])
            k += 1
            continue
        if tokens[k] == "\\hspace" and tokens[k + 1 : k + 2] == ["{"] and "}" in tokens[k:]:
            close = tokens.index("}", k)
            if match := _DIMENSION_RE.fullmatch("".join(tokens[k + 2 : close])):
                widths.append(float(match.group(1)) * _UNIT_MU[match.group(2)])
                k = close + 1
                continue
        break
    return widths, k


def _space_tokens(width_mu: float) -> list[str]:
    if width_mu < 4.5:
        return []
    return ["~"] if width_mu < 12 else ["\\quad"] if width_mu < 27 else ["\\qquad"]


# --------------------------------------------------------------------------- canonical tree pass

_KNOWN_SYMBOLS = (
    frozenset(GREEK_LOWER + GREEK_UPPER) | ORDINARY_SYMBOLS | BINARY_OPERATORS | RELATIONS | BIG_OPERATORS
    | frozenset(SPACE_WIDTHS_MU) | frozenset({"\\prime", "\\ldots", "\\cdots", "\\{", "\\}", "\\|", "\\langle", "\\rangle"})
)  # fmt: skip
_UNWRAP_BEFORE_SCRIPT = DIGITS | frozenset(GREEK_UPPER)  # no italic correction to lose
_ORDINARY = LETTERS | DIGITS | frozenset(GREEK_LOWER + GREEK_UPPER) | ORDINARY_SYMBOLS | frozenset("./|")
_FLAT_TOKENS = (
    _ORDINARY | (BINARY_OPERATORS - {"\\bigtriangleup", "\\bigtriangledown"}) | RELATIONS | frozenset(SPACE_WIDTHS_MU)
    | frozenset({"(", ")", "[", "]", "|", "/", ",", ";", ".", "!", "?", "\\{", "\\}", "\\|", "\\langle", "\\rangle",
                 "\\ldots", "\\cdots"})
)  # fmt: skip
_SMALL_SUBSCRIPT = (
    LETTERS | DIGITS | frozenset(GREEK_LOWER + GREEK_UPPER) | frozenset({"+", "-", "=", ",", "*", "\\ast"})
)
_PLAIN_DELIMITERS = {
    "\\left(": "(", "\\left[": "[", "\\left\\{": "\\{", "\\left|": "|", "\\left\\|": "\\|", "\\left\\langle": "\\langle",
    "\\right)": ")", "\\right]": "]", "\\right\\}": "\\}", "\\right|": "|", "\\right\\|": "\\|",
    "\\right\\rangle": "\\rangle",
}  # fmt: skip
_EDGE_DROPPABLE = frozenset({"~", "\\quad", "\\qquad", "\\displaystyle"})


def _canonical_top(items: list[Node]) -> list[Node]:
    items = _canonical_sequence(items)
    while True:
        if len(items) == 1 and isinstance(items[0], Group):
            items = items[0].items
        elif items and isinstance(items[0], Leaf) and items[0].token in _EDGE_DROPPABLE:
            items = items[1:]
        elif items and isinstance(items[-1], Leaf) and items[-1].token in _EDGE_DROPPABLE - {"\\displaystyle"}:
            items = items[:-1]
        else:
            return items


def _canonical_sequence(items: list[Node], *, unwrap: bool = True) -> list[Node]:
    items = _plain_delimiters([_canonical_node(node) for node in items])
    return _unwrap_braces(items) if unwrap else items


def _canonical_node(node: Node) -> Node:
    if isinstance(node, Group):
        return _flatten(Group(_canonical_sequence(node.items)))
    if isinstance(node, Script):
        return Script(node.op, _canonical_argument(node.arg))
    if isinstance(node, Command):
        optional = None if node.optional is None else _canonical_sequence(node.optional)
        node = Command(node.name, [_canonical_argument(arg) for arg in node.args], optional)
        return _as_operator(node)
    if isinstance(node, Delimited):
        return Delimited(node.open, _canonical_sequence(node.items, unwrap=node.spec is None), node.close, node.spec)
    return node


def _canonical_argument(node: Node) -> Group:
    node = _canonical_node(node)
    return node if isinstance(node, Group) else Group([node])


def _flatten(group: Group) -> Group:
    """``{ { x } }`` → ``{ x }``."""
    while len(group.items) == 1 and isinstance(group.items[0], Group):
        group = group.items[0]
    return group


def _as_operator(command: Command) -> Command:
    """``\\mathrm { s i n }`` → ``\\operatorname { s i n }`` for the standard operator names."""
    if command.name == "\\mathrm" and _word(command.args[0]) in _OPERATOR_NAMES:
        return Command("\\operatorname", command.args)
    return command


def _word(node: Node) -> str | None:
    """The text of a group of leaves (``{ s i n }`` → ``sin``), else None."""
    if isinstance(node, Group) and all(isinstance(n, Leaf) for n in node.items):
        return "".join(n.token for n in node.items)
    return None


def _plain_delimiters(items: list[Node]) -> list[Node]:
    """``\\left( x \\right)`` → ``( x )`` where TeX picks the normal size (see ``_is_flat``)."""
    out: list[Node] = []
    for k, node in enumerate(items):
        following = items[k + 1] if k + 1 < len(items) else None
        if isinstance(node, Delimited) and _has_plain_form(node) and not isinstance(following, Script):
            out += [Leaf(_PLAIN_DELIMITERS[node.open]), *node.items, Leaf(_PLAIN_DELIMITERS[node.close])]
        else:
            out.append(node)
    return out


def _has_plain_form(node: Delimited) -> bool:
    if node.open not in _PLAIN_DELIMITERS or node.close not in _PLAIN_DELIMITERS or not _is_flat(node.items):
        return False
    # After an ordinary "|" a leading "-" is binary, after "\left|" unary: keep \left| there.
    first = node.items[0] if node.items else None
    return node.open not in ("\\left|", "\\left\\|") or not (
        isinstance(first, Leaf) and first.token in BINARY_OPERATORS
    )


def _is_flat(items: list[Node]) -> bool:
    """Content of ordinary height: ``\\left(`` around it is the normal ``(`` (TeX's delimiter rule)."""
    for node in items:
        if isinstance(node, Leaf):
            flat = node.token in _FLAT_TOKENS
        elif isinstance(node, Group):
            flat = _is_flat(node.items)
        elif isinstance(node, Command):
            flat = (
                node.name in FONT_COMMANDS | {"\\operatorname"}
                and node.optional is None
                and all(isinstance(arg, Group) and _is_flat(arg.items) for arg in node.args)
            )
        elif isinstance(node, Script):
            arg = node.arg.items if isinstance(node.arg, Group) else [node.arg]
            flat = node.op == "_" and all(isinstance(n, Leaf) and n.token in _SMALL_SUBSCRIPT for n in arg)
        else:
            flat = False
        if not flat:
            return False
    return True


def _unwrap_braces(items: list[Node]) -> list[Node]:
    """Drop braces around one ordinary symbol where TeX typesets the same (``a { b } c`` → ``a b c``)."""
    out: list[Node] = []
    for k, node in enumerate(items):
        following = items[k + 1] if k + 1 < len(items) else None
        previous = out[-1] if out else None
        if (
            isinstance(node, Group)
            and len(node.items) == 1
            and isinstance(inner := node.items[0], Leaf)
            and inner.token in _ORDINARY
            and (inner.token in _UNWRAP_BEFORE_SCRIPT or not isinstance(following, Script))
            and not may_take_argument(previous)
        ):
            out.append(inner)
        else:
            out.append(node)
    return out


def may_take_argument(node: Node | None) -> bool:
    """An unknown command (``\\cal``, ``\\boldmath``...) might read a following group as its argument."""
    return isinstance(node, Leaf) and node.token[1:].isalpha() and node.token not in _KNOWN_SYMBOLS


# --------------------------------------------------------------------------- public API


def normalize_latex(formula: str, *, canonical: bool = False) -> str:
    """Normalize a LaTeX formula to im2latex-100k's token format (see the module docstring).

    Raises ``ValueError`` for formulas that cannot be normalized; callers skip those.
    """
    tokens = _prepare_tokens(tokenize_latex(_clean_source(formula)), canonical)
    nodes = parse_tokens(tokens, canonical_switches=canonical)
    if canonical:
        nodes = _canonical_top(nodes)
    return join_tokens(tree_tokens(nodes, brace_arguments=canonical))


def canonicalize_tokens(tokens: list[str]) -> list[str]:
    """Canonical form of a token list, for comparing predictions with references.

    Malformed input (e.g. a prediction with unbalanced braces) gets only the token-level rewrites.
    """
    try:
        return tokenize_latex(normalize_latex(join_tokens(tokens), canonical=True))
    except ValueError:
        return _prepare_tokens(list(tokens), canonical=True)
