"""Roofline and bound per op, confirmed counterfactually.

Each op's arithmetic intensity (operations per DRAM byte) is set against the SKU's peak compute
at its precision and its DRAM bandwidth (the roofline's prediction), and then the op is
re-priced on the same cost model with one resource doubled at a time: DRAM bandwidth, the
array (twice the columns: twice the PEs), the vector lanes, the SRAM. Its class is what actually
helps: the largest saving, if it is at least `MIN_GAIN` of its cycles; otherwise nothing a
bigger part offers helps and the op is latency-bound (fill/drain, DRAM latency, small problem).
"""

from __future__ import annotations

from npu_compiler.analysis.pricing import price

MIN_GAIN = 0.05  # a doubling that saves less than this is not what bounds the op
# resource -> (SKU overrides of the doubled part, the class a real saving confirms)
COUNTERFACTUALS = {
    "dram_bandwidth_x2": (lambda s: {"dram_bandwidth_gbps": 2 * s.dram_bandwidth_gbps},
                          "memory-bound"),
    "sram_x2": (lambda s: {"sram_bytes": 2 * s.sram_bytes}, "memory-bound"),
    "array_x2": (lambda s: {"array_cols": 2 * s.array_cols}, "array-bound"),
    "vector_x2": (lambda s: {"vector_lanes": 2 * s.vector_lanes}, "vector-bound"),
}
BOUNDS = ("array-bound", "vector-bound", "memory-bound", "latency-bound")


def counterfactual_skus(sku) -> dict:
    return {name: sku.with_overrides(**change(sku))
            for name, (change, _) in COUNTERFACTUALS.items()}


def classify(cycles: int, counterfactual: dict[str, int]) -> tuple[str, str | None, float]:
    """(bound, the doubling that helps most, its saving as a fraction of `cycles`)."""
    if cycles <= 0:
        return "latency-bound", None, 0.0
    best = min(counterfactual, key=lambda name: (counterfactual[name], name))
    gain = (cycles - counterfactual[best]) / cycles
    if gain < MIN_GAIN:
        return "latency-bound", None, max(gain, 0.0)
    return COUNTERFACTUALS[best][1], best, gain


def peaks(sku, precision: str, unit: str) -> float:
    """Peak operations per cycle of the unit at `precision` (a MAC counts as two)."""
    multiplier = sku.multiplier(precision)
    if unit == "array":
        return 2.0 * sku.array_rows * sku.array_cols * sku.cores * multiplier
    return float(sku.vector_lanes * sku.cores * multiplier)


def op_roofline(step, sku, counterfactual_steps: dict) -> dict:
    """One op's roofline figures, counterfactual cycles and bound."""
    cost = step.cost
    precision = step.key.precision if step.key.precision in sku.precisions else "fp32"
    unit = step.unit
    # Array work is its MACs; vector work what the lanes did in the compute cycles.
    operations = 2 * cost.macs if cost.macs else \
        cost.compute_cycles * peaks(sku, precision, "vector")
    moved = cost.bytes_read + cost.bytes_written
    intensity = operations / moved if moved else None
    peak = peaks(sku, precision, "array" if cost.macs else "vector")
    bandwidth = sku.dram_bytes_per_cycle
    attainable = peak if intensity is None else min(peak, intensity * bandwidth)
    achieved = operations / cost.total_cycles if cost.total_cycles else 0.0
    cycles = {name: steps.cost.total_cycles for name, steps in counterfactual_steps.items()}
    bound, helps, gain = classify(cost.total_cycles, cycles)
    predicted = ("memory-bound" if intensity is not None and intensity * bandwidth < peak
                 else "array-bound" if cost.macs else "vector-bound")
    return {"name": step.name, "op_type": step.step["op_type"], "unit": unit,
            "kernel": step.kernel.name, "cycles": cost.total_cycles, "operations": operations,
            "bytes": moved, "intensity": intensity, "peak_ops_per_cycle": peak,
            "attainable_ops_per_cycle": attainable, "achieved_ops_per_cycle": achieved,
            "roofline_efficiency": achieved / attainable if attainable else 0.0,
            "sram_fill": cost.sram_bytes / sku.sram_bytes,
            "counterfactual_cycles": cycles, "bound": bound, "helped_by": helps,
            "gain": gain, "roofline_bound": predicted}


def reprice(steps, sku) -> list:
    """The same kernels and configurations priced on another SKU (a counterfactual part)."""
    from npu_compiler.analysis.pricing import StepCost

    repriced = []
    for step in steps:
        cost, calls = price(step.kernel, sku, step.key, step.config, step.attrs)
        repriced.append(StepCost(step.step, step.kernel, step.key, step.config, step.attrs,
                                 cost, calls))
    return repriced


def rooflines(steps, sku) -> dict:
    """Per op roofline and bound, the share of cycles per bound, and the SKU's roofs."""
    alternatives = {name: reprice(steps, part) for name, part in counterfactual_skus(sku).items()}
    ops = [op_roofline(step, sku, {name: alt[i] for name, alt in alternatives.items()})
           for i, step in enumerate(steps)]
    total = sum(op["cycles"] for op in ops) or 1
    shares = {bound: sum(op["cycles"] for op in ops if op["bound"] == bound) / total
              for bound in BOUNDS}
    suite = {name: sum(s.cost.total_cycles for s in alt) for name, alt in alternatives.items()}
    return {"ops": ops, "bound_share": shares, "counterfactual_total_cycles": suite,
            "roofs": {"dram_bytes_per_cycle": sku.dram_bytes_per_cycle,
                      "sram_bytes": sku.sram_bytes,
                      "peak_ops_per_cycle": {p: peaks(sku, p, "array") for p in sku.precisions},
                      "vector_ops_per_cycle": {p: peaks(sku, p, "vector")
                                               for p in sku.precisions}}}
