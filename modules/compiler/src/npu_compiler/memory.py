"""Memory planning: the intermediate values of a plan share one arena, at offsets chosen so
that values alive at the same time never overlap (liveness over the final step order)."""

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


def lifetimes(graph: Graph) -> dict[str, tuple[int, int]]:
    """(first step, last step) of each intermediate: produced by a step, not a graph output."""
    spans: dict[str, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        for name in node.outputs:
            if name and name not in graph.outputs:
                spans[name] = [index, index]
        for name in node.inputs:
            if name in spans:
                spans[name][1] = index
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
    spans = lifetimes(graph)
    sizes = {name: _aligned(value_bytes(graph, name)) for name in spans}
    offsets = assign_offsets(sizes, spans)
    arena = max((offsets[n] + sizes[n] for n in offsets), default=0)
    unplanned = sum(sizes.values())
    weights = sum(int(a.nbytes) for a in graph.constants.values())
    io = sum(value_bytes(graph, n) for n in list(graph.inputs) + list(graph.outputs))
    graph.memory = {"arena_bytes": arena, "offsets": offsets, "unplanned_bytes": unplanned,
                    "weight_bytes": weights, "io_bytes": io,
                    "peak_bytes": weights + io + arena}
    graph.note(f"{len(offsets)} intermediates in a {arena}-byte arena ({unplanned} bytes "
               f"without reuse); peak {weights + io + arena} bytes with weights and I/O",
               arena_bytes=arena, unplanned_bytes=unplanned,
               peak_bytes=weights + io + arena)
    return graph
