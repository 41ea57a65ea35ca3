"""Smoke tests of the recipe examples on tiny settings (the full runs are documented in docs/recipes.md)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second intra-op thread, and on a shared, busy machine two threads per
    process thrash (measured here: ~10x slower wall time), so the end-to-end smoke tests use one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("path", ["r1_distillation.py", "fp8_training.py"])
def test_examples_are_short(path):
    assert len((EXAMPLES / path).read_text().splitlines()) <= 300


def test_fp8_training_quick(one_thread):
    results = _load("fp8_training").main(["--quick"])
    fp32, fp8 = results["fp32"], results["fp8 blockwise"]
    # Same data, same initial weights: FP8 numerics stay within a few percent of FP32 after a few steps.
    assert abs(fp8["heldout_loss"] - fp32["heldout_loss"]) / fp32["heldout_loss"] < 0.05


def test_r1_distillation_quick(tmp_path, one_thread):
    # A fresh tiny teacher stands in for the r1-trained one (the recipe has its own smoke test); accepting
    # every sample (threshold 0) exercises the fine-tuning path without a competent teacher.
    results = _load("r1_distillation").main(
        ["--quick", "--teacher", "tiny", "--accept-threshold", "0", "--out", str(tmp_path)]
    )
    assert set(results) == {"teacher", "student (pretrained only)", "student (distilled)"}
    assert results["student (distilled)"]["params"] < results["teacher"]["params"] * 2
    assert (tmp_path / "results.json").is_file()
