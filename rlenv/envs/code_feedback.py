"""``rlenv/CodeFeedback-v0``: multi-turn code writing where failing tests come back as the next observation.

The model writes a function; if tests fail (and attempts remain) the next observation is the conversation so
far plus a feedback turn listing the failing tests' messages (from ``rewards.code_accuracy``'s explanation),
and the model tries again, up to ``max_attempts`` times. The reward is paid on the final attempt
(``reward_mode="final"``) or spread as per-attempt improvements (``"shaped"``: ``r_t = s_t - s_{t-1}``, a
potential-based shaping whose episode sum equals the final score, so it cannot change the optimal policy).

:class:`CodeFeedbackTool` is the same loop shaped for TRL's ``GRPOTrainer(environment_factory=...)``
(trl >= 1.16): ``reset(**row)`` receives the dataset row, the public method ``run_tests(code)`` is exposed as
a tool, and ``get_reward()`` returns the final attempt's score.

References: Ng, Harada & Russell (1999), policy invariance under reward shaping; TRL ``GRPOTrainer``
``environment_factory`` (reset / tools / get_reward contract).

Hidden tests: only the first ``shown_share`` of a row's tests (at least one, and one fewer than all when
there are two or more) are run for the feedback; the score, and so the reward and the episode's end, counts
every test. Feedback that listed every test would let a lookup table of the shown cases earn full reward.
A HumanEval-style ``check`` function is one test and cannot be split: its failures are shown as they come.

Left out on purpose: no execution here (the reward's sandbox runs the code); the feedback is truncated to
``max_feedback_chars``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

from rlenv import templates
from rlenv.envs._base import observation_space_for, score
from rlenv.envs.code import CODE_COLUMNS, CodeEnv

__all__ = ["CodeFeedbackEnv", "CodeFeedbackTool", "feedback_text", "shown_tests"]


def _check_share(share: float) -> None:
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 < share <= 1.0:
        raise ValueError(f"shown_share={share!r} must be a number in (0, 1]")


def feedback_text(detail: str, *, max_chars: int = 2000) -> str:
    """The failing tests' messages as shown to the model (bounded).

    Example:
        >>> feedback_text("assert solve(1) == 2  # got 3", max_chars=12)
        'assert solv…'
    """
    detail = (detail or "").strip() or "(no details available)"
    return detail if len(detail) <= max_chars else detail[: max_chars - 1] + "…"


def _tester_result(tester: Callable[..., Any], completion: str, prompt: Any,
                   columns: Mapping[str, Any]) -> tuple[float, str]:
    """(pass score in [0, 1], failure detail) from the tester's explanation."""
    result = tester.explain(completion, prompts=prompt, **columns)
    return (0.0 if result.value is None else float(result.value)), f"{result.reason}: {result.detail}"


def shown_tests(columns: Mapping[str, Any], share: float) -> tuple[dict[str, Any], int, int]:
    """The test columns cut to the tests the feedback may run, and (shown, total) test counts.

    Example:
        >>> cols, shown, total = shown_tests({"tests": ["a", "b", "c", "d"], "entry_point": "f"}, 0.5)
        >>> cols["tests"], shown, total
        (['a', 'b'], 2, 4)
    """
    listed = [keys for keys in (("tests",), ("inputs", "outputs"))
              if all(isinstance(columns.get(c), (list, tuple)) for c in keys)]
    if not listed:  # a HumanEval check function: one test, shown as it is
        return dict(columns), 1, 1
    keys = listed[0]
    total = len(columns[keys[0]])
    shown = total if total < 2 else min(total - 1, max(1, math.ceil(share * total)))
    return {**columns, **{k: list(columns[k][:shown]) for k in keys}}, shown, total


def _feedback(tester: Callable[..., Any], completion: str, prompt: Any, columns: Mapping[str, Any],
              share: float, score: float) -> tuple[str, int, int]:
    """What the model is told after a failed attempt, and (passed, total) over all tests."""
    cut, shown, total = shown_tests(columns, share)
    shown_score, detail = _tester_result(tester, completion, prompt, cut)
    if shown_score >= 1.0 and shown < total:
        detail = f"the {shown} shown test(s) pass; some of the other {total - shown} (hidden) tests fail"
    return detail, round(score * total), total


class CodeFeedbackEnv(CodeEnv):
    """Code tasks with up to ``max_attempts`` tries and test feedback between them.

    ## Description
    Like ``rlenv/Code-v0``, but a failed attempt is answered with the failing tests and the model may try
    again until all tests pass or ``max_attempts`` attempts are used.

    ## Observation
    At reset, the prompt. After a failed, non-final attempt: the whole conversation (prompt, the attempt, a
    feedback turn from ``code_feedback-v0.json``) as text, or as a tuple of chat messages for ``"chat"``.
    ``""`` / ``()`` once the episode ends. ``info`` as for Code-v0, plus ``attempt``.

    ## Action
    The completion text: any unicode string up to ``max_completion_chars`` characters (empty included).

    ## Reward
    ``"final"`` (default): 0 until the last attempt, then that attempt's score (by default
    ``0.9 * code_accuracy + 0.1 * think_format``). ``"shaped"``: each attempt earns its score minus the
    previous attempt's. ``info["rewards"]`` holds each component of the attempt.

    ## Episode End
    Terminates when every test passes or after ``max_attempts`` attempts. Step before reset (or after the
    end) raises ``gymnasium.error.ResetNeeded``.

    ## Arguments
    Those of Code-v0, plus ``max_attempts`` (>= 1, default 3), ``reward_mode`` ("final" or "shaped"),
    ``tester`` (the reward whose explanation gives the feedback; default ``rewards.code_accuracy``),
    ``shown_share`` (share of a row's tests run for the feedback, in (0, 1], default 0.5; the others stay
    hidden), ``max_feedback_chars``.

    ## Version History
    * v0: initial version (templates in ``rlenv/templates/code_feedback-v0.json``).
    """

    template_file = "code_feedback-v0"

    def __init__(self, *, max_attempts: int = 3, reward_mode: str = "final",
                 tester: Callable[..., Any] | None = None, shown_share: float = 0.5,
                 max_feedback_chars: int = 2000, **kwargs: Any) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts!r} must be an int >= 1")
        _check_share(shown_share)
        self.shown_share = float(shown_share)
        if reward_mode not in ("final", "shaped"):
            raise ValueError(f"reward_mode={reward_mode!r} must be 'final' or 'shaped'")
        if tester is not None and not callable(getattr(tester, "explain", None)):
            raise TypeError("tester must be a rewards.Reward (it needs .explain for the feedback)")
        self.max_attempts, self.reward_mode = max_attempts, reward_mode
        self.max_feedback_chars = int(max_feedback_chars)
        self._tester = tester
        super().__init__(**kwargs)
        max_chars = kwargs.get("max_prompt_chars", 1 << 16)
        completion_chars = self.action_space.max_length
        total = max_chars + max_attempts * (completion_chars + self.max_feedback_chars + 1024)
        self.observation_space = observation_space_for(self.template, total)
        self._attempt, self._previous = 0, 0.0

    @property
    def tester(self) -> Callable[..., Any]:
        """The reward whose explanation is shown as feedback."""
        if self._tester is None:
            import rewards

            self._tester = rewards.code_accuracy
        return self._tester

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = super().reset(seed=seed, options=options)
        self._attempt, self._previous = 0, 0.0
        info["attempt"] = 0
        return obs, info

    def _conversation(self, completion: str, feedback: str, passed: int, total: int) -> Any:
        fields = {"attempt": str(self._attempt), "max_attempts": str(self.max_attempts), "failures": feedback,
                  "passed": str(passed), "total": str(total)}
        turn = templates.render_feedback(self.template_file, self.template, fields)
        if isinstance(self._prompt, str):
            return self._prompt + completion + turn
        return (*self._prompt, {"role": "assistant", "content": completion},
                {"role": "user", "content": turn})

    def step(self, action: str) -> tuple[Any, float, bool, bool, dict]:
        completion = self.check_action(action)
        columns = self.columns(self._row)
        total, components = score(self.reward_fn, completion, self._prompt, columns)
        self._attempt += 1
        passed = components.get("accuracy")
        if passed is None:
            passed, _ = _tester_result(self.tester, completion, self._prompt, columns)
        done = passed >= 1.0 or self._attempt >= self.max_attempts
        if self.reward_mode == "shaped":
            reward, self._previous = total - self._previous, total
        else:
            reward = total if done else 0.0
        info = {"rewards": components, "attempt": self._attempt, "passed": passed}
        if done:
            self._done, self._last_text = True, completion
            return ("" if isinstance(self._prompt, str) else ()), reward, True, False, info
        share = self.shown_share
        detail, n_passed, n_tests = _feedback(self.tester, completion, self._prompt, columns, share, passed)
        feedback = feedback_text(detail, max_chars=self.max_feedback_chars)
        self._prompt = self._conversation(completion, feedback, n_passed, n_tests)
        self._last_text = self._prompt if isinstance(self._prompt, str) else self._prompt[-1]["content"]
        return copy.deepcopy(self._prompt), reward, False, False, info


class CodeFeedbackTool:
    """The feedback loop as a TRL ``environment_factory`` environment (``GRPOTrainer``, trl >= 1.16).

    Use ``GRPOTrainer(..., environment_factory=CodeFeedbackTool, train_dataset=ds)`` with ``ds`` from
    ``rlenv.to_hf_dataset("rlenv/Code-v0", n, template="chat")``: TRL calls ``reset(**row)`` with each row
    (its test columns are kept), exposes :meth:`run_tests` as a tool the model may call up to
    ``max_attempts`` times, and adds :meth:`get_reward` (the last attempt's pass score) as a reward.

    Example:
        >>> env = CodeFeedbackTool(max_attempts=2)
        >>> env.reset(prompt="...", tests=["assert solve(1) == 2"], entry_point="solve") is None
        True
    """

    def __init__(self, max_attempts: int = 3, tester: Callable[..., Any] | None = None,
                 max_feedback_chars: int = 2000, shown_share: float = 0.5) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts!r} must be >= 1")
        _check_share(shown_share)
        self.max_attempts, self.max_feedback_chars, self._tester = max_attempts, max_feedback_chars, tester
        self.shown_share = float(shown_share)
        self._columns: dict[str, Any] = {}
        self._attempts, self._score = 0, 0.0

    def reset(self, **row: Any) -> str | None:
        """Starts an episode on a dataset row (TRL passes every column); returns None (prompt unchanged)."""
        self._columns = {c: row[c] for c in CODE_COLUMNS if row.get(c) is not None}
        if not self._columns:
            raise ValueError(f"the row has none of the test columns {CODE_COLUMNS}; got {sorted(row)}")
        self._attempts, self._score = 0, 0.0
        return None

    def run_tests(self, code: str) -> str:
        """Runs the unit tests on a complete Python solution (failures are shown for some of them only).

        Args:
            code: The full Python source code of the requested function.

        Returns:
            How many attempts are left and, if some tests fail, the failing tests' messages.
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be a string, got {type(code).__name__}")
        if self._attempts >= self.max_attempts:
            return "No attempts left."
        if self._tester is None:
            import rewards

            self._tester = rewards.code_accuracy
        self._attempts += 1
        fenced = code if "```" in code else f"```python\n{code}\n```"
        completion = f"<answer>{fenced}</answer>"
        self._score, _ = _tester_result(self._tester, completion, None, self._columns)
        left = self.max_attempts - self._attempts
        if self._score >= 1.0:
            return "All tests passed."
        detail, passed, total = _feedback(self._tester, completion, None, self._columns, self.shown_share,
                                          self._score)
        return f"{passed} of {total} tests passed; {left} attempt(s) left. Failures:\n" + feedback_text(
            detail, max_chars=self.max_feedback_chars)

    def get_reward(self) -> float:
        """The pass score of the last attempt (0.0 when the model never called ``run_tests``)."""
        return self._score
