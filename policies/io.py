"""Saving, loading and sizing the bundled policy.

Key idea: a checkpoint directory holds ``config.json`` (the ``ModelConfig`` fields) and ``model.safetensors``
(the state dict, including the gates' balancing biases); loading rebuilds the model from the config alone, so
no pickle is ever executed. ``count_parameters`` separates total parameters from those active per token (only
``n_activated_experts`` of the routed experts run; MTP modules are excluded as they do not run at inference).

Left out: sharded checkpoints, optimizer state (the trainer's business).
"""

from __future__ import annotations

import json
import pathlib

import torch
from safetensors.torch import load_file, save_file

from policies.config import ModelConfig
from policies.model import Transformer

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"


def save_model(model: Transformer, directory: str | pathlib.Path) -> pathlib.Path:
    """Write ``config.json`` + ``model.safetensors`` into ``directory`` (created if needed); returns it.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = save_model(Transformer(ModelConfig.tiny()), d)
        ...     sorted(p.name for p in path.iterdir())
        ['config.json', 'model.safetensors']
    """
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_NAME).write_text(model.config.to_json())
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path / WEIGHTS_NAME), metadata={"format": "pt", "library": "rlenv.policies"})
    return path


def load_model(
    directory: str | pathlib.Path, *, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> Transformer:
    """Rebuild a ``Transformer`` from ``save_model`` output.

    Raises:
        ValueError: The directory lacks ``config.json`` or ``model.safetensors``.

    Example:
        >>> import tempfile
        >>> model = Transformer(ModelConfig.tiny())
        >>> with tempfile.TemporaryDirectory() as d:
        ...     loaded = load_model(save_model(model, d))
        >>> tokens = torch.tensor([[1, 2, 3]])
        >>> torch.equal(loaded(tokens), model(tokens))
        True
    """
    path = pathlib.Path(directory)
    if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
        raise ValueError(f"{path} is not a policy checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    config = ModelConfig.from_dict(json.loads((path / CONFIG_NAME).read_text()))
    model = Transformer(config)
    model.load_state_dict(load_file(str(path / WEIGHTS_NAME)), strict=True)
    return model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)


def count_parameters(model: Transformer) -> dict[str, int]:
    """Total parameters, those active per token, and the MTP modules' share.

    Example:
        >>> counts = count_parameters(Transformer(ModelConfig.tiny()))
        >>> counts["active"] < counts["total"]
        True
    """
    cfg = model.config
    total = sum(p.numel() for p in model.parameters())
    mtp = sum(p.numel() for p in model.mtp.parameters())
    routed = sum(m.experts.w1.numel() + m.experts.w2.numel() + m.experts.w3.numel() for m in model.moe_layers)
    inactive = routed - routed * cfg.n_activated_experts // max(cfg.n_routed_experts, 1) if routed else 0
    return {"total": total, "active": total - mtp - inactive, "mtp": mtp}
