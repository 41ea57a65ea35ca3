"""Tests of the recipe corpora and traces: correct arithmetic, traces that reach the target, seed hygiene."""

from __future__ import annotations

import ast
import operator
import random
import re
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlenv.train import corpus
from rlenv.train.corpus import make_corpus
from rlenv.train.traces import equation_from_steps, format_trace, random_steps, search_trace

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _value(expression: str) -> Fraction:
    """Exact value of an equation the corpus wrote (our own text, walked as an AST; never eval)."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        raise AssertionError(f"unexpected node {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval").body)


def _numbers(expression: str) -> list[int]:
    return sorted(int(x) for x in re.findall(r"\d+", expression))


_STEP = re.compile(r"^(\d+)([-+*/])(\d+)=(\d+)")


def _check_step_line(line: str) -> None:
    m = _STEP.match(line)
    assert m, line
    a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
    assert _BINOPS[{"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div}[op]](Fraction(a), b) == c, line


# ---------------------------------------------------------------------------------------------------------
# Equations and traces


@pytest.mark.parametrize(
    ("nums", "steps", "expected"),
    [
        ([44, 19, 35], [(44, "+", 19, 63), (63, "+", 35, 98)], "44+19+35"),  # no parentheses needed
        ([3, 5, 2], [(5, "-", 2, 3), (3, "*", 3, 9)], "3*(5-2)"),  # a sum inside a product
        ([8, 4, 2], [(4, "/", 2, 2), (8, "/", 2, 4)], "8/(4/2)"),  # right operand of / at equal precedence
        ([8, 4, 2], [(4, "-", 2, 2), (8, "-", 2, 6)], "8-(4-2)"),  # right operand of - at equal precedence
        ([8, 4, 2], [(4, "*", 2, 8), (8, "-", 8, 0)], "8-4*2"),  # product binds tighter
        ([2, 2, 5], [(2, "*", 2, 4), (4, "+", 5, 9)], "2*2+5"),  # repeated numbers
    ],
)
def test_equation_from_steps_table(nums, steps, expected):
    assert equation_from_steps(nums, steps) == expected


@pytest.mark.parametrize(
    "steps",
    [
        [(44, "+", 18, 62), (62, "+", 35, 97)],  # 18 is not given
        [(44, "+", 19, 64), (64, "+", 35, 99)],  # wrong result
        [(44, "+", 19, 63)],  # 35 left unused
        [(44, "^", 19, 63), (63, "+", 35, 98)],  # unknown operator
    ],
)
def test_equation_from_steps_rejects_bad_steps(steps):
    with pytest.raises(ValueError):
        equation_from_steps([44, 19, 35], steps)


@given(
    st.lists(st.integers(1, 100), min_size=2, max_size=5),
    st.integers(0, 10_000),
)
def test_random_steps_give_equations_with_the_right_value_and_numbers(nums, seed):
    steps = random_steps(nums, random.Random(seed))
    equation = equation_from_steps(nums, steps)
    assert _value(equation) == steps[-1][3]
    assert _numbers(equation) == sorted(nums)


def test_format_trace_shape_and_arithmetic():
    failed = [(44, "*", 19, 836), (836, "-", 35, 801)]
    text = format_trace([44, 19, 35], 98, [(44, "+", 19, 63), (63, "+", 35, 98)], failed=failed)
    assert text.startswith("<think>\n") and text.endswith("</think>\n<answer>44+19+35</answer>")
    think = text[len("<think>\n") : text.index("</think>")].splitlines()
    assert think == ["44*19=836 [836 35]", "836-35=801 vs 98 no", "44+19=63 [63 35]", "63+35=98 vs 98 ok"]
    for line in think:
        _check_step_line(line)


def test_format_trace_prefill_and_errors():
    steps = [(44, "+", 19, 63), (63, "+", 35, 98)]
    assert format_trace([44, 19, 35], 98, steps, prefilled_think=True).startswith("\n44+19=63")
    with pytest.raises(ValueError, match="target"):
        format_trace([44, 19, 35], 99, steps)


# ---------------------------------------------------------------------------------------------------------
# Generic arithmetic


def test_arithmetic_corpus_is_correct_and_never_shows_the_task():
    docs = make_corpus("arithmetic", 200, seed=3)
    assert len(docs) == 200
    n_steps = 0
    for doc in docs:
        for text in ("<think>", "<answer>", "Assistant", "equals", "numbers", "["):
            assert text not in doc
        for line in doc.splitlines():
            if _STEP.fullmatch(line.split(" ")[0]) and line.count("=") == 1 and _STEP.match(line):
                _check_step_line(line)
                n_steps += 1
            elif "=" in line:  # an expression with its value
                left, right = line.split("=")
                assert _value(left) == int(right), line
            else:  # an expression followed by its evaluation
                assert _value(line) >= 0, line
    assert n_steps > 1000


def test_corpus_seeds_are_deterministic_and_distinct():
    assert make_corpus("arithmetic", 20, seed=1) == make_corpus("arithmetic", 20, seed=1)
    assert not set(make_corpus("arithmetic", 20, seed=1)) & set(make_corpus("arithmetic", 20, seed=2))


@pytest.mark.parametrize(
    ("name", "n", "seed"),
    [("nope", 1, 0), ("arithmetic", -1, 0), ("arithmetic", 1, -1), ("arithmetic", 1.5, 0)],
)
def test_make_corpus_rejects_bad_arguments(name, n, seed):
    with pytest.raises(ValueError):
        make_corpus(name, n, seed)


# ---------------------------------------------------------------------------------------------------------
# Countdown traces and sibling tasks (through the environment)


def test_countdown_sft_rows_reach_the_target_and_come_from_the_train_split():
    import rewards
    from rlenv.tasks.countdown import generate

    rows = corpus.countdown_sft_rows(60, seed=0)
    assert len(rows) == 60
    scores = rewards.countdown_accuracy(
        [r["completion"] for r in rows], prompts=[r["prompt"] for r in rows],
        nums=[r["nums"] for r in rows], target=[r["target"] for r in rows],
    )
    assert scores == [1.0] * 60
    assert rewards.think_format([r["completion"] for r in rows]) == [1.0] * 60
    for row in rows:
        shown = row["prompt"].split("Using the numbers [")[1].split("]")[0]
        assert row["nums"] == [int(x) for x in shown.split(", ")]
        think = row["completion"].split("</think>")[0].removeprefix("<think>").strip().splitlines()
        for line in think:
            _check_step_line(line)
        assert think[-1].endswith(" ok") and not any(x.endswith(" ok") for x in think[:-1])
        for line in think:  # every checked combination restates the target, and its verdict is right
            if line.endswith((" ok", " no")):
                value = int(line.split("=")[1].split()[0])
                assert line.endswith(f" vs {row['target']} {'ok' if value == row['target'] else 'no'}"), line
    # No training problem is an evaluation problem (split="test" streams, any seed used for evaluation).
    train = {(tuple(r["nums"]), r["target"]) for r in corpus.countdown_sft_rows(300, seed=0, style="direct")}
    test = {(tuple(it["nums"]), it["target"]) for it in generate(500, seed=0, split="test")}
    assert len(train & test) <= 1  # small-number collisions are possible by chance, shared streams are not


def test_countdown_sft_rows_direct_style_and_prefill():
    rows = corpus.countdown_sft_rows(20, seed=1, style="direct", failed_fraction=1.0, template="tinyzero")
    for row in rows:
        assert row["prompt"].endswith("<think>") and not row["completion"].startswith("<think>")
    assert any(" no\n" in row["completion"] for row in rows)
    with pytest.raises(ValueError):
        corpus.countdown_sft_rows(2, seed=0, failed_fraction=2.0)


def test_countdown_sft_rows_near_miss_share():
    plain = corpus.countdown_sft_rows(200, seed=3)
    assert corpus.countdown_sft_rows(200, seed=3, near_miss=0.0) == plain  # 0: the stream as it comes
    natural = sum(corpus.has_near_miss(r["completion"], r["target"]) for r in plain) / len(plain)
    rich = corpus.countdown_sft_rows(200, seed=3, near_miss=0.6)
    share = sum(corpus.has_near_miss(r["completion"], r["target"]) for r in rich) / len(rich)
    assert len(rich) == 200 and 0.05 < natural < 0.4 and share >= 0.6
    stream = corpus.countdown_sft_rows(2000, seed=3)  # rich rows are this stream's, in order, some skipped
    near = [r for r in stream if corpus.has_near_miss(r["completion"], r["target"])]
    others = [r for r in stream if not corpus.has_near_miss(r["completion"], r["target"])]
    assert [r for r in rich if not corpus.has_near_miss(r["completion"], r["target"])] == others[:80]
    assert [r for r in rich if corpus.has_near_miss(r["completion"], r["target"])] == near[:120]
    assert corpus.has_near_miss("<think>\n49+30=79 vs 80 no\n</think>", 80)
    assert not corpus.has_near_miss("<think>\n49+31=80 vs 80 ok\n9+1=10 vs 80 no\n</think>", 80)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="near_miss"):
            corpus.countdown_sft_rows(2, seed=0, near_miss=bad)
    with pytest.raises(ValueError, match="search"):
        corpus.countdown_sft_rows(2, seed=0, style="direct", near_miss=0.5)


def test_countdown_sft_rows_keep_lengths_takes_near_misses_within_each_length():
    def lengths(rows):
        return Counter(corpus.search_length(r["completion"]) for r in rows)

    def near(row):
        return corpus.has_near_miss(row["completion"], row["target"])

    plain = corpus.countdown_sft_rows(300, seed=3)
    kept = corpus.countdown_sft_rows(300, seed=3, near_miss=0.8, keep_lengths=True)
    rich = corpus.countdown_sft_rows(300, seed=3, near_miss=0.8)
    assert lengths(kept) == lengths(plain) != lengths(rich)  # without keep_lengths the searches lengthen
    assert sum(map(near, plain)) < sum(map(near, kept)) < sum(map(near, rich))
    stream = corpus.countdown_sft_rows(1500, seed=3)  # the pool: 5 * n items, in order
    assert all(row in stream for row in kept)
    assert [stream.index(row) for row in kept] == sorted(stream.index(row) for row in kept)
    for length, count in lengths(plain).items():  # near misses first, each kind a prefix of the pool's
        same = [r for r in stream if corpus.search_length(r["completion"]) == length]
        misses, others = [r for r in same if near(r)], [r for r in same if not near(r)]
        got = [r for r in kept if corpus.search_length(r["completion"]) == length]
        taken = sum(map(near, got))
        assert len(got) == count and taken == max(min(round(0.8 * count), len(misses)), count - len(others))
        assert [r for r in got if near(r)] == misses[:taken]
        assert [r for r in got if not near(r)] == others[: count - taken]
    assert corpus.search_length("<think>\n1+2=3 [3 4]\n3+4=7 vs 9 no\n3*4=12 vs 9 no\n</think>") == 2
    with pytest.raises(ValueError, match="keep_lengths"):
        corpus.countdown_sft_rows(2, seed=0, keep_lengths=True)


def test_search_trace_follows_the_solver_and_is_bounded():
    from rlenv.tasks.countdown import generate

    for item in generate(100, seed=5):
        found = search_trace(item["nums"], item["target"], max_lines=10_000)
        assert found is not None
        lines, steps = found
        assert _value(equation_from_steps(item["nums"], steps)) == item["target"]
        assert sum(line.endswith(" ok") for line in lines) == 1
    assert search_trace([1, 1, 1], 1000) is None
    assert search_trace([44, 19, 35, 7, 3], 1, max_lines=3) is None


def _hopeless(line: str, target: int) -> bool:
    """A final product of two operands >= 10 overshooting the target (what ``prune`` leaves out)."""
    match = re.fullmatch(r"(\d+)\*(\d+)=(\d+) vs \d+ no", line)
    return bool(match) and min(int(match[1]), int(match[2])) >= 10 and int(match[3]) > target


def test_pruned_search_leaves_out_only_hopeless_final_products():
    from rlenv.tasks.countdown import CountdownConfig, generate

    pruned_any = 0
    for item in generate(300, seed=5, config=CountdownConfig(min_numbers=3, max_numbers=4)):
        nums, target = item["nums"], item["target"]
        full = search_trace(nums, target, max_lines=10_000)
        pruned = search_trace(nums, target, max_lines=10_000, prune=True)
        assert pruned[1] == full[1]  # the same solution, found in the same order
        assert pruned[0] == [line for line in full[0] if not _hopeless(line, target)]
        pruned_any += len(pruned[0]) < len(full[0])
    assert pruned_any > 30
    assert search_trace([2, 5, 10], 100, prune=True)[0][-1] == "10*10=100 vs 100 ok"  # reaching it: kept
    row = corpus.countdown_sft_rows(1, seed=0, prune=True)[0]
    assert not any(_hopeless(line, row["target"]) for line in row["completion"].splitlines())
    with pytest.raises(ValueError, match="prune"):
        corpus.countdown_sft_rows(2, seed=0, style="direct", prune=True)


def test_sibling_rows_are_never_countdown():
    rows = corpus.sibling_rows(100, seed=0)
    for kind in ("Evaluate the expression", "create any equation", "create an equation that does not equal"):
        assert any(kind in r["prompt"] for r in rows), kind
    for row in rows:
        assert "that equals" not in row["prompt"] and row["prompt"].endswith("Assistant:")
        think, answer = row["completion"].split("</think>\n<answer>")
        answer = answer.removesuffix("</answer>")
        for line in think.removeprefix("<think>").strip().splitlines():
            _check_step_line(line)
        if "Evaluate" in row["prompt"]:
            expression = row["prompt"].split("Evaluate the expression ")[1].split(". ")[0]
            assert _value(expression) == int(answer)
        else:
            shown = row["prompt"].split("Using the numbers [")[1].split("]")[0]
            assert _numbers(answer) == sorted(int(x) for x in shown.split(", "))
            if "does not equal" in row["prompt"]:
                avoid = int(row["prompt"].split("does not equal ")[1].split(".")[0])
                assert _value(answer) != avoid
    compact = corpus.sibling_rows(20, seed=0, template="compact")
    assert all(r["prompt"].startswith("User: ") and r["prompt"].endswith(". Assistant:") for r in compact)
    assert {r["prompt"].split(" ")[1] for r in compact} == {"Using", "Evaluate"}
    with pytest.raises(ValueError, match="template"):
        corpus.sibling_rows(1, seed=0, template="chat")
    assert len(make_corpus("siblings", 3, seed=0)) == 3
    assert len(make_corpus("countdown_sft", 3, seed=0)) == 3
