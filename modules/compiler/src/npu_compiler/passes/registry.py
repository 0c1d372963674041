"""The pass registry: `@compiler_pass(name)` registers `fn(graph) -> graph` under its name,
and `summary` is the pass log's way of counting what a pass did."""

from __future__ import annotations

from collections import Counter
from typing import Callable

from npu_compiler.ir import Graph

PASSES: dict[str, Callable[[Graph], Graph]] = {}


def compiler_pass(name: str):
    """Register `fn(graph) -> graph` as the pass `name`."""

    def register(fn):
        PASSES[name] = fn
        fn.pass_name = name
        return fn

    return register


def summary(counter: Counter) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(counter.items()))
