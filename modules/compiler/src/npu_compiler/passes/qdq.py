"""QDQ models (onnxruntime's quantize_static default, QAT exports): DequantizeLinear ->
Conv/MatMul -> QuantizeLinear becomes the integer operator it stands for (QLinearConv,
QLinearMatMul), as onnxruntime's QDQ transformer does, so the product is int8 x int8 ->
int32 on the array and one requantization, rather than a float product of dequantized
values rounded once more by the QuantizeLinear (which lands one step off onnxruntime on a
few elements per layer, and would run the layer in float on the hardware).

A match needs what the integer operator can express: per-tensor activation scale and zero
point, constant 8-bit weights (per tensor, or per output channel / column), a bias that is
absent or a DequantizeLinear of int32 constants at scale x_scale * w_scale, and the
QuantizeLinear the only reader of the product (through a Relu only when the QuantizeLinear's
zero point is the type's minimum, so its clamp is the Relu)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from npu_compiler.ir import Graph, Node
from npu_compiler.passes.registry import compiler_pass, summary

EIGHT_BIT = ("uint8", "int8")


class _Quantized:
    """A DequantizeLinear's operands: quantized value, scale and zero point names."""

    def __init__(self, node: Node):
        self.node = node
        self.value, self.scale = node.inputs[0], node.inputs[1]
        self.zero = node.inputs[2] if len(node.inputs) > 2 else ""
        self.axis = int(node.attrs.get("axis", 1))


def _dequantized(graph: Graph, producers: dict, value: str) -> _Quantized | None:
    node = producers.get(value)
    if node is None or node.op_type != "DequantizeLinear" or node.attrs.get("block_size"):
        return None
    return _Quantized(node)


def _per_tensor(graph: Graph, q: _Quantized) -> bool:
    scale = graph.constants.get(q.scale)
    zero = graph.constants.get(q.zero) if q.zero else None
    return scale is not None and scale.size == 1 and (not q.zero or (
        zero is not None and zero.size == 1))


def _dtype(graph: Graph, q: _Quantized) -> str | None:
    if q.zero:
        zero = graph.constants.get(q.zero)
        return None if zero is None else zero.dtype.name
    if q.value in graph.constants:
        return graph.constants[q.value].dtype.name
    return graph.value(q.value).dtype


def _zero_point(graph: Graph, q: _Quantized, dtype: str, owner: str, role: str) -> str:
    """The zero point's name; a zero constant of `dtype` when the node leaves it out."""
    if q.zero:
        return q.zero
    name = f"{owner}::{role}_zero_point"
    graph.set_constant(name, np.zeros((), np.dtype(dtype)))
    return name


def _weights(graph: Graph, q: _Quantized, channel_axis: int) -> bool:
    """Constant 8-bit weights, per tensor or per `channel_axis`."""
    weights = graph.constants.get(q.value)
    scale = graph.constants.get(q.scale)
    if weights is None or weights.dtype.name not in EIGHT_BIT or scale is None:
        return False
    if scale.size == 1:
        return True
    return q.axis % weights.ndim == channel_axis % weights.ndim and \
        scale.size == weights.shape[channel_axis]


def _output(graph: Graph, users: dict, node: Node) -> tuple[Node, list[Node]] | None:
    """The QuantizeLinear that alone reads `node`'s output (and a Relu it makes redundant)."""
    between: list[Node] = []
    value = node.outputs[0]
    reader = graph.sole_consumer(value, users)
    if reader is not None and reader.op_type == "Relu":
        between, value = [reader], reader.outputs[0]
        reader = graph.sole_consumer(value, users)
    if reader is None or reader.op_type != "QuantizeLinear":
        return None
    if len(reader.inputs) < 3 or not reader.inputs[2]:
        return None  # its dtype would be output_dtype's: not worth the cases
    scale = graph.constants.get(reader.inputs[1])
    zero = graph.constants.get(reader.inputs[2])
    if scale is None or zero is None or scale.size != 1 or zero.size != 1 or \
            zero.dtype.name not in EIGHT_BIT:
        return None
    if between and int(zero.reshape(())) != np.iinfo(zero.dtype).min:
        return None
    return reader, between


def _bias(graph: Graph, producers: dict, conv: Node, x: _Quantized, w: _Quantized) -> str | None:
    """The int32 bias QLinearConv adds (`""` when there is none); None when it cannot."""
    if len(conv.inputs) < 3 or not conv.inputs[2]:
        return ""
    b = _dequantized(graph, producers, conv.inputs[2])
    if b is None or graph.constants.get(b.value) is None:
        return None
    values, scale = graph.constants[b.value], graph.constants.get(b.scale)
    zero = graph.constants.get(b.zero) if b.zero else np.zeros((), np.int32)
    if values.dtype != np.int32 or scale is None or zero is None or np.any(zero != 0):
        return None
    expected = np.float32(graph.constants[x.scale].reshape(())) * \
        graph.constants[w.scale].astype(np.float32).reshape(-1)
    if not np.allclose(np.broadcast_to(scale.reshape(-1), expected.shape), expected,
                       rtol=1e-6, atol=0):
        return None
    return b.value


def _fuse(graph: Graph, producers: dict, users: dict, node: Node) -> list[Node] | None:
    """The QLinear node replacing `node` and the nodes it makes dead, or None."""
    if len(node.inputs) < 2 or node.fusion:
        return None
    x = _dequantized(graph, producers, node.inputs[0])
    w = _dequantized(graph, producers, node.inputs[1])
    if x is None or w is None or not _per_tensor(graph, x):
        return None
    x_dtype = _dtype(graph, x)
    if x_dtype not in EIGHT_BIT:
        return None
    weights = graph.constants.get(w.value)
    channel_axis = 0 if node.op_type == "Conv" else -1
    if weights is None or (node.op_type == "MatMul" and weights.ndim != 2) or \
            not _weights(graph, w, channel_axis):
        return None
    out = _output(graph, users, node)
    if out is None:
        return None
    quantize, between = out
    operands = [x.value, x.scale, _zero_point(graph, x, x_dtype, node.name, "x"),
                w.value, w.scale, _zero_point(graph, w, weights.dtype.name, node.name, "w"),
                quantize.inputs[1], quantize.inputs[2]]
    if node.op_type == "Conv":
        bias = _bias(graph, producers, node, x, w)
        if bias is None:
            return None
        operands += [bias] if bias else []
        op_type = "QLinearConv"
    else:
        op_type = "QLinearMatMul"
    fused = Node(node.name, op_type, operands, [quantize.outputs[0]], dict(node.attrs))
    return [fused, node, *between, quantize]


@compiler_pass("fuse_qdq")
def fuse_qdq(graph: Graph) -> Graph:
    """DequantizeLinear -> Conv/MatMul -> QuantizeLinear into QLinearConv/QLinearMatMul (the
    DequantizeLinears stay for any other reader; dead code removes the rest)."""
    producers, users = graph.producers(), graph.consumers()
    fused: Counter = Counter()
    for node in list(graph.nodes):
        if node.op_type not in ("Conv", "MatMul") or node.domain:
            continue
        match = _fuse(graph, producers, users, node)
        if match is None:
            continue
        new, *removed = match
        position = graph.nodes.index(removed[-1])
        graph.nodes[position] = new
        gone = {id(n) for n in removed}
        graph.nodes = [n for n in graph.nodes if id(n) not in gone or n is new]
        producers, users = graph.producers(), graph.consumers()
        fused[new.op_type] += 1
    if fused:
        graph.note(f"fused {sum(fused.values())} QDQ groups ({summary(fused)})",
                   fused=dict(fused))
    return graph
