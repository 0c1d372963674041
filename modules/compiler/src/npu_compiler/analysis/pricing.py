"""What each step of a compiled plan costs on a SKU: the plan's own kernel and configuration,
priced by opslib's `Kernel.fused_cost` on the driver's cost model (the engine's choice when the
SKU is the plan's), with the driver's cost calls recorded for the vectorized what-ifs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import npu_opslib
from npu_driver import perf

# ONNX's layout: what a step without a layout runs in (the engine's default too).
DEFAULT_LAYOUT = "NCHW"


@dataclass
class StepCost:
    """One launch of the plan: the step (plan JSON), its kernel, its cost and the cost calls."""

    step: dict
    kernel: npu_opslib.Kernel
    key: npu_opslib.KernelKey
    config: npu_opslib.TileConfig
    attrs: dict
    cost: perf.Cost
    calls: list

    @property
    def name(self) -> str:
        return self.step["name"]

    @property
    def unit(self) -> str:
        return self.kernel.unit


def step_key(plan, step: dict, *, fusion: str | None = None, layout: str | None = None,
             extra_shapes: tuple = ()) -> npu_opslib.KernelKey:
    """The dispatch key of `step` (optionally with another fusion, layout or extra operands)."""
    shapes = tuple(tuple(plan.values[name]["shape"]) for name in step["inputs"] if name)
    return npu_opslib.KernelKey(step["op_type"], shapes + tuple(extra_shapes),
                                step.get("precision", plan.precision),
                                layout or step.get("layout", DEFAULT_LAYOUT),
                                step["fusion"] if fusion is None else fusion)


def price(kernel, sku, key, config, attrs) -> tuple[perf.Cost, list]:
    """The kernel's cost of `key` on `sku`, and the driver cost calls it is the sum of (none
    with a driver older than driver-api 2.2, which cannot record them)."""
    recording = getattr(perf, "recording", None)
    if recording is None:
        return kernel.fused_cost(sku, key, config, attrs), []
    with recording() as calls:
        cost = kernel.fused_cost(sku, key, config, attrs)
    return cost, list(calls)


def price_steps(plan, sku) -> list[StepCost]:
    """Every step of `plan` on `sku`, in order."""
    priced = []
    for step in plan.steps:
        kernel = npu_opslib.get_kernel(step["op_type"])()
        key = step_key(plan, step)
        config = npu_opslib.TileConfig.from_dict(step["config"])
        attrs = plan.step_attrs(step)
        cost, calls = price(kernel, sku, key, config, attrs)
        priced.append(StepCost(step, kernel, key, config, attrs, cost, calls))
    return priced


def io_calls(plan) -> list[perf.CostCall]:
    """The copies of a run: every input to the device, every output back (as the engine)."""
    def nbytes(spec):
        return int(np.prod(spec["shape"], dtype=np.int64)) * np.dtype(spec["dtype"]).itemsize

    return ([perf.CostCall("dma_cost", {"nbytes": nbytes(s), "direction": "h2d"})
             for s in plan.inputs]
            + [perf.CostCall("dma_cost", {"nbytes": nbytes(s), "direction": "d2h"})
               for s in plan.outputs])


def io_cost(plan, sku) -> perf.Cost:
    costs = [perf.dma_cost(sku, **call.arguments) for call in io_calls(plan)]
    return sum(costs) if costs else perf.dma_cost(sku, 0)


def run_cycles(plan, sku, steps: list[StepCost] | None = None) -> int:
    """The cycles of one run on one stream: copies in, every step, copies out."""
    steps = price_steps(plan, sku) if steps is None else steps
    return io_cost(plan, sku).total_cycles + sum(s.cost.total_cycles for s in steps)
