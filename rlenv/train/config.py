"""Configs and results of every training stage: what each ``rlenv`` command takes and returns.

Key idea: one frozen, keyword-only dataclass per command, one attribute docstring per field (tyro turns them
into ``--help``), choices as ``Literal`` checked in ``__post_init__``. Every default runs on a CPU in a couple
of minutes with the tiny bundled policy, so ``rlenv train`` with no flags is a smoke run, and the recipes
(:mod:`rlenv.train.recipes`) override what they need with :func:`dataclasses.replace`.

The stages return a :class:`StageResult` (final metrics + checkpoint directory) so they chain: the
``checkpoint`` of one stage is a valid ``policy`` of the next.

References: TRL's ``GRPOConfig`` (names of the GRPO / DAPO / Dr. GRPO knobs kept where they exist there),
DAPO (Yu et al. 2025, arXiv:2503.14476), Dr. GRPO (Liu et al. 2025, arXiv:2503.20783).

Left out on purpose: sequence-level importance sampling (GSPO), vLLM, PEFT; they can be added as fields later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import tyro

__all__ = [
    "DistillConfig",
    "EvalConfig",
    "EvalResult",
    "GRPOConfig",
    "OptimConfig",
    "PlotConfig",
    "PretrainConfig",
    "SFTConfig",
    "StageResult",
]

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
ScaleRewards = Literal["group", "batch", "none"]
Precision = Literal["auto", "fp32", "bf16"]
Device = Literal["auto", "cpu", "cuda"]


def check_choice(obj: Any, name: str, allowed: tuple[Any, ...]) -> None:
    """Raises ``ValueError`` naming the field, its value and the allowed values when it is not allowed."""
    value = getattr(obj, name)
    if value not in allowed:
        raise ValueError(f"{type(obj).__name__}.{name}={value!r} is not one of {allowed}")


def check_range(obj: Any, name: str, low: float | None = None, high: float | None = None) -> None:
    """Raises ``ValueError`` when a numeric field is NaN or outside ``[low, high]`` (NaN passed every
    comparison: a NaN ``min_lr_ratio`` trained to NaN weights without a word)."""
    value = getattr(obj, name)
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{type(obj).__name__}.{name} is NaN")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{type(obj).__name__}.{name}={value!r} must lie in [{low}, {high}]")


def parse_env_kwargs(text: str) -> dict[str, Any]:
    """Parses the JSON object of environment keyword arguments given on the command line.

    Example:
        >>> parse_env_kwargs('{"split": "test"}')
        {'split': 'test'}
    """
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        hint = "e.g. '{\"split\": \"train\"}'"
        raise ValueError(f"env_kwargs={text!r} is not JSON ({error}); {hint}") from None
    if not isinstance(value, dict):
        raise ValueError(f"env_kwargs={text!r} must be a JSON object, e.g. '{{\"split\": \"train\"}}'")
    return value


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """Optimiser, schedule, precision, run directory and bookkeeping shared by the training stages."""

    run_dir: str = "runs/default"
    """Directory for metrics.jsonl, TensorBoard events, checkpoints and the final model."""
    policy: str = "tiny"
    """Bundled preset ("tiny", "small"; overrides as "tiny:max_seq_len=1024"), a model/checkpoint directory,
    or "hf:PATH" (Hugging Face model)."""
    seed: int = 0
    """Seed of python, numpy and torch RNGs and of every sampling call."""
    steps: int = 4
    """Number of optimisation steps (GRPO: number of rollout batches)."""
    lr: float = 1e-5
    """Peak learning rate of AdamW."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay (not applied to norms, biases and embeddings)."""
    adam_beta1: float = 0.9
    """AdamW beta1."""
    adam_beta2: float = 0.99
    """AdamW beta2."""
    warmup_steps: int = 0
    """Linear warmup steps before the cosine decay."""
    min_lr_ratio: float = 0.1
    """Cosine decay floor as a fraction of ``lr``."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm; 0 disables clipping."""
    precision: Precision = "auto"
    """"auto" = bf16 autocast on a GPU that supports it, fp32 on a CPU; "fp32"; "bf16" (autocast)."""
    fp8: bool = False
    """Convert the policy's linear layers with policies.fp8.convert_to_fp8 before training."""
    device: Device = "auto"
    """Where to train: "auto" picks cuda when available."""
    save_every: int = 0
    """Write a checkpoint every N steps (0 = only at the end)."""
    keep_checkpoints: int = 2
    """How many step checkpoints to keep (older ones are deleted)."""
    resume: bool = False
    """Continue from the latest checkpoint in run_dir (model, optimizer, scheduler, RNG, data position)."""
    stop_after: int = 0
    """Checkpoint and stop once this many steps are done, keeping the schedule of `steps` (0 = off)."""
    tensorboard: bool = True
    """Also write TensorBoard events when tensorboard is installed (metrics.jsonl is always written)."""
    progress: bool = True
    """Show a tqdm progress bar."""

    def __post_init__(self) -> None:
        check_choice(self, "precision", ("auto", "fp32", "bf16"))
        check_choice(self, "device", ("auto", "cpu", "cuda"))
        check_range(self, "steps", 0)
        check_range(self, "lr", 0.0)
        check_range(self, "weight_decay", 0.0)
        check_range(self, "adam_beta1", 0.0, 1.0)
        check_range(self, "adam_beta2", 0.0, 1.0)
        check_range(self, "warmup_steps", 0)
        check_range(self, "min_lr_ratio", 0.0, 1.0)
        check_range(self, "max_grad_norm", 0.0)
        check_range(self, "save_every", 0)
        check_range(self, "stop_after", 0)
        check_range(self, "keep_checkpoints", 1)
        if not self.policy:
            raise ValueError(f"{type(self).__name__}.policy is empty; use 'tiny', a directory or 'hf:PATH'")


@dataclass(frozen=True, kw_only=True)
class GRPOConfig(OptimConfig):
    """GRPO with the DAPO and Dr. GRPO variants (``rlenv train``)."""

    run_dir: str = "runs/grpo"
    """Directory for metrics.jsonl, TensorBoard events, checkpoints and the final model."""
    policy: str = "tiny:max_seq_len=1024"
    """Bundled preset ("tiny", "small", with overrides as "tiny:max_seq_len=1024"), a model/checkpoint
    directory, or "hf:PATH" (Hugging Face model). Countdown prompts need max_seq_len > 512."""
    env_id: str = "rlenv/Countdown-v0"
    """Gymnasium id of the environment giving prompts and rewards."""
    env_kwargs: str = "{}"
    """JSON object of keyword arguments for gymnasium.make (e.g. '{"template": "r1zero"}')."""
    prompt_filter: str = ""
    """"module:function" deciding from an item's reset info whether GRPO trains on it; prompt i is then the
    i-th accepted item of the stream ("" = every item; evaluation never filters). E.g.
    "rlenv.train.countdown_eval:search_fits_trace"."""
    prompts_per_step: int = 4
    """Prompts (groups) per step across all ranks; the batch holds prompts_per_step * num_generations rows."""
    num_generations: int = 4
    """G: completions sampled per prompt (the group)."""
    max_new_tokens: int = 32
    """Maximum completion length in tokens (L_max of DAPO's overlong shaping, Dr. GRPO's constant)."""
    temperature: float = 1.0
    """Sampling temperature of rollouts; the training log-probs use the same temperature (as TRL)."""
    top_p: float = 1.0
    """Nucleus sampling threshold of rollouts (1.0 = off)."""
    top_k: int = 0
    """Top-k sampling of rollouts (0 = off)."""
    stop_strings: tuple[str, ...] = ("</answer>",)
    """Strings that end a completion besides EOS (R1's format ends with </answer>)."""
    micro_batch_size: int = 16
    """Completions per forward/backward; a batch is accumulated over ceil(rows / micro_batch_size) passes."""
    groups_per_generate: int = 0
    """Groups per generate call, each call seeded from (seed, step, prompt index); 0 = all local groups."""
    num_iterations: int = 1
    """mu: optimiser updates per rollout batch (> 1 reuses rollouts through the clipped ratio)."""
    old_logprobs: Literal["rollout", "recompute"] = "rollout"
    """Old log-probs for num_iterations > 1: the sampler's own, or a fresh no-grad forward before updating."""
    loss_type: LossType = "dapo"
    """Loss aggregation as TRL defines it: grpo (sequence mean), bnpo (micro-batch token mean),
    dr_grpo (constant B * max_new_tokens), dapo (token mean over the whole batch)."""
    scale_rewards: ScaleRewards = "group"
    """Advantage scaling: group std (GRPO), batch std, or none (Dr. GRPO)."""
    advantage_eps: float = 1e-4
    """eps in (r - mean) / (std + eps)."""
    epsilon_low: float = 0.2
    """Lower clip range: ratios below 1 - epsilon_low are clipped."""
    epsilon_high: float = 0.28
    """Upper clip range (DAPO clip-higher): ratios above 1 + epsilon_high are clipped."""
    beta: float = 0.0
    """KL coefficient to the frozen initial policy (k3 estimator); 0 keeps no reference model."""
    dynamic_sampling: bool = False
    """DAPO dynamic sampling: drop groups whose rewards all agree and refill the batch."""
    max_sampling_rounds: int = 3
    """Cap on generation rounds per step when dynamic sampling refills the batch."""
    mask_truncated: bool = False
    """Overlong filtering: completions cut at max_new_tokens get no loss."""
    overlong_buffer: int = 0
    """DAPO soft overlong punishment: linear penalty over the last N tokens up to max_new_tokens (0 = off)."""
    overlong_penalty: float = 1.0
    """Largest soft overlong penalty (reached at max_new_tokens)."""
    routing_replay: bool = True
    """Replay the rollout's MoE expert choices in the training forward (bundled MoE policy only)."""
    aux_loss_coef: float = 0.0
    """Weight of the MoE sequence-wise balance loss added to the policy loss."""
    skip_zero_advantage: bool = True
    """Leave rows that carry no gradient (advantage or loss weight 0: groups whose rewards all agree) out of
    the update's forward and backward. Exact, and only done, with loss_type "dapo", beta 0 and aux_loss_coef
    0 (their loss terms are then exactly 0 and the token normaliser counts every row); the logged policy
    statistics (entropy, clipping, ratio) and the MoE expert loads then cover the trained rows."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "loss_type", ("grpo", "bnpo", "dr_grpo", "dapo"))
        check_choice(self, "scale_rewards", ("group", "batch", "none"))
        check_choice(self, "old_logprobs", ("rollout", "recompute"))
        for name in ("prompts_per_step", "num_generations", "max_new_tokens", "micro_batch_size"):
            check_range(self, name, 1)
        for name in ("num_iterations", "max_sampling_rounds"):
            check_range(self, name, 1)
        check_range(self, "groups_per_generate", 0)
        check_range(self, "temperature", 1e-6)
        check_range(self, "top_p", 1e-6, 1.0)
        check_range(self, "top_k", 0)
        check_range(self, "advantage_eps", 0.0)
        check_range(self, "epsilon_low", 0.0, 1.0)
        check_range(self, "epsilon_high", 0.0)
        check_range(self, "beta", 0.0)
        check_range(self, "overlong_buffer", 0, self.max_new_tokens)
        check_range(self, "overlong_penalty", 0.0)
        check_range(self, "aux_loss_coef", 0.0)
        parse_env_kwargs(self.env_kwargs)
        module, _, name = self.prompt_filter.partition(":")
        if self.prompt_filter and not (module and name):
            raise ValueError(f"GRPOConfig.prompt_filter={self.prompt_filter!r} must be 'module:function' "
                             "or '' (every item)")


@dataclass(frozen=True, kw_only=True)
class PretrainConfig(OptimConfig):
    """Next-token pretraining on generated generic text (``rlenv pretrain``)."""

    run_dir: str = "runs/pretrain"
    """Directory for metrics.jsonl, TensorBoard events, checkpoints and the final model."""
    corpus: str = "arithmetic"
    """Corpus name for rlenv.train.corpus.make_corpus, or a path to a .txt (one document per line) / .jsonl
    (a "text" column) file."""
    corpus_size: int = 2000
    """Number of generated documents."""
    seq_len: int = 128
    """Tokens per training block (documents are packed, separated by EOS)."""
    batch_size: int = 16
    """Blocks per micro-batch (per rank); an optimiser step takes batch_size * grad_accum_steps per rank."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated per optimiser step."""
    steps: int = 30
    """Number of optimisation steps."""
    lr: float = 1e-3
    """Peak learning rate of AdamW."""
    warmup_steps: int = 5
    """Linear warmup steps before the cosine decay."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay (not applied to norms, biases and embeddings)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("corpus_size", "seq_len", "batch_size", "grad_accum_steps"):
            check_range(self, name, 1)


@dataclass(frozen=True, kw_only=True)
class SFTConfig(OptimConfig):
    """Supervised fine-tuning on (prompt, completion) rows: the R1 cold start (``rlenv sft``)."""

    run_dir: str = "runs/sft"
    """Directory for metrics.jsonl, TensorBoard events, checkpoints and the final model."""
    policy: str = "tiny:max_seq_len=1024"
    """Bundled preset (with overrides), a model/checkpoint directory, or "hf:PATH" (Hugging Face model)."""
    data: str = "countdown"
    """"countdown" = rlenv.train.corpus.countdown_sft_rows, or a JSONL path with prompt/completion keys."""
    num_rows: int = 256
    """Rows generated when data is a generator name (ignored for a JSONL file)."""
    max_len: int = 1024
    """Prompt + completion tokens kept per row (longer rows are cut from the left of the prompt)."""
    batch_size: int = 8
    """Rows per micro-batch (per rank); an optimiser step takes batch_size * grad_accum_steps per rank."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated per optimiser step."""
    steps: int = 20
    """Number of optimisation steps."""
    lr: float = 3e-4
    """Peak learning rate of AdamW."""
    warmup_steps: int = 2
    """Linear warmup steps before the cosine decay."""
    prompt_loss: bool = False
    """Also train on prompt tokens (default: completion tokens only)."""
    group_by_length: bool = False
    """Draw each batch from rows of similar length: ~1.5x the steps/s on countdown traces (less padding), but
    measured on the r1 recipe it needed ~1.5x the steps for the same loss, so off by default."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_rows", "max_len", "batch_size", "grad_accum_steps"):
            check_range(self, name, 1)


@dataclass(frozen=True, kw_only=True)
class DistillConfig(SFTConfig):
    """Rejection-sampling distillation: sample from a teacher, keep what the rewards accept, fine-tune a
    student on it (``rlenv distill``)."""

    run_dir: str = "runs/distill"
    """Directory for the kept samples (distill.jsonl), metrics, checkpoints and the final model."""
    policy: str = "tiny:max_seq_len=1024"
    """Student policy: bundled preset (with overrides), model/checkpoint directory or "hf:PATH"."""
    teacher: str = "tiny:max_seq_len=1024"
    """Teacher policy: bundled preset (with overrides), model/checkpoint directory or "hf:PATH"."""
    data: str = ""
    """Unused by distill (the data are the teacher's accepted samples)."""
    env_id: str = "rlenv/Countdown-v0"
    """Gymnasium id of the environment giving prompts and judging the teacher's completions."""
    env_kwargs: str = "{}"
    """JSON object of keyword arguments for gymnasium.make."""
    num_prompts: int = 16
    """Prompts sampled from the environment's train split."""
    samples_per_prompt: int = 4
    """Teacher completions per prompt."""
    max_new_tokens: int = 48
    """Maximum teacher completion length in tokens."""
    stop_strings: tuple[str, ...] = ("</answer>",)
    """Strings that end a completion besides EOS."""
    temperature: float = 0.8
    """Teacher sampling temperature."""
    accept_key: str = "accuracy"
    """Reward component that decides acceptance (falls back to the total reward when absent)."""
    accept_threshold: float = 1.0
    """A completion is kept when its accept_key reward is >= this."""
    max_per_prompt: int = 1
    """Accepted completions kept per prompt (deduplicated)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_prompts", "samples_per_prompt", "max_new_tokens", "max_per_prompt"):
            check_range(self, name, 1)
        check_range(self, "temperature", 1e-6)
        parse_env_kwargs(self.env_kwargs)


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """pass@1 / pass@k on held-out items of an environment's test split (``rlenv eval``)."""

    policy: str = "tiny:max_seq_len=1024"
    """Bundled preset (with overrides), model/checkpoint directory or "hf:PATH"."""
    env_id: str = "rlenv/Countdown-v0"
    """Gymnasium id of the environment."""
    env_kwargs: str = "{}"
    """JSON object of keyword arguments for gymnasium.make (split defaults to "test")."""
    split: Literal["train", "test"] = "test"
    """Environment split; "test" uses a seed stream that shares nothing with training."""
    num_items: int = 16
    """Held-out items evaluated (indices start_index ... start_index + num_items - 1)."""
    start_index: int = 0
    """First item index."""
    num_samples: int = 4
    """n: completions per item for the unbiased pass@k estimator (must be >= max(ks))."""
    ks: tuple[int, ...] = (1, 4)
    """The k of each reported pass@k."""
    temperature: float = 0.6
    """Sampling temperature (pass@1 is the mean over num_samples samples)."""
    top_p: float = 0.95
    """Nucleus sampling threshold."""
    max_new_tokens: int = 48
    """Maximum completion length in tokens."""
    stop_strings: tuple[str, ...] = ("</answer>",)
    """Strings that end a completion besides EOS."""
    batch_size: int = 64
    """Completions generated per generate call."""
    success_key: str = "accuracy"
    """Reward component that decides success (falls back to the total reward when absent)."""
    success_threshold: float = 1.0
    """A completion is correct when its success_key reward is >= this."""
    seed: int = 0
    """Sampling seed."""
    device: Device = "auto"
    """Where to run."""
    output: str = ""
    """Write the results (and every completion) as JSON here; empty = do not write."""

    def __post_init__(self) -> None:
        check_choice(self, "split", ("train", "test"))
        check_choice(self, "device", ("auto", "cpu", "cuda"))
        for name in ("num_items", "num_samples", "max_new_tokens", "batch_size"):
            check_range(self, name, 1)
        check_range(self, "start_index", 0)
        check_range(self, "temperature", 0.0)
        check_range(self, "top_p", 1e-6, 1.0)
        if not self.ks or min(self.ks) < 1 or max(self.ks) > self.num_samples:
            raise ValueError(f"EvalConfig.ks={self.ks!r} must be in [1, num_samples={self.num_samples}]")
        parse_env_kwargs(self.env_kwargs)


@dataclass(frozen=True, kw_only=True)
class PlotConfig:
    """PNG learning curves from a run directory's metrics.jsonl (``rlenv plot RUN_DIR``)."""

    run_dir: Annotated[str, tyro.conf.Positional] = "runs/grpo"
    """Run directory holding metrics.jsonl."""
    output: str = ""
    """Output directory for the PNGs (default: RUN_DIR/plots)."""
    smooth: int = 1
    """Moving-average window over steps (1 = raw)."""
    keys: tuple[str, ...] = ()
    """Metric keys or namespaces (e.g. "reward", "loss/policy") to plot; empty = all."""

    def __post_init__(self) -> None:
        check_range(self, "smooth", 1)


@dataclass(frozen=True, kw_only=True)
class StageResult:
    """What a stage returns: where it wrote, its last checkpoint (a valid ``policy`` of the next stage) and
    its final metrics."""

    run_dir: str
    """The stage's run directory."""
    checkpoint: str | None
    """Directory of the final checkpoint (None when nothing was trained)."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    """The last logged value of every metric."""
    steps: int = 0
    """Optimisation steps completed."""


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    """pass@k of one evaluation."""

    pass_at_k: Mapping[int, float]
    """k -> mean unbiased pass@k over items."""
    num_items: int
    """Items evaluated."""
    num_samples: int
    """Completions per item."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Other aggregate figures (reward means per component, format rate, completion length)."""
