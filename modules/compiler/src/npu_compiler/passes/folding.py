"""Folding: nodes whose inputs are constants are evaluated at compile time, and inference
BatchNormalization and per-channel Mul/Add are folded into the Conv before them."""

from __future__ import annotations

from collections import Counter

import numpy as np

import npu_opslib
from npu_compiler.ir import RUN_TIME_COMPILED, Graph, Node
from npu_compiler.passes.registry import compiler_pass, summary
from npu_compiler.passes.shapes import shape_inference

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
        if node.op_type in RUN_TIME_COMPILED or not all(name in graph.constants for name in present):
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
        graph.note(f"folded {sum(folded.values())} nodes ({summary(folded)})",
                   folded=dict(folded))
    return graph


SHAPE_ROUNDS = 16  # Shape -> arithmetic -> Reshape -> Shape ... chains in practice are short


@compiler_pass("fold_shapes")
def fold_shapes(graph: Graph) -> Graph:
    """Specialize to the bound input shapes: fold and re-infer until nothing more folds, so
    Shape/Size/Range/ConstantOfShape subgraphs and everything they feed become constants
    even where one shape is known only once another subgraph has folded."""
    total: Counter = Counter()
    for _ in range(SHAPE_ROUNDS):
        notes, facts = graph.notes, graph.facts
        graph.notes, graph.facts = [], {}
        before = len(graph.nodes)
        constant_folding(graph)
        folded = graph.facts.get("folded", {})
        graph.notes, graph.facts = notes, facts
        if len(graph.nodes) == before:
            break
        total.update(folded)
        notes, facts = graph.notes, graph.facts
        shape_inference(graph)
        graph.notes, graph.facts = notes, facts
    if total:
        graph.note(f"folded {sum(total.values())} more nodes once shapes were known "
                   f"({summary(total)})", folded=dict(total))
    return graph


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
        if params is None or graph.sole_consumer(bn.inputs[0]) is not bn or not all(
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
        producers, users = graph.producers(), graph.consumers()  # until the next fold
        for node in list(graph.nodes):
            if node.op_type not in ("Mul", "Add") or len(node.inputs) != 2:
                continue
            const = next((x for x in node.inputs if x in graph.constants), None)
            data = next((x for x in node.inputs if x not in graph.constants), None)
            first = producers.get(data) if data else None
            if const is None or first is None or graph.sole_consumer(data, users) is not node:
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
        graph.note(f"folded {sum(folded.values())} per-channel ops ({summary(folded)})",
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
