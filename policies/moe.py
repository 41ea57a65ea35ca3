"""DeepSeekMoE feed-forward: shared experts + fine-grained routed experts (arXiv:2401.06066, 2412.19437).

Key ideas, following DeepSeek-V3 section 2.1.2:

* ``Gate``: sigmoid affinities ``s = sigmoid(x W^T)``; top-k chosen on ``s + bias`` where the per-expert bias
  is used *only for selection* (auxiliary-loss-free balancing) and moved by ``+-gamma`` from the observed load
  outside autograd (``Gate.update_bias``); the output weights are the chosen ``s`` normalised to sum 1, times
  the routed scaling factor ``route_scale``. Optional group-limited routing (``n_expert_groups``).
* complementary sequence-wise balance loss ``alpha * sum_i f_i P_i`` per sequence (eq. 17-20), returned as an
  auxiliary loss; no token dropping (every token reaches all k chosen experts).
* dispatch: sort the (token, expert) pairs by expert, run all experts as one grouped matmul over the jagged
  segments (``torch.nn.functional.grouped_mm`` where the dtype/device allow, else a loop over contiguous
  segments), weight and scatter-add back. ``moe_looped`` is the naive reference it is tested against.
* routing replay: ``MoE.forward`` returns the chosen experts and accepts them back (entries ``< 0`` mean
  "route normally"), so a GRPO training forward can reuse the rollout's routing.

Left out: expert parallelism / all-to-all, capacity factors (no dropping), cross-device node-limited routing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.cache import derived
from policies.config import ModelConfig


class MLP(nn.Module):
    """SwiGLU feed-forward ``w2(silu(w1 x) * w3 x)`` (dense layers and shared experts).

    Example:
        >>> MLP(8, 16)(torch.randn(3, 8)).shape
        torch.Size([3, 8])
    """

    def __init__(self, dim: int, inter_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, inter_dim, bias=False)
        self.w2 = nn.Linear(inter_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, inter_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Gate(nn.Module):
    """Router: sigmoid (or softmax) scores, bias-shifted top-k selection, normalised and scaled weights."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.topk, self.n_groups, self.topk_groups = (
            cfg.n_activated_experts,
            cfg.n_expert_groups,
            cfg.n_limited_groups,
        )
        self.score_func, self.route_scale = cfg.score_func, cfg.route_scale
        self.weight = nn.Parameter(torch.empty(cfg.n_routed_experts, cfg.dim))
        self.register_buffer("bias", torch.zeros(cfg.n_routed_experts, dtype=torch.float32))
        # persistent so that loaders building the model on the meta device restore it
        self.register_buffer("load", torch.zeros(cfg.n_routed_experts, dtype=torch.float64))

    def select(self, scores: torch.Tensor) -> torch.Tensor:
        """Top-k expert indices (N, k) on ``scores + bias``, group-limited when ``n_expert_groups`` > 1."""
        biased = scores + self.bias  # (N, E)
        if self.n_groups > 1:
            grouped = biased.view(biased.shape[0], self.n_groups, -1)  # (N, G, E/G)
            group_scores = grouped.topk(min(2, grouped.shape[-1]), dim=-1)[0].sum(dim=-1)  # (N, G)
            keep = group_scores.topk(self.topk_groups, dim=-1)[1]  # (N, g)
            group_mask = torch.ones_like(group_scores, dtype=torch.bool).scatter_(1, keep, False)  # (N, G)
            biased = grouped.masked_fill(group_mask.unsqueeze(-1), float("-inf")).flatten(1)  # (N, E)
        return biased.topk(self.topk, dim=-1)[1]  # (N, k)

    def forward(
        self, x: torch.Tensor, replay: torch.Tensor | None = None, count: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Route tokens ``x`` (N, dim).

        Args:
            x: Token features (N, dim).
            replay: Optional (N, k) expert indices to reuse; rows whose first entry is < 0 are routed afresh.
            count: Optional (N,) bool of tokens to count in the load statistics (training only).

        Returns:
            ``weights`` (N, k) in x's dtype, ``indices`` (N, k) long, ``scores`` (N, E) fp32 affinities.
        """
        fp32 = x.dtype == torch.float32 and self.weight.dtype == torch.float32  # skip no-op casts (decode)
        logits = F.linear(x, self.weight) if fp32 else F.linear(x.float(), self.weight.float())  # (N, E)
        scores = logits.sigmoid() if self.score_func == "sigmoid" else logits.softmax(dim=-1)  # (N, E)
        with torch.no_grad():
            indices = self.select(scores)  # (N, k)
            if replay is not None:
                replay = replay.to(indices.device, torch.long)
                indices = torch.where(replay[:, :1] >= 0, replay, indices)  # (N, k)
            if self.training and not torch.is_inference_mode_enabled():
                chosen = indices if count is None else indices[count]
                self.load += torch.bincount(chosen.flatten(), minlength=self.load.numel()).to(self.load.dtype)
        weights = scores.gather(1, indices)  # (N, k)
        if self.score_func == "sigmoid":
            weights = weights / weights.sum(dim=-1, keepdim=True)
        if self.route_scale != 1.0:
            weights = weights * self.route_scale
        return (weights if fp32 else weights.to(x.dtype)), indices, scores

    @torch.no_grad()
    def update_bias(self, speed: float) -> torch.Tensor:
        """Auxiliary-loss-free balancing step: ``bias += speed * sign(mean_load - load)``; resets the counts.

        Returns the load fractions (E,) the update was computed from.
        """
        load = self.load.clone()
        if load.sum() > 0:
            self.bias += speed * torch.sign(load.mean() - load).to(self.bias.dtype)
        self.load.zero_()
        return load / load.sum().clamp(min=1)


class Experts(nn.Module):
    """Routed experts as stacked SwiGLU weights ``w1``/``w3`` (E, inter, dim) and ``w2`` (E, dim, inter).

    ``forward(x_sorted, counts)`` runs expert e on the e-th contiguous segment of ``x_sorted``; a
    replacement (e.g. an FP8 version) only needs the same signature.
    """

    use_grouped_mm: bool = True

    def __init__(self, n_experts: int, dim: int, inter_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(n_experts, inter_dim, dim))
        self.w2 = nn.Parameter(torch.empty(n_experts, dim, inter_dim))
        self.w3 = nn.Parameter(torch.empty(n_experts, inter_dim, dim))

    def __len__(self) -> int:
        return self.w1.shape[0]

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert ``e`` applied to ``x`` (M, dim), the per-expert reference."""
        return F.linear(F.silu(F.linear(x, self.w1[e])) * F.linear(x, self.w3[e]), self.w2[e])

    def _grouped_ok(self, x: torch.Tensor) -> bool:
        if not (self.use_grouped_mm and hasattr(F, "grouped_mm")):
            return False
        if x.device.type == "cuda":
            return x.dtype == torch.bfloat16 and all(s * 2 % 16 == 0 for s in self.w2.shape[1:])
        return x.dtype == torch.float32

    def forward(self, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Apply expert e to the e-th segment of ``x`` (M, dim) sorted by expert; ``counts`` (E,)."""
        if self._grouped_ok(x):
            offs = counts.cumsum(0).to(torch.int32)  # (E,)
            h1 = _grouped(x, self.w1.mT, offs)  # (M, inter)
            h3 = _grouped(x, self.w3.mT, offs)  # (M, inter)
            return _grouped(F.silu(h1) * h3, self.w2.mT, offs)  # (M, dim)
        segments = x.split(counts.tolist())
        return torch.cat([self.expert(e, seg) for e, seg in enumerate(segments)])  # (M, dim)


def _grouped(x: torch.Tensor, w: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
    out = F.grouped_mm(x, w, offs=offs)  # (M, N)
    if out.requires_grad:  # the CPU backward rejects expanded (stride-0) output gradients
        out.register_hook(lambda g: g.contiguous())
    return out


class MoE(nn.Module):
    """Shared + routed experts with the DeepSeek-V3 gate; returns routing for replay and the balance loss."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_routed_experts, self.topk = cfg.n_routed_experts, cfg.n_activated_experts
        self.seq_aux_loss_alpha = cfg.seq_aux_loss_alpha
        self.gate = Gate(cfg)
        self.experts = Experts(cfg.n_routed_experts, cfg.dim, cfg.moe_inter_dim)
        self.shared_experts = (
            MLP(cfg.dim, cfg.n_shared_experts * cfg.moe_inter_dim) if cfg.n_shared_experts else None
        )
        # tokens x routed experts up to which inference runs every expert densely (``all_experts``); measured
        # on a CPU with the small preset: 1.4x faster at 8 tokens, even at ~24 (0 disables)
        self.dense_below = 128

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, routing: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mix ``x`` (B, T, dim).

        Args:
            x: Normalised hidden states (B, T, dim).
            mask: (B, T) 1 for real tokens (load statistics and the balance loss ignore padding).
            routing: (B, T, k) expert indices to replay (entries < 0: route normally).

        Returns:
            ``y`` (B, T, dim), ``indices`` (B, T, k), ``aux_loss`` scalar (0 unless training with alpha > 0).
        """
        bsz, seqlen, dim = x.shape
        flat = x.reshape(-1, dim)  # (N, dim)
        real = None if mask is None else mask.reshape(-1).bool()  # (N,)
        replay = None if routing is None else routing.reshape(-1, self.topk)  # (N, k)
        weights, indices, scores = self.gate(flat, replay=replay, count=real)
        if flat.shape[0] * self.n_routed_experts <= self.dense_below and self._dense_ok():
            y = self.all_experts(flat, weights, indices)  # (N, dim) few tokens (decoding)
        else:
            y = dispatch(flat, weights, indices, self.experts)  # (N, dim)
            if self.shared_experts is not None:
                y = y + self.shared_experts(flat)
        aux = x.new_zeros((), dtype=torch.float32)
        if self.training and self.seq_aux_loss_alpha > 0:
            aux = self.sequence_balance_loss(
                scores.view(bsz, seqlen, -1), indices.view(bsz, seqlen, -1), mask
            )
        return y.view(bsz, seqlen, dim), indices.view(bsz, seqlen, self.topk), aux

    def _dense_ok(self) -> bool:
        """``all_experts`` applies: no autograd, plain (not e.g. FP8) expert and shared-expert weights."""
        shared = self.shared_experts
        plain = shared is None or all(type(m) is nn.Linear for m in (shared.w1, shared.w2, shared.w3))
        return not torch.is_grad_enabled() and type(self.experts) is Experts and plain

    def all_experts_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stacked weights for ``all_experts``: w13 (2*(E+s)*I, dim), w2 (dim, (E+s)*I), gate base (E+s,).

        The shared experts (s = their width over ``moe_inter_dim``) are extra columns with a constant gate 1.
        """
        experts, shared = self.experts, self.shared_experts
        w1, w3 = [experts.w1.flatten(0, 1)], [experts.w3.flatten(0, 1)]  # (E*I, dim) each
        w2 = [experts.w2.permute(1, 0, 2).flatten(1)]  # (dim, E*I)
        n_shared = 0
        if shared is not None:
            w1.append(shared.w1.weight)
            w3.append(shared.w3.weight)
            w2.append(shared.w2.weight)
            n_shared = shared.w1.weight.shape[0] // experts.w1.shape[1]
        base = torch.cat([experts.w1.new_zeros(len(experts)), experts.w1.new_ones(n_shared)])  # (E+s,)
        return torch.cat(w1 + w3), torch.cat(w2, 1), base

    def all_experts(self, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Routed + shared output for few tokens ``x`` (N, dim): every expert on every token, two matmuls.

        Experts a token did not choose get gate weight 0, so this equals ``dispatch`` + shared experts (up to
        summation order); for a handful of tokens two dense matmuls beat sorting and a grouped matmul (one
        matmul per expert on a CPU). Used without autograd (the stacked weights are a detached copy).
        """
        params = [self.experts.w1, self.experts.w2, self.experts.w3]
        if self.shared_experts is not None:
            params += [
                p.weight for p in (self.shared_experts.w1, self.shared_experts.w2, self.shared_experts.w3)
            ]
        w13, w2, base = derived(self, "all_experts", params, self.all_experts_weights)
        h1, h3 = F.linear(x, w13).chunk(2, dim=-1)  # (N, (E+s)*I) each
        gates = base.expand(x.shape[0], -1).scatter(1, indices, weights.to(base.dtype))  # (N, E+s)
        act = (F.silu(h1) * h3).view(x.shape[0], gates.shape[1], -1) * gates.unsqueeze(-1)  # (N, E+s, I)
        return F.linear(act.flatten(1), w2)  # (N, dim)

    def sequence_balance_loss(
        self, scores: torch.Tensor, indices: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Sequence-wise balance loss (DeepSeek-V3 eq. 17-20), averaged over sequences."""
        bsz, seqlen, n_exp = scores.shape
        real = torch.ones(bsz, seqlen, device=scores.device) if mask is None else mask.float()  # (B, T)
        n_real = real.sum(1).clamp(min=1)  # (B,)
        hits = torch.zeros(bsz, seqlen, n_exp, device=scores.device).scatter_(2, indices, 1.0)  # (B, T, E)
        f = (hits * real[..., None]).sum(1) * n_exp / (self.topk * n_real[:, None])  # (B, E)
        normed = scores / scores.sum(-1, keepdim=True)  # (B, T, E)
        p = (normed * real[..., None]).sum(1) / n_real[:, None]  # (B, E)
        return self.seq_aux_loss_alpha * (f * p).sum(1).mean()


def dispatch(x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor, experts: Experts) -> torch.Tensor:
    """Sorted-token dispatch: group the N*k (token, expert) pairs by expert, run experts, combine.

    Example:
        >>> experts = Experts(3, 4, 8)
        >>> _ = [nn.init.normal_(p) for p in experts.parameters()]
        >>> x, w = torch.randn(5, 4), torch.rand(5, 2)
        >>> idx = torch.tensor([[0, 1], [2, 1], [0, 2], [1, 0], [2, 0]])
        >>> torch.allclose(dispatch(x, w, idx, experts), moe_looped(x, w, idx, experts), atol=1e-4)
        True
    """
    topk = indices.shape[1]
    flat_idx = indices.flatten()  # (N*k,)
    order = flat_idx.argsort(stable=True)  # (N*k,)
    counts = torch.bincount(flat_idx, minlength=len(experts))  # (E,)
    token_of = order // topk  # (N*k,)
    out_sorted = experts(x.index_select(0, token_of), counts)  # (N*k, dim)
    out_sorted = out_sorted * weights.flatten().index_select(0, order).unsqueeze(1)  # (N*k, dim)
    return torch.zeros_like(x).index_add_(0, token_of, out_sorted)  # (N, dim)


def moe_looped(
    x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor, experts: Experts
) -> torch.Tensor:
    """Naive reference: for each expert, find its tokens with a mask and add its weighted output."""
    y = torch.zeros_like(x)  # (N, dim)
    for e in range(len(experts)):
        tok, slot = torch.where(indices == e)
        if tok.numel():
            y[tok] += experts.expert(e, x[tok]) * weights[tok, slot, None]
    return y
