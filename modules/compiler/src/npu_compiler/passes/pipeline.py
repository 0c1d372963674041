"""The default pipeline, and the runner that applies a list of passes by name and keeps the
pass log (what each pass did, in sentences and numbers, and how long it took)."""

from __future__ import annotations

import logging
import time

from npu_compiler.errors import CompileError
from npu_compiler.ir import Graph
# Every family of passes registers its passes on import: the pipeline names them all.
from npu_compiler.passes import (cleanup, control, folding, fusion, layout, memory,  # noqa: F401
                                 patterns, precision, qdq, selection, shapes)
from npu_compiler.passes.registry import PASSES

log = logging.getLogger("npu_compiler.passes")

DEFAULT_PIPELINE = [
    "shape_inference",
    "fuse_qdq",  # DQ -> Conv/MatMul -> Q as integer ops, before folding dequantizes weights
    "dead_code",  # the weights' DequantizeLinears nobody reads now
    "constant_folding",
    "shape_inference",  # again: folded shape arithmetic (Reshape targets...) is now constant
    "fold_shapes",  # and again until nothing more folds (shapes bound from --shape or feeds)
    "fold_control_flow",  # an If on a constant condition becomes its branch
    "fold_shapes",  # what the inlined branch computes from constants
    "defer_data_shapes",  # shapes computed from fed values: compiled when the model runs
    "dropout_to_identity",
    "eliminate_identity",
    "dead_code",
    "fold_batchnorm",
    "fold_channel_affine",
    "fuse_layernorm",
    "fuse_gelu",
    "fuse_attention",
    "assign_layout",
    "sink_relu",  # Relu after MaxPool: on the pooled tensor, as its epilogue
    "fuse_epilogues",  # conv/matmul + bias + activation (and residual Add)
    "dead_code",
    "lower_precision",
    "select_kernels",
    "plan_memory",
    "concat_in_place",  # Concat producers write into its output's arena slices
]


def run_pipeline(graph: Graph, pipeline=None) -> tuple[Graph, list[dict]]:
    pass_log = []
    for name in pipeline or DEFAULT_PIPELINE:
        if name not in PASSES:
            raise CompileError(f"unknown compiler pass {name!r} (known: {', '.join(PASSES)})")
        before = len(graph.nodes)
        graph.notes, graph.facts = [], {}
        started = time.perf_counter()
        graph = PASSES[name](graph)
        entry = {"name": name, "nodes_before": before, "nodes_after": len(graph.nodes),
                 "seconds": round(time.perf_counter() - started, 6),
                 "changes": list(graph.notes), "facts": dict(graph.facts)}
        log.info("pass %s: %d -> %d nodes; %s", name, before, len(graph.nodes),
                 "; ".join(graph.notes) or "no change")
        pass_log.append(entry)
    return graph, pass_log
