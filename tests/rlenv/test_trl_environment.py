"""CodeFeedbackTool inside TRL's GRPOTrainer(environment_factory=...) for one step (tiny random model, CPU).

A random model does not call the tool, so this checks the contract TRL enforces: the class is accepted, its
``run_tests`` tool gets a JSON schema from its docstring, ``reset(**row)`` takes our exported code rows, and
``get_reward`` is logged as a reward.
"""

import importlib.util
import os
import pathlib
import sys

import pytest

pytest.importorskip("trl")
pytest.importorskip("tokenizers")

import rlenv

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "trl_grpo_math.py"


def _example():
    spec = importlib.util.spec_from_file_location("trl_grpo_math", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_run_tests_has_a_tool_schema():
    from transformers.utils import get_json_schema

    schema = get_json_schema(rlenv.CodeFeedbackTool().run_tests)["function"]
    assert schema["name"] == "run_tests" and schema["parameters"]["required"] == ["code"]
    assert "Python" in schema["parameters"]["properties"]["code"]["description"]


def test_grpo_trainer_accepts_code_feedback_tool(tmp_path, monkeypatch):
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_chat_template

    example = _example()
    ds = rlenv.to_hf_dataset("rlenv/Code-v0", 2, seed=0, difficulty=1, template="chat")
    texts = [m["content"] for p in ds["prompt"] for m in p] + ["<tool_call> </tool_call> run_tests code"]
    tok = example.build_tokenizer(texts)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template, tok.eos_token = qwen3_chat_template, "<|im_end|>"  # a tool-capable template TRL knows
    args = GRPOConfig(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, num_generations=2,
        max_completion_length=8, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
        bf16=False, disable_tqdm=True, max_tool_calling_iterations=2,
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=example.build_model(tok, 0), args=args, train_dataset=ds, processing_class=tok,
        environment_factory=rlenv.CodeFeedbackTool,
    )  # fmt: skip
    assert trainer.reward_func_names == ["CodeFeedbackTool"]
    trainer.train()
    logged = [e for e in trainer.state.log_history if "rewards/CodeFeedbackTool/mean" in e]
    assert (
        logged and logged[-1]["rewards/CodeFeedbackTool/mean"] == 0.0 and "tools/call_frequency" in logged[-1]
    )
    assert os.environ["TRL_EXPERIMENTAL_SILENCE"] == "1"
