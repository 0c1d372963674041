"""The executor of a plan on the simulated NPU: weights uploaded once, each run feeds inputs,
launches the selected kernels in order and frees every intermediate after its last use."""

from __future__ import annotations

import numpy as np

import npu_opslib
from npu_runtime import Context

from npu_compiler.errors import InputError
from npu_compiler.passes import ONNX_LAYOUT
from npu_compiler.plan import Plan


class Engine:
    def __init__(self, plan: Plan, sku=None):
        self.plan = plan
        self.ctx = Context(sku if sku is not None else plan.sku)
        self.steps = [self._prepare(step) for step in plan.steps]
        self.weights = {name: self.ctx.to_device(array, name=name)
                        for name, array in plan.constants.items()}
        self._frees = self._last_uses()

    def _prepare(self, step: dict):
        attrs = self.plan.step_attrs(step)
        shapes = tuple(tuple(self.plan.values[name]["shape"]) for name in step["inputs"] if name)
        key = npu_opslib.KernelKey(step["op_type"], shapes, self.plan.precision, ONNX_LAYOUT,
                                   step["fusion"])
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

    def _last_uses(self) -> list[list[str]]:
        """For each step, the values that are dead once it has run."""
        keep = set(self.plan.constants) | {o["name"] for o in self.plan.outputs}
        last: dict[str, int] = {}
        for index, step in enumerate(self.plan.steps):
            for name in list(step["inputs"]) + list(step["outputs"]):
                if name:
                    last[name] = index
        frees: list[list[str]] = [[] for _ in self.plan.steps]
        for name, index in last.items():
            if name not in keep:
                frees[index].append(name)
        return frees

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
                                 f"expects {spec['shape']}")
            checked[name] = array.astype(spec["dtype"], copy=False)
        return checked

    def run(self, feeds: dict) -> tuple[dict[str, np.ndarray], dict]:
        feeds = self._check_feeds(feeds)
        ctx = self.ctx
        start_cycle = ctx.synchronize()
        first_record = len(ctx.timeline.records)
        live = dict(self.weights)
        for name, array in feeds.items():
            live[name] = ctx.to_device(array, name=name)
        ops = []
        for (step, selection, attrs), dead in zip(self.steps, self._frees):
            for name in step["outputs"]:
                if name:
                    value = self.plan.values[name]
                    live[name] = ctx.alloc(value["shape"], value["dtype"], name=name)
            record = npu_opslib.launch(
                ctx, selection, [live[n] if n else None for n in step["inputs"]],
                [live[n] for n in step["outputs"] if n], attrs, name=step["name"])
            ops.append(_op_profile(step, selection, record))
            for name in dead:
                ctx.free(live.pop(name))
        outputs = {spec["name"]: ctx.to_host(live[spec["name"]]) for spec in self.plan.outputs}
        for name, darr in live.items():  # the outputs, and any input no step reads
            if name not in self.weights:
                ctx.free(darr)
        end_cycle = ctx.synchronize()
        profile = ctx.profile()
        profile["launches"] = profile["launches"][first_record:]
        profile["total_cycles"] = end_cycle - start_cycle
        profile["latency_us"] = ctx.timeline.cycles_to_us(end_cycle - start_cycle)
        profile["clock_ghz"] = ctx.sku.clock_ghz
        profile["ops"] = ops
        return outputs, profile


def _op_profile(step: dict, selection, record) -> dict:
    cost = selection.cost
    return {"name": step["name"], "op_type": step["op_type"], "kernel": selection.kernel.name,
            "fusion": step["fusion"], "config": selection.config.name,
            "cycles": record.end_cycle - record.start_cycle, "macs": cost.macs,
            "bytes_read": cost.bytes_read, "bytes_written": cost.bytes_written,
            "unit": selection.kernel.unit, "array_utilization": cost.array_utilization}
