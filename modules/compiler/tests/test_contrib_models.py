"""Whole models as onnxruntime's own tools leave them, through `python -m npu_compiler run
--json --inputs`, matching onnxruntime: static QOperator quantization (QLinearAdd, QLinearMul,
QLinearSigmoid, QLinearConcat, QLinearGlobalAveragePool, QGemm; exact), dynamic quantization
of an LSTM (DynamicQuantizeLSTM) and the graphs onnxruntime saves after its own fusions
(DynamicQuantizeMatMul, FusedConv, QuickGelu, Gelu, FusedMatMul)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)

RNG = np.random.default_rng(0)


def weight(name, *shape, scale=0.3):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32),
                                   name)


def save(path, nodes, inputs, initializers):
    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                           for n, s in inputs],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=9), path)
    return path


def cnn(path):
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "r1"], ["s"]),
             helper.make_node("Sigmoid", ["s"], ["sg"]), helper.make_node("Mul", ["sg", "s"], ["m"]),
             helper.make_node("Concat", ["m", "r1"], ["cat"], axis=1),
             helper.make_node("GlobalAveragePool", ["cat"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["out"], transB=1)]
    return save(path, nodes, [("x", [1, 3, 16, 16])],
                [weight("w1", 8, 3, 3, 3), weight("b1", 8, scale=0.1),
                 weight("w2", 8, 8, 3, 3, scale=0.15), weight("b2", 8, scale=0.1),
                 weight("fw", 10, 16), weight("fb", 10)])


def lstm(path):
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["y", "yh", "yc"], hidden_size=16),
             helper.make_node("Squeeze", ["yh", "axis"], ["h"]),
             helper.make_node("MatMul", ["h", "wo"], ["out"])]
    return save(path, nodes, [("x", [6, 2, 8])],
                [weight("W", 1, 64, 8), weight("R", 1, 64, 16), weight("B", 1, 128, scale=0.1),
                 weight("wo", 16, 10), numpy_helper.from_array(np.array([0], np.int64), "axis")])


def mlp(path):
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"]),
             helper.make_node("Add", ["a", "b1"], ["ab"]), helper.make_node("Relu", ["ab"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["out"])]
    return save(path, nodes, [("x", [4, 32])],
                [weight("w1", 32, 64), weight("b1", 64), weight("w2", 64, 10)])


def ffn(path):
    """MatMul + bias, GELU spelled with Erf, a transposed weight and a scale."""
    constants = [numpy_helper.from_array(np.array(v, np.float32), n)
                 for n, v in (("sqrt2", np.sqrt(2)), ("one", 1.0), ("half", 0.5),
                              ("scale", 0.125))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"]),
             helper.make_node("Add", ["a", "b1"], ["ab"]),
             helper.make_node("Div", ["ab", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"]), helper.make_node("Mul", ["ab", "e1"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["g"]),
             helper.make_node("Transpose", ["w2"], ["w2t"], perm=[1, 0]),
             helper.make_node("MatMul", ["g", "w2t"], ["mm"]),
             helper.make_node("Mul", ["mm", "scale"], ["out"])]
    return save(path, nodes, [("x", [2, 8, 32]), ("w2", [16, 64])],
                [weight("w1", 32, 64), weight("b1", 64)] + constants)


class Samples(CalibrationDataReader):
    def __init__(self, shape):
        self.samples = iter([{"x": RNG.standard_normal(shape).astype(np.float32)}
                             for _ in range(8)])

    def get_next(self):
        return next(self.samples, None)


def static_qoperator(src, dst):
    quantize_static(src, dst, Samples((1, 3, 16, 16)), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def dynamic(src, dst):
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8)


def ort_fused(src, dst):
    """The graph onnxruntime runs after its own (extended) fusions, as it saves it."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def dynamic_then_fused(src, dst):
    dynamic(src, src.with_suffix(".q.onnx"))
    ort_fused(src.with_suffix(".q.onnx"), dst)


MODELS = [
    ("cnn-static-qoperator", cnn, static_qoperator, 0.0,
     {"QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearConcat", "QLinearGlobalAveragePool",
      "QGemm"}),
    ("lstm-dynamic", lstm, dynamic, 1e-2, {"DynamicQuantizeLSTM"}),  # see contrib_cases
    ("mlp-dynamic-fused", mlp, dynamic_then_fused, 1e-5, {"DynamicQuantizeMatMul"}),
    ("cnn-fused", cnn, ort_fused, 1e-5, {"FusedConv", "QuickGelu"}),
    ("ffn-fused", ffn, ort_fused, 1e-5, {"Gelu", "FusedMatMul"}),
]


@pytest.mark.parametrize("name,build,transform,atol,contrib", MODELS,
                         ids=[m[0] for m in MODELS])
def test_tool_written_model_matches_onnxruntime_through_the_cli(tmp_path, name, build,
                                                                transform, atol, contrib):
    RNG.bit_generator.state = np.random.default_rng(0).bit_generator.state  # any order
    model = tmp_path / f"{name}.onnx"
    transform(build(tmp_path / "float.onnx"), model)
    ops = Counter(n.op_type for n in onnx.load(model).graph.node if n.domain == "com.microsoft")
    assert contrib <= set(ops), f"the tool wrote {dict(ops)}"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = {i.name: RNG.standard_normal(i.shape).astype(np.float32)
             for i in session.get_inputs()}
    np.savez(tmp_path / "inputs.npz", **feeds)
    expected = session.run(["out"], feeds)[0]
    result = subprocess.run(
        [sys.executable, "-m", "npu_compiler", "run", str(model), "--sku", "npu-dc", "--json",
         "--no-cache", "--inputs", str(tmp_path / "inputs.npz"),
         "--save-outputs", str(tmp_path / "outputs.npz")],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "outputs.npz")["out"], expected, atol=atol,
                               rtol=atol)
    profile = json.loads(result.stdout)["simulated"]["ops"]
    ran = {op["op_type"].removeprefix("com.microsoft.") for op in profile
           if op["op_type"].startswith("com.microsoft.") and op["cycles"] > 0}
    assert contrib <= ran
