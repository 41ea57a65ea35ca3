"""The in-process fast path: exact rational arithmetic and float probing of an answer AST, no sympy.

Key idea: most real answers are numbers (GSM8K: all of them; MATH: about 70%). Those are evaluated exactly
as Gaussian rationals (``fractions.Fraction`` pairs), so ``0.5 == 1/2 == 50%`` is decided exactly and
``0.5000001 != 0.5``. Everything else (``\\sqrt{2}``, ``\\pi``, ``x``) is probed with complex floats: values
that differ are rejected at once; only answers that *agree* numerically but are not both rational go to the
sympy worker (:mod:`rewards.math.symbolic`) for an exact decision. When one side is a decimal written by
hand and the other is irrational, a relative tolerance (default 1e-9) decides, as a grader would.

Every operation is bounded *before* it runs: exponents above :data:`MAX_EXPONENT`, results above
:data:`MAX_BITS`, factorials above :data:`MAX_FACTORIAL` raise :class:`TooLarge` (the answer scores 0), so
``9**9**9**9`` and ``10^{10^{10^{10}}}`` cost microseconds.

Left out on purpose: no exact algebraic numbers beyond perfect-power roots (``\\sqrt{8}`` vs ``2\\sqrt{2}`` is
settled by the sympy worker).
"""

from __future__ import annotations

import cmath
import math
from fractions import Fraction
from typing import Any

__all__ = ["MAX_BITS", "MAX_EXPONENT", "MAX_FACTORIAL", "FastComparator", "NotExact", "TooLarge", "exact"]

Node = tuple[Any, ...]
Exact = tuple[Fraction, Fraction]  # a Gaussian rational (re, im)

MAX_BITS = 20_000
"""Largest numerator / denominator the exact path builds (about 6,000 digits)."""
MAX_EXPONENT = 10_000
"""Largest exponent magnitude accepted anywhere (exactly or numerically); larger powers are refused."""
MAX_FACTORIAL = 1_000
"""Largest factorial argument accepted."""
_FLOAT_LIMIT = 1e300
_ZERO = Fraction(0)


class NotExact(Exception):
    """The node has no exact rational value (irrational, symbolic or undefined)."""


class TooLarge(ValueError):
    """The answer asks for a number too large to build (power tower, huge factorial)."""


def _check(q: Fraction) -> Fraction:
    if q.numerator.bit_length() > MAX_BITS or q.denominator.bit_length() > MAX_BITS:
        raise TooLarge("exact value too large")
    return q


def _num(text: str) -> Fraction:
    _mantissa, _, exp = text.lower().partition("e")
    if exp and abs(int(exp)) > 400:
        raise TooLarge(f"exponent {exp} in {text}")
    return _check(Fraction(text))


def _mul(a: Exact, b: Exact) -> Exact:
    return (_check(a[0] * b[0] - a[1] * b[1]), _check(a[0] * b[1] + a[1] * b[0]))


def _inv(a: Exact) -> Exact:
    d = a[0] * a[0] + a[1] * a[1]
    if d == 0:
        raise NotExact("division by zero")
    return (a[0] / d, -a[1] / d)


def _int_root(n: int, k: int) -> int | None:
    r = round(n ** (1.0 / k)) if n.bit_length() < 1000 else None
    if r is None:
        return None
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**k == n:
            return c
    return None


def _pow(base: Exact, exp: Exact) -> Exact:
    if exp[1] != 0:
        raise NotExact("complex exponent")
    e = exp[0]
    if abs(e) > MAX_EXPONENT:
        raise TooLarge(f"exponent {e}")
    if e.denominator != 1:
        return _root(base, e)
    bits = max(
        base[0].numerator.bit_length(),
        base[0].denominator.bit_length(),
        base[1].numerator.bit_length(),
        base[1].denominator.bit_length(),
    )
    if bits * abs(e) > MAX_BITS * 2:
        raise TooLarge(f"power with {bits * abs(e)} bits")
    result: Exact = (Fraction(1), _ZERO)
    factor = base if e >= 0 else _inv(base)
    n = abs(int(e))
    while n:  # square-and-multiply keeps Gaussian rationals exact
        if n & 1:
            result = _mul(result, factor)
        factor = _mul(factor, factor) if n > 1 else factor
        n >>= 1
    return result


def _root(base: Exact, e: Fraction, real_odd: bool = False) -> Exact:
    """``base ** (p/q)`` when ``base`` is a rational perfect ``q``-th power.

    With ``real_odd`` (the radical ``\\sqrt[3]{-8}``), an odd root of a negative number is the real one.
    """
    if real_odd and base[1] == 0 and base[0] < 0 and e.denominator % 2 == 1:
        positive = _root((-base[0], _ZERO), e)
        return (-positive[0], _ZERO)
    if base[1] != 0 or base[0] < 0 or e.denominator > 64:
        raise NotExact("irrational root")
    q = e.denominator
    num, den = _int_root(base[0].numerator, q), _int_root(base[0].denominator, q)
    if num is None or den is None:
        raise NotExact("irrational root")
    return _pow((Fraction(num, den), _ZERO), (Fraction(e.numerator), _ZERO))


def _real_int(v: Exact, what: str) -> int:
    if v[1] != 0 or v[0].denominator != 1:
        raise NotExact(f"{what} of a non-integer")
    return int(v[0])


def exact(node: Node) -> Exact:  # noqa: C901 - a flat dispatch over node kinds
    """The exact Gaussian-rational value of a scalar node.

    Raises:
        NotExact: If the value is not a (Gaussian) rational we can compute exactly.
        TooLarge: If computing it would exceed the size bounds.

    Example:
        >>> exact(("div", ("num", "3"), ("num", "0.75")))
        (Fraction(4, 1), Fraction(0, 1))
    """
    tag = node[0]
    if tag == "num":
        return (_num(node[1]), _ZERO)
    if tag == "const" and node[1] == "I":
        return (_ZERO, Fraction(1))
    if tag == "neg":
        v = exact(node[1])
        return (-v[0], -v[1])
    if tag == "add":
        re_, im = _ZERO, _ZERO
        for child in node[1]:
            v = exact(child)
            re_, im = _check(re_ + v[0]), _check(im + v[1])
        return (re_, im)
    if tag == "mul":
        acc: Exact = (Fraction(1), _ZERO)
        for child in node[1]:
            acc = _mul(acc, exact(child))
        return acc
    if tag == "div":
        return _mul(exact(node[1]), _inv(exact(node[2])))
    if tag == "pow":
        return _pow(exact(node[1]), exact(node[2]))
    if tag == "root":
        n = _real_int(exact(node[2]), "root index")
        if n <= 0 or n > 64:
            raise NotExact("root index")
        return _root(exact(node[1]), Fraction(1, n), real_odd=True)
    if tag == "pct":
        v = exact(node[1])
        return (v[0] / 100, v[1] / 100)
    if tag in ("fact", "binom"):
        return (Fraction(_combinatorial(node)), _ZERO)
    if tag == "abs":
        v = exact(node[1])
        if v[1] != 0:
            raise NotExact("modulus of a complex number")
        return (abs(v[0]), _ZERO)
    raise NotExact(tag)


def _combinatorial(node: Node) -> int:
    if node[0] == "fact":
        n = _real_int(exact(node[1]), "factorial")
        if n < 0:
            raise NotExact("negative factorial")
        if n > MAX_FACTORIAL:
            raise TooLarge(f"factorial of {n}")
        return math.factorial(n)
    n, k = _real_int(exact(node[1]), "binomial"), _real_int(exact(node[2]), "binomial")
    if n > 4 * MAX_FACTORIAL:
        raise TooLarge(f"binomial of {n}")
    return math.comb(n, k) if k >= 0 and n >= 0 else 0


# -- float probing -----------------------------------------------------------------------------------------

_FUNCS = {
    "sin": cmath.sin,
    "cos": cmath.cos,
    "tan": cmath.tan,
    "sinh": cmath.sinh,
    "cosh": cmath.cosh,
    "tanh": cmath.tanh,
    "arcsin": cmath.asin,
    "arccos": cmath.acos,
    "arctan": cmath.atan,
    "exp": cmath.exp,
    "ln": cmath.log,
    "sec": lambda z: 1 / cmath.cos(z),
    "csc": lambda z: 1 / cmath.sin(z),
    "cot": lambda z: 1 / cmath.tan(z),
}
_CONSTS = {"pi": math.pi, "E": math.e, "I": 1j, "oo": math.inf}


def numeric(node: Node, env: dict[str, complex]) -> complex:  # noqa: C901 - flat dispatch
    """Evaluates a scalar node in complex floating point, symbols taken from ``env``.

    Raises:
        NotExact: For nodes without a scalar value, or on overflow / domain errors.
        TooLarge: For refused powers and factorials.
    """
    tag = node[0]
    try:
        if tag == "num":
            return complex(float(_num(node[1])))
        if tag == "const" and node[1] in _CONSTS:
            return complex(_CONSTS[node[1]])
        if tag == "sym":
            return env[node[1]]
        if tag == "neg":
            return 0j - numeric(node[1], env)  # not -z: -(8+0j) has imaginary part -0.0, the other branch
        if tag == "add":
            return sum((numeric(c, env) for c in node[1]), 0j)
        if tag == "mul":
            return math.prod((numeric(c, env) for c in node[1]), start=1 + 0j)
        if tag == "div":
            return numeric(node[1], env) / numeric(node[2], env)
        if tag == "pow":
            return _numeric_pow(numeric(node[1], env), numeric(node[2], env))
        if tag == "root":
            return _numeric_root(numeric(node[1], env), numeric(node[2], env))
        if tag == "pct":
            return numeric(node[1], env) / 100
        if tag == "abs":
            return complex(abs(numeric(node[1], env)))
        if tag in ("fact", "binom"):
            return complex(float(_combinatorial(node)))
        if tag == "func":
            return _numeric_func(node, env)
    except (ZeroDivisionError, OverflowError, ValueError) as exc:
        if isinstance(exc, TooLarge):
            raise
        raise NotExact(str(exc)) from None
    raise NotExact(tag)


def _numeric_pow(base: complex, exp: complex) -> complex:
    base = complex(base.real, base.imag + 0.0)  # -0.0 -> 0.0: stay on the principal branch
    if abs(exp) > MAX_EXPONENT:
        raise TooLarge("exponent")
    if exp.imag == 0 and exp.real == int(exp.real) and base.imag == 0:
        return complex(base.real ** int(exp.real))
    if base.imag == 0 and base.real >= 0 and exp.imag == 0:
        return complex(base.real**exp.real)
    return base**exp


def _numeric_root(base: complex, index: complex) -> complex:
    """The radical ``\\sqrt[n]{base}``: real for an odd ``n`` and a negative real ``base``."""
    if base.imag == 0 and base.real < 0 and index.imag == 0 and index.real % 2 == 1:
        return complex(-((-base.real) ** (1 / index.real)))
    return _numeric_pow(base, 1 / index)


def _numeric_func(node: Node, env: dict[str, complex]) -> complex:
    _, name, arg, base = node
    x = numeric(arg, env)
    if name in ("log", "lg") and base is not None:
        return cmath.log(x) / cmath.log(numeric(base, env))
    if name == "lg":
        return cmath.log10(x)
    if name == "log":  # \log without a base: natural log (MATH convention); log10 is written \log_{10}
        return cmath.log(x)
    return _FUNCS[name](x)


def free_symbols(node: Node) -> set[str]:
    """Names of the symbols in a node."""
    if node[0] == "sym":
        return {node[1]}
    out: set[str] = set()
    for child in node[1:]:
        if isinstance(child, tuple):
            if child and isinstance(child[0], str):
                out |= free_symbols(child)
            else:
                for c in child:
                    if isinstance(c, tuple):
                        out |= free_symbols(c)
    return out


def has_decimal(node: Node) -> bool:
    """True when the node contains a decimal literal (a hand-rounded, inexact value)."""
    if node[0] == "num":
        return "." in node[1] or "e" in node[1].lower()
    return any(
        isinstance(c, tuple)
        and c
        and (
            has_decimal(c)
            if isinstance(c[0], str)
            else any(isinstance(x, tuple) and has_decimal(x) for x in c)
        )
        for c in node[1:]
    )


def close(a: complex, b: complex, rel_tol: float) -> bool:
    """Relative closeness of complex values (with a tiny absolute floor near zero)."""
    if any(map(math.isinf, (a.real, a.imag, b.real, b.imag))):
        return a == b
    return abs(a - b) <= max(rel_tol * max(abs(a), abs(b)), 1e-12)


def _points(names: set[str]) -> list[dict[str, complex]]:
    """Two deterministic probe points, different per symbol, away from the usual special values."""
    points = []
    for shift in (0.0, 0.5):
        env = {}
        for name in names:
            h = sum((k + 1) * ord(c) for k, c in enumerate(name))
            env[name] = complex(0.3 + ((h * 0.6180339887 + shift) % 1.0) * 1.4)
        points.append(env)
    return points


class FastComparator:
    """Scalar equivalence without sympy: ``True``/``False`` when sure, ``None`` to defer to the worker."""

    def __init__(self, rel_tol: float = 1e-9) -> None:
        self.rel_tol = rel_tol

    def scalar(self, g: Node, p: Node) -> bool | None:
        if g == p:
            return True
        ge, pe = _try_exact(g), _try_exact(p)
        if ge is not None and pe is not None:
            return ge == pe
        names = free_symbols(g) | free_symbols(p)
        if not names:
            gn, pn = _try_numeric(g, {}), _try_numeric(p, {})
            if gn is None or pn is None:
                return None
            if not close(gn, pn, 1e-6) or math.isinf(abs(gn)) or math.isinf(abs(pn)):
                return close(gn, pn, 1e-6)
            if (ge is None and has_decimal(p)) or (pe is None and has_decimal(g)):
                return close(gn, pn, self.rel_tol)
            return None
        if free_symbols(g) != free_symbols(p):
            return None if _try_equal_points(g, p, names) is not False else False
        return _try_equal_points(g, p, names)

    def proportional(self, a: Node, b: Node) -> bool | None:
        """``a = c * b`` for a non-zero constant ``c`` (equations compared as relations)."""
        names = free_symbols(a) | free_symbols(b)
        ratios = []
        for env in _points(names):
            an, bn = _try_numeric(a, env), _try_numeric(b, env)
            if an is None or bn is None or bn == 0:
                return None
            ratios.append(an / bn)
        return None if close(ratios[0], ratios[1], 1e-6) and ratios[0] != 0 else False


def _try_exact(node: Node) -> Exact | None:
    try:
        return exact(node)
    except NotExact:
        return None


def _try_numeric(node: Node, env: dict[str, complex]) -> complex | None:
    try:
        v = numeric(node, env)
    except NotExact:
        return None
    if math.isnan(v.real) or math.isnan(v.imag) or (abs(v) > _FLOAT_LIMIT and not math.isinf(abs(v))):
        return None
    return v


def _try_equal_points(g: Node, p: Node, names: set[str]) -> bool | None:
    for env in _points(names):
        gn, pn = _try_numeric(g, env), _try_numeric(p, env)
        if gn is None or pn is None:
            return None
        if not close(gn, pn, 1e-6):
            return False
    return None
