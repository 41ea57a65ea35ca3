"""FP8 vs BF16 on a Hopper GPU: GEMM TFLOP/s (4096^3 and the policy's own shapes) and train-step speed-up.

Prints, in one run (under 5 minutes on one H100/H200):

1. GEMM throughput at M = N = K = 4096: BF16 ``torch.mm`` (the peer) vs FP8 ``torch._scaled_mm`` with
   tensorwise and rowwise scales and, on SM90, the DeepSeek-style blockwise kernel (1x128 activations x
   128x128 weights) through ``policies.fp8.cuda_scaled_mm`` (``torch.nn.functional.scaled_mm`` with
   ``ScalingType.BlockWise1x128`` / ``BlockWise128x128``); operands pre-quantised (GEMM only), plus the
   blockwise GEMM including this package's (unfused, pure PyTorch) quantisation. Target: >= 1.5x over BF16.
2. The same at the linear shapes of the small policy (tokens x in -> out, rounded up to the FP8 kernels'
   multiple of 16 as ``cuda_scaled_mm`` pads them), which are far too small to saturate a GPU: expect
   launch-bound figures there.
3. End-to-end training step (forward + backward + AdamW) of the small policy and of a wider variant, BF16
   autocast (peer) vs ``convert_to_fp8`` (rowwise and blockwise), median step time and speed-up.

Every kernel call's layout is asserted with ``policies.fp8.check_cuda_operands`` before it is timed, and a
failing kernel is printed as FAILED (with the error) without hiding the other figures; the exit status is 1
when anything failed.

``--dry-run`` runs the whole script on CPU at tiny shapes: the raw tensorwise/rowwise calls go to the CPU
``torch._scaled_mm``, the blockwise calls go through the full CUDA wrapper (padding, cuBLAS scale layouts,
assertions) with the kernel replaced by ``policies.fp8.reference_blockwise_kernel``, and the train steps use
the CPU backends. Only the CUDA kernels themselves are left untested.

Usage::

    python benchmarks/fp8_gpu.py [--json results.json] [--tokens 8192]
    python benchmarks/fp8_gpu.py --dry-run           # CPU, tiny shapes, ~10 s

Without ``--dry-run``, exits with a clear message (status 2) when CUDA, or an FP8-capable GPU (SM89+), is
not available.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import torch

from policies import ModelConfig, Transformer, convert_to_fp8
from policies.fp8 import (
    FP8Config,
    FP8Linear,
    blockwise_kernel_available,
    check_cuda_operands,
    cuda_scaled_mm,
    quantize,
    reference_blockwise_kernel,
)

Result = dict[str, float | str]


def time_ms(fn: Callable[[], object], device: torch.device, iters: int, warmup: int) -> float:
    """Median milliseconds per call: CUDA events on GPU, ``perf_counter`` on CPU."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            start_s = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start_s) * 1e3)
    return statistics.median(times)


def gemm_candidates(
    m: int, k: int, n: int, device: torch.device, blockwise: bool, dry_run: bool
) -> dict[str, Callable[[], object]]:
    """Callables computing an (m, k) x (k, n) product in BF16 and in each FP8 flavour (layouts asserted)."""
    a = torch.randn(m, k, device=device)  # (M, K)
    w = torch.randn(n, k, device=device)  # (N, K)
    a16, w16 = a.bfloat16(), w.bfloat16()
    a8, b8 = a.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn).t()  # (M, K) row-major, (K, N) col-major
    one = torch.ones((), device=device)
    row_a, row_b = torch.ones(m, 1, device=device), torch.ones(1, n, device=device)  # (M, 1), (1, N)
    check_cuda_operands(a8, b8, one, one, blockwise=False)
    check_cuda_operands(a8, b8, row_a, row_b, blockwise=False)
    bf16 = torch.bfloat16
    out = {
        "bf16 mm (peer)": lambda: torch.mm(a16, w16.t()),
        "fp8 tensorwise": lambda: torch._scaled_mm(a8, b8, one, one, out_dtype=bf16),
        "fp8 tensorwise fast-accum": lambda: torch._scaled_mm(
            a8, b8, one, one, out_dtype=bf16, use_fast_accum=True
        ),
        "fp8 rowwise": lambda: torch._scaled_mm(a8, b8, row_a, row_b, out_dtype=bf16),
    }
    if blockwise:
        kernel = reference_blockwise_kernel if dry_run else None  # None: torch.nn.functional.scaled_mm
        qa, qw = quantize(a, (1, 128)), quantize(w, (128, 128))
        out["fp8 blockwise 1x128/128x128"] = lambda: cuda_scaled_mm(qa, qw, bf16, blockwise_kernel=kernel)
        out["fp8 blockwise incl. quantise"] = lambda: cuda_scaled_mm(
            quantize(a, (1, 128)), quantize(w, (128, 128)), bf16, blockwise_kernel=kernel
        )
    return out


def bench_gemm(m: int, k: int, n: int, device: torch.device, blockwise: bool, dry_run: bool) -> list[Result]:
    rows: list[Result] = []
    base_ms = None
    shape = f"{m}x{k}x{n}"
    iters, warmup = (2, 1) if dry_run else (30, 5)
    try:
        candidates = gemm_candidates(m, k, n, device, blockwise, dry_run)
    except Exception as err:  # a layout assertion: report it, keep going
        return [{"shape": shape, "kernel": "setup", "error": f"{type(err).__name__}: {err}"[:300]}]
    for name, fn in candidates.items():
        try:
            ms = time_ms(fn, device, iters, warmup)
        except Exception as err:  # one unsupported kernel must not hide the other figures
            rows.append({"shape": shape, "kernel": name, "error": f"{type(err).__name__}: {err}"[:300]})
            continue
        base_ms = base_ms or ms
        tflops = 2 * m * n * k / (ms * 1e-3) / 1e12
        rows.append({"shape": shape, "kernel": name, "ms": ms, "tflops": tflops, "speedup": base_ms / ms})
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
    """(M, K, N) of every distinct linear the blockwise recipe converts, rounded up to multiples of 16."""
    model = convert_to_fp8(Transformer(cfg), "blockwise")

    def up(d: int) -> int:
        return -(-d // 16) * 16

    shapes = {
        (up(tokens), up(m.in_features), up(m.out_features))
        for m in model.modules()
        if isinstance(m, FP8Linear)
    }
    return sorted(shapes)


def train_step_ms(
    cfg: ModelConfig, mode: str, batch: int, seq: int, device: torch.device, dry_run: bool
) -> float:
    torch.manual_seed(0)
    model = Transformer(cfg).to(device)
    if mode != "bf16":
        convert_to_fp8(model, mode)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)  # (B, T)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(tokens)  # (B, T, V)
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten()
            )
        loss.backward()
        opt.step()

    iters, warmup = (2, 1) if dry_run else (15, 3)
    return time_ms(step, device, iters, warmup)


def train_configs(seq: int, dry_run: bool) -> dict[str, ModelConfig]:
    """The small policy and a wider variant (dim 2048); tiny stand-ins for ``--dry-run`` (same code paths)."""
    wide = ModelConfig.small(
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
    )  # built (and validated) in every mode
    if dry_run:
        return {
            "small (dry-run: tiny)": ModelConfig.tiny(max_seq_len=seq),
            "wide (dry-run: dim 48)": ModelConfig.tiny(dim=48, inter_dim=96, max_seq_len=seq),
        }
    return {"small": ModelConfig.small(max_seq_len=seq), "wide (dim 2048)": wide}


def bench_train(batch: int, seq: int, device: torch.device, dry_run: bool) -> list[Result]:
    rows: list[Result] = []
    for label, cfg in train_configs(seq, dry_run).items():
        base = None
        for mode in ("bf16", "rowwise", "blockwise"):
            try:
                ms = train_step_ms(cfg, mode, batch, seq, device, dry_run)
            except Exception as err:
                rows.append({"model": label, "mode": mode, "error": f"{type(err).__name__}: {err}"[:300]})
                continue
            base = base or ms
            rows.append({"model": label, "mode": mode, "ms": ms, "speedup": base / ms})
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def check_device(dry_run: bool) -> tuple[torch.device, bool, str] | None:
    """(device, blockwise kernels available, description), or None (message printed) when nothing can run."""
    if dry_run:
        return torch.device("cpu"), True, "CPU dry run (CUDA kernels replaced by CPU stand-ins)"
    if not torch.cuda.is_available():
        print(
            "fp8_gpu.py needs a CUDA GPU (FP8 tensor cores, SM89+; blockwise kernels need SM90 Hopper). "
            "No CUDA device is visible here, so nothing was measured (try --dry-run).",
            file=sys.stderr,
        )
        return None
    major, minor = torch.cuda.get_device_capability()
    name = torch.cuda.get_device_name()
    if (major, minor) < (8, 9):
        print(
            f"{name} is SM{major}{minor}: FP8 GEMMs need SM89+ (Ada/Hopper/Blackwell); nothing measured.",
            file=sys.stderr,
        )
        return None
    device = torch.device("cuda", torch.cuda.current_device())
    blockwise = blockwise_kernel_available(device)  # SM90 and cuBLASLt >= 12.9; warns with the reason if not
    return device, blockwise, f"{name} (SM{major}{minor}), CUDA {torch.version.cuda}"


def run(args: argparse.Namespace) -> dict[str, object] | None:
    """Every section of the benchmark; returns all figures (None when no device can run it)."""
    found = check_device(args.dry_run)
    if found is None:
        return None
    device, blockwise, desc = found
    print(f"device: {desc}; torch {torch.__version__}; blockwise kernels: {'yes' if blockwise else 'no'}")
    print(f"default recipe config: {FP8Config()}")
    big, tokens, seq = (256, 64, 32) if args.dry_run else (4096, args.tokens, args.seq)
    results: dict[str, object] = {"device": desc, "torch": torch.__version__, "dry_run": args.dry_run}

    print(f"\n1. GEMM {big}^3 (BF16 output; speed-up vs BF16 mm)")
    results["gemm_big"] = rows = bench_gemm(big, big, big, device, blockwise, args.dry_run)
    print_gemm(rows)
    best = max((r["speedup"] for r in rows if "speedup" in r and "incl" not in r["kernel"]), default=0.0)
    print(f"  target >= 1.5x on large GEMMs: {'met' if best >= 1.5 else 'NOT met'} (best {best:.2f}x)")

    policy = ModelConfig.tiny() if args.dry_run else ModelConfig.small()
    print(f"\n2. GEMMs at the {'tiny' if args.dry_run else 'small'} policy's linear shapes ({tokens} tokens)")
    results["gemm_policy"] = []
    for m, k, n in policy_shapes(policy, tokens):
        rows = bench_gemm(m, k, n, device, blockwise, args.dry_run)
        results["gemm_policy"] += rows
        print_gemm(rows)

    batch = max(1, tokens // seq)
    print(f"\n3. Train step (forward + backward + AdamW), batch {batch} x {seq} tokens, BF16 autocast")
    results["train"] = bench_train(batch, seq, device, args.dry_run)
    for r in results["train"]:
        if "error" in r:
            print(f"  {r['model']:<24}{r['mode']:<11} FAILED {r['error']}")
        else:
            print(f"  {r['model']:<24}{r['mode']:<11}{r['ms']:9.2f} ms/step{r['speedup']:7.2f}x vs bf16")
    return results


def failures(results: dict[str, object]) -> list[Result]:
    return [r for key in ("gemm_big", "gemm_policy", "train") for r in results[key] if "error" in r]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write all figures to this JSON file")
    parser.add_argument("--tokens", type=int, default=8192, help="tokens per step (batch x seq) for shapes")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--dry-run", action="store_true", help="run everything on CPU at tiny shapes")
    args = parser.parse_args(argv)
    results = run(args)
    if results is None:
        return 2
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    failed = failures(results)
    if failed:
        print(f"\n{len(failed)} kernel(s)/step(s) FAILED (see above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
