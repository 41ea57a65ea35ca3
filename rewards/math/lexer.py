"""Tokenizer for answers written in LaTeX or plain math (``\\frac{3}{4}``, ``3/4``, ``sqrt(2)``, ``x**2``).

Key idea: one left-to-right scan with a fixed vocabulary. Anything outside the vocabulary (``__import__``,
quotes, backticks, unknown commands) is a :class:`LexError`, so hostile text is rejected before any parser
or sympy sees it. Runs of letters become either a known name (``sin``, ``pi``, ``sqrt``), a *word* (units and
prose such as ``dollars``, dropped later) or single-letter symbols multiplied together (``xy``). Letters are
never lower-cased: ``A`` and ``a`` are different symbols.

Input normalisation (``\\dfrac`` -> ``\\frac``, ``\\text{}`` words, units, ``$``) happens before, in
:mod:`rewards.math.normalize`, which marks text words as ``\\word{...}``.

:func:`split_words` then separates the words from the math (a power right after a unit goes with it, a
negation such as ``not 5`` is refused) and :func:`drop_empty_brackets` removes the ``( )`` a dropped word
leaves behind.

Left out on purpose: no macro expansion, no ``\\def``; unknown commands fail rather than being guessed.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["MAX_TOKENS", "LexError", "Token", "drop_empty_brackets", "split_words", "tokenize"]

MAX_TOKENS = 3_000
"""Answers longer than this many tokens are refused (no real final answer is that long)."""


class LexError(ValueError):
    """The text contains something that is not math we understand."""


class Token(NamedTuple):
    """A token: ``kind`` is one of NUM, SYM, CONST, FUNC, CMD, OP, WORD, CHOICE, BEGIN, END."""

    kind: str
    text: str


FUNCTIONS = frozenset((
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "log",
    "ln", "exp", "lg",
))
GREEK = frozenset((
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
    "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi",
    "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega",
))
# plain-text spellings of constants / functions (LaTeX spellings are commands)
_PLAIN_NAMES = {
    "pi": ("CONST", "pi"),
    "sqrt": ("CMD", "sqrt"),
    "infty": ("CONST", "oo"),
    "infinity": ("CONST", "oo"),
    "inf": ("CONST", "oo"),
    "oo": ("CONST", "oo"),
}
# separators spoken as words: "x = 2 or x = 3", "2 and 3"
_SEPARATOR_WORDS = frozenset({"or", "and"})
# two-letter English words and units that are never a product of two symbols
_SHORT_WORDS = frozenset((
    "is", "be", "so", "to", "of", "in", "on", "at", "it", "we", "by", "as", "an", "if", "no", "do", "am",
    "cm", "mm", "km", "kg", "mg", "ft", "hr", "yd", "mi", "oz", "lb", "ml", "mL", "sq", "pm", "th", "st",
    "nd", "rd",
))

_COMMANDS = {
    "frac": ("CMD", "frac"), "sqrt": ("CMD", "sqrt"), "binom": ("CMD", "binom"), "cdot": ("OP", "*"),
    "times": ("OP", "*"), "ast": ("OP", "*"), "div": ("OP", "/"), "pi": ("CONST", "pi"),
    "infty": ("CONST", "oo"), "infinity": ("CONST", "oo"), "le": ("OP", "<="), "leq": ("OP", "<="),
    "leqslant": ("OP", "<="), "ge": ("OP", ">="), "geq": ("OP", ">="), "geqslant": ("OP", ">="),
    "lt": ("OP", "<"), "gt": ("OP", ">"), "ne": ("OP", "!="), "neq": ("OP", "!="), "pm": ("OP", "pm"),
    "mp": ("OP", "mp"), "cup": ("OP", "cup"), "in": ("OP", "in"), "emptyset": ("CONST", "empty"),
    "varnothing": ("CONST", "empty"), "R": ("CONST", "reals"), "Rightarrow": ("OP", "sep"),
    "implies": ("OP", "sep"), "quad": ("SKIP", ""), "qquad": ("SKIP", ""), "{": ("OP", "\\{"),
    "}": ("OP", "\\}"), "\\": ("OP", "rowsep"), "cr": ("OP", "rowsep"), "lbrace": ("OP", "\\{"),
    "rbrace": ("OP", "\\}"), "langle": ("OP", "("), "rangle": ("OP", ")"), "vert": ("OP", "|"),
    "lvert": ("OP", "|"), "rvert": ("OP", "|"), "mid": ("OP", "|"), "lfloor": ("OP", "lfloor"),
    "rfloor": ("OP", "rfloor"), "lceil": ("OP", "lceil"), "rceil": ("OP", "rceil"), "circ": ("SKIP", ""),
    "prime": ("SYM", "prime"), "%": ("OP", "%"), "$": ("SKIP", ""), "cap": ("OP", "cap"),
    "colon": ("OP", ":"), "approx": ("OP", "approx"), "equiv": ("OP", "="),
}  # fmt: skip

_EXP = r"(?:[eE][-+]?[0-9]+(?![a-zA-Z]))?"
_NUMBER = re.compile(rf"[0-9]+(?:\.[0-9]*)?{_EXP}|\.[0-9]+{_EXP}")
_LETTERS = re.compile(r"[A-Za-z]+")
_COMMAND = re.compile(r"\\([A-Za-z]+|.)")
_SIMPLE_OPS = {
    "+": "+", "-": "-", "*": "*", "/": "/", "^": "^", "!": "!", "%": "%", "=": "=", "<": "<", ">": ">",
    ",": ",", ";": ";", "(": "(", ")": ")", "[": "[", "]": "]", "{": "{", "}": "}", "&": "&", "_": "_",
    "|": "|", "'": "prime", ":": ":", "−": "-", "×": "*", "·": "*", "÷": "/", "≤": "<=", "≥": ">=",
    "≠": "!=", "±": "pm", "∞": "oo", "π": "pi", "√": "sqrt", "∪": "cup", "≈": "approx",
}  # fmt: skip
_DIGITS = frozenset("0123456789")  # ASCII only: str.isdigit() also accepts "²" and "٣"
_NEGATIONS = frozenset({"not", "except", "neither", "nor", "isn't", "cannot", "never"})
_UNICODE_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "θ": "theta", "λ": "lambda",
    "μ": "mu", "φ": "phi", "ψ": "psi", "ω": "omega", "Δ": "Delta", "Θ": "Theta", "Φ": "Phi", "Ω": "Omega",
}  # fmt: skip
_SUPERSCRIPTS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7", "⁸": "8",
                 "⁹": "9", "⁻": "-"}
_TWO_CHAR_OPS = {"**": "^", "<=": "<=", ">=": ">=", "!=": "!=", "=<": "<=", "=>": ">="}
_UNICODE_KINDS = {"oo": "CONST", "pi": "CONST", "sqrt": "CMD"}


def _letters(run: str, out: list[Token]) -> None:
    """A run of letters: a known name, a word (dropped later) or single-letter symbols."""
    if run in FUNCTIONS:
        out.append(Token("FUNC", run))
    elif run in _PLAIN_NAMES:
        out.append(Token(*_PLAIN_NAMES[run]))
    elif run in _SEPARATOR_WORDS:
        out.append(Token("OP", "sep"))
    elif len(run) >= 3 or run in _SHORT_WORDS or (run.istitle() and run.lower() in _SHORT_WORDS):
        out.append(Token("WORD", run))
    else:
        out.extend(_symbol(ch) for ch in run)


def _symbol(ch: str) -> Token:
    if ch == "e":
        return Token("CONST", "E")
    if ch == "i":
        return Token("CONST", "I")
    return Token("SYM", ch)


def _command(name: str, text: str, pos: int, out: list[Token]) -> int:
    """Handles ``\\name``; returns the new position."""
    if name in ("begin", "end"):
        m = re.match(r"\s*\{([A-Za-z*]+)\}", text[pos:])
        if not m:
            raise LexError(f"\\{name} without an environment")
        out.append(Token("BEGIN" if name == "begin" else "END", m.group(1)))
        return pos + m.end()
    if name in ("word", "choice"):
        depth_end = text.find("}", pos)
        if not text.startswith("{", pos) or depth_end < 0:
            raise LexError(f"malformed \\{name}")
        out.append(Token("WORD" if name == "word" else "CHOICE", text[pos + 1 : depth_end]))
        return depth_end + 1
    if name in FUNCTIONS:
        out.append(Token("FUNC", name))
    elif name in GREEK:
        out.append(Token("SYM", name))
    elif name in _COMMANDS:
        kind, value = _COMMANDS[name]
        if kind != "SKIP":
            out.append(Token(kind, value))
    elif name in (",", ";", "!", ":", " ", "left", "right", "displaystyle"):
        pass
    else:
        raise LexError(f"unknown command \\{name}")
    return pos


def _superscript(text: str, pos: int, out: list[Token]) -> int:
    """``x²`` -> ``x^{2}``, ``10⁻³`` -> ``10^{-3}``; returns the new position."""
    end = pos
    while end < len(text) and text[end] in _SUPERSCRIPTS:
        end += 1
    digits = "".join(_SUPERSCRIPTS[c] for c in text[pos:end])
    sign, number = ("-", digits[1:]) if digits.startswith("-") else ("", digits)
    if not number.isdigit():
        raise LexError(f"malformed superscript {text[pos:end]!r}")
    out += [Token("OP", "^"), Token("OP", "{"), *([Token("OP", "-")] if sign else []), Token("NUM", number),
            Token("OP", "}")]  # fmt: skip
    return end


def tokenize(text: str) -> list[Token]:
    """Splits an answer into tokens.

    Args:
        text: A normalised answer string.

    Returns:
        The tokens, in order.

    Raises:
        LexError: On any character or command outside the vocabulary, or over :data:`MAX_TOKENS` tokens.

    Example:
        >>> [t.text for t in tokenize(r"\\frac{1}{2}x")]
        ['frac', '{', '1', '}', '{', '2', '}', 'x']
    """
    out: list[Token] = []
    pos, n = 0, len(text)
    while pos < n:
        if len(out) > MAX_TOKENS:
            raise LexError(f"answer longer than {MAX_TOKENS} tokens")
        ch = text[pos]
        if ch.isspace():
            pos += 1
        elif ch in _DIGITS or (ch == "." and pos + 1 < n and text[pos + 1] in _DIGITS):
            m = _NUMBER.match(text, pos)
            assert m is not None, "a digit always starts a number"
            out.append(Token("NUM", m.group()))
            pos = m.end()
        elif ch.isascii() and ch.isalpha():
            m = _LETTERS.match(text, pos)
            assert m is not None
            _letters(m.group(), out)
            pos = m.end()
        elif ch == "\\":
            m = _COMMAND.match(text, pos)
            if not m:
                raise LexError("dangling backslash")
            pos = _command(m.group(1), text, m.end(), out)
        elif ch in _SUPERSCRIPTS:
            pos = _superscript(text, pos, out)
        elif ch in _UNICODE_GREEK:
            out.append(Token("SYM", _UNICODE_GREEK[ch]))
            pos += 1
        elif text[pos : pos + 2] in _TWO_CHAR_OPS:
            out.append(Token("OP", _TWO_CHAR_OPS[text[pos : pos + 2]]))
            pos += 2
        elif ch in _SIMPLE_OPS:
            value = _SIMPLE_OPS[ch]
            out.append(Token(_UNICODE_KINDS.get(value, "OP"), value))
            pos += 1
        else:
            raise LexError(f"unexpected character {ch!r}")
    return out


def split_words(tokens: list[Token]) -> tuple[list[Token], list[str]]:
    """Separates words (units, prose) from math; a power right after a unit (``cm^2``) goes with it."""
    kept: list[Token] = []
    words: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind != "WORD":
            kept.append(t)
            i += 1
            continue
        if t.text.lower() in _NEGATIONS:
            raise LexError(f"negated answer ({t.text!r})")  # "not 5" must not become 5
        words.append(t.text)
        i += 1
        if kept and kept[-1] == Token("OP", "/"):  # "$18/day": the divisor is the unit's
            kept.pop()
        if i + 1 < len(tokens) and tokens[i] == Token("OP", "^") and tokens[i + 1].kind == "NUM":
            i += 2
        elif tokens[i : i + 2] == [Token("OP", "^"), Token("OP", "{")] and tokens[i + 3 : i + 4] == [
            Token("OP", "}")
        ]:
            i += 4  # cm^{2}
    return kept, words


def drop_empty_brackets(tokens: list[Token]) -> list[Token]:
    """``18 (eighteen)`` leaves ``18 ( )`` once the word is dropped: remove the empty pair."""
    out: list[Token] = []
    for t in tokens:
        if t.kind == "OP" and t.text in (")", "]") and out and out[-1].kind == "OP" and out[-1].text in "([":
            out.pop()
        else:
            out.append(t)
    return out
