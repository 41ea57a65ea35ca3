"""Recursive-descent parser from answer tokens to a small immutable AST of nested tuples.

Key idea: the AST is plain tuples (hashable, picklable, cheap to cache), one tag per node::

    ("num", "3.5")  ("sym", "x")  ("const", "pi"|"E"|"I"|"oo"|"empty"|"reals")
    ("add", (a, b, ...))  ("mul", (a, b, ...))  ("neg", a)  ("div", a, b)  ("pow", a, b)
    ("func", name, arg, base)  ("root", a, n)  ("fact", a)  ("binom", n, k)  ("abs", a)
    ("floor", a)  ("ceil", a)  ("pct", a)  ("pm", a, b)
    ("tuple", items)  ("set", items)  ("list", items)  ("union", items)
    ("interval", left_closed, lo, hi, right_closed)  ("eq", lhs, rhs)  ("rel", exprs, ops)
    ("in", x, set)  ("matrix", rows)  ("text", words)  ("choice", letter)  ("base", digits, base)

Both evaluators (:mod:`rewards.math.fast` in-process, :mod:`rewards.math.symbolic` in a worker) walk this
tree, so sympy only ever receives objects we built, never model text. Depth is bounded
(:data:`MAX_DEPTH`), so a 3,000-deep ``\\frac`` is a :class:`ParseError`, not a ``RecursionError``.

Left out on purpose: function application ``f(x)`` is read as the product ``f*x``; ``\\sin 2x`` is
``\\sin(2)\\,x`` (the first factor is the argument), as in most LaTeX graders.
"""

from __future__ import annotations

from typing import Any

from rewards.math.lexer import LexError, Token, drop_empty_brackets, split_words, tokenize

__all__ = ["MAX_DEPTH", "ParseError", "parse"]

MAX_DEPTH = 60
"""Maximum nesting of the answer (brackets, fractions, exponents); deeper answers are refused."""

Node = tuple[Any, ...]
_RELOPS = ("<", "<=", ">", ">=", "!=")
_ATOM_START = {"NUM", "SYM", "CONST", "FUNC", "CMD", "BEGIN", "CHOICE"}
_ATOM_START_OPS = {"(", "{", "lfloor", "lceil"}
_CLOSERS = {"(": (")", "]"), "[": (")", "]"), "{": ("}",), "\\{": ("\\}",)}


class ParseError(ValueError):
    """The answer is not well-formed math (or is too deep / too long)."""


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0
        self.depth = 0

    # -- token helpers ----------------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.peek()
        return t is not None and t.kind == kind and (text is None or t.text == text)

    def at_op(self, *texts: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "OP" and t.text in texts

    def take(self) -> Token:
        t = self.peek()
        if t is None:
            raise ParseError("unexpected end of answer")
        self.i += 1
        return t

    def expect_op(self, text: str) -> None:
        t = self.take()
        if t.kind != "OP" or t.text != text:
            raise ParseError(f"expected {text!r}, got {t.text!r}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"answer nested deeper than {MAX_DEPTH}")

    # -- grammar ----------------------------------------------------------------------------------------
    def answer(self) -> Node:
        node = self.items(top=True)
        if self.peek() is not None:
            raise ParseError(f"unexpected {self.peek().text!r}")
        return node

    def items(self, top: bool = False) -> Node:
        """A comma / semicolon / 'or' separated list (a single item is returned bare)."""
        parts = [self.union()]
        while self.at_op(",", ";", "sep"):
            while self.at_op(",", ";", "sep"):  # ", or" is one separator
                self.take()
            if top and self.peek() is None:
                break  # trailing punctuation
            parts.append(self.union())
        return parts[0] if len(parts) == 1 else ("list", tuple(parts))

    def union(self) -> Node:
        parts = [self.relation()]
        while self.at_op("cup"):
            self.take()
            parts.append(self.relation())
        return parts[0] if len(parts) == 1 else ("union", tuple(parts))

    def relation(self) -> Node:
        exprs, ops = [self.expr()], []
        while self.at_op("=", "in", "approx", *_RELOPS):
            ops.append(self.take().text)
            exprs.append(self.expr())
        if "approx" in ops:  # "1/6 ≈ 0.167", "x = \\sqrt{13} ≈ 3.61": the exact value before ≈ is the answer
            k = ops.index("approx")
            if k == 0 and exprs[0][0] == "sym":
                return exprs[1]
            exprs, ops = exprs[: k + 1], ops[:k]
        if not ops:
            return exprs[0]
        if ops == ["="]:
            return ("eq", exprs[0], exprs[1])
        if ops == ["in"]:
            return ("in", exprs[0], exprs[1])
        if "=" in ops:  # x = y = 3: a chain of equalities, the last value is the answer
            if all(o == "=" for o in ops):
                return ("eq", exprs[0], exprs[-1])
            raise ParseError("mixed equality and inequality")
        if "in" in ops:
            raise ParseError("malformed membership")
        return ("rel", tuple(exprs), tuple(ops))

    def expr(self) -> Node:
        entry_depth = self.depth
        self.enter()
        terms = [self.term()]
        while self.at_op("+", "-", "pm", "mp"):
            op = self.take().text
            rhs = self.term()
            if op in ("pm", "mp"):
                self.enter()  # each \pm nests the tree one level deeper; bounded like brackets
                left = terms[0] if len(terms) == 1 else ("add", tuple(terms))
                terms = [("pm", left, rhs if op == "pm" else ("neg", rhs))]
            else:
                terms.append(rhs if op == "+" else ("neg", rhs))
        self.depth = entry_depth
        return terms[0] if len(terms) == 1 else ("add", tuple(terms))

    def term(self) -> Node:
        entry_depth = self.depth
        factors = [self.unary()]
        while True:
            if self.at_op("*", "/", ":"):
                op = self.take().text
                if op != "*":
                    self.enter()  # a/b/c/... nests the tree one level per division
                rhs = self.unary()
                factors = [("div", _product(factors), rhs)] if op != "*" else [*factors, rhs]
            elif self._implicit_factor():
                rhs = self.unary()
                if len(factors) == 1 and _is_mixed(factors[0], rhs):
                    left = factors[0]
                    factors = [("neg", ("add", (left[1], rhs))) if left[0] == "neg" else ("add", (left, rhs))]
                else:
                    factors.append(rhs)
            else:
                self.depth = entry_depth
                return _product(factors)

    def _implicit_factor(self) -> bool:
        t = self.peek()
        if t is None:
            return False
        if t.kind == "NUM" and self.i > 0 and self.toks[self.i - 1].kind == "NUM":
            raise ParseError("two numbers side by side")  # "2 3" is neither 6 nor 23
        return t.kind in _ATOM_START or (t.kind == "OP" and t.text in _ATOM_START_OPS)

    def unary(self) -> Node:
        if self.at_op("-", "+", "pm"):
            op = self.take().text
            self.enter()
            inner = self.unary()
            self.depth -= 1
            if op == "-":
                return ("neg", inner)
            return ("pm", ("num", "0"), inner) if op == "pm" else inner
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.at_op("^"):
            self.take()
            self.enter()
            exponent = self.script_arg() if self.at_op("{") else self.unary()
            self.depth -= 1
            base = self.postfix_ops(("pow", base, exponent))
        return base

    def postfix(self) -> Node:
        return self.postfix_ops(self.atom())

    def postfix_ops(self, node: Node) -> Node:
        while self.at_op("!", "%", "prime"):
            op = self.take().text
            if op == "!":
                node = ("fact", node)
            elif op == "%":
                node = ("pct", node)
            elif node[0] == "sym":
                node = ("sym", node[1] + "'")
        return node

    def script_arg(self) -> Node:
        """``{...}`` or a single token (``\\frac12``, ``x^2``), as LaTeX reads macro arguments."""
        if self.at_op("{"):
            self.take()
            inner = self.items() if not self.at_op("}") else ("text", "")
            self.expect_op("}")
            return inner
        t = self.peek()
        if t is not None and t.kind == "NUM" and len(t.text) > 1 and t.text.isdigit():
            # \frac12 : LaTeX reads one digit per argument
            self.toks[self.i] = Token("NUM", t.text[1:])
            return ("num", t.text[0])
        return self.atom()

    def atom(self) -> Node:
        self.enter()
        t = self.take()
        try:
            if t.kind == "NUM":
                return self.subscript_num(t.text)
            if t.kind == "SYM":
                return self.subscript_sym(t.text)
            if t.kind == "CONST":
                return ("const", t.text)
            if t.kind == "CHOICE":
                return ("choice", t.text)
            if t.kind == "FUNC":
                return self.function(t.text)
            if t.kind == "CMD":
                return self.command(t.text)
            if t.kind == "BEGIN":
                return self.matrix(t.text)
            if t.kind == "OP" and t.text in _CLOSERS:
                return self.bracket(t.text)
            if t.kind == "OP" and t.text == "|":
                inner = self.expr()
                self.expect_op("|")
                return ("abs", inner)
            if t.kind == "OP" and t.text in ("lfloor", "lceil"):
                inner = self.expr()
                self.expect_op("rfloor" if t.text == "lfloor" else "rceil")
                return ("floor" if t.text == "lfloor" else "ceil", inner)
            raise ParseError(f"unexpected {t.text!r}")
        finally:
            self.depth -= 1

    def subscript_num(self, text: str) -> Node:
        if self.at_op("_"):
            self.take()
            base = self.script_arg()
            if base[0] != "num" or not text.isalnum():
                raise ParseError("malformed base subscript")
            return ("base", text, base[1])
        return ("num", text)

    def subscript_sym(self, name: str) -> Node:
        if self.at_op("_"):
            self.take()
            sub = self.script_arg()
            if sub[0] not in ("num", "sym"):
                raise ParseError("unsupported subscript")
            name = f"{name}_{sub[1]}"
        return ("sym", name)

    def function(self, name: str) -> Node:
        base = None
        if self.at_op("_"):
            self.take()
            base = self.script_arg()
        power = None
        if self.at_op("^"):  # \sin^2 x
            self.take()
            power = self.script_arg()
        arg = self.power() if not self.at_op("(") else self.atom()
        node: Node = ("func", name, arg, base)
        return ("pow", node, power) if power is not None else node

    def command(self, name: str) -> Node:
        if name == "frac":
            num = self.script_arg()
            return ("div", num, self.script_arg())
        if name == "binom":
            n = self.script_arg()
            return ("binom", n, self.script_arg())
        assert name == "sqrt", f"unknown CMD {name}"
        index: Node = ("num", "2")
        if self.at_op("["):
            self.take()
            index = self.expr()
            self.expect_op("]")
        arg = self.script_arg() if not self.at_op("(") else self.atom()
        return ("root", arg, index)

    def bracket(self, opener: str) -> Node:
        if opener == "\\{" and self.at_op("\\}"):
            self.take()
            return ("set", ())
        inner = self.items()
        if opener == "\\{" and self.at_op("|", ":"):  # set-builder {x | 2 <= x < 5}: the condition
            self.take()
            condition = self.items()
            self.expect_op("\\}")
            return condition
        close = self.take()
        if close.kind != "OP" or close.text not in _CLOSERS[opener]:
            raise ParseError(f"unbalanced {opener!r}")
        elems = inner[1] if inner[0] == "list" else (inner,)
        if opener in ("\\{", "{"):
            return ("set", elems) if opener == "\\{" or len(elems) > 1 else inner
        if opener == "[" and close.text == "]" and len(elems) > 1 and all(map(_is_row, elems)):
            rows = tuple(e[1] if e[0] == "tuple" else (e[2], e[3]) for e in elems)  # [[1, 2], [3, 4]]
            if len({len(r) for r in rows}) == 1:
                return ("matrix", rows)
        if len(elems) == 2 and (opener == "[" or close.text == "]" or any(map(_is_infinite, elems))):
            return ("interval", opener == "[", elems[0], elems[1], close.text == "]")
        if len(elems) >= 3 and opener == "[" and close.text == "]":
            return ("tuple", elems)  # a vector [1, 2, 3]
        if len(elems) == 1:
            if (opener == "(" and close.text == ")") or (opener == "[" and close.text == "]"):
                return elems[0]
            raise ParseError("half-open bracket around one value")
        if opener == "(" and close.text == ")":
            return ("tuple", elems)
        raise ParseError("bracketed list that is neither a tuple nor an interval")

    def matrix(self, env: str) -> Node:
        rows: list[tuple[Node, ...]] = []
        row: list[Node] = []
        while True:
            if self.at("END"):
                if self.take().text != env:
                    raise ParseError("mismatched \\end")
                if row:
                    rows.append(tuple(row))
                break
            if self.at_op("rowsep"):
                self.take()
                if row:
                    rows.append(tuple(row))
                row = []
                continue
            if self.at_op("&"):
                self.take()
                continue
            row.append(self.expr())
        if not rows or len({len(r) for r in rows}) != 1:
            raise ParseError("ragged or empty matrix")
        return ("matrix", tuple(rows))


def _product(factors: list[Node]) -> Node:
    return factors[0] if len(factors) == 1 else ("mul", tuple(factors))


def _is_row(node: Node) -> bool:
    """A row of a plain-text matrix: ``[1, 2]`` (parsed as a closed interval) or a tuple."""
    return (node[0] == "interval" and node[1] and node[4]) or node[0] == "tuple"


def _is_infinite(node: Node) -> bool:
    return node == ("const", "oo") or node == ("neg", ("const", "oo"))


def _is_int_literal(node: Node) -> bool:
    return node[0] == "num" and node[1].isdigit()


def _is_mixed(left: Node, right: Node) -> bool:
    """``3\\frac{1}{2}`` (an integer then a proper fraction of integer literals) is a mixed number."""
    whole = left[1] if left[0] == "neg" else left
    if not (_is_int_literal(whole) and right[0] == "div"):
        return False
    num, den = right[1], right[2]
    return _is_int_literal(num) and _is_int_literal(den) and 0 < int(num[1]) < int(den[1])


def parse(text: str) -> Node:
    """Parses a normalised answer into the tuple AST described in the module docstring.

    Words (units, prose) are dropped when math remains; an answer made only of words is a ``text`` node.

    Args:
        text: The answer, already passed through :func:`rewards.math.normalize.normalize`.

    Returns:
        The AST.

    Raises:
        ParseError: If the answer is not math we understand, or too long or too deep.

    Example:
        >>> parse(r"\\frac{1}{2}")
        ('div', ('num', '1'), ('num', '2'))
        >>> parse("x = 2 or x = 3")[0]
        'list'
    """
    try:
        kept, words = split_words(tokenize(text))
    except LexError as exc:
        raise ParseError(str(exc)) from None
    if not kept or all(t.kind == "OP" and t.text in (",", ";", "sep", "(", ")") for t in kept):
        if not words:
            raise ParseError("empty answer")
        return ("text", " ".join(words))
    kept = drop_empty_brackets(kept)
    choices = [t for t in kept if t.kind == "CHOICE"]
    if len(choices) == 1 and kept[0] == choices[0]:
        return ("choice", choices[0].text)  # "\\textbf{(A) }5": the letter is the answer
    # drop separators left dangling by dropped words ("5 dollars and 3 cents" keeps its 'and')
    while kept and kept[0].kind == "OP" and kept[0].text in (",", ";", "sep"):
        kept.pop(0)
    while kept and kept[-1].kind == "OP" and kept[-1].text in (",", ";", "sep"):
        kept.pop()
    return _Parser(kept).answer()
