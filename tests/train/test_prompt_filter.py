"""GRPO prompt filters: ``FilteredItems`` keeps the environment's item contract over the accepted items."""

import pytest

from rlenv.train.config import GRPOConfig
from rlenv.train.countdown_eval import search_bucket, search_fits_trace
from rlenv.train.recipes import RecipeConfig
from rlenv.train.rollout import FilteredItems, make_env, score_completions
from rlenv.train.traces import equation_from_steps, search_trace


def _even_target(info):
    return info["target"] % 2 == 0


def test_item_i_is_the_i_th_accepted_item_of_the_stream():
    raw = make_env("rlenv/Countdown-v0", {}, seed=3)
    stream = [raw.reset(options={"index": j})[1] for j in range(60)]
    accepted = [info for info in stream if _even_target(info)]
    env = FilteredItems(make_env("rlenv/Countdown-v0", {}, seed=3), _even_target)
    env.reset(seed=3)
    for i in (4, 0, 7, 2):  # any order: the mapping is found once and replayed
        prompt, info = env.reset(options={"index": i})
        assert (info["nums"], info["target"]) == (accepted[i]["nums"], accepted[i]["target"])
        assert info["index"] == i
        assert prompt == raw.reset(options={"index": info["stream_index"]})[0]


def test_plain_and_seeded_resets_move_through_accepted_items_only():
    env = FilteredItems(make_env("rlenv/Countdown-v0", {}, seed=0), _even_target)
    _, first = env.reset(seed=5)
    _, second = env.reset()
    assert (first["index"], second["index"]) == (0, 1)
    assert _even_target(first) and _even_target(second)
    assert env.reset(seed=5)[1]["stream_index"] == first["stream_index"]  # a new seed starts over


def test_step_scores_the_filtered_item():
    spec = "rlenv.train.countdown_eval:search_fits_trace"
    env = make_env("rlenv/Countdown-v0", {}, seed=0, prompt_filter=spec)
    _, info = env.reset(options={"index": 2})
    equation = equation_from_steps(info["nums"], search_trace(info["nums"], info["target"])[1])
    right, wrong = f"<think>x</think><answer>{equation}</answer>", "<think>x</think><answer>1</answer>"
    env.reset(options={"index": 9})  # scoring replays item 2 wherever the env was before
    rewards, _, failures = score_completions(env, 2, [right, wrong])
    assert failures == 0 and rewards[0] == 1.0 and rewards[1] < 1.0


@pytest.mark.parametrize("index", [-1, 1.5, True, "0"])
def test_a_bad_index_is_a_value_error(index):
    env = FilteredItems(make_env("rlenv/Countdown-v0", {}, seed=0), _even_target)
    with pytest.raises(ValueError, match="index"):
        env.reset(options={"index": index})


def test_a_filter_that_accepts_nothing_fails_instead_of_scanning_forever():
    env = FilteredItems(make_env("rlenv/Countdown-v0", {}, seed=0), lambda info: False, max_scan=50)
    with pytest.raises(ValueError, match="rejected 50 items in a row"):
        env.reset(options={"index": 0})


def test_a_bad_filter_is_named():
    with pytest.raises(ValueError, match="module:function"):
        GRPOConfig(prompt_filter="search_fits_trace")
    with pytest.raises(ValueError, match="cannot import"):
        make_env("rlenv/Countdown-v0", {}, seed=0, prompt_filter="rlenv.train.countdown_eval:no_such_filter")


def test_search_fits_trace_is_every_bucket_but_over_16():
    env = make_env("rlenv/Countdown-v0", {"config": {"min_numbers": 3, "max_numbers": 3}}, seed=0)
    items = [env.reset(options={"index": j})[1] for j in range(300)]
    fits = [search_fits_trace(info) for info in items]
    assert fits == [search_bucket(info["nums"], info["target"]) != "over 16" for info in items]
    assert 0 < fits.count(False) < len(fits) // 4  # the long searches are a small minority


def test_r1_skips_long_searches_in_grpo_and_r1zero_does_not():
    assert RecipeConfig().effective.grpo_skip_long_searches is True
    assert RecipeConfig(recipe="r1zero").effective.grpo_skip_long_searches is False
    assert RecipeConfig(grpo_skip_long_searches=False).effective.grpo_skip_long_searches is False
