"""rewards.combine: weights, gates, None handling, breakdown, validation, pickling."""

import pickle

import pytest

from rewards import CombinedReward, combine, countdown_accuracy, tag_count, think_format
from rewards.testing import check_reward, countdown_problems

GOOD = "<think>3 times 8</think><answer>3 * 8</answer>"
NO_FORMAT = "<answer>3 * 8</answer>"
WRONG = "<think>hm</think><answer>3 + 8</answer>"
COLS = {"nums": [[3, 8]] * 3, "target": [24] * 3}


def constant(value):
    """A plain function reward (not a Reward object) returning ``value`` for every completion."""

    def reward(completions, **kwargs):
        return [value] * len(completions)

    reward.__name__ = f"constant_{value}"
    return reward


def test_weighted_sum_and_gate():
    r1 = combine(
        {"format": think_format, "accuracy": countdown_accuracy},
        weights={"format": 0.5, "accuracy": 2.0},
        gates={"accuracy": "format"},
    )
    # correct and formatted: 0.5 * 1 + 2 * 1
    # correct but unformatted: the gate drops the accuracy
    # formatted but wrong: only the format weight
    assert r1([GOOD, NO_FORMAT, WRONG], **COLS) == [2.5, 0.0, 0.5]


def test_no_gate_counts_accuracy_anyway():
    plain = combine({"format": think_format, "accuracy": countdown_accuracy})
    assert plain([GOOD, NO_FORMAT, WRONG], **COLS) == [2.0, 1.0, 1.0]


def test_breakdown_has_raw_components_and_total():
    r1 = combine({"format": think_format, "accuracy": countdown_accuracy}, gates={"accuracy": "format"})
    table = r1.breakdown([GOOD, NO_FORMAT, WRONG], **COLS)
    assert table == {"format": [1.0, 0.0, 1.0], "accuracy": [1.0, 1.0, 0.0], "total": [2.0, 0.0, 1.0]}


def test_none_follows_trl_nansum():
    # a None component is left out of the sum
    mixed = combine({"a": constant(None), "b": constant(0.5)})
    assert mixed(["x", "y"]) == [0.5, 0.5]
    # all None: the total is None (the sample cannot be judged)
    assert combine({"a": constant(None)})(["x"]) == [None]
    # a None gate closes the gate
    gated = combine({"a": constant(None), "b": constant(0.5)}, gates={"b": "a"})
    assert gated(["x"]) == [0.0]


def test_plain_callables_and_explain():
    r = combine({"fmt": think_format, "const": constant(0.25)}, name="my_reward")
    assert r.__name__ == "my_reward"
    result = r.explain(GOOD)
    assert result.value == 1.25
    # the explanation lists every component with its reason
    assert "fmt=1.0(ok)" in result.detail and "const=0.25(ok)" in result.detail


def test_value_range_from_components():
    r = combine({"fmt": think_format, "tags": tag_count}, weights={"tags": -1.0})
    assert r.value_range[0] == pytest.approx(-1.0) and r.value_range[1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"components": {}}, ValueError, "non-empty"),
        ({"components": {"a": 3}}, TypeError, "not callable"),
        ({"components": {"a": think_format}, "weights": {"b": 1.0}}, ValueError, "unknown components"),
        ({"components": {"a": think_format}, "gates": {"b": "a"}}, ValueError, "unknown components"),
        ({"components": {"a": think_format}, "gates": {"a": "a"}}, ValueError, "another component"),
        ({"components": {"a": think_format}, "weights": {"a": float("inf")}}, ValueError, "finite"),
        ({"components": {"a": think_format}, "name": ""}, ValueError, "name"),
    ],
)
def test_validation(kwargs, error, match):
    components = kwargs.pop("components")
    with pytest.raises(error, match=match):
        combine(components, **kwargs)


def test_bad_component_output_is_reported():
    with pytest.raises(ValueError, match="must return a list of 2"):
        combine({"bad": lambda completions, **kw: [1.0]})(["a", "b"])
    with pytest.raises(ValueError, match="finite"):
        combine({"bad": lambda completions, **kw: [float("nan")]})(["a"])


def test_pickle_round_trip():
    components = {"format": think_format, "accuracy": countdown_accuracy}
    r = combine(components, gates={"accuracy": "format"}, name="r1")
    clone = pickle.loads(pickle.dumps(r))
    assert isinstance(clone, CombinedReward) and clone.__name__ == "r1"
    assert clone([GOOD, NO_FORMAT, WRONG], **COLS) == r([GOOD, NO_FORMAT, WRONG], **COLS)


def test_contract():
    r = combine(
        {"format": think_format, "tags": tag_count, "accuracy": countdown_accuracy},
        weights={"format": 0.25, "tags": 0.25, "accuracy": 0.5},
        gates={"accuracy": "format"},
    )
    check_reward(r, columns=countdown_problems(), max_examples=30)
