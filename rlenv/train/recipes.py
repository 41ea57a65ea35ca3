"""R1 and R1-Zero experiments end to end: ``rlenv run`` chains pretraining, SFT, GRPO and an evaluation.

Recipes (DeepSeek-R1, arXiv:2501.12948, at laptop scale on countdown, TinyZero's task):

* ``r1`` -- generic arithmetic pretraining (never the task) -> cold-start SFT on solver-written countdown
  solutions (:func:`rlenv.train.corpus.countdown_sft_rows`) -> GRPO with the countdown accuracy + format
  rewards (the environment's default reward) -> evaluation.
* ``r1zero`` -- pretraining on countdown's sibling tasks in the same template (evaluate an expression; write
  any equation over given numbers) plus arithmetic -> pure GRPO with the same rewards -> evaluation.

Each phase is one of the training stages (:mod:`rlenv.train.pretrain`, ``sft``, ``grpo``) writing into a
sub-directory of ``run_dir``; the checkpoint of one phase is the policy of the next. After every phase the
policy is evaluated on the same ``eval_items`` problems of the environment's ``split="test"`` stream (which
shares no item with the train split every training phase draws from): greedy and sampled accuracy,
accuracy on non-shortcut targets (neither the sum nor the product of all numbers), format rate, mean
completion tokens, tokens spent per solved problem, beside the always-add and always-multiply baselines
(:mod:`rlenv.train.countdown_eval`).
The run directory receives ``config.json``, ``results.json`` (every figure), ``results.md`` (the table),
``curves.png`` (learning curves of every phase) and the phases' checkpoints and ``metrics.jsonl``.

GPU / TinyZero configuration: ``hf_model`` points at a local Hugging Face causal LM (e.g. a Qwen2.5-3B
download); pretraining is skipped (the model is the base), the template is TinyZero's (``<think>`` prefilled)
and the same environment and rewards are used. See docs/recipes.md.

Left out on purpose: hyper-parameter search (defaults were set on the train split only), multi-GPU
launchers (the stages support ``torchrun``), and wall-clock budgets inside a stage (phases are sized in
steps).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rlenv.train.countdown_eval import (
    baselines,
    evaluate_countdown,
    format_audit,
    format_search,
    format_table,
    heldout_items,
    plot_curves,
)

__all__ = ["RecipeConfig", "RecipeResult", "run_recipe"]

_QUICK = dict(
    policy="tiny", pretrain_steps=4, pretrain_docs=64, sft_steps=4, sft_rows=32, grpo_steps=2,
    prompts_per_step=2, num_generations=2, eval_items=8, max_new_tokens=24, seq_len=96, batch_size=4,
    sft_max_len=128, trace_style="direct", sft_near_miss=0.0, sft_keep_lengths=False,
)

_BUDGETS: dict[str, dict[str, Any]] = {  # sized for <= 20 minutes on 2 cores with the evaluation
    "r1": dict(pretrain_steps=300, pretrain_docs=6000, grpo_steps=75, max_new_tokens=256, template="terse",
               gate_format=True, grpo_skip_long_searches=True),
    "r1zero": dict(pretrain_steps=2400, pretrain_docs=40000, grpo_steps=300, max_new_tokens=160,
                   template="compact", gate_format=False, grpo_skip_long_searches=False),
}


_LONG_SEARCH_FILTER = "rlenv.train.countdown_eval:search_fits_trace"


@dataclass(frozen=True, kw_only=True)
class RecipeConfig:
    """An experiment: the recipe, the policy, each phase's budget and the evaluation (``rlenv run``)."""

    recipe: Literal["r1", "r1zero"] = "r1"
    """"r1": pretrain -> SFT on solver traces -> GRPO; "r1zero": pretrain on sibling tasks -> pure GRPO."""
    run_dir: str = ""
    """Directory for every phase, the results table and the curves (default: runs/<recipe>)."""
    policy: str = "small"
    """Bundled preset ("tiny", "small") or a model directory to start from."""
    hf_model: str = ""
    """GPU / TinyZero setting: path of a local Hugging Face causal LM; skips pretraining (it is the base)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train and evaluate."""
    ranks: int = 0
    """Local data-parallel processes for pretraining, SFT and GRPO (same global batches; after training, the
    same processes evaluate the phase's checkpoint, each on every world-th batch of items). 0 = auto: on a
    CPU one single-threaded rank per core, as many as divide batch_size and prompts_per_step (on 2 cores two
    ranks ran SFT and GRPO steps 1.2x faster than one two-threaded process); on a GPU one (several GPUs:
    run the stages under torchrun). 1 = one process using every core."""
    seed: int = 0
    """Seed of initialisation, corpora, training prompts and sampling."""
    template: Literal["compact", "terse", "r1zero", "tinyzero"] | None = None
    """Countdown prompt framing (None: the recipe's, "terse" for r1, "compact" for r1zero): "terse"
    (``User: [49, 31, 42] -> 60 Assistant:``, 35 characters: every prompt character is a token of every
    rollout and update of the character-level policy; r1 only, r1zero's sibling tasks need a question
    sentence), "compact" (the question in one sentence, ~83 characters), "r1zero" (R1-Zero's), "tinyzero"
    (prefills <think>)."""
    num_numbers: int = 3
    """Numbers per countdown problem (3-6); other generator settings are the environment's defaults."""
    pretrain_steps: int | None = None
    """Pretraining optimiser steps (None: the recipe's budget, 300 for r1, 2,400 for r1zero); 0 uses `policy`
    (e.g. an earlier run's checkpoint) as the base."""
    pretrain_docs: int | None = None
    """Generated pretraining documents (None: 6,000 for r1, 40,000 for r1zero)."""
    pretrain_lr: float = 2e-3
    """Pretraining peak learning rate."""
    seq_len: int = 256
    """Pretraining block length in tokens."""
    batch_size: int = 16
    """Pretraining and SFT batch size."""
    sft_steps: int = 3600
    """Cold-start SFT optimiser steps (r1 only; 0 skips SFT). 3,400 saved 45 s but ended 11-17 points lower
    in greedy accuracy on two validation seeds, 3-8 points after GRPO (docs/recipes-history.md, session 8)."""
    sft_rows: int = 20000
    """Solver-written SFT rows (r1 only)."""
    sft_near_miss: float | None = None
    """Least share of SFT rows whose search checks a near miss (``49+30=79 vs 80 no``; ~20% in the natural
    stream; 0 = the stream as it comes; None: 0.6 with search traces, 0 with direct ones). Near misses make
    the policy compare instead of saying ``ok`` for anything close: with the compact prompt 0.6 raised greedy
    accuracy after GRPO on seeds 1 / 0 / 3 from 50.2 / 69.4 / 70.6% to 72.2 / 65.6 / 74.4%
    (docs/recipes-history.md, sessions 6-7)."""
    sft_arithmetic_docs: int = 0
    """Generic arithmetic documents (the pretraining stream continued, no prompt, every token learnt) mixed
    into the SFT rows (r1 only): arithmetic practice without the prompt's tokens. 4,000 of them changed
    greedy accuracy after GRPO on validation seeds 0 / 1 / 2 from 74.4 / 85.0 / 69.8% to 78.8 / 72.6 /
    1.4% (seed 2's SFT never learnt the task; docs/recipes-history.md, session 13)."""
    sft_keep_lengths: bool = False
    """Take the near misses within each search length, keeping the stream's lengths (``keep_lengths`` of
    :func:`rlenv.train.corpus.countdown_sft_rows`); otherwise they lengthen the searches, and the ``ok`` sits
    at the second check in 19% of the rows against 31% of the stream. With ``sft_near_miss=0.8`` (57% of
    rows with a near miss, the default 60%) three validation seeds ended GRPO at 74.2 / 80.6 / 0.4% greedy
    against 74.4 / 85.0 / 69.8% for the default: seed 2 never learnt arithmetic (docs/recipes-history.md,
    session 13)."""
    sft_prune: bool = False
    """Leave the hopeless final products (``31*20=620 vs 60 no``: two operands >= 10 overshooting the target)
    out of the search traces: ~11% fewer trace characters (SFT steps no faster), but on two validation seeds
    4.6 points less greedy accuracy after SFT (more wrong verdicts) and ~2 after GRPO
    (docs/recipes-history.md, session 8)."""
    sft_lr: float = 2e-3
    """SFT peak learning rate (2e-3 reached a lower loss than 1e-3 and 4e-3 at every step to 1,500)."""
    sft_weight_decay: float | None = None
    """SFT AdamW decoupled weight decay, not on norms, biases and embeddings (None: 1.0 for the bundled
    policy trained from scratch, 0 for a pretrained ``hf_model``; 0 up to session 13). 1.0, the
    value of the grokking studies of small transformers on arithmetic (Power et al. 2022; Nanda et al.
    2023), gave as good a final policy on average and far fewer wrong thinking lines: on validation seeds
    0 / 1 / 2 after GRPO, 77.8 / 81.4 / 71.2% greedy against 74.4 / 85.0 / 69.8% (mean +0.4 greedy, +1.1
    sampled), GRPO +14 to +20 sampled points on every seed against +6 to +13; after SFT 7 / 15 / 5% of the
    ``-`` lines wrong against 34 / 8 / 19%, and 3 / 1 / 4% of solved problems reached through a wrong
    ``ok`` line against 26 / 4 / 19% (docs/recipes-history.md, session 14)."""
    sft_max_len: int = 384
    """Prompt + completion tokens kept per SFT row (at most the model's max_seq_len)."""
    trace_style: Literal["search", "direct"] = "search"
    """SFT traces: the solver's search line by line, or the solution only (see rlenv.train.corpus)."""
    lm_precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Forward precision of pretraining and SFT ("auto": bf16 autocast on a bf16-capable GPU, else fp32).
    GRPO always runs at "auto" (its importance ratios compare training and rollout log-probs). On the
    2-core CPU, r1 with "bf16" was no faster end to end and its accuracy within run-to-run noise of fp32's
    (docs/recipes-history.md, session 4), so the default stays fp32 there."""
    grpo_steps: int | None = None
    """GRPO steps, i.e. rollout batches (None: 75 for r1, 300 for r1zero)."""
    grpo_lr: float = 5e-5
    """GRPO peak learning rate (2e-4 collapsed the prototype; 3e-5 was stable, 5e-5 sharpened faster)."""
    prompts_per_step: int = 16
    """GRPO prompts (groups) per step."""
    num_generations: int = 8
    """GRPO completions per prompt (G). r1 with 8 prompts x G=16 (session 9): +0.8 sampled and +1.5 greedy
    points over two validation seeds, -1.6 / +0.6 on the test split, and ~15 s more per GRPO phase (more
    rows carry a gradient), so 16 x 8 stays (docs/recipes-history.md, session 9)."""
    temperature: float = 1.0
    """Sampling temperature of the sampled evaluation, and of GRPO rollouts unless grpo_temperature is set."""
    grpo_temperature: float | None = None
    """Sampling temperature of GRPO rollouts (and of their training log-probs); None: temperature."""
    gate_format: bool | None = None
    """GRPO's format reward counts only on a right answer (reward 1.0 right and tidy, 0.9 right, 0 wrong),
    so a wrong but tidy answer earns no more than a search cut off at the length limit (None: True for r1;
    False for r1zero, whose base learns the format from that reward). Ungated, r1's GRPO learnt to end
    searches early with a wrong `ok`; gated, it ended higher on each of four validation seeds (2,000
    problems: +1.3 greedy, +1.5 sampled points on average; docs/recipes-history.md, session 9)."""
    grpo_skip_long_searches: bool | None = None
    """GRPO leaves out the problems whose solver search needs more than a search trace's 16 lines (SFT shows
    the direct style for them and the r1 policy never solves them: ~6% of problems, rollouts that run to the
    length cap and groups without a gradient); the evaluation keeps every problem (None: True for r1,
    False for r1zero, whose pure RL sees the task as it comes; docs/recipes-history.md, session 11)."""
    max_new_tokens: int | None = None
    """Completion length cap (tokens) for GRPO and evaluation (None: 256 for r1, whose search traces restate
    the target on every checked line, 98.6% of them fit; 160 for r1zero)."""
    eval_items: int = 500
    """Held-out problems (split="test") evaluated after each phase."""
    eval_seed: int = 0
    """Seed of the evaluation stream."""
    eval_split: Literal["test", "train"] = "test"
    """"test" for reported figures; "train" (with eval_seed != seed: a validation stream no training phase
    draws from) for tuning, so that tuning never looks at the test items."""
    eval_only: bool = False
    """Do not train: evaluate the phases an earlier run wrote into run_dir (e.g. on the test split after
    tuning on a validation stream); writes results-<split>-<eval_seed>.json/.md."""
    quick: bool = False
    """Tiny settings for a smoke test (tiny policy, a few steps, 8 evaluation items)."""

    def __post_init__(self) -> None:
        allowed = {"recipe": ("r1", "r1zero"), "device": ("auto", "cpu", "cuda"),
                   "template": (None, "compact", "terse", "r1zero", "tinyzero"),
                   "trace_style": ("search", "direct"), "lm_precision": ("auto", "fp32", "bf16"),
                   "eval_split": ("test", "train")}
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ValueError(f"RecipeConfig.{name}={getattr(self, name)!r} is not one of {values}")
        if not 3 <= self.num_numbers <= 6:
            raise ValueError(f"RecipeConfig.num_numbers={self.num_numbers} must be in [3, 6]")
        for name in ("pretrain_steps", "sft_steps", "grpo_steps", "seed", "eval_seed", "ranks",
                     "sft_arithmetic_docs", "sft_weight_decay"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"RecipeConfig.{name}={getattr(self, name)} must be >= 0")
        for name in ("pretrain_docs", "sft_rows", "sft_max_len", "seq_len", "batch_size", "prompts_per_step",
                     "num_generations", "max_new_tokens", "eval_items"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"RecipeConfig.{name}={getattr(self, name)} must be >= 1")
        for name in ("pretrain_lr", "sft_lr", "grpo_lr", "temperature", "grpo_temperature"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"RecipeConfig.{name}={getattr(self, name)} must be > 0")
        self._check_combinations()

    def _check_combinations(self) -> None:
        if self.recipe == "r1zero" and self.template == "terse":
            raise ValueError("RecipeConfig.template='terse' states no question, which r1zero's sibling tasks "
                             "rephrase; use 'compact' (or another framing) with recipe='r1zero'")
        if self.eval_split == "train" and self.eval_seed == self.seed:
            raise ValueError(f"RecipeConfig.eval_seed={self.eval_seed} equals seed with eval_split='train'; "
                             "pick another eval_seed so validation items are not training items")
        if self.ranks > 1 and (self.batch_size % self.ranks or self.prompts_per_step % self.ranks):
            raise ValueError(f"RecipeConfig.ranks={self.ranks} must divide batch_size={self.batch_size} and "
                             f"prompts_per_step={self.prompts_per_step} (each rank takes an equal share)")
        near_miss = self.sft_near_miss or 0.0
        if not 0.0 <= near_miss <= 1.0 or (near_miss and self.trace_style != "search"):
            raise ValueError(f"RecipeConfig.sft_near_miss={self.sft_near_miss} must be in [0, 1], and 0 "
                             "unless trace_style='search' (direct traces check nothing)")
        if self.sft_keep_lengths and (self.trace_style != "search" or self.sft_near_miss == 0):
            raise ValueError("RecipeConfig.sft_keep_lengths=True needs trace_style='search' and "
                             f"sft_near_miss > 0 (got {self.trace_style!r}, {self.sft_near_miss})")
        if self.sft_prune and self.trace_style != "search":
            raise ValueError("RecipeConfig.sft_prune=True needs trace_style='search' (direct traces search "
                             "nothing)")

    @property
    def effective(self) -> RecipeConfig:
        """The config actually run: ``quick`` applied, the recipe's budgets and ``run_dir`` defaulted."""
        config = dataclasses.replace(self, **_QUICK, quick=False) if self.quick else self
        budget = {k: v for k, v in _BUDGETS[config.recipe].items() if getattr(config, k) is None}
        if config.sft_near_miss is None:
            budget["sft_near_miss"] = 0.6 if config.trace_style == "search" else 0.0
        if config.sft_weight_decay is None:
            budget["sft_weight_decay"] = 0.0 if config.hf_model else 1.0
        run_dir = config.run_dir or os.path.join("runs", config.recipe)
        return dataclasses.replace(config, **budget, run_dir=run_dir)

    @property
    def layout(self) -> tuple[int, int]:
        """``(ranks, threads per rank)`` the training phases run with (see ``ranks``)."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if _device(self.device) != "cpu":
            if self.ranks > 1:
                raise ValueError(f"RecipeConfig.ranks={self.ranks} needs device='cpu'; on GPUs run the "
                                 "stages under torchrun (docs/training.md)")
            return 1, cores
        ranks = self.ranks or max(r for r in range(1, cores + 1)
                                  if self.batch_size % r == 0 and self.prompts_per_step % r == 0)
        return ranks, max(1, cores // ranks)

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Countdown environment arguments shared by SFT data, GRPO and evaluation."""
        config = {"min_numbers": self.num_numbers, "max_numbers": self.num_numbers}
        kwargs = {"template": self.template or _BUDGETS[self.recipe]["template"], "config": config}
        gate = _BUDGETS[self.recipe]["gate_format"] if self.gate_format is None else self.gate_format
        return kwargs | ({"reward_gates": {"format": "accuracy"}} if gate else {})


@dataclass(frozen=True, kw_only=True)
class RecipeResult:
    """What ``run_recipe`` returns (also written to ``results.json``)."""

    run_dir: str
    """The run directory."""
    rows: Mapping[str, Mapping[str, float]]
    """Phase ("base", "sft", "grpo") -> evaluation figures and the phase's wall time."""
    baselines: Mapping[str, float]
    """Accuracy of always adding / always multiplying every number on the held-out items."""
    checkpoint: str
    """The final policy."""
    checkpoints: Mapping[str, str]
    """Phase -> the checkpoint evaluated."""
    split: str = "test"
    """Split of the evaluated items."""
    eval_seed: int = 0
    """Seed of the evaluated items."""


# ---------------------------------------------------------------------------------------------------------
# Held-out evaluation of one phase (the figures: rlenv.train.countdown_eval)


def _evaluate_phase(checkpoint: str, config: RecipeConfig, items: Sequence[Mapping[str, Any]],
                    phase: str, *, shard: bool = False) -> dict[str, float]:
    from rlenv.train.policy import load_policy

    device = _device(config.device)
    policy = load_policy(checkpoint, device=device, seed=config.seed)
    policy.module.eval()
    greedy = evaluate_countdown(policy, items, temperature=0.0, max_new_tokens=config.max_new_tokens,
                                seed=config.eval_seed, desc=f"eval {phase} greedy", shard=shard)
    sampled = evaluate_countdown(policy, items, temperature=config.temperature, seed=config.eval_seed + 1,
                                 max_new_tokens=config.max_new_tokens, desc=f"eval {phase} sampled",
                                 shard=shard)
    row = {f"greedy/{k}": v for k, v in greedy.items()} | {f"sampled/{k}": v for k, v in sampled.items()}
    return row


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------------------------------------------
# Phases


def _write_jsonl(path: str, rows: Sequence[Mapping[str, Any]]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def _common(config: RecipeConfig, phase: str) -> dict[str, Any]:
    return {"run_dir": os.path.join(config.run_dir, phase), "seed": config.seed, "device": config.device}


@dataclass(frozen=True)
class _Trained:
    """A phase's checkpoint and, when its training ranks evaluated it, the held-out figures and their cost."""

    checkpoint: str
    figures: dict[str, float] | None = None
    eval_s: float = 0.0
    eval_cpu_s: float = 0.0


@dataclass(frozen=True)
class _RankJob:
    """What each data-parallel rank of a phase runs: the stage, then its share of the evaluation."""

    stage_fn: Callable[[Any], Any]
    stage: Any
    config: RecipeConfig
    items: Sequence[Mapping[str, Any]]
    phase: str


def _heldout_path(stage_run_dir: str) -> str:
    return os.path.join(stage_run_dir, "heldout.json")


def _train_and_evaluate(job: _RankJob) -> None:
    """One rank: trains, then evaluates the new checkpoint on every world-th batch of the held-out items.

    The ranks are already running and hold no other work, so the evaluation costs no process start and
    runs on every core; rank 0 writes the figures (and the evaluation's wall and CPU time) for the parent.
    """
    from rlenv.train.distributed import all_gather_objects, rank_and_world

    checkpoint = job.stage_fn(job.stage).checkpoint
    started, cpu = time.perf_counter(), time.process_time()
    figures = _evaluate_phase(checkpoint, job.config, job.items, job.phase, shard=True)
    cpu_s = sum(all_gather_objects(time.process_time() - cpu))
    if rank_and_world()[0] == 0:
        out = {"checkpoint": checkpoint, "figures": figures, "eval_s": time.perf_counter() - started,
               "eval_cpu_s": cpu_s}
        with open(_heldout_path(job.stage.run_dir), "w") as f:
            json.dump(out, f)


def _launch(config: RecipeConfig, stage_fn: Callable[[Any], Any], stage: Any,
            items: Sequence[Mapping[str, Any]], phase: str) -> _Trained:
    """Runs a training stage in this process, or as local data-parallel ranks that also evaluate it."""
    from rlenv.train.distributed import run_local_ranks

    ranks, threads = config.layout
    if ranks == 1:
        return _Trained(stage_fn(stage).checkpoint)
    path = _heldout_path(stage.run_dir)
    if os.path.exists(path):
        os.remove(path)  # a resumed run's old figures must not pass for this one's
    run_local_ranks(_train_and_evaluate, _RankJob(stage_fn, stage, config, items, phase), ranks,
                    threads=threads)
    if not os.path.exists(path):
        raise RuntimeError(f"{type(stage).__name__} ranks finished without writing {path}")
    with open(path) as f:
        out = json.load(f)
    return _Trained(out["checkpoint"], out["figures"], out["eval_s"], out["eval_cpu_s"])


def _pretrain(config: RecipeConfig, policy: str, items: Sequence[Mapping[str, Any]]) -> _Trained:
    from rlenv.train.config import PretrainConfig
    from rlenv.train.corpus import make_corpus, sibling_rows
    from rlenv.train.pretrain import pretrain

    if config.recipe == "r1":
        docs = make_corpus("arithmetic", config.pretrain_docs, config.seed)
    else:  # sibling tasks in the countdown template, two for every arithmetic document
        arithmetic = make_corpus("arithmetic", config.pretrain_docs // 3, config.seed)
        rows = sibling_rows(config.pretrain_docs - len(arithmetic), config.seed, template=config.template)
        siblings = [r["prompt"] + r["completion"] for r in rows]
        docs = []
        for i, text in enumerate(siblings):
            docs += [text, arithmetic[i // 2]] if i % 2 and i // 2 < len(arithmetic) else [text]
        docs += arithmetic[len(siblings) // 2 :]
    path = _write_jsonl(os.path.join(config.run_dir, "data", "pretrain.jsonl"), [{"text": d} for d in docs])
    stage = PretrainConfig(**_common(config, "pretrain"), precision=config.lm_precision, policy=policy,
                           corpus=path, corpus_size=len(docs),
                           steps=config.pretrain_steps, lr=config.pretrain_lr, seq_len=config.seq_len,
                           batch_size=config.batch_size // config.layout[0],
                           warmup_steps=min(20, config.pretrain_steps // 10))
    return _launch(config, pretrain, stage, items, "base")


def _sft(config: RecipeConfig, policy: str, items: Sequence[Mapping[str, Any]]) -> _Trained:
    from rlenv.train.config import SFTConfig
    from rlenv.train.corpus import countdown_sft_rows, make_corpus
    from rlenv.train.sft import sft

    kwargs = config.env_kwargs
    rows = countdown_sft_rows(config.sft_rows, config.seed, template=kwargs["template"],
                              style=config.trace_style, env_kwargs={"config": kwargs["config"]},
                              near_miss=config.sft_near_miss, prune=config.sft_prune,
                              keep_lengths=config.sft_keep_lengths)
    if config.sft_arithmetic_docs:  # the pretraining stream continued: no document is seen twice
        docs = make_corpus("arithmetic", config.pretrain_docs + config.sft_arithmetic_docs, config.seed)
        rows += [{"prompt": "", "completion": doc} for doc in docs[config.pretrain_docs :]]
    path = _write_jsonl(os.path.join(config.run_dir, "data", "sft.jsonl"), rows)
    stage = SFTConfig(**_common(config, "sft"), precision=config.lm_precision, policy=policy, data=path,
                      num_rows=len(rows), steps=config.sft_steps, lr=config.sft_lr,
                      weight_decay=config.sft_weight_decay,
                      batch_size=config.batch_size // config.layout[0], max_len=config.sft_max_len,
                      warmup_steps=min(20, config.sft_steps // 10))
    return _launch(config, sft, stage, items, "sft")


def _grpo(config: RecipeConfig, policy: str, items: Sequence[Mapping[str, Any]]) -> _Trained:
    from rlenv.train.config import GRPOConfig
    from rlenv.train.grpo import train

    stage = GRPOConfig(**_common(config, "grpo"), policy=policy, env_kwargs=json.dumps(config.env_kwargs),
                       steps=config.grpo_steps, lr=config.grpo_lr, prompts_per_step=config.prompts_per_step,
                       num_generations=config.num_generations, max_new_tokens=config.max_new_tokens,
                       temperature=config.grpo_temperature or config.temperature,
                       prompt_filter=_LONG_SEARCH_FILTER if config.grpo_skip_long_searches else "",
                       warmup_steps=min(5, config.grpo_steps // 10), min_lr_ratio=1.0)
    return _launch(config, train, stage, items, "grpo")


def run_recipe(config: RecipeConfig) -> RecipeResult:
    """Runs an experiment end to end and prints the before/after table.

    Args:
        config: The experiment; ``config.quick`` shrinks every budget for a smoke test.

    Returns:
        The per-phase evaluation figures, the baselines and the final checkpoint.

    Example:
        >>> run_recipe(RecipeConfig(quick=True, run_dir="/tmp/doc-recipe")).rows.keys()  # doctest: +SKIP
        dict_keys(['base', 'sft', 'grpo'])
    """
    config = _trained_framing(config).effective
    os.makedirs(config.run_dir, exist_ok=True)
    previous = _previous_run(config) if config.eval_only else None
    if previous is None:
        with open(os.path.join(config.run_dir, "config.json"), "w") as f:
            json.dump(dataclasses.asdict(config), f, indent=2)
    items = heldout_items(config.eval_items, config.eval_seed, config.env_kwargs, config.eval_split)
    phases: list[tuple[str, Any]] = [("base", _pretrain)]
    if config.recipe == "r1" and config.sft_steps > 0:
        phases.append(("sft", _sft))
    phases.append(("grpo", _grpo))
    if previous is not None:  # the phases that run trained (e.g. no SFT when it started from a checkpoint)
        phases = [(phase, fn) for phase, fn in phases if phase in previous["checkpoints"]]
    policy = f"hf:{config.hf_model}" if config.hf_model else config.policy
    rows: dict[str, dict[str, float]] = {}
    checkpoints: dict[str, str] = {}
    for phase, run_phase in phases:
        started, cpu = time.perf_counter(), _cpu_seconds()
        if previous is not None:  # evaluate what an earlier run trained
            trained = _Trained(previous["checkpoints"][phase])
            costs = previous["rows"][phase]
            wall, cpu = costs["wall_s"], costs.get("cpu_s", 0.0)
        else:  # a Hugging Face model, or a given checkpoint with pretrain_steps=0, is the base as it is
            given = phase == "base" and (config.hf_model or config.pretrain_steps == 0)
            trained = _Trained(policy) if given else run_phase(config, policy, items)
            wall = time.perf_counter() - started - trained.eval_s
            cpu = _cpu_seconds() - cpu - trained.eval_cpu_s
        checkpoint, figures, eval_s = trained.checkpoint, trained.figures, trained.eval_s
        if figures is None:
            evaluated = time.perf_counter()
            figures = _evaluate_phase(checkpoint, config, items, phase)
            eval_s = time.perf_counter() - evaluated
        rows[phase] = {**figures, "wall_s": wall, "cpu_s": cpu, "eval_s": eval_s}
        policy = checkpoints[phase] = checkpoint
        print(f"[{config.recipe}] {phase}: greedy {rows[phase]['greedy/accuracy']:.1%}, "
              f"sampled {rows[phase]['sampled/accuracy']:.1%} ({wall:.0f} s)", flush=True)
    result = RecipeResult(run_dir=config.run_dir, rows=rows, baselines=baselines(items), checkpoint=policy,
                          checkpoints=checkpoints, split=config.eval_split, eval_seed=config.eval_seed)
    _report(config, result, suffix=f"-{config.eval_split}-{config.eval_seed}" if config.eval_only else "")
    return result


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the data-parallel ranks of a phase)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _trained_framing(config: RecipeConfig) -> RecipeConfig:
    """With ``eval_only`` and no template given, the prompt framing the run in ``run_dir`` was trained on."""
    path = os.path.join(config.effective.run_dir, "config.json")
    if not (config.eval_only and config.template is None and os.path.exists(path)):
        return config
    with open(path) as f:
        template = json.load(f).get("template")
    return dataclasses.replace(config, template=template) if template else config


def _previous_run(config: RecipeConfig) -> dict[str, Any]:
    path = os.path.join(config.run_dir, "results.json")
    if not os.path.exists(path):
        raise ValueError(f"RecipeConfig.eval_only=True but {path} does not exist; train the run first")
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------------------
# Report: results.md, results.json, curves.png


def _finite(value: Any) -> Any:
    """JSON-safe copy: inf / nan (e.g. tokens per solved problem when none is solved) become None."""
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _report(config: RecipeConfig, result: RecipeResult, suffix: str = "") -> None:
    table = format_table(result.rows, result.baselines)
    for extra in (format_audit(result.rows), format_search(result.rows)):
        table += f"\n\n{extra}" if extra else ""
    title = (f"{config.recipe} on countdown ({config.num_numbers} numbers), {config.eval_items} held-out "
             f"problems (split={config.eval_split}, seed={config.eval_seed})")
    if not config.eval_only:
        ranks, threads = config.layout
        title += (f"; training on {ranks} process{'es' if ranks > 1 else ''} x {threads} "
                  f"thread{'s' if threads > 1 else ''}")
    print(f"\n{title}\n{table}", flush=True)
    with open(os.path.join(config.run_dir, f"results{suffix}.md"), "w") as f:
        f.write(f"{title}\n\n{table}\n")
    with open(os.path.join(config.run_dir, f"results{suffix}.json"), "w") as f:
        json.dump(_finite(dataclasses.asdict(result)), f, indent=2)
    phases = ["pretrain", "sft", "grpo"] if config.recipe == "r1" else ["pretrain", "grpo"]
    path = plot_curves(config.run_dir, phases)
    if path:
        print(f"learning curves: {path}", flush=True)
