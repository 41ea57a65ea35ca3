"""GRPO step throughput: ``rlenv train`` vs TRL's ``GRPOTrainer``, same model, batch, G, lengths, CPU.

Both trainers get the same tiny bundled policy (TRL through ``policies.hf.PolicyForCausalLM``, whose
``generate`` is the bundled latent-cache sampler; ours through ``rlenv.train``'s bundled adapter), the same
initial weights, the same Countdown prompts (r1zero template) and the same reward (the environment's, called
through a TRL reward function for TRL), with G completions per prompt, the same number of prompts per step,
the same completion budget, DAPO loss aggregation, beta = 0, one optimiser update per rollout batch.

Printed per trainer: median step time (first step excluded as warm-up), completions/s, and the split of the
step between generation, other rollout work (rewards, log-prob bookkeeping) and training (forward, backward,
optimiser). Then the ratio TRL / ours of the median step time.

Usage::

    python benchmarks/bench_grpo_vs_trl.py                 # about 3-5 minutes on 2 shared CPU cores
    python benchmarks/bench_grpo_vs_trl.py --steps 4 --max-new-tokens 16   # quicker

Machines are shared and noisy: read the ratio, not the absolute figures. Both trainers run in one process
with the same number of torch threads (``--threads``, default 1: on a loaded 2-core machine more threads
mostly measure oversubscription).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

import torch


def _policy_weights(seq_len: int, seed: int):
    from policies import ModelConfig, Transformer

    config = ModelConfig.tiny()
    config = type(config)(**{**config.to_dict(), "max_seq_len": seq_len})
    torch.manual_seed(seed)
    return config, Transformer(config).state_dict()


def _prompts(n: int, seed: int):
    from rlenv.train.rollout import make_env

    env = make_env("rlenv/Countdown-v0", "{}", seed)
    return [env.reset(options={"index": i})[0] for i in range(n)]


def run_ours(args, model_dir: str, out_dir: str) -> dict:
    from rlenv.train import GRPOConfig, train

    config = GRPOConfig(
        policy=model_dir,
        env_id="rlenv/Countdown-v0",
        run_dir=out_dir,
        seed=args.seed,
        steps=args.steps,
        prompts_per_step=args.prompts,
        num_generations=args.G,
        max_new_tokens=args.max_new_tokens,
        micro_batch_size=args.prompts * args.G,
        loss_type="dapo",
        beta=0.0,
        lr=1e-5,
        stop_strings=(),
        temperature=1.0,
        progress=False,
        tensorboard=False,
        device="cpu",
    )
    train(config)
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f][1:]
    step = [r["perf/step_s"] for r in records]
    gen = [r["perf/generate_s"] for r in records]
    rollout = [r["perf/rollout_s"] for r in records]
    return {
        "step": step,
        "generate": gen,
        "rollout_other": [r - g for r, g in zip(rollout, gen, strict=True)],
        "train": [r["perf/train_s"] for r in records],
    }


def run_trl(args, config, weights, out_dir: str) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from policies.hf import ExpertBiasCallback, PolicyForCausalLM, PolicyHFConfig, to_hf_tokenizer
    from rlenv.train.rollout import make_env, score_completions

    model = PolicyForCausalLM(PolicyHFConfig(policy=config.to_dict()))
    model.model.load_state_dict(weights)
    env = make_env("rlenv/Countdown-v0", "{}", args.seed)
    n = args.prompts * (args.steps + 1)
    data = Dataset.from_dict({"prompt": _prompts(n, args.seed), "index": list(range(n))})

    def env_reward(completions, index, **_):
        return [score_completions(env, i, [c])[0][0] for c, i in zip(completions, index, strict=True)]

    timings = {"generate": [], "rollout": [], "step": []}
    real_generate = model.generate

    def timed_generate(*a, **kw):
        started = time.perf_counter()
        out = real_generate(*a, **kw)
        timings["generate"].append(time.perf_counter() - started)
        return out

    model.generate = timed_generate

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.started = time.perf_counter()

        def on_step_end(self, *_, **__):
            timings["step"].append(time.perf_counter() - self.started)

    trl_args = GRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=args.prompts * args.G,
        num_generations=args.G,
        gradient_accumulation_steps=1,
        max_completion_length=args.max_new_tokens,
        max_steps=args.steps,
        learning_rate=1e-5,
        beta=0.0,
        loss_type="dapo",
        epsilon=0.2,
        epsilon_high=0.28,
        temperature=1.0,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=args.seed,
        dataloader_num_workers=0,
        shuffle_dataset=False,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=env_reward,
        args=trl_args,
        train_dataset=data,
        processing_class=to_hf_tokenizer(),
        callbacks=[ExpertBiasCallback(), StepTimer()],
    )
    real_rollout = trainer._generate_and_score_completions

    def timed_rollout(*a, **kw):
        started = time.perf_counter()
        out = real_rollout(*a, **kw)
        timings["rollout"].append(time.perf_counter() - started)
        return out

    trainer._generate_and_score_completions = timed_rollout
    trainer.train()
    step, gen, rollout = timings["step"][1:], timings["generate"][1:], timings["rollout"][1:]
    return {
        "step": step,
        "generate": gen,
        "rollout_other": [r - g for r, g in zip(rollout, gen, strict=True)],
        "train": [s - r for s, r in zip(step, rollout, strict=True)],
    }


def _row(name: str, t: dict, completions: int) -> str:
    med = {k: statistics.median(v) for k, v in t.items()}
    total = med["step"]
    split = " ".join(
        f"{k} {med[k]:6.2f}s ({100 * med[k] / total:3.0f}%)" for k in ("generate", "rollout_other", "train")
    )
    return f"{name:<14} step {total:6.2f}s  {completions / total:7.1f} completions/s | {split}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="steps per trainer (the first is warm-up)")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step")
    parser.add_argument("--G", type=int, default=4, help="completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["ours", "trl"], default=None, help="run one side only")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for both (1 avoids oversubscribing shared CPUs)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    config, weights = _policy_weights(1024, args.seed)
    completions = args.prompts * args.G
    print(
        f"GRPO step: {args.prompts} prompts x G={args.G}, max_new_tokens={args.max_new_tokens}, "
        f"tiny bundled MoE policy, Countdown r1zero prompts, torch threads={torch.get_num_threads()}"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        from policies import Transformer
        from rlenv.train.bundled import BundledPolicy, _tokenizer

        model = Transformer(config)
        model.load_state_dict(weights)
        model_dir = os.path.join(tmp, "model")
        BundledPolicy(model, _tokenizer()).save(model_dir)
        if args.only in (None, "trl"):
            results["trl"] = run_trl(args, config, weights, os.path.join(tmp, "trl"))
        if args.only in (None, "ours"):
            results["ours"] = run_ours(args, model_dir, os.path.join(tmp, "ours"))
    for name, label in (("trl", "TRL GRPOTrainer"), ("ours", "rlenv train")):
        if name in results:
            print(_row(label, results[name], completions))
    if len(results) == 2:
        ratio = statistics.median(results["trl"]["step"]) / statistics.median(results["ours"]["step"])
        print(f"ratio (TRL step time / ours): {ratio:.2f}x  (target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
