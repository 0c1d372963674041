"""In-place concatenation: the producers of a Concat write straight into their slices of its
output, and the Concat step goes away (no copy on the device, none in the functional run).

A slice of the output is one contiguous block when every axis before the concatenation axis
has size 1 (channels of NCHW at batch 1, or axis 0): then each input can be given an offset
inside the output's buffer in the memory plan (`aliases`), which the engine's arena views
honour. Everything else (graph inputs or outputs, constants, a value concatenated twice or
into two Concats, a rounding the Concat would do) keeps its copy."""

from __future__ import annotations

import numpy as np

from npu_compiler.ir import Graph, Node
from npu_compiler.memory import plan_arena, value_bytes
from npu_compiler.passes import compiler_pass


@compiler_pass("concat_in_place")
def concat_in_place(graph: Graph) -> Graph:
    """Runs after plan_memory (without a memory plan there is no arena to alias in)."""
    if not graph.memory:
        graph.note("no memory plan: every Concat keeps its copy")
        return graph
    aliases = dict(graph.memory.get("aliases", {}))
    arena_values = set(graph.memory["offsets"])
    producers = graph.producers()
    removed: list[Node] = []
    for node in graph.nodes:
        slices = _slices(graph, node, producers, arena_values, aliases)
        if slices is not None:
            aliases.update(slices)
            removed.append(node)
    if not removed:
        graph.note("no Concat whose inputs can be written in place")
        return graph
    before = graph.memory
    graph.nodes = [n for n in graph.nodes if not any(n is r for r in removed)]
    after = plan_arena(graph, aliases)
    copied = sum(value_bytes(graph, n.outputs[0]) for n in removed)
    cycles = sum(n.cost.get("total_cycles", 0) for n in removed)
    graph.note(f"{len(removed)} Concat written in place by their producers ({copied} bytes not "
               f"copied, {cycles} modelled cycles saved); arena {before['arena_bytes']} -> "
               f"{after['arena_bytes']} bytes, peak {before['peak_bytes']} -> "
               f"{after['peak_bytes']} bytes",
               concats_eliminated=len(removed), bytes_not_copied=copied, cycles_saved=cycles,
               arena_bytes=after["arena_bytes"], peak_bytes=after["peak_bytes"],
               peak_bytes_saved=before["peak_bytes"] - after["peak_bytes"])
    return graph


def _slices(graph: Graph, node: Node, producers: dict, arena_values: set,
            aliases: dict) -> dict[str, dict] | None:
    """{input: {"of": output, "byte_offset": n}} if `node` is a Concat every input of which
    can live in its slice of the output; None otherwise."""
    if node.op_type != "Concat" or node.fusion or node.domain or len(node.outputs) != 1:
        return None
    out = node.outputs[0]
    shape = graph.value(out).shape
    if out not in arena_values or out in graph.outputs or not shape:
        return None
    axis = int(node.attrs.get("axis", 1)) % len(shape)
    if int(np.prod(shape[:axis], dtype=np.int64)) != 1:
        return None  # a slice would be strided, not one block of the output
    inputs = node.inputs
    if not inputs or "" in inputs or len(set(inputs)) != len(inputs):
        return None
    precision = graph.node_precision(node)
    slices, offset = {}, 0
    for name in inputs:
        producer = producers.get(name)
        if (name not in arena_values or name in aliases or producer is None
                or graph.value(name).dtype != graph.value(out).dtype
                or (precision != "fp32" and graph.node_precision(producer) != precision)):
            return None  # (the last: the Concat's rounding to its precision is not a no-op)
        slices[name] = {"of": out, "byte_offset": offset}
        offset += value_bytes(graph, name)
    return slices
