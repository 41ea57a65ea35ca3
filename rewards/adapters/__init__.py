"""Adapters exposing rlenv rewards under other trainers' reward-function signatures.

* :mod:`rewards.adapters.verl` — ``compute_score(data_source, solution_str, ground_truth, extra_info=None)``
  for verl's ``custom_reward_function``.
* :mod:`rewards.adapters.openrlhf` — ``reward_func(queries, prompts, labels)`` for OpenRLHF's
  ``--remote_rm_url /path/to/file.py``.

TRL needs no adapter: every reward in :mod:`rewards` already has TRL's ``fn(completions, **columns)``
contract.

Left out on purpose: no trainer is imported (signatures are matched, not inherited); submodules are not
imported here so ``import rewards.adapters`` stays free.
"""

__all__: list[str] = []
