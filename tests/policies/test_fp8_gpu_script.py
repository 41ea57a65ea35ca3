"""``benchmarks/fp8_gpu.py --dry-run``: the whole GPU benchmark runs on CPU (kernels replaced), nothing fails.

Only the CUDA kernel calls themselves stay untested here; shapes, layouts, padding, assertions, timing,
printing and the JSON output all run (about 10 s on one thread).
"""

import importlib.util
import json
import pathlib

import pytest
import torch

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "fp8_gpu.py"


def _load():
    spec = importlib.util.spec_from_file_location("fp8_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_dry_run_exercises_every_section_without_failures(tmp_path, capsys, one_thread):
    out = tmp_path / "fp8_gpu.json"
    assert _load().main(["--dry-run", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "FAILED" not in printed and "1. GEMM 256^3" in printed and "3. Train step" in printed
    results = json.loads(out.read_text())
    assert results["dry_run"] is True
    kernels = {r["kernel"] for r in results["gemm_big"]}
    assert {
        "bf16 mm (peer)",
        "fp8 rowwise",
        "fp8 blockwise 1x128/128x128",
        "fp8 blockwise incl. quantise",
    } <= kernels
    assert all(r["ms"] > 0 for key in ("gemm_big", "gemm_policy", "train") for r in results[key])
    assert {(r["mode"]) for r in results["train"]} == {"bf16", "rowwise", "blockwise"}
    assert len(results["gemm_policy"]) >= 6 * 4  # every kernel at each of the tiny policy's distinct shapes


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA exit")
def test_real_run_without_cuda_exits_2_with_a_message(capsys):
    assert _load().main([]) == 2
    assert "--dry-run" in capsys.readouterr().err
