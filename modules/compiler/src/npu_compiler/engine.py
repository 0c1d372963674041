"""The executor of a plan on the simulated NPU: weights uploaded once, each run feeds inputs
and launches the selected kernels in order. Intermediates live in one arena at the offsets of
the plan's memory plan, allocated at the first run and kept, as an inference engine keeps its
activation memory (the device's peak is the same; the host does not fault in fresh pages on
every run); a plan without one gets a buffer per intermediate, held to the end of the run (no
reuse: that is the memory planning pass's job). What does not change between runs (each
step's kernel, cost and profile entry, the arena's views) is worked out once."""

from __future__ import annotations

import numpy as np

import npu_opslib
from npu_runtime import Context

from npu_compiler.compile import compile_model
from npu_compiler.control_flow import ControlFlowStep
from npu_compiler.errors import InputError
from npu_compiler.ir import RUN_TIME_COMPILED
from npu_compiler.passes.memory import alias_strides
from npu_compiler.passes.selection import ONNX_LAYOUT
from npu_compiler.plan import Plan


class ArenaSlice:
    """A value at its offset in the arena: what kernels read and write like a DeviceArray."""

    def __init__(self, arena, offset: int, shape, dtype, name: str, strides=None):
        """`strides` (bytes): the value's rows lie apart in a Concat's output (alias_strides)."""
        self.arena, self.offset, self.name = arena, offset, name
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        if strides is None:
            raw = self.arena.view()[self.offset: self.offset + self.nbytes]
            self._view = raw.view(self.dtype).reshape(self.shape)
        else:
            self._view = np.ndarray(self.shape, self.dtype, buffer=self.arena.view(),
                                    offset=self.offset, strides=strides)

    def view(self) -> np.ndarray:
        return self._view


class Engine:
    def __init__(self, plan: Plan, sku=None, ctx: Context | None = None,
                 weights: dict | None = None):
        """`ctx`: run on this context (a control-flow subgraph runs on its parent's, a server
        instance's plans at several batch sizes on one device). `weights`: the constants other
        engines uploaded to `ctx`, by name (`shared_weights` of one of them): a constant equal
        to one there is not uploaded again, as one device holds a model's weights once."""
        self.plan = plan
        self.ctx = ctx if ctx is not None else Context(sku if sku is not None else plan.sku)
        self.steps = [self._prepare(step) for step in plan.steps]
        self.shared_weights = {} if weights is None else weights
        self._owns_weights = weights is None
        self.weights = {name: self._upload(name, array) for name, array in plan.constants.items()}
        self._prepack()
        self._frees = self._last_uses()
        self._arena = None
        self._slices: dict[str, ArenaSlice] = {}
        self._op_profiles = [_op_profile(step, selection) for step, selection, _ in self.steps]
        # The cost of a step is fixed for the plan: its launches' profile fields are too.
        self._cost_fields = {id(selection.cost): selection.cost.to_dict()
                             for _, selection, _ in self.steps
                             if not isinstance(selection, ControlFlowStep)}

    def _upload(self, name: str, array: np.ndarray):
        """The device copy of constant `name`: the shared one when it holds the same values."""
        known = self.shared_weights.get(name)
        if known is not None and not known.freed and known.shape == array.shape and \
                known.dtype == array.dtype and np.array_equal(known.view(), array):
            return known
        darr = self.ctx.to_device(array, name=name)
        self.shared_weights[name] = darr
        return darr

    def close(self) -> None:
        """Give back this engine's device memory: its arena, and its weights unless shared
        (an engine dropped from a server's plan cache while its device serves on)."""
        if self._arena is not None:
            self.ctx.free(self._arena)
            self._arena, self._slices = None, {}
        if self._owns_weights:
            for darr in self.weights.values():
                if not darr.freed:
                    self.ctx.free(darr)
            self.weights, self.shared_weights = {}, {}

    def _subgraph_plan(self, model) -> Plan:
        precision = "fp32" if self.plan.precision == "int8" else self.plan.precision
        return compile_model(model, self.ctx.sku, precision=precision)

    def _prepare(self, step: dict):
        attrs = self.plan.step_attrs(step)
        if step["op_type"] in RUN_TIME_COMPILED:
            return step, ControlFlowStep(step, attrs, self._subgraph_plan,
                                         lambda plan: Engine(plan, ctx=self.ctx)), attrs
        shapes = tuple(tuple(self.plan.values[name]["shape"]) for name in step["inputs"] if name)
        key = npu_opslib.KernelKey(step["op_type"], shapes,
                                   step.get("precision", self.plan.precision),
                                   step.get("layout", ONNX_LAYOUT), step["fusion"])
        if self.ctx.sku.name == self.plan.sku:
            # The plan's own choice, costed on this SKU.
            kernel = npu_opslib.get_kernel(step["op_type"])()
            config = npu_opslib.TileConfig.from_dict(step["config"])
            selection = npu_opslib.Selection(kernel, config,
                                             kernel.fused_cost(self.ctx.sku, key, config, attrs),
                                             key)
        else:
            selection = npu_opslib.select(self.ctx.sku, key, attrs)
        return step, selection, attrs

    def _prepack(self) -> None:
        """Tell each kernel which of its inputs are weights: they are uploaded once and never
        written, so a kernel may transform them once (opslib 1.3's `prepack`; older kernels
        have none)."""
        for step, selection, attrs in self.steps:
            prepack = getattr(getattr(selection, "kernel", None), "prepack", None)
            constants = {index: self.weights[name].view()
                         for index, name in enumerate(step["inputs"]) if name in self.weights}
            if prepack is not None and constants:
                prepack(selection.key, constants, attrs)

    def _last_uses(self) -> list[list[str]]:
        """For each step, the values that are dead once it has run."""
        keep = set(self.plan.constants) | {o["name"] for o in self.plan.outputs}
        last: dict[str, int] = {}
        for index, step in enumerate(self.plan.steps):
            for name in list(step["inputs"]) + list(step["outputs"]):
                if name:
                    last[name] = index
        frees: list[list[str]] = [[] for _ in self.plan.steps]
        if not self.plan.memory:
            return frees  # no plan, no reuse: everything is released at the end of the run
        for name, index in last.items():
            if name not in keep:
                frees[index].append(name)
        return frees

    def _arena_slices(self) -> dict[str, ArenaSlice]:
        """The planned values at their offsets in the arena (allocated at the first run)."""
        offsets = self.plan.memory.get("offsets", {})
        if offsets and self._arena is None:
            self._arena = self.ctx.alloc((max(self.plan.memory.get("arena_bytes", 0), 1),),
                                         np.uint8, name="arena")
            aliases = self.plan.memory.get("aliases", {})

            def arena_slice(name: str, offset: int) -> ArenaSlice:
                shape, dtype = self.plan.values[name]["shape"], self.plan.values[name]["dtype"]
                strides = alias_strides(shape, np.dtype(dtype).itemsize, aliases.get(name))
                return ArenaSlice(self._arena, offset, shape, dtype, name, strides)

            self._slices = {name: arena_slice(name, offset) for name, offset in offsets.items()}
        return self._slices

    def _launch_profile(self, record) -> dict:
        fields = self._cost_fields.get(id(record.cost))
        if fields is None:
            return record.to_dict()
        return {"name": record.name, "stream": record.stream, "start_cycle": record.start_cycle,
                "cycles": record.cycles, **fields}

    def _check_feeds(self, feeds: dict) -> dict[str, np.ndarray]:
        expected = {i["name"]: i for i in self.plan.inputs}
        missing = [name for name in expected if name not in feeds]
        extra = [name for name in feeds if name not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing input(s) {', '.join(missing)}")
            if extra:
                parts.append(f"unexpected input(s) {', '.join(extra)}")
            raise InputError(f"{'; '.join(parts)} (the model takes {', '.join(expected)})")
        checked = {}
        for name, spec in expected.items():
            array = np.asarray(feeds[name])
            if tuple(array.shape) != tuple(spec["shape"]):
                raise InputError(f"input {name!r} has shape {list(array.shape)}, the model "
                                 f"expects {spec['shape']} (a plan is compiled for one shape: "
                                 f"compile for this one with --shape or shapes=)")
            checked[name] = array.astype(spec["dtype"], copy=False)
        return checked

    def _batch(self) -> int:
        """The batch size the plan was compiled for: the leading dimension of its first input."""
        return _leading_dim(self.plan.inputs[0]["shape"]) if self.plan.inputs else 1

    def run(self, feeds: dict) -> tuple[dict[str, np.ndarray], dict]:
        feeds = self._check_feeds(feeds)
        ctx = self.ctx
        start_cycle = ctx.synchronize()
        # The engine owns its context: its timeline holds the latest run (what a trace saves),
        # not every run since the engine was built (a server's memory grew per request).
        ctx.timeline.records.clear()
        outputs, ops = self._execute(feeds)
        end_cycle = ctx.synchronize()
        latency_us = ctx.timeline.cycles_to_us(end_cycle - start_cycle)
        batch = self._batch()
        profile = {
            "total_cycles": end_cycle - start_cycle,
            "latency_us": latency_us,
            "batch": batch,
            # Inferences per second at this batch size, one batch after another.
            "throughput_per_s": batch / (latency_us * 1e-6) if latency_us > 0 else None,
            "peak_device_bytes": ctx.device.peak_bytes,
            "launches": [self._launch_profile(r) for r in ctx.timeline.records],
            "clock_ghz": ctx.sku.clock_ghz,
            "ops": ops,
        }
        if self.plan.memory:
            profile["arena_bytes"] = self.plan.memory["arena_bytes"]
            profile["planned_peak_bytes"] = self.plan.memory["peak_bytes"]
        return outputs, profile

    def run_nested(self, feeds: dict) -> tuple[dict[str, np.ndarray], dict]:
        """A run inside a parent's (a control-flow subgraph): on the shared context, its
        timeline kept; the outputs, and the cycles and ops of this run."""
        start_cycle = self.ctx.synchronize()
        outputs, ops = self._execute(self._check_feeds(feeds))
        return outputs, {"cycles": self.ctx.synchronize() - start_cycle, "ops": ops}

    def _control_flow(self, step: dict, runner: ControlFlowStep, live: dict, index: int):
        values = {n: np.array(live[n].view()) for n in step["inputs"] if n}
        results, facts = runner.run(values)
        for name, result in zip(step["outputs"], results):
            if not name:
                continue
            result = np.asarray(result)
            if name in live and tuple(live[name].shape) == result.shape:
                live[name].view()[...] = result
            else:
                live[name] = self.ctx.to_device(np.ascontiguousarray(result), name=name)
        self._op_profiles[index].update(facts)

    def _execute(self, feeds: dict) -> tuple[dict[str, np.ndarray], list[dict]]:
        ctx = self.ctx
        # Arena values are there from the start: a value whose producers write its parts in
        # place (the memory plan's aliases) is never the output of a step of its own.
        live = {**self.weights, **self._arena_slices()}
        try:
            for name, array in feeds.items():
                live[name] = ctx.to_device(array, name=name)
            for index, ((step, selection, attrs), dead) in enumerate(zip(self.steps,
                                                                         self._frees)):
                if isinstance(selection, ControlFlowStep):
                    self._control_flow(step, selection, live, index)
                else:  # the hot path: one kernel launch, as before control flow
                    for name in step["outputs"]:
                        if name and name not in live:
                            value = self.plan.values[name]
                            live[name] = ctx.alloc(value["shape"], value["dtype"], name=name)
                    npu_opslib.launch(
                        ctx, selection, [live[n] if n else None for n in step["inputs"]],
                        [live[n] for n in step["outputs"] if n], attrs, name=step["name"])
                for name in dead:
                    buffer = live.pop(name)
                    if not isinstance(buffer, ArenaSlice):
                        ctx.free(buffer)
            outputs = {spec["name"]: ctx.to_host(live[spec["name"]])
                       for spec in self.plan.outputs}
        finally:
            # The outputs and any input no step reads; after a failed step (a kernel error,
            # the device out of memory), every value the run had on the device: a server's
            # engine runs again, and each failed run kept its feeds and intermediates.
            for name, darr in live.items():
                if name not in self.weights and not isinstance(darr, ArenaSlice):
                    ctx.free(darr)
        return outputs, [dict(op) for op in self._op_profiles]


def _leading_dim(shape) -> int:
    return int(shape[0]) if shape and isinstance(shape[0], int) and shape[0] > 0 else 1


def _op_profile(step: dict, selection) -> dict:
    """A step's entry of the profile's `ops`: a launch lasts its cost's total cycles (a
    control-flow step's are those of the subgraph runs, filled in by each run)."""
    if isinstance(selection, ControlFlowStep):
        return {"name": step["name"], "op_type": step["op_type"], "kernel": "ControlFlow",
                "fusion": "", "config": "", "precision": step.get("precision", "fp32"),
                "layout": step.get("layout", ONNX_LAYOUT), "cycles": 0, "compute_cycles": 0,
                "stall_cycles": 0, "macs": 0, "bytes_read": 0, "bytes_written": 0,
                "sram_bytes": 0, "unit": "control", "array_utilization": 0.0,
                "dram_utilization": 0.0, "branch": None, "iterations": 0,
                "subgraph_ops": []}
    cost = selection.cost
    return {"name": step["name"], "op_type": step["op_type"], "kernel": selection.kernel.name,
            "fusion": step["fusion"], "config": selection.config.name,
            "precision": selection.key.precision, "layout": selection.key.layout,
            "cycles": cost.total_cycles, "compute_cycles": cost.compute_cycles,
            "stall_cycles": cost.stall_cycles, "macs": cost.macs,
            "bytes_read": cost.bytes_read, "bytes_written": cost.bytes_written,
            "sram_bytes": cost.sram_bytes, "unit": selection.kernel.unit,
            "array_utilization": cost.array_utilization,
            "dram_utilization": cost.dram_utilization}
