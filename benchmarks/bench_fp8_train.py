"""FP8 vs FP32 training of the bundled policy on CPU, plus the FP8 accumulation-error table.

Trains the same policy twice from the same initial weights on the same batches: once in FP32 (the peer)
and once with ``convert_to_fp8`` (the blockwise recipe runs as its exact CPU emulation: quantise ->
dequantise -> FP32 matmul), and prints the final training and held-out losses side by side with their
relative difference (target: within 1%, DeepSeek-V3 reports 0.25% for FP8 vs BF16 at scale). Then prints
how the error of one long 14-bit accumulation grows with K against chunked FP32 promotion every 128.

Data: GSM8K training text (question + worked answer) from ``$RLENV_DATA`` or ``../shared/data``; when the
file is absent, generated arithmetic text, so the script always runs.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_fp8_train.py  # small policy, blockwise 1x128/128x128, 300 steps
    python benchmarks/bench_fp8_train.py --config tiny --steps 300 --recipe rowwise
    python benchmarks/bench_fp8_train.py --block-size 32       # finer tiles, for comparison

Every eligible linear runs FP8 at block 128 even though the small policy's widths (48, 96, 192, 384...) are
not all multiples of 128: edge tiles/blocks are partial (scale over their valid values).

Timing note: on CPU the FP8 run is slower (emulation adds quantisation work); speed is measured by
``benchmarks/fp8_gpu.py`` on a Hopper GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import random
import statistics
import time

import torch
import torch.nn.functional as F

from policies import ModelConfig, Tokenizer, Transformer, convert_to_fp8, mtp_loss
from policies.fp8 import accumulation_error_table

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_texts(n: int, seed: int) -> tuple[list[str], str]:
    """GSM8K train texts (real data) or generated arithmetic text when the data directory is absent."""
    path = pathlib.Path(os.environ.get("RLENV_DATA", ROOT.parent / "shared" / "data")) / "gsm8k_train.jsonl"
    rng = random.Random(seed)
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        rng.shuffle(rows)
        return [f"Q: {r['question']}\nA: {r['answer']}\n" for r in rows[:n]], f"GSM8K ({path})"
    texts = []
    for _ in range(n):
        a, b, c = rng.randint(1, 999), rng.randint(1, 999), rng.randint(2, 9)
        texts.append(
            f"Q: What is ({a} + {b}) * {c}?\nA: {a} + {b} = {a + b}. {a + b} * {c} = {(a + b) * c}.\n"
        )
    return texts, "generated arithmetic (GSM8K file not found)"


def make_batches(texts: list[str], tok: Tokenizer, seq_len: int, batch: int) -> list[torch.Tensor]:
    """Concatenate the token stream and cut it into (batch, seq_len) blocks."""
    ids = [i for t in texts for i in tok.encode(t)]
    n = len(ids) // (seq_len * batch)
    data = torch.tensor(ids[: n * seq_len * batch]).view(n, batch, seq_len)  # (N, B, T)
    return list(data)


def train(
    model: Transformer, batches: list[torch.Tensor], steps: int, lr: float
) -> tuple[list[float], float]:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    losses, times = [], []
    model.train()
    for step in range(steps):
        tokens = batches[step % len(batches)]
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(tokens, return_aux=True)
        logits = out.logits[:, :-1]  # (B, T-1, V)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        loss = ce + mtp_loss(out.mtp_logits or [], tokens, weight=model.config.mtp_loss_weight) + out.aux_loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.update_expert_bias()  # auxiliary-loss-free balancing, as in the trainer
        losses.append(float(ce.detach()))
        times.append(time.perf_counter() - start)
    return losses, statistics.median(times)


@torch.no_grad()
def evaluate(model: Transformer, batches: list[torch.Tensor]) -> float:
    model.eval()
    total = []
    for tokens in batches:
        logits = model(tokens)[:, :-1]  # (B, T-1, V)
        total.append(float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))))
    return sum(total) / len(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("tiny", "small"), default="small")
    parser.add_argument("--recipe", choices=("blockwise", "rowwise", "tensorwise"), default="blockwise")
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-table", action="store_true", help="skip the accumulation-error table")
    args = parser.parse_args()

    cfg = ModelConfig.tiny() if args.config == "tiny" else ModelConfig.small()
    texts, source = load_texts(4000, args.seed)
    batches = make_batches(texts, Tokenizer(), args.seq_len, args.batch)
    held_out, train_batches = batches[:4], batches[4:]
    torch.manual_seed(args.seed)
    init = Transformer(cfg).state_dict()

    results, curves = {}, {}
    for name in ("fp32", "fp8"):
        torch.manual_seed(args.seed)
        model = Transformer(cfg)
        model.load_state_dict(init)
        if name == "fp8":
            convert_to_fp8(model, args.recipe, block_size=args.block_size)
            report = model.fp8_report
            fp8_params = sum(
                p.numel() for n, m in model.named_modules() if n in report.converted for p in m.parameters()
            )
            total = sum(p.numel() for p in model.parameters())
            print(
                f"fp8 {args.recipe} (block {args.block_size}): {len(report.converted)} modules FP8, "
                f"{len(report.kept)} kept; {fp8_params} of {total} parameters in FP8 GEMMs"
            )
        losses, step_s = train(model, train_batches, args.steps, args.lr)
        curves[name] = losses
        results[name] = {
            "train": statistics.mean(losses[-10:]),
            "eval": evaluate(model, held_out),
            "step_s": step_s,
        }

    print(
        f"\ndata: {source}; {args.config} policy, {args.steps} steps of {args.batch}x{args.seq_len} tokens, "
        f"seed {args.seed}"
    )
    print(f"{'':24}{'fp32 (peer)':>14}{'fp8 (ours)':>14}{'rel. diff':>12}")
    for key, label in (("train", "final train loss (10)"), ("eval", "held-out loss")):
        a, b = results["fp32"][key], results["fp8"][key]
        print(f"{label:24}{a:14.4f}{b:14.4f}{(b - a) / a:+12.2%}")
    a, b = results["fp32"]["step_s"], results["fp8"]["step_s"]
    print(f"{'median step (s, CPU)':24}{a:14.3f}{b:14.3f}{b / a:11.2f}x  (emulation; not a speed figure)")
    window = max(1, args.steps // 10)
    marks = [args.steps // 4, args.steps // 2, 3 * args.steps // 4, args.steps]
    gaps = []
    for end in marks:
        a = statistics.mean(curves["fp32"][max(0, end - window) : end])
        b = statistics.mean(curves["fp8"][max(0, end - window) : end])
        gaps.append(f"step {end}: {a:.3f} vs {b:.3f} ({(b - a) / a:+.2%})")
    print(f"train loss (mean of {window} steps) fp32 vs fp8 along the run: " + "; ".join(gaps))
    ok = abs(results["fp8"]["train"] - results["fp32"]["train"]) / results["fp32"]["train"] < 0.01
    print(f"final train loss within 1%: {'yes' if ok else 'NO'}")
    if not math.isfinite(results["fp8"]["train"]):
        raise SystemExit("FP8 training diverged")

    if not args.skip_table:
        print("\nAccumulation error vs K (FP8 E4M3 operands, relative Frobenius error vs FP64):")
        print("one long accumulation keeping 14 significant bits vs FP32 promotion every 128 elements of K")
        for positive in (False, True):
            for mode in ("truncate", "nearest"):
                rows = accumulation_error_table((256, 1024, 4096, 16384), positive=positive, mode=mode)
                label = f"{'positive' if positive else 'random-sign'} operands, {mode}"
                print(f"  {label}")
                print(f"    {'K':>6}{'long 14-bit':>14}{'chunked/128':>14}{'ratio':>9}")
                for r in rows:
                    print(f"    {int(r['k']):>6}{r['long']:14.2e}{r['chunked']:14.2e}{r['ratio']:9.1f}")


if __name__ == "__main__":
    main()
