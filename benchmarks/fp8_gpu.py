"""FP8 vs BF16 on a Hopper GPU: GEMM TFLOP/s (4096^3 and the policy's own shapes) and train-step speed-up.

Prints, in one run (under 5 minutes on one H100/H200):

1. GEMM throughput at M = N = K = 4096: BF16 ``torch.mm`` (the peer) vs FP8 ``torch._scaled_mm`` with
   tensorwise and rowwise scales and, on SM90, the DeepSeek-style blockwise kernel (1x128 activations x
   128x128 weights) through ``policies.fp8.fp8_matmul``; operands pre-quantised (GEMM only), plus the
   blockwise GEMM including this package's (unfused, pure PyTorch) quantisation. Target: >= 1.5x over BF16.
2. The same at the linear shapes of the small policy (tokens x in -> out), which are far too small to
   saturate a GPU: expect launch-bound figures there.
3. End-to-end training step (forward + backward + AdamW) of the small policy and of a wider variant, BF16
   autocast (peer) vs ``convert_to_fp8`` (rowwise and blockwise), median step time and speed-up.

Usage::

    python benchmarks/fp8_gpu.py [--json results.json] [--tokens 8192]

Exits with a clear message (status 2) when CUDA, or an FP8-capable GPU (SM89+), is not available.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable

import torch

from policies import ModelConfig, Transformer, convert_to_fp8
from policies.fp8 import FP8Config, FP8Linear, fp8_matmul, quantize

Result = dict[str, float | str]


def cuda_time_ms(fn: Callable[[], object], iters: int = 30, warmup: int = 5) -> float:
    """Median milliseconds per call, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def gemm_candidates(m: int, k: int, n: int, blockwise: bool) -> dict[str, Callable[[], object]]:
    """Callables computing an (m, k) x (k, n) product in BF16 and in each FP8 flavour."""
    a = torch.randn(m, k, device="cuda")
    w = torch.randn(n, k, device="cuda")
    a16, w16 = a.bfloat16(), w.bfloat16()
    a8, w8 = a.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
    one = torch.ones((), device="cuda")
    row_a, row_b = torch.ones(m, 1, device="cuda"), torch.ones(1, n, device="cuda")
    out = {
        "bf16 mm (peer)": lambda: torch.mm(a16, w16.t()),
        "fp8 tensorwise": lambda: torch._scaled_mm(a8, w8.t(), one, one, out_dtype=torch.bfloat16),
        "fp8 tensorwise fast-accum": lambda: torch._scaled_mm(
            a8, w8.t(), one, one, out_dtype=torch.bfloat16, use_fast_accum=True
        ),
        "fp8 rowwise": lambda: torch._scaled_mm(a8, w8.t(), row_a, row_b, out_dtype=torch.bfloat16),
    }
    if blockwise and k % 128 == 0:
        qa, qw = quantize(a, (1, 128)), quantize(w, (128, 128))
        out["fp8 blockwise 1x128/128x128"] = lambda: fp8_matmul(
            qa, qw, backend="scaled_mm", out_dtype=torch.bfloat16
        )
        out["fp8 blockwise incl. quantise"] = lambda: fp8_matmul(
            quantize(a, (1, 128)), quantize(w, (128, 128)), backend="scaled_mm", out_dtype=torch.bfloat16
        )
    return out


def bench_gemm(m: int, k: int, n: int, blockwise: bool) -> list[Result]:
    rows: list[Result] = []
    base_ms = None
    for name, fn in gemm_candidates(m, k, n, blockwise).items():
        try:
            ms = cuda_time_ms(fn)
        except Exception as err:  # one unsupported kernel must not hide the other figures
            rows.append(
                {"shape": f"{m}x{k}x{n}", "kernel": name, "error": f"{type(err).__name__}: {err}"[:200]}
            )
            continue
        base_ms = base_ms or ms
        tflops = 2 * m * n * k / (ms * 1e-3) / 1e12
        rows.append(
            {"shape": f"{m}x{k}x{n}", "kernel": name, "ms": ms, "tflops": tflops, "speedup": base_ms / ms}
        )
    return rows


def print_gemm(rows: list[Result]) -> None:
    for r in rows:
        if "error" in r:
            print(f"  {r['shape']:>18}  {r['kernel']:<30} FAILED {r['error']}")
        else:
            print(
                f"  {r['shape']:>18}  {r['kernel']:<30}{r['ms']:9.3f} ms{r['tflops']:9.1f} TFLOP/s"
                f"{r['speedup']:7.2f}x"
            )


def policy_shapes(cfg: ModelConfig, tokens: int) -> list[tuple[int, int, int]]:
    """(M, K, N) of every distinct linear the FP8 recipe converts (tokens x in -> out)."""
    model = convert_to_fp8(Transformer(cfg), "rowwise")
    shapes = {(tokens, m.in_features, m.out_features) for m in model.modules() if isinstance(m, FP8Linear)}
    return sorted(shapes)


def train_step_ms(cfg: ModelConfig, mode: str, batch: int, seq: int) -> float:
    torch.manual_seed(0)
    model = Transformer(cfg).cuda()
    if mode != "bf16":
        convert_to_fp8(model, mode)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda")

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(tokens)  # (B, T, V)
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten()
            )
        loss.backward()
        opt.step()

    return cuda_time_ms(step, iters=15, warmup=3)


def bench_train(batch: int, seq: int) -> list[Result]:
    configs = {
        "small": ModelConfig.small(max_seq_len=seq),
        "wide (dim 2048)": ModelConfig.small(
            dim=2048,
            inter_dim=8192,
            moe_inter_dim=1024,
            n_heads=16,
            kv_lora_rank=512,
            q_lora_rank=1024,
            qk_nope_head_dim=128,
            qk_rope_head_dim=64,
            v_head_dim=128,
            n_layers=4,
            max_seq_len=seq,
        ),
    }
    rows: list[Result] = []
    for label, cfg in configs.items():
        base = None
        for mode in ("bf16", "rowwise", "blockwise"):
            try:
                ms = train_step_ms(cfg, mode, batch, seq)
            except Exception as err:
                rows.append({"model": label, "mode": mode, "error": f"{type(err).__name__}: {err}"[:200]})
                continue
            base = base or ms
            rows.append({"model": label, "mode": mode, "ms": ms, "speedup": base / ms})
            torch.cuda.empty_cache()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write all figures to this JSON file")
    parser.add_argument("--tokens", type=int, default=8192, help="tokens per step (batch x seq) for shapes")
    parser.add_argument("--seq", type=int, default=512)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(
            "fp8_gpu.py needs a CUDA GPU (FP8 tensor cores, SM89+; blockwise kernels need SM90 Hopper). "
            "No CUDA device is visible here, so nothing was measured.",
            file=sys.stderr,
        )
        return 2
    major, minor = torch.cuda.get_device_capability()
    name = torch.cuda.get_device_name()
    if (major, minor) < (8, 9):
        print(
            f"{name} is SM{major}{minor}: FP8 GEMMs need SM89+ (Ada/Hopper/Blackwell); nothing measured.",
            file=sys.stderr,
        )
        return 2
    blockwise = major == 9
    print(
        f"device: {name} (SM{major}{minor}), torch {torch.__version__}; blockwise kernels: "
        f"{'yes' if blockwise else 'no (SM90 only)'}"
    )
    print(f"default recipe config: {FP8Config()}")
    results: dict[str, list[Result]] = {}

    print("\n1. GEMM 4096^3 (BF16 output; speed-up vs BF16 mm)")
    results["gemm_4096"] = bench_gemm(4096, 4096, 4096, blockwise)
    print_gemm(results["gemm_4096"])
    best = max(
        (r["speedup"] for r in results["gemm_4096"] if "speedup" in r and "incl" not in r["kernel"]),
        default=0.0,
    )
    print(f"  target >= 1.5x on large GEMMs: {'met' if best >= 1.5 else 'NOT met'} (best {best:.2f}x)")

    print(f"\n2. GEMMs at the small policy's linear shapes ({args.tokens} tokens)")
    results["gemm_policy"] = []
    for m, k, n in policy_shapes(ModelConfig.small(), args.tokens):
        rows = bench_gemm(m, k, n, blockwise)
        results["gemm_policy"] += rows
        print_gemm(rows)

    batch = max(1, args.tokens // args.seq)
    print(f"\n3. Train step (forward + backward + AdamW), batch {batch} x {args.seq} tokens, BF16 autocast")
    results["train"] = bench_train(batch, args.seq)
    for r in results["train"]:
        if "error" in r:
            print(f"  {r['model']:<18}{r['mode']:<11} FAILED {r['error']}")
        else:
            print(f"  {r['model']:<18}{r['mode']:<11}{r['ms']:9.2f} ms/step{r['speedup']:7.2f}x vs bf16")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": name, "torch": torch.__version__, **results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
