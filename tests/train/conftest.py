"""Fixtures of the trainer tests: a tiny Hugging Face Llama on disk and the toy environment."""

import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # `toyenv` and `tiny_hf` for in-process tests and gymnasium's "module:Id"

TOY_ENV = "toyenv:toyenv/Toy-v0"


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory):
    from tiny_hf import build_tiny_hf

    return build_tiny_hf(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture
def subprocess_env():
    """Environment for child processes that must import the toy env."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")]))
    return env


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny models here are far faster on one thread, and CI machines are shared: no oversubscription."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
