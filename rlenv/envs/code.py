"""``rlenv/Code-v0``: write a Python function that passes hidden tests (procedural, HumanEval or MBPP).

A single-turn gymnasium environment scored by ``rewards.code_accuracy`` (which runs the code in its bounded
sandbox) plus the format reward. Tasks come from :mod:`rlenv.tasks.code_gen` (random transform pipelines
with generated tests, difficulty 1-5) or from HumanEval / MBPP files read by :mod:`rlenv.tasks.loaders`.

References: HumanEval (Chen et al., 2021); MBPP (Austin et al., 2021); DeepSeek-R1 (arXiv:2501.12948).

Left out on purpose: model code never runs in this process; the env only forwards it to the reward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rlenv.envs._base import ReasoningEnv, RowTable, default_reward
from rlenv.tasks import code_gen, loaders

__all__ = ["CODE_COLUMNS", "CodeEnv"]

_SOURCES = ("procedural", "humaneval", "mbpp")
# the test columns rewards.code_accuracy understands, forwarded when a row has them
CODE_COLUMNS = ("tests", "test_setup_code", "test", "entry_point", "inputs", "outputs", "fn_name")


class CodeEnv(ReasoningEnv):
    """Function-writing tasks as a single-turn text environment.

    ## Description
    The prompt specifies a Python function (a numbered transform pipeline, or a HumanEval / MBPP task); the
    model answers with the function in a fenced code block inside ``<answer>`` tags.

    ## Observation
    The prompt: text for ``"r1zero"`` / ``"tinyzero"``, a tuple of ``{"role", "content"}`` messages for
    ``"chat"``. ``info`` carries ``problem`` and the test columns (procedural / MBPP: ``tests`` and
    ``entry_point``; HumanEval: ``test`` and ``entry_point``), plus ``index``, ``seed``, ``split``,
    ``difficulty``.

    ## Action
    The completion text: any unicode string up to ``max_completion_chars`` characters (empty included).

    ## Reward
    By default ``0.9 * code_accuracy + 0.1 * think_format`` (code accuracy is the reward's default mode);
    ``reward=`` accepts any rewards-contract callable (e.g. ``rewards.make_code_reward(mode="binary")``),
    ``reward_weights=`` reweights the default, ``reward_gates=`` gates one default component on the other
    (e.g. ``{"format": "accuracy"}``). ``info["rewards"]`` holds each component.

    ## Episode End
    Terminates after one step. Step before reset (or after the end) raises ``gymnasium.error.ResetNeeded``.

    ## Arguments
    ``source`` ("procedural", "humaneval", "mbpp"), ``data`` (path, ``datasets.Dataset`` or list of dicts;
    required for file sources), ``kinds`` (procedural subset of list/string/number), ``shuffle``, ``split``,
    ``difficulty`` (1-5), ``template``, ``reward``, ``reward_weights``, ``reward_gates``,
    ``max_prompt_chars``, ``max_completion_chars``, ``render_mode``.

    ## Version History
    * v0: initial version (templates in ``rlenv/templates/code-v0.json``).
    """

    family = "code"
    template_file = "code-v0"
    reward_columns = CODE_COLUMNS

    def __init__(self, *, source: str = "procedural", data: Any = None,
                 kinds: tuple[str, ...] = tuple(code_gen.KINDS), shuffle: bool = True, **kwargs: Any) -> None:
        if source not in _SOURCES:
            raise ValueError(f"source={source!r} must be one of {_SOURCES}")
        if (source == "procedural") != (data is None):
            need = "takes no" if data is not None else "needs a"
            raise ValueError(f"source={source!r} {need} data= argument (a path, dataset or list of dicts)")
        kinds = tuple(kinds)
        if not kinds or any(k not in code_gen.KINDS for k in kinds):
            raise ValueError(f"kinds={kinds!r}: each must be one of {sorted(code_gen.KINDS)}")
        self.source, self.kinds = source, kinds
        self.table = None if data is None else RowTable(loaders.LOADERS[source](data), f"code/{source}",
                                                        shuffle=shuffle)
        super().__init__(**kwargs)

    def make_default_reward(self, weights: Mapping[str, float] | None,
                            gates: Mapping[str, str] | None = None) -> Callable[..., Any]:
        import rewards

        return default_reward(rewards.code_accuracy, weights, gates)

    def make_row(self, index: int, seed: int) -> dict[str, Any]:
        if self.table is not None:
            return self.table.row(index, seed, self.split)
        return code_gen.generate_item(index, seed=seed, split=self.split, difficulty=self.difficulty,
                                      kinds=self.kinds)

    def prompt_fields(self, row: Mapping[str, Any]) -> dict[str, str]:
        return {"problem": str(row["problem"])}

    def columns(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {c: row[c] for c in CODE_COLUMNS if c in row}
