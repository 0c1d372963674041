"""Shape inference: shapes and dtypes of every value, from onnx's shape inference (and, for
custom operators, from their kernels)."""

from __future__ import annotations

import functools

import numpy as np
import onnx
from onnx import helper, numpy_helper

import npu_opslib
from npu_compiler.errors import CompileError
from npu_compiler.ir import Graph, Node, Value
from npu_compiler.onnx_import import DECLARED_INPUTS, SUBGRAPH_OPSET, decode_subgraph, is_subgraph
from npu_compiler.passes.registry import compiler_pass

SMALL_CONSTANT = 4096


def to_onnx(graph: Graph) -> onnx.ModelProto:
    """The graph as an ONNX model (plain ONNX nodes only: before fusion)."""
    def info(name):
        value = graph.values.get(name) or Value(name)
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(value.dtype)) if value.dtype else 0
        return helper.make_tensor_value_info(name, elem, value.shape)

    nodes = []
    for node in graph.nodes:
        # A custom domain's op type is its kernel's registry key (`com.microsoft.Gelu`):
        # onnx is given the bare name in that domain.
        op_type = node.op_type.removeprefix(f"{node.domain}.") if node.domain else node.op_type
        nodes.append(helper.make_node(op_type, declared_inputs(node), node.outputs,
                                      name=node.name, domain=node.domain or None,
                                      **onnx_attrs(node)))
    custom = [node for node in graph.nodes
              if node.domain or _unknown_to_onnx(node.op_type, graph.opset)]
    # onnx knows nothing of custom operators: what their kernels said of their outputs
    # (custom_shapes) is stated, for the values downstream.
    value_info = [info(o) for node in custom for o in node.outputs
                  if o and graph.value(o).shape is not None and o not in graph.outputs]
    # Shape inference needs the values of small (shape-like) constants only; large weights
    # travel as typed inputs, which saves serializing hundreds of MB.
    small = {n for n, a in graph.constants.items() if a.size <= SMALL_CONSTANT}
    initializers = [numpy_helper.from_array(graph.constants[n], n) for n in small]
    inputs = [info(n) for n in graph.inputs] + [info(n) for n in graph.constants
                                                if n not in small]
    onnx_graph = helper.make_graph(nodes, graph.name, inputs,
                                   [info(n) for n in graph.outputs], initializers,
                                   value_info=value_info)
    opsets = [helper.make_opsetid("", graph.opset)]
    opsets += [helper.make_opsetid(d, 1) for d in sorted({n.domain for n in custom} - {""})]
    return helper.make_model(onnx_graph, opset_imports=opsets)


def declared_inputs(node: Node) -> list[str]:
    """A node's inputs as ONNX declares them (a control-flow node's outer-scope values
    follow its own in the IR)."""
    count = node.attrs.get(DECLARED_INPUTS)
    return node.inputs if count is None else node.inputs[:count]


def onnx_attrs(node: Node) -> dict:
    attrs = {}
    for key, value in node.attrs.items():
        if key in ("coerce_2d", DECLARED_INPUTS, SUBGRAPH_OPSET):
            continue
        if isinstance(value, np.ndarray):
            value = numpy_helper.from_array(np.asarray(value))
        elif is_subgraph(value):
            value = decode_subgraph(value)
        attrs[key] = value
    return attrs


@compiler_pass("shape_inference")
def shape_inference(graph: Graph) -> Graph:
    """Shapes and dtypes of every value, from onnx's shape inference (with data propagation,
    so shapes computed by Shape/Gather/Concat chains are known)."""
    if any(node.fusion for node in graph.nodes):
        raise CompileError("shape_inference must run before fuse_epilogues")
    known_before = sum(1 for v in graph.values.values() if v.shape is not None)
    _onnx_shapes(graph)
    # Custom operators' outputs come from their kernels; what follows them needs another
    # round of onnx's inference (as many as custom operators chained, at most).
    while custom_shapes(graph):
        _onnx_shapes(graph)
    _check_reshapes(graph)
    known = sum(1 for v in graph.values.values() if v.shape is not None)
    graph.note(f"{known} values with known shapes ({known - known_before} new)")
    return graph


def _check_reshapes(graph: Graph) -> None:
    """onnx's inference takes a constant target shape as it is, whatever the input holds: a
    model whose Reshape fixes the batch ([1, 2048]) compiled at batch 2 and failed only when
    it ran. Refused here, when both shapes are known."""
    for node in graph.nodes:
        if node.op_type != "Reshape" or not node.inputs or not node.outputs:
            continue
        before, after = graph.value(node.inputs[0]).shape, graph.value(node.outputs[0]).shape
        if before is None or after is None:
            continue
        if int(np.prod(before)) != int(np.prod(after)):
            raise CompileError(f"{node.describe()}: cannot reshape {tuple(before)} "
                               f"({int(np.prod(before))} elements) into {tuple(after)}")


def custom_shapes(graph: Graph) -> int:
    """Shapes and dtypes of custom operators' outputs (onnx has no schema for them) from their
    kernels' `infer_outputs` (inputs by position, constants with their values); returns how
    many nodes got shapes."""
    done = 0
    for node in graph.nodes:
        outputs = [o for o in node.outputs if o]
        if not (node.domain or _unknown_to_onnx(node.op_type, graph.opset)) or all(
                graph.value(o).shape is not None for o in outputs):
            continue
        inputs = [graph.value(name) if name else None for name in node.inputs]
        if any(value is not None and value.shape is None for value in inputs):
            continue
        infos = [None if v is None else npu_opslib.TensorInfo(
            v.shape, v.dtype, graph.constants.get(v.name)) for v in inputs]
        try:
            inferred = npu_opslib.get_kernel(node.op_type)().infer_outputs(infos, node.attrs)
        except npu_opslib.OpslibError as exc:
            message = str(exc).removeprefix(f"{node.op_type}: ")
            raise CompileError(f"{node.describe()}: {message}") from None
        for name, (shape, dtype) in zip(node.outputs, inferred):
            if name:
                value = graph.value(name)
                value.shape = tuple(shape)
                value.dtype = value.dtype or dtype
        done += 1
    return done


@functools.lru_cache(maxsize=None)
def _unknown_to_onnx(op_type: str, opset: int) -> bool:
    """Whether onnx has no schema for `op_type` at `opset`: onnxruntime's optimizer writes
    LayerNormalization (its own, in the default domain) into opset-13 models."""
    try:
        onnx.defs.get_schema(op_type, opset)
    except onnx.defs.SchemaError:
        return True
    return False


def _onnx_shapes(graph: Graph) -> None:
    try:
        inferred = onnx.shape_inference.infer_shapes(to_onnx(graph), data_prop=True)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CompileError(f"shape inference failed on {graph.source}: {first_line}")
    for info in list(inferred.graph.value_info) + list(inferred.graph.output):
        tensor = info.type.tensor_type
        if not tensor.HasField("shape") or any(
                not d.HasField("dim_value") for d in tensor.shape.dim):
            continue
        value = graph.value(info.name)
        if value.shape is None:
            value.shape = tuple(int(d.dim_value) for d in tensor.shape.dim)
        if value.dtype is None and tensor.elem_type:
            value.dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name


def unknown_shape_reason(graph: Graph, name: str) -> str:
    """Why a shape is unknown: the first node, walking back, whose inputs all have known shapes
    but whose output shape depends on the values of inputs known only when the model runs."""
    producers = graph.producers()
    seen = set()
    while name in producers and name not in seen:
        seen.add(name)
        node = producers[name]
        unknown = [x for x in node.inputs if x and graph.value(x).shape is None]
        if not unknown:
            data = [x for x in node.inputs[1:] if x and x not in graph.constants]
            reads = f" (the values of {', '.join(map(repr, data))})" if data else ""
            return (f"{node.describe()} computes the shape of {name!r} from data{reads}, "
                    "which is known only when the model runs")
        name = unknown[0]
    return f"value {name!r} has no known shape (give the input shapes with --shape)"
