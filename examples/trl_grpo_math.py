"""Our Math-v0 environment inside TRL's GRPOTrainer: exported rows, our rewards, a tiny random model, CPU.

What it shows: the environments are not tied to our trainer. ``rlenv.to_hf_dataset`` turns env items into a
``datasets.Dataset`` (a ``prompt`` column plus the reward columns), and ``rewards.math_accuracy`` /
``rewards.think_format`` plug into ``GRPOTrainer(reward_funcs=...)`` unchanged, because they follow TRL's
reward contract (``fn(completions, **columns) -> list[float | None]``; TRL forwards the ``answer`` column).

The model is a randomly initialised Llama-architecture network (two layers, hidden size 64) with a byte-level
BPE tokenizer trained here on the exported prompts, so nothing is downloaded. It will not learn math in a
few steps; the point is the plumbing, checked end to end: rollouts, rewards, advantages, an optimiser step.

Usage::

    python examples/trl_grpo_math.py                      # 4 steps, ~1 minute on a laptop CPU
    python examples/trl_grpo_math.py --steps 2 --items 8  # the smoke test's settings

Every exported row keeps ``env_id``, ``seed``, ``index`` and ``env_kwargs``: ``rlenv.regenerate(row)``
rebuilds it, so the training set of a run is reproducible from three numbers.

References: DeepSeekMath (arXiv:2402.03300) GRPO; TRL ``GRPOTrainer`` documentation.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


@dataclass(frozen=True, kw_only=True)
class ExampleConfig:
    """Settings of the example (CPU-sized)."""

    items: int = 16
    """Training rows exported from rlenv/Math-v0."""
    steps: int = 4
    """GRPO optimiser steps."""
    num_generations: int = 4
    """Completions per prompt (the GRPO group size)."""
    max_completion_length: int = 24
    """Tokens generated per completion."""
    difficulty: int = 1
    """Math-v0 difficulty (1-5)."""
    seed: int = 0
    """Data-set and training seed."""
    output_dir: str = ""
    """Where TRL writes its run (a temporary directory when empty)."""

    def __post_init__(self) -> None:
        for name in ("items", "steps", "num_generations", "max_completion_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.difficulty not in range(1, 6):
            raise ValueError(f"difficulty={self.difficulty} must be in 1..5")


def build_tokenizer(texts: list[str], vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on ``texts``, wrapped for transformers (left padding)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<s>", "</s>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   padding_side="left")


def build_model(tokenizer, seed: int):
    """A two-layer Llama-architecture causal LM with random weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    return LlamaForCausalLM(config)


def run(config: ExampleConfig) -> dict[str, float]:
    """Exports Math-v0 items, trains a few GRPO steps with our rewards, returns the last logged metrics."""
    from trl import GRPOConfig, GRPOTrainer

    import rewards
    import rlenv

    dataset = rlenv.to_hf_dataset("rlenv/Math-v0", config.items, seed=config.seed,
                                  difficulty=config.difficulty)
    tokenizer = build_tokenizer([*dataset["prompt"], "<think> </think> <answer> </answer> 0123456789"])
    model = build_model(tokenizer, config.seed)
    batch = config.num_generations * 2  # two prompts per step
    args = GRPOConfig(
        output_dir=config.output_dir or tempfile.mkdtemp(prefix="trl_grpo_math_"),
        max_steps=config.steps,
        per_device_train_batch_size=batch,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        learning_rate=1e-3,
        reward_weights=[0.9, 0.1],  # the env's default: 0.9 accuracy + 0.1 format
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=config.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[rewards.math_accuracy, rewards.think_format], args=args,
                          train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "reward" in entry]
    return logged[-1] if logged else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=ExampleConfig.items)
    parser.add_argument("--steps", type=int, default=ExampleConfig.steps)
    parser.add_argument("--max-completion-length", type=int, default=ExampleConfig.max_completion_length)
    parser.add_argument("--difficulty", type=int, default=ExampleConfig.difficulty)
    args = parser.parse_args()
    metrics = run(ExampleConfig(items=args.items, steps=args.steps, difficulty=args.difficulty,
                                max_completion_length=args.max_completion_length))
    for key in sorted(metrics):
        if key.startswith(("reward", "rewards/", "loss", "completions/mean_length")):
            print(f"{key}: {metrics[key]}")


if __name__ == "__main__":
    main()
