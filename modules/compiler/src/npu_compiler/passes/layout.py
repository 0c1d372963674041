"""Layout assignment: activations of spatial kernels in the SKU's preferred layout.

ONNX graphs are NCHW. On a SKU that prefers NHWC, each spatial kernel (convolution, pooling,
normalization) runs in NHWC; elementwise ops and channel concatenation between them follow
whatever layout their inputs have, so a chain of them needs one Transpose in and one out
rather than two per kernel. Every other op reads NCHW (a Transpose is inserted where needed,
once per value), and graph outputs stay NCHW."""

from __future__ import annotations

import numpy as np

import npu_opslib
from npu_compiler.ir import Graph, Node
from npu_compiler.passes.registry import compiler_pass

NCHW, NHWC = "NCHW", "NHWC"
PERMS = {NHWC: (0, 2, 3, 1), NCHW: (0, 3, 1, 2)}  # from the other layout to the key
ELEMENTWISE = {"Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "Elu", "HardSigmoid", "Exp",
               "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Identity", "Gelu",
               "Add", "Sub", "Mul", "Div", "Pow", "Sum", "Max", "Min", "Mean"}


def _permuted(shape, layout: str):
    return None if shape is None else tuple(shape[i] for i in PERMS[layout])


class _Assignment:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.layout: dict[str, str] = {}  # values held in NHWC
        self.copies: dict[tuple[str, str], str] = {}
        self.nodes: list[Node] = []
        self.inserted = 0

    def of(self, value: str) -> str:
        return self.layout.get(value, NCHW)

    def is_activation(self, value: str) -> bool:
        shape = self.graph.value(value).shape
        return value not in self.graph.constants and shape is not None and len(shape) == 4

    def convert(self, value: str, target: str) -> str:
        """`value` in `target` layout: itself, or a transposed copy (made once)."""
        if not value or self.of(value) == target or not self.is_activation(value):
            return value
        key = (value, target)
        if key not in self.copies:
            name = f"{value}/{target.lower()}"
            source = self.graph.value(value)
            self.graph.value(name).shape = _permuted(source.shape, target)
            self.graph.value(name).dtype = source.dtype
            self.nodes.append(Node(f"{name}/transpose", "Transpose", [value], [name],
                                   {"perm": list(PERMS[target])}))
            self.layout[name] = target
            self.copies[key] = name
            self.inserted += 1
        return self.copies[key]

    def logical_shape(self, value: str):
        """The shape of `value` in NCHW terms, whatever layout it is held in."""
        shape = self.graph.value(value).shape
        return _permuted(shape, NCHW) if self.of(value) == NHWC else shape

    def set_output(self, node: Node, layout: str) -> None:
        out = node.outputs[0]
        if layout == NHWC:
            value = self.graph.value(out)
            value.shape = _permuted(value.shape, NHWC)
            self.layout[out] = NHWC

    def constant_in_nhwc(self, name: str) -> str | None:
        """A constant operand of an elementwise op, broadcast the NHWC way (None if it
        cannot be: more than 4 dims)."""
        array = self.graph.constants[name]
        if array.ndim > 4:
            return None
        if array.ndim <= 1 and array.size == 1:
            return name
        padded = array.reshape((1,) * (4 - array.ndim) + array.shape)
        new = f"{name}/nhwc"
        if new not in self.graph.constants:
            self.graph.set_constant(new, np.ascontiguousarray(padded.transpose(PERMS[NHWC])))
        return new


def _spatial(graph: Graph, node: Node) -> bool:
    if not npu_opslib.is_supported(node.op_type):
        return False
    shape = graph.value(node.inputs[0]).shape if node.inputs else None
    return npu_opslib.get_kernel(node.op_type).layout_sensitive() and shape is not None and \
        len(shape) == 4 and len(node.outputs) == 1


def _follow(assign: _Assignment, node: Node) -> bool:
    """Run an elementwise op or a channel Concat in NHWC if an input already is."""
    activations = [x for x in node.inputs if x and x not in assign.graph.constants]
    if not activations or not any(assign.of(x) == NHWC for x in activations):
        return False
    out_shape = assign.graph.value(node.outputs[0]).shape
    if not all(assign.is_activation(x) for x in activations) or len(node.outputs) != 1:
        return False
    if node.op_type == "Concat":
        if int(node.attrs.get("axis", 0)) % 4 != 1:
            return False
        node.attrs = {**node.attrs, "axis": 3}
    elif node.op_type not in ELEMENTWISE or any(
            assign.logical_shape(x) != out_shape for x in activations):
        return False  # broadcasting between activations: left in NCHW
    inputs = []
    for x in node.inputs:
        if x in assign.graph.constants:
            x = assign.constant_in_nhwc(x)
            if x is None:
                return False
        inputs.append(assign.convert(x, NHWC))
    node.inputs = inputs
    assign.set_output(node, NHWC)
    return True


@compiler_pass("assign_layout")
def assign_layout(graph: Graph) -> Graph:
    """Spatial kernels in the SKU's preferred layout, transposes only at layout boundaries."""
    preferred = getattr(graph.sku, "layout", NCHW)
    if preferred == NCHW:
        graph.note("the SKU prefers NCHW, the graph's own layout: no change")
        return graph
    assign = _Assignment(graph)
    spatial = followed = 0
    for node in graph.nodes:
        if _spatial(graph, node):
            node.inputs = [assign.convert(node.inputs[0], NHWC)] + node.inputs[1:]
            node.layout = NHWC
            assign.set_output(node, NHWC)
            spatial += 1
        elif _follow(assign, node):
            followed += 1
        else:
            node.inputs = [assign.convert(x, NCHW) for x in node.inputs]
        assign.nodes.append(node)
    graph.nodes = assign.nodes
    for index, out in enumerate(graph.outputs):
        if assign.of(out) == NHWC:
            _rename_output(graph, assign, out)
    naive = 2 * spatial
    graph.note(f"{spatial} spatial kernels in NHWC, {followed} elementwise/concat ops follow; "
               f"{assign.inserted} transposes inserted ({max(naive - assign.inserted, 0)} "
               f"fewer than converting around each kernel)",
               nhwc_kernels=spatial, transposes_inserted=assign.inserted,
               transposes_eliminated=max(naive - assign.inserted, 0))
    return graph


def _rename_output(graph: Graph, assign: _Assignment, out: str) -> None:
    """The producer writes an internal NHWC value; a Transpose writes the NCHW graph output."""
    internal = f"{out}/nhwc_result"
    value = graph.values.pop(out)
    graph.values[internal] = value
    for node in graph.nodes:
        node.inputs = [internal if x == out else x for x in node.inputs]
        node.outputs = [internal if x == out else x for x in node.outputs]
    graph.value(out).shape = _permuted(value.shape, NCHW)
    graph.value(out).dtype = value.dtype
    graph.nodes.append(Node(f"{out}/transpose", "Transpose", [internal], [out],
                            {"perm": list(PERMS[NCHW])}))
    assign.inserted += 1
