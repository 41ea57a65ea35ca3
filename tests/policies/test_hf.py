"""The transformers wrapper: HF tokenizer parity, save/load through AutoModel, two TRL GRPO steps on CPU."""

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("trl")

from policies import ModelConfig, Tokenizer
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
