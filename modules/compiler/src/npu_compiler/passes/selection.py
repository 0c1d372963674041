"""Kernel selection: each node gets opslib's autotuned kernel and tile configuration for the
target SKU; the kernel key and attributes the plan and the engine use are built here."""

from __future__ import annotations

import npu_opslib
from npu_compiler.errors import CompileError, UnsupportedOperator
from npu_compiler.ir import RUN_TIME_COMPILED, Graph, Node
from npu_compiler.passes.registry import compiler_pass
from npu_compiler.passes.shapes import unknown_shape_reason

# ONNX's layout; assign_layout may put spatial kernels in the SKU's (node.layout).
ONNX_LAYOUT = "NCHW"


def kernel_key(graph: Graph, node: Node) -> npu_opslib.KernelKey:
    shapes = []
    for name in node.inputs:
        if not name:
            continue
        shape = graph.value(name).shape
        if shape is None:
            raise CompileError(f"shape of value {name!r} (input of {node.describe()}) is "
                               f"unknown after shape inference: {unknown_shape_reason(graph, name)}")
        shapes.append(shape)
    return npu_opslib.KernelKey(node.op_type, tuple(shapes), graph.node_precision(node),
                                node.layout, node.fusion_name)


def kernel_attrs(node: Node) -> dict:
    if not node.fusion:
        return dict(node.attrs)
    return {**node.attrs, npu_opslib.EPILOGUE_ATTRS: list(node.epilogue_attrs)}


@compiler_pass("select_kernels")
def select_kernels(graph: Graph) -> Graph:
    """Each node gets opslib's autotuned kernel and tile configuration for the target SKU."""
    if graph.sku is None:
        raise CompileError("select_kernels needs a target SKU")
    tried = 0
    for node in graph.nodes:
        if node.op_type in RUN_TIME_COMPILED:
            # Its subgraphs are compiled and costed by the engine for the branch it takes and
            # the iterations it runs (control_flow.py); nothing to select here.
            node.kernel, node.config, node.cost = "ControlFlow", {}, {"total_cycles": 0}
            continue
        key = kernel_key(graph, node)
        try:
            selection = npu_opslib.select(graph.sku, key, kernel_attrs(node))
        except npu_opslib.UnsupportedOperator as exc:
            raise UnsupportedOperator(node.op_type, node.name, str(exc)) from None
        except npu_opslib.OpslibError as exc:
            raise CompileError(f"{node.describe()}: {exc}") from None
        node.kernel = selection.kernel.name
        node.config = selection.config.to_dict()
        node.cost = {"total_cycles": selection.cost.total_cycles}
        tried += selection.candidates
    cycles = sum(node.cost["total_cycles"] for node in graph.nodes)
    graph.note(f"selected {len(graph.nodes)} kernels from {tried} candidate configurations; "
               f"modelled {cycles} cycles", kernels=len(graph.nodes), candidates=tried,
               modelled_cycles=cycles)
    return graph
