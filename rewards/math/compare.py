"""Structural equivalence of two answer ASTs: tuples, sets, intervals, equations, matrices, percent, text.

Key idea: this layer knows *shapes* (ordered tuple vs unordered solution list, ``[2,5)`` vs ``2 \\le x < 5``,
``x = 5`` vs ``5``, ``10\\%`` vs ``0.1``) and delegates every scalar question to a comparator: the in-process
:class:`rewards.math.fast.FastComparator` or the sympy one in a worker. Answers are three-valued: ``True``,
``False`` or ``None`` ("the fast path cannot tell; ask the worker"), combined with Kleene logic.

A prediction that is a list where the gold is a single value is right only when *every* element is (so two
boxes ``x=2`` and ``2`` count, while a hedge ``4 or 5`` does not).

Left out on purpose: no unit conversion, no equivalence of differently-named variables (``y = 2x`` vs
``v = 2u``), no partial credit for multi-part answers.
"""

from __future__ import annotations

from typing import Any, Protocol

from rewards.math.fast import free_symbols

__all__ = ["Comparator", "equivalent"]

Node = tuple[Any, ...]
Tri = bool | None
_COLLECTIONS = frozenset({"list", "set", "tuple", "interval", "union", "matrix", "rel", "in", "pm"})
_NEG_OO: Node = ("neg", ("const", "oo"))
_POS_OO: Node = ("const", "oo")


class Comparator(Protocol):
    """Decides scalar questions; ``None`` means undecided."""

    def scalar(self, g: Node, p: Node) -> Tri: ...

    def proportional(self, a: Node, b: Node) -> Tri: ...


def _all(values: Any) -> Tri:
    seen_none = False
    for v in values:
        if v is False:
            return False
        seen_none |= v is None
    return None if seen_none else True


def _any(values: Any) -> Tri:
    seen_none = False
    for v in values:
        if v is True:
            return True
        seen_none |= v is None
    return None if seen_none else False


def _is_symbolish(node: Node) -> bool:
    return (
        node[0] == "sym"
        or (node[0] == "mul" and all(c[0] == "sym" for c in node[1]))
        or (node[0] == "func" and node[2][0] == "sym")
    )


def _value_of(node: Node) -> Node:
    """``x = 5`` -> ``5``; ``AB = ...``, ``2+3 = 5`` likewise; ``x \\in S`` -> ``S``; ``a \\pm b`` inside an
    expression -> the list of both branches."""
    if node[0] == "eq" and _is_symbolish(node[2]) and not _is_symbolish(node[1]):  # 5 = x
        node = node[1]
    elif node[0] == "eq" and (_is_symbolish(node[1]) or not free_symbols(node[1])):
        node = node[2]
    if node[0] == "in" and node[1][0] == "sym" and node[2][0] in ("set", "list", "tuple"):
        return ("set", node[2][1])
    if node[0] not in _COLLECTIONS and _has_pm(node):
        branches = _expand_pm(node)
        return ("list", tuple(branches)) if len(branches) <= 16 else node
    return node


def _children(node: Node) -> list[Node]:
    out: list[Node] = []
    for c in node[1:]:
        if isinstance(c, tuple) and c:
            out += [c] if isinstance(c[0], str) else [x for x in c if isinstance(x, tuple)]
    return out


def _has_pm(node: Node) -> bool:
    return node[0] == "pm" or any(_has_pm(c) for c in _children(node))


def _expand_pm(node: Node) -> list[Node]:
    """All sign choices of the ``\\pm`` inside a scalar expression (``\\frac{-1 \\pm \\sqrt5}{2}``)."""
    if node[0] == "pm":
        return [("add", (a, s)) for a in _expand_pm(node[1]) for s in (node[2], ("neg", node[2]))][:17]
    out: list[Node] = [node[:1]]
    for child in node[1:]:
        if isinstance(child, tuple) and child and isinstance(child[0], str):
            options: list = _expand_pm(child)
        elif isinstance(child, tuple) and child and isinstance(child[0], tuple):
            options = [tuple(x) for x in _product_lists([_expand_pm(c) for c in child])]
        else:
            options = [child]
        out = [(*prefix, opt) for prefix in out for opt in options][:17]  # nested \pm: never more than 17
        if len(out) > 16:
            return out
    return out


def _product_lists(lists: list[list[Node]]) -> list[list[Node]]:
    acc: list[list[Node]] = [[]]
    for options in lists:
        acc = [[*a, o] for a in acc for o in options][:17]
    return acc


def _interval_from_rel(node: Node) -> Node | None:
    """``2 \\le x < 5`` -> ``[2, 5)``; ``x > 3`` -> ``(3, oo)``; ``x \\in [a, b]`` -> ``[a, b]``."""
    if node[0] == "in" and node[1][0] == "sym":
        return node[2]
    if node[0] != "rel":
        return None
    exprs, ops = node[1], node[2]
    if ops == ("!=",) and exprs[0][0] == "sym":  # x != 3: everything but one point
        return ("union", (("interval", False, _NEG_OO, exprs[1], False),
                          ("interval", False, exprs[1], _POS_OO, False)))
    if "!=" in ops:
        return None
    if len(exprs) == 3 and exprs[1][0] == "sym" and len(set(o[0] for o in ops)) == 1:
        lo, hi = (exprs[0], exprs[2]) if ops[0][0] == "<" else (exprs[2], exprs[0])
        lo_op, hi_op = (ops[0], ops[1]) if ops[0][0] == "<" else (ops[1], ops[0])
        return ("interval", lo_op.endswith("="), lo, hi, hi_op.endswith("="))
    if len(exprs) == 2:
        (a, b), op = exprs, ops[0]
        if a[0] == "sym" and b[0] != "sym":
            var_less = op[0] == "<"
            bound = b
        elif b[0] == "sym":
            var_less = op[0] == ">"
            bound = a
        else:
            return None
        closed = op.endswith("=")
        return (
            ("interval", False, _NEG_OO, bound, closed)
            if var_less
            else ("interval", closed, bound, _POS_OO, False)
        )
    return None


def _as_intervals(node: Node) -> list[Node] | None:
    """A set of reals as a list of intervals (union members), or ``None`` if it is not one."""
    tag = node[0]
    if tag == "interval":
        return [node]
    if tag == "tuple" and len(node[1]) == 2:
        return [("interval", False, node[1][0], node[1][1], False)]
    if tag == "const" and node[1] == "reals":
        return [("interval", False, _NEG_OO, _POS_OO, False)]
    if tag in ("rel", "in"):
        conv = _interval_from_rel(node)
        return None if conv is None or conv == node else _as_intervals(conv)
    if tag in ("union", "list"):
        out: list[Node] = []
        for child in node[1]:
            part = _as_intervals(child)
            if part is None:
                return None
            out += part
        return out
    return None


def _interval_equal(g: Node, p: Node, cmp: Comparator) -> Tri:
    checks: list[Tri] = []
    for closed_g, end_g, closed_p, end_p in ((g[1], g[2], p[1], p[2]), (g[4], g[3], p[4], p[3])):
        infinite = end_g[1:] == ("oo",) or end_g == _NEG_OO
        if not infinite and closed_g != closed_p:
            return False
        checks.append(_scalar(end_g, end_p, cmp))
    return _all(checks)


def _matching(gs: tuple[Node, ...] | list[Node], ps: tuple[Node, ...] | list[Node], eq: Any) -> Tri:
    """Unordered comparison: a perfect matching between gold and predicted elements."""
    if len(gs) != len(ps):
        return False
    table = [[eq(g, p) for p in ps] for g in gs]
    if any(v is None for row in table for v in row) and not _has_matching(table, strict=True):
        return None if _has_matching(table, strict=False) else False
    return _has_matching(table, strict=True)


def _has_matching(table: list[list[Tri]], strict: bool) -> bool:
    """Kuhn's augmenting paths; ``strict`` counts only ``True`` cells, else ``None`` cells too."""
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j, v in enumerate(table[i]):
            if (v is True or (not strict and v is None)) and j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(augment(i, set()) for i in range(len(table)))


def _elements(node: Node) -> tuple[Node, ...] | None:
    if node[0] in ("list", "set"):
        return tuple(e for child in node[1] for e in (_elements(child) if child[0] == "pm" else (child,)))
    if node[0] == "tuple":
        return node[1]
    if node[0] == "pm":
        return (("add", (node[1], node[2])), ("add", (node[1], ("neg", node[2]))))
    if node[0] == "const" and node[1] == "empty":
        return ()
    return None


def _text_of(node: Node) -> str | None:
    if node[0] in ("text", "choice"):
        return node[1].casefold() if node[0] == "text" else node[1]
    if node[0] == "sym" and len(node[1]) == 1:
        return node[1]
    return None


def _scalar(g: Node, p: Node, cmp: Comparator) -> Tri:
    if p[0] in _COLLECTIONS or g[0] in _COLLECTIONS or "text" in (g[0], p[0]) or "choice" in (g[0], p[0]):
        return False
    if g[0] == "base" or p[0] == "base":
        return _base_equal(g, p)
    if g[0] == "pct" and p[0] != "pct":
        return _any((cmp.scalar(g[1], p), cmp.scalar(("div", g[1], ("num", "100")), p)))
    if p[0] == "pct" and g[0] != "pct":
        return _any((cmp.scalar(g, p[1]), cmp.scalar(g, ("div", p[1], ("num", "100")))))
    return cmp.scalar(g, p)


def _base_equal(g: Node, p: Node) -> bool:
    """``204_5``: a prediction without a base must show the gold's digits (it answers in the asked base); a
    prediction with a base must name the same number (``40_9`` is 36, not the decimal gold 40)."""
    if g[0] == "base" and p[0] == "base":
        return g[1].lstrip("0") == p[1].lstrip("0") and g[2] == p[2]
    if g[0] == "base":
        return p[0] == "num" and p[1].lstrip("0") == g[1].lstrip("0")
    value_p = _base_value(p[1], p[2])
    return value_p is not None and g[0] == "num" and g[1].isdigit() and int(g[1]) == value_p


def _base_value(digits: str, base: str) -> int | None:
    try:
        return int(digits, int(base)) if base.isdigit() and 2 <= int(base) <= 36 else None
    except ValueError:
        return None


def equivalent(gold: Node, pred: Node, cmp: Comparator) -> Tri:
    """Whether ``pred`` states the same answer as ``gold``.

    Args:
        gold: The gold answer's AST.
        pred: The prediction's AST.
        cmp: The scalar comparator.

    Returns:
        ``True``, ``False``, or ``None`` when ``cmp`` could not decide a scalar question.

    Example:
        >>> from rewards.math.fast import FastComparator
        >>> from rewards.math.parser import parse
        >>> equivalent(parse("[2,5)"), parse(r"2 \\le x < 5"), FastComparator())
        True
    """
    if pred[0] == "list" and _elements(gold) is None and _as_intervals(gold) is None:
        return _all(_equal(gold, p, cmp, 0) for p in pred[1])
    return _equal(gold, pred, cmp, 0)


def _equal(g: Node, p: Node, cmp: Comparator, depth: int) -> Tri:  # noqa: C901 - one case per shape
    if depth > 20:
        return False
    if g[0] == "eq" and p[0] == "eq":
        if g[1] == p[1]:
            return _equal(g[2], p[2], cmp, depth + 1)
        diff_g, diff_p = ("add", (g[1], ("neg", g[2]))), ("add", (p[1], ("neg", p[2])))
        return cmp.proportional(diff_g, diff_p)
    g, p = _value_of(g), _value_of(p)
    if (g[0] == "eq") != (p[0] == "eq"):
        return False  # a relation such as 5x - 7y + 11z + 4 = 0 is not a value
    text_g = _text_of(g)
    if g[0] in ("text", "choice") or (p[0] in ("text", "choice") and text_g is not None):
        text_p = _text_of(p)
        return text_p is not None and text_g is not None and text_g == text_p
    if g[0] == "matrix":
        return _matrix_equal(g, p, cmp, depth)
    as_set = g[0] not in ("tuple", "list") or (g[0] == "tuple" and p[0] in ("rel", "in", "interval", "union"))
    intervals_g = _as_intervals(g) if as_set else None
    if intervals_g is not None:
        intervals_p = _as_intervals(p)
        if intervals_p is None:
            return False
        return _matching(intervals_g, intervals_p, lambda a, b: _interval_equal(a, b, cmp))
    elems_g = _elements(g)
    if elems_g is not None:
        elems_p = _elements(p)
        if elems_p is None:
            return len(elems_g) == 1 and _equal(elems_g[0], p, cmp, depth + 1)
        if g[0] == "tuple" and p[0] in ("tuple", "list"):
            if len(elems_g) != len(elems_p):
                return False
            elems_p = _by_variable(elems_p)
            return _all(_equal(a, b, cmp, depth + 1) for a, b in zip(elems_g, elems_p, strict=False))
        if p[0] == "tuple" and g[0] != "tuple" and len(elems_p) > 1:
            return False
        if len(set(elems_g)) == len(elems_g):  # "\\boxed{2}, \\boxed{3}, so \\boxed{2, 3}": repeats collapse
            elems_p = tuple(dict.fromkeys(elems_p))
        return _matching(elems_g, elems_p, lambda a, b: _equal(a, b, cmp, depth + 1))
    if p[0] == "rel" or g[0] == "rel":
        return False
    return _scalar(g, p, cmp)


def _by_variable(elems: tuple[Node, ...]) -> tuple[Node, ...]:
    """``y = 3, x = 2`` is the point ``(2, 3)``: a system solution is ordered by variable name."""
    names = [e[1][1] if e[0] == "eq" and e[1][0] == "sym" else None for e in elems]
    if None in names or len(set(names)) != len(names):
        return elems
    return tuple(e for _, e in sorted(zip(names, elems, strict=True)))


def _matrix_equal(g: Node, p: Node, cmp: Comparator, depth: int) -> Tri:
    rows = g[1]
    if p[0] == "tuple" and (len(rows) == 1 or all(len(r) == 1 for r in rows)):
        flat = [c for r in rows for c in r]  # (1, 2, 3) for a column or row vector
        if len(flat) != len(p[1]):
            return False
        return _all(_equal(a, b, cmp, depth + 1) for a, b in zip(flat, p[1], strict=False))
    if p[0] != "matrix" or len(p[1]) != len(rows) or len(p[1][0]) != len(rows[0]):
        return False
    return _all(
        _equal(a, b, cmp, depth + 1)
        for ra, rb in zip(rows, p[1], strict=False)
        for a, b in zip(ra, rb, strict=False)
    )
