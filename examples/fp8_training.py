"""FP8 training of the bundled policy: the same run in FP32 and in DeepSeek-V3's blockwise FP8, side by side.

``policies.fp8.convert_to_fp8(model, recipe)`` swaps the policy's linear layers (attention projections,
dense and expert MLPs) for FP8 versions that quantise activations in 1x128 tiles and weights in 128x128
blocks, run the forward, input-gradient and weight-gradient GEMMs in FP8 with FP32 accumulation, and keep an
FP32 master weight; the embedding, output head, router, norms and attention core stay in high precision
(DeepSeek-V3 technical report, section 3.3). On a CPU the FP8 GEMMs are emulated exactly (quantise ->
dequantise -> FP32 matmul), so this example shows the *numerics* (loss curves match); the speed-up needs a
Hopper GPU (``--device cuda``).

The task is the recipes' pretraining corpus (generic arithmetic text, :func:`rlenv.train.corpus.make_corpus`)
followed by a held-out next-token loss; both runs see the same batches from the same initial weights.

Run::

    python examples/fp8_training.py                    # small preset, 200 steps per precision (~5 min)
    python examples/fp8_training.py --recipe rowwise --steps 400
    python examples/fp8_training.py --quick            # smoke test (tiny preset, a few steps)

Left out on purpose: FP8 for GRPO (set ``fp8=True`` on any stage config: ``rlenv train --fp8``).
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import torch
import torch.nn.functional as F

import policies
from policies.fp8 import convert_to_fp8
from rlenv.train.corpus import make_corpus


def batches(tokenizer: policies.Tokenizer, n_docs: int, seq_len: int, batch_size: int, seed: int):
    """Packed next-token blocks (documents joined by EOS), drawn in a fixed order."""
    ids: list[int] = []
    for doc in make_corpus("arithmetic", n_docs, seed):
        ids += [*tokenizer.encode(doc), tokenizer.eos_id]
    data = torch.tensor(ids)  # (N,)
    generator = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(0, len(data) - seq_len - 1, (batch_size,), generator=generator)
        yield torch.stack([data[s : s + seq_len + 1] for s in starts.tolist()])  # (B, T + 1)


def lm_loss(model: torch.nn.Module, block: torch.Tensor) -> torch.Tensor:
    logits = model(block[:, :-1])  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), block[:, 1:].flatten())


def train(model: torch.nn.Module, data, steps: int, lr: float) -> tuple[list[float], float]:
    """AdamW with warmup + cosine; returns the loss per step and the seconds per step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
    losses, started = [], time.perf_counter()
    for _ in range(steps):
        loss = lm_loss(model, next(data))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses, (time.perf_counter() - started) / max(1, steps)


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, blocks: list[torch.Tensor]) -> float:
    return sum(lm_loss(model, b).item() for b in blocks) / len(blocks)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="blockwise", choices=("blockwise", "rowwise", "tensorwise"))
    parser.add_argument("--block-size", type=int, default=128,
                        help="blockwise tile/block edge (DeepSeek-V3: 128). Any layer width works: edge "
                             "tiles/blocks narrower than this are partial, scaled over their valid values")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny preset and a few steps (smoke test)")
    args = parser.parse_args(argv)

    preset = "tiny" if args.quick else "small"
    steps, seq_len, batch_size, n_docs = (3, 64, 4, 40) if args.quick else (args.steps, 256, 16, 4000)
    tokenizer = policies.Tokenizer()
    torch.manual_seed(args.seed)
    # MTP off: this compares the main next-token path only.
    base = policies.Transformer(getattr(policies.ModelConfig, preset)(n_mtp_modules=0)).to(args.device)
    heldout_data = batches(tokenizer, n_docs // 4 + 4, seq_len, batch_size, seed=args.seed + 1)
    heldout = [next(heldout_data).to(args.device) for _ in range(2 if args.quick else 8)]

    results: dict[str, dict[str, float]] = {}
    for name in ("fp32", f"fp8 {args.recipe}"):
        model = copy.deepcopy(base)
        if name != "fp32":
            options = {"block_size": args.block_size} if args.recipe == "blockwise" else {}
            model = convert_to_fp8(model, args.recipe, **options)
            print(f"FP8 layers: {len(model.fp8_report.converted)} converted, "
                  f"kept in high precision: {len(model.fp8_report.kept)}")
        data = (b.to(args.device) for b in batches(tokenizer, n_docs, seq_len, batch_size, seed=args.seed))
        losses, seconds = train(model, data, steps, args.lr)
        tail = losses[-max(1, steps // 10):]
        results[name] = {"final_train_loss": sum(tail) / len(tail), "s_per_step": seconds,
                         "heldout_loss": heldout_loss(model, heldout)}

    ref = results["fp32"]
    print(f"\n{preset} bundled policy, {steps} steps of arithmetic pretraining (same data, same init)")
    print("| precision | train loss (last 10%) | held-out loss | vs fp32 | s/step |\n|---|---|---|---|---|")
    for name, r in results.items():
        gap = (r["heldout_loss"] - ref["heldout_loss"]) / ref["heldout_loss"]
        print(f"| {name} | {r['final_train_loss']:.4f} | {r['heldout_loss']:.4f} | {gap:+.2%} | "
              f"{r['s_per_step']:.3f} |")
    return results


if __name__ == "__main__":
    main()
