"""The MLA latent KV cache used by generation and self-speculative decoding.

Key idea (DeepSeek-V2/V3 MLA): per token and layer only the normalised key/value latent ``c_kv``
(``kv_lora_rank`` floats) and the shared RoPE key ``k_rope`` (``qk_rope_head_dim`` floats) are cached;
keys and values of every head are folded back in at attention time by the absorbed form in ``policies.mla``.

Bookkeeping is per row: ``lengths[b]`` slots are filled (left padding included), ``pad[b, s]`` marks padding
slots and ``n_real[b]`` counts real tokens (the RoPE position of the next token). Rows may advance by
different amounts, which is what speculative decoding needs to roll back rejected draft tokens: slots past
``lengths`` are simply invisible and get overwritten.

``derived`` gives decode-time weights folded from parameters (absorbed MLA, stacked experts, the MTP token
table), built once per ``constant_weights()`` block (``generate`` and ``speculative_generate`` run in one) and
rebuilt on every call outside one. Why not keep them across calls, keyed on each parameter's version counter:
torch's fused AdamW and writes through ``.data`` change parameters without bumping it, and stale folded
weights then make rollouts sample from an old policy (a GRPO run collapsed that way; see
docs/recipes-history.md, session 16).

Left out: paged/block allocation (a dense (B, S) buffer sized per ``generate`` call is enough here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import TypeVar

import torch

T = TypeVar("T")


_STORE: ContextVar[dict | None] = ContextVar("policies_derived_weights", default=None)


@contextlib.contextmanager
def constant_weights() -> Iterator[None]:
    """Within the block, weights ``derived`` from parameters are built once and reused.

    The caller promises the parameters do not change inside the block (one ``generate`` call). Nested blocks
    share the outermost one's weights; the weights are dropped when it ends. Per thread (a ``ContextVar``).

    Example:
        >>> w, calls = torch.ones(2), []
        >>> class Owner: ...
        >>> o = Owner()
        >>> with constant_weights():
        ...     for _ in range(3):
        ...         _ = derived(o, "twice", [w], lambda: calls.append(1) or 2 * w)
        >>> len(calls)
        1
    """
    if _STORE.get() is not None:
        yield
        return
    token = _STORE.set({})
    try:
        yield
    finally:
        _STORE.reset(token)


def derived(owner: object, name: str, sources: Sequence[torch.Tensor], build: Callable[[], T]) -> T:
    """``build()`` without autograd, once per ``constant_weights()`` block (every call outside one).

    Inside a block the value is also rebuilt if a source's storage, version counter, dtype or device changed
    (updates that bump the counter are caught even there). Callers use the value only where gradients are off
    (decoding).

    Example:
        >>> w = torch.ones(2)
        >>> class Owner: ...
        >>> o = Owner()
        >>> with constant_weights():
        ...     _ = derived(o, "twice", [w], lambda: 2 * w)
        ...     _ = w.data.add_(1)  # no version bump: the block's promise is broken, the old value stays
        ...     float(derived(o, "twice", [w], lambda: 2 * w).sum())
        4.0
        >>> float(derived(o, "twice", [w], lambda: 2 * w).sum())  # a new call sees the new weights
        8.0
    """
    store = _STORE.get()
    if store is None:
        with torch.no_grad():
            return build()
    key = tuple((t.data_ptr(), 0 if t.is_inference() else t._version, t.dtype, t.device) for t in sources)
    hit = store.get((owner, name))
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.no_grad():
        value = build()
    store[(owner, name)] = (key, value)
    return value


class KVCache:
    """Dense per-layer latent cache with per-row lengths.

    Args:
        n_layers: Attention layers sharing this cache's bookkeeping.
        batch: Rows.
        max_len: Slots per row (prompt incl. padding + new tokens + any speculative look-ahead).
        kv_lora_rank: Latent size.
        rope_dim: ``qk_rope_head_dim``.
        dtype: Storage dtype (the model's).
        device: Storage device.

    Example:
        >>> cache = KVCache(n_layers=1, batch=2, max_len=8, kv_lora_rank=4, rope_dim=2)
        >>> pos, mask = cache.prepare(torch.tensor([[0, 1, 1], [1, 1, 1]], dtype=torch.bool))
        >>> pos.tolist(), mask.shape
        ([[0, 0, 1], [0, 1, 2]], torch.Size([2, 3, 3]))
    """

    def __init__(
        self,
        *,
        n_layers: int,
        batch: int,
        max_len: int,
        kv_lora_rank: int,
        rope_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.max_len = max_len
        self.c_kv = [
            torch.zeros(batch, max_len, kv_lora_rank, dtype=dtype, device=device) for _ in range(n_layers)
        ]
        self.k_rope = [
            torch.zeros(batch, max_len, rope_dim, dtype=dtype, device=device) for _ in range(n_layers)
        ]
        self.lengths = torch.zeros(batch, dtype=torch.long, device=device)  # (B,) filled slots
        self.n_real = torch.zeros(batch, dtype=torch.long, device=device)  # (B,) real tokens so far
        self.pad = torch.zeros(batch, max_len, dtype=torch.bool, device=device)  # (B, S)
        self.horizon = 0  # python upper bound on the slots any row's queries may see
        self.is_empty = True
        self._slots: torch.Tensor | None = None
        self._new_real: torch.Tensor | None = None
        self._write_slots: torch.Tensor | None = None  # the prepared slots ``write`` fills (see ``focus``)
        self._rows = torch.arange(batch, device=device)[:, None]  # (B, 1)

    @property
    def batch(self) -> int:
        """Number of rows."""
        return self.lengths.shape[0]

    def prepare(self, new_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reserve slots for ``n`` new tokens per row; return their positions and the key mask.

        Args:
            new_mask: (B, n) bool, True for real tokens (False only for left padding during prefill).

        Returns:
            ``positions`` (B, n) RoPE positions, and ``key_mask`` (B, n, horizon) bool, True where query j
            of row b may attend to slot s (causal, padding hidden, every query sees at least itself).
        """
        n = new_mask.shape[1]
        longest = int(self.lengths.max())  # the one host sync per step
        if longest + n > self.max_len:
            raise ValueError(f"cache overflow: {longest} + {n} > max_len={self.max_len}")
        self.is_empty = self.horizon == 0
        arange = torch.arange(n, device=new_mask.device)
        slots = self.lengths[:, None] + arange  # (B, n)
        self.pad.scatter_(1, slots, ~new_mask)
        positions = self.n_real[:, None] + new_mask.long().cumsum(1) - 1  # (B, n)
        self.horizon = longest + n
        keys = torch.arange(self.horizon, device=new_mask.device)  # (S,)
        visible = (keys[None, None, :] <= slots[:, :, None]) & ~self.pad[:, None, : self.horizon]  # (B, n, S)
        visible |= keys[None, None, :] == slots[:, :, None]
        self._slots, self._new_real, self._write_slots = slots, new_mask, slots
        return positions.clamp(min=0), visible

    def focus(self, start: int, length: int = 1) -> None:
        """Direct the next ``write`` calls to prepared slots ``start .. start + length - 1`` only.

        For chained one-token passes (speculative drafts): one ``prepare`` for all of them, then each pass
        writes its own slot with its row of the positions/mask ``prepare`` returned.
        """
        assert self._slots is not None, "call prepare() before focus()"
        self._write_slots = self._slots[:, start : start + length]

    def discard(self) -> None:
        """Drop the prepared slots without committing them (they stay invisible and get overwritten)."""
        self._slots = self._new_real = self._write_slots = None

    def write(
        self, layer: int, c_kv: torch.Tensor, k_rope: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new latents (B, n, R) / (B, n, dr) for ``layer``; return the visible cache views."""
        slots, rows, dtype = self._write_slots, self._rows, self.c_kv[layer].dtype
        assert slots is not None, "call prepare() before write()"
        self.c_kv[layer][rows, slots] = c_kv if c_kv.dtype == dtype else c_kv.to(dtype)
        self.k_rope[layer][rows, slots] = k_rope if k_rope.dtype == dtype else k_rope.to(dtype)
        return self.c_kv[layer][:, : self.horizon], self.k_rope[layer][
            :, : self.horizon
        ]  # (B, S, R), (B, S, dr)

    def advance(self, accepted: torch.Tensor | None = None) -> None:
        """Commit the prepared tokens: all of them, or the first ``accepted[b]`` (B,) of row b."""
        assert self._slots is not None and self._new_real is not None, "call prepare() before advance()"
        n = self._slots.shape[1]
        if accepted is None:
            self.lengths += n
            self.n_real += self._new_real.long().sum(1)
        else:
            self.lengths += accepted
            kept = torch.arange(n, device=accepted.device)[None, :] < accepted[:, None]  # (B, n)
            self.n_real += (self._new_real & kept).long().sum(1)
        self.discard()

    def select(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (1-D long index), e.g. to drop finished sequences from the batch."""
        self.c_kv = [t.index_select(0, rows) for t in self.c_kv]
        self.k_rope = [t.index_select(0, rows) for t in self.k_rope]
        self.lengths = self.lengths.index_select(0, rows)
        self.n_real = self.n_real.index_select(0, rows)
        self.pad = self.pad.index_select(0, rows)
        self._rows = torch.arange(rows.shape[0], device=rows.device)[:, None]  # (B', 1) rows may repeat
