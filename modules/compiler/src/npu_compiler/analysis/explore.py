"""Design-space what-ifs: compiled plans priced at many design points at once.

Each plan's steps are priced once on the base SKU with the driver's cost calls recorded
(`perf.recording`); the calls are then re-priced over every design point by the vectorized cost
model (`npu_driver.perf_grid`), never re-running a kernel. By default the SRAM tile of matrix
work is re-chosen at each point by the cost model's own search, as compiling for that point
would (autotuning's best tile is the search's best); `plan_tiles=True` keeps the plan's tiles
(points whose SRAM cannot hold them are infeasible). Suite figures per point, and the Pareto
front of latency against an area proxy (PEs plus SRAM, a KiB of SRAM weighing as one PE).
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import yaml

from npu_compiler.analysis.pricing import io_calls, price_steps

# --vary names -> SKU fields (array=RxC sets two)
ALIASES = {"sram": "sram_bytes", "dram_bandwidth": "dram_bandwidth_gbps",
           "bandwidth": "dram_bandwidth_gbps", "lanes": "vector_lanes",
           "clock": "clock_ghz", "latency": "dram_latency_ns"}
BYTES_PER_PE = 1024  # the area proxy: one PE weighs as much as a KiB of SRAM
MAX_POINTS = 100_000  # a grid beyond this is a typo more often than a plan


class ExploreError(ValueError):
    """A bad --vary specification (one line naming it)."""


def parse_vary(specs: list[str]) -> dict[str, list]:
    """["array=32x32,64x64", "sram=1MiB,2MiB"] -> {"array": [(32, 32), (64, 64)], ...}."""
    from npu_driver.sku import SKU

    known = {f.name for f in dataclasses.fields(SKU)} - {"name", "description", "precisions"}
    axes: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise ExploreError(f"--vary expects NAME=V1,V2,..., got {spec!r}")
        field = ALIASES.get(name, name)
        if field != "array" and field not in known:
            raise ExploreError(f"--vary {name}: unknown SKU field (known: array, "
                               f"{', '.join(sorted(set(ALIASES) | known))})")
        parsed = [_value(name, field, v.strip()) for v in values.split(",") if v.strip()]
        if field in axes:
            raise ExploreError(f"--vary {name} is given twice")
        axes[field] = parsed
    return axes


def _value(name: str, field: str, text: str):
    if field == "array":
        rows, x, cols = text.lower().partition("x")
        if not (x and rows.isdigit() and cols.isdigit()):
            raise ExploreError(f"--vary {name}: expected ROWSxCOLS (e.g. 32x32), got {text!r}")
        return int(rows), int(cols)
    if field in ("sram_bytes", "device_memory_bytes"):
        return text  # the SKU validator reads sizes such as "2 MiB"
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ExploreError(f"--vary {name}: cannot read value {text!r}") from None


def design_points(base, axes: dict[str, list]) -> list:
    """Every combination of the axes' values applied to `base`, validated as SKU files are."""
    names = list(axes)
    size = 1
    for name in names:
        size *= len(axes[name])
    if size > MAX_POINTS:
        raise ExploreError(f"--vary gives {size} design points, more than {MAX_POINTS}: "
                           "sweep fewer values per axis")
    points = []
    for values in itertools.product(*(axes[n] for n in names)):
        fields = {}
        for name, value in zip(names, values):
            if name == "array":
                fields["array_rows"], fields["array_cols"] = value
            else:
                fields[name] = value
        points.append(base.with_overrides(**fields))
    return points


@dataclasses.dataclass
class PricedPlan:
    """A plan reduced to what the what-ifs need: every step's driver cost calls."""

    name: str
    calls: list  # perf.CostCall, the steps' then the copies'
    base_cycles: int


def prepare_plan(name: str, plan, sku) -> PricedPlan:
    steps = price_steps(plan, sku)
    calls = [call for step in steps for call in step.calls] + io_calls(plan)
    from npu_driver import perf

    io = sum((perf.dma_cost(sku, **c.arguments) for c in io_calls(plan)), perf.dma_cost(sku, 0))
    return PricedPlan(name, calls, io.total_cycles + sum(s.cost.total_cycles for s in steps))


def _retiled(calls: list) -> list:
    from npu_driver import perf

    return [perf.CostCall(c.function, {**c.arguments, "tile": None})
            if "tile" in c.arguments else c for c in calls]


def check_recipes(plans: list[PricedPlan], base) -> None:
    """Each plan's recorded calls, priced vectorized on the base SKU, give the scalar run's
    cycles: a kernel whose cost is not the sum of its driver calls would be mispriced."""
    from npu_driver import perf_grid

    grid = perf_grid.Grid.from_skus([base])
    for plan in plans:
        got = int(perf_grid.price(grid, plan.calls).total_cycles[0])
        if got != plan.base_cycles:
            raise ExploreError(f"{plan.name}: its steps' costs are not the sum of their driver "
                               f"cost calls ({got} vs {plan.base_cycles} cycles)")


def explore(plans: list[PricedPlan], base, points: list, *, plan_tiles: bool = False,
            bytes_per_pe: int = BYTES_PER_PE) -> dict:
    """Suite totals at every design point and the Pareto front (latency vs area proxy)."""
    try:
        from npu_driver import perf_grid
    except ImportError:
        raise ExploreError("explore needs the vectorized cost model of driver-api 2.2 "
                           "(npu_driver.perf_grid); this driver is older") from None

    started = time.perf_counter()
    check_recipes(plans, base)
    grid = perf_grid.Grid.from_skus(points)
    memo: dict = {}
    per_model = {}
    total = perf_grid.GridCost.zeros(len(grid))
    for plan in plans:
        cost = perf_grid.price(grid, plan.calls if plan_tiles else _retiled(plan.calls), memo)
        per_model[plan.name] = cost
        total = total + cost
    priced_s = time.perf_counter() - started
    document = _document(plans, base, points, grid, per_model, total, bytes_per_pe,
                         priced_s, plan_tiles)
    # The base SKU's own figures, priced the same way: what every point is compared with.
    base_grid = perf_grid.Grid.from_skus([base])
    base_models = {plan.name: perf_grid.price(
        base_grid, plan.calls if plan_tiles else _retiled(plan.calls)) for plan in plans}
    base_total = sum(base_models.values(), perf_grid.GridCost.zeros(1))
    document["base_point"] = _document(plans, base, [base], base_grid, base_models, base_total,
                                       bytes_per_pe, 0.0, plan_tiles)["points"][0]
    return document


def _document(plans, base, points, grid, per_model, total, bytes_per_pe, priced_s, plan_tiles):
    pes = grid.array_rows * grid.array_cols * grid.cores
    sram = grid.sram_bytes * grid.cores
    cycles = total.total_cycles
    with np.errstate(divide="ignore", invalid="ignore"):
        latency_us = sum(c.total_cycles for c in per_model.values()) / (grid.clock_ghz * 1e3)
        array_util = np.where(cycles > 0, total.pe_cycles / (cycles * pes), 0.0)
        dram_util = np.where(cycles > 0, total.memory_cycles / cycles, 0.0)
    area = pes + sram / bytes_per_pe
    front = pareto_front(latency_us, area, total.feasible)
    rows = []
    for p, sku in enumerate(points):
        rows.append({
            "point": p, "array": f"{sku.array_rows}x{sku.array_cols}", "cores": sku.cores,
            "sram_bytes": sku.sram_bytes, "dram_bandwidth_gbps": sku.dram_bandwidth_gbps,
            "dataflow": sku.dataflow, "clock_ghz": sku.clock_ghz,
            "vector_lanes": sku.vector_lanes, "feasible": bool(total.feasible[p]),
            "total_cycles": int(cycles[p]), "latency_us": float(latency_us[p]),
            "array_utilization": float(array_util[p]), "dram_utilization": float(dram_util[p]),
            "area": float(area[p]), "pareto": p in front,
            "models": {name: int(c.total_cycles[p]) for name, c in per_model.items()}})
    return {"base": base.name, "points": rows, "pareto": front,
            "models": [p.name for p in plans], "tiles": "plan" if plan_tiles else "re-chosen",
            "area_proxy": f"PEs + SRAM bytes / {bytes_per_pe}",
            "base_cycles": {p.name: p.base_cycles for p in plans},
            "pricing_seconds": round(priced_s, 4)}


def pareto_front(latency, area, feasible) -> list[int]:
    """Indices of the feasible points no other point beats on both latency and area,
    by increasing area."""
    order = sorted((i for i in range(len(latency)) if feasible[i]),
                   key=lambda i: (area[i], latency[i]))
    front, best = [], float("inf")
    for i in order:
        if latency[i] < best:
            front.append(i)
            best = latency[i]
    return front
