"""R1 distillation on countdown: a larger bundled policy trained with the ``r1`` recipe teaches a smaller one.

DeepSeek-R1 (arXiv:2501.12948, section 2.4) distils its reasoning into small dense models by fine-tuning them
on ~800k samples the large model wrote, kept only when a rule-based reward accepted them (rejection sampling).
This example does the same at laptop scale, with the library's stages:

1. teacher: the bundled ``small`` policy trained with the ``r1`` recipe (pretrain -> SFT -> GRPO), or an
   existing teacher checkpoint passed with ``--teacher``;
2. student: a smaller bundled model (fewer layers, narrower), pretrained on the same generic arithmetic;
3. ``rlenv.train.distill``: the teacher samples countdown solutions on the *train* split, the countdown
   reward keeps the correct ones, the student is fine-tuned on them;
4. both are evaluated on the same held-out test-split problems.

Run::

    python examples/r1_distillation.py                      # full run: the r1 recipe's time + a few min
    python examples/r1_distillation.py --teacher runs/r1/grpo/final --out runs/distill_example
    python examples/r1_distillation.py --quick              # smoke test: tiny settings

Left out on purpose: distilling into a Hugging Face model (set ``DistillConfig.policy="hf:PATH"``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from rlenv.train.config import DistillConfig, PretrainConfig
from rlenv.train.countdown_eval import evaluate_countdown, heldout_items
from rlenv.train.recipes import RecipeConfig, run_recipe


def student_config(quick: bool) -> dict:
    """A model about a third of the ``small`` preset's size (same tokenizer)."""
    if quick:
        return dict(dim=32, inter_dim=64, moe_inter_dim=16, n_layers=2, n_heads=2, n_routed_experts=4,
                    kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, max_seq_len=256,
                    n_mtp_modules=0)
    return dict(dim=96, inter_dim=256, moe_inter_dim=64, n_layers=3, n_heads=4, n_mtp_modules=0)


def make_student(directory: str, quick: bool, seed: int) -> str:
    """Writes a freshly initialised student model directory usable as a stage's ``policy``."""
    import torch

    import policies
    from rlenv.train.bundled import BundledPolicy

    torch.manual_seed(seed)
    model = policies.Transformer(policies.ModelConfig.small(**student_config(quick)))
    BundledPolicy(model, policies.Tokenizer()).save(directory)
    return directory


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="", help="teacher checkpoint (default: train one with r1)")
    parser.add_argument("--out", default="runs/distill_example", help="output directory")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test")
    parser.add_argument("--num-prompts", type=int, default=2000, help="teacher prompts (train split)")
    parser.add_argument("--accept-threshold", type=float, default=1.0,
                        help="countdown accuracy a teacher sample needs to be kept (1.0 = correct only)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    recipe = RecipeConfig(recipe="r1", run_dir=os.path.join(args.out, "teacher"), quick=args.quick,
                          seed=args.seed).effective
    teacher = args.teacher or run_recipe(recipe).checkpoint

    # The student starts from the same kind of base the teacher had: generic arithmetic only.
    student = make_student(os.path.join(args.out, "student_init"), args.quick, args.seed)
    from rlenv.train.pretrain import pretrain

    base = pretrain(PretrainConfig(
        run_dir=os.path.join(args.out, "student_pretrain"), policy=student, corpus="arithmetic",
        corpus_size=recipe.pretrain_docs, steps=recipe.pretrain_steps, lr=recipe.pretrain_lr,
        seq_len=recipe.seq_len, batch_size=recipe.batch_size, seed=args.seed, device=recipe.device,
        progress=not args.quick,
    )).checkpoint

    from rlenv.train.distill import distill

    num_prompts = 8 if args.quick else args.num_prompts
    distilled = distill(DistillConfig(
        run_dir=os.path.join(args.out, "student_distill"), teacher=teacher, policy=base,
        env_kwargs=json.dumps(recipe.env_kwargs), num_prompts=num_prompts, samples_per_prompt=4,
        max_new_tokens=recipe.max_new_tokens, temperature=1.0, max_per_prompt=1,
        accept_threshold=args.accept_threshold,
        steps=4 if args.quick else recipe.sft_steps, lr=recipe.sft_lr, weight_decay=recipe.sft_weight_decay,
        batch_size=recipe.batch_size,
        max_len=recipe.sft_max_len, seed=args.seed, device=recipe.device, progress=not args.quick,
    ))

    from rlenv.train.policy import load_policy

    items = heldout_items(recipe.eval_items, recipe.eval_seed, recipe.env_kwargs)
    results = {}
    students = [("student (pretrained only)", base)]
    if distilled.checkpoint is None:
        print("the teacher wrote no acceptable solution: the student was not fine-tuned")
    else:
        students.append(("student (distilled)", distilled.checkpoint))
    for name, checkpoint in [("teacher", teacher), *students]:
        policy = load_policy(checkpoint, device="cpu" if recipe.device == "auto" else recipe.device)
        params = sum(p.numel() for p in policy.module.parameters())
        figures = evaluate_countdown(policy, items, temperature=0.0, max_new_tokens=recipe.max_new_tokens,
                                     desc=name)
        results[name] = {"params": params, **figures}
    print(f"\nR1 distillation on {len(items)} held-out countdown problems (greedy)")
    print("| policy | parameters | accuracy | non-shortcut | format | mean tokens |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['params'] / 1e6:.2f}M | {r['accuracy']:.1%} | "
              f"{r['nonshortcut_accuracy']:.1%} | {r['format_rate']:.1%} | {r['mean_tokens']:.0f} |")
    kept = distilled.metrics.get("distill/accepted", float("nan"))
    print(f"teacher samples kept by the countdown reward: {kept}")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"results": results, "recipe": dataclasses.asdict(recipe)}, f, indent=2, default=float)
    return results


if __name__ == "__main__":
    main()
