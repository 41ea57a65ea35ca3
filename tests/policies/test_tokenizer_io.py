"""Tokenizer round trip (Hypothesis), checkpoint round trip and parameter counts."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from policies import (
    SPECIAL_TOKENS,
    ModelConfig,
    Tokenizer,
    Transformer,
    count_parameters,
    generate,
    load_model,
    save_model,
)

TOK = Tokenizer()


@given(st.text())
def test_round_trip_any_unicode(text):
    ids = TOK.encode(text)
    assert all(0 <= i < TOK.vocab_size for i in ids)
    assert TOK.decode(ids) == text


@given(
    st.lists(
        st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "12", "+", " ", "é"]), max_size=12
    )
)
def test_tags_are_single_tokens(parts):
    text = "".join(parts)
    ids = TOK.encode(text)
    assert TOK.decode(ids) == text
    assert sum(i in (3, 4, 5, 6) for i in ids) == sum(p.startswith("<") for p in parts)


def test_control_tokens_not_injectable_and_specials():
    assert TOK.encode("<eos>") == TOK.encode("<") + TOK.encode("eos>")
    assert TOK.encode("hi", add_bos=True, add_eos=True) == [TOK.bos_id, *TOK.encode("hi"), TOK.eos_id]
    assert TOK.decode([TOK.bos_id, *TOK.encode("a"), TOK.eos_id]) == "a"
    assert TOK.decode([TOK.eos_id], skip_special_tokens=False) == "<eos>"
    assert [TOK.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(7))
    assert TOK.decode([7 + 0xC3]) == "\ufffd"  # a lone UTF-8 lead byte from the model is replaced, not raised
    with pytest.raises(ValueError, match="outside"):
        TOK.decode([10_000])
    with pytest.raises(TypeError):
        TOK.encode(b"bytes")


def test_lone_surrogate_is_a_clear_value_error():
    for text, at in (("\ud800", 0), ("ab<think>\udfff", 9)):
        with pytest.raises(ValueError, match=f"lone surrogate .* at index {at}") as err:
            TOK.encode(text)
        assert type(err.value) is ValueError  # not the raw UnicodeEncodeError
    assert TOK.decode(TOK.encode("\U0001f600")) == "\U0001f600"  # a proper pair (one code point) is fine


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Transformer(ModelConfig.tiny())
    with torch.no_grad():
        model.moe_layers[0].gate.bias.uniform_(-0.1, 0.1)  # balancing state must survive too
    save_model(model, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config == model.config
    tokens = torch.randint(0, 263, (2, 7))
    torch.testing.assert_close(loaded(tokens), model(tokens), atol=0, rtol=0)
    a = generate(model, [[1, 2, 3]], max_new_tokens=5, temperature=0).tokens
    assert generate(loaded, [[1, 2, 3]], max_new_tokens=5, temperature=0).tokens == a
    with pytest.raises(ValueError, match="checkpoint"):
        load_model(tmp_path)


def test_parameter_counts():
    cfg = ModelConfig.small()
    counts = count_parameters(Transformer(cfg))
    per_expert = 3 * cfg.dim * cfg.moe_inter_dim
    inactive = cfg.n_moe_layers * (cfg.n_routed_experts - cfg.n_activated_experts) * per_expert
    assert counts["total"] - counts["mtp"] - counts["active"] == inactive
    assert 1_000_000 < counts["total"] < 5_000_000  # "a few M params" for the CPU default run
