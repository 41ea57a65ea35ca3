"""convert_to_fp8 on the bundled policy: the recipe's modules go FP8, the rest stays high-precision."""

import pytest
import torch
from torch import nn

from policies import ModelConfig, Transformer, convert_to_fp8
from policies.fp8 import DEFAULT_KEEP, FP8Config, FP8Experts, FP8Linear, plan_fp8

SENSITIVE = set(DEFAULT_KEEP)  # embed, head, gate, router, norm


def _expected(model):
    """Independent statement of the recipe: every linear / stacked experts not named sensitive, any shape."""
    expected = set()
    for name, module in model.named_modules():
        if set(name.split(".")) & SENSITIVE:
            continue
        if isinstance(module, nn.Linear) or type(module).__name__ == "Experts":
            expected.add(name)
    return expected


@pytest.mark.parametrize(
    ("recipe", "options"),
    [("blockwise", {"block_size": 16}), ("rowwise", {}), ("tensorwise", {}), ("blockwise", {})],
)
def test_converted_set_is_exactly_the_recipe(recipe, options):
    torch.manual_seed(0)
    model = Transformer(ModelConfig.tiny())
    expected = _expected(model)
    before = dict(model.named_modules())
    model = convert_to_fp8(model, recipe, **options)
    after = dict(model.named_modules())
    fp8 = {n for n, m in after.items() if isinstance(m, (FP8Linear, FP8Experts))}
    assert fp8 == expected == set(model.fp8_report.converted)
    # high precision: embed, head, gates, every norm, and the linears the recipe excludes, untouched
    for name, module in after.items():
        if name not in expected:
            assert type(module) is type(before[name]), name
    assert type(after["embed"]) is nn.Embedding and type(after["head"]) is nn.Linear
    assert {"embed", "head", "norm", "layers.1.ffn.gate"} <= model.fp8_report.kept_names
    assert all(
        type(after[n]).__name__ == "RMSNorm" for n in model.fp8_report.kept_names if n.endswith("norm")
    )
    # the tiny config's 16..64-wide projections and experts all run FP8, even 32 -> 20 and 16 -> 24, whose
    # single 128-tiles are partial
    assert {"layers.0.attn.wo", "layers.0.ffn.w1", "layers.1.ffn.experts", "mtp.0.eh_proj"} <= fp8
    assert {"layers.0.attn.wkv_a", "layers.0.attn.wq_b"} <= fp8


def test_block_128_converts_every_eligible_module_of_the_small_preset():
    model = Transformer(ModelConfig.small())
    before = {n: (type(m).__name__, getattr(m, "in_features", None)) for n, m in model.named_modules()}
    expected = _expected(model)
    report = convert_to_fp8(model, "blockwise", block_size=128).fp8_report
    assert set(report.converted) == expected
    # the small preset's 128 -> 48 / 128 -> 192 / 32 -> 256 projections were excluded when 128 had to divide
    newly = {"layers.0.attn.wkv_a", "layers.0.attn.wq", "layers.0.attn.wkv_b", "mtp.0.block.attn.wkv_a"}
    assert newly <= expected
    kept = dict(report.kept)
    assert all(not isinstance(m, (FP8Linear, FP8Experts)) for n, m in model.named_modules() if n in kept)
    kinds = {kind for n, (kind, _) in before.items() if n in kept}
    assert kinds == {"Embedding", "Linear", "Gate", "RMSNorm"}
    assert sorted(n for n, (kind, _) in before.items() if n in kept and kind == "Linear") == ["head"]
    # the forward still matches FP32 at the real granularity, partial blocks included
    torch.manual_seed(0)
    ref = Transformer(ModelConfig.small())
    ref.load_state_dict(model.state_dict())
    tokens = torch.randint(0, ModelConfig.small().vocab_size, (2, 40))
    with torch.no_grad():
        assert float((model(tokens) - ref(tokens)).norm() / ref(tokens).norm()) < 0.05


def test_parameters_are_shared_not_copied():
    model = Transformer(ModelConfig.tiny())
    params = {n: p for n, p in model.named_parameters()}
    convert_to_fp8(model, "blockwise", block_size=16)
    assert {n: id(p) for n, p in model.named_parameters()} == {n: id(p) for n, p in params.items()}
    assert model.layers[0].attn.wkv_b.weight.dtype == torch.float32  # absorbed MLA reads it directly


def test_converted_tiny_model_trains_like_fp32():
    torch.manual_seed(0)
    ref = Transformer(ModelConfig.tiny())
    fp8 = Transformer(ModelConfig.tiny())
    fp8.load_state_dict(ref.state_dict())
    convert_to_fp8(fp8, "blockwise", block_size=16)
    tokens = torch.randint(0, ModelConfig.tiny().vocab_size, (2, 24))
    losses, grads = [], []
    for model in (ref, fp8):
        out = model(tokens, return_aux=True)
        loss = nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert losses[1] == pytest.approx(losses[0], rel=0.01)
    assert float((grads[1] - grads[0]).norm() / grads[0].norm()) < 0.1


def test_generation_and_absorbed_decoding_still_work_after_conversion():
    from policies import generate

    torch.manual_seed(0)
    model = convert_to_fp8(Transformer(ModelConfig.tiny()), "rowwise").eval()
    out = generate(model, [[1, 2, 3], [4, 5]], max_new_tokens=4, temperature=0.0)
    assert [len(t) for t in out.tokens] == [4, 4]


def test_plan_is_a_dry_run_and_reports_reasons():
    model = Transformer(ModelConfig.tiny())
    report = plan_fp8(model, FP8Config(recipe="rowwise"))
    assert not any(isinstance(m, FP8Linear) for m in model.modules())
    reasons = dict(report.kept)
    assert reasons["embed"] == "embedding" and reasons["layers.1.ffn.gate"] == "router/gate"
    assert "layers.0.attn.wkv_a" not in reasons and "head" in reasons["head"]
    assert "attention core" in report.summary()


def test_custom_keep_list_and_bad_options():
    model = convert_to_fp8(
        Transformer(ModelConfig.tiny()), "rowwise", keep_high_precision=("head", "embed", "gate", "attn")
    )
    assert not any(isinstance(m, FP8Linear) for n, m in model.named_modules() if ".attn." in n)
    with pytest.raises(ValueError, match="recipe"):
        convert_to_fp8(Transformer(ModelConfig.tiny()), "int8")
    with pytest.raises(TypeError):
        convert_to_fp8(Transformer(ModelConfig.tiny()), "rowwise", no_such_option=1)
