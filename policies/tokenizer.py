"""A small, self-contained byte-level tokenizer with the special tokens the prompt templates need.

Key idea: ids 0-6 are special tokens (``<pad>``, ``<bos>``, ``<eos>``, ``<think>``, ``</think>``,
``<answer>``, ``</answer>``) and ids 7-262 are the 256 UTF-8 bytes, so any unicode text round-trips exactly
and nothing is downloaded. The four tag strings are always encoded as single tokens (the model emits
``</answer>`` in one step, and the format rewards see the same text); ``<pad>``/``<bos>``/``<eos>`` appearing
*in text* are encoded as plain bytes so user text can never inject control tokens. Byte-level (rather than a
trained BPE) keeps the character-level arithmetic of countdown/math visible to a small model.

Left out: merges/BPE (sequences are ~4x longer than with a subword vocabulary; fine at this model size).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<think>", "</think>", "<answer>", "</answer>")
TAG_TOKENS = SPECIAL_TOKENS[3:]
_BYTE_OFFSET = len(SPECIAL_TOKENS)
_TAG_RE = re.compile("|".join(re.escape(t) for t in TAG_TOKENS))


class Tokenizer:
    """Byte-level tokenizer: 7 special tokens + 256 bytes = 263 ids.

    Example:
        >>> tok = Tokenizer()
        >>> ids = tok.encode("<think>2+2</think>")
        >>> ids[0] == tok.token_to_id("<think>"), len(ids), tok.decode(ids)
        (True, 5, '<think>2+2</think>')
    """

    pad_token, bos_token, eos_token = "<pad>", "<bos>", "<eos>"

    def __init__(self) -> None:
        self._special = {t: i for i, t in enumerate(SPECIAL_TOKENS)}

    @property
    def vocab_size(self) -> int:
        """Number of ids (263)."""
        return _BYTE_OFFSET + 256

    @property
    def pad_id(self) -> int:
        """Id of ``<pad>`` (0)."""
        return self._special["<pad>"]

    @property
    def bos_id(self) -> int:
        """Id of ``<bos>`` (1)."""
        return self._special["<bos>"]

    @property
    def eos_id(self) -> int:
        """Id of ``<eos>`` (2)."""
        return self._special["<eos>"]

    def token_to_id(self, token: str) -> int:
        """Id of a special token, or of a single-byte string.

        Raises:
            ValueError: ``token`` is neither a special token nor one byte.
        """
        if token in self._special:
            return self._special[token]
        raw = token.encode()
        if len(raw) != 1:
            raise ValueError(f"{token!r} is not a special token {SPECIAL_TOKENS} nor a single byte")
        return _BYTE_OFFSET + raw[0]

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Text to ids (tags as single tokens, everything else as UTF-8 bytes).

        Raises:
            TypeError: ``text`` is not a ``str``.
            ValueError: ``text`` holds a lone surrogate (e.g. ``"\\ud800"``), which has no UTF-8 encoding.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects str, got {type(text).__name__}")
        ids = [self.bos_id] if add_bos else []
        pos = 0
        try:
            for match in _TAG_RE.finditer(text):
                ids.extend(_BYTE_OFFSET + b for b in text[pos : match.start()].encode())
                ids.append(self._special[match.group()])
                pos = match.end()
            ids.extend(_BYTE_OFFSET + b for b in text[pos:].encode())
        except UnicodeEncodeError:
            at = next(i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF)
            raise ValueError(
                f"text has a lone surrogate {text[at]!r} at index {at}: not valid unicode, no UTF-8 encoding"
            ) from None
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = True) -> str:
        """Ids to text.

        ``<pad>``/``<bos>``/``<eos>`` are dropped unless ``skip_special_tokens=False``; tags always render;
        invalid UTF-8 (possible in sampled output) becomes U+FFFD.

        Raises:
            ValueError: An id outside the vocabulary.
        """
        parts: list[str] = []
        buf = bytearray()
        for i in ids:
            i = int(i)
            if _BYTE_OFFSET <= i < self.vocab_size:
                buf.append(i - _BYTE_OFFSET)
                continue
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} outside [0, {self.vocab_size})")
            parts.append(buf.decode("utf-8", errors="replace"))
            buf.clear()
            if i >= 3 or not skip_special_tokens:
                parts.append(SPECIAL_TOKENS[i])
        parts.append(buf.decode("utf-8", errors="replace"))
        return "".join(parts)

    def batch_decode(self, batch: Iterable[Iterable[int]], *, skip_special_tokens: bool = True) -> list[str]:
        """``decode`` over a batch."""
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]

    def __len__(self) -> int:
        return self.vocab_size
