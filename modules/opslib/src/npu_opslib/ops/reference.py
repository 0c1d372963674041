"""Kernels whose arithmetic is onnx's own reference implementation (`onnx.reference`): the
operators few models use (signal processing, sampling grids, the newest attention and
convolution-with-state operators), for which a hand-written kernel would only restate the
specification. Each is a vector-unit pass over its inputs and outputs in the cost model, like
the other vector kernels; the functional run builds onnx's evaluator for the node once per
attribute set and input types, and reuses it."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel

LATEST = onnx.defs.onnx_opset_version()


def _attribute(value):
    if isinstance(value, np.ndarray):
        return numpy_helper.from_array(value)
    return value


def _frozen(attrs: dict) -> tuple:
    return tuple(sorted((k, repr(v) if not isinstance(v, np.ndarray) else
                         (v.dtype.str, v.shape, v.tobytes())) for k, v in attrs.items()))


_EVALUATORS: dict[tuple, tuple] = {}  # (op, opset, inputs present, dtypes, attrs) -> built
EVALUATORS_KEPT = 256


def _evaluator(op_type: str, opset: int, present: tuple, dtypes: tuple, attrs: dict,
               n_outputs: int):
    from onnx.reference import ReferenceEvaluator

    key = (op_type, opset, present, dtypes, _frozen(attrs), n_outputs)
    if key in _EVALUATORS:
        return _EVALUATORS[key]
    names = [f"i{i}" if p else "" for i, p in enumerate(present)]
    outputs = [f"o{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, names, outputs,
                            **{k: _attribute(v) for k, v in attrs.items()})
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(d)),
                                            None) for n, d in zip(names, dtypes) if n]
    graph = helper.make_graph([node], op_type, inputs,
                              [helper.make_value_info(o, onnx.TypeProto()) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if len(_EVALUATORS) >= EVALUATORS_KEPT:
        _EVALUATORS.clear()
    built = _EVALUATORS[key] = (ReferenceEvaluator(model), [n for n in names if n])
    return built


class Reference(Kernel):
    """onnx's reference implementation of `op_type`, at `opset` (the latest by default)."""

    outputs: int = 1

    def opset(self, attrs: dict) -> int:
        return LATEST

    def _run(self, *inputs, **attrs):
        present = tuple(x is not None for x in inputs)
        dtypes = tuple(np.asarray(x).dtype.str for x in inputs if x is not None)
        evaluator, names = _evaluator(self.op_type, self.opset(attrs), present, dtypes, attrs,
                                      self.outputs)
        feeds = dict(zip(names, [np.asarray(x) for x in inputs if x is not None]))
        try:
            results = evaluator.run(None, feeds)
        except Exception as exc:
            raise KernelError(f"{self.op_type}: {' '.join(str(exc).split())[:200]}") from None
        return tuple(np.asarray(r) for r in results)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]] if key.shapes else [()]

    def cost(self, sku, key, config, attrs):
        itemsize = costs.itemsize(key.precision)
        read = sum(int(np.prod(s)) for s in key.shapes)
        written = sum(int(np.prod(s)) for s in self.output_shapes(key, attrs))
        return costs.vector(sku, key.precision, max(written, read), self.ops_per_element,
                            bytes_read=read * itemsize, bytes_written=written * itemsize)


def _reference(op_type: str, outputs: int = 1, ops_per_element: int = 4, opset=None):
    cls = type(op_type, (Reference,), {"op_type": op_type, "outputs": outputs,
                                       "ops_per_element": ops_per_element,
                                       "__doc__": f"{op_type}: onnx's reference arithmetic."})
    if opset is not None:
        cls.opset = opset
    return register_kernel(cls)


# Sampling grids and image geometry.
_reference("GridSample", ops_per_element=16)
_reference("AffineGrid", ops_per_element=8)
_reference("Col2Im")
_reference("DeformConv", ops_per_element=32)
_reference("RoiAlign", ops_per_element=16)
_reference("CenterCropPad", ops_per_element=1)
# Signal processing. DFT-17 takes its axis as an attribute, DFT-20 as an input.
_reference("DFT", ops_per_element=16, opset=lambda self, attrs: 19 if "axis" in attrs else LATEST)
_reference("MelWeightMatrix")
_reference("BlackmanWindow")
_reference("HannWindow")
_reference("HammingWindow")
# Bit-level and scatter operators of recent opsets.
_reference("BitCast", ops_per_element=0)
_reference("TensorScatter", ops_per_element=0)
# Recent sequence operators (opset 24+): recurrent linear attention, convolution with state.
_reference("LinearAttention", outputs=2, ops_per_element=16)
_reference("CausalConvWithState", outputs=2, ops_per_element=8)
_reference("SwiGLU", ops_per_element=8)
