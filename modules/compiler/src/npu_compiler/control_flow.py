"""If, Loop and Scan on the engine. A control-flow step's subgraphs are compiled for the SKU
when they first run, once per shape signature of what they are fed (a loop whose carried
values keep their shapes compiles its body once), and run on the parent engine's context:
the branch taken and the iterations run are executed and costed on the simulated NPU like
any other step. The step's profile entry says which branch ran and how many iterations.

Outer-scope values (what a subgraph reads from enclosing graphs, nested ones included) are
inputs of the step (see onnx_import.outer_references) and inputs of the compiled subgraph."""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from npu_compiler.errors import CompileError
from npu_compiler.onnx_import import DECLARED_INPUTS, SUBGRAPH_OPSET, decode_subgraph, \
    outer_references

MAX_ITERATIONS = 1_000_000  # a Loop with neither trip count nor condition input
ENGINES_KEPT = 32  # compiled subgraphs per step, by signature
SHAPE_VALUES = 64  # integer tensors up to this size may be what shapes are computed from


def _shape_like(value) -> bool:
    """Small integer tensors, and float scalars (a Range over float bounds)."""
    value = np.asarray(value)
    return (value.dtype.kind in "iub" and value.size <= SHAPE_VALUES) or value.size == 1


class ControlFlowStep:
    """Runs one If/Loop/Scan step; `make_engine(plan)` builds an engine on the parent's
    context, `compile(model)` a plan of a subgraph for the parent's SKU and precision."""

    def __init__(self, step: dict, attrs: dict, compile: Callable, make_engine: Callable):
        self.step, self.attrs = step, attrs
        self.op_type = step["op_type"]
        self._compile, self._make_engine = compile, make_engine
        self.declared = int(attrs.get(DECLARED_INPUTS, len(step["inputs"])))
        self.opset = int(attrs.get(SUBGRAPH_OPSET, 13))
        self.graphs = {k: decode_subgraph(v) for k, v in attrs.items()
                       if isinstance(v, dict) and "onnx_graph" in v}
        self.outer = {k: outer_references(g) for k, g in self.graphs.items()}
        self._engines: dict = {}
        self.last: dict = {}

    # -- one subgraph run ------------------------------------------------------------------
    def _engine(self, name: str, feeds: dict[str, np.ndarray], fixed: dict[str, np.ndarray]):
        """The engine of subgraph `name` for feeds of these shapes, with the values `fixed`
        compiled in as constants (the signature holds their values)."""
        signature = (name,) + tuple((n, a.shape, a.dtype.str) for n, a in feeds.items()) + \
            tuple((n, a.dtype.str, a.shape, a.tobytes()) for n, a in fixed.items())
        engine = self._engines.get(signature)
        if engine is None:
            graph = self.graphs[name]
            inputs = [helper.make_tensor_value_info(
                n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds.items()]
            initializers = list(graph.initializer) + [
                numpy_helper.from_array(a, n) for n, a in fixed.items()]
            body = helper.make_graph(graph.node, f"{self.step['name']}/{name}", inputs,
                                     list(graph.output), initializers)
            model = helper.make_model(body, opset_imports=[helper.make_opsetid("", self.opset)])
            try:
                plan = self._compile(model)
            except CompileError as exc:
                raise CompileError(f"{self.op_type} node {self.step['name']!r}, {name}: "
                                   f"{exc}") from None
            if len(self._engines) >= ENGINES_KEPT:
                # Shapes that change every iteration (a growing carried value): keep the
                # latest, not one engine per iteration ever run.
                self._engines.pop(next(iter(self._engines)))
            engine = self._engines[signature] = self._make_engine(plan)
        return engine

    def _run(self, name: str, own: dict[str, np.ndarray], values: dict[str, np.ndarray],
             fixed: dict[str, np.ndarray] | None = None):
        """The subgraph `name` on its own inputs `own` and the outer values it reads."""
        fixed = fixed or {}
        feeds = dict(own)
        feeds.update((n, values[n]) for n in self.outer[name] if n not in feeds and
                     n not in fixed)
        outputs, profile = self._engine(name, feeds, fixed).run_nested(feeds)
        self._cycles += profile["cycles"]
        self._ops = profile["ops"]
        return [outputs[o.name] for o in self.graphs[name].output]

    def run(self, values: dict[str, np.ndarray]) -> tuple[list[np.ndarray], dict]:
        """The step's outputs from its input values by name; and its profile fields."""
        self._cycles, self._ops = 0, []
        inputs = [values.get(n) if n else None for n in self.step["inputs"][:self.declared]]
        outputs, facts = getattr(self, f"_{self.op_type.lower()}")(inputs, values)
        self.last = {**facts, "cycles": self._cycles, "subgraph_ops": self._ops}
        return outputs, self.last

    # -- the operators ---------------------------------------------------------------------
    def _deferred(self, inputs, values):
        """The rest of the graph, compiled for the values it is fed: small integer tensors
        (the sizes, starts and counts shapes are computed from) are compiled in as constants,
        so the shapes they determine fold; the rest are inputs."""
        fixed = {n: np.asarray(values[n]) for n in self.outer["body"] if _shape_like(values[n])}
        outputs = self._run("body", {}, values, fixed)
        return outputs, {"specialized_on": sorted(fixed)}

    def _if(self, inputs, values):
        branch = "then_branch" if bool(np.asarray(inputs[0]).reshape(-1)[0]) else "else_branch"
        return self._run(branch, {}, values), {"branch": branch, "iterations": 1}

    def _loop(self, inputs, values):
        body = self.graphs["body"]
        names = [v.name for v in body.input]
        trip = inputs[0] if len(inputs) > 0 else None
        cond = inputs[1] if len(inputs) > 1 else None
        limit = int(np.asarray(trip).reshape(-1)[0]) if trip is not None else MAX_ITERATIONS
        going = bool(np.asarray(cond).reshape(-1)[0]) if cond is not None else True
        carried = [np.asarray(v) for v in inputs[2:]]
        n_scan = len(body.output) - 1 - len(carried)
        scans: list[list[np.ndarray]] = [[] for _ in range(n_scan)]
        i = 0
        while i < limit and going:
            own = {names[0]: np.array(i, np.int64), names[1]: np.array(going)}
            own.update(zip(names[2:], carried))
            out = self._run("body", own, values)
            going = bool(np.asarray(out[0]).reshape(-1)[0])
            carried = out[1:1 + len(carried)]
            for k, value in enumerate(out[1 + len(carried):]):
                scans[k].append(value)
            i += 1
        if i >= MAX_ITERATIONS and trip is None:
            raise CompileError(f"Loop node {self.step['name']!r} ran {i} iterations without "
                               "a trip count and its condition stayed true")
        stacked = [np.stack(s) if s else np.zeros((0,), np.float32) for s in scans]
        return carried + stacked, {"iterations": i}

    def _scan(self, inputs, values):
        if self.opset < 9:
            raise CompileError(f"Scan node {self.step['name']!r}: Scan-8 (batched, with "
                               "sequence_lens) is not supported; opset 9 and later are")
        body = self.graphs["body"]
        names = [v.name for v in body.input]
        m = int(self.attrs["num_scan_inputs"])
        states, xs = [np.asarray(v) for v in inputs[:-m]], [np.asarray(v) for v in inputs[-m:]]
        in_axes = [int(a) % x.ndim for a, x in
                   zip(self.attrs.get("scan_input_axes") or [0] * m, xs)]
        in_dirs = self.attrs.get("scan_input_directions") or [0] * m
        length = xs[0].shape[in_axes[0]]
        n_states = len(states)
        n_out = len(body.output) - n_states
        collected: list[list[np.ndarray]] = [[] for _ in range(n_out)]
        for t in range(length):
            own = dict(zip(names[:n_states], states))
            for k, x in enumerate(xs):
                index = length - 1 - t if in_dirs[k] else t
                own[names[n_states + k]] = np.take(x, index, axis=in_axes[k])
            out = self._run("body", own, values)
            states = out[:n_states]
            for k, value in enumerate(out[n_states:]):
                collected[k].append(value)
        out_axes = self.attrs.get("scan_output_axes") or [0] * n_out
        out_dirs = self.attrs.get("scan_output_directions") or [0] * n_out
        stacked = []
        for k, items in enumerate(collected):
            items = items[::-1] if out_dirs[k] else items
            axis = int(out_axes[k]) % (items[0].ndim + 1)
            stacked.append(np.stack(items, axis=axis))
        return states + stacked, {"iterations": length}
