"""compile_model: ONNX in, plan out."""

from __future__ import annotations

from npu_driver import load_sku

from npu_compiler.ir import Graph
from npu_compiler.onnx_import import import_model
from npu_compiler.passes import run_pipeline
from npu_compiler.plan import Plan, check_precision


def compile_model(model, sku, *, precision: str = "fp32", batch: int | None = None,
                  pipeline=None) -> Plan:
    """Import `model` (path or ModelProto), run the pass pipeline for `sku`, return the plan."""
    check_precision(precision)
    target = load_sku(sku)
    graph: Graph = import_model(model, batch=batch)
    graph.sku = target
    graph.precision = precision
    graph, pass_log = run_pipeline(graph, pipeline)
    return Plan.from_graph(graph, pass_log)
