"""Memory planning: the intermediate values of a plan share one arena, at offsets chosen so
that values alive at the same time never overlap (liveness over the final step order). A value
may be aliased into another's buffer (the memory plan's `aliases`, filled by concat_in_place):
it then has no buffer of its own, and its offset lies inside the other's (its rows strided
there when the alias has `row_bytes`, see `alias_strides`)."""

from __future__ import annotations

import numpy as np

from npu_compiler.errors import CompileError
from npu_compiler.ir import RUN_TIME_COMPILED, Graph, Node
from npu_compiler.passes.registry import compiler_pass
from npu_compiler.passes.shapes import unknown_shape_reason

ALIGNMENT = 64  # bytes: every offset suits any element type and a DMA burst


def _aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


def value_bytes(graph: Graph, name: str) -> int:
    value = graph.values.get(name)
    if value is None or value.shape is None or value.dtype is None or \
            any(not isinstance(d, (int, np.integer)) or d < 0 for d in value.shape):
        known = "unknown" if value is None else f"shape {value.shape}, dtype {value.dtype}"
        reason = f"; {unknown_shape_reason(graph, name)}" if value is None or \
            value.shape is None else ""
        raise CompileError(f"cannot plan memory for value {name!r}: its size is not known at "
                           f"compile time ({known}){reason}")
    return int(np.prod(value.shape, dtype=np.int64)) * np.dtype(value.dtype).itemsize


def _run_sized(graph: Graph, name: str) -> bool:
    """Whether `name` is the output of a control-flow node whose shape is not known."""
    value = graph.values.get(name)
    if value is not None and value.shape is not None:
        return False
    return any(name in n.outputs for n in graph.nodes if n.op_type in RUN_TIME_COMPILED)


def resolve_alias(aliases: dict[str, dict], name: str) -> tuple[str, int]:
    """The buffer holding `name` and its byte offset there: a value placed inside another
    (`aliases[name] = {"of": outer, "byte_offset": n}`, see concat_in_place) lives in its
    outermost one's buffer."""
    offset = 0
    while name in aliases:
        offset += aliases[name]["byte_offset"]
        name = aliases[name]["of"]
    return name, offset


def alias_strides(shape, itemsize: int, alias: dict | None) -> tuple[int, ...] | None:
    """Byte strides of a value placed in its slice of a Concat's output with rows (`aliases`
    entry with `axis` and `row_bytes`: the slice of each index over the axes before `axis` is
    one block, `row_bytes` apart in the output); None when the value is one contiguous block."""
    if alias is None or "row_bytes" not in alias:
        return None
    shape, axis = [int(d) for d in shape], int(alias["axis"])
    strides = [0] * len(shape)
    step = itemsize
    for d in range(len(shape) - 1, axis - 1, -1):  # within a row: contiguous
        strides[d], step = step, step * shape[d]
    step = int(alias["row_bytes"])
    for d in range(axis - 1, -1, -1):  # between rows: the output's row apart
        strides[d], step = step, step * shape[d]
    return tuple(strides)


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
    # A control-flow output of a shape known only when it runs gets its buffer then.
    spans = {n: s for n, s in lifetimes(graph, aliases).items() if not _run_sized(graph, n)}
    sizes = {name: _aligned(value_bytes(graph, name)) for name in spans}
    offsets = assign_offsets(sizes, spans)
    for name in aliases:
        buffer, inner = resolve_alias(aliases, name)
        offsets[name] = offsets[buffer] + inner
    arena = max((offsets[n] + sizes[n] for n in sizes), default=0)
    unplanned = sum(sizes.values())
    weights = sum(int(a.nbytes) for a in graph.constants.values())
    io = sum(value_bytes(graph, n) for n in list(graph.inputs) + list(graph.outputs)
             if not _run_sized(graph, n))
    graph.memory = {"arena_bytes": arena, "offsets": offsets, "unplanned_bytes": unplanned,
                    "weight_bytes": weights, "io_bytes": io,
                    "peak_bytes": weights + io + arena, "aliases": aliases}
    return graph.memory


# ------------------------------------------------------------------------ in-place concat
# In-place concatenation: the producers of a Concat write straight into their slices of its
# output, and the Concat step goes away (no copy on the device, none in the functional run).
#
# A slice of the output is one contiguous block when every axis before the concatenation axis
# has size 1 (channels of NCHW at batch 1, or axis 0): then each input can be given an offset
# inside the output's buffer in the memory plan (`aliases`), which the engine's arena views
# honour. Otherwise (channels of NCHW at batch > 1) the slice is one block per row (per image),
# the output's row apart: the alias also has `axis` and `row_bytes`, the engine's view of the
# input is strided, and a producer's store is a strided DMA. Without that, a batch paid a copy
# of every Fire module's output that batch 1 does not (SqueezeNet on npu-edge: 1.45 ms per
# image at batch 1, 1.82 at batch 16, a quarter of it the Concats). Strided aliases do not
# nest (a chain of them would need strides composed). Everything else (graph inputs or
# outputs, constants, a value concatenated twice or into two Concats, a rounding the Concat
# would do) keeps its copy.
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
    rows = int(np.prod(shape[:axis], dtype=np.int64))  # blocks per slice: 1 is contiguous
    inputs = node.inputs
    if not inputs or "" in inputs or len(set(inputs)) != len(inputs) or rows < 1:
        return None
    precision = graph.node_precision(node)
    slices, offset = {}, 0
    for name in inputs:
        producer = producers.get(name)
        if (name not in arena_values or name in aliases or producer is None
                or graph.value(name).dtype != graph.value(out).dtype
                or (precision != "fp32" and graph.node_precision(producer) != precision)
                or _nests_strided(aliases, name, strided=rows > 1)):
            return None  # (the Concat's rounding to its precision is not a no-op)
        slices[name] = {"of": out, "byte_offset": offset}
        if rows > 1:
            slices[name].update(axis=axis, row_bytes=value_bytes(graph, out) // rows)
        offset += value_bytes(graph, name) // rows
    return slices


def _nests_strided(aliases: dict, name: str, *, strided: bool) -> bool:
    """Whether aliasing `name` would chain a strided alias with another: `name` holds values
    aliased into it, and this alias or one of those is strided."""
    inner = [a for a in aliases.values() if a["of"] == name]
    return bool(inner) and (strided or any("row_bytes" in a for a in inner))
