"""Cleanup: inference rewrites (Dropout passes through), Identity removal and dead code."""

from __future__ import annotations

from collections import Counter

from npu_compiler.ir import RUN_TIME_COMPILED, Graph
from npu_compiler.passes.registry import compiler_pass, summary

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
    # A subgraph names what it reads from outside: those values keep their names.
    by_subgraphs = {x for n in graph.nodes if n.op_type in RUN_TIME_COMPILED for x in n.inputs}
    for node in list(graph.nodes):
        if node.op_type != "Identity":
            continue
        source, target = node.inputs[0], node.outputs[0]
        if target in by_subgraphs or source in by_subgraphs:
            continue
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
    kept_ids = {id(k) for k in kept}
    removed = Counter(n.op_type for n in graph.nodes if id(n) not in kept_ids)
    graph.nodes = kept[::-1]
    unused = [name for name in graph.constants if name not in needed]
    for name in unused:
        del graph.constants[name]
    if removed:
        graph.note(f"removed {sum(removed.values())} dead nodes ({summary(removed)})",
                   removed=dict(removed))
    if unused:
        graph.note(f"dropped {len(unused)} unused constants")
    return graph
