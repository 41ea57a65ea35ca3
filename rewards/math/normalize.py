"""String clean-up of an extracted answer before tokenising: wrappers, spacing macros, units and text.

Key idea: only *presentation* is removed here (``$``, ``\\left``, ``\\dfrac``, ``^\\circ``, ``\\$``,
thousands separators ``{,}``, ``\\!``). Words from ``\\text{}`` / ``\\mbox{}`` are kept but marked
``\\word{...}`` so the parser can drop them as units when math remains, or compare them as a text answer
(``\\text{Navin}``) when nothing else is left. A letter outside ``\\text{}`` is never removed: ``2t``
stays ``2t``. Case is preserved.

Left out on purpose: no unit conversion (``100 cm`` is not ``1 m``); a bare single letter after a number
(``5 m``) is a variable, not a unit, unless it is written inside ``\\text{}``.
"""

from __future__ import annotations

import re

__all__ = ["MAX_ANSWER_CHARS", "normalize", "strip_thousands"]

MAX_ANSWER_CHARS = 2_000
"""Extracted answers longer than this are refused (a final answer is short; this bounds all later work)."""

_TEXT_COMMANDS = ("text", "textbf", "textit", "textrm", "textnormal", "mbox", "hbox", "textup", "emph")
_INLINE_COMMANDS = (
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "operatorname",
    "boxed",
    "fbox",
    "bm",
    "mathnormal",
    "pmb",
    "vec",
    "overline",
    "hat",
)
_WRAPPER = re.compile(r"\\(" + "|".join(_TEXT_COMMANDS + _INLINE_COMMANDS) + r")\s*\{")
_CHOICE = re.compile(r"^\s*(?:\(\s*)?([A-Z])\s*(?:\)\s*)?$")
_SUBS = [
    (re.compile(r"\\(?:left|right)\s*\\?\.|\\(?:left|right|[bB]igg?[lr]?)(?![A-Za-z])"), ""),
    (re.compile(r"\\[dtc]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\(?:displaystyle|limits|nolimits)(?![A-Za-z])"), ""),
    (re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])|°|\\degree(?![A-Za-z])"), ""),
    (re.compile(r"\^\s*\{\s*\\prime\s*\}|\^\s*\\prime(?![A-Za-z])"), "'"),
    (re.compile(r"\\mathbb\s*\{\s*R\s*\}"), r"\\R "),
    (re.compile(r"\\\$|\$"), ""),
    (re.compile(r"\{,\}|\\,|\\!|\\;|\\:|\\ |~"), " "),
    (re.compile(r"\s{0,8}\bpercent\b"), "%"),
    (re.compile(r"(?i)\ball real numbers\b|\ball reals\b"), r"\\R "),
    (re.compile(r"(?<![\d.])(\d+)\s+(\d+)/(\d+)(?![\d./])"), r"\1\\frac{\2}{\3}"),  # "3 1/2" mixed
]
_UNIT_POWER = re.compile(r"(\\word\{[^}]*\})\s*\^\s*(?:\{\s*\d\s*\}|\d)")  # cm^2: the power is the unit's
_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+)(?![\d,]|\.\d*,)")


def _matching_brace(text: str, open_pos: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_pos``, or -1."""
    depth = 0
    for j in range(open_pos, len(text)):
        c = text[j]
        if c == "\\":
            continue
        if c == "{" and (j == 0 or text[j - 1] != "\\"):
            depth += 1
        elif c == "}" and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _text_content(command: str, content: str) -> str:
    if command in _INLINE_COMMANDS:
        return " " + content + " "
    m = _CHOICE.match(content)
    if m:
        return rf" \choice{{{m.group(1)}}} "
    if not re.search(r"[A-Za-z]", content) or re.search(r"\d|\\", content):
        return " " + content + " "
    words = re.findall(r"[A-Za-z][A-Za-z'\-]*|[,;]", content)
    parts = [w if w in ("or", "and", ",", ";") else rf"\word{{{w}}}" for w in words]
    return " " + " ".join(parts) + " "


def _unwrap_text(text: str) -> str:
    """Replaces ``\\text{...}``-like wrappers (innermost first is not needed: one left-to-right pass)."""
    out: list[str] = []
    pos = 0
    while True:
        m = _WRAPPER.search(text, pos)
        if not m:
            out.append(text[pos:])
            return "".join(out)
        close = _matching_brace(text, m.end() - 1)
        if close < 0:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos : m.start()])
        inner = (
            _unwrap_text(text[m.end() : close]) if "\\" in text[m.end() : close] else text[m.end() : close]
        )
        out.append(_text_content(m.group(1), inner))
        pos = close + 1


def _strip_delimiters(s: str) -> str:
    s = s.strip()
    for left, right in (("\\[", "\\]"), ("\\(", "\\)")):
        if s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)].strip()
    s = re.sub(r"^(?:\*\*|__){1,4}|(?:\*\*|__){1,4}$", "", s).strip()
    return s.rstrip(" .;,:!?\n").strip() if not s.endswith("!") or s.endswith("!!") else s


def normalize(answer: str) -> str:
    """Removes presentation from an answer, keeping every symbol that could carry meaning.

    Args:
        answer: An extracted answer (raw LaTeX or plain text).

    Returns:
        The cleaned answer, ready for :func:`rewards.math.parser.parse`.

    Raises:
        ValueError: If the answer is longer than :data:`MAX_ANSWER_CHARS`.

    Example:
        >>> normalize(r"\\$1{,}000 \\text{ dollars}")
        '1000  \\\\word{dollars}'
        >>> normalize(r"\\left( 3, \\dfrac{\\pi}{2} \\right)")
        '( 3, \\\\frac{\\\\pi}{2} )'
    """
    if len(answer) > MAX_ANSWER_CHARS:
        raise ValueError(f"answer longer than {MAX_ANSWER_CHARS} characters")
    s = answer.replace("\\\\", " \\cr ") if "\\\\" in answer else answer
    for pattern, repl in _SUBS:
        s = pattern.sub(repl, s)
    s = s.replace("{ ", "{").replace(" }", "}") if "{" in s else s
    s = re.sub(r"(?<=\d) (?=\d{3}(?!\d))", "", s)  # "1 000" (the {,} separator) -> "1000"
    s = _unwrap_text(s) if "\\" in s else s
    s = _UNIT_POWER.sub(r"\1", s) if "\\word" in s else s
    return _strip_delimiters(s)


def strip_thousands(answer: str) -> str:
    """Removes thousands separators written as commas (``1,234,567``), for answers that must be a number.

    Example:
        >>> strip_thousands("1,234,567 and 12,5")
        '1234567 and 12,5'
    """
    return _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), answer)
