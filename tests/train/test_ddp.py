"""Data parallelism: 2 CPU ranks under torchrun (gloo) match one process at the same global batch."""

import subprocess
import sys

import pytest
import torch

from rlenv.train.config import GRPOConfig
from rlenv.train.grpo import train
from rlenv.train.policy import load_policy
from tests.train.conftest import TOY_ENV

ARGS = dict(
    env_id=TOY_ENV,
    steps=2,
    prompts_per_step=4,
    num_generations=2,
    max_new_tokens=8,
    micro_batch_size=2,
    groups_per_generate=1,
    lr=1e-3,
    loss_type="dapo",
    stop_strings=(),
    progress=False,
    tensorboard=False,
    device="cpu",
)


def _cli_args(config_kwargs):
    out = []
    for key, value in config_kwargs.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, tuple):
            out.append(flag)
            out += [str(v) for v in value]
        else:
            out += [flag, str(value)]
    return out


@pytest.mark.parametrize("loss_type", ["dapo", pytest.param("grpo", marks=pytest.mark.slow)])
def test_two_ranks_match_one_process(tiny_hf_dir, tmp_path, subprocess_env, loss_type):
    kwargs = {**ARGS, "loss_type": loss_type, "policy": f"hf:{tiny_hf_dir}"}
    single = train(GRPOConfig(**kwargs, run_dir=str(tmp_path / "single")))
    subprocess_env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "rlenv.train.cli",
        "train",
        *_cli_args({**kwargs, "run_dir": str(tmp_path / "ddp")}),
    ]
    done = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    a = load_policy(single.checkpoint).module.state_dict()
    b = load_policy(str(tmp_path / "ddp" / "checkpoints" / "step-00000002")).module.state_dict()
    moved = max(
        float((a[k] - load_policy(f"hf:{tiny_hf_dir}").module.state_dict()[k]).abs().max()) for k in a
    )
    assert moved > 1e-4  # the runs did train
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4)
