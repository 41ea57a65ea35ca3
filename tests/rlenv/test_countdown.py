"""Countdown generator and solver: solvable by construction, shortcut control, streams, speed, reward 1."""

import itertools
import math
import re
from fractions import Fraction

import gymnasium as gym
import pytest

import rewards
from rlenv.tasks import countdown as cd

OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else None,
}


def brute_force_values(nums):
    """Every value reachable using all of nums exactly once (any order, any bracketing, exact rationals)."""
    if len(nums) == 1:
        return {nums[0]}
    out = set()
    for i, j in itertools.permutations(range(len(nums)), 2):
        rest = [n for k, n in enumerate(nums) if k not in (i, j)]
        for fn in OPS.values():
            v = fn(nums[i], nums[j])
            if v is not None:
                out |= brute_force_values([*rest, v])
    return out


def test_every_generated_item_is_solvable_by_brute_force():
    # an independent exhaustive search (rationals, both operand orders) over 3- and 4-number items
    items = cd.generate(60, seed=11, config=cd.CountdownConfig(min_numbers=3, max_numbers=4))
    for item in items:
        assert Fraction(item["target"]) in brute_force_values([Fraction(n) for n in item["nums"]]), item


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_solver_finds_a_verified_equation_at_every_difficulty(level):
    config = cd.CountdownConfig.for_difficulty(level)
    items = cd.generate(15, seed=level, config=config)
    for item in items:
        assert config.min_numbers <= len(item["nums"]) <= config.max_numbers
        assert config.min_target <= item["target"] <= config.max_target
        equation = cd.solve(item["nums"], item["target"])
        assert equation is not None, item
        for expr in (equation, item["solution"]):  # solver output and the generator's witness
            completion = f"<think>.</think><answer>{expr}</answer>"
            assert rewards.countdown_accuracy([completion], nums=[item["nums"]], target=[item["target"]]) == [
                1.0
            ]


def test_solve_steps_replay_to_the_target():
    nums, target = [25, 50, 75, 100, 3, 6], 952  # the famous 1972 Countdown round
    steps = cd.solve_steps(nums, target)
    assert steps is not None and steps[-1][3] == target and len(steps) <= len(nums) - 1
    pool = list(nums)
    for a, op, b, result in steps:
        pool.remove(a)
        pool.remove(b)
        assert OPS[op](Fraction(a), Fraction(b)) == result
        pool.append(result)
    assert pool == [target]
    assert cd.solve([2, 2], 5) is None and cd.solve_steps([2, 2], 5) is None


def test_stepping_with_a_correct_equation_gives_reward_one():
    env = gym.make("rlenv/Countdown-v0", difficulty=4)
    for index in range(5):
        _, info = env.reset(seed=3, options={"index": index})
        equation = cd.solve(info["nums"], info["target"])
        _, reward, terminated, truncated, step_info = env.step(
            f"<think>try</think><answer>{equation}</answer>"
        )
        assert (reward, terminated, truncated) == (1.0, True, False)
        assert step_info["rewards"] == {"accuracy": 1.0, "format": 1.0}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {"right, tidy": 1.0, "right, no tags": 0.9, "wrong, tidy": 0.1, "cut off": 0.0}),
        ({"reward_gates": {"format": "accuracy"}},
         {"right, tidy": 1.0, "right, no tags": 0.9, "wrong, tidy": 0.0, "cut off": 0.0}),
        ({"reward_weights": {"accuracy": 1.0, "format": 0.5}},
         {"right, tidy": 1.5, "right, no tags": 1.0, "wrong, tidy": 0.5, "cut off": 0.0}),
    ],
)
def test_default_reward_weights_and_gates(kwargs, expected):
    env = gym.make("rlenv/Countdown-v0", template="terse", **kwargs)
    _, info = env.reset(seed=0, options={"index": 0})
    right, wrong = info["solution"], "+".join(map(str, info["nums"]))
    assert rewards.countdown_accuracy([f"<answer>{wrong}</answer>"], nums=[info["nums"]],
                                      target=[info["target"]]) == [0.0]
    completions = {
        "right, tidy": f"<think>\nx\n</think>\n<answer>{right}</answer>",
        "right, no tags": f"<answer>{right}</answer>",
        "wrong, tidy": f"<think>\nx\n</think>\n<answer>{wrong}</answer>",
        "cut off": "<think>\n1+2=3\n4+5=",
    }
    scores = {}
    for name, text in completions.items():
        env.reset(seed=0, options={"index": 0})
        scores[name] = pytest.approx(env.step(text)[1])
    assert scores == expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reward_gates": {"format": "format"}}, "reward_gates"),
        ({"reward_gates": {"format": "length"}}, "reward_gates"),
        ({"reward": rewards.countdown_accuracy, "reward_gates": {"format": "accuracy"}}, "compose it"),
        ({"reward": rewards.countdown_accuracy, "reward_weights": {"format": 0.0}}, "compose it"),
    ],
)
def test_bad_default_reward_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("rlenv/Countdown-v0", **kwargs)


def test_tinyzero_template_prefills_think_and_is_scored_prefill_aware():
    env = gym.make("rlenv/Countdown-v0", template="tinyzero")
    obs, info = env.reset(seed=0)
    assert obs.endswith("Let me solve this step by step.\n<think>")
    _, reward, *_ = env.step(f"reasoning</think><answer>{info['solution']}</answer>")
    assert reward == 1.0


@pytest.mark.parametrize("template", ["compact", "terse"])
def test_short_templates_state_the_numbers_and_the_target(template):
    env = gym.make("rlenv/Countdown-v0", template=template)
    obs, info = env.reset(seed=0)
    nums = "[" + ", ".join(map(str, info["nums"])) + "]"
    assert obs.startswith("User: ") and obs.endswith(" Assistant:") and nums in obs
    assert obs.split()[-2].rstrip(".") == str(info["target"])
    if template == "terse":
        assert obs == f"User: {nums} -> {info['target']} Assistant:"
    _, reward, *_ = env.step(f"<think>x</think><answer>{info['solution']}</answer>")
    assert reward == 1.0


def test_shortcut_targets_are_rare_by_default_and_reported():
    items = cd.generate(3000, seed=0)
    dist = cd.target_distribution(items)
    assert dist["sum_rate"] < 0.05 and dist["product_rate"] < 0.05
    assert math.isclose(sum(share for *_, share in dist["histogram"]), 1.0)
    assert set(dist["n_numbers"]) == {3, 4}
    # the naive construction really is shortcut-heavy at difficulty 1 (3 numbers): that is what we fix
    config = cd.CountdownConfig.for_difficulty(1)
    naive = cd.target_distribution([cd.naive_item(i, config=config) for i in range(2000)])
    ours = cd.target_distribution(cd.generate(2000, config=config))
    assert naive["sum_rate"] > 0.2 > 0.05 > ours["sum_rate"]
    forced = cd.target_distribution(cd.generate(2000, config=cd.CountdownConfig(shortcut_rate=0.5)))
    assert forced["sum_rate"] + forced["product_rate"] > 0.2


def _key(item):
    return tuple(item["nums"]), item["target"]


def test_seeds_and_splits_share_no_items():
    a = {_key(x) for x in cd.generate(1000, seed=42)}
    b = {_key(x) for x in cd.generate(1000, seed=43)}
    test = {_key(x) for x in cd.generate(1000, seed=42, split="test")}
    assert len(a) == 1000 and not a & b and not a & test
    # item i regenerates alone, identical to its place in the batch
    assert cd.generate_item(517, seed=42) == cd.generate(1, seed=42, start=517)[0]


def test_no_problem_is_in_both_splits_whatever_the_seeds():
    # A small space (3 numbers in 1..20): streams alone repeat problems; the content split keeps the test
    # side apart (numbers as a multiset and the target, in any order).
    config = cd.CountdownConfig(min_numbers=3, max_numbers=3, max_value=20, min_target=10, max_target=60)
    key = lambda item: cd.content_key(item["nums"], item["target"])  # noqa: E731
    train = {key(x) for seed in (0, 1) for x in cd.generate(2000, seed=seed, config=config)}
    test = [key(x) for x in cd.generate(1000, seed=0, split="test", config=config)]
    assert len(set(test)) > 100 and not train & set(test)


def test_witnesses_use_only_the_configured_operators():
    for ops in (("-", "/"), ("-",), ("+", "-")):
        config = cd.CountdownConfig(operators=ops)
        for item in cd.generate(100, seed=1, config=config):
            assert set(re.findall(r"[-+*/]", item["solution"])) <= set(ops), (ops, item)
    with pytest.raises(ValueError, match="no countdown item"):  # division alone rarely lands in 10..100
        cd.generate(50, seed=1, config=cd.CountdownConfig(operators=("/",)))


def test_generator_never_touches_global_rngs():
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    py_state, np_state = random.getstate(), np.random.get_state()[1].copy()
    cd.generate(50, seed=1)
    gym.make("rlenv/Countdown-v0").reset(seed=1)
    assert random.getstate() == py_state and (np.random.get_state()[1] == np_state).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_numbers": 2},
        {"max_numbers": 7},
        {"min_value": 0},
        {"operators": ("^",)},
        {"shortcut_rate": 1.5},
        {"min_target": 50, "max_target": 10},
    ],
)
def test_bad_config_raises_value_error(kwargs):
    with pytest.raises(ValueError):
        cd.CountdownConfig(**kwargs)


def test_unreachable_target_range_fails_loudly():
    config = cd.CountdownConfig(
        min_value=1,
        max_value=2,
        min_numbers=3,
        max_numbers=3,
        min_target=10_000,
        max_target=20_000,
        max_tries=5,
    )
    with pytest.raises(ValueError, match="widen"):
        cd.generate_item(0, config=config)
