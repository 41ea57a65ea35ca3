"""``rlenv pretrain``: next-token pretraining of the bundled model on generated generic text.

Key idea: an R1-Zero-style "base model" must know arithmetic and text but never have seen the task format.
The corpus comes from :func:`rlenv.train.corpus.make_corpus` (``"arithmetic"``: expressions and their values;
``"siblings"``: sibling tasks) or from a file; documents are tokenised, joined with EOS and cut into blocks of
``seq_len`` tokens (GPT-2 style packing), and every token is predicted.

Example::

    rlenv pretrain --steps 200 --run-dir runs/base
    rlenv train --policy runs/base/checkpoints/step-00000200 ...

Left out on purpose: the multi-token-prediction loss, curriculum over corpora.
"""

from __future__ import annotations

import json
import os

from rlenv.train.config import PretrainConfig, StageResult
from rlenv.train.lm import Example, train_lm
from rlenv.train.policy import Policy

__all__ = ["PretrainConfig", "load_documents", "pack_documents", "pretrain"]


def load_documents(config: PretrainConfig) -> list[str]:
    """The documents of ``config.corpus``: a generated corpus name, or a .txt / .jsonl file."""
    source = config.corpus
    if os.path.isfile(source):
        with open(source) as f:
            if source.endswith(".jsonl"):
                return [json.loads(line)["text"] for line in f if line.strip()]
            return [line.rstrip("\n") for line in f if line.strip()]
    from rlenv.train.corpus import make_corpus

    return make_corpus(source, config.corpus_size, config.seed)


def pack_documents(token_lists: list[list[int]], eos_id: int | None, block: int) -> list[Example]:
    """Joins documents with EOS and cuts the stream into blocks of ``block`` tokens (the tail is kept
    when at least half a block long).

    Example:
        >>> [e.ids for e in pack_documents([[1, 2], [3]], 9, 3)]
        [(1, 2, 9), (3, 9)]
    """
    stream: list[int] = []
    for ids in token_lists:
        stream += list(ids) + ([eos_id] if eos_id is not None else [])
    blocks = [stream[i : i + block] for i in range(0, len(stream), block)]
    if len(blocks) > 1 and len(blocks[-1]) * 2 < block:
        blocks.pop()
    return [Example(tuple(b), (1,) * len(b)) for b in blocks if len(b) > 1]


def pretrain(config: PretrainConfig) -> StageResult:
    """Pretrains ``config.policy`` (by default a fresh tiny bundled model) on the corpus.

    Args:
        config: The :class:`PretrainConfig`.

    Returns:
        A :class:`StageResult`; its ``checkpoint`` is the base model for SFT or RL.

    Example:
        >>> pretrain(PretrainConfig(steps=1, run_dir="/tmp/rlenv-doc-pt")).steps  # doctest: +SKIP
        1
    """

    def build(policy: Policy) -> list[Example]:
        docs = load_documents(config)
        return pack_documents([policy.encode(d) for d in docs], policy.eos_id, config.seq_len)

    return train_lm(
        config, build, batch_size=config.batch_size, grad_accum_steps=config.grad_accum_steps, desc="pretrain"
    )
