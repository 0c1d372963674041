"""The compiler's own small IR: a graph of nodes over named values, constants as numpy arrays.

Passes rewrite it in place; `Graph.note` records what a pass did for the plan's pass log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import heapq
from typing import Any

import numpy as np


# Operators with subgraphs: the compiler inlines a branch it can decide, the engine runs the
# rest (see control_flow.py). Their subgraphs travel in attrs as serialized GraphProtos.
CONTROL_FLOW = ("If", "Loop", "Scan")
# The rest of a graph from the first value whose shape depends on data known only when it
# runs: one step, compiled by the engine for the values it is fed (passes/control.py).
DEFERRED = "Deferred"
RUN_TIME_COMPILED = CONTROL_FLOW + (DEFERRED,)


@dataclass
class Value:
    """What is known of a value: its shape (None when unknown) and numpy dtype name."""

    name: str
    shape: tuple[int, ...] | None = None
    dtype: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": None if self.shape is None else list(self.shape),
                "dtype": self.dtype}


@dataclass(eq=False)
class Node:
    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    fusion: list[str] = field(default_factory=list)  # epilogue ops, applied in order
    epilogue_attrs: list[dict] = field(default_factory=list)
    kernel: str = ""
    config: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)
    layout: str = "NCHW"  # of input 0 / output 0 of layout-sensitive kernels
    precision: str = ""  # set by lower_precision; "" runs at fp32
    domain: str = ""  # the ONNX operator set ("" the default one; else a custom operator's)

    @property
    def fusion_name(self) -> str:
        return "+".join(self.fusion)

    def describe(self) -> str:
        op = self.op_type + (f"+{self.fusion_name}" if self.fusion else "")
        return f"{op} node {self.name!r}"


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    values: dict[str, Value]
    constants: dict[str, np.ndarray]
    opset: int = 13
    source: str = ""
    sku: Any = None
    precision: str = "fp32"
    calibration: list[dict] = field(default_factory=list)  # feeds for int8 calibration
    memory: dict = field(default_factory=dict)  # the memory plan (arena offsets, peak)
    notes: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)  # what the running pass did, as numbers

    def note(self, message: str, **facts) -> None:
        """Record what the running pass did: a sentence, and the same as numbers."""
        self.notes.append(message)
        for name, value in facts.items():
            if isinstance(value, dict):
                merged = self.facts.setdefault(name, {})
                for key, count in value.items():
                    merged[key] = merged.get(key, 0) + count
            else:
                self.facts[name] = self.facts.get(name, 0) + value \
                    if isinstance(value, (int, float)) else value

    def node_precision(self, node: "Node") -> str:
        return node.precision or "fp32"

    def value(self, name: str) -> Value:
        if name not in self.values:
            self.values[name] = Value(name)
        return self.values[name]

    def set_constant(self, name: str, array: np.ndarray) -> None:
        array = np.asarray(array)
        self.constants[name] = array
        self.values[name] = Value(name, tuple(array.shape), array.dtype.name)

    def producers(self) -> dict[str, Node]:
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    users.setdefault(name, []).append(node)
        return users

    def sole_consumer(self, value: str, users: dict | None = None) -> Node | None:
        """The one node reading `value`, once, if it is not a graph output; else None.
        `users` (from `consumers()`, kept current by the caller) saves rebuilding it: a pass
        asking for every node would otherwise be quadratic (6,000-node exports)."""
        if value in self.outputs:
            return None
        users = (self.consumers() if users is None else users).get(value, [])
        return users[0] if len(users) == 1 and users[0].inputs.count(value) == 1 else None

    def rename_uses(self, old: str, new: str) -> None:
        """Every use of value `old` (by nodes and as a graph output) now reads `new`."""
        for node in self.nodes:
            node.inputs = [new if name == old else name for name in node.inputs]
        self.outputs = [new if name == old else name for name in self.outputs]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            key = node.op_type + (f"+{node.fusion_name}" if node.fusion else "")
            counts[key] = counts.get(key, 0) + 1
        return counts

    def toposort(self) -> None:
        """Order nodes so each runs after the producers of its inputs (stable otherwise)."""
        producers = self.producers()
        waiting = {id(n): sum(1 for x in set(n.inputs) if x in producers) for n in self.nodes}
        users = self.consumers()
        position = {id(n): i for i, n in enumerate(self.nodes)}
        ready = [(position[id(n)], n) for n in self.nodes if waiting[id(n)] == 0]
        heapq.heapify(ready)
        ordered: list[Node] = []
        while ready:
            _, node = heapq.heappop(ready)
            ordered.append(node)
            for out in node.outputs:
                for user in {id(u): u for u in users.get(out, [])}.values():
                    waiting[id(user)] -= 1
                    if waiting[id(user)] == 0:
                        heapq.heappush(ready, (position[id(user)], user))
        if len(ordered) != len(self.nodes):
            stuck = next(n for n in self.nodes if waiting[id(n)] > 0)
            raise ValueError(f"graph has a cycle through {stuck.describe()}")
        self.nodes = ordered
