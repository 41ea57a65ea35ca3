"""``rlenv/Math-v0``: math problems with exact answers, procedural or from GSM8K / MATH / JSONL files.

A single-turn gymnasium environment scored by ``rewards.math_accuracy`` (column ``answer``) plus the format
reward. Problems come from :mod:`rlenv.tasks.math_gen` (exact answers at difficulty 1-5) or from a local data
source read by :mod:`rlenv.tasks.loaders`.

References: DeepSeek-R1 (arXiv:2501.12948); GSM8K (Cobbe et al., 2021); MATH (Hendrycks et al., 2021).

Left out on purpose: file sources are served as given (pass the test file for evaluation); ``split`` only
selects their shuffle stream, it does not carve a hold-out out of one file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rlenv.envs._base import ReasoningEnv, RowTable, default_reward
from rlenv.tasks import loaders, math_gen

__all__ = ["MathEnv"]

_SOURCES = ("procedural", "gsm8k", "math", "jsonl")


class MathEnv(ReasoningEnv):
    """Math problems as a single-turn text environment.

    ## Description
    The prompt states a problem (procedural arithmetic, fractions, linear equations or word problems, or a
    GSM8K / MATH / custom problem); the model answers inside ``<answer>`` tags.

    ## Observation
    The prompt: text for the ``"r1zero"`` / ``"tinyzero"`` templates, a tuple of ``{"role", "content"}``
    messages for ``"chat"``. ``info`` carries ``problem``, ``answer`` (the reward column), the procedural
    ``family`` or the source ``row``, and ``index``, ``seed``, ``split``, ``difficulty``.

    ## Action
    The completion text: any unicode string up to ``max_completion_chars`` characters (empty included).

    ## Reward
    By default ``0.9 * math_accuracy + 0.1 * think_format`` (1.0 for a correct, well-formatted answer);
    ``reward=`` accepts any rewards-contract callable, ``reward_weights=`` reweights the default,
    ``reward_gates=`` gates one default component on the other (e.g. ``{"format": "accuracy"}``).
    ``info["rewards"]`` holds each component.

    ## Episode End
    Terminates after one step. Step before reset (or after the end) raises ``gymnasium.error.ResetNeeded``.

    ## Arguments
    ``source`` ("procedural", "gsm8k", "math", "jsonl"), ``data`` (path, ``datasets.Dataset`` or list of
    dicts; required for file sources), ``column_map`` (jsonl: ``{"problem": ..., "answer": ...}``),
    ``families`` (procedural subset of arithmetic/fractions/linear/word), ``shuffle`` (file sources),
    ``split``, ``difficulty`` (1-5), ``template``, ``reward``, ``reward_weights``, ``reward_gates``,
    ``max_prompt_chars``, ``max_completion_chars``, ``render_mode``.

    ## Version History
    * v0: initial version (templates in ``rlenv/templates/math-v0.json``).
    """

    family = "math"
    template_file = "math-v0"
    reward_columns = ("answer",)

    def __init__(self, *, source: str = "procedural", data: Any = None,
                 column_map: Mapping[str, str] | None = None,
                 families: tuple[str, ...] = tuple(math_gen.FAMILIES), shuffle: bool = True,
                 **kwargs: Any) -> None:
        if source not in _SOURCES:
            raise ValueError(f"source={source!r} must be one of {_SOURCES}")
        if (source == "procedural") != (data is None):
            need = "takes no" if data is not None else "needs a"
            raise ValueError(f"source={source!r} {need} data= argument (a path, dataset or list of dicts)")
        families = tuple(families)
        if not families or any(f not in math_gen.FAMILIES for f in families):
            raise ValueError(f"families={families!r}: each must be one of {sorted(math_gen.FAMILIES)}")
        self.source, self.families = source, families
        self.table: RowTable | None = None
        if data is not None:
            load = loaders.LOADERS[source]
            rows = load(data, column_map) if source == "jsonl" else load(data)
            self.table = RowTable(rows, f"math/{source}", shuffle=shuffle)
        super().__init__(**kwargs)

    def make_default_reward(self, weights: Mapping[str, float] | None,
                            gates: Mapping[str, str] | None = None) -> Callable[..., Any]:
        import rewards

        return default_reward(rewards.math_accuracy, weights, gates)

    def make_row(self, index: int, seed: int) -> dict[str, Any]:
        if self.table is not None:
            return self.table.row(index, seed, self.split)
        return math_gen.generate_item(index, seed=seed, split=self.split, difficulty=self.difficulty,
                                      families=self.families)

    def prompt_fields(self, row: Mapping[str, Any]) -> dict[str, str]:
        return {"problem": str(row["problem"])}
