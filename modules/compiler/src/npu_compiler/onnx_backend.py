"""The stack as an ONNX backend (`onnx.backend.base.Backend`): compile with `compile_model`, run
on the simulated NPU with `Engine`. onnx's `BackendTest` imports this module and calls its
module-level `prepare`, `run_model`, `run_node` and `supports_device`.

The SKU comes from the environment variable `NPU_BACKEND_SKU` (default `npu-dc`).

A plan has static shapes, so a prepared model is compiled on its first run for the shapes of
the feeds it is given (and again for new shapes). Inputs that carry shapes rather than data
(Reshape's target shape, Slice's starts, a reduction's axes, TopK's k...) are bound into that
compilation as constants, the way an accelerator compiler needs shape tensors at build time.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from npu_compiler.compile import compile_model
from npu_compiler.engine import Engine
from npu_compiler.errors import CompileError

SKU_ENV = "NPU_BACKEND_SKU"
DEFAULT_SKU = "npu-dc"

# Element types the stack computes in (TensorProto enum names).
SUPPORTED_TYPES = {"FLOAT", "DOUBLE", "FLOAT16", "INT8", "INT16", "INT32", "INT64", "UINT8",
                   "UINT16", "UINT32", "UINT64", "BOOL"}

# (op type, input position) of inputs that are shapes, axes or counts: they decide the output
# shapes, so a compilation binds them. Positions past an op's inputs are ignored.
SHAPE_OPERANDS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4),
    "Pad": (1, 3), "Unsqueeze": (1,), "Squeeze": (1,), "Split": (1,), "TopK": (1,),
    "Range": (0, 1, 2), "ConstantOfShape": (0,), "OneHot": (1,), "Resize": (1, 2, 3),
    "Upsample": (1,), "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,),
    "ReduceMin": (1,), "ReduceProd": (1,), "ReduceL1": (1,), "ReduceL2": (1,),
    "ReduceLogSum": (1,), "ReduceLogSumExp": (1,), "ReduceSumSquare": (1,),
    "CenterCropPad": (1, 2), "Col2Im": (1, 2), "AffineGrid": (1,), "DFT": (1, 2),
    "STFT": (1, 2, 3), "BlackmanWindow": (0,), "HannWindow": (0,), "HammingWindow": (0,),
    "MelWeightMatrix": (0, 1, 2), "RandomNormalLike": (), "EyeLike": (),
}


class UnsupportedType(CompileError):
    """A model input or output whose type the stack does not compute in (strings,
    sequences, optionals, 8- and 4-bit floats...)."""


def backend_sku() -> str:
    return os.environ.get(SKU_ENV) or DEFAULT_SKU


def _type_name(type_proto: onnx.TypeProto) -> str:
    kind = type_proto.WhichOneof("value")
    if kind != "tensor_type":
        return kind or "undefined"
    return onnx.TensorProto.DataType.Name(type_proto.tensor_type.elem_type)


def check_types(model: onnx.ModelProto) -> None:
    """Raise UnsupportedType naming the first graph input or output of another type."""
    for role, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            name = _type_name(value.type)
            if role == "output" and name == "UNDEFINED":
                continue  # left to shape inference
            if name not in SUPPORTED_TYPES:
                raise UnsupportedType(f"{role} {value.name!r} has type {name}; supported: "
                                      f"tensors of {', '.join(sorted(SUPPORTED_TYPES))}")


def _shape_operands(model: onnx.ModelProto) -> set[str]:
    names = set()
    for node in model.graph.node:
        for position in SHAPE_OPERANDS.get(node.op_type, ()):
            if position < len(node.input) and node.input[position]:
                names.add(node.input[position])
    return names


def specialize(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` whose inputs have the feeds' shapes, with shape-carrying inputs bound
    to their fed values."""
    special = onnx.ModelProto()
    special.CopyFrom(model)
    bound = _shape_operands(model)
    inputs = []
    for value in special.graph.input:
        array = feeds.get(value.name)
        if array is None:
            inputs.append(value)
        elif value.name in bound:
            special.graph.initializer.append(numpy_helper.from_array(array, value.name))
        else:
            dims = value.type.tensor_type.shape
            dims.Clear()
            for size in array.shape:
                dims.dim.add().dim_value = int(size)
            inputs.append(value)
    del special.graph.input[:]
    special.graph.input.extend(inputs)
    return special


class NpuBackendRep(BackendRep):
    """A model prepared for the NPU: compiled per input signature on first use, then run."""

    def __init__(self, model: onnx.ModelProto, sku: str):
        self.model = model
        self.sku = sku
        initialized = {init.name for init in model.graph.initializer}
        self.input_names = [v.name for v in model.graph.input if v.name not in initialized]
        self.output_names = [v.name for v in model.graph.output]
        self._engines: dict[tuple, tuple[Engine, list[str]]] = {}

    def _feeds(self, inputs) -> dict[str, np.ndarray]:
        if isinstance(inputs, dict):
            return {name: np.asarray(array) for name, array in inputs.items()}
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        return {name: np.asarray(array) for name, array in zip(self.input_names, inputs)}

    def _engine(self, feeds: dict[str, np.ndarray]) -> tuple[Engine, list[str]]:
        bound = _shape_operands(self.model)
        signature = tuple(
            (name, array.shape, array.dtype.str, array.tobytes() if name in bound else b"")
            for name, array in sorted(feeds.items()))
        if signature not in self._engines:
            plan = compile_model(specialize(self.model, feeds), self.sku)
            fed = [spec["name"] for spec in plan.inputs]
            self._engines[signature] = (Engine(plan), fed)
        return self._engines[signature]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        feeds = self._feeds(inputs)
        engine, fed = self._engine(feeds)
        outputs, _ = engine.run({name: feeds[name] for name in fed})
        return namedtupledict("Outputs", self.output_names)(
            *[outputs[name] for name in self.output_names])


class NpuBackend(Backend):
    """onnx's Backend interface over compile_model + Engine on the simulated NPU."""

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        try:
            check_types(model)
        except UnsupportedType:
            return False
        return True

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> NpuBackendRep:
        check_types(model)
        return NpuBackendRep(model, kwargs.get("sku") or backend_sku())

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info=None, **kwargs: Any) -> tuple[Any, ...]:
        """One node as a model of its own (opset `opset_version`, default onnx's newest)."""
        arrays = [np.asarray(x) for x in (inputs.values() if isinstance(inputs, dict)
                                          else inputs)]
        names = [name for name in node.input if name]
        graph_inputs = [helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)
            for name, array in zip(names, arrays)]
        if outputs_info:
            graph_outputs = [helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)
                for name, (dtype, shape) in zip(node.output, outputs_info)]
        else:
            graph_outputs = [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED,
                                                           None) for name in node.output]
        graph = helper.make_graph([node], f"node_{node.op_type}", graph_inputs, graph_outputs)
        opset = int(kwargs.get("opset_version") or onnx.defs.onnx_opset_version())
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        rep = NpuBackendRep(model, kwargs.get("sku") or backend_sku())
        return rep.run(dict(zip(names, arrays)))

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """The simulated NPU stands behind onnx's CPU device (the only one its tests use)."""
        return Device(device).type == DeviceType.CPU


prepare = NpuBackend.prepare
run_model = NpuBackend.run_model
run_node = NpuBackend.run_node
supports_device = NpuBackend.supports_device
is_compatible = NpuBackend.is_compatible
