"""Where the cycles go: by op type, by unit, by layer; compute vs stall vs fill/drain; the top
ops; and the array's and DRAM's utilization over a run, from the runtime's launch records."""

from __future__ import annotations

from collections import defaultdict

TOP_OPS = 10
TIMELINE_BINS = 50


def _split(cost) -> dict:
    """A cost's cycles in three disjoint parts: streaming compute, fill/drain, stall."""
    fill = getattr(cost, "fill_drain_cycles", 0)  # driver-api 2.2
    return {"compute": cost.compute_cycles - fill, "fill_drain": fill,
            "stall": cost.stall_cycles, "total": cost.total_cycles}


def _add(into: dict, parts: dict) -> None:
    for name, value in parts.items():
        into[name] = into.get(name, 0) + value


def cycles_breakdown(steps, io) -> dict:
    """Cycles grouped by op type, unit and layer, each split in compute/fill_drain/stall.
    `io` is the run's copies (the DMA unit's share)."""
    by_type: dict = defaultdict(dict)
    by_unit: dict = defaultdict(dict)
    layers = []
    for step in steps:
        parts = _split(step.cost)
        label = step.step["op_type"] + (f"+{step.step['fusion']}" if step.step["fusion"] else "")
        _add(by_type[label], parts)
        _add(by_unit[step.unit], parts)
        layers.append({"name": step.name, "op_type": label, "unit": step.unit,
                       "kernel": step.kernel.name, **parts})
    io_parts = _split(io)
    if io_parts["total"]:
        _add(by_unit["dma"], io_parts)
    totals: dict = {}
    for parts in by_unit.values():
        _add(totals, parts)
    run_total = totals.get("total", 0) or 1
    top = sorted(layers, key=lambda layer: -layer["total"])[:TOP_OPS]
    return {
        "total_cycles": totals.get("total", 0),
        "split": totals,
        "by_op_type": dict(sorted(by_type.items(), key=lambda item: -item[1]["total"])),
        "by_unit": dict(by_unit),
        "by_layer": layers,
        "top_ops": [{**layer, "share": layer["total"] / run_total} for layer in top],
    }


def utilization_timeline(launches: list[dict], bins: int = TIMELINE_BINS) -> dict:
    """Array and DRAM-bandwidth utilization in `bins` equal slices of a run: each launch adds
    its utilization for the part of the slice it covers. `launches` are the runtime's records
    (start_cycle, cycles, array_utilization, dram_utilization, unit)."""
    end = max((l["start_cycle"] + l["cycles"] for l in launches), default=0)
    if end == 0:
        return {"bin_cycles": 0, "start_cycle": [], "array": [], "dram": [], "dma": []}
    width = max(1, -(-end // bins))
    slots = -(-end // width)
    array, dram, dma = [0.0] * slots, [0.0] * slots, [0.0] * slots
    for launch in launches:
        start, stop = launch["start_cycle"], launch["start_cycle"] + launch["cycles"]
        for slot in range(start // width, min(slots, -(-stop // width))):
            overlap = min(stop, (slot + 1) * width) - max(start, slot * width)
            if overlap <= 0:
                continue
            share = overlap / width
            array[slot] += share * launch.get("array_utilization", 0.0)
            dram[slot] += share * launch.get("dram_utilization", 0.0)
            if launch.get("unit") == "dma":
                dma[slot] += share
    return {"bin_cycles": width, "start_cycle": [i * width for i in range(slots)],
            "array": [round(v, 6) for v in array], "dram": [round(v, 6) for v in dram],
            "dma": [round(v, 6) for v in dma]}
