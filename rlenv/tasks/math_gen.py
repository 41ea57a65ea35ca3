"""Procedural math problems with exact answers: arithmetic, fractions, linear equations, word problems.

Key idea: every problem is built *from its answer's computation* with exact rational arithmetic
(:class:`fractions.Fraction`), so the reference answer is exact by construction; nothing is ever parsed back.
Difficulty (1-5) scales the number of steps and the size of the numbers. Item ``i`` of (seed, split) comes
from its own SeedSequence stream (:mod:`rlenv.tasks._seeding`), so it is reproducible alone.

Answers are strings: an integer (``"42"``, ``"-7"``) or a reduced fraction (``"3/4"``), the forms
``rewards.math_accuracy`` compares symbolically.

References: GSM8K (Cobbe et al., 2021) for the word-problem style; DeepSeek-R1 (arXiv:2501.12948) rule-based
accuracy rewards need exact references.

Left out on purpose: no geometry, no irrational answers, no natural-language variation beyond a few templates.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from rlenv.tasks._seeding import UniformStream, draw_on_side, item_rng

__all__ = ["FAMILIES", "format_answer", "generate", "generate_item"]


def format_answer(value: Fraction | int) -> str:
    """``"7"``, ``"-3"`` or ``"5/6"`` (lowest terms).

    Example:
        >>> format_answer(Fraction(10, 4)), format_answer(Fraction(-6, 3))
        ('5/2', '-2')
    """
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _arith_expr(s: UniformStream, n_ops: int, hi: int) -> tuple[str, Fraction]:
    """A random integer expression with ``n_ops`` operators, exact divisions only."""
    value = Fraction(s.randint(1, hi))
    text = str(value)
    for k in range(n_ops):
        op = s.choice("+-*/" if k else "+-*")
        b = s.randint(2, max(2, hi // 2 if op == "*" else hi))
        if op == "/":
            if value.denominator != 1 or value == 0 or value.numerator % b:
                op = "*"
            else:
                value, text = value / b, f"({text}) / {b}"
                continue
        left = f"({text})" if op == "*" and k else text
        value = {"+": value + b, "-": value - b, "*": value * b}[op]
        text = f"{left} {op} {b}"
    return text, value


def _arithmetic(s: UniformStream, level: int) -> tuple[str, Fraction]:
    text, value = _arith_expr(s, n_ops=level + 1, hi=(10, 20, 50, 100, 1000)[level - 1])
    return f"Compute {text}.", value


def _fractions(s: UniformStream, level: int) -> tuple[str, Fraction]:
    max_den = (6, 10, 12, 20, 30)[level - 1]
    # (numerator, denominator) as printed: "4/2" is a fine question, its reduction is the model's job
    terms = [(s.randint(1, max_den * 2), s.randint(2, max_den)) for _ in range(level // 2 + 2)]
    value, parts = Fraction(*terms[0]), [f"{terms[0][0]}/{terms[0][1]}"]
    for num, den in terms[1:]:
        op = s.choice("+-*" if level >= 3 else "+-")
        t = Fraction(num, den)
        value = {"+": value + t, "-": value - t, "*": value * t}[op]
        if op == "*" and len(parts) > 1:  # the value so far is the left operand: say so in the text
            parts = [f"({' '.join(parts)})"]
        parts.append(f"{op} {num}/{den}")
    return f"Compute {' '.join(parts)}. Give the result as a fraction in lowest terms (or an integer).", value


def _linear(s: UniformStream, level: int) -> tuple[str, Fraction]:
    hi = (5, 10, 20, 30, 50)[level - 1]
    x = Fraction(s.randint(-2 * hi, 2 * hi))
    if level >= 4:
        x += Fraction(s.randint(1, 3), 4)  # quarter-valued solutions at the top levels
    a = s.randint(2, hi)
    c = s.randint(1, a - 1) if level >= 2 and a > 2 else 0
    b = s.randint(1, 5 * hi) * s.choice((-1, 1))
    d = a * x + b - c * x
    if d.denominator != 1:  # keep the printed equation integral: scale both sides
        m = d.denominator
        a, b, c, d = a * m, b * m, c * m, d * m
    rhs = (f"{c}x + {int(d)}" if d else f"{c}x") if c else f"{int(d)}"
    return f"Solve for x: {a}x + {b} = {rhs}.".replace("+ -", "- ").replace(" 1x", " x"), x


_NAMES = ("Ava", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Juno")
_ITEMS = ("apples", "marbles", "stickers", "books", "coins", "shells", "pencils", "cards")


def _word(s: UniformStream, level: int) -> tuple[str, Fraction]:
    hi = (10, 20, 50, 100, 200)[level - 1]
    name, thing = s.choice(_NAMES), s.choice(_ITEMS)
    start, packs, per = s.randint(2, hi), s.randint(2, 6 + level), s.randint(2, 12)
    total = start + packs * per
    lines = [f"{name} has {start} {thing}.", f"{name} buys {packs} packs with {per} {thing} in each pack."]
    if level >= 2:
        given = s.randint(1, total - 1)
        total -= given
        lines.append(f"Then {name} gives away {given} {thing}.")
    if level >= 3:
        k = s.choice([d for d in range(2, 7) if total % d == 0] or [1])
        if k > 1:
            total //= k
            lines.append(f"{name} splits the rest equally among {k} friends, including {name}.")
    if level >= 4:
        price = s.randint(2, 9)
        lines.append(f"Each of {name}'s {thing} sells for ${price}.")
        total *= price
        question = f"How many dollars does {name} get by selling all of {name}'s share?"
    else:
        question = f"How many {thing} does {'each get' if level >= 3 else name + ' have now'}?"
    if level >= 5:
        fee = s.randint(1, max(1, total // 2))
        total -= fee
        lines.append(f"A ${fee} market fee is paid out of the earnings.")
        question = f"How many dollars does {name} keep?"
    return " ".join([*lines, question]), Fraction(total)


# family name -> builder(stream, level) -> (problem text, exact answer)
FAMILIES: dict[str, Callable[[UniformStream, int], tuple[str, Fraction]]] = {
    "arithmetic": _arithmetic,
    "fractions": _fractions,
    "linear": _linear,
    "word": _word,
}


def generate_item(index: int, *, seed: int = 0, split: str = "train", difficulty: int = 2,
                  families: tuple[str, ...] = tuple(FAMILIES)) -> dict[str, Any]:
    """Item ``index`` of the (seed, split) stream: ``{"problem", "answer", "family"}``.

    Args:
        index: Item index (>= 0).
        seed: Data-set seed.
        split: ``"train"`` or ``"test"`` (no problem text is on both sides: see
            :func:`rlenv.tasks._seeding.split_of`).
        difficulty: 1 (one or two small steps) to 5 (five or more steps, large numbers).
        families: Families to draw from (uniformly), a subset of :data:`FAMILIES`.

    Returns:
        The problem text, its exact answer as a string, and the family name.

    Raises:
        ValueError: On an unknown family or difficulty.

    Example:
        >>> item = generate_item(3, seed=0, families=("linear",))
        >>> item["family"], item == generate_item(3, seed=0, families=("linear",))
        ('linear', True)
    """
    if difficulty not in (1, 2, 3, 4, 5):
        raise ValueError(f"difficulty={difficulty!r} must be in 1..5")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"families={families!r}: each must be one of {sorted(FAMILIES)}")
    s = UniformStream(item_rng("math", seed, split, index))

    def draw() -> tuple[str, str, Fraction]:
        family = s.choice(tuple(families))
        return (family, *FAMILIES[family](s, difficulty))

    family, problem, answer = draw_on_side(split, draw, lambda d: f"math {d[1]}", f"{families} problem")
    return {"problem": problem, "answer": format_answer(answer), "family": family}


def generate(n: int, *, seed: int = 0, split: str = "train", start: int = 0, difficulty: int = 2,
             families: tuple[str, ...] = tuple(FAMILIES)) -> list[dict[str, Any]]:
    """Items ``start .. start + n - 1`` (see :func:`generate_item`).

    Example:
        >>> len(generate(4, seed=1, difficulty=5))
        4
    """
    return [generate_item(i, seed=seed, split=split, difficulty=difficulty, families=families)
            for i in range(start, start + n)]
