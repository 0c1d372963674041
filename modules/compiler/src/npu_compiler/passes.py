"""Compiler passes: small named functions `graph -> graph`, registered by `@compiler_pass` and
run as a list. Each one says what it did through `graph.note`, which the pass log keeps."""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

import npu_opslib
from npu_compiler.errors import CompileError, UnsupportedOperator
from npu_compiler.ir import Graph, Node, Value

log = logging.getLogger("npu_compiler.passes")

PASSES: dict[str, Callable[[Graph], Graph]] = {}

DEFAULT_PIPELINE = [
    "shape_inference",
    "constant_folding",
    "shape_inference",  # again: folded shape arithmetic (Reshape targets...) is now constant
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


def compiler_pass(name: str):
    """Register `fn(graph) -> graph` as the pass `name`."""

    def register(fn):
        PASSES[name] = fn
        fn.pass_name = name
        return fn

    return register


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


def _summary(counter: Counter) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(counter.items()))


# ------------------------------------------------------------------------ shape inference
SMALL_CONSTANT = 4096


def to_onnx(graph: Graph) -> onnx.ModelProto:
    """The graph as an ONNX model (plain ONNX nodes only: before fusion)."""
    def info(name):
        value = graph.values.get(name) or Value(name)
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(value.dtype)) if value.dtype else 0
        return helper.make_tensor_value_info(name, elem, value.shape)

    nodes = []
    for node in graph.nodes:
        attrs = {k: (numpy_helper.from_array(np.asarray(v)) if isinstance(v, np.ndarray) else v)
                 for k, v in node.attrs.items() if k != "coerce_2d"}
        op_type = node.op_type.removeprefix(f"{node.domain}.") if node.domain else node.op_type
        nodes.append(helper.make_node(op_type, node.inputs, node.outputs, name=node.name,
                                      domain=node.domain or None, **attrs))
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
    known = sum(1 for v in graph.values.values() if v.shape is not None)
    graph.note(f"{known} values with known shapes ({known - known_before} new)")
    return graph


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


# ------------------------------------------------------------------------ constant folding
@compiler_pass("constant_folding")
def constant_folding(graph: Graph) -> Graph:
    """Evaluate, with opslib's functional run, every node whose inputs are all constants."""
    folded: Counter = Counter()
    kept = []
    for node in graph.nodes:
        present = [name for name in node.inputs if name]
        if node.op_type in ("Shape", "Size") and graph.value(node.inputs[0]).shape is not None:
            # Only the shape of the input matters, and it is known.
            value = graph.value(node.inputs[0])
            placeholder = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32),
                                                          value.shape, [0] * len(value.shape))
            graph.set_constant(node.outputs[0], npu_opslib.run_reference(
                node.op_type, [placeholder], node.attrs)[0])
            folded[node.op_type] += 1
            continue
        if not all(name in graph.constants for name in present):
            kept.append(node)
            continue
        args = [graph.constants[name] if name else None for name in node.inputs]
        results = npu_opslib.run_reference(node.op_type, args, node.attrs)
        for name, result in zip(node.outputs, results):
            if name:
                graph.set_constant(name, result)
        folded[node.op_type] += 1
    graph.nodes = kept
    if folded:
        graph.note(f"folded {sum(folded.values())} nodes ({_summary(folded)})",
                   folded=dict(folded))
    return graph


# ------------------------------------------------------------------------ inference rewrites
@compiler_pass("dropout_to_identity")
def dropout_to_identity(graph: Graph) -> Graph:
    """At inference Dropout passes its input through (an unused mask output is dropped)."""
    users = graph.consumers()
    count = 0
    for node in graph.nodes:
        if node.op_type != "Dropout":
            continue
        mask = node.outputs[1] if len(node.outputs) > 1 else ""
        if mask and (mask in users or mask in graph.outputs):
            continue  # someone reads the mask: keep the kernel, which produces it
        node.op_type, node.inputs, node.outputs, node.attrs = (
            "Identity", node.inputs[:1], node.outputs[:1], {})
        count += 1
    if count:
        graph.note(f"{count} Dropout -> Identity")
    return graph


@compiler_pass("eliminate_identity")
def eliminate_identity(graph: Graph) -> Graph:
    """Consumers of an Identity read its input instead (kept when it feeds a graph output
    straight from a graph input, where there is nothing to rewire to)."""
    removed = 0
    for node in list(graph.nodes):
        if node.op_type != "Identity":
            continue
        source, target = node.inputs[0], node.outputs[0]
        if target in graph.outputs and (source in graph.inputs or source in graph.outputs or
                                        source in graph.constants):
            continue
        graph.nodes.remove(node)
        if target in graph.outputs:
            # The graph output keeps its name: the producer of the source writes it.
            producer = graph.producers()[source]
            producer.outputs = [target if o == source else o for o in producer.outputs]
            graph.rename_uses(source, target)
        else:
            graph.rename_uses(target, source)
        removed += 1
    if removed:
        graph.note(f"removed {removed} Identity nodes")
    return graph


@compiler_pass("dead_code")
def dead_code(graph: Graph) -> Graph:
    """Drop nodes none of whose outputs reach a graph output, and unused constants."""
    needed = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(out in needed for out in node.outputs):
            kept.append(node)
            needed.update(name for name in node.inputs if name)
    removed = Counter(n.op_type for n in graph.nodes if not any(n is k for k in kept))
    graph.nodes = kept[::-1]
    unused = [name for name in graph.constants if name not in needed]
    for name in unused:
        del graph.constants[name]
    if removed:
        graph.note(f"removed {sum(removed.values())} dead nodes ({_summary(removed)})",
                   removed=dict(removed))
    if unused:
        graph.note(f"dropped {len(unused)} unused constants")
    return graph


# ------------------------------------------------------------------------ algebraic folds
def _sole_consumer(graph: Graph, value: str) -> Node | None:
    if value in graph.outputs:
        return None
    users = graph.consumers().get(value, [])
    return users[0] if len(users) == 1 and users[0].inputs.count(value) == 1 else None


def _conv_params(graph: Graph, conv: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """Weights and bias of a Conv whose parameters are constants (bias zero if absent)."""
    if conv.op_type != "Conv" or conv.fusion or conv.inputs[1] not in graph.constants:
        return None
    weights = graph.constants[conv.inputs[1]]
    if len(conv.inputs) > 2 and conv.inputs[2]:
        if conv.inputs[2] not in graph.constants:
            return None
        return weights, graph.constants[conv.inputs[2]]
    return weights, np.zeros(weights.shape[0], dtype=weights.dtype)


def _set_conv_params(graph: Graph, conv: Node, weights, bias) -> None:
    w_name, b_name = f"{conv.name}/folded_w", f"{conv.name}/folded_b"
    graph.set_constant(w_name, weights.astype(np.float32, copy=False))
    graph.set_constant(b_name, bias.astype(np.float32, copy=False))
    conv.inputs = [conv.inputs[0], w_name, b_name]


def _bypass(graph: Graph, first: Node, second: Node) -> None:
    """Remove `second`, whose output `first` now produces directly."""
    first.outputs = [second.outputs[0]]
    graph.nodes = [n for n in graph.nodes if n is not second]


@compiler_pass("fold_batchnorm")
def fold_batchnorm(graph: Graph) -> Graph:
    """Conv followed by BatchNormalization (inference) becomes one Conv with scaled weights."""
    producers = graph.producers()
    folded = 0
    for bn in list(graph.nodes):
        if bn.op_type != "BatchNormalization" or bn.attrs.get("training_mode"):
            continue
        conv = producers.get(bn.inputs[0])
        params = _conv_params(graph, conv) if conv else None
        stats = bn.inputs[1:5]
        if params is None or _sole_consumer(graph, bn.inputs[0]) is not bn or not all(
                s in graph.constants for s in stats):
            continue
        scale, shift, mean, var = (graph.constants[s].astype(np.float64) for s in stats)
        factor = scale / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
        weights, bias = params
        new_w = weights * factor.reshape((-1,) + (1,) * (weights.ndim - 1))
        new_b = (bias - mean) * factor + shift
        _set_conv_params(graph, conv, new_w, new_b)
        _bypass(graph, conv, bn)
        producers = graph.producers()
        folded += 1
    if folded:
        graph.note(f"folded {folded} BatchNormalization into Conv",
                   folded={"BatchNormalization": folded})
    return graph


def _channel_vector(array: np.ndarray, out_shape, channels: int) -> np.ndarray | None:
    """`array` as one value per channel (axis 1) if it broadcasts that way onto `out_shape`."""
    if out_shape is None or len(out_shape) < 2 or array.ndim > len(out_shape):
        return None
    padded = (1,) * (len(out_shape) - array.ndim) + tuple(array.shape)
    if any(d != 1 for i, d in enumerate(padded) if i != 1) or padded[1] not in (1, channels):
        return None
    return np.broadcast_to(array.reshape(-1), (channels,)).astype(np.float64)


@compiler_pass("fold_channel_affine")
def fold_channel_affine(graph: Graph) -> Graph:
    """Mul/Add by a per-channel constant after a Conv (or an inference BatchNormalization) is
    folded into its parameters: y = (x*w + b)*m + a has weights w*m and bias b*m + a."""
    folded: Counter = Counter()
    changed = True
    while changed:
        changed = False
        producers = graph.producers()
        for node in list(graph.nodes):
            if node.op_type not in ("Mul", "Add") or len(node.inputs) != 2:
                continue
            const = next((x for x in node.inputs if x in graph.constants), None)
            data = next((x for x in node.inputs if x not in graph.constants), None)
            first = producers.get(data) if data else None
            if const is None or first is None or _sole_consumer(graph, data) is not node:
                continue
            shape = graph.value(data).shape
            if graph.value(node.outputs[0]).shape != shape or shape is None or len(shape) < 2:
                continue  # the constant would broadcast the output bigger, or there's no channel
            vector = _channel_vector(graph.constants[const], shape, shape[1])
            if vector is None or not _fold_affine(graph, first, node.op_type, vector):
                continue
            _bypass(graph, first, node)
            folded[f"{node.op_type} into {first.op_type}"] += 1
            changed = True
            break
    if folded:
        graph.note(f"folded {sum(folded.values())} per-channel ops ({_summary(folded)})",
                   folded=dict(folded))
    return graph


def _fold_affine(graph: Graph, first: Node, op: str, vector: np.ndarray) -> bool:
    scale = vector if op == "Mul" else np.ones_like(vector)
    offset = vector if op == "Add" else np.zeros_like(vector)
    params = _conv_params(graph, first)
    if params is not None:
        weights, bias = params
        new_w = weights * scale.reshape((-1,) + (1,) * (weights.ndim - 1))
        _set_conv_params(graph, first, new_w, bias * scale + offset)
        return True
    stats = first.inputs[1:5]
    if first.op_type != "BatchNormalization" or first.fusion or not all(
            s in graph.constants for s in stats):
        return False
    gamma, beta = (graph.constants[s].astype(np.float64) for s in stats[:2])
    names = [f"{first.name}/folded_{p}" for p in ("scale", "bias")]
    graph.set_constant(names[0], (gamma * scale).astype(np.float32))
    graph.set_constant(names[1], (beta * scale + offset).astype(np.float32))
    first.inputs = [first.inputs[0], names[0], names[1]] + first.inputs[3:5]
    return True


def _relu_input(graph: Graph, producers: dict, value: str, reader: Node) -> str | None:
    """The input of the Relu producing `value`, if `reader` is that value's only reader."""
    relu = producers.get(value)
    if relu is None or relu.op_type != "Relu" or _sole_consumer(graph, value) is not reader:
        return None
    return relu.inputs[0]


def _sink_below(graph: Graph, pool: Node, producers: dict) -> int:
    """Move the Relu(s) feeding `pool` after it; the number of Relus removed before it."""
    source = pool.inputs[0]
    before = producers.get(source)
    if before is None:
        return 0
    if before.op_type == "Relu":
        inputs, relus = [_relu_input(graph, producers, source, pool)], [before]
    elif before.op_type == "Concat" and _sole_consumer(graph, source) is pool:
        inputs = [_relu_input(graph, producers, x, before) for x in before.inputs]
        relus = [producers.get(x) for x in before.inputs]
    else:
        return 0
    if not inputs or any(x is None for x in inputs):
        return 0
    if before.op_type == "Concat":
        before.inputs = inputs
    else:
        pool.inputs = [inputs[0]] + pool.inputs[1:]
    pooled = f"{pool.outputs[0]}/before_relu"
    graph.values[pooled] = Value(pooled, graph.value(pool.outputs[0]).shape,
                                 graph.value(pool.outputs[0]).dtype)
    graph.nodes = [n for n in graph.nodes if not any(n is r for r in relus)]
    relu = Node(f"{pool.name}/relu", "Relu", [pooled], [pool.outputs[0]])
    pool.outputs = [pooled]
    graph.nodes.insert(graph.nodes.index(pool) + 1, relu)
    return len(relus)


@compiler_pass("sink_relu")
def sink_relu(graph: Graph) -> Graph:
    """A Relu before a MaxPool moves after it: max commutes with a non-decreasing function, so
    MaxPool(Relu(x)) == Relu(MaxPool(x)), and there it touches the pooled tensor, stride^2
    times smaller (fused as the MaxPool's epilogue). The Relus of a Concat's inputs move with
    it when the Concat only feeds such a MaxPool (Relu commutes with Concat too). A MaxPool
    returning Indices keeps its input: ties at zero would change them."""
    if "Relu" not in npu_opslib.get_kernel("MaxPool").fusions:
        graph.note("MaxPool takes no Relu epilogue: Relus stay where they are")
        return graph
    moved = 0
    changed = True
    while changed:
        changed = False
        producers = graph.producers()
        for pool in list(graph.nodes):
            if pool.op_type != "MaxPool" or pool.fusion or len(
                    [o for o in pool.outputs if o]) != 1:
                continue
            removed = _sink_below(graph, pool, producers)
            if removed:
                moved += removed
                changed = True
                break
    if moved:
        graph.note(f"moved {moved} Relu below MaxPool", relus_sunk=moved)
    return graph


# ------------------------------------------------------------------------ fusion
def _epilogue_of(graph: Graph, producer: Node, consumer: Node) -> tuple[str, list, dict] | None:
    """(epilogue op, extra inputs, its attributes) if `consumer` can run as an epilogue of
    `producer` (whose output it reads), else None."""
    out = producer.outputs[0]
    op = consumer.op_type
    if op in ("Relu", "Sigmoid", "Tanh"):
        return op, [], {}
    if op == "Gelu" and consumer.attrs.get("approximate", "none") == "none":
        return op, [], {}
    if op == "LeakyRelu":
        return op, [], {"alpha": float(consumer.attrs.get("alpha", 0.01))}
    if op == "Clip":
        attrs = {k: float(consumer.attrs[k]) for k in ("min", "max") if k in consumer.attrs}
        for name, bound in zip(consumer.inputs[1:3], ("min", "max")):
            if name:
                if name not in graph.constants:
                    return None
                attrs[bound] = float(graph.constants[name])
        return op, [], attrs
    if op in ("Add", "Sum", "Mul") and len(consumer.inputs) == 2:
        other = consumer.inputs[1] if consumer.inputs[0] == out else consumer.inputs[0]
        if other == out:
            return None
        out_shape = graph.value(out).shape
        other_shape = graph.value(other).shape
        if out_shape is None or other_shape is None or graph.value(
                consumer.outputs[0]).shape != out_shape:
            return None
        return ("Mul" if op == "Mul" else "Add"), [other], {}
    return None


@compiler_pass("fuse_epilogues")
def fuse_epilogues(graph: Graph) -> Graph:
    """Elementwise consumers become epilogues of their producer (conv+bias+relu, conv+add+relu,
    gemm+relu...) when the producer's kernel accepts the resulting fusion pattern. The fused
    node takes the consumer's place in the order, so the residual operand of an Add is ready."""
    fused: Counter = Counter()
    for producer in list(graph.nodes):
        if not any(n is producer for n in graph.nodes) or len(producer.outputs) != 1:
            continue
        accepted = npu_opslib.get_kernel(producer.op_type).fusions
        while True:
            consumer = _sole_consumer(graph, producer.outputs[0])
            epilogue = _epilogue_of(graph, producer, consumer) if consumer else None
            if epilogue is None:
                break
            op, extra, attrs = epilogue
            if "+".join(producer.fusion + [op]) not in accepted:
                break
            producer.fusion.append(op)
            producer.epilogue_attrs.append(attrs)
            producer.inputs = producer.inputs + extra
            producer.outputs = list(consumer.outputs)
            graph.nodes.remove(producer)
            graph.nodes[graph.nodes.index(consumer)] = producer
        if producer.fusion:
            fused[f"{producer.op_type}+{producer.fusion_name}"] += 1
    if fused:
        graph.note(f"fused {sum(fused.values())} nodes ({_summary(fused)})",
                   fusions=dict(fused))
    return graph


# ------------------------------------------------------------------------ kernel selection
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
                               "unknown after shape inference")
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


# The passes of their own modules register themselves on import.
from npu_compiler import fusion, inplace, layout, memory, quantize  # noqa: E402,F401
