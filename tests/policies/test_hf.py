"""The transformers wrapper: HF tokenizer parity, save/load through AutoModel, two TRL GRPO steps on CPU."""

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("trl")

from policies import ModelConfig, Tokenizer, generate
from policies.hf import ExpertBiasCallback, PolicyForCausalLM, PolicyHFConfig, to_hf_tokenizer


def test_hf_tokenizer_matches_bundled():
    hf_tok, tok = to_hf_tokenizer(), Tokenizer()
    for text in ["<think>12*3=36</think> <answer>36</answer>", "héllo 世界 😀", " a\n\tb  "]:
        ids = hf_tok(text)["input_ids"]
        assert ids == tok.encode(text)
        assert hf_tok.decode(ids) == text


def test_auto_model_round_trip(tmp_path):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    hf = PolicyForCausalLM(PolicyHFConfig(policy=ModelConfig.tiny().to_dict()))
    hf.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, PolicyForCausalLM)
    ids = torch.tensor([[1, 40, 41, 42]])
    torch.testing.assert_close(loaded(ids).logits, hf(ids).logits)
    out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False)
    assert out.shape[0] == 1 and out[0, :4].tolist() == ids[0].tolist() and out.shape[1] <= 9


class _ConstHead(torch.nn.Module):
    """Output head that always predicts ``token`` (so greedy rows are predictable)."""

    def __init__(self, token):
        super().__init__()
        self.token = token

    def forward(self, h):
        out = torch.zeros(*h.shape[:-1], 263)
        out[..., self.token] = 9.0
        return out


def _tiny_hf(seed=0):
    torch.manual_seed(seed)
    return PolicyForCausalLM(PolicyHFConfig(policy=ModelConfig.tiny().to_dict())).eval()


def _spy(monkeypatch):
    """Record the keyword arguments ``PolicyForCausalLM.generate`` passes to ``policies.generate``."""
    import policies.hf as hf_module

    calls, real = [], hf_module.policy_generate

    def spy(model, prompts, **kwargs):
        calls.append(kwargs)
        return real(model, prompts, **kwargs)

    monkeypatch.setattr(hf_module, "policy_generate", spy)
    return calls


def test_hf_generate_merges_model_generation_config():
    from transformers import GenerationConfig

    hf = _tiny_hf()
    hf.model.head = _ConstHead(2)  # always <eos>
    ids = torch.tensor([[10, 11, 12]])
    assert hf.generate(ids, max_new_tokens=4).tolist() == [[10, 11, 12, 2]]
    # a GenerationConfig without eos_token_id takes the model's (it used to run to max_new_tokens)
    explicit = GenerationConfig(max_new_tokens=4)
    assert hf.generate(ids, generation_config=explicit).tolist() == [[10, 11, 12, 2]]
    hf.generation_config.eos_token_id = None
    assert hf.generate(ids, max_new_tokens=4).tolist() == [[10, 11, 12, 2, 2, 2, 2]]


def test_hf_generate_lengths():
    hf = _tiny_hf()
    hf.model.head = _ConstHead(50)  # never <eos>
    ids = torch.tensor([[0, 0, 10, 11, 12], [13, 14, 15, 16, 17]])
    mask = (ids != 0).long()
    assert torch.equal(hf.generate(ids, attention_mask=mask, max_new_tokens=0), ids)
    assert hf.generate(ids, attention_mask=mask, max_length=7).shape == (2, 7)  # total length, as HF
    assert hf.generate(ids, attention_mask=mask).shape == (2, 25)  # HF's default: 20 new tokens
    assert hf.generate(ids, attention_mask=mask, max_new_tokens=3, max_length=7).shape == (2, 8)
    hf.generation_config.max_new_tokens = 2
    assert hf.generate(ids, attention_mask=mask).shape == (2, 7)


def test_hf_generate_num_return_sequences_matches_native_num_samples():
    hf = _tiny_hf()
    ids = torch.tensor([[0, 0, 10, 11, 12], [13, 14, 15, 16, 17]])
    mask = (ids != 0).long()
    torch.manual_seed(7)
    out = hf.generate(
        ids, attention_mask=mask, max_new_tokens=6, do_sample=True, top_k=0, num_return_sequences=3
    )
    torch.manual_seed(7)
    prompts = [[10, 11, 12], [13, 14, 15, 16, 17]]
    ref = generate(hf.model, prompts, max_new_tokens=6, num_samples=3, stop_token_ids=[2])
    assert out.shape[0] == 6  # HF's order: each prompt's samples adjacent
    assert torch.equal(out[:, :5], ids.repeat_interleave(3, dim=0))
    for row, toks in zip(out[:, 5:].tolist(), ref.tokens, strict=True):
        assert row[: len(toks)] == toks and all(t == 0 for t in row[len(toks) :])
    with pytest.raises(ValueError, match="num_return_sequences"):
        hf.generate(ids, max_new_tokens=2, num_return_sequences=2)  # greedy copies would be identical


def test_hf_generate_resolves_options_like_transformers(monkeypatch):
    from transformers import GenerationConfig

    hf, calls = _tiny_hf(), _spy(monkeypatch)
    ids = torch.tensor([[10, 11, 12]])
    hf.generate(ids, max_new_tokens=3)
    assert calls[-1]["temperature"] == 0.0 and calls[-1]["max_new_tokens"] == 3  # greedy by default
    hf.generate(ids, max_new_tokens=3, do_sample=True, temperature=0.7, top_p=0.9)
    assert (calls[-1]["temperature"], calls[-1]["top_p"], calls[-1]["top_k"]) == (0.7, 0.9, 50)  # HF's top_k
    hf.generation_config.top_k = 0
    hf.generate(ids, max_new_tokens=3, do_sample=True)
    assert calls[-1]["top_k"] == 0  # the model's own generation_config fills unset fields
    # what TRL's GRPOTrainer passes: unchanged sampler arguments
    trl_cfg = GenerationConfig(
        max_new_tokens=8,
        do_sample=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=[2],
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        min_p=None,
        repetition_penalty=1.0,
        cache_implementation=None,
        disable_compile=True,
    )
    hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=trl_cfg)
    assert calls[-1] == dict(
        max_new_tokens=8, temperature=1.0, top_p=1.0, top_k=0, stop_token_ids=[2], pad_id=0, num_samples=1
    )


def test_hf_generate_rejects_what_it_cannot_honour():
    from transformers import LogitsProcessorList, StoppingCriteriaList
    from transformers.generation import MaxLengthCriteria, MinLengthLogitsProcessor

    hf = _tiny_hf()
    ids = torch.tensor([[10, 11, 12]])
    bad = [
        dict(num_beams=2),
        dict(repetition_penalty=1.3),
        dict(no_repeat_ngram_size=2),
        dict(do_sample=True, min_p=0.1),
        dict(return_dict_in_generate=True),
        dict(stop_strings=["x"]),
        dict(min_new_tokens=2),
        dict(stopping_criteria=StoppingCriteriaList([MaxLengthCriteria(5)])),
        dict(logits_processor=LogitsProcessorList([MinLengthLogitsProcessor(5, eos_token_id=2)])),
        dict(streamer=object()),
        dict(not_an_option=1),
    ]
    for kwargs in bad:
        with pytest.raises(ValueError, match="cannot"):
            hf.generate(ids, max_new_tokens=2, **kwargs)
    with pytest.raises(ValueError, match="temperature"):
        hf.generate(ids, max_new_tokens=2, do_sample=True, temperature=0.0)
    # neutral values of the same options are fine
    out = hf.generate(
        ids,
        max_new_tokens=2,
        num_beams=1,
        repetition_penalty=1.0,
        logits_processor=LogitsProcessorList(),
        stopping_criteria=None,
        use_cache=True,
    )
    assert out.shape[0] == 1


def test_trl_grpo_two_steps(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    model = PolicyForCausalLM(PolicyHFConfig(policy=ModelConfig.tiny().to_dict()))
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def digit_reward(completions, **kwargs):
        return [float(sum(ch.isdigit() for ch in c)) for c in completions]

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        temperature=1.0,
        seed=0,
    )
    data = Dataset.from_dict({"prompt": ["1+1=", "2*3=", "7-4=", "9+9="] * 2})
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=digit_reward,
        args=args,
        train_dataset=data,
        processing_class=to_hf_tokenizer(),
        callbacks=[ExpertBiasCallback()],
    )
    result = trainer.train()
    assert result.global_step == 2
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any("experts" in k for k in changed) and any("attn" in k for k in changed)
    assert any("gate.bias" in k for k in changed)  # aux-loss-free balancing ran after each step
