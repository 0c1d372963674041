"""Precision lowering: every kernel at the plan's precision where it can run there.

fp16 and bf16: all float kernels (operands and results rounded to the format, accumulation in
float32). int8: post-training quantization of the matrix kernels (Conv, Gemm, MatMul,
FusedAttention): per-tensor symmetric scales, from the weights themselves and, for
activations, from the largest magnitude seen on calibration inputs; weights are stored as int8.
The vector kernels between them stay fp32."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx

import npu_opslib
from npu_compiler.errors import CompileError
from npu_compiler.ir import DEFERRED, RUN_TIME_COMPILED, Graph, Node
from npu_compiler.onnx_import import decode_subgraph
from npu_compiler.passes.registry import compiler_pass, summary
from npu_compiler.passes.selection import kernel_attrs
from npu_compiler.passes.shapes import declared_inputs, onnx_attrs

CALIBRATION_SEED = 0


def random_feeds(specs, seed: int, *, int_high: int = 1) -> dict[str, np.ndarray]:
    """Seeded inputs for `specs` ({name, shape, dtype} dicts): standard normal floats,
    integers in [0, int_high)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        dtype = np.dtype(spec["dtype"])
        if np.issubdtype(dtype, np.floating):
            feeds[spec["name"]] = rng.standard_normal(spec["shape"]).astype(dtype)
        elif dtype == np.bool_:
            feeds[spec["name"]] = rng.random(spec["shape"]) < 0.5
        else:
            feeds[spec["name"]] = rng.integers(0, int_high, spec["shape"]).astype(dtype)
    return feeds


def _input_specs(graph: Graph) -> list[dict]:
    return [{"name": n, "shape": graph.values[n].shape, "dtype": graph.values[n].dtype}
            for n in graph.inputs]


def _kernel(node: Node):
    return npu_opslib.get_kernel(node.op_type)


def _quantizable(node: Node) -> bool:
    if node.op_type in RUN_TIME_COMPILED:
        return False
    kernel = _kernel(node)
    return kernel.unit == "array" and "int8" in kernel.supported_precisions()


def calibrate(graph: Graph, nodes: list[Node]) -> dict[str, float]:
    """The largest magnitude of each activation operand of `nodes`, over the calibration
    feeds, from a functional fp32 run of the graph."""
    wanted = {x for n in nodes for x in n.inputs[: _kernel(n).int8_operands]
              if x and x not in graph.constants}
    feeds_list = [one for sample in graph.calibration for one in _split(graph, sample)] or [
        random_feeds(_input_specs(graph), CALIBRATION_SEED, int_high=10)]
    last_use = {x: i for i, n in enumerate(graph.nodes) for x in n.inputs}
    peaks: dict[str, float] = {}
    for feeds in feeds_list:
        missing = [n for n in graph.inputs if n not in feeds]
        if missing:
            raise CompileError(f"calibration data lacks input(s) {', '.join(missing)} "
                               f"(the model takes {', '.join(graph.inputs)})")
        values = {**graph.constants, **{n: np.asarray(feeds[n]) for n in graph.inputs}}
        for name in wanted & set(values):
            peaks[name] = max(peaks.get(name, 0.0), float(np.max(np.abs(values[name]))))
        for index, node in enumerate(graph.nodes):
            if node.op_type in RUN_TIME_COMPILED:
                results = _run_subgraphs(graph, node, values)
            else:
                results = npu_opslib.run_reference(
                    node.op_type, [values[x] if x else None for x in node.inputs],
                    kernel_attrs(node), node.fusion_name, layout=node.layout)
            for name, result in zip(node.outputs, results):
                if name:
                    values[name] = result
                    if name in wanted:
                        peaks[name] = max(peaks.get(name, 0.0), float(np.max(np.abs(result))))
            for name in node.inputs:  # free what no later node reads
                if last_use.get(name) == index and name not in graph.constants:
                    values.pop(name, None)
    return peaks


def _run_subgraphs(graph: Graph, node: Node, values: dict) -> list:
    """A control-flow or deferred node's outputs for calibration, from onnx's reference
    evaluator (calibration only needs the values; the engine runs them on the NPU)."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    feeds = {x: np.asarray(values[x]) for x in node.inputs if x}
    inputs = [helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(a.dtype),
                                            a.shape) for x, a in feeds.items()]
    outputs = [helper.make_value_info(o, onnx.TypeProto()) for o in node.outputs if o]
    if node.op_type == DEFERRED:
        body = decode_subgraph(node.attrs["body"])
        nodes, initializers = list(body.node), list(body.initializer)
    else:
        nodes = [helper.make_node(node.op_type, declared_inputs(node), node.outputs,
                                  **onnx_attrs(node))]
        initializers = []
    model = helper.make_model(
        helper.make_graph(nodes, "calibration", inputs, outputs, initializers),
        opset_imports=[helper.make_opsetid("", graph.opset)])
    try:
        computed = ReferenceEvaluator(model).run(None, feeds)
    except Exception as exc:
        raise CompileError(f"int8 calibration cannot run {node.describe()} on the calibration "
                           f"inputs ({' '.join(str(exc).split())[:160]}); give calibration "
                           "data (--calibration)") from None
    results = dict(zip([o for o in node.outputs if o], computed))
    return [results.get(o) for o in node.outputs]


def _split(graph: Graph, sample: dict) -> list[dict]:
    """A sample whose arrays all have one more (leading) axis than the inputs holds several."""
    ranks = {n: len(graph.values[n].shape) for n in graph.inputs}
    if sample and all(n in ranks and np.ndim(a) == ranks[n] + 1 for n, a in sample.items()):
        counts = {len(a) for a in sample.values()}
        if len(counts) == 1:
            return [{n: a[i] for n, a in sample.items()} for i in range(counts.pop())]
    return [sample]


def _scale(peak: float) -> float:
    from npu_driver.precision import INT8_MAX

    return peak / INT8_MAX if peak > 0 and np.isfinite(peak) else 1.0


def _lower_int8(graph: Graph) -> Counter:
    from npu_driver.precision import int8_scale, quantize_int8

    candidates = [n for n in graph.nodes if _quantizable(n)]
    peaks = calibrate(graph, candidates)
    lowered: Counter = Counter()
    for node in candidates:
        scales, inputs = [], list(node.inputs)
        for index, name in enumerate(node.inputs[: _kernel(node).int8_operands]):
            if name in graph.constants:
                weights = graph.constants[name]
                scale = int8_scale(weights)
                stored = f"{name}/int8"
                if stored not in graph.constants:
                    graph.set_constant(stored, quantize_int8(weights, scale)[0])
                inputs[index] = stored
            else:
                scale = _scale(peaks.get(name, 0.0))
            scales.append(float(scale))
        node.inputs = inputs
        node.attrs = {**node.attrs, npu_opslib.kernel.INT8_SCALES: scales}
        node.precision = "int8"
        lowered[node.op_type] += 1
    for node in graph.nodes:
        if not node.precision:
            node.precision = "fp32"
    used = {x for n in graph.nodes for x in n.inputs}
    for name in [c for c in graph.constants if c not in used and c not in graph.outputs]:
        del graph.constants[name]
    return lowered


@compiler_pass("lower_precision")
def lower_precision(graph: Graph) -> Graph:
    """Each kernel at the plan's precision where it supports it (int8: matrix kernels,
    calibrated); the others stay fp32."""
    if graph.precision == "fp32":
        graph.note("fp32: nothing to lower")
        return graph
    if graph.precision == "int8":
        lowered = _lower_int8(graph)
        source = f"{len(graph.calibration)} calibration samples" if graph.calibration else \
            "seeded random calibration inputs"
    else:
        lowered = Counter()
        for node in graph.nodes:
            supported = node.op_type not in RUN_TIME_COMPILED and \
                graph.precision in _kernel(node).supported_precisions()
            node.precision = graph.precision if supported else "fp32"
            if supported:
                lowered[node.op_type] += 1
        source = "rounded operands and results"
    kept = len(graph.nodes) - sum(lowered.values())
    graph.note(f"{sum(lowered.values())} kernels at {graph.precision} ({summary(lowered)}), "
               f"{kept} at fp32; {source}",
               lowered={graph.precision: sum(lowered.values()), "fp32": kept})
    return graph
