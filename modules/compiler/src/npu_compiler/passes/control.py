"""Control flow at compile time: an If whose condition is a constant becomes the nodes of the
branch it takes (ONNX names are unique across a model's subgraphs, so they move as they are).
What stays If, Loop or Scan runs on the engine (control_flow.py)."""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from npu_compiler.ir import CONTROL_FLOW, DEFERRED, Graph, Node, Value
from npu_compiler.onnx_import import (DECLARED_INPUTS, SUBGRAPH_OPSET, convert_node,
                                      decode_subgraph, encode_subgraph)
from npu_compiler.passes.folding import fold_shapes
from npu_compiler.passes.registry import compiler_pass
from npu_compiler.passes.shapes import declared_inputs, onnx_attrs, shape_inference

# The deferred step's name, and so its compiled body's graph name (control_flow.py)
DEFERRED_PREFIX = "deferred/"


def _inline(graph: Graph, node: Node, branch_name: str) -> list[Node]:
    branch = decode_subgraph(node.attrs[branch_name])
    for init in branch.initializer:
        graph.set_constant(init.name, numpy_helper.to_array(init))
    nodes = [convert_node(n, i, graph.opset) for i, n in enumerate(branch.node)]
    for inner, outer in zip(branch.output, node.outputs):
        if outer:
            graph.values.setdefault(inner.name, Value(inner.name))
            nodes.append(Node(f"{node.name}/{branch_name}/{outer}", "Identity", [inner.name],
                              [outer]))
    return nodes


# Rounds of inlining and shape folding: each round may make the conditions of the Ifs nested
# in the branches it inlined constant (silero-vad nests five levels, the last on shapes).
CONTROL_ROUNDS = 16


@compiler_pass("fold_control_flow")
def fold_control_flow(graph: Graph) -> Graph:
    """An If on a constant condition is replaced by the branch it takes; then the shapes the
    inlined branches compute are folded, which may make more conditions constant (an If on
    the rank or a dimension of a value the first branch produced), until none is left."""
    taken = []
    for _ in range(CONTROL_ROUNDS):
        inlined = _inline_constant_ifs(graph)
        if not inlined:
            break
        taken += inlined
        shape_inference(graph)  # the inlined nodes' values
        fold_shapes(graph)  # conditions computed from those shapes become constants
    if taken:
        graph.notes.clear()
        graph.facts = {}
        graph.note(f"inlined {len(taken)} If on constant conditions ({', '.join(taken)})",
                   inlined_branches=len(taken))
    return graph


def _inline_constant_ifs(graph: Graph) -> list[str]:
    taken = []
    changed = True
    while changed:  # an inlined branch may hold an If on a constant too
        changed = False
        for index, node in enumerate(graph.nodes):
            if node.op_type != "If" or node.inputs[0] not in graph.constants:
                continue
            branch = "then_branch" if bool(np.asarray(graph.constants[node.inputs[0]]).reshape(
                -1)[0]) else "else_branch"
            graph.nodes[index:index + 1] = _inline(graph, node, branch)
            taken.append(f"{node.name}: {branch}")
            changed = True
            break
    return taken


def _first_deferred(graph: Graph) -> int | None:
    """The index of the first node a kernel cannot be chosen for before the model runs: the
    producer of the first value read with an unknown shape (a control-flow node, whose
    subgraphs the engine compiles anyway, may produce it)."""
    producers = graph.producers()
    for index, node in enumerate(graph.nodes):
        unknown = [x for x in node.inputs if x and graph.value(x).shape is None]
        if not unknown:
            continue
        origins = [producers[x] for x in unknown if x in producers]
        if node.op_type in CONTROL_FLOW and all(o.op_type in CONTROL_FLOW for o in origins):
            continue
        firsts = [graph.nodes.index(o) for o in origins if o.op_type not in CONTROL_FLOW]
        return min(firsts + [index])
    return None


@compiler_pass("defer_data_shapes")
def defer_data_shapes(graph: Graph) -> Graph:
    """Nodes whose shapes depend on values known only when the model runs (a Range over a
    fed length, a Pad by fed amounts, what follows a Loop), and all after them, become one
    step the engine compiles when it runs, for the values it is fed (control_flow.py). Not
    within such a step itself: what is still unknown there is computed from data, and kernel
    selection says so, naming the node."""
    first = _first_deferred(graph)
    if first is None or graph.name.startswith(DEFERRED_PREFIX):
        return graph
    region = graph.nodes[first:]
    produced = {o for n in region for o in n.outputs if o}
    reads: dict[str, None] = {}
    for node in region:
        reads.update((x, None) for x in node.inputs if x and x not in produced)
    outputs = [o for o in graph.outputs if o in produced]
    body = helper.make_graph(
        [helper.make_node(n.op_type, declared_inputs(n), n.outputs, name=n.name,
                          domain=n.domain or None, **onnx_attrs(n)) for n in region],
        f"{graph.name}/deferred", [], [helper.make_value_info(o, _type(graph, o))
                                       for o in outputs])
    deferred = Node(f"{DEFERRED_PREFIX}{region[0].name}", DEFERRED, list(reads), outputs,
                    attrs={"body": encode_subgraph(body), DECLARED_INPUTS: 0,
                           SUBGRAPH_OPSET: graph.opset})
    graph.nodes[first:] = [deferred]
    graph.note(f"{len(region)} nodes from {region[0].describe()} on are compiled when the "
               "model runs: their shapes depend on values it is fed", deferred=len(region))
    return graph


def _type(graph: Graph, name: str):
    dtype = graph.value(name).dtype
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype)) if dtype else 0
    return helper.make_tensor_type_proto(elem, None)
