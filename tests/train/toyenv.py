"""A toy single-turn text environment for trainer tests (importable as ``toyenv:Toy-v0``).

Reward: the fraction of the letter "a" among the completion's characters (component ``accuracy`` is 1 when
the completion holds at least 3 "a"s, ``format`` is 1 when it is non-empty). Cheap, deterministic, varied
enough that groups from a random model have non-zero reward variance.
"""

import gymnasium as gym


class ToyEnv(gym.Env):
    """Prompt i is "count a: i"; one step judges a completion."""

    def __init__(self, split="train", fail_every=0):
        self.split = split
        self.fail_every = fail_every
        self.calls = 0
        self.observation_space = gym.spaces.Text(256)
        self.action_space = gym.spaces.Text(4096)
        self.index = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.index = int((options or {}).get("index", 0))
        offset = 0 if self.split == "train" else 10_000
        return f"count a: {self.index + offset} ", {"index": self.index}

    def step(self, action):
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError("reward worker died")
        text = str(action)
        frac = text.count("a") / max(1, len(text))
        rewards = {"accuracy": float(text.count("a") >= 3), "format": float(bool(text))}
        return "", frac, True, False, {"rewards": rewards}


gym.register("toyenv/Toy-v0", entry_point=ToyEnv)
