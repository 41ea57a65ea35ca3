"""Local data-parallel ranks (``run_local_ranks``): environment, failures, and SFT equal to one process."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import torch

from rlenv.train.distributed import run_local_ranks
from tests.processes import alive


def _report(directory: str) -> None:
    from rlenv.train.distributed import all_reduce_grads, init_distributed, reduce_sum

    info = init_distributed("cpu")
    total = float(reduce_sum(torch.tensor(float(info.rank + 1))))
    report = {"world": info.world_size, "threads": torch.get_num_threads(), "sum": total}
    for dtype in (torch.float32, torch.bfloat16):  # the sums ride with float32 grads, apart with bf16 ones
        weight = torch.nn.Parameter(torch.zeros(3, dtype=dtype))
        weight.grad = torch.full((3,), float(info.rank + 1), dtype=dtype)
        sums = all_reduce_grads([weight], sums=(info.rank + 0.25, float(info.rank == 1)))
        report[str(dtype)] = {"grad": weight.grad.float().tolist(), "sums": sums}
    with open(os.path.join(directory, f"rank{info.rank}.json"), "w") as f:
        json.dump(report, f)


def _fail_on_rank_one(directory: str) -> None:
    from rlenv.train.distributed import barrier, init_distributed

    if os.environ["RANK"] == "1":
        raise SystemExit(3)
    init_distributed("cpu")  # waits for rank 1, which never comes: the launcher must stop this rank
    barrier()


def _write_pid_and_wait(directory: str) -> None:
    with open(os.path.join(directory, f"rank{os.environ['RANK']}.pid"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)


def _gather_destroy_and_list_gloo_threads(directory: str) -> None:
    from rlenv.train.distributed import all_gather_objects, destroy, init_distributed

    init_distributed("cpu")
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])  # imports torch._dynamo after the group formed
    all_gather_objects(1.0)  # the collective whose tensors gloo's worker thread releases
    destroy()
    tasks = pathlib.Path("/proc/self/task")
    names = [(tasks / task / "comm").read_text().strip() for task in os.listdir(tasks)]
    pathlib.Path(directory, f"rank{os.environ['RANK']}.threads").write_text(json.dumps(names))


def _pretrain_through_the_cli(directory: str) -> None:
    import torch.distributed as dist

    from rlenv.train.cli import main

    run_dir = os.path.join(directory, "run")
    argv = ["pretrain", "--policy", "tiny", "--run-dir", run_dir, "--steps", "1", "--corpus-size", "8",
            "--seq-len", "32", "--batch-size", "2", "--no-progress"]
    assert main(argv) == 0
    pathlib.Path(directory, f"rank{os.environ['RANK']}.left").write_text(json.dumps(dist.is_initialized()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_ranks_die_with_a_killed_launcher(tmp_path):
    code = ("import sys; from rlenv.train.distributed import run_local_ranks; "
            "from tests.train.test_local_ranks import _write_pid_and_wait; "
            "run_local_ranks(_write_pid_and_wait, sys.argv[1], 2)")
    root = pathlib.Path(__file__).resolve().parents[2]
    path = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    launcher = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=root, env=env)
    pids: list[int] = []
    try:
        paths = [tmp_path / f"rank{r}.pid" for r in range(2)]
        deadline = time.monotonic() + 60
        while not all(p.exists() and p.read_text() for p in paths) and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [int(p.read_text()) for p in paths]
        launcher.kill()  # SIGKILL: no finally clause runs in the launcher
        launcher.wait()
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in pids)
    finally:
        launcher.kill()
        for pid in filter(alive, pids):
            os.kill(pid, signal.SIGKILL)


def test_ranks_form_one_group_with_their_threads(tmp_path):
    run_local_ranks(_report, str(tmp_path), 2, threads=1)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    reduced = {"grad": [1.5] * 3, "sums": [1.5, 1.0]}  # gradients averaged, the sums summed
    expected = {"world": 2, "threads": 1, "sum": 3.0, "torch.float32": reduced, "torch.bfloat16": reduced}
    assert reports == [expected] * 2


def test_all_reduce_grads_outside_a_group_returns_the_sums_as_they_are():
    from rlenv.train.distributed import all_reduce_grads

    weight = torch.nn.Parameter(torch.zeros(2))
    weight.grad = torch.ones(2)
    assert all_reduce_grads([weight], sums=(2.5, 0)) == [2.5, 0.0] and weight.grad.tolist() == [1.0, 1.0]
    assert all_reduce_grads([weight]) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names are read from /proc")
def test_destroy_frees_the_group_and_its_gloo_threads(tmp_path):
    # A group still alive at interpreter finalisation aborted ranks after their work was done: a gloo worker
    # thread releasing a collective's tensors took the GIL as the interpreter ended (std::terminate). What
    # kept it alive: torch.distributed.nn.functional's group=group.WORLD defaults, bound at import, which
    # building the optimiser triggers (through torch._dynamo) after the group formed.
    run_local_ranks(_gather_destroy_and_list_gloo_threads, str(tmp_path), 2)
    for rank in range(2):
        threads = json.loads((tmp_path / f"rank{rank}.threads").read_text())
        assert threads and not [name for name in threads if "gloo" in name or "tcpstore" in name]


def test_a_command_under_torchrun_leaves_no_group_behind(tmp_path):
    run_local_ranks(_pretrain_through_the_cli, str(tmp_path), 2)  # the environment torchrun gives
    assert [json.loads((tmp_path / f"rank{r}.left").read_text()) for r in range(2)] == [False, False]
    assert (tmp_path / "run" / "checkpoints" / "step-00000001").is_dir()


def test_a_failing_rank_stops_the_others_and_raises(tmp_path):
    with pytest.raises(RuntimeError, match="rank 1 of 2 exited with code 3"):
        run_local_ranks(_fail_on_rank_one, str(tmp_path), 2)


@pytest.mark.parametrize(("world", "threads"), [(0, 1), (2, 0)])
def test_bad_layouts_are_refused(world, threads):
    with pytest.raises(ValueError, match="must be >= 1"):
        run_local_ranks(_report, "unused", world, threads=threads)


def _sft_rows(path):
    rows = [
        {
            "prompt": f"User: [{i}, {i + 1}] -> {2 * i + 1} Assistant:",
            "completion": f"<think>\n{i + 1}+{i}={2 * i + 1} vs {2 * i + 1} ok" + "\n" * (i % 5) + "</think>",
        }
        for i in range(12)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _assert_trained_alike(single: str, ranks: str, moved: float) -> dict[str, torch.Tensor]:
    """The one-process and the two-rank checkpoints agree, and training moved the weights by > ``moved``."""
    from rlenv.train.policy import load_policy

    a = load_policy(single).module.state_dict()
    b = load_policy(ranks).module.state_dict()
    start = load_policy("tiny", seed=0).module.state_dict()
    assert max(float((a[k].float() - start[k].float()).abs().max()) for k in a) > moved  # it trained
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4)
    return a


def test_sft_on_two_ranks_equals_one_process_with_the_global_batch(tmp_path):
    # Same global batch of 4 rows: one process, or two ranks of 2 rows each (rows dealt by length, the loss
    # normalised by the step's tokens over both ranks, expert loads summed before the bias update).
    from rlenv.train.config import SFTConfig
    from rlenv.train.sft import sft

    data = _sft_rows(tmp_path / "sft.jsonl")
    common = dict(
        policy="tiny:bias_update_speed=0.05",
        data=data,
        num_rows=12,
        steps=4,
        lr=1e-2,
        warmup_steps=0,
        device="cpu",
        max_len=64,
        progress=False,
        tensorboard=False,
    )
    single = sft(SFTConfig(run_dir=str(tmp_path / "one"), batch_size=4, **common))
    run_local_ranks(sft, SFTConfig(run_dir=str(tmp_path / "two"), batch_size=2, **common), 2)
    a = _assert_trained_alike(
        single.checkpoint, str(tmp_path / "two" / "checkpoints" / "step-00000004"), 1e-3
    )
    assert any("bias" in k and float(a[k].abs().max()) > 0 for k in a)  # the expert biases moved


def test_grpo_of_the_bundled_policy_on_two_ranks_equals_one_process(tmp_path):
    from rlenv.train.config import GRPOConfig
    from rlenv.train.grpo import train
    from tests.train.conftest import TOY_ENV

    # groups_per_generate=1 seeds each group's sampling by its own prompt index, so both layouts draw the
    # same completions (a batch shares one random stream otherwise).
    common = dict(
        policy="tiny:bias_update_speed=0.05",
        env_id=TOY_ENV,
        steps=2,
        prompts_per_step=4,
        num_generations=4,
        max_new_tokens=16,
        micro_batch_size=4,
        groups_per_generate=1,
        lr=1e-2,
        stop_strings=(),
        progress=False,
        tensorboard=False,
        device="cpu",
    )
    single = train(GRPOConfig(run_dir=str(tmp_path / "one"), **common))
    run_local_ranks(train, GRPOConfig(run_dir=str(tmp_path / "two"), **common), 2)
    _assert_trained_alike(single.checkpoint, str(tmp_path / "two" / "checkpoints" / "step-00000002"), 1e-4)


class _ScriptedPolicy:
    """Answers ``a*b-c`` or ``a+b+c`` by the parity of the batch seed, so every figure depends on which
    batch an item was in, with which seed, and in what order the batches were put back together."""

    def generate(self, prompts, n, sampling):
        from types import SimpleNamespace

        texts = []
        for prompt in prompts:
            a, b, c, target = (int(v) for v in prompt.split()[1:5])
            answer = f"{a}*{b}-{c}" if (sampling.seed // 2) % 2 == 0 else f"{a}+{b}+{c}"
            check = f"{a}*{b}={a * b} [{a * b} {c}]\n{a * b}-{c}={a * b - c} vs {target} no"
            texts.append(f"<think>\n{check}\n</think>\n<answer>{answer}</answer>" + " " * (a % 5))
        return SimpleNamespace(texts=texts, completion_ids=[list(range(len(t))) for t in texts])


def _scripted_items() -> list[dict]:
    items = []
    for i in range(9):
        a, b, c = 3 + i, 5 + i % 4, 1 + i % 3
        target = (a * b - c, a + b + c, 999)[i % 3]
        items.append({"prompt": f"p {a} {b} {c} {target}", "nums": [a, b, c], "target": target})
    return items


def _evaluate_sharded(directory: str) -> None:
    from rlenv.train.countdown_eval import evaluate_countdown
    from rlenv.train.distributed import init_distributed

    info = init_distributed("cpu")
    figures = evaluate_countdown(_ScriptedPolicy(), _scripted_items(), temperature=1.0, max_new_tokens=64,
                                 seed=10, batch_size=2, shard=True)
    with open(os.path.join(directory, f"rank{info.rank}.json"), "w") as f:
        json.dump(figures, f)


def test_evaluation_sharded_over_ranks_equals_one_process(tmp_path):
    from rlenv.train.countdown_eval import evaluate_countdown

    run_local_ranks(_evaluate_sharded, str(tmp_path), 2)
    alone = evaluate_countdown(_ScriptedPolicy(), _scripted_items(), temperature=1.0, max_new_tokens=64,
                               seed=10, batch_size=2)
    # Some items right, some wrong, shortcut and not, each thinking checked against its own target: the
    # figures tell the batches, their seeds and their order apart.
    assert 0.0 < alone["accuracy"] < 1.0 and 0.0 < alone["nonshortcut_accuracy"] < 1.0
    assert alone["audit/checked"] == 1.0 and alone["audit/wrong_target"] == 0.0
    for rank in range(2):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == alone


def test_grpo_goes_on_when_a_rank_holds_no_rows(tmp_path):
    # One prompt per step on two ranks: rank 1 samples nothing (as a rank whose groups dynamic sampling all
    # dropped), yet joins every collective, and the run finishes.
    from rlenv.train.config import GRPOConfig
    from rlenv.train.grpo import train
    from rlenv.train.metrics import read_metrics
    from tests.train.conftest import TOY_ENV

    config = GRPOConfig(run_dir=str(tmp_path), policy="tiny", env_id=TOY_ENV, steps=2, prompts_per_step=1,
                        num_generations=4, max_new_tokens=8, micro_batch_size=4, lr=1e-2, stop_strings=(),
                        progress=False, tensorboard=False, device="cpu")
    run_local_ranks(train, config, 2)
    assert [r["step"] for r in read_metrics(str(tmp_path))] == [1, 2]


def test_a_gpu_group_pairs_nccl_with_gloo_for_cpu_tensors(monkeypatch):
    # The update reduces CPU scalars (token counts, flags, losses) beside the CUDA gradients; nccl alone
    # cannot take CPU tensors, so a GPU group has gloo for them.
    import torch.distributed as dist

    from rlenv.train.distributed import init_distributed

    calls = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(backend))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = init_distributed("cuda")
    assert (info.rank, info.world_size, info.local_rank) == (1, 2, 1)
    assert calls == ["cpu:gloo,cuda:nccl"]
    init_distributed("cpu")
    assert calls[-1] == "gloo"
