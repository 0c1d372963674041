"""Pattern fusions of transformer graphs: the decomposed layer norm becomes LayerNormalization,
the erf form of GELU becomes Gelu (which then fuses as a matmul epilogue), and
MatMul-(scale)-(mask)-Softmax-MatMul becomes one FusedAttention kernel.

Each matcher walks back from an anchor node and accepts only chains whose intermediate values
nobody else reads, so removing them changes nothing outside the pattern."""

from __future__ import annotations

import math

import numpy as np

from npu_compiler.ir import Graph, Node
from npu_compiler.passes.registry import compiler_pass

SQRT2 = math.sqrt(2.0)


class _View:
    """Producers and consumers of a graph, for matching."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.producers = graph.producers()
        self.users = graph.consumers()

    def replace(self, removed: list[Node], fused: Node) -> None:
        """`_replace` in the graph and in the view (rebuilding it per match was quadratic)."""
        _replace(self.graph, removed, fused)
        gone = {id(n) for n in removed}
        for node in removed:
            for name in node.outputs:
                self.producers.pop(name, None)
            for name in node.inputs:
                if name in self.users:
                    self.users[name] = [u for u in self.users[name] if id(u) not in gone]
        for name in fused.outputs:
            self.producers[name] = fused
        for name in fused.inputs:  # once per use, as Graph.consumers() lists them
            if name:
                self.users.setdefault(name, []).append(fused)

    def producer(self, value: str, *ops: str) -> Node | None:
        node = self.producers.get(value)
        return node if node is not None and node.op_type in ops else None

    def private(self, value: str, readers: int = 1) -> bool:
        """Only `readers` node inputs read `value`, and it is not a graph output."""
        uses = sum(n.inputs.count(value) for n in self.users.get(value, []))
        return uses == readers and value not in self.graph.outputs

    def sole_user(self, value: str, *ops: str) -> Node | None:
        users = self.users.get(value, [])
        if len(users) != 1 or not self.private(value) or users[0].op_type not in ops:
            return None
        return users[0]

    def scalar(self, value: str) -> float | None:
        array = self.graph.constants.get(value)
        if array is None or array.size != 1:
            return None
        return float(array.reshape(()))

    def other(self, node: Node, value: str) -> str | None:
        """The other operand of a binary node reading `value`."""
        if len(node.inputs) != 2 or node.inputs.count(value) != 1:
            return None
        return node.inputs[1] if node.inputs[0] == value else node.inputs[0]


def _replace(graph: Graph, removed: list[Node], fused: Node) -> None:
    """`fused` takes the place of the last removed node (its inputs are all ready there)."""
    position = max(graph.nodes.index(n) for n in removed)
    graph.nodes[position] = fused
    gone = {id(n) for n in removed}
    graph.nodes = [n for n in graph.nodes if id(n) not in gone or n is fused]


def _close(value: float | None, target: float, tolerance: float = 1e-3) -> bool:
    return value is not None and abs(value - target) <= tolerance * abs(target)


# ------------------------------------------------------------------------ layer norm
def _reduce_axes(view: _View, node: Node) -> list[int] | None:
    if node.attrs.get("keepdims", 1) != 1:
        return None
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        constant = view.graph.constants.get(node.inputs[1])
        axes = None if constant is None else constant.reshape(-1).tolist()
    return None if axes is None else [int(a) for a in axes]


def _last_axis_mean(view: _View, node: Node | None) -> bool:
    if node is None:
        return False
    shape = view.graph.value(node.inputs[0]).shape
    axes = _reduce_axes(view, node)
    return shape is not None and axes is not None and len(axes) == 1 and \
        axes[0] % len(shape) == len(shape) - 1


def _match_layernorm(view: _View, div: Node):
    """(removed nodes, x, epsilon, output, gamma, beta) of the chain ending at `div`."""
    centered, std = div.inputs
    sqrt = view.producer(std, "Sqrt")
    add_eps = sqrt and view.producer(sqrt.inputs[0], "Add")
    if not add_eps or not view.private(std) or not view.private(sqrt.inputs[0]):
        return None
    variance = next((x for x in add_eps.inputs if view.scalar(x) is None), None)
    epsilon = view.scalar(view.other(add_eps, variance) or "") if variance else None
    var_mean = view.producer(variance, "ReduceMean") if variance else None
    if epsilon is None or not _last_axis_mean(view, var_mean) or not view.private(variance):
        return None
    square = view.producer(var_mean.inputs[0], "Pow", "Mul")
    if square is None or not view.private(var_mean.inputs[0]):
        return None
    if square.op_type == "Pow" and not (square.inputs[0] == centered and
                                        _close(view.scalar(square.inputs[1]), 2.0)):
        return None
    if square.op_type == "Mul" and square.inputs != [centered, centered]:
        return None
    sub = view.producer(centered, "Sub")
    readers = 2 if square.op_type == "Pow" else 3
    if sub is None or not view.private(centered, readers):
        return None
    x, mean = sub.inputs
    mean_node = view.producer(mean, "ReduceMean")
    if not _last_axis_mean(view, mean_node) or mean_node.inputs[0] != x or \
            not view.private(mean):
        return None
    removed = [mean_node, sub, square, var_mean, add_eps, sqrt, div]
    return removed, x, epsilon


def _affine_tail(view: _View, value: str, op: str, width: int):
    """The Mul (gamma) or Add (beta) by a constant vector of the normalized width after
    `value`, if any."""
    node = view.sole_user(value, op)
    operand = view.other(node, value) if node else None
    array = view.graph.constants.get(operand) if operand else None
    if array is None or array.size != width or array.shape[-1:] != (width,):
        return None, None
    return node, array.reshape(width)


@compiler_pass("fuse_layernorm")
def fuse_layernorm(graph: Graph) -> Graph:
    """ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div (then Mul by gamma, Add beta) over the last
    axis becomes one LayerNormalization."""
    view, fused = _View(graph), 0
    for div in [n for n in graph.nodes if n.op_type == "Div"]:
        match = _match_layernorm(view, div)
        if match is None:
            continue
        removed, x, epsilon = match
        width = graph.value(x).shape[-1]
        output = div.outputs[0]
        mul, gamma = _affine_tail(view, output, "Mul", width)
        if mul is not None:
            removed.append(mul)
            output = mul.outputs[0]
        add, beta = _affine_tail(view, output, "Add", width)
        if add is not None:
            removed.append(add)
            output = add.outputs[0]
        name = f"{div.name}/layernorm"
        dtype = np.dtype(graph.value(x).dtype or "float32")
        graph.set_constant(f"{name}/scale", (gamma if gamma is not None else
                                             np.ones(width)).astype(dtype))
        graph.set_constant(f"{name}/bias", (beta if beta is not None else
                                            np.zeros(width)).astype(dtype))
        node = Node(name, "LayerNormalization", [x, f"{name}/scale", f"{name}/bias"], [output],
                    {"axis": -1, "epsilon": epsilon})
        view.replace(removed, node)
        fused += 1
    if fused:
        graph.note(f"fused {fused} layer norms (7-9 nodes each) into LayerNormalization",
                   fusions={"LayerNormalization": fused})
    return graph


# ------------------------------------------------------------------------ gelu
def _gelu_input(view: _View, erf: Node) -> tuple[str, Node] | None:
    """x and the node dividing it by sqrt(2) (or multiplying by 1/sqrt(2))."""
    scaled = view.producer(erf.inputs[0], "Div", "Mul")
    if scaled is None or not view.private(erf.inputs[0]):
        return None
    x, factor = scaled.inputs
    factor = view.scalar(factor)
    if scaled.op_type == "Div" and _close(factor, SQRT2):
        return x, scaled
    if scaled.op_type == "Mul":
        for x, operand in (scaled.inputs, scaled.inputs[::-1]):
            if _close(view.scalar(operand), 1 / SQRT2):
                return x, scaled
    return None


def _gelu_tail(view: _View, one_plus: str, x: str):
    """The Mul nodes computing x * (1 + erf) * 0.5 in any grouping, and the final output."""
    first = view.sole_user(one_plus, "Mul")
    if first is None:
        return None
    other = view.other(first, one_plus)
    if other == x or _close(view.scalar(other or ""), 0.5):
        second = view.sole_user(first.outputs[0], "Mul")
        want = 0.5 if other == x else None
        last = view.other(second, first.outputs[0]) if second else None
        if last is None or (want is not None and not _close(view.scalar(last), 0.5)) or \
                (want is None and last != x):
            return None
        return [first, second], second.outputs[0]
    half = view.producer(other, "Mul") if other else None  # (x * 0.5) * (1 + erf)
    if half is None or not view.private(other) or x not in half.inputs or \
            not _close(view.scalar(view.other(half, x) or ""), 0.5):
        return None
    return [half, first], first.outputs[0]


@compiler_pass("fuse_gelu")
def fuse_gelu(graph: Graph) -> Graph:
    """x * 0.5 * (1 + erf(x / sqrt(2))) becomes one Gelu, which then fuses into the producing
    MatMul (with its bias) as an epilogue."""
    view, fused = _View(graph), 0
    for erf in [n for n in graph.nodes if n.op_type == "Erf"]:
        found = _gelu_input(view, erf)
        add = view.sole_user(erf.outputs[0], "Add")
        if found is None or add is None or not _close(
                view.scalar(view.other(add, erf.outputs[0]) or ""), 1.0):
            continue
        x, scaled = found
        tail = _gelu_tail(view, add.outputs[0], x)
        if tail is None:
            continue
        muls, output = tail
        node = Node(f"{erf.name}/gelu", "Gelu", [x], [output], {})
        view.replace([scaled, erf, add] + muls, node)
        fused += 1
    if fused:
        graph.note(f"fused {fused} erf-form GELUs (5 nodes each) into Gelu",
                   fusions={"Gelu": fused})
    return graph


# ------------------------------------------------------------------------ attention
def _softmax_on_last_axis(graph: Graph, softmax: Node) -> bool:
    shape = graph.value(softmax.inputs[0]).shape
    return shape is not None and int(softmax.attrs.get("axis", -1)) % len(shape) == len(shape) - 1


def _match_attention(view: _View, softmax: Node):
    """(removed nodes, q, k_t, v, mask, scale, output) of the attention through `softmax`."""
    if not _softmax_on_last_axis(view.graph, softmax):
        return None
    context = view.sole_user(softmax.outputs[0], "MatMul")
    if context is None or context.inputs[0] != softmax.outputs[0]:
        return None
    removed, value, mask, scale = [softmax, context], softmax.inputs[0], None, 1.0
    node = view.producer(value, "Add")
    if node is not None and view.private(value):
        scores = next((x for x in node.inputs if view.producer(x, "MatMul", "Mul", "Div")),
                      None)
        if scores is None:
            return None
        mask, value = view.other(node, scores), scores
        removed.append(node)
    node = view.producer(value, "Mul", "Div")
    if node is not None and view.private(value):
        operand = next((x for x in node.inputs if view.scalar(x) is not None), None)
        if operand is None or node.inputs.index(operand) == 0 and node.op_type == "Div":
            return None
        factor = view.scalar(operand)
        scale = 1.0 / factor if node.op_type == "Div" else factor
        value = view.other(node, operand)
        removed.append(node)
    scores = view.producer(value, "MatMul")
    if scores is None or not view.private(value):
        return None
    removed.append(scores)
    q, k_t = scores.inputs
    return removed, q, k_t, context.inputs[1], mask, scale, context.outputs[0]


@compiler_pass("fuse_attention")
def fuse_attention(graph: Graph) -> Graph:
    """MatMul(Q, Kt) -> scale -> + mask -> Softmax -> MatMul(., V) becomes one FusedAttention
    kernel, whose scores never leave the chip."""
    view, fused = _View(graph), 0
    for softmax in [n for n in graph.nodes if n.op_type == "Softmax"]:
        match = _match_attention(view, softmax)
        if match is None:
            continue
        removed, q, k_t, v, mask, scale, output = match
        inputs = [q, k_t, v] + ([mask] if mask else [])
        node = Node(f"{softmax.name}/attention", "FusedAttention", inputs, [output],
                    {"scale": float(scale)})
        view.replace(removed, node)
        fused += 1
    if fused:
        graph.note(f"fused {fused} attention blocks (MatMul-Softmax-MatMul) into "
                   "FusedAttention", fusions={"FusedAttention": fused})
    return graph
