"""Our rewards are TRL-native: a real ``trl.GRPOTrainer`` runs two steps on CPU with them.

The model is a tiny randomly initialised Llama and the tokenizer a byte-level one built locally, so nothing
is downloaded. Random weights write random bytes, so the rewards are 0 here; what this proves is the wiring:
TRL calls our rewards with its own keyword arguments (``prompts``, ``completion_ids``, ``trainer_state``,
``log_metric``, ...) plus the dataset columns, and logs them under their ``__name__``.
"""

import statistics

import pytest

trl = pytest.importorskip("trl")
torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")
tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

from rewards import combine, countdown_accuracy, tag_count, think_format  # noqa: E402


def _tokenizer():
    """A byte-level tokenizer with no merges: 3 special tokens + 256 byte symbols."""
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2}
    for symbol in tokenizers.pre_tokenizers.ByteLevel.alphabet():
        vocab[symbol] = len(vocab)
    raw = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=[]))
    raw.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = tokenizers.decoders.ByteLevel()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )


def test_grpo_trainer_runs_with_our_rewards(tmp_path):
    tokenizer = _tokenizer()
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(config)
    rows = [(3, 8), (2, 5), (4, 6), (7, 3)]
    dataset = datasets.Dataset.from_list(
        [{"prompt": f"{a} {b} -> {a * b}? <think>", "nums": [a, b], "target": a * b} for a, b in rows]
    )
    seen = []

    def spy(completions, **kwargs):
        seen.append((list(completions), kwargs))
        return [0.0] * len(completions)

    components = {"format": think_format, "accuracy": countdown_accuracy}
    r1 = combine(components, gates={"accuracy": "format"}, name="r1")
    args = trl.GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=12,
        max_steps=2, use_cpu=True, report_to="none", logging_steps=1, save_strategy="no", bf16=False, seed=0,
        disable_tqdm=True,
    )  # fmt: skip
    trainer = trl.GRPOTrainer(
        model=model, reward_funcs=[think_format, tag_count, countdown_accuracy, r1, spy], args=args,
        train_dataset=dataset, processing_class=tokenizer,
    )  # fmt: skip
    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert len(logs) == 2
    for name in ("think_format", "tag_count", "countdown_accuracy", "r1"):
        assert all(f"rewards/{name}/mean" in entry for entry in logs), name
    # TRL passed its own keywords and the dataset columns; our rewards accepted them
    completions, kwargs = seen[0]
    assert {"prompts", "completion_ids", "nums", "target"} <= set(kwargs)
    assert len(kwargs["nums"]) == len(completions) == len(kwargs["completion_ids"])
    # the logged means are what our rewards give on the same completions
    for name, reward in (("countdown_accuracy", countdown_accuracy), ("tag_count", tag_count)):
        values = reward(completions, **kwargs)
        assert logs[0][f"rewards/{name}/mean"] == pytest.approx(statistics.mean(values), abs=1e-6)
