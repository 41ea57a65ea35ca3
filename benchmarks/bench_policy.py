"""The bundled policy against its peers, each pair measured in the same run (ratios, medians).

Rows printed (ours vs the peer):

1. KV-cache bytes per token: MLA's latent cache (``c_kv`` + ``k_rope`` per layer) vs a multi-head-attention
   model of the same width and heads (K and V of every head); measured from allocated cache tensors.
2. Decode tokens/s: ``policies.generate`` (prefill once, absorbed MLA over the latent cache) vs the same
   sampler recomputing the whole sequence every step (no cache).
3. MoE forward (and forward+backward) time vs a dense model with the same *active* parameters per token.
4. MTP self-speculative decoding vs plain greedy decoding at identical outputs, for ``k`` = ``--n-draft``
   drafts per step, batch ``--batch`` and batch 1: a fresh model is first trained for ``--train-steps`` with
   the MTP loss on generated text (``--corpus``: ``counting`` = runs of consecutive numbers in words, which
   a small model predicts well byte by byte; ``arithmetic`` = random equations, whose digits it cannot) so
   the draft head is meaningful. Printed for the small preset (4 main blocks) and for
   ``ModelConfig.small(n_layers=--deep-layers)``: the MTP block's share of a step shrinks with depth
   (DeepSeek-V3 pairs 61 blocks with one MTP block). Each row prints the acceptance rate (overall and
   the per-row range), the speed-up (median of back-to-back plain/speculative time ratios), main forwards
   vs plain steps, the cost of one speculative step, and whether the outputs are identical.
5. Activation memory kept for backward with and without selective recomputation (bytes of the tensors
   autograd saves, counted by ``torch.autograd.graph.saved_tensors_hooks``).

Usage::

    python benchmarks/bench_policy.py                 # about 4-8 minutes on 2 shared CPU cores
    python benchmarks/bench_policy.py --quick         # fewer repeats / training steps
    python benchmarks/bench_policy.py --device cuda   # on a GPU

Machines are shared and noisy: read the ratios, not the absolute figures. On a CPU every time is this
process's CPU time (``time.process_time``, one intra-op thread by default), so other processes competing for
the cores do not inflate one side of a comparison; on CUDA it is wall time after a synchronise.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import torch

from policies import ModelConfig, Tokenizer, Transformer, count_parameters, generate, left_pad, mtp_loss
from policies.generate import new_cache
from policies.speculative import SpeculativeOutput, speculative_generate


def _clock(device: str) -> Callable[[], float]:
    """This process's CPU time on a CPU (other processes' load on the cores is not counted), else wall."""
    return time.process_time if device == "cpu" else time.perf_counter


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _compare(peer, ours, repeats: int, device: str) -> tuple[float, float]:
    """Median seconds of ``peer()`` and ``ours()``, interleaved after a warm-up (noise hits both)."""
    t_peer, t_ours, _ = _compare_pairs(peer, ours, repeats, device)
    return t_peer, t_ours


def _compare_pairs(peer, ours, repeats: int, device: str) -> tuple[float, float, float]:
    """``_compare`` plus the median of the per-pair ratios ``peer_i / ours_i``.

    Pairs run back to back, so a load spike on a shared machine moves both halves of a pair; the median pair
    ratio is steadier than the ratio of the two medians when the load drifts during the run.
    """
    peer(), ours()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((peer, times[0]), (ours, times[1])):
            clock = _clock(device)
            _sync(device)
            t0 = clock()
            fn()
            _sync(device)
            bucket.append(clock() - t0)
    ratios = [a / b for a, b in zip(*times, strict=True)]
    return statistics.median(times[0]), statistics.median(times[1]), statistics.median(ratios)


def _row(name: str, peer: str, peer_val: float, ours: str, our_val: float, unit: str, ratio: float) -> None:
    print(
        f"{name:<34} {peer:<26} {peer_val:>12.4g} {unit:<9} | "
        f"{ours:<26} {our_val:>12.4g} {unit:<9} | {ratio:6.2f}x"
    )


def kv_cache_row(cfg: ModelConfig) -> None:
    """Bytes per token of the latent cache vs an MHA cache of the same width and heads (fp32 storage)."""
    model = Transformer(cfg)
    cache = new_cache(model, batch=1, max_len=64)
    mla = sum(t.numel() * t.element_size() for t in cache.c_kv + cache.k_rope) / 64
    head_dim = cfg.dim // cfg.n_heads
    mha_k = [torch.zeros(1, 64, cfg.n_heads, head_dim) for _ in range(cfg.n_layers)]
    mha = 2 * sum(t.numel() * t.element_size() for t in mha_k) / 64
    _row(
        "KV-cache bytes/token (fp32)",
        f"MHA {cfg.n_heads}x{head_dim} K+V",
        mha,
        "MLA c_kv+k_rope",
        mla,
        "B",
        mha / mla,
    )
    expanded = cfg.n_layers * cfg.n_heads * (cfg.qk_head_dim + cfg.v_head_dim) * 4
    _row(
        "  vs MLA's own expanded heads", "expanded K+V", expanded, "MLA c_kv+k_rope", mla, "B", expanded / mla
    )


@torch.inference_mode()
def _uncached_decode(model: Transformer, prompts: list[list[int]], n: int) -> list[list[int]]:
    tokens, mask = left_pad(prompts, device=model.embed.weight.device)
    for _ in range(n):
        nxt = model(tokens, attention_mask=mask)[:, -1].argmax(-1)  # (B,)
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    return tokens[:, -n:].tolist()


def decode_row(model: Transformer, prompts: list[list[int]], n: int, repeats: int, device: str) -> None:
    cached = generate(model, prompts, max_new_tokens=n, temperature=0).tokens
    same = cached == _uncached_decode(model, prompts, n)
    t_full, t_cache = _compare(
        lambda: _uncached_decode(model, prompts, n),
        lambda: generate(model, prompts, max_new_tokens=n, temperature=0),
        repeats,
        device,
    )
    tok = len(prompts) * n
    _row(
        f"decode tok/s (B={len(prompts)}, {n} new)",
        "no cache (recompute)",
        tok / t_full,
        "latent KV cache",
        tok / t_cache,
        "tok/s",
        t_full / t_cache,
    )
    print(f"{'':<34} greedy outputs identical: {same}")


def moe_row(cfg: ModelConfig, batch: int, seqlen: int, repeats: int, device: str) -> None:
    active_inter = (cfg.n_activated_experts + cfg.n_shared_experts) * cfg.moe_inter_dim
    moe_cfg = ModelConfig.small(inter_dim=active_inter, n_mtp_modules=0)
    dense_cfg = ModelConfig.small(inter_dim=active_inter, n_routed_experts=0, n_mtp_modules=0)
    moe, dense = Transformer(moe_cfg).to(device), Transformer(dense_cfg).to(device)
    c_moe, c_dense = count_parameters(moe), count_parameters(dense)
    assert c_moe["active"] == c_dense["active"] + sum(m.gate.weight.numel() for m in moe.moe_layers)
    tokens = torch.randint(0, cfg.vocab_size, (batch, seqlen), device=device)
    with torch.no_grad():
        t_dense, t_moe = _compare(lambda: dense(tokens), lambda: moe(tokens), repeats, device)
    _row(
        f"forward ms ({batch}x{seqlen})",
        f"dense {c_dense['total'] / 1e6:.2f}M",
        t_dense * 1e3,
        f"MoE {c_moe['total'] / 1e6:.2f}M tot/{c_moe['active'] / 1e6:.2f}M act",
        t_moe * 1e3,
        "ms",
        t_moe / t_dense,
    )

    def step(m):
        return lambda: m(tokens).logsumexp(-1).mean().backward()

    t_dense, t_moe = _compare(step(dense), step(moe), repeats, device)
    _row("forward+backward ms", "dense", t_dense * 1e3, "MoE", t_moe * 1e3, "ms", t_moe / t_dense)


def _arith_corpus(n: int, rng: random.Random) -> list[str]:
    lines = []
    for _ in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        op = rng.choice("+-*")
        val = a + b if op == "+" else a - b if op == "-" else a * b
        lines.append(f"{a}{op}{b}={val}")
    return lines


_ONES = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"),
    *("twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " and " + _words(n % 100))


def _counting_corpus(n: int, rng: random.Random) -> list[str]:
    """Runs of 3-8 consecutive numbers in words ("forty one, forty two, ..."): predictable byte-level text."""
    lines = []
    for _ in range(n):
        start = rng.randint(0, 990)
        lines.append(", ".join(_words(k) for k in range(start, start + rng.randint(3, 8))) + ".")
    return lines


CORPORA = {"counting": _counting_corpus, "arithmetic": _arith_corpus}


def _spec_prompts(corpus: str, n: int) -> list[list[int]]:
    """Prompts from the training text: a first number and a comma (counting) or an equation (arithmetic)."""
    lines = CORPORA[corpus](n, random.Random(1))
    return [
        Tokenizer().encode((line.split(", ")[0] + ", ") if corpus == "counting" else line + " ")
        for line in lines
    ]


def train_for_mtp(
    model: Transformer, steps: int, device: str, corpus: str = "counting", seed: int = 0
) -> float:
    """Next-token + MTP training on generated text (packed rows of 64 bytes); returns the final MTP loss."""
    tok, rng = Tokenizer(), random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    mtp = torch.zeros(())
    for step in range(steps):
        text = " ".join(CORPORA[corpus](40, rng))
        ids = tok.encode(text)[: 16 * 64]
        batch = torch.tensor(ids[: len(ids) // 64 * 64], device=device).view(-1, 64)  # (B, 64)
        out = model(batch, return_aux=True)
        ce = torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), batch[:, 1:].flatten())
        mtp = mtp_loss(out.mtp_logits, batch, weight=1.0)
        loss = ce + out.aux_loss + model.config.mtp_loss_weight * mtp
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.update_expert_bias()
        if step % max(steps // 4, 1) == 0 or step == steps - 1:
            print(f"  train step {step:4d}: loss {ce.item():.3f}  mtp {mtp.item():.3f}")
    model.eval()
    return float(mtp.detach())


def speculative_row(
    model: Transformer, prompts: list[list[int]], n: int, k: int, repeats: int, device: str, label: str
) -> None:
    """Plain vs speculative greedy decoding with ``k`` drafts per step, interleaved medians."""

    def plain() -> list[list[int]]:
        return generate(model, prompts, max_new_tokens=n, temperature=0).tokens

    def spec() -> SpeculativeOutput:
        return speculative_generate(model, prompts, max_new_tokens=n, temperature=0, n_draft=k)

    out = spec()
    same = plain() == out.tokens
    t_plain, t_spec, ratio = _compare_pairs(plain, spec, repeats, device)
    tok = len(prompts) * n
    _row(
        f"greedy {label} k={k}, B={len(prompts)}",
        "plain decoding",
        tok / t_plain,
        f"MTP spec. (acc {out.acceptance_rate:.2f})",
        tok / t_spec,
        "tok/s",
        ratio,
    )
    cost = (t_spec / max(out.n_steps, 1)) / (t_plain / (n - 1))
    rows = out.row_acceptance
    print(
        f"{'':<34} {n} new tokens; outputs identical: {same}; per-row acceptance "
        f"{min(rows):.2f}-{max(rows):.2f}; main forwards {out.n_steps} vs {n - 1} plain "
        f"({(n - 1) / max(out.n_steps, 1):.2f} tokens each); a speculative step ({k + 1}-token main "
        f"forward + {k} MTP block pass{'es' if k > 1 else ''}) costs {cost:.2f}x a plain step"
    )


def speculative_rows(layers: int, args: argparse.Namespace, steps: int, repeats: int) -> None:
    """Train a fresh ``ModelConfig.small(n_layers=layers)`` with the MTP loss, then batch and batch-1 rows."""
    torch.manual_seed(0)
    cfg = ModelConfig.small(n_layers=layers)
    label = "small" if layers == ModelConfig.small().n_layers else f"small L={layers}"
    model = Transformer(cfg).to(args.device)
    size = count_parameters(model)["total"] / 1e6
    print(
        f"row 4, config {label}: ModelConfig.small(n_layers={layers}), {layers} main blocks + 1 MTP block, "
        f"{size:.2f}M params; training {steps} steps on {args.corpus} text with the MTP loss ..."
    )
    train_for_mtp(model, steps, args.device, args.corpus)
    prompts = _spec_prompts(args.corpus, args.batch)
    sample = generate(model, prompts[:1], max_new_tokens=64, temperature=0, tokenizer=Tokenizer())
    print(f"  greedy sample: {Tokenizer().decode(prompts[0])!r} -> {sample.texts[0]!r}")
    for k in args.n_draft:
        for batch in (prompts, prompts[:1]):
            speculative_row(model, batch, 64, k, 2 * repeats + 1, args.device, label)


def recompute_row(cfg: ModelConfig, batch: int, seqlen: int, device: str) -> None:
    def saved_bytes(recompute: bool) -> int:
        torch.manual_seed(0)
        model = Transformer(ModelConfig.small(recompute=recompute, n_mtp_modules=0)).to(device).train()
        tokens = torch.randint(0, cfg.vocab_size, (batch, seqlen), device=device)
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            if t.device.type != "meta" and not isinstance(t, torch.nn.Parameter):
                seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model(tokens).logsumexp(-1).mean()
        loss.backward()
        return sum(v for k, v in seen.items() if k not in params)

    base, rec = saved_bytes(False), saved_bytes(True)
    _row(
        f"saved activations MB ({batch}x{seqlen})",
        "store everything",
        base / 2**20,
        "recompute norm+MLA up",
        rec / 2**20,
        "MB",
        base / rec,
    )
    print(
        f"{'':<34} saved {(base - rec) / 2**20:.1f} MB per step "
        f"({(base - rec) / base:.0%} of all activations; the rest is MoE/MLP, attention core and logits, "
        "which DeepSeek-V3 keeps)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and training steps")
    parser.add_argument("--train-steps", type=int, default=400, help="MTP training steps before row 4")
    parser.add_argument(
        "--corpus", choices=sorted(CORPORA), default="counting", help="generated training text for row 4"
    )
    parser.add_argument(
        "--deep-layers",
        type=int,
        default=12,
        help="main blocks of the second, deeper row-4 config (0 = skip)",
    )
    parser.add_argument(
        "--n-draft",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 2, 3],
        help="comma-separated draft lengths for row 4 (1 = DeepSeek-V3's single MTP draft)",
    )
    parser.add_argument("--batch", type=int, default=8, help="decode batch size")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1 is fastest for this size)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 5
    train_steps = min(args.train_steps, 150) if args.quick else args.train_steps
    torch.manual_seed(0)
    cfg = ModelConfig.small()
    print(
        f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} config=small "
        f"{count_parameters(Transformer(cfg))}"
    )
    print(
        f"{'row':<34} {'peer':<26} {'value':>12} {'unit':<9} | {'ours':<26} {'value':>12} {'unit':<9} | ratio"
    )
    kv_cache_row(cfg)
    model = Transformer(cfg).to(args.device).eval()
    tok = Tokenizer()
    prompts = [tok.encode(line + " ") for line in _arith_corpus(args.batch, random.Random(1))]
    decode_row(model, prompts, 48, repeats, args.device)
    moe_row(cfg, 8, 128, repeats, args.device)
    recompute_row(cfg, 8, 256, args.device)
    for layers in (cfg.n_layers, args.deep_layers):
        if layers:
            speculative_rows(layers, args, train_steps, repeats)


if __name__ == "__main__":
    main()
