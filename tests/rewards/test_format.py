"""Format rewards: example tables (one comment per case) and contract properties."""

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import make_think_format_reward, tag_count, think_format
from rewards.format import last_answer
from rewards.testing import check_reward, r1_completions

THINK_FORMAT_CASES = [
    # the canonical R1 layout
    ("<think>\n2+2\n</think>\n<answer>\n4\n</answer>", 1.0, "ok"),
    # no whitespace at all between the blocks is fine
    ("<think>a</think><answer>4</answer>", 1.0, "ok"),
    # surrounding whitespace (an EOS newline) is fine
    ("  \n<think>a</think>\n\n<answer>4</answer>\n", 1.0, "ok"),
    # empty reasoning is allowed; the content is judged elsewhere
    ("<think></think><answer>4</answer>", 1.0, "ok"),
    # trailing junk after the answer: open-r1's MULTILINE regex accepts this, we do not
    ("<think>a</think>\n<answer>4</answer>\njunk", 0.0, "text_after_answer"),
    # text before the reasoning
    ("Sure! <think>a</think><answer>4</answer>", 0.0, "text_before_think"),
    # text between the blocks
    ("<think>a</think> so <answer>4</answer>", 0.0, "text_between"),
    # no reasoning block
    ("<answer>4</answer>", 0.0, "no_think_tag"),
    # reasoning never closed
    ("<think>a <answer>4</answer>", 0.0, "unclosed_think"),
    # two reasoning blocks
    ("<think>a</think><think>b</think><answer>4</answer>", 0.0, "repeated_think_tag"),
    # a nested opening tag inside the reasoning
    ("<think>a <think> b</think><answer>4</answer>", 0.0, "repeated_think_tag"),
    # no answer block
    ("<think>a</think> 4", 0.0, "no_answer_tag"),
    # two answers
    ("<think>a</think><answer>4</answer><answer>5</answer>", 0.0, "repeated_answer_tag"),
    # answer never closed
    ("<think>a</think><answer>4", 0.0, "unclosed_answer"),
    # closing answer tag before the opening one
    ("<think>a</think></answer>4<answer>", 0.0, "unclosed_answer"),
    # answer block inside the reasoning
    ("<think>a <answer>4</answer></think>", 0.0, "text_between"),
    # an empty answer
    ("<think>a</think><answer>  </answer>", 0.0, "empty_answer"),
    # ... or only invisible characters (zero-width space, joiner, BOM)
    ("<think>a</think><answer>\u200b\u200d\ufeff</answer>", 0.0, "empty_answer"),
    # plain text
    ("the answer is 4", 0.0, "no_think_tag"),
    # empty completion
    ("", 0.0, "no_think_tag"),
]


@pytest.mark.parametrize(("text", "value", "reason"), THINK_FORMAT_CASES)
def test_think_format_table(text, value, reason):
    result = think_format.explain(text)
    assert (result.value, result.reason) == (value, reason)


def test_think_format_prefill_aware():
    # TinyZero prefills "<think>": the completion continues it and is judged as such
    assert think_format(["a</think><answer>4</answer>"], prompts=["Assistant: <think>"]) == [1.0]
    # without the prefill the same text has no opening tag
    assert think_format(["a</think><answer>4</answer>"], prompts=["Assistant:"]) == [0.0]
    # a prompt whose <think> is already closed is not a prefill
    assert think_format(["a</think><answer>4</answer>"], prompts=["<think>x</think> Assistant:"]) == [0.0]
    # a prompt that only names the tag prefills nothing: the completion is judged as written
    named = "Show your work in <think> tags.\nAssistant:"
    assert think_format(["<think>a</think><answer>4</answer>"], prompts=[named]) == [1.0]
    user = [{"role": "user", "content": "Reason inside <think>"}]
    assert think_format(["<think>a</think><answer>4</answer>"], prompts=[user]) == [1.0]
    # a chat that continues the assistant's own turn, opened with <think>, is a prefill
    continued = [*user, {"role": "assistant", "content": "<think>\n"}]
    assert think_format(["a</think><answer>4</answer>"], prompts=[continued]) == [1.0]


def test_think_format_chat_reasoning_content():
    # a trainer that splits reasoning into reasoning_content still passes the format
    for key in ("reasoning_content", "reasoning", "thinking"):  # vLLM / servers / TRL's gpt-oss schema
        chat = [{"role": "assistant", "content": "<answer>4</answer>", key: "2+2"}]
        assert think_format([chat]) == [1.0]
    # plain chat content is judged as text
    assert think_format([[{"role": "assistant", "content": "4"}]]) == [0.0]


def test_untagged_answer_variant():
    fmt = make_think_format_reward(require_answer_tag=False)
    # R1 chat layout: reasoning, then the answer as plain text
    texts = ["<think>a</think>\nThe answer is 4.", "<think>a</think>  ", "<think>a</think><answer>4</answer>"]
    assert fmt(texts) == [1.0, 0.0, 0.0]


def test_factory_validation_and_names():
    # bad tags are caller mistakes
    for bad in ("", "<think>", "a b", "a/b"):
        with pytest.raises(ValueError, match="think_tag"):
            make_think_format_reward(think_tag=bad)
    with pytest.raises(ValueError, match="differ"):
        make_think_format_reward(think_tag="x", answer_tag="x")
    with pytest.raises(ValueError, match="max_chars"):
        make_think_format_reward(max_chars=0)
    # names are stable, so TRL logs the same key every run
    assert think_format.__name__ == "think_format"
    assert make_think_format_reward().__name__ == "think_format"
    assert make_think_format_reward(name="fmt").__name__ == "fmt"
    assert pickle.loads(pickle.dumps(make_think_format_reward(think_tag="r"))).__name__ == "r_answer_format"


def test_max_chars():
    fmt = make_think_format_reward(max_chars=50)
    assert fmt.explain("<think>" + "a" * 100 + "</think><answer>1</answer>").reason == "too_long"


TAG_COUNT_CASES = [
    # all four tags once, in order
    ("<think>a</think><answer>1</answer>", 1.0),
    # only the reasoning block
    ("<think>a</think>", 0.5),
    # only the answer block
    ("<answer>1</answer>", 0.5),
    # nothing
    ("hello", 0.0),
    # a repeated tag earns nothing for itself
    ("<think>a</think><answer>1</answer><answer>", 0.75),
    # spam of every tag earns nothing at all
    ("<think></think><answer></answer>" * 50, 0.0),
    # out of order: </think> before <think> gets no credit for <think>... (the first in order is credited)
    ("</think><think>", 0.25),
    # trailing junk does not matter to the partial credit
    ("<think>a</think><answer>1</answer> junk", 1.0),
]


@pytest.mark.parametrize(("text", "value"), TAG_COUNT_CASES)
def test_tag_count_table(text, value):
    assert tag_count([text]) == [value]


def test_tag_count_prefill():
    # the prefilled <think> counts
    assert tag_count(["a</think><answer>1</answer>"], prompts=["<think>"]) == [1.0]


LAST_ANSWER_CASES = [
    # the last complete block wins
    ("<answer>1</answer><answer> 2 </answer>", "2"),
    # a trailing unclosed block is ignored
    ("<answer>1</answer><answer>2", "1"),
    # nothing to extract
    ("no tags", None),
    # only a closing tag
    ("1</answer>", None),
    # empty block
    ("<answer></answer>", ""),
]


@pytest.mark.parametrize(("text", "expected"), LAST_ANSWER_CASES)
def test_last_answer_table(text, expected):
    assert last_answer(text) == expected


@given(r1_completions())
def test_well_formed_completions_score_one(text):
    assert think_format([text]) == [1.0]
    assert tag_count([text]) == [1.0]


@given(r1_completions(), st.text(min_size=1).filter(str.strip))
def test_trailing_text_always_fails(text, junk):
    assert think_format([text + junk]) == [0.0]


@pytest.mark.parametrize(
    "reward", [think_format, tag_count, make_think_format_reward(require_answer_tag=False)], ids=str
)
def test_contract(reward):
    check_reward(reward, max_examples=40)


def test_fast_batch_path_agrees_with_explanations():
    # __call__ takes a fast path for plain string batches; its values must equal the explained ones
    texts = [text for text, _, _ in THINK_FORMAT_CASES] + ["<think>3 < 5</think><answer>1</answer>"]
    for prompts in (None, ["<think>"] * len(texts), [""] * len(texts)):
        kwargs = {} if prompts is None else {"prompts": prompts}
        assert think_format(texts, **kwargs) == [r.value for r in think_format.explain_all(texts, **kwargs)]
