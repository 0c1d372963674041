"""QDQ models (pass fuse_qdq): onnxruntime's quantize_static output, DequantizeLinear ->
Conv/MatMul -> QuantizeLinear, runs as QLinearConv/QLinearMatMul and equals onnxruntime's
integers (which fuse the same groups); without the pass the float product rounds a few
elements one step off."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)

import npu_compiler

SKU = "npu-edge"
WITHOUT = [p for p in npu_compiler.DEFAULT_PIPELINE if p != "fuse_qdq"]


def float_model():
    """conv 3x3 + bias + relu -> conv 1x1 -> flatten -> matmul: a tiny CNN head."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in (
        ("w1", rng.normal(0, 0.3, (8, 3, 3, 3))), ("b1", rng.normal(0, 0.2, 8)),
        ("w2", rng.normal(0, 0.3, (4, 8, 1, 1))), ("b2", rng.normal(0, 0.2, 4)),
        ("m", rng.normal(0, 0.2, (4 * 6 * 6, 10))))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"]),
             helper.make_node("Flatten", ["c2"], ["f"]),
             helper.make_node("MatMul", ["f", "m"], ["y"])]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", 1, [1, 3, 6, 6])],
                              [helper.make_tensor_value_info("y", 1, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


class _Feeds(CalibrationDataReader):
    def __init__(self, feeds):
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


@pytest.fixture(scope="module")
def qdq_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qdq")
    onnx.save(float_model(), folder / "float.onnx")
    rng = np.random.default_rng(1)
    samples = [{"x": rng.uniform(-1, 1, (1, 3, 6, 6)).astype(np.float32)} for _ in range(4)]
    quantize_static(str(folder / "float.onnx"), str(folder / "qdq.onnx"), _Feeds(samples),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)
    return onnx.load(folder / "qdq.onnx")


def _run(model, x, pipeline=None):
    plan = npu_compiler.compile_model(model, SKU, pipeline=pipeline)
    outputs, profile = npu_compiler.Engine(plan).run({"x": x})
    return plan, outputs["y"], profile


def test_qdq_groups_run_as_integer_ops_and_equal_onnxruntime(qdq_model):
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 6, 6)).astype(np.float32)
    want = ort.InferenceSession(qdq_model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    plan, got, profile = _run(qdq_model, x)
    kinds = [step["op_type"] for step in plan.steps]
    assert kinds.count("QLinearConv") == 2 and kinds.count("QLinearMatMul") == 1
    assert "Conv" not in kinds and "MatMul" not in kinds
    np.testing.assert_array_equal(got, want)
    fused = next(e for e in plan.pass_log if e["name"] == "fuse_qdq")
    assert fused["facts"]["fused"] == {"QLinearConv": 2, "QLinearMatMul": 1}
    assert all(op["unit"] == "array" for op in profile["ops"] if op["op_type"].startswith("QLinear"))


def test_without_the_pass_the_model_still_runs_in_float(qdq_model):
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 6, 6)).astype(np.float32)
    plan, got, _ = _run(qdq_model, x, WITHOUT)
    assert "QLinearConv" not in [step["op_type"] for step in plan.steps]
    assert got.shape == (1, 10)


def test_a_relu_the_quantize_does_not_clamp_stays_and_blocks_the_fusion():
    """Conv -> Relu -> Q with a zero point above the type's minimum: the Relu is real."""
    rng = np.random.default_rng(3)
    c = lambda name, a: numpy_helper.from_array(np.asarray(a), name)  # noqa: E731
    inits = [c("xs", np.float32(0.02)), c("xz", np.uint8(128)),
             c("wq", rng.integers(-60, 60, (2, 3, 1, 1)).astype(np.int8)),
             c("ws", np.float32(0.01)), c("wz", np.int8(0)),
             c("ys", np.float32(0.001)), c("yz", np.uint8(100))]
    nodes = [helper.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"]),
             helper.make_node("Conv", ["xd", "wd"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "ys", "yz"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 2, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", 2, [1, 2, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    x = rng.integers(0, 256, (1, 3, 4, 4)).astype(np.uint8)
    plan = npu_compiler.compile_model(model, SKU)
    kinds = [step["op_type"] for step in plan.steps]
    assert "QLinearConv" not in kinds and "Relu" in " ".join(kinds + [
        step["fusion"] for step in plan.steps])
    got = npu_compiler.Engine(plan).run({"x": x})[0]["y"]
    assert got.min() >= 100  # the Relu's zero, at the zero point
