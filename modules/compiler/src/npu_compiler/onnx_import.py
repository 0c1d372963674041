"""ONNX model -> IR: load (clear errors for bad files), infer shapes, check every operator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

import npu_opslib
from npu_compiler.errors import CompileError, ModelLoadError, UnsupportedOperator
from npu_compiler.ir import Graph, Node, Value

# Operators whose semantics changed with the opset; the importer states the old ones with
# attributes opslib's kernels understand.
COERCED_SOFTMAX_BEFORE = 13
COERCED_2D_OPS = ("Softmax", "LogSoftmax", "Hardmax")  # flattened to 2-D before opset 13
RESIZE_ROI_SINCE = 11  # Resize-10 takes (X, scales); later ones (X, roi, scales, sizes)


def load_model(model) -> tuple[onnx.ModelProto, str]:
    """The ModelProto and a name for messages."""
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "<model>"
    path = Path(model)
    if not path.is_file():
        raise ModelLoadError(f"cannot read model {path}: no such file")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf raises several types for corrupt bytes
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"cannot load model {path}: not a valid ONNX file ({first_line})")
    if not proto.graph.node:
        raise ModelLoadError(f"cannot load model {path}: the graph has no nodes")
    return proto, str(path)


def _dims(type_proto) -> tuple[int, ...] | None:
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape") or any(
            not d.HasField("dim_value") for d in tensor.shape.dim):
        return None
    return tuple(int(d.dim_value) for d in tensor.shape.dim)


def _dtype(type_proto) -> str | None:
    elem = type_proto.tensor_type.elem_type
    if not elem:
        return None
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem)).name


def _input_shape(value: onnx.ValueInfoProto, batch: int | None) -> tuple[int, ...]:
    """A feed's concrete shape: the first (batch) dim is `batch` when given (1 when symbolic),
    any other symbolic dim is an error naming it."""
    dims = []
    for i, dim in enumerate(value.type.tensor_type.shape.dim):
        if i == 0 and (batch is not None or not dim.HasField("dim_value")):
            dims.append(batch or 1)
        elif dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        else:
            raise CompileError(f"input {value.name!r} has symbolic dimension "
                               f"{dim.dim_param or '?'} at axis {i}; only the batch axis "
                               "may be symbolic")
    return tuple(dims)


def _attribute(attr: onnx.AttributeProto):
    if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return None  # subgraph operators are reported unsupported by the operator check
    value = helper.get_attribute_value(attr)
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


DEFAULT_DOMAINS = ("", "ai.onnx")


def _check_operators(proto: onnx.ModelProto) -> None:
    """Every operator has a kernel: a built-in one, or for an operator of a custom domain
    one registered from outside opslib (entry point group `npu_opslib.kernels`)."""
    for index, node in enumerate(proto.graph.node):
        name = node.name or f"{node.op_type}_{index}"
        op_type = npu_opslib.resolve_op_type(node.domain, node.op_type)
        if not npu_opslib.is_supported(op_type):
            raise UnsupportedOperator(op_type, name)


def import_model(model, *, batch: int | None = None) -> Graph:
    """The IR of `model`; shapes beyond the inputs' come from the shape_inference pass."""
    proto, source = load_model(model)
    _check_operators(proto)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
    name = proto.graph.name or Path(source).stem
    graph = Graph(name=name, nodes=[], inputs=[], outputs=[o.name for o in proto.graph.output],
                  values={}, constants={}, opset=opset, source=source)
    for init in proto.graph.initializer:
        graph.set_constant(init.name, numpy_helper.to_array(init))
    # Initializers listed as graph inputs (IR < 4 style) are weights, not feeds.
    for value in proto.graph.input:
        if value.name not in graph.constants:
            graph.inputs.append(value.name)
            graph.values[value.name] = Value(value.name, _input_shape(value, batch),
                                             _dtype(value.type))
    for info in proto.graph.output:
        graph.values[info.name] = Value(info.name, None, _dtype(info.type))
    for index, node in enumerate(proto.graph.node):
        graph.nodes.append(_node(node, index, opset))
    return graph


def _node(node: onnx.NodeProto, index: int, opset: int) -> Node:
    attrs = {a.name: _attribute(a) for a in node.attribute}
    inputs, outputs = list(node.input), list(node.output)
    if node.op_type in COERCED_2D_OPS and opset < COERCED_SOFTMAX_BEFORE:
        attrs.setdefault("axis", 1)
        attrs["coerce_2d"] = 1
    elif node.op_type == "Split" and "split" not in attrs and (
            len(inputs) < 2 or not inputs[1]):
        # Without sizes a Split makes one equal part per output.
        attrs.setdefault("num_outputs", len(outputs))
    elif node.op_type == "Resize" and opset < RESIZE_ROI_SINCE:
        inputs = [inputs[0], "", inputs[1]]
        attrs.setdefault("coordinate_transformation_mode", "asymmetric")
        attrs.setdefault("nearest_mode", "floor")
    elif node.op_type == "MaxPool" and len(outputs) > 1 and outputs[1]:
        attrs["with_indices"] = 1  # the argmax is only computed when someone reads it
    name = node.name or f"{node.op_type}_{index}"
    # An omitted output before a used one still has a position: name it, so every output
    # keeps its place (kernels return their outputs in order).
    last = max((i for i, o in enumerate(outputs) if o), default=-1)
    outputs = [o or f"{name}/unused_output_{i}" if i < last else o
               for i, o in enumerate(outputs)]
    domain = "" if node.domain in DEFAULT_DOMAINS else node.domain
    # A custom domain's op type is the kernel's registry key (`com.microsoft.Gelu`): passes
    # that match ONNX's `Gelu` by name leave it alone, kernels are found by it.
    return Node(name=name, op_type=npu_opslib.resolve_op_type(domain, node.op_type),
                inputs=inputs, outputs=outputs, attrs=attrs, domain=domain)
