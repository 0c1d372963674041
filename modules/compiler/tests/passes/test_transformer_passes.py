"""The passes beyond the CNN ones: transformer fusions (layer norm, GELU with matmul+bias,
attention), layout assignment, precision lowering, memory planning; the plan cache. Each pass
test compiles with and without the pass, so it fails if the pass is taken out."""

from __future__ import annotations

import numpy as np
import pytest

import npu_compiler
from npu_driver import load_sku
from compiler_models import (conv_block_model, onnxruntime_outputs, random_feeds, tiny_transformer,
                             token_feeds)

SKU = "npu-edge"
WITHOUT = {name: [p for p in npu_compiler.DEFAULT_PIPELINE if p != name]
           for name in npu_compiler.DEFAULT_PIPELINE}


def op_types(plan):
    return [(s["op_type"], s["fusion"]) for s in plan.steps]


def facts(plan, name):
    return next(e for e in plan.pass_log if e["name"] == name)["facts"]


def cosine(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def transformer():
    model = tiny_transformer(layers=2)
    feeds = token_feeds()
    return model, feeds, onnxruntime_outputs(model, feeds)["y"]


@pytest.fixture(scope="module")
def fused(transformer):
    model, feeds, expected = transformer
    plan = npu_compiler.compile_model(model, SKU, batch=2)
    outputs, profile = npu_compiler.Engine(plan).run(feeds)
    return plan, outputs["y"], profile


def test_fused_transformer_matches_onnxruntime(transformer, fused):
    _, _, expected = transformer
    _, got, _ = fused
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_layernorm_fusion(fused, transformer):
    plan, _, _ = fused
    ops = [op for op, _ in op_types(plan)]
    assert ops.count("LayerNormalization") == 4 and "ReduceMean" not in ops
    assert facts(plan, "fuse_layernorm")["fusions"] == {"LayerNormalization": 4}
    unfused = npu_compiler.compile_model(transformer[0], SKU, batch=2,
                                         pipeline=WITHOUT["fuse_layernorm"])
    assert [op for op, _ in op_types(unfused)].count("ReduceMean") == 8


def test_gelu_fuses_with_matmul_and_bias(fused, transformer):
    plan, _, _ = fused
    assert op_types(plan).count(("MatMul", "Add+Gelu")) == 2
    assert "Erf" not in [op for op, _ in op_types(plan)]
    unfused = npu_compiler.compile_model(transformer[0], SKU, batch=2,
                                         pipeline=WITHOUT["fuse_gelu"])
    assert ("MatMul", "Add+Gelu") not in op_types(unfused)
    assert [op for op, _ in op_types(unfused)].count("Erf") == 2


def test_attention_fusion_keeps_scores_on_chip(fused, transformer):
    plan, _, profile = fused
    assert [op for op, _ in op_types(plan)].count("FusedAttention") == 2
    assert "Softmax" not in [op for op, _ in op_types(plan)]
    attention = next(s for s in plan.steps if s["op_type"] == "FusedAttention")
    assert len(attention["inputs"]) == 4  # q, k transposed, v and the causal mask
    unfused = npu_compiler.compile_model(transformer[0], SKU, batch=2,
                                         pipeline=WITHOUT["fuse_attention"])
    assert [op for op, _ in op_types(unfused)].count("Softmax") == 2
    _, unfused_profile = npu_compiler.Engine(unfused).run(transformer[1])
    assert profile["total_cycles"] < unfused_profile["total_cycles"]


def test_layout_assignment_on_an_nhwc_sku():
    nhwc = load_sku(SKU).with_overrides(layout="NHWC")
    model = conv_block_model()
    feeds = random_feeds(model)
    plan = npu_compiler.compile_model(model, nhwc)
    assert [s["layout"] for s in plan.steps if s["op_type"] == "Conv"] == ["NHWC", "NHWC"]
    # One transpose into NHWC shared by both convolutions, one back before the Reshape.
    assert facts(plan, "assign_layout") == {"nhwc_kernels": 2, "transposes_inserted": 2,
                                            "transposes_eliminated": 2}
    outputs, profile = npu_compiler.Engine(plan, sku=nhwc).run(feeds)
    np.testing.assert_allclose(outputs["y"], onnxruntime_outputs(model, feeds)["y"], rtol=1e-4,
                               atol=1e-5)
    kept = npu_compiler.compile_model(model, nhwc, pipeline=WITHOUT["assign_layout"])
    assert {s["layout"] for s in kept.steps} == {"NCHW"}
    nchw_cycles = npu_compiler.Engine(kept, sku=nhwc).run(feeds)[1]["total_cycles"]
    assert profile["total_cycles"] < nchw_cycles
    on_nchw_sku = npu_compiler.compile_model(model, SKU)
    assert {s["layout"] for s in on_nchw_sku.steps} == {"NCHW"}


@pytest.mark.parametrize("precision, atol", [("fp16", 2e-2), ("bf16", 1.5e-1)])
def test_float_precision_lowering(transformer, precision, atol):
    model, feeds, expected = transformer
    plan = npu_compiler.compile_model(model, SKU, precision=precision, batch=2)
    assert plan.precision == precision
    assert {s["precision"] for s in plan.steps} == {precision}
    got = npu_compiler.Engine(plan).run(feeds)[0]["y"]
    error = np.abs(got - expected).max()
    assert 1e-5 < error < atol  # rounded, as the format rounds, and no worse
    without = npu_compiler.compile_model(model, SKU, precision=precision, batch=2,
                                         pipeline=WITHOUT["lower_precision"])
    assert {s["precision"] for s in without.steps} == {"fp32"}
    unlowered = npu_compiler.Engine(without).run(feeds)[0]["y"]
    assert np.abs(unlowered - expected).max() < 1e-5
    assert facts(plan, "lower_precision")["lowered"][precision] == len(plan.steps)


def test_int8_quantizes_matrix_kernels_with_calibration(transformer):
    model, feeds, expected = transformer
    plan = npu_compiler.compile_model(model, SKU, precision="int8", batch=2)
    int8 = [s for s in plan.steps if s["precision"] == "int8"]
    assert {s["op_type"] for s in int8} == {"MatMul", "FusedAttention"}
    assert all(len(s["attrs"]["int8_scales"]) in (2, 3) for s in int8)
    assert any(a.dtype == np.int8 for a in plan.constants.values())  # weights stored as int8
    got, profile = npu_compiler.Engine(plan).run(feeds)
    assert 0.99 <= cosine(got["y"], expected) < 0.99999
    fp32_plan = npu_compiler.compile_model(model, SKU, batch=2)
    assert sum(a.nbytes for a in plan.constants.values()) < 0.5 * sum(
        a.nbytes for a in fp32_plan.constants.values())
    # Calibration data sets the activation scales: larger inputs, larger scales.
    loud = npu_compiler.compile_model(model, SKU, precision="int8", batch=2,
                                      calibration=[token_feeds(seed=s) for s in range(3)])
    scales = [s["attrs"]["int8_scales"][0] for s in plan.steps if s["precision"] == "int8"]
    loud_scales = [s["attrs"]["int8_scales"][0] for s in loud.steps if s["precision"] == "int8"]
    assert scales != loud_scales


def test_int8_conv_model_and_missing_calibration_inputs():
    model = conv_block_model()
    feeds = random_feeds(model)
    plan = npu_compiler.compile_model(model, SKU, precision="int8")
    assert {s["op_type"] for s in plan.steps if s["precision"] == "int8"} == {"Conv", "Gemm"}
    got = npu_compiler.Engine(plan).run(feeds)[0]["y"]
    assert cosine(got, onnxruntime_outputs(model, feeds)["y"]) >= 0.99
    with pytest.raises(npu_compiler.CompileError, match="calibration data lacks input.*x"):
        npu_compiler.compile_model(model, SKU, precision="int8", calibration={"nope": feeds["x"]})


def test_memory_planning_reuses_buffers(transformer):
    model, feeds, _ = transformer
    planned = npu_compiler.compile_model(model, SKU, batch=2)
    unplanned = npu_compiler.compile_model(model, SKU, batch=2, pipeline=WITHOUT["plan_memory"])
    memory = planned.memory
    assert 0 < memory["arena_bytes"] < memory["unplanned_bytes"] / 3
    assert not unplanned.memory
    out_planned, with_plan = npu_compiler.Engine(planned).run(feeds)
    out_unplanned, without_plan = npu_compiler.Engine(unplanned).run(feeds)
    np.testing.assert_array_equal(out_planned["y"], out_unplanned["y"])
    saved = without_plan["peak_device_bytes"] - with_plan["peak_device_bytes"]
    assert saved >= memory["unplanned_bytes"] - memory["arena_bytes"] - 64 * len(planned.steps)
    assert with_plan["planned_peak_bytes"] == memory["peak_bytes"]


def test_arena_offsets_never_overlap_while_alive(transformer):
    from npu_compiler.passes.memory import lifetimes

    plan = npu_compiler.compile_model(transformer[0], SKU, batch=2)
    offsets = plan.memory["offsets"]
    spans = {}
    for index, step in enumerate(plan.steps):
        for name in step["outputs"]:
            if name in offsets:
                spans[name] = [index, index]
        for name in step["inputs"]:
            if name in spans:
                spans[name][1] = index
    sizes = {n: int(np.prod(plan.values[n]["shape"])) * np.dtype(plan.values[n]["dtype"]).itemsize
             for n in offsets}
    names = sorted(offsets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if spans[a][0] <= spans[b][1] and spans[b][0] <= spans[a][1]:
                assert offsets[a] + sizes[a] <= offsets[b] or offsets[b] + sizes[b] <= offsets[a]
    assert callable(lifetimes)


def test_plan_cache_hits_on_the_same_inputs_only(tmp_path):
    from npu_compiler.compile import compile_cached

    model = conv_block_model()
    first, status = compile_cached(model, SKU, cache_dir=tmp_path)
    again, status_again = compile_cached(model, SKU, cache_dir=tmp_path)
    assert (status, status_again) == ("miss", "hit")
    assert again.to_json() == first.to_json()
    assert compile_cached(model, SKU, precision="fp16", cache_dir=tmp_path)[1] == "miss"
    assert compile_cached(model, "npu-dc", cache_dir=tmp_path)[1] == "miss"
    assert compile_cached(conv_block_model(seed=1), SKU, cache_dir=tmp_path)[1] == "miss"
