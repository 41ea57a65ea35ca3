"""Tests of the recipes: config checks, held-out items, baselines, the table, and a quick end-to-end run."""

from __future__ import annotations

import json
import math

import pytest

from rlenv.train.corpus import make_corpus
from rlenv.train.countdown_eval import baselines, format_table, heldout_items
from rlenv.train.recipes import RecipeConfig


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recipe", "r2"),
        ("template", "chat"),
        ("device", "tpu"),
        ("trace_style", "beam"),
        ("lm_precision", "fp16"),
        ("num_numbers", 2),
        ("grpo_steps", -1),
        ("eval_items", 0),
        ("grpo_lr", 0.0),
        ("grpo_temperature", 0.0),
        ("eval_split", "validation"),
        ("sft_near_miss", 1.5),
        ("sft_arithmetic_docs", -1),
        ("sft_weight_decay", -0.1),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        RecipeConfig(**{field: value})


def test_near_miss_needs_search_traces_and_quick_drops_it():
    with pytest.raises(ValueError, match="sft_near_miss"):
        RecipeConfig(sft_near_miss=0.5, trace_style="direct")
    assert RecipeConfig(sft_near_miss=0.5, quick=True).effective.sft_near_miss == 0.0
    assert RecipeConfig().effective.sft_near_miss == 0.6
    assert RecipeConfig(trace_style="direct").effective.sft_near_miss == 0.0


def test_pruned_traces_need_search_traces():
    assert RecipeConfig().effective.sft_prune is False
    assert RecipeConfig(sft_keep_lengths=True).effective.sft_keep_lengths is True
    for bad in (dict(sft_near_miss=0.0), dict(trace_style="direct")):
        with pytest.raises(ValueError, match="sft_keep_lengths"):
            RecipeConfig(sft_keep_lengths=True, **bad)
    assert RecipeConfig(sft_keep_lengths=True, quick=True).effective.sft_keep_lengths is False
    assert RecipeConfig(sft_prune=True).effective.sft_prune is True
    with pytest.raises(ValueError, match="sft_prune"):
        RecipeConfig(sft_prune=True, trace_style="direct")


def test_sft_weight_decay_defaults_to_one_for_the_bundled_policy_only():
    assert RecipeConfig().effective.sft_weight_decay == 1.0
    assert RecipeConfig(hf_model="/models/base").effective.sft_weight_decay == 0.0  # pretrained weights
    assert RecipeConfig(sft_weight_decay=0.0).effective.sft_weight_decay == 0.0  # session 12's default


def test_terse_template_is_for_r1_only():
    assert RecipeConfig().env_kwargs["template"] == RecipeConfig().effective.template == "terse"
    assert RecipeConfig(recipe="r1zero").env_kwargs["template"] == "compact"
    with pytest.raises(ValueError, match="template"):
        RecipeConfig(recipe="r1zero", template="terse")


def test_r1_gates_the_format_reward_on_the_answer_and_r1zero_does_not():
    gated = {"format": "accuracy"}
    assert RecipeConfig().env_kwargs["reward_gates"] == gated and RecipeConfig().effective.gate_format
    assert "reward_gates" not in RecipeConfig(gate_format=False).env_kwargs
    assert "reward_gates" not in RecipeConfig(recipe="r1zero").env_kwargs
    assert RecipeConfig(recipe="r1zero", gate_format=True).env_kwargs["reward_gates"] == gated


@pytest.mark.parametrize(
    ("cores", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (2, 1)), (8, (8, 1)), (32, (16, 2))]
)
def test_cpu_layout_is_one_rank_per_core_dividing_the_batches(monkeypatch, cores, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert RecipeConfig(device="cpu").layout == expected
    assert RecipeConfig(device="cpu", ranks=1).layout == (1, cores)
    with pytest.raises(ValueError, match="ranks=3 must divide"):
        RecipeConfig(ranks=3)


def test_evaluation_only_reuses_the_framing_the_run_was_trained_on(tmp_path):
    from rlenv.train.recipes import _trained_framing

    (tmp_path / "config.json").write_text(json.dumps({"template": "compact"}))
    again = RecipeConfig(eval_only=True, run_dir=str(tmp_path))
    assert _trained_framing(again).effective.template == "compact"
    chosen = RecipeConfig(eval_only=True, run_dir=str(tmp_path), template="terse")
    assert _trained_framing(chosen).template == "terse"
    assert _trained_framing(RecipeConfig(run_dir=str(tmp_path))).effective.template == "terse"


def test_evaluation_only_follows_the_phases_the_run_trained(tmp_path, one_thread):
    # A run started from a checkpoint with --sft-steps 0 has no SFT phase; re-evaluating it must not ask
    # for one because the re-evaluating command line left --sft-steps out.
    from rlenv.train.recipes import run_recipe

    costs = {"wall_s": 1.0, "cpu_s": 2.0}
    previous = {"checkpoints": {"base": "tiny", "grpo": "tiny"}, "rows": {"base": costs, "grpo": costs}}
    (tmp_path / "results.json").write_text(json.dumps(previous))
    result = run_recipe(RecipeConfig(quick=True, run_dir=str(tmp_path), device="cpu", eval_only=True,
                                     eval_split="train", eval_seed=5))
    assert list(result.rows) == ["base", "grpo"] and result.rows["grpo"]["wall_s"] == 1.0


def test_train_split_evaluation_needs_its_own_seed():
    with pytest.raises(ValueError, match="eval_seed"):
        RecipeConfig(eval_split="train", eval_seed=0, seed=0)


def test_effective_config_applies_quick_and_defaults_the_run_dir():
    config = RecipeConfig(recipe="r1zero", quick=True).effective
    assert config.run_dir.endswith("r1zero") and config.policy == "tiny" and not config.quick
    assert config.eval_items < 50
    assert RecipeConfig(run_dir="x").effective.run_dir == "x"
    assert json.loads(json.dumps(RecipeConfig().env_kwargs))["config"]["max_numbers"] == 3
    # Per-recipe budgets fill only the fields left at None.
    r1, r1zero = RecipeConfig().effective, RecipeConfig(recipe="r1zero").effective
    assert (r1.max_new_tokens, r1.grpo_steps, r1zero.max_new_tokens, r1zero.grpo_steps) == (256, 75, 160, 300)
    assert RecipeConfig(max_new_tokens=99, grpo_steps=7).effective.max_new_tokens == 99


def test_heldout_items_come_from_the_test_split_only():
    from rlenv.train.corpus import countdown_sft_rows

    kwargs = RecipeConfig().env_kwargs
    items = heldout_items(200, seed=0, env_kwargs=kwargs)
    assert len(items) == 200 and all(len(it["nums"]) == 3 for it in items)
    assert items == heldout_items(200, seed=0, env_kwargs=kwargs)
    train = countdown_sft_rows(200, seed=0, template=kwargs["template"], env_kwargs={"config": _three()})
    assert {r["prompt"] for r in train}.isdisjoint(it["prompt"] for it in items)
    # Shortcut targets are rare by default, so the baselines are low.
    rates = baselines(items)
    assert rates["always_add"] < 0.1 and rates["always_multiply"] < 0.1


def _three():
    from rlenv.tasks.countdown import CountdownConfig

    return CountdownConfig(min_numbers=3, max_numbers=3)


def test_baselines_table():
    items = [
        {"nums": [1, 2, 3], "target": 6},  # both sum and product
        {"nums": [2, 3, 4], "target": 9},  # sum
        {"nums": [2, 3, 4], "target": 24},  # product
        {"nums": [2, 3, 4], "target": 5},  # neither
    ]
    assert baselines(items) == {"always_add": 0.5, "always_multiply": 0.5}


def test_format_table_lists_every_phase_and_the_baselines():
    row = {"greedy/accuracy": 0.655, "sampled/accuracy": 0.5, "greedy/nonshortcut_accuracy": 0.64,
           "greedy/format_rate": 0.99, "greedy/mean_tokens": 61.2, "greedy/tokens_per_solved": math.inf,
           "wall_s": 120.0}
    baseline = {"always_add": 0.012, "always_multiply": 0.02}
    text = format_table({"base": row, "sft": row, "grpo": row}, baseline)
    lines = text.splitlines()
    assert lines[0].startswith("| phase | greedy acc | sampled acc")
    assert lines[2] == "| base (pretrained) | 65.5% | 50.0% | 64.0% | 99.0% | 61 | - | 2.0 min |"
    assert "always add 1.2%, always multiply 2.0%; wall time: training 6.0 min" in text


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second intra-op thread, and on a shared, busy machine two threads per
    process thrash (measured here: ~10x slower wall time), so the end-to-end smoke tests use one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ranks_of_run(run_dir) -> int:
    """The training ranks a finished run used (its effective config's layout)."""
    return RecipeConfig(**json.loads((run_dir / "config.json").read_text())).layout[0]


@pytest.mark.parametrize("recipe", ["r1", pytest.param("r1zero", marks=pytest.mark.slow)])
def test_quick_recipe_runs_end_to_end(tmp_path, recipe, one_thread):
    from rlenv.train.recipes import run_recipe

    precision = "bf16" if recipe == "r1" else "auto"  # bf16 autocast on the CPU too
    result = run_recipe(
        RecipeConfig(recipe=recipe, quick=True, run_dir=str(tmp_path), device="cpu", lm_precision=precision,
                     grpo_temperature=1.1, sft_arithmetic_docs=3, sft_weight_decay=0.5)
    )
    phases = ["base", "sft", "grpo"] if recipe == "r1" else ["base", "grpo"]
    assert list(result.rows) == phases
    for row in result.rows.values():
        assert 0.0 <= row["greedy/accuracy"] <= 1.0 and row["greedy/n"] == 8
    for name in ("config.json", "results.json", "results.md", "curves.png"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["rows"]) == set(phases) and "always_add" in saved["baselines"]
    assert (tmp_path / "pretrain" / "metrics.jsonl").is_file()
    stages = ["pretrain", "sft"] if recipe == "r1" else ["pretrain"]
    for stage in stages:  # pretraining and SFT run at lm_precision; GRPO keeps "auto"
        assert json.loads((tmp_path / stage / "config.json").read_text())["precision"] == precision
    if recipe == "r1":
        assert json.loads((tmp_path / "sft" / "config.json").read_text())["weight_decay"] == 0.5
    grpo = json.loads((tmp_path / "grpo" / "config.json").read_text())
    assert grpo["precision"] == "auto" and grpo["temperature"] == 1.1  # rollouts at grpo_temperature
    gates = json.loads(grpo["env_kwargs"]).get("reward_gates")
    assert gates == ({"format": "accuracy"} if recipe == "r1" else None)  # r1's GRPO reward gates the format
    if _ranks_of_run(tmp_path) > 1:  # the training ranks evaluated their own checkpoints
        for stage in [*stages, "grpo"]:
            saved_eval = json.loads((tmp_path / stage / "heldout.json").read_text())
            assert saved_eval["eval_s"] > 0 and saved_eval["figures"]["greedy/n"] == 8
    first = json.loads((tmp_path / "data" / "pretrain.jsonl").read_text().splitlines()[0])["text"]
    assert "create an equation that equals" not in first  # the base never sees countdown
    if recipe == "r1":  # SFT mixes in the pretraining stream's next documents, without a prompt
        rows = [json.loads(line) for line in (tmp_path / "data" / "sft.jsonl").read_text().splitlines()]
        pretrained = [json.loads(line)["text"] for line in (tmp_path / "data" / "pretrain.jsonl").open()]
        docs = make_corpus("arithmetic", len(pretrained) + 3, seed=0)
        assert pretrained == docs[:-3] and rows[-3:] == [{"prompt": "", "completion": d} for d in docs[-3:]]
    # Re-evaluating the trained phases on another stream trains nothing and keeps the training costs.
    again = run_recipe(RecipeConfig(recipe=recipe, quick=True, run_dir=str(tmp_path), device="cpu",
                                    eval_only=True, eval_split="train", eval_seed=5))
    assert again.checkpoints == result.checkpoints and again.split == "train"
    assert [r["wall_s"] for r in again.rows.values()] == [r["wall_s"] for r in result.rows.values()]
    assert (tmp_path / "results-train-5.json").is_file()
