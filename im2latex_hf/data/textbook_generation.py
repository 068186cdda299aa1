"""Generate textbook-style formulas from a small random grammar.

im2latex-100k is arXiv physics, and ``formulas/school-math.lst`` is short school algebra with no
binomials, matrices, ``cases``, limits or norms. Users read the formulas of textbooks and lecture notes,
so this grammar writes them: equations of polynomials, fractions, roots and functions; sums, products,
integrals and limits; binomials; matrices and determinants; piecewise definitions; sets, vectors,
probability and derivatives. Every symbol, number, size and shape is drawn at random, so the formulas
are new ones of familiar shapes, not copies of well-known formulas.

Formulas come out as plain LaTeX (``\\binom{n}{k}``, ``\\begin{pmatrix}``); ``normalize_latex`` brings them
to the training format, as it does school-math.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

LETTERS = "abcdefghkmnpqrstuvwxyz"
CAPITALS = "ABCDEFGHKLMNPQRSTUVWXYZ"
GREEK = (r"\alpha", r"\beta", r"\gamma", r"\delta", r"\epsilon", r"\theta", r"\lambda", r"\mu", r"\sigma",
         r"\phi", r"\omega", r"\pi", r"\rho", r"\tau")  # fmt: skip
FUNCTIONS = (r"\sin", r"\cos", r"\tan", r"\log", r"\ln", r"\exp", r"\sinh", r"\cosh", r"\arctan", r"\arcsin")
NAMED_FUNCTIONS = "fghFGHuvy"
OPERATORS = ("+", "-", "+", "-", r"\cdot", r"\times", r"\pm")
RELATIONS = ("=", "=", "=", "<", ">", r"\leq", r"\geq", r"\neq", r"\approx", r"\equiv", r"\sim", r"\propto")
MATRICES = ("pmatrix", "pmatrix", "bmatrix", "vmatrix", "Bmatrix", "matrix")
SETS = (
    r"\mathbb{R}",
    r"\mathbb{N}",
    r"\mathbb{Z}",
    r"\mathbb{Q}",
    r"\mathbb{C}",
    r"\mathbb{R}^n",
    r"\mathbb{R}^{n \times n}",
)
LIMIT_POINTS = ("0", "1", "a", r"\infty", r"-\infty", "0^+", "0^-", "x_0", r"\pi")


SHAPE_WEIGHTS = {
    "equation": 4, "relation": 2, "big_operator": 2, "integral": 2, "limit": 1.5, "binomial": 1,
    "matrix_equation": 2, "cases": 1.5, "set_statement": 1, "vector_statement": 1, "probability": 1,
    "derivative": 1.5, "norm_statement": 1,
}  # fmt: skip
"""The grammar's formula shapes and how often each is drawn."""


def generate_textbook_formulas(n: int, *, seed: int = 0, shapes: Sequence[str] | None = None) -> Iterator[str]:
    """Yield ``n`` distinct textbook-style formulas in plain LaTeX (deterministic for a ``seed``).

    ``shapes`` (names of ``SHAPE_WEIGHTS``) draws only those shapes, in their usual proportions; None: all.
    """
    grammar = _Grammar(random.Random(seed), shapes)
    seen: set[str] = set()
    for _ in range(20 * n + 100):
        if len(seen) == n:
            return
        formula = grammar.formula()
        if formula not in seen:
            seen.add(formula)
            yield formula
    raise RuntimeError(f"generated only {len(seen)} of {n} distinct formulas")


class _Grammar:
    """The random grammar; each method draws one piece of LaTeX."""

    def __init__(self, rng: random.Random, shapes: Sequence[str] | None = None) -> None:
        self.rng = rng
        names = list(SHAPE_WEIGHTS) if shapes is None else list(dict.fromkeys(shapes))
        unknown = [name for name in names if name not in SHAPE_WEIGHTS]
        if unknown or not names:
            raise ValueError(f"unknown or no textbook shapes {unknown}; choose among {', '.join(SHAPE_WEIGHTS)}")
        self.shapes: list[Callable[[], str]] = [getattr(self, name) for name in names]
        self.weights = [SHAPE_WEIGHTS[name] for name in names]

    def formula(self) -> str:
        return self.rng.choices(self.shapes, self.weights)[0]()

    def pick(self, *makers: Callable[[], str]) -> str:
        """Draw one of ``makers`` and call only that one."""
        return self.rng.choice(makers)()

    # ------------------------------------------------------------------ atoms

    def variable(self, scripts: bool = True) -> str:
        rng = self.rng
        name = rng.choice(rng.choice((LETTERS, LETTERS, CAPITALS, GREEK)))
        if scripts and rng.random() < 0.25:
            name += "_" + self.braced(rng.choice(("0", "1", "2", "i", "j", "k", "n", "ij", "n+1", "k-1", "x")))
        if scripts and rng.random() < 0.15:
            name += "^" + self.braced(rng.choice(("2", "3", "n", "-1", "T", "*", "k", "1/2")))
        return name

    def number(self) -> str:
        rng = self.rng
        return self.pick(lambda: str(rng.randint(0, 9)), lambda: str(rng.randint(2, 20)),
                         lambda: str(rng.randint(10, 999)), lambda: f"{rng.randint(0, 9)}.{rng.randint(1, 99)}")  # fmt: skip

    def braced(self, text: str) -> str:
        return text if len(text) == 1 else "{" + text + "}"

    def function_name(self) -> str:
        return self.rng.choice(NAMED_FUNCTIONS)

    # ------------------------------------------------------------------ expressions

    def term(self, depth: int = 0) -> str:
        rng = self.rng
        kinds: list[tuple[Callable[[], str], float]] = [
            (lambda: self.variable(), 4),
            (self.number, 2),
            (
                lambda: (
                    (self.number() if rng.random() < 0.5 else "")
                    + self.variable(False)
                    + "^"
                    + self.braced(rng.choice(("2", "3", "n", "k", "-1", "n+1", "2k")))
                ),
                2,
            ),
            (
                lambda: (
                    rng.choice(FUNCTIONS)
                    + (f" {self.variable(False)}" if rng.random() < 0.6 else f"({self.expression(depth + 1)})")
                ),
                2,
            ),
            (lambda: f"{self.function_name()}({self.variable(False)})", 1.5),
            (lambda: r"e^{" + self.expression(depth + 1) + "}", 0.7),
        ]
        if depth == 0:
            kinds.append((lambda: r"\frac{" + self.expression(1) + "}{" + self.expression(1) + "}", 3))
        if depth < 2:
            kinds += [
                (lambda: r"\frac{" + self.simple() + "}{" + self.simple() + "}", 1.5),
                (lambda: r"\sqrt{" + self.expression(depth + 1) + "}", 1.5),
                (lambda: r"\sqrt[" + rng.choice("3n") + "]{" + self.expression(depth + 1) + "}", 0.3),
                (lambda: "(" + self.expression(depth + 1) + ")" + rng.choice(("", "", "^2", "^n", "^{-1}")), 1.5),
                (lambda: r"\left(" + self.term(depth + 1) + r"\right)^{" + rng.choice("23n") + "}", 0.7),
                (lambda: "|" + self.expression(depth + 1) + "|", 0.8),
                (lambda: r"\binom{" + self.variable(False) + "}{" + self.variable(False) + "}", 0.6),
            ]
        makers, weights = zip(*kinds)
        return rng.choices(makers, weights)[0]()

    def simple(self) -> str:
        """A number, a variable or a short product: a fraction's numerator or denominator inside another."""
        rng = self.rng
        return self.pick(
            self.number, self.variable, lambda: self.number() + self.variable(False), lambda: "2" + rng.choice(GREEK)
        )

    def expression(self, depth: int = 0) -> str:
        rng = self.rng
        terms = [self.term(depth) for _ in range(rng.choice((1, 1, 2, 2, 3) if depth else (1, 2, 2, 3)))]
        text = ("-" if rng.random() < 0.1 else "") + terms[0]
        for term in terms[1:]:
            text += f" {rng.choice(OPERATORS)} {term}"
        return text

    def left_side(self) -> str:
        name = self.function_name()
        return self.pick(
            self.variable,
            self.variable,
            lambda: f"{name}({self.variable(False)})",
            lambda: f"{name}'({self.variable(False)})",
            lambda: f"{name}({self.variable(False)}, {self.variable(False)})",
        )

    # ------------------------------------------------------------------ formula shapes

    def equation(self) -> str:
        return f"{self.left_side()} = {self.expression()}"

    def relation(self) -> str:
        text = self.expression()
        for _ in range(self.rng.choice((1, 1, 2))):
            text += f" {self.rng.choice(RELATIONS)} {self.expression(1)}"
        return text

    def big_operator(self) -> str:
        rng = self.rng
        index = rng.choice("iknj")
        start, end = rng.choice((("1", "n"), ("0", r"\infty"), ("1", r"\infty"), ("0", "N"), ("1", "N-1"), ("2", "m")))
        operator = rng.choice((r"\sum", r"\sum", r"\prod", r"\bigcup", r"\bigcap"))
        body = self.pick(
            lambda: f"{self.variable(False)}_{index}",
            lambda: r"\frac{1}{" + index + "^" + rng.choice("23") + "}",
            lambda: f"{self.variable(False)}^{index}",
            lambda: "(" + self.expression(1) + ")",
            lambda: self.term(1),
        )
        limits = f"_{{{index}={start}}}^{{{end}}}" if rng.random() < 0.85 else f"_{{{index}}}"
        text = f"{operator}{limits} {body}"
        return f"{text} = {self.expression(1)}" if rng.random() < 0.6 else f"{self.left_side()} = {text}"

    def integral(self) -> str:
        rng = self.rng
        x = rng.choice("xtsuyz")
        bounds = self.pick(
            lambda: rng.choice(("", "_0^1", r"_{-\infty}^{\infty}", "_a^b")),
            lambda: "_0^{" + rng.choice(("x", r"\pi", "T", "2\\pi")) + "}",
        )
        operator = rng.choice((r"\int", r"\int", r"\int", r"\oint", r"\iint"))
        space = rng.choice((r" \, ", " "))
        text = f"{operator}{bounds} {self.expression(1)}{space}d{x}"
        return f"{text} = {self.expression(1)}" if rng.random() < 0.7 else f"{self.left_side()} = {text}"

    def limit(self) -> str:
        rng = self.rng
        x = rng.choice("xnth")
        arrow = rng.choice((r"\to", r"\to", r"\rightarrow"))
        value = self.pick(self.number, lambda: self.term(1), lambda: r"\infty")
        return rf"\lim_{{{x} {arrow} {rng.choice(LIMIT_POINTS)}}} {self.term(0)} = {value}"

    def binomial(self) -> str:
        rng = self.rng
        if rng.random() < 5 / 6:
            n, k = rng.choice((("n", "k"), ("n", "k-1"), ("n-1", "k"), ("m", "j"), ("2n", "n")))
        else:
            n, k = self.number(), self.number()
        binomial = rf"\binom{{{n}}}{{{k}}}"
        right = self.pick(
            lambda: r"\frac{" + n + "!}{" + k + "!(" + n + "-" + k + ")!}",
            lambda: self.expression(1),
            lambda: rf"\binom{{{n}}}{{{k}}} {rng.choice('+-')} \binom{{{n}}}{{{k}-1}}",
        )
        return f"{binomial} = {right}"

    def matrix(self) -> str:
        rng = self.rng
        rows, columns = rng.choice((2, 2, 3)), rng.choice((1, 2, 2, 3))
        name = rng.choice(LETTERS)
        entry = rng.choice(
            (
                lambda i, j: self.number(),
                lambda i, j: f"{name}_{{{i}{j}}}",
                lambda i, j: self.variable(False),
                lambda i, j: self.term(2),
            )
        )
        body = r" \\ ".join(" & ".join(entry(i, j) for j in range(1, columns + 1)) for i in range(1, rows + 1))
        kind = rng.choice(MATRICES)
        return rf"\begin{{{kind}}} {body} \end{{{kind}}}"

    def matrix_equation(self) -> str:
        rng = self.rng
        name = rng.choice(CAPITALS)
        left = rng.choice((name, name, f"{name}^T", f"{name}^{{-1}}", rf"\det {name}", rf"\det({name} - \lambda I)"))
        right = self.matrix()
        if rng.random() < 0.3:
            right += " " + rng.choice(("", r"\cdot ")) + self.matrix()
        return f"{left} = {right}"

    def cases(self) -> str:
        rng = self.rng
        x = self.variable(False)
        rows = [f"{self.expression(1)} & {self.condition(x)}" for _ in range(rng.choice((2, 2, 3)))]
        body = r" \\ ".join(rows)
        return rf"{self.function_name()}({x}) = \begin{{cases}} {body} \end{{cases}}"

    def condition(self, x: str) -> str:
        """A ``cases`` row's condition on ``x``."""
        rng = self.rng
        relation = rng.choice(("<", ">", r"\leq", r"\geq", r"\neq", "="))
        return self.pick(
            lambda: f"{x} {relation} {self.number()}",
            lambda: rf"\text{{if }} {x} {relation} {self.number()}",
            lambda: rf"{x} \in {rng.choice(SETS)}",
            lambda: r"\text{otherwise}",
            lambda: rf"{x} \text{{ even}}",
        )

    def set_statement(self) -> str:
        rng = self.rng
        x, a, b = self.variable(False), rng.choice(CAPITALS), rng.choice(CAPITALS)
        return self.pick(
            lambda: rf"{a} \cup {b} = \{{ {x} : {x} \in {a} \text{{ or }} {x} \in {b} \}}",
            lambda: rf"{a} \cap {b} = \emptyset",
            lambda: rf"\{{ {x} \in {rng.choice(SETS)} : {self.relation()} \}}",
            lambda: rf"{self.function_name()} : {rng.choice(SETS)} \to {rng.choice(SETS)}",
            lambda: rf"\forall {x} \in {rng.choice(SETS)}, \; {self.relation()}",
            lambda: rf"\exists {x} \in {a} : {self.relation()}",
            lambda: rf"{a} \subseteq {b} \Rightarrow |{a}| \leq |{b}|",
        )

    def vector(self) -> str:
        return self.rng.choice((r"\mathbf{", r"\vec{")) + self.rng.choice(LETTERS) + "}"

    def vector_statement(self) -> str:
        rng = self.rng
        u, v = self.vector(), self.vector()
        return self.pick(
            lambda: rf"{u} \cdot {v} = {self.expression(1)}",
            lambda: rf"{u} \times {v} = {self.expression(1)}",
            lambda: rf"{u} = {self.expression(1)} {v}",
            lambda: rf"\nabla {rng.choice(OPERATORS[4:6])} {u} = {self.expression(1)}",
            lambda: rf"{u} = ({self.term(2)}, {self.term(2)}, {self.term(2)})",
        )

    def probability(self) -> str:
        rng = self.rng
        a, b = rng.choice(CAPITALS), rng.choice(CAPITALS)
        return self.pick(
            lambda: rf"P({a} \mid {b}) = \frac{{P({a} \cap {b})}}{{P({b})}}",
            lambda: rf"P({a} = {rng.choice('kxn')}) = {self.expression()}",
            lambda: rf"\mathbb{{E}}[{a}] = {self.expression()}",
            lambda: rf"\operatorname{{Var}}({a}) = {self.expression()}",
            lambda: rf"{a} \sim \mathcal{{N}}(\mu, \sigma^2)",
        )

    def derivative(self) -> str:
        rng = self.rng
        f, x = self.function_name(), rng.choice("xtyz")
        order = rng.choice(("", "", "^2"))
        left = self.pick(
            lambda: rf"\frac{{d{order} {f}}}{{d{x}{order}}}",
            lambda: rf"\frac{{\partial{order} {f}}}{{\partial {x}{order}}}",
            lambda: f"{f}'({x})",
            lambda: rf"{f}^{{\prime\prime}}({x})",
            lambda: rf"\frac{{d}}{{d{x}}} {self.term(1)}",
        )
        return f"{left} = {self.expression()}"

    def norm_statement(self) -> str:
        rng = self.rng
        u, v = self.variable(False), self.variable(False)
        return self.pick(
            lambda: rf"\|{u} + {v}\| \leq \|{u}\| + \|{v}\|",
            lambda: rf"\|{u}\|_{rng.choice('12')} = {self.expression(1)}",
            lambda: rf"|\langle {u}, {v} \rangle| \leq \|{u}\| \, \|{v}\|",
            lambda: rf"\|{u}\| = \sqrt{{{self.expression(1)}}}",
        )
