"""Memory planning: the intermediate values of a plan share one arena, at offsets chosen so
that values alive at the same time never overlap (liveness over the final step order). A value
may be aliased into another's buffer (the memory plan's `aliases`, filled by concat_in_place):
it then has no buffer of its own, and its offset lies inside the other's."""

from __future__ import annotations

import numpy as np

from npu_compiler.errors import CompileError
from npu_compiler.ir import Graph
from npu_compiler.passes import compiler_pass

ALIGNMENT = 64  # bytes: every offset suits any element type and a DMA burst


def _aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


def value_bytes(graph: Graph, name: str) -> int:
    value = graph.values.get(name)
    if value is None or value.shape is None or value.dtype is None or \
            any(not isinstance(d, (int, np.integer)) or d < 0 for d in value.shape):
        known = "unknown" if value is None else f"shape {value.shape}, dtype {value.dtype}"
        raise CompileError(f"cannot plan memory for value {name!r}: its size is not known at "
                           f"compile time ({known})")
    return int(np.prod(value.shape, dtype=np.int64)) * np.dtype(value.dtype).itemsize


def resolve_alias(aliases: dict[str, dict], name: str) -> tuple[str, int]:
    """The buffer holding `name` and its byte offset there: a value placed inside another
    (`aliases[name] = {"of": outer, "byte_offset": n}`, see concat_in_place) lives in its
    outermost one's buffer."""
    offset = 0
    while name in aliases:
        offset += aliases[name]["byte_offset"]
        name = aliases[name]["of"]
    return name, offset


def lifetimes(graph: Graph, aliases: dict[str, dict] | None = None) -> dict[str, tuple[int, int]]:
    """(first step, last step) of each intermediate buffer: produced by a step, not a graph
    output. A value aliased into another counts as its buffer's, from the first step that
    writes any part of the buffer to the last that reads any part."""
    aliases = aliases or {}
    spans: dict[str, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        for name in node.outputs:
            if name and name not in graph.outputs:
                buffer = resolve_alias(aliases, name)[0]
                spans.setdefault(buffer, [index, index])[1] = index
        for name in node.inputs:
            buffer = resolve_alias(aliases, name)[0] if name else name
            if buffer in spans:
                spans[buffer][1] = index
    return {name: (first, last) for name, (first, last) in spans.items()}


def assign_offsets(sizes: dict[str, int], spans: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Greedy by size, largest first: each value at the lowest offset where it fits beside
    the already placed values whose lifetimes overlap its own."""
    offsets: dict[str, int] = {}
    placed: list[tuple[int, int, int, int]] = []  # (first, last, offset, end)
    for name in sorted(sizes, key=lambda n: (-sizes[n], spans[n])):
        first, last = spans[name]
        busy = sorted((start, end) for f, l, start, end in placed if f <= last and first <= l)
        offset = 0
        for start, end in busy:
            if offset + sizes[name] <= start:
                break
            offset = max(offset, end)
        offsets[name] = offset
        placed.append((first, last, offset, offset + sizes[name]))
    return offsets


@compiler_pass("plan_memory")
def plan_memory(graph: Graph) -> Graph:
    """An arena for the intermediates, reused by liveness; the plan's peak memory."""
    memory = plan_arena(graph)
    graph.note(f"{len(memory['offsets'])} intermediates in a {memory['arena_bytes']}-byte arena "
               f"({memory['unplanned_bytes']} bytes without reuse); peak "
               f"{memory['peak_bytes']} bytes with weights and I/O",
               arena_bytes=memory["arena_bytes"], unplanned_bytes=memory["unplanned_bytes"],
               peak_bytes=memory["peak_bytes"])
    return graph


def plan_arena(graph: Graph, aliases: dict[str, dict] | None = None) -> dict:
    """Place the intermediate buffers in one arena (graph.memory, returned). Values aliased
    into another get no buffer of their own: their offset is inside their buffer's."""
    aliases = dict(aliases or {})
    spans = lifetimes(graph, aliases)
    sizes = {name: _aligned(value_bytes(graph, name)) for name in spans}
    offsets = assign_offsets(sizes, spans)
    for name in aliases:
        buffer, inner = resolve_alias(aliases, name)
        offsets[name] = offsets[buffer] + inner
    arena = max((offsets[n] + sizes[n] for n in sizes), default=0)
    unplanned = sum(sizes.values())
    weights = sum(int(a.nbytes) for a in graph.constants.values())
    io = sum(value_bytes(graph, n) for n in list(graph.inputs) + list(graph.outputs))
    graph.memory = {"arena_bytes": arena, "offsets": offsets, "unplanned_bytes": unplanned,
                    "weight_bytes": weights, "io_bytes": io,
                    "peak_bytes": weights + io + arena, "aliases": aliases}
    return graph.memory
