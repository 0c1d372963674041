"""The shared per-operator suite: every case is one ONNX node, run by opslib's functional
`run_reference` and by onnx's reference evaluator, on small seeded random inputs.

Any backend can run it: `check_case` takes the function under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import npu_opslib

RNG = np.random.default_rng(1234)


def rand(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def ints(*values):
    return np.array(values, dtype=np.int64)


@dataclass
class Case:
    op_type: str
    inputs: list  # numpy arrays; None for an omitted optional input
    attrs: dict = field(default_factory=dict)
    opset: int = 13
    kernel_attrs: dict = field(default_factory=dict)  # what the importer adds for this opset
    n_outputs: int = 1
    id: str = ""
    # onnx's evaluator departs from the spec for opset-9 Softmax (per axis), LRN (loops over
    # the batch, not the channels), BatchNormalization, LSTM's sequence lengths (outputs past
    # a sequence's end are not zeroed) and grouped 1-D ConvTranspose, and has no GlobalLpPool;
    # those are checked on onnxruntime.
    reference: str = "onnx"


def bools(*shape):
    return RNG.uniform(size=shape) > 0.5


def randint(*shape, low=-5, high=5, dtype=np.int32):
    return RNG.integers(low, high, size=shape).astype(dtype)


# Operators added in opslib 1.1 (opslib-api 1.1), and opset-specific forms.
LATER_OPSET_CASES = [
    Case("Equal", [randint(3, 4), randint(4)]),
    Case("Less", [rand(3, 4), rand(3, 1)]),
    Case("GreaterOrEqual", [rand(2, 3), rand(2, 3)], opset=16),
    Case("And", [bools(2, 3), bools(2, 3)]),
    Case("Xor", [bools(2, 3), bools(3)]),
    Case("Not", [bools(4)]),
    Case("Where", [bools(3, 1), rand(3, 4), rand(4)], opset=16),
    Case("BitShift", [np.array([1, 4, 16], np.uint32), np.array([1, 2, 3], np.uint32)],
         {"direction": "RIGHT"}),
    Case("BitwiseAnd", [randint(2, 3), randint(2, 3)], opset=18),
    Case("Mod", [randint(6, low=-9, high=9), np.array([4, -3, 5, 2, -7, 3], np.int32)]),
    Case("Mod", [rand(5) * 5, rand(5, low=0.5, high=2)], {"fmod": 1}, id="fmod"),
    Case("IsNaN", [np.array([1.0, np.nan, -np.inf], np.float32)]),
    Case("IsInf", [np.array([1.0, np.nan, -np.inf, np.inf], np.float32)],
         {"detect_positive": 0}),
    Case("Sign", [rand(5)]),
    Case("Erf", [rand(4, 5, low=-4, high=4)]),
    Case("Gelu", [rand(3, 4, low=-3, high=3)], opset=20),
    Case("Gelu", [rand(3, 4, low=-3, high=3)], {"approximate": "tanh"}, opset=20, id="tanh"),
    Case("Softplus", [rand(3, 4)]),
    Case("Softsign", [rand(3, 4)]),
    Case("Selu", [rand(3, 4)]),
    Case("Celu", [rand(3, 4)], {"alpha": 0.5}),
    Case("Mish", [rand(3, 4)], opset=18),
    Case("HardSwish", [rand(3, 4, low=-4, high=4)], opset=14),
    Case("ThresholdedRelu", [rand(3, 4)], {"alpha": 0.3}),
    Case("Shrink", [rand(3, 4)], {"lambd": 0.3, "bias": 0.1}),
    Case("PRelu", [rand(2, 3, 4), rand(3, 1)]),
    Case("Sin", [rand(4)]),
    Case("Acosh", [rand(4, low=1, high=3)]),
    Case("Round", [np.array([0.5, 1.5, -2.5, 2.4], np.float32)]),
    Case("LogSoftmax", [rand(2, 3, 4)], {"axis": 1}),
    Case("Hardmax", [rand(2, 3, 4)], {"axis": -1}),
    Case("CastLike", [rand(2, 3, low=-5, high=5), np.zeros(1, np.int64)], opset=15),
    Case("ReduceSum", [rand(2, 3, 4), ints(1)], {"keepdims": 0}),
    Case("ReduceSum", [rand(2, 3, 4)], {"axes": [0, 2]}, opset=11, id="attr"),
    Case("ReduceMean", [rand(2, 3, 4), ints(-1)], opset=18),
    Case("ReduceMean", [rand(2, 3, 4)], {"axes": [1]}, opset=13, id="attr"),
    Case("ReduceMax", [randint(2, 3, 4), ints(1)], opset=18),
    Case("ReduceMin", [rand(2, 3, 4)], {"keepdims": 0}, opset=18, id="all"),
    Case("ReduceProd", [rand(2, 3), ints(0)], opset=18),
    Case("ReduceL2", [rand(2, 3, 4), ints(2)], opset=18),
    Case("ReduceLogSumExp", [rand(2, 3, 4), ints(1)], opset=18),
    Case("ReduceSumSquare", [rand(2, 3, 4), ints(0, 2)], opset=18),
    Case("ArgMax", [rand(3, 4)], {"axis": 1}),
    Case("ArgMin", [np.array([[1, 0, 0], [2, 2, 1]], np.float32)],
         {"axis": 1, "keepdims": 0, "select_last_index": 1}, id="last"),
    Case("CumSum", [rand(3, 4), np.array(1, np.int64)], {"exclusive": 1, "reverse": 1}),
    Case("TopK", [rand(3, 6), ints(2)], {"axis": 1}, n_outputs=2),
    Case("TopK", [rand(3, 6), ints(3)], {"largest": 0}, n_outputs=2, id="smallest"),
    Case("GatherElements", [rand(3, 4), ints(0, 2, 1, -1, 2, 1, 0, 0).reshape(2, 4)],
         {"axis": 0}),
    Case("GatherND", [rand(2, 3, 4), ints(1, 0, 0, 2).reshape(2, 2)]),
    Case("GatherND", [rand(2, 3, 4), ints(2, 0).reshape(2, 1)], {"batch_dims": 1},
         id="batch"),
    Case("ScatterElements", [rand(3, 4), ints(1, 0, 2, 0).reshape(1, 4), rand(1, 4)],
         {"axis": 0, "reduction": "add"}, opset=18),
    Case("ScatterND", [rand(4, 3), ints(1, 3).reshape(2, 1), rand(2, 3)]),
    Case("OneHot", [ints(0, 2, -1), np.array(4, np.int64), np.array([0, 5], np.float32)]),
    Case("Trilu", [rand(4, 5), np.array(1, np.int64)], {"upper": 0}, opset=14),
    Case("Range", [np.array(1, np.int32), np.array(10, np.int32), np.array(3, np.int32)]),
    Case("Tile", [rand(2, 3), ints(2, 1)]),
    Case("DepthToSpace", [rand(1, 8, 2, 3)], {"blocksize": 2, "mode": "CRD"}),
    Case("SpaceToDepth", [rand(1, 2, 4, 6)], {"blocksize": 2}),
    Case("EyeLike", [rand(3, 4)], {"k": 1}),
    Case("Einsum", [rand(2, 3, 4), rand(2, 4, 5)], {"equation": "bij,bjk->bik"}, opset=12),
    Case("LayerNormalization", [rand(2, 3, 4), rand(4), rand(4)], opset=17, n_outputs=3),
    Case("InstanceNormalization", [rand(2, 3, 4, 4), rand(3), rand(3)]),
    Case("GroupNormalization", [rand(2, 4, 3), rand(4), rand(4)], {"num_groups": 2},
         opset=21),
    Case("LpNormalization", [rand(3, 4)], {"axis": 0}),
    Case("MeanVarianceNormalization", [rand(2, 3, 4, 4)]),
    Case("ConvTranspose", [rand(1, 2, 3, 3), rand(2, 3, 3, 3), rand(3)],
         {"strides": [2, 2], "pads": [1, 0, 1, 1], "output_padding": [1, 1]}),
    Case("ConvTranspose", [rand(1, 4, 4), rand(4, 1, 3)], {"group": 2, "dilations": [2]},
         id="grouped1d", reference="onnxruntime"),
    Case("LpPool", [rand(1, 2, 5, 5)], {"kernel_shape": [3, 3], "p": 3, "pads": [1, 1, 1, 1]},
         opset=18),
    Case("GlobalLpPool", [rand(1, 2, 3, 3)], reference="onnxruntime"),
    Case("Resize", [rand(1, 1, 3, 4), None, np.array([1, 1, 2, 1.5], np.float32)],
         {"mode": "linear"}, id="linear"),
    Case("Resize", [rand(1, 1, 4, 4), None, None, ints(1, 1, 3, 2)],
         {"mode": "cubic", "coordinate_transformation_mode": "align_corners"}, id="cubic"),
    Case("Resize", [rand(1, 1, 8, 8), None, np.array([0.5, 0.5], np.float32)],
         {"mode": "linear", "antialias": 1, "axes": [2, 3]}, opset=18, id="antialias"),
    Case("Resize", [rand(1, 1, 2, 3), None, np.array([1, 1, 2, 3], np.float32)],
         {"mode": "nearest", "nearest_mode": "round_prefer_ceil",
          "coordinate_transformation_mode": "asymmetric"}, id="nearest"),
    Case("RNN", [rand(3, 2, 4), rand(1, 5, 4), rand(1, 5, 5), rand(1, 10)],
         {"hidden_size": 5}, n_outputs=2),
    Case("GRU", [rand(3, 2, 4), rand(2, 15, 4), rand(2, 15, 5), rand(2, 30)],
         {"hidden_size": 5, "direction": "bidirectional", "linear_before_reset": 1},
         n_outputs=2),
    Case("LSTM", [rand(4, 2, 3), rand(1, 16, 3), rand(1, 16, 4), rand(1, 32),
                  np.array([4, 2], np.int32), None, None, rand(1, 12)],
         {"hidden_size": 4}, n_outputs=3, reference="onnxruntime"),
    Case("QuantizeLinear", [rand(2, 3) * 10, np.array([0.1, 0.2, 0.05], np.float32),
                            np.array([128, 120, 130], np.uint8)], {"axis": 1}),
    Case("DequantizeLinear", [randint(2, 3, low=0, high=255, dtype=np.uint8),
                              np.array(0.05, np.float32), np.array(100, np.uint8)],
         opset=21),
    Case("MatMulInteger", [randint(2, 3, low=0, high=255, dtype=np.uint8),
                           randint(3, 4, low=-100, high=100, dtype=np.int8),
                           np.array(12, np.uint8), np.array(3, np.int8)]),
    Case("QLinearMatMul", [randint(2, 3, low=0, high=255, dtype=np.uint8),
                           np.array(0.02, np.float32), np.array(120, np.uint8),
                           randint(3, 4, low=0, high=255, dtype=np.uint8),
                           np.array(0.01, np.float32), np.array(130, np.uint8),
                           np.array(0.05, np.float32), np.array(128, np.uint8)]),
    Case("NegativeLogLikelihoodLoss", [rand(3, 4), ints(1, 3, 0)],
         {"reduction": "sum", "ignore_index": 3}),
    Case("SoftmaxCrossEntropyLoss", [rand(3, 4), ints(1, 3, 0), rand(4, low=0.5)],
         n_outputs=2),
    Case("Attention", [rand(2, 3, 4, 8), rand(2, 1, 5, 8), rand(2, 1, 5, 8),
                       bools(4, 5)], {"is_causal": 0}, opset=23, id="gqa_mask"),
    Case("Attention", [rand(1, 4, 12), rand(1, 4, 12), rand(1, 4, 12)],
         {"q_num_heads": 3, "kv_num_heads": 3, "is_causal": 1}, opset=23, id="causal3d"),
]

CASES = [
    Case("Add", [rand(2, 3, 4), rand(3, 1)]),
    Case("Sub", [rand(2, 3), rand(2, 3)]),
    Case("Mul", [rand(1, 4, 2, 2), rand(4, 1, 1)]),
    Case("Div", [rand(3, 4), rand(3, 4, low=0.5, high=2.0)]),
    Case("Div", [ints(7, -7, 9), ints(2, 2, -4)], id="int"),
    Case("Pow", [rand(3, 4, low=0.1, high=2.0), rand(3, 4)]),
    Case("Sum", [rand(2, 3), rand(2, 3), rand(3)]),
    Case("Max", [rand(2, 3), rand(2, 3)]),
    Case("Min", [rand(2, 3), rand(1, 3)]),
    Case("Mean", [rand(2, 3), rand(2, 3), rand(2, 3)]),
    Case("Relu", [rand(2, 3, 4)]),
    Case("LeakyRelu", [rand(2, 3, 4)], {"alpha": 0.2}),
    Case("Sigmoid", [rand(5, 6, low=-6, high=6)]),
    Case("Tanh", [rand(5, 6, low=-3, high=3)]),
    Case("Exp", [rand(4)]),
    Case("Log", [rand(4, low=0.1, high=3)]),
    Case("Sqrt", [rand(4, low=0.1, high=3)]),
    Case("Neg", [rand(4)]),
    Case("Abs", [rand(4)]),
    Case("Reciprocal", [rand(4, low=0.5, high=2)]),
    Case("Elu", [rand(3, 4)], {"alpha": 0.7}),
    Case("HardSigmoid", [rand(3, 4, low=-4, high=4)]),
    Case("Clip", [rand(3, 4), np.array(-0.5, np.float32), np.array(0.4, np.float32)]),
    Case("Clip", [rand(3, 4)], {"min": -0.2, "max": 0.3}, opset=9, id="attrs"),
    Case("Softmax", [rand(2, 3, 5)], {"axis": 1}),
    Case("Softmax", [rand(2, 3, 5)], {"axis": 1}, opset=9, kernel_attrs={"coerce_2d": 1},
         id="opset9", reference="onnxruntime"),
    Case("Identity", [rand(3, 2)]),
    Case("Dropout", [rand(3, 2)], {"ratio": 0.5}, opset=9),
    Case("Cast", [rand(3, 2, low=-5, high=5)], {"to": TensorProto.INT32}),
    Case("Gemm", [rand(4, 5), rand(6, 5), rand(6)], {"transB": 1}),
    Case("Gemm", [rand(5, 4), rand(5, 6), rand(4, 6)],
         {"transA": 1, "alpha": 0.5, "beta": 2.0}, id="transA"),
    Case("MatMul", [rand(2, 3, 4), rand(4, 5)]),
    Case("MatMul", [rand(4), rand(2, 4, 3)], id="vector"),
    Case("Conv", [rand(2, 3, 7, 7), rand(4, 3, 3, 3), rand(4)], {"pads": [1, 1, 1, 1]}),
    Case("Conv", [rand(1, 4, 9, 8), rand(6, 2, 3, 2)],
         {"group": 2, "strides": [2, 1], "pads": [1, 0, 2, 1], "dilations": [1, 2]},
         id="grouped"),
    Case("Conv", [rand(1, 3, 6, 6), rand(5, 3, 1, 1), rand(5)], id="pointwise"),
    Case("Conv", [rand(1, 2, 7, 7), rand(3, 2, 3, 3)], {"auto_pad": "SAME_UPPER",
                                                          "strides": [2, 2]}, id="same"),
    Case("Conv", [rand(1, 4, 6, 6), rand(4, 1, 3, 3)], {"group": 4}, id="depthwise"),
    Case("Conv", [rand(1, 2, 9), rand(3, 2, 3)], {"strides": [2]}, id="1d"),
    Case("MaxPool", [rand(1, 2, 7, 7)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                         "pads": [1, 1, 1, 1]}),
    Case("MaxPool", [rand(1, 2, 8, 8)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                         "ceil_mode": 1}, id="ceil"),
    Case("AveragePool", [rand(1, 2, 7, 7)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                             "pads": [1, 1, 1, 1]}),
    Case("AveragePool", [rand(1, 2, 7, 7)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                             "count_include_pad": 1}, id="include_pad"),
    Case("AveragePool", [rand(1, 2, 8, 8)], {"kernel_shape": [2, 2], "strides": [2, 2]},
         id="plain"),
    Case("GlobalAveragePool", [rand(2, 3, 4, 5)]),
    Case("GlobalMaxPool", [rand(2, 3, 4, 5)]),
    Case("BatchNormalization", [rand(2, 3, 4, 4), rand(3), rand(3), rand(3),
                                rand(3, low=0.5, high=1.5)], {"epsilon": 1e-3},
         reference="onnxruntime"),
    Case("LRN", [rand(1, 7, 3, 3)], {"size": 3, "alpha": 1e-2, "beta": 0.75, "bias": 1.0},
         reference="onnxruntime"),
    Case("Concat", [rand(1, 2, 3), rand(1, 4, 3)], {"axis": 1}),
    Case("Reshape", [rand(2, 3, 4), ints(0, -1)]),
    Case("Flatten", [rand(2, 3, 4)], {"axis": 2}),
    Case("Transpose", [rand(2, 3, 4)], {"perm": [2, 0, 1]}),
    Case("Unsqueeze", [rand(3, 4), ints(0, 3)]),
    Case("Unsqueeze", [rand(3)], {"axes": [1, 2]}, opset=9, id="attr"),
    Case("Squeeze", [rand(1, 3, 1, 4), ints(2)]),
    Case("Squeeze", [rand(1, 3, 1, 4)], id="all"),
    Case("Pad", [rand(2, 3), ints(0, 1, 1, 2)]),
    Case("Pad", [rand(2, 3)], {"pads": [1, 0, 0, 1], "mode": "reflect"}, opset=9, id="reflect"),
    Case("Shape", [rand(2, 3, 4)]),
    Case("Size", [rand(2, 3, 4)]),
    Case("Gather", [rand(5, 3), ints(0, 4, 2)], {"axis": 0}),
    Case("Gather", [rand(2, 5), ints(1, 3)], {"axis": 1}, id="axis1"),
    Case("Slice", [rand(4, 6), ints(1, 0), ints(3, 6), ints(0, 1), ints(1, 2)]),
    Case("Expand", [rand(3, 1), ints(2, 3, 4)]),
    Case("Split", [rand(6, 2), ints(2, 4)], n_outputs=2),
    Case("Constant", [], {"value": helper.make_tensor("v", TensorProto.FLOAT, [2],
                                                      [1.5, -2.0])}),
    Case("ConstantOfShape", [ints(2, 3)],
         {"value": helper.make_tensor("v", TensorProto.FLOAT, [1], [0.25])}),
    Case("Flatten", [rand(2, 3, 4)], {"axis": -1}, id="negative"),
    Case("Split", [rand(7, 2)], {"num_outputs": 3}, opset=18, n_outputs=3, id="uneven"),
    Case("MaxPool", [rand(1, 2, 5, 5)], {"kernel_shape": [2, 2], "strides": [2, 2],
                                         "pads": [1, 1, 0, 0]},
         kernel_attrs={"with_indices": 1}, n_outputs=2, id="indices"),
    Case("BatchNormalization", [rand(2, 3, 4), rand(3), rand(3), rand(3),
                                rand(3, low=0.5, high=1.5)], {"training_mode": 1},
         opset=15, n_outputs=3, id="training"),
    *LATER_OPSET_CASES,
]


def case_id(case: Case) -> str:
    return case.op_type + (f"-{case.id}" if case.id else "")


def kernel_attrs(case: Case) -> dict:
    """Attributes as the compiler hands them to kernels (tensors as numpy arrays)."""
    out = {}
    for name, value in case.attrs.items():
        out[name] = onnx.numpy_helper.to_array(value) if isinstance(
            value, onnx.TensorProto) else value
    return {**out, **case.kernel_attrs}


def expected(case: Case) -> list[np.ndarray]:
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(case.inputs)]
    outputs = [f"out{i}" for i in range(case.n_outputs)]
    node = helper.make_node(case.op_type, names, outputs, **case.attrs)
    graph = helper.make_graph([node], "case", [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
        for n, x in zip(names, case.inputs) if n], [
        helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    feeds = {n: x for n, x in zip(names, case.inputs) if n}
    if case.reference == "onnxruntime":
        import onnxruntime

        for output in model.graph.output:  # these cases keep their input's element type
            output.type.tensor_type.elem_type = model.graph.input[0].type.tensor_type.elem_type
        model.ir_version = min(model.ir_version, 9)
        session = onnxruntime.InferenceSession(model.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        return session.run(None, feeds)
    return ReferenceEvaluator(model).run(None, feeds)


def check_case(case: Case, run) -> None:
    want = expected(case)
    got = run(case.op_type, case.inputs, kernel_attrs(case))
    assert len(got) >= len(want)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_onnx_reference(case):
    check_case(case, npu_opslib.run_reference)


def test_every_op_of_the_light_models_is_covered():
    light_ops = {"Add", "AveragePool", "BatchNormalization", "Concat", "ConstantOfShape", "Conv",
                 "Dropout", "Gemm", "GlobalAveragePool", "LRN", "MaxPool", "Mul", "Relu",
                 "Reshape", "Softmax", "Sum", "Transpose", "Unsqueeze"}
    assert light_ops <= {case.op_type for case in CASES}
    assert light_ops <= set(npu_opslib.supported_ops())
