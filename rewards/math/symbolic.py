"""The exact slow path: our AST -> sympy objects built by constructor, then symbolic equivalence.

Key idea: sympy never parses text here. Each AST node becomes ``sympy.Integer``/``Rational``/``Symbol``/
``Add``/``Mul``/``Pow``/``sqrt``/``log``/... directly, after the same size bounds as the fast path (a
constant exponent above :data:`rewards.math.fast.MAX_EXPONENT` or a factorial above
:data:`rewards.math.fast.MAX_FACTORIAL` is refused before sympy sees it). Constant expressions are compared
at 50 significant digits; expressions with symbols by ``expand``, then ``simplify``, then ``equals``.

This module imports sympy at import time and is only imported inside the worker processes of
:mod:`rewards.math.pool`, where a hang or a memory blow-up costs one killable process.

Left out on purpose: no assumptions on symbols (``\\sqrt{x^2}`` is not ``x``), so a grader's "for
positive x" shortcuts are not taken.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from rewards.math.fast import (
    MAX_EXPONENT,
    MAX_FACTORIAL,
    FastComparator,
    NotExact,
    TooLarge,
    exact,
    free_symbols,
    numeric,
)

__all__ = ["SympyComparator", "to_sympy"]

Node = tuple[Any, ...]
_CONSTS = {"pi": sp.pi, "E": sp.E, "I": sp.I, "oo": sp.oo}
_FUNCS = {
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "sec": sp.sec,
    "csc": sp.csc,
    "cot": sp.cot,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "arcsin": sp.asin,
    "arccos": sp.acos,
    "arctan": sp.atan,
    "exp": sp.exp,
    "ln": sp.log,
    "log": sp.log,
}


def _bounded_exponent(node: Node) -> None:
    """Refuses constant exponents / factorial arguments that are too large, before sympy builds them."""
    if free_symbols(node):
        return
    try:
        value = abs(numeric(node, {}))
    except NotExact:
        return
    if value > MAX_EXPONENT:
        raise TooLarge("exponent")


def to_sympy(node: Node) -> Any:  # noqa: C901 - a flat dispatch over node kinds
    """Builds the sympy object of a scalar AST node (no parsing, no ``sympify``).

    Raises:
        NotExact: For nodes that have no scalar value (collections, text).
        TooLarge: For refused powers and factorials.

    Example:
        >>> to_sympy(("add", (("root", ("num", "8"), ("num", "2")), ("num", "1"))))
        1 + 2*sqrt(2)
    """
    tag = node[0]
    if tag == "num":
        q = exact(node)[0]
        return sp.Rational(q.numerator, q.denominator)
    if tag == "sym":
        return sp.Symbol(node[1])
    if tag == "const" and node[1] in _CONSTS:
        return _CONSTS[node[1]]
    if tag == "neg":
        return -to_sympy(node[1])
    if tag == "add":
        return sp.Add(*(to_sympy(c) for c in node[1]))
    if tag == "mul":
        return sp.Mul(*(to_sympy(c) for c in node[1]))
    if tag == "div":
        return sp.Mul(to_sympy(node[1]), sp.Pow(to_sympy(node[2]), -1))
    if tag == "pow":
        _bounded_exponent(node[2])
        return sp.Pow(to_sympy(node[1]), to_sympy(node[2]))
    if tag == "root":
        _bounded_exponent(node[2])
        arg, index = to_sympy(node[1]), to_sympy(node[2])
        if index.is_Integer and index % 2 == 1 and arg.is_negative:
            return -sp.root(-arg, index)  # \\sqrt[3]{-8} = -2, the real root
        return sp.root(arg, index)
    if tag == "pct":
        return to_sympy(node[1]) / 100
    if tag == "func":
        arg = to_sympy(node[2])
        if node[1] == "lg":
            return sp.log(arg, 10)
        return _FUNCS[node[1]](arg) if node[3] is None else sp.log(arg, to_sympy(node[3]))
    if tag == "fact":
        _bounded_exponent(node[1])
        if not free_symbols(node[1]) and abs(numeric(node[1], {})) > MAX_FACTORIAL:
            raise TooLarge("factorial")
        return sp.factorial(to_sympy(node[1]))
    if tag == "binom":
        _bounded_exponent(node[1])
        return sp.binomial(to_sympy(node[1]), to_sympy(node[2]))
    if tag == "abs":
        return sp.Abs(to_sympy(node[1]))
    if tag in ("floor", "ceil"):
        return (sp.floor if tag == "floor" else sp.ceiling)(to_sympy(node[1]))
    raise NotExact(tag)


def _is_zero(d: Any) -> bool:
    if d == 0:
        return True
    if not d.free_symbols:
        value = sp.N(d, 50)
        return bool(value.is_number and abs(value) < sp.Float("1e-40"))
    if sp.expand(d) == 0:
        return True
    if sp.simplify(d) == 0:
        return True
    return bool(d.equals(0))


class SympyComparator(FastComparator):
    """Scalar equivalence that always decides: the fast path first, sympy for what it leaves open."""

    def scalar(self, g: Node, p: Node) -> bool:
        quick = super().scalar(g, p)
        if quick is not None:
            return quick
        try:
            a, b = to_sympy(g), to_sympy(p)
        except NotExact:
            return False
        if a.has(sp.zoo, sp.nan) or b.has(sp.zoo, sp.nan):
            return False
        scale = 1
        if not (a.free_symbols or b.free_symbols):
            scale = max(1, abs(sp.N(a, 30)))  # relative comparison for constants
        return _is_zero(sp.Add(a, -b) / scale)

    def proportional(self, a: Node, b: Node) -> bool:
        quick = super().proportional(a, b)
        if quick is not None:
            return quick
        try:
            x, y = to_sympy(a), to_sympy(b)
        except NotExact:
            return False
        if y == 0:
            return x == 0
        ratio = sp.simplify(x / y)
        return bool(not ratio.free_symbols and ratio.is_finite and ratio != 0)
