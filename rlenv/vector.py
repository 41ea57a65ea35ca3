"""Vector environments with the right defaults for LLM envs: same-step autoreset, no shared memory.

Two gymnasium defaults are wrong for these environments:

* ``AutoresetMode.NEXT_STEP`` (the default) resets a finished sub-env on the *next* ``step`` and ignores that
  step's action. A single-turn env finishes on every step, so every other batch of completions would be
  silently dropped. :func:`make_vec` uses ``SAME_STEP`` (the finished episode's observation and info arrive
  in ``info["final_obs"]`` / ``info["final_info"]``) and refuses ``NEXT_STEP`` with a ``ValueError``.
* ``AsyncVectorEnv(shared_memory=True)`` stores ``Text`` observations as fixed-width arrays indexed by a
  charset; prompts may hold any unicode character, so :func:`make_vec` passes ``shared_memory=False``.

Every rlenv id is also registered with a ``vector_entry_point``, so plain ``gym.make_vec(id, n)`` gets the
same defaults.

References: Gymnasium vector API and "Vector Autoreset Mode" (farama.org/Vector-Autoreset-Mode).

Left out on purpose: no batching of reward computation across sub-envs (each sub-env scores its own step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode

__all__ = ["code_feedback_vector", "code_vector", "countdown_vector", "make_vec", "math_vector"]


def make_vec(env_id: str, num_envs: int = 1, *, mode: str = "sync",
             autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
             wrappers: Sequence[Callable[[gym.Env], gym.Wrapper]] | None = None,
             **env_kwargs: Any) -> gym.vector.VectorEnv:
    """A ``SyncVectorEnv`` / ``AsyncVectorEnv`` of ``num_envs`` copies of ``env_id``.

    Args:
        env_id: A registered id, e.g. ``"rlenv/Countdown-v0"``.
        num_envs: Number of sub-environments (>= 1).
        mode: ``"sync"`` or ``"async"`` (one process per sub-env).
        autoreset_mode: ``SAME_STEP`` (default) or ``DISABLED``; ``NEXT_STEP`` raises ``ValueError``.
        wrappers: Wrappers applied to each sub-env (e.g. a curriculum).
        **env_kwargs: Passed to every sub-env's constructor.

    Returns:
        The vector environment.

    Raises:
        ValueError: On an unknown mode, ``NEXT_STEP`` autoreset, or ``num_envs < 1``.

    Example:
        >>> import rlenv
        >>> envs = make_vec("rlenv/Countdown-v0", 2)
        >>> obs, info = envs.reset(seed=0)
        >>> len(obs), envs.metadata["autoreset_mode"].name
        (2, 'SAME_STEP')
        >>> envs.close()
    """
    if mode not in ("sync", "async"):
        raise ValueError(f"mode={mode!r} must be 'sync' or 'async'")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs={num_envs!r} must be an int >= 1")
    autoreset = AutoresetMode(autoreset_mode)
    if autoreset is AutoresetMode.NEXT_STEP:
        raise ValueError(
            "autoreset_mode=NEXT_STEP drops the action of the step after every episode end; single-turn LLM "
            "envs end every step, so half the completions would be ignored. Use SAME_STEP (default) or "
            "DISABLED."
        )
    vector_kwargs: dict[str, Any] = {"autoreset_mode": autoreset}
    if mode == "async":
        vector_kwargs["shared_memory"] = False  # Text spaces hold arbitrary unicode
    return gym.make_vec(env_id, num_envs, vectorization_mode=mode, vector_kwargs=vector_kwargs,
                        wrappers=wrappers, **env_kwargs)


def _entry(env_id: str) -> Callable[..., gym.vector.VectorEnv]:
    def vector_env(num_envs: int = 1, **env_kwargs: Any) -> gym.vector.VectorEnv:
        return make_vec(env_id, num_envs, mode="sync", **env_kwargs)

    vector_env.__doc__ = f"The registered ``vector_entry_point`` of {env_id} (sync, SAME_STEP)."
    return vector_env


countdown_vector = _entry("rlenv/Countdown-v0")
math_vector = _entry("rlenv/Math-v0")
code_vector = _entry("rlenv/Code-v0")
code_feedback_vector = _entry("rlenv/CodeFeedback-v0")
