"""``rlenv/Countdown-v0``: reach a target number with + - * / using every given number once.

TinyZero's countdown task as a single-turn gymnasium environment, scored by :mod:`rewards`' countdown and
format rewards. Items come from :mod:`rlenv.tasks.countdown` (solvable by construction, shortcut targets
rare, item ``i`` regenerable alone).

References: TinyZero (github.com/Jiayi-Pan/TinyZero); DeepSeek-R1 (arXiv:2501.12948).

Left out on purpose: no partial credit for near misses (use ``rewards.make_countdown_reward`` or any
``rewards.combine`` through ``reward=``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from rlenv.envs._base import ReasoningEnv, default_reward
from rlenv.tasks.countdown import CountdownConfig, generate_item

__all__ = ["CountdownEnv"]


class CountdownEnv(ReasoningEnv):
    """Countdown number puzzles as a single-turn text environment.

    ## Description
    The prompt lists 3-6 numbers and a target; the model answers with an equation such as ``(44 - 19) * 3``
    inside ``<answer>`` tags, using each number exactly once.

    ## Observation
    The prompt: text (``UnicodeText``) for the ``"r1zero"`` and ``"tinyzero"`` templates, a tuple of
    ``{"role", "content"}`` messages for ``"chat"``. ``info`` carries the reward columns ``nums`` and
    ``target``, a witness ``solution``, and ``index``, ``seed``, ``split``, ``difficulty``.

    ## Action
    The completion text: any unicode string up to ``max_completion_chars`` characters (empty included).

    ## Reward
    By default ``0.9 * countdown_accuracy + 0.1 * think_format`` (a correct, well-formatted answer scores
    1.0); ``reward=`` accepts any callable honouring the rewards contract (e.g. ``rewards.combine(...)``),
    ``reward_weights=`` reweights the default components and ``reward_gates={"format": "accuracy"}`` counts
    the format only on a right answer (then a wrong but tidy answer scores no more than a search cut off at
    the length limit). ``info["rewards"]`` holds each component.

    ## Episode End
    Terminates after one step. Step before reset (or after the end) raises ``gymnasium.error.ResetNeeded``.

    ## Arguments
    ``split`` ("train"/"test", disjoint streams), ``difficulty`` (1-5, see
    ``CountdownConfig.for_difficulty``), ``config`` (a full ``CountdownConfig``, overrides difficulty),
    ``template`` ("r1zero", "tinyzero", "chat", "compact", "terse"), ``reward``, ``reward_weights``,
    ``reward_gates``, ``max_prompt_chars``, ``max_completion_chars``, ``render_mode`` (None or "ansi").

    ## Version History
    * v0: initial version (templates in ``rlenv/templates/countdown-v0.json``).
    """

    family = "countdown"
    template_file = "countdown-v0"
    reward_columns = ("nums", "target")

    def __init__(self, *, config: CountdownConfig | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if isinstance(config, Mapping):  # JSON env_kwargs from the command line (rlenv train / run)
            config = CountdownConfig(**config)
        if config is not None and not isinstance(config, CountdownConfig):
            raise TypeError(f"config must be a CountdownConfig, got {type(config).__name__}")
        self._fixed_config = config
        super().__init__(**kwargs)

    def set_difficulty(self, level: int) -> None:
        super().set_difficulty(level)
        base = CountdownConfig.for_difficulty(self.difficulty)
        self.config = base if self._fixed_config is None else replace(self._fixed_config)

    def make_default_reward(self, weights: Mapping[str, float] | None,
                            gates: Mapping[str, str] | None = None) -> Callable[..., Any]:
        import rewards

        return default_reward(rewards.countdown_accuracy, weights, gates)

    def make_row(self, index: int, seed: int) -> dict[str, Any]:
        return generate_item(index, seed=seed, split=self.split, config=self.config)

    def prompt_fields(self, row: Mapping[str, Any]) -> dict[str, str]:
        return {"nums": str(list(row["nums"])), "target": str(row["target"])}
