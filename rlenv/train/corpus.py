"""Training text for the recipes: generic arithmetic, countdown's sibling tasks, and solver-written traces.

Three corpora feed the three starts of an R1-style experiment (see :mod:`rlenv.train.recipes`):

* ``"arithmetic"`` -- generic pretraining text: single operations ``a op b=c``, step-by-step evaluations of
  small expressions and expressions with their values. It never contains the countdown prompt or the
  ``<think>``/``<answer>`` format, so a model pretrained on it is an honest "base model" (R1's start).
* ``"siblings"`` -- tasks next to countdown, in the countdown prompt template, for R1-Zero: *evaluate this
  expression* and *write any equation that uses these numbers*. They teach the template, the tags and the
  arithmetic, never the search for a target, so pure RL still has to discover countdown itself.
* ``"countdown_sft"`` -- R1's cold start: countdown problems from the environment's *train* split solved by
  the environment's solver (:func:`rlenv.tasks.countdown.solve_steps`) and written as short traces.

Key idea: pretraining text and the SFT traces share one way of writing arithmetic (``a op b=c``, no spaces),
so what the base learnt is what the traces use; the traces themselves (the solver's search, each checked
line restating the target) are built by :mod:`rlenv.train.traces`, which explains their shape.

Seeds: every corpus draws from its own :class:`random.Random` stream keyed by ``(corpus, seed)``; countdown
problems come from the environment's ``split="train"`` stream, which shares no item with ``split="test"``
(the evaluation split), so no evaluation item is ever trained on.

References: DeepSeek-R1 (cold-start SFT before RL), TinyZero (countdown, the R1-Zero template).

Left out on purpose: natural-language reasoning text, and any target-hitting sibling task (that would be
countdown under another name).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Literal, get_args

from rewards import prompt_prefills_think
from rlenv.train.traces import (
    OPS,
    Step,
    apply_op,
    equation_from_steps,
    format_trace,
    parse_line,
    random_steps,
    search_trace,
)

__all__ = ["CorpusName", "countdown_completion", "countdown_sft_rows", "has_near_miss", "make_corpus",
           "search_length", "sibling_rows"]

CorpusName = Literal["arithmetic", "siblings", "countdown_sft"]

_MAX_N = 10_000_000


def _check_n_seed(n: int, seed: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= _MAX_N:
        raise ValueError(f"n must be an int in [0, {_MAX_N}], got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def _rng(corpus: str, seed: int) -> random.Random:
    # String seeds are hashed (SHA-512) by random.Random, so each (corpus, seed) is its own stream.
    return random.Random(f"rlenv.train.corpus/{corpus}/{seed}")


# ---------------------------------------------------------------------------------------------------------
# Generic arithmetic (pretraining)


def _operands(rng: random.Random) -> tuple[int, str, int, int]:
    """One operation with the operand sizes countdown traces meet (given numbers and intermediate results)."""
    while True:
        op = rng.choice(OPS)
        a = rng.randint(1, 100) if rng.random() < 0.7 else rng.randint(1, 1000)
        b = rng.randint(1, 100) if rng.random() < 0.85 else rng.randint(1, 1000)
        if op == "/":
            b = rng.randint(1, 30)
            a = b * rng.randint(1, 100)  # exact division
        elif op == "-" and a < b:
            a, b = b, a
        result = apply_op(a, op, b)
        if result is not None and result <= 100_000:
            return a, op, b, result


def _arithmetic_document(rng: random.Random, n_lines: int = 12) -> str:
    lines = []
    for _ in range(n_lines):
        kind = rng.random()
        if kind < 0.6:  # a single operation
            a, op, b, c = _operands(rng)
            lines.append(f"{a}{op}{b}={c}")
        else:  # a small expression, evaluated step by step (same line format) or in one go
            nums = [rng.randint(1, 100) for _ in range(rng.randint(2, 4))]
            steps = random_steps(nums, rng)
            expression = equation_from_steps(nums, steps)
            worked = [f"{a}{op}{b}={c}" for a, op, b, c in steps]
            if kind < 0.75:  # expression -> steps (evaluation)
                lines += [expression, *worked]
            elif kind < 0.9:  # steps -> expression (what an <answer> after a trace needs)
                lines += [*worked, f"{expression}={steps[-1][3]}"]
            else:
                lines.append(f"{expression}={steps[-1][3]}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Prompts: through the environment's template files, so prompts are exactly what RL and evaluation show

_ANY_QUESTION = (
    "Using the numbers {nums}, create any equation. You can use basic arithmetic operations (+, -, *, /) "
    "and each number can only be used once. Put the equation (without the = sign) in <answer> </answer> "
    "tags, for example <answer> (1 + 2) / 3 </answer>."
)
_AVOID_QUESTION = _ANY_QUESTION.replace(
    "create any equation", "create an equation that does not equal {avoid}"
)
_EVAL_QUESTION = (
    "Evaluate the expression {expression}. Put the value in <answer> </answer> tags, for example "
    "<answer> 7 </answer>."
)


def _frame(question: str, template: str) -> str:
    """Puts a question into the countdown template's framing (``... User: {question} Assistant:``)."""
    from rlenv.templates import load_template

    data = load_template("countdown-v0")
    specs = data["templates"]
    if template not in specs or "prompt" not in specs[template]:
        allowed = sorted(k for k, v in specs.items() if "prompt" in v)
        raise ValueError(f"template={template!r} is not a text template; allowed: {allowed}")
    prompt = specs[template]["prompt"]
    if "{question}" in prompt:
        return prompt.replace("{question}", question)
    # Framings that spell the countdown question out (tinyzero, compact): swap its first sentence for ours.
    first = data["question"].split(". ")[0] + "."
    if first not in prompt:
        raise ValueError(f"template={template!r} has neither a question slot nor the countdown question")
    return prompt.replace(first, question.split(". ")[0] + ".")


def _countdown_env(split: str, template: str | None, **env_kwargs):
    import gymnasium as gym

    import rlenv  # noqa: F401  (registers the environments)

    if template is not None:
        env_kwargs["template"] = template
    return gym.make("rlenv/Countdown-v0", split=split, **env_kwargs).unwrapped


def _opening(prompt: str) -> str:
    return "" if prompt_prefills_think(prompt) else "<think>"


def countdown_completion(nums: Sequence[int], target: int, rng: random.Random, *, style: str = "search",
                         failed_fraction: float = 0.25, prompt: str = "", prune: bool = False) -> str | None:
    """One solver-written completion for a countdown item (None when the solver finds no solution).

    ``style="search"`` writes the solver's depth-first search (:func:`search_trace`, falling back to the
    direct style when the search is longer than 16 lines; ``prune`` leaves out its hopeless final products);
    ``"direct"`` writes only the solution, after one failed attempt in a ``failed_fraction`` share of items.

    Example:
        >>> print(countdown_completion([44, 19, 35], 98, random.Random(0)))
        <think>
        44+19=63 [63 35]
        63+35=98 vs 98 ok
        </think>
        <answer>44+19+35</answer>
    """
    if style not in ("search", "direct"):
        raise ValueError(f"style={style!r} is not one of ('search', 'direct')")
    found = search_trace(nums, target, prune=prune) if style == "search" else None
    if found is not None:
        lines, steps = found
        equation = equation_from_steps(nums, steps)
        return f"{_opening(prompt)}\n" + "\n".join(lines) + f"\n</think>\n<answer>{equation}</answer>"
    from rlenv.tasks.countdown import solve_steps

    solution = solve_steps(list(nums), target)
    if solution is None:
        return None
    failed: list[Step] = []
    if len(nums) > 1 and rng.random() < failed_fraction:
        attempt = random_steps(nums, rng)
        failed = attempt if attempt[-1][3] != target else []
    return format_trace(nums, target, solution, failed=failed, prefilled_think=prompt_prefills_think(prompt))


def countdown_sft_rows(
    n: int,
    seed: int,
    *,
    template: str | None = None,
    style: Literal["search", "direct"] = "search",
    failed_fraction: float = 0.25,
    env_kwargs: dict | None = None,
    near_miss: float = 0.0,
    keep_lengths: bool = False,
    prune: bool = False,
) -> list[dict]:
    """Solver-written countdown solutions for cold-start SFT, from the environment's train split.

    Args:
        n: Number of rows.
        seed: Seed of the train-split stream (items ``0, 1, ...`` of ``reset(seed=seed)``, in order).
        template: The environment's prompt template (None = the environment's default, as RL uses).
        style: ``"search"`` (the solver's search, line by line) or ``"direct"`` (the solution only).
        failed_fraction: Direct style: share of traces showing one failed attempt first, in [0, 1].
        env_kwargs: Extra ``rlenv/Countdown-v0`` arguments (difficulty knobs), the same as for RL.
        near_miss: Search style: at least this share of the rows has a *near miss*, a checked value within
            10 of the target that is not it (``49+30=79 vs 80 no``): items without one are skipped once the
            others fill their share. About a fifth of the natural stream has one; SFT on it teaches ``no``
            for a near miss from few examples, and ``ok`` for a near miss is what ends most failed searches
            (docs/recipes-history.md, session 6). 0 keeps items ``0..n-1`` as they come.
        keep_lengths: With ``near_miss``: keep the search lengths of items ``0..n-1`` (how many values are
            checked before the ``ok``) and take the near misses within each length, from the first ``5 * n``
            items, so ``near_miss`` is each length's share as far as those items hold one (a search that ends
            at its first check has none). Without it the near misses lengthen the searches: the ``ok`` sits
            at the second check in 19% of the r1 recipe's rows against 31% of the stream, and a policy may
            learn the verdict from the position.
        prune: Search style: leave out the final products of two operands >= 10 that overshoot the target
            (``search_trace(prune=True)``): about 11% fewer trace characters with 3 numbers and targets up
            to 100, lines the policy gets wrong anyway; in r1 it cost accuracy (docs/recipes-history.md,
            session 8).

    Returns:
        Rows with ``prompt``, ``completion`` and the reward columns ``nums`` and ``target``; items the
        solver cannot solve (none, by construction of the generator) are skipped.

    Raises:
        ValueError: On a bad ``n``, ``seed``, ``style``, ``failed_fraction``, ``near_miss`` or ``prune`` (both
            need the search style), ``keep_lengths`` without ``near_miss``, or when 100 items per row do not
            hold enough near misses.

    Example:
        >>> rows = countdown_sft_rows(2, seed=0)
        >>> sorted(rows[0])
        ['completion', 'nums', 'prompt', 'target']
        >>> rows[0]["completion"].endswith("</answer>")
        True
    """
    _check_n_seed(n, seed)
    if not 0.0 <= failed_fraction <= 1.0:
        raise ValueError(f"failed_fraction must be in [0, 1], got {failed_fraction!r}")
    if not 0.0 <= near_miss <= 1.0 or (near_miss and style != "search"):
        raise ValueError(f"near_miss={near_miss!r} must be in [0, 1], and 0 unless style='search'")
    if prune and style != "search":
        raise ValueError("prune=True needs style='search' (direct traces search nothing)")
    if keep_lengths and not near_miss:
        raise ValueError("keep_lengths=True needs near_miss > 0 (without it the stream keeps its lengths)")
    env = _countdown_env("train", template, **(env_kwargs or {}))
    rng = _rng("countdown_sft", seed)
    trace = dict(style=style, failed_fraction=failed_fraction, prune=prune)
    try:
        if keep_lengths:
            return _near_misses_by_length(_solved(env, seed, 5 * n, rng, trace), n, near_miss)
        rows: list[dict] = []
        others = n - round(near_miss * n)  # rows allowed without a near miss
        stop = n if not near_miss else 100 * n
        for row in _solved(env, seed, stop, rng, trace):
            if len(rows) == n:
                break
            if near_miss and not has_near_miss(row["completion"], row["target"]):
                if others == 0:
                    continue
                others -= 1
            rows.append(row)
    finally:
        env.close()
    if near_miss and len(rows) < n:
        raise ValueError(f"only {len(rows)} of {n} rows in {stop} items with near_miss={near_miss}")
    return rows


def _solved(env: Any, seed: int, stop: int, rng: random.Random, trace: dict[str, Any]) -> Iterator[dict]:
    """The SFT rows of the train-split items ``0..stop-1`` that the solver solves, in order."""
    for index in range(stop):
        prompt, info = env.reset(seed=seed, options={"index": index})
        nums, target = [int(v) for v in info["nums"]], int(info["target"])
        completion = countdown_completion(nums, target, rng, prompt=prompt, **trace)
        if completion is not None:
            yield {"prompt": prompt, "completion": completion, "nums": nums, "target": target}


def _near_misses_by_length(stream: Iterator[dict], n: int, near_miss: float) -> list[dict]:
    """``n`` rows with the search lengths of the stream's first ``n``; near misses first within a length."""
    pool = list(stream)
    lengths = [search_length(row["completion"]) for row in pool]
    quota = Counter(lengths[:n])
    misses: dict[int, list[int]] = {length: [] for length in quota}
    plain: dict[int, list[int]] = {length: [] for length in quota}
    for index, (row, length) in enumerate(zip(pool, lengths, strict=True)):
        if length in quota:
            (misses if has_near_miss(row["completion"], row["target"]) else plain)[length].append(index)
    chosen: list[int] = []
    for length, count in quota.items():  # each length holds >= count items: its share of the first n
        wanted = min(round(near_miss * count), len(misses[length]))
        kept = plain[length][: count - wanted]
        chosen += kept + misses[length][: count - len(kept)]
    return [pool[index] for index in sorted(chosen)]


def search_length(completion: str) -> int:
    """How many values a search trace checks up to and including its ``ok`` (all checks when none is ``ok``).

    Example:
        >>> search_length("<think>\\n49+30=79 vs 80 no\\n49+31=80 vs 80 ok\\n</think>")
        2
    """
    checks = 0
    for parsed in filter(None, map(parse_line, completion.splitlines())):
        if parsed[5] is not None:
            checks += 1
            if parsed[5] == "ok":
                break
    return checks


def has_near_miss(completion: str, target: int, within: int = 10) -> bool:
    """Whether a search trace checks a value within ``within`` of ``target`` that is not it (``... no``).

    Example:
        >>> has_near_miss("<think>\\n49+30=79 vs 80 no\\n49+31=80 vs 80 ok\\n</think>", 80)
        True
    """
    for parsed in filter(None, map(parse_line, completion.splitlines())):
        _, _, _, value, _, verdict = parsed
        if verdict == "no" and 0 < abs(value - target) <= within:
            return True
    return False


def sibling_rows(n: int, seed: int, *, template: str = "r1zero") -> list[dict]:
    """Countdown's sibling tasks in the countdown template, for an R1-Zero base model (never countdown).

    40% of the rows ask to evaluate an expression (the trace evaluates it step by step, the answer is the
    value); 30% ask for *any* equation over given numbers (the trace combines them step by step, showing
    the values left, and the answer is the equation); 30% ask the same with a value the equation must *not*
    equal (so the base learns that a number after the list is not one to use; a random combination avoids
    it, nothing is searched). No row has a target to reach.

    Args:
        n: Number of rows.
        seed: Seed of the corpus stream.
        template: A text framing of the countdown template file (``"r1zero"``, ``"tinyzero"``, ``"compact"``);
            framings that spell the countdown question out get the sibling question's first sentence.

    Returns:
        Rows with ``prompt`` and ``completion``.

    Example:
        >>> row = sibling_rows(1, seed=0)[0]
        >>> "create any equation" in row["prompt"] or "Evaluate" in row["prompt"]
        True
    """
    _check_n_seed(n, seed)
    rng = _rng("siblings", seed)
    rows = []
    for _ in range(n):
        nums = [rng.randint(1, 99) for _ in range(rng.choice((3, 3, 4)))]
        steps = random_steps(nums, rng, max_value=1000)
        equation = equation_from_steps(nums, steps)
        kind = rng.random()
        if kind < 0.4:
            prompt = _frame(_EVAL_QUESTION.replace("{expression}", equation), template)
            lines = [f"{a}{op}{b}={c}" for a, op, b, c in steps]
            answer = str(steps[-1][3])
        else:
            # A number in the prompt that is not to be used (a value to avoid, in the target's range) teaches
            # the base to tell the given numbers from another number in the question, without any search.
            avoid = rng.choice([v for v in range(10, 101) if v != steps[-1][3]])
            question = (_ANY_QUESTION if kind < 0.7 else _AVOID_QUESTION.replace("{avoid}", str(avoid)))
            prompt = _frame(question.replace("{nums}", str(nums)), template)
            lines = [*_partial_lines(nums, steps[:-1]), "{}{}{}={}".format(*steps[-1])]
            answer = equation
        completion = f"{_opening(prompt)}\n" + "\n".join(lines) + f"\n</think>\n<answer>{answer}</answer>"
        rows.append({"prompt": prompt, "completion": completion})
    return rows


def _partial_lines(nums: Sequence[int], steps: Sequence[Step]) -> list[str]:
    left, lines = list(nums), []
    for a, op, b, result in steps:
        left.remove(a)
        left.remove(b)
        left.insert(0, result)
        lines.append(f"{a}{op}{b}={result} [{' '.join(map(str, left))}]")
    return lines


def make_corpus(name: str, n: int, seed: int) -> list[str]:
    """``n`` training documents of the named corpus (the text T's ``rlenv pretrain`` packs).

    Args:
        name: ``"arithmetic"`` (generic, never the task), ``"siblings"`` (prompt + completion of countdown's
            sibling tasks) or ``"countdown_sft"`` (prompt + completion of solver-written countdown solutions).
        n: Number of documents.
        seed: Seed; each (name, seed) is its own stream.

    Returns:
        A list of ``n`` strings.

    Raises:
        ValueError: On an unknown name or a bad ``n`` / ``seed``.

    Example:
        >>> docs = make_corpus("arithmetic", 2, seed=0)
        >>> len(docs), all("=" in d for d in docs)
        (2, True)
    """
    if name not in get_args(CorpusName):
        raise ValueError(f"corpus name {name!r} is not one of {get_args(CorpusName)}")
    _check_n_seed(n, seed)
    if name == "arithmetic":
        rng = _rng("arithmetic", seed)
        return [_arithmetic_document(rng) for _ in range(n)]
    rows = sibling_rows(n, seed) if name == "siblings" else countdown_sft_rows(n, seed)
    return [row["prompt"] + row["completion"] for row in rows]
