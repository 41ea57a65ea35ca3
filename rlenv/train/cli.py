"""The ``rlenv`` command line.

Each sub-command is a config dataclass (whose field docstrings tyro turns into ``--help``) and a function
taking it. The table below maps a command to where both live; a command's module is imported only when it
runs, so ``rlenv sample`` never pays for torch.

Usage::

    rlenv run                       # the main job: the R1 recipe end to end on the CPU
    rlenv sample rlenv/Countdown-v0 -n 5
    rlenv score rlenv/Countdown-v0 completions.jsonl
    rlenv train --help
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# command -> (module, config class, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "run": ("rlenv.train.recipes", "RecipeConfig", "run_recipe", "run an experiment end to end (r1, r1zero)"),
    "pretrain": ("rlenv.train.pretrain", "PretrainConfig", "pretrain", "generic next-token pretraining"),
    "sft": ("rlenv.train.sft", "SFTConfig", "sft", "supervised fine-tuning on (prompt, completion) JSONL"),
    "distill": ("rlenv.train.distill", "DistillConfig", "distill", "rejection-sampling distillation"),
    "train": ("rlenv.train.grpo", "GRPOConfig", "train", "GRPO / DAPO / Dr. GRPO training"),
    "eval": ("rlenv.train.evaluate", "EvalConfig", "evaluate", "pass@1 / pass@k on held-out items"),
    "plot": ("rlenv.train.plot", "PlotConfig", "plot", "learning curves of a run directory as PNG"),
    "sample": ("rlenv.tools", "SampleConfig", "sample", "print items from an environment"),
    "score": ("rlenv.tools", "ScoreConfig", "score", "score completions.jsonl with an environment's rewards"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: rlenv COMMAND [--help] [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {spec[3]}" for name, spec in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rlenv`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"rlenv: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    import tyro

    module_name, config_name, function_name, _ = COMMANDS[name]
    module = importlib.import_module(module_name)
    config = tyro.cli(getattr(module, config_name), args=rest, prog=f"rlenv {name}")
    result = getattr(module, function_name)(config)
    _leave_process_group()
    return result if isinstance(result, int) else 0


def _leave_process_group() -> None:
    """Tears down the group a stage formed under torchrun, so no gloo thread outlives the command.

    A stage leaves its group up (a script may run several); left up at interpreter exit, a gloo worker
    thread can abort a rank whose work is done (see ``rlenv.train.distributed._bind_group_defaults_to_none``).
    """
    if "torch.distributed" in sys.modules:  # ``rlenv sample`` and ``rlenv score`` never import torch
        from rlenv.train.distributed import destroy

        destroy()


if __name__ == "__main__":
    raise SystemExit(main())
