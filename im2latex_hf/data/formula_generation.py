"""Generate new im2latex-style formulas by mutating and recombining real ones.

Each generated formula starts from a random seed formula (a normalized token string, e.g. a
line of im2latex-100k) and gets one to three random mutations: swap a symbol within its class
(letters, Greek, operators, relations, arrows, big operators, accents), change a number, add or
remove a sub/superscript, wrap a piece in a fraction, square root, ``\\left( ... \\right)``,
accent or font command, splice in a piece of another seed formula, or insert a small matrix.
Mutations work on the parsed formula tree, so braces stay balanced and every command keeps its
arguments; the output is in the same token format as the seeds.
"""

from __future__ import annotations

import copy
import random
import string
from collections.abc import Callable, Iterator, Sequence

from ..latex import join_tokens, tokenize_latex
from .normalization import (
    BINARY_OPERATORS,
    FONT_COMMANDS,
    GREEK_LOWER,
    GREEK_UPPER,
    RELATIONS,
    Command,
    Delimited,
    Group,
    Leaf,
    Node,
    Script,
    child_sequences,
    may_take_argument,
    parse_tokens,
    tree_tokens,
)

MAX_TOKENS = 150

SWAP_CLASSES: tuple[tuple[str, ...], ...] = (
    tuple(string.ascii_lowercase),
    tuple(string.ascii_uppercase),
    GREEK_LOWER,
    GREEK_UPPER,
    ("+", "-", "\\pm", "\\mp", "\\times", "\\cdot"),
    ("=", "<", ">", "\\leq", "\\geq", "\\neq", "\\approx", "\\equiv", "\\sim", "\\simeq", "\\propto"),
    ("\\rightarrow", "\\leftarrow", "\\Rightarrow", "\\Leftrightarrow", "\\mapsto", "\\longrightarrow"),
    ("\\sum", "\\prod", "\\int", "\\oint", "\\bigcup", "\\bigcap"),
    ("\\hat", "\\bar", "\\tilde", "\\vec", "\\dot", "\\ddot", "\\check"),
)
"""Symbols a mutation may exchange for one another (accents are command names)."""
_CLASS_OF = {token: tokens for tokens in SWAP_CLASSES for token in tokens}
_ACCENTS = SWAP_CLASSES[-1]
_VARIABLES = frozenset(string.ascii_letters) | frozenset(GREEK_LOWER + GREEK_UPPER)
_SUBSCRIPTS = (["i"], ["j"], ["k"], ["n"], ["0"], ["1"], ["2"], ["\\mu"], ["i", "j"], ["n", "+", "1"], ["\\mu", "\\nu"])
_SUPERSCRIPTS = (["2"], ["3"], ["n"], ["-", "1"], ["\\prime"], ["*"], ["\\dagger"], ["T"], ["2", "n"], ["\\mu"])
_BARRIERS = RELATIONS | frozenset({"&", "\\\\", "\\cr", "\\hline", "\\atop", "\\over", "\\choose"})
_EDGE_FORBIDDEN = BINARY_OPERATORS | frozenset({",", ";", ".", "~", "\\,", "\\;", "\\quad", "\\qquad", "\\prime"})
_OPENING = frozenset({"(", "[", "\\{", "\\langle"})
_CLOSING = frozenset({")", "]", "\\}", "\\rangle"})
_OPAQUE = frozenset({"\\operatorname", "\\operatorname*", "\\hspace", "\\vspace"})

Mutation = Callable[[random.Random, list[Node], list[Node]], bool]


def generate_formulas(
    seed_formulas: Sequence[str], n: int, *, seed: int = 0, max_tokens: int = MAX_TOKENS
) -> Iterator[str]:
    """Yield ``n`` distinct new formulas (deterministic for a ``seed``), none equal to a seed formula.

    Seed formulas that do not parse or exceed ``max_tokens`` are not used as bases.
    """
    rng = random.Random(seed)
    seeds = [tokens for tokens in (tokenize_latex(formula) for formula in seed_formulas) if _parses(tokens)]
    bases = [tokens for tokens in seeds if len(tokens) <= max_tokens]
    if not bases:
        raise ValueError("no usable seed formula (all fail to parse or are too long)")
    seen = {join_tokens(tokens) for tokens in seeds}
    mutations, weights = zip(*_MUTATIONS)
    made = 0
    for _ in range(100 * n + 1000):
        if made == n:
            return
        formula, donor = parse_tokens(rng.choice(bases)), parse_tokens(rng.choice(seeds))
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            for _ in range(10):  # a mutation fails when the formula offers it no place
                if rng.choices(mutations, weights)[0](rng, formula, donor):
                    break
        tokens = tree_tokens(formula)
        text = join_tokens(tokens)
        if 0 < len(tokens) <= max_tokens and text not in seen:
            seen.add(text)
            made += 1
            yield text
    raise RuntimeError(f"generated only {made} of {n} formulas; give more or shorter seed formulas")


def _parses(tokens: list[str]) -> bool:
    try:
        parse_tokens(tokens)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- places in a tree


def _sequences(nodes: list[Node], *, inside_fonts: bool = True) -> Iterator[list[Node]]:
    """Every node list of the tree, except inside operator names, spacing and words in a font
    (any font argument if not ``inside_fonts``)."""
    yield nodes
    for node in nodes:
        if isinstance(node, Command) and (
            node.name in _OPAQUE or node.name in FONT_COMMANDS and (_is_word(node) or not inside_fonts)
        ):
            continue
        for child in child_sequences(node):
            yield from _sequences(child, inside_fonts=inside_fonts)


def _is_word(command: Command) -> bool:
    return any(isinstance(arg, Group) and len(arg.items) > 1 for arg in command.args)


def _nodes(
    formula: list[Node], accept: Callable[[list[Node], int], bool], *, inside_fonts: bool = True
) -> list[tuple[list[Node], int]]:
    sequences = _sequences(formula, inside_fonts=inside_fonts)
    return [(seq, k) for seq in sequences for k in range(len(seq)) if accept(seq, k)]


def _is_leaf(node: Node, tokens: frozenset[str] | set[str]) -> bool:
    return isinstance(node, Leaf) and node.token in tokens


def _is_safe_span(items: list[Node]) -> bool:
    """A piece that can be wrapped or moved: balanced parentheses, no relation, cell separator or
    argument-taking unknown command, not starting with a script nor starting or ending with an operator."""
    if isinstance(items[0], Script) or _is_leaf(items[0], _EDGE_FORBIDDEN) or _is_leaf(items[-1], _EDGE_FORBIDDEN):
        return False
    depth = 0
    for node in items:
        if _is_leaf(node, _BARRIERS) or may_take_argument(node):
            return False
        depth += _is_leaf(node, _OPENING) - _is_leaf(node, _CLOSING)
        if depth < 0:
            return False
    return depth == 0


def _random_span(rng: random.Random, formula: list[Node], max_length: int) -> tuple[list[Node], int, int] | None:
    spans = [
        (seq, start, end)
        for seq in _sequences(formula)
        for start in range(len(seq))
        for end in range(start + 1, min(len(seq), start + max_length) + 1)
        if _is_safe_span(seq[start:end])
    ]
    return rng.choice(spans) if spans else None


def _donor_piece(rng: random.Random, donor: list[Node], max_length: int) -> list[Node] | None:
    """A copy of a random span of the donor formula (a copy, so no node ends up in the tree twice)."""
    span = _random_span(rng, donor, max_length)
    return copy.deepcopy(span[0][span[1] : span[2]]) if span else None


def _leaves(tokens: list[str]) -> list[Node]:
    return [Leaf(token) for token in tokens]


# --------------------------------------------------------------------------- mutations


def _swap_symbol(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    """Rename one symbol everywhere (``x`` → ``y``, ``+`` → ``-``, ``\\hat`` → ``\\tilde``)."""
    spots = _nodes(formula, lambda seq, k: _symbol(seq[k]) in _CLASS_OF)
    if not spots:
        return False
    seq, k = rng.choice(spots)
    old = _symbol(seq[k])
    new = rng.choice([token for token in _CLASS_OF[old] if token != old])
    for seq, k in spots:
        node = seq[k]
        if isinstance(node, Leaf) and node.token == old:
            node.token = new
        elif isinstance(node, Command) and node.name == old:
            node.name = new
    return True


def _symbol(node: Node) -> str | None:
    if isinstance(node, Leaf):
        return node.token
    return node.name if isinstance(node, Command) and node.name in _ACCENTS else None


def _change_number(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    """Replace a run of digits by another number."""
    starts = _nodes(formula, lambda seq, k: _is_digit(seq[k]) and not (k and _is_digit(seq[k - 1])))
    if not starts:
        return False
    seq, start = rng.choice(starts)
    end = start
    while end < len(seq) and _is_digit(seq[end]):
        end += 1
    number = str(rng.choice((rng.randint(0, 9), rng.randint(10, 99), rng.randint(100, 999))))
    if [node.token for node in seq[start:end]] == list(number):
        return False
    seq[start:end] = _leaves(list(number))
    return True


def _is_digit(node: Node) -> bool:
    return isinstance(node, Leaf) and node.token.isdigit()


def _add_script(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    """Give a variable a subscript or superscript (subscript first, as im2latex writes them)."""
    spots = _nodes(formula, lambda seq, k: _is_leaf(seq[k], _VARIABLES) and len(_scripts_after(seq, k)) < 2)
    if not spots:
        return False
    seq, k = rng.choice(spots)
    existing = _scripts_after(seq, k)
    op = rng.choice([op for op in "_^" if op not in existing])
    content = rng.choice(_SUBSCRIPTS if op == "_" else _SUPERSCRIPTS)
    seq.insert(k + 1 + (len(existing) if op == "^" else 0), Script(op, Group(_leaves(content))))
    return True


def _scripts_after(seq: list[Node], k: int) -> list[str]:
    ops = []
    while k + 1 < len(seq) and isinstance(seq[k + 1], Script):
        k += 1
        ops.append(seq[k].op)
    return ops


def _remove_script(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    spots = _nodes(formula, lambda seq, k: isinstance(seq[k], Script) and k > 0)
    if not spots:
        return False
    seq, k = rng.choice(spots)
    del seq[k]
    return True


def _wrap_in_fraction(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    """``a b`` → ``\\frac { a b } { c }`` with ``c`` a piece of the donor formula or a number."""
    span = _random_span(rng, formula, 4)
    if span is None:
        return False
    seq, start, end = span
    other = (_donor_piece(rng, donor, 3) if rng.random() < 0.5 else None) or _leaves(list(str(rng.randint(2, 9))))
    parts = [Group(seq[start:end]), Group(other)]
    if rng.random() < 0.3:
        parts.reverse()
    seq[start:end] = [Command("\\frac", parts)]
    return True


def _wrap_in_sqrt(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    span = _random_span(rng, formula, 4)
    if span is None:
        return False
    seq, start, end = span
    index = _leaves([rng.choice("3n")]) if rng.random() < 0.2 else None
    seq[start:end] = [Command("\\sqrt", [Group(seq[start:end])], index)]
    return True


def _wrap_in_delimiters(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    span = _random_span(rng, formula, 5)
    if span is None:
        return False
    seq, start, end = span
    left, right = rng.choice(
        (("\\left(", "\\right)"), ("\\left(", "\\right)"), ("\\left[", "\\right]"), ("\\left|", "\\right|"))
    )
    seq[start:end] = [Delimited(left, seq[start:end], right)]
    return True


def _add_accent(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    spots = _nodes(formula, lambda seq, k: _is_leaf(seq[k], _VARIABLES), inside_fonts=False)
    if not spots:
        return False
    seq, k = rng.choice(spots)
    seq[k] = Command(rng.choice(_ACCENTS), [Group([seq[k]])])
    return True


def _apply_font(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    """``x`` → ``\\mathbf { x }``; ``\\mathcal`` and ``\\mathbb`` only for capital letters."""
    spots = _nodes(formula, lambda seq, k: _is_leaf(seq[k], set(string.ascii_letters)), inside_fonts=False)
    if not spots:
        return False
    seq, k = rng.choice(spots)
    capital = seq[k].token.isupper()
    font = rng.choice(("\\mathrm", "\\mathbf", "\\mathcal", "\\mathbb") if capital else ("\\mathrm", "\\mathbf"))
    seq[k] = Command(font, [Group([seq[k]])])
    return True


def _splice(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    """Replace a piece of the formula by a piece of the donor formula."""
    target, piece = _random_span(rng, formula, 4), _donor_piece(rng, donor, 6)
    if target is None or piece is None:
        return False
    seq, start, end = target
    if isinstance(piece[-1], Script) and end < len(seq) and isinstance(seq[end], Script):
        return False  # x _ { i } spliced before _ { j } would be a double subscript
    seq[start:end] = piece
    return True


def _insert_matrix(rng: random.Random, formula: list[Node], donor: list[Node]) -> bool:
    """Replace a variable of the formula by a 2x2 (or 2x1) matrix of donor pieces, im2latex style:
    ``\\left( \\begin{array} { c c } { a } & { b } \\\\ { c } & { d } \\\\ \\end{array} \\right)``."""
    spots = _nodes(formula, lambda seq, k: _is_leaf(seq[k], _VARIABLES) and seq is formula)
    if not spots:
        return False
    columns = rng.choice((1, 2, 2))
    items: list[Node] = []
    for _ in range(2):
        for column in range(columns):
            cell = (_donor_piece(rng, donor, 2) if rng.random() < 0.6 else None) or _leaves([rng.choice("0123abxyz")])
            items += [Group(cell)] + ([Leaf("&")] if column < columns - 1 else [])
        items.append(Leaf("\\\\"))
    array = Delimited("\\begin{array}", items, "\\end{array}", Group(_leaves(["c"] * columns)))
    left, right = rng.choice((("\\left(", "\\right)"), ("\\left[", "\\right]"), ("\\left|", "\\right|")))
    seq, k = rng.choice(spots)
    seq[k] = Delimited(left, [array], right)
    return True


_MUTATIONS: tuple[tuple[Mutation, float], ...] = (
    (_swap_symbol, 3),
    (_change_number, 2),
    (_add_script, 2),
    (_remove_script, 1),
    (_wrap_in_fraction, 1.5),
    (_wrap_in_sqrt, 1),
    (_wrap_in_delimiters, 1),
    (_add_accent, 1),
    (_apply_font, 1),
    (_splice, 2),
    (_insert_matrix, 0.5),
)
"""Each mutation with its relative probability."""
