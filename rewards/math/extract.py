"""Final-answer extraction: what a careful human grader reads as the answer of a completion or a gold.

Key idea: read the completion the way a grader does, in order of authority:

1. the last complete ``<answer>…</answer>`` block outside the thinking (inside it, a ``\\boxed{}`` or a
   declared answer wins over the surrounding prose; otherwise the whole block is the answer);
2. else the ``\\boxed{}`` / ``\\fbox{}`` answers outside the thinking: identical boxes are one answer, several
   different boxes become one list (a set of roots boxed separately is a set answer; two alternatives offered
   for a single-valued question then fail to verify, as a hedge should);
3. else the last declared final answer: GSM8K ``#### N``, ``A: N``, "The (final) answer is …",
   "Final Answer: The final answer is $…$", "**Answer:** …";
4. else the math (``$…$``, ``\\(…\\)``, ``\\[…\\]``) of the last sentence that has any, as a reader
   takes "… so the area is $\\frac{11}{2}$. Hope this helps!";
5. else, when the whole response after the thinking is one short line of math without words (``18``,
   ``x = 5``), that line; else the single number of a complete closing sentence ("Therefore, there are 10
   apples."; a response that stops mid-sentence is truncated and has none).

Everything inside ``<think>…</think>`` is ignored; an unclosed ``<think>`` runs to the end (a truncated
completion has no answer) unless an ``<answer>`` block follows it; text before a lone ``</think>`` is thinking
(chat templates that prefill ``<think>``). Every step is ``str.find`` or a linear regular expression, so a
1 MB completion costs milliseconds.

References: Math-Verify's extraction targets (huggingface/Math-Verify), DeepSeek-R1's answer tags, the
GSM8K and MATH answer conventions (Cobbe et al. 2021; Hendrycks et al. 2021).

Left out on purpose: no "last number in the text" fallback — a closing sentence with several numbers, or a
response cut off mid-sentence, has no answer rather than a guessed one.
"""

from __future__ import annotations

import numbers
import re

__all__ = ["extract_answer", "extract_gold"]

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_BOX = re.compile(r"\\(?:boxed|fbox)\s*(?=[{\s])")
# Every quantifier next to another one is bounded ({0,8}): unbounded neighbours (\s*(?:\*\*)?\s*) backtrack
# quadratically on a run of spaces, and a completion can hold a megabyte of them.
_WS = r"[ \t]{0,8}"
_DECLARED = [
    re.compile(r"####[ \t]{0,20}([^\n]+)"),
    re.compile(r"(?m)^[ \t*]{0,8}A:[ \t*]{0,8}([^\n]+)"),
    re.compile(rf"(?i)\banswer(?:[ \t]{{1,8}}is|[ \t]{{1,8}}would[ \t]{{1,8}}be)?{_WS}(?:\*\*)?{_WS}[:：]"
               rf"[ \t\n]{{0,8}}(?:\*\*)?{_WS}([^\n]+)"),
    re.compile(rf"(?i)\banswer{_WS}(?:\*\*)?[ \t]{{1,8}}is\b[: \t\n]{{0,8}}(?:\*\*)?{_WS}([^\n]+)"),
    re.compile(rf"(?i)\bfinal answer{_WS}(?:\*\*)?{_WS}\n[ \t\n]{{0,20}}([^\n]+)"),
]
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$([^$]+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.S)
_MAX_TAIL_CHARS = 4_000
_BARE = re.compile(r"[^\n]{1,64}")
_WORD = re.compile(r"[A-Za-z]{2,}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_COMPLETE = re.compile(r"[\w)%$][.!](?:\*\*)?\s*$")
_NUMBER = re.compile(r"(?<![\w.,])-?\\?\$?\d[\d,]*(?:\.\d+)?%?(?![\w,]|\.\d)")
_STEP = re.compile(r"\W*(?:first|next|then|now|step|let|we start|to start|to begin|begin)\b", re.I)
# text that cannot end a sentence: the response was cut off
_CUT_OFF = re.compile(r"(?i)[,;(+\-*/=]$|\b(?:the|an?|we|is|are|and|or|of|to|then|so|that|which|for|by|in)$")
_ANSWER_WORD = re.compile(r"(?i)\banswer\b|^A:|####")
_MATHISH = re.compile(r"[\d\\$]")
_MAX_BOXES = 64  # only the last boxes count; bounds the work on box spam
_MAX_BOX_CHARS = 10_000  # a box longer than this is not an answer (and is never closed, for our purposes)
_SENTENCE_END = re.compile(
    r"\.(?=\s|$)|\s{1,8}I hope it is correct|\*\*|,?\s{1,8}(?:since|because|which|as|so|where|given)\b"
)


def _visible(text: str) -> str:
    """The text a reader sees as the response: everything outside the thinking."""
    pos = 0
    first_close, first_open = text.find(_THINK_CLOSE), text.find(_THINK_OPEN)
    if first_close >= 0 and (first_open < 0 or first_close < first_open):
        pos = first_close + len(_THINK_CLOSE)  # a prefilled <think> the caller did not pass back
    out: list[str] = []
    while True:
        o = text.find(_THINK_OPEN, pos)
        if o < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:o])
        c = text.find(_THINK_CLOSE, o)
        if c < 0:  # unclosed thinking: only an answer block after it is visible
            a = text.find(_ANSWER_OPEN, o)
            if a >= 0:
                out.append(text[a:])
            break
        pos = c + len(_THINK_CLOSE)
    return "".join(out)


def _last_answer_block(text: str) -> str | None:
    close = text.rfind(_ANSWER_CLOSE)
    if close < 0:
        return None
    opened = text.rfind(_ANSWER_OPEN, 0, close)
    return None if opened < 0 else text[opened + len(_ANSWER_OPEN) : close]


def _boxes(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` / ``\\fbox{...}`` (and ``\\boxed 5``), in order."""
    found: list[str] = []
    starts = [m.end() for m in _BOX.finditer(text)][-_MAX_BOXES:]
    for j in starts:
        if j < len(text) and text[j] == "{":
            depth = 0
            for k in range(j, min(len(text), j + _MAX_BOX_CHARS)):
                c = text[k]
                if c == "{" and text[k - 1] != "\\":
                    depth += 1
                elif c == "}" and text[k - 1] != "\\":
                    depth -= 1
                    if depth == 0:
                        found.append(text[j + 1 : k])
                        break
        else:
            bare = re.match(r"\s*([^\s$]+)", text[j : j + 200])
            if bare:
                found.append(bare.group(1))
    return found


def _join(answers: list[str]) -> str | None:
    """One answer from several boxes: duplicates collapse; different ones form a list."""
    unique: list[str] = []
    seen: set[str] = set()
    for a in answers:
        key = re.sub(r"\s+", "", a)
        if key and key not in seen:
            seen.add(key)
            unique.append(a.strip())
    if not unique:
        return None
    return unique[0] if len(unique) == 1 else ", ".join(unique)


def _cut_sentence(s: str) -> str:
    """The math of a declared answer: a ``$…$`` span, or the text up to the end of the sentence."""
    s = s.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if s.startswith(left):
            end = s.find(right, len(left))
            if end > 0:
                rest = s[end + len(right) :]
                more = re.match(r"\s*(or|and|,)\s*\$([^$]*)\$", rest)  # "$4$ or $5$" stays a hedge
                return s[len(left) : end] + (f" {more.group(1)} {more.group(2)}" if more else "")
    m = _SENTENCE_END.search(s)
    return (s[: m.start()] if m else s).strip()


def _declared(text: str) -> str | None:
    if len(text) > 2 * _MAX_TAIL_CHARS:  # declarations sit at the end: look there first
        tail = text[-_MAX_TAIL_CHARS:]
        cut = tail.find("\n")
        found = _declared(tail[cut + 1 :] if cut >= 0 else tail)
        if found is not None:
            return found
    found = sorted((m.start(1), m.group(1)) for pattern in _DECLARED for m in pattern.finditer(text))
    if not found:
        return None
    # the last declaration that states some math ("the answer: it checks out" is not an answer)
    inner = next((g for _, g in reversed(found) if _MATHISH.search(g)), found[-1][1])
    boxed = _boxes(inner)
    return _join(boxed) if boxed else (_cut_sentence(inner) or None)


def _last_math(region: str) -> str | None:
    """The math of the last sentence with math ("So the area is $\\frac{11}{2}$. Hope this helps!")."""
    paragraph = region.strip()[-_MAX_TAIL_CHARS:]
    spans: list[str] = []

    def mask(m: re.Match[str]) -> str:
        spans.append(next(g for g in m.groups() if g is not None))
        return f"\x00{len(spans) - 1}\x00"

    masked = _MATH_SPAN.sub(mask, paragraph).strip()
    if _CUT_OFF.search(masked):
        return None  # the response stops mid-sentence (truncated): what it was about to conclude is unknown
    for sentence in reversed(re.split(r"[.!?:](?:\s|$)", masked)):
        found = [spans[int(i)] for i in re.findall(r"\x00(\d+)\x00", sentence)]
        if found:
            return None if _STEP.match(sentence) else _join(found)
    return None


def _final(region: str, whole: bool) -> str | None:
    boxed = _boxes(region)
    if boxed:
        return _join(boxed)
    declared = _declared(region)
    if declared is not None:
        return declared
    region = region.strip()
    if whole:
        return region or None
    math = _last_math(region)
    if math is None and _BARE.fullmatch(region) and not _WORD.search(_COMMAND.sub("", region)):
        return region  # the whole response is one short expression ("18", "x = 5", "\\frac{1}{2}")
    return math if math is not None else _closing_number(region)


def _closing_number(region: str) -> str | None:
    """The one number of a complete closing sentence ("Therefore, there are 10 apples.")."""
    tail = region[-_MAX_TAIL_CHARS:]
    if not _COMPLETE.search(tail):
        return None  # the response stops mid-sentence: truncated, no answer
    sentence = re.split(r"(?<=[.!?])\s+", tail)[-1]
    if _STEP.match(sentence):
        return None  # "First, we find 12 eggs." opens a derivation that was cut off, it does not close one
    numbers = _NUMBER.findall(sentence)
    return numbers[0] if len(numbers) == 1 else None


def extract_answer(text: str) -> str | None:
    """Extracts the final answer of a model completion, as a careful human grader would.

    Args:
        text: The completion (with the thinking, if any, inside ``<think>…</think>``).

    Returns:
        The final answer as written (LaTeX or plain text), or ``None`` when the completion states none
        (truncated, empty, or only thinking).

    Example:
        >>> extract_answer(r"<think>maybe \\boxed{3}</think> So <answer>\\frac{1}{2}</answer>")
        '\\\\frac{1}{2}'
        >>> extract_answer(r"The roots are $\\boxed{2}$ and $\\boxed{3}$.")
        '2, 3'
        >>> extract_answer("<think>the answer is 4") is None
        True
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_answer expects a string, got {type(text).__name__}")
    visible = _visible(text)
    block = _last_answer_block(visible)
    if block is not None:
        answer = _final(block, whole=True)
        return answer.strip() if answer and answer.strip() else None
    return _final(visible, whole=False)


def extract_gold(gold: object) -> str | None:
    """The answer inside a raw dataset gold: GSM8K ``#### 1,234``, MATH LaTeX, an AMC float, a solution.

    Args:
        gold: The dataset's answer field (a string, int or float).

    Returns:
        The answer string, or ``None`` when nothing usable is there (``None`` included).

    Raises:
        TypeError: If ``gold`` is not a string, a number or ``None`` (bytes, a list: a caller's mix-up that
            would otherwise score every completion 0).

    Example:
        >>> extract_gold("She pays 2*3 = <<2*3=6>>6 dollars.\\n#### 1,234")
        '1,234'
        >>> extract_gold(27.0)
        '27'
    """
    if isinstance(gold, bool) or gold is None:
        return None
    if isinstance(gold, int):
        return str(gold)
    if isinstance(gold, float):
        return str(int(gold)) if gold.is_integer() else repr(gold)
    if isinstance(gold, numbers.Integral):  # numpy integers from a data frame
        return str(int(gold))
    if not isinstance(gold, str):
        raise TypeError(f"a gold answer must be a string or a number, got {type(gold).__name__}")
    if "####" in gold or "\\boxed" in gold or "\\fbox" in gold or _ANSWER_OPEN in gold:
        found = extract_answer(gold)
    elif "\n" in gold.strip() or _ANSWER_WORD.search(gold):  # a solution ending in a declared answer
        found = _declared(gold)
    else:
        found = gold
    found = found.strip() if found else ""
    return found or None
