"""Each pass, on small synthetic graphs: what it changed, and that results still match
onnxruntime. Every test here fails if its pass is taken out of DEFAULT_PIPELINE."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

import npu_compiler
from compiler_models import conv_block_model, make_model, onnxruntime_outputs, random_feeds

SKU = "npu-edge"


def compiled(model):
    plan = npu_compiler.compile_model(model, SKU)
    return plan, {entry["name"]: entry for entry in reversed(plan.pass_log)}  # first runs


def run_and_compare(model, plan):
    feeds = random_feeds(model)
    outputs, _ = npu_compiler.Engine(plan).run(feeds)
    expected = onnxruntime_outputs(model, feeds)
    for name, value in expected.items():
        np.testing.assert_allclose(outputs[name], value, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def block():
    model = conv_block_model()
    plan, log = compiled(model)
    return model, plan, log


def step_ops(plan):
    return [(s["op_type"], s["fusion"]) for s in plan.steps]


def test_pipeline_result_matches_onnxruntime(block):
    model, plan, _ = block
    run_and_compare(model, plan)


def test_fold_batchnorm_and_channel_affine_leave_one_conv(block):
    _, plan, log = block
    assert "folded 1 BatchNormalization into Conv" in log["fold_batchnorm"]["changes"]
    assert "Mul into Conv x1" in log["fold_channel_affine"]["changes"][0]
    assert not {"BatchNormalization", "Mul"} & {op for op, _ in step_ops(plan)}


def test_fusion_gives_conv_add_relu_and_gemm_relu(block):
    _, plan, log = block
    ops = step_ops(plan)
    assert ("Conv", "Add+Relu") in ops and ("Gemm", "Relu") in ops
    assert "Relu" not in [op for op, _ in ops]
    assert log["fuse_epilogues"]["nodes_after"] < log["fuse_epilogues"]["nodes_before"]


def test_dropout_identity_dead_code_and_folding(block):
    _, plan, log = block
    ops = [op for op, _ in step_ops(plan)]
    assert "Dropout" not in ops and "Identity" not in ops
    assert "Sigmoid" not in ops and "ConstantOfShape" not in ops
    assert any("Sigmoid x1" in c for c in log["dead_code"]["changes"])
    assert log["dropout_to_identity"]["changes"] == ["1 Dropout -> Identity"]


def test_kernel_selection_fills_every_step(block):
    _, plan, log = block
    assert all(step["kernel"] and step["config"] is not None for step in plan.steps)
    assert "selected" in log["select_kernels"]["changes"][0]


def test_constant_folding_evaluates_shape_arithmetic():
    x_shape = [2, 3, 4]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus_one"], ["target"], axis=0),
        helper.make_node("ConstantOfShape", ["weights_shape"], ["weights"],
                         value=numpy_helper.from_array(np.full(1, 0.5, np.float32))),
        helper.make_node("Mul", ["x", "weights"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", "target"], ["y"]),
    ]
    inits = [("zero", np.array(0, np.int64)), ("axes", np.array([0], np.int64)),
             ("minus_one", np.array([-1], np.int64)),
             ("weights_shape", np.array([4], np.int64))]
    model = make_model(nodes, [("x", x_shape)], [("y", [2, 12])], inits)
    plan, log = compiled(model)
    assert [s["op_type"] for s in plan.steps] == ["Mul", "Reshape"]
    assert "ConstantOfShape x1" in log["constant_folding"]["changes"][0]
    assert plan.values["y"]["shape"] == [2, 12]
    run_and_compare(model, plan)


def test_shape_inference_fills_every_intermediate(block):
    _, plan, log = block
    for step in plan.steps:
        for name in step["inputs"] + step["outputs"]:
            assert plan.values[name]["shape"], name
    assert "values with known shapes" in log["shape_inference"]["changes"][0]


def test_compiler_pass_registry_runs_custom_pipelines():
    @npu_compiler.compiler_pass("count_relus_for_test")
    def count_relus(graph):
        graph.note(f"{sum(n.op_type == 'Relu' for n in graph.nodes)} relus")
        return graph

    try:
        pipeline = [p for p in npu_compiler.DEFAULT_PIPELINE if p != "fuse_epilogues"]
        plan = npu_compiler.compile_model(conv_block_model(), SKU,
                                          pipeline=pipeline[:-1] + ["count_relus_for_test",
                                                                    "select_kernels"])
        assert plan.pass_log[-2]["changes"] == ["2 relus"]
        assert ("Relu", "") in step_ops(plan)
    finally:
        npu_compiler.PASSES.pop("count_relus_for_test")


def test_unknown_pass_is_a_compile_error():
    with pytest.raises(npu_compiler.CompileError, match="unknown compiler pass 'nope'"):
        npu_compiler.compile_model(conv_block_model(), SKU, pipeline=["nope"])
