"""Fusion and layout opportunities in a compiled plan, with their modelled savings, and the
kernels that run well below their roofline.

A fusion opportunity is a step whose only consumer is an elementwise op that could be its
epilogue (opslib's EPILOGUES): the intermediate goes to DRAM and comes back. The saving is
priced, not guessed: the producer's kernel is priced with the epilogue appended to its fusion
(`Kernel.fused_cost`: the epilogue runs before the write-back, only its extra operands travel)
against the two launches the plan has. When the producer's kernel already accepts that fusion,
the compiler missed it; when it does not, opslib would need the fused kernel.
A layout opportunity is a layout-sensitive step not in the SKU's preferred layout, priced in it.
"""

from __future__ import annotations

import npu_opslib

from npu_compiler.analysis.pricing import price, step_key

BELOW_ROOFLINE = 0.5  # achieved / attainable below this is worth opslib's look
MIN_CYCLES_SHARE = 0.001  # ignore ops under 0.1% of the run


def _consumers(plan) -> dict[str, list[int]]:
    readers: dict[str, list[int]] = {}
    for index, step in enumerate(plan.steps):
        for name in step["inputs"]:
            if name:
                readers.setdefault(name, []).append(index)
    return readers


def _epilogue_candidate(plan, producer: dict, consumer: dict):
    """(op, extra operand shapes) if `consumer` could be `producer`'s epilogue, else None."""
    op = consumer["op_type"]
    if op not in npu_opslib.EPILOGUES or consumer["fusion"]:
        return None
    value = producer["outputs"][0]
    others = [name for name in consumer["inputs"] if name and name != value]
    extra = npu_opslib.EPILOGUES[op].extra_inputs
    if len(others) != extra or consumer["inputs"].count(value) != 1:
        return None
    out_shape = plan.values[value]["shape"]
    shapes = tuple(tuple(plan.values[name]["shape"]) for name in others)
    if any(list(shape) != list(out_shape) for shape in shapes):
        return None  # a broadcast operand: not an epilogue opslib applies
    return op, shapes


def fusion_opportunities(plan, steps, sku) -> list[dict]:
    """Adjacent (producer, sole elementwise consumer) pairs whose intermediate round-trips
    DRAM, with the modelled saving of fusing them, largest first."""
    readers = _consumers(plan)
    outputs = {o["name"] for o in plan.outputs}
    found = []
    for index, producer in enumerate(steps):
        if len(producer.step["outputs"]) != 1 or producer.step["outputs"][0] in outputs:
            continue
        users = readers.get(producer.step["outputs"][0], [])
        if len(users) != 1:
            continue
        consumer = steps[users[0]]
        candidate = _epilogue_candidate(plan, producer.step, consumer.step)
        if candidate is None:
            continue
        op, extra = candidate
        fusion = "+".join(filter(None, [producer.step["fusion"], op]))
        key = step_key(plan, producer.step, fusion=fusion, extra_shapes=extra)
        if producer.kernel.unit != "array" and producer.kernel.fusions == ("",):
            continue  # a kernel with no epilogues at all (reshapes, pools) is not a producer
        fused, _ = price(producer.kernel, sku, key, producer.config, producer.attrs)
        separate = producer.cost.total_cycles + consumer.cost.total_cycles
        saving = separate - fused.total_cycles
        if saving <= 0:
            continue
        intermediate = plan.values[producer.step["outputs"][0]]
        supported = producer.kernel.accepts(key) == ""
        found.append({
            "kind": "fusion", "producer": producer.name, "consumer": consumer.name,
            "pattern": f"{producer.step['op_type']}+{fusion}",
            "intermediate": producer.step["outputs"][0], "shape": intermediate["shape"],
            "separate_cycles": separate, "fused_cycles": fused.total_cycles,
            "saving_cycles": saving,
            "dram_bytes_saved": (producer.cost.bytes_written + consumer.cost.bytes_read
                                 + consumer.cost.bytes_written - fused.bytes_written
                                 - (fused.bytes_read - producer.cost.bytes_read)),
            "kernel_supports_it": supported,
            "owner": "compiler" if supported else "opslib",
            "why": ("the producer's kernel accepts this fusion: the compiler did not fuse"
                    if supported else "no fused kernel in opslib for this pattern"),
        })
    return sorted(found, key=lambda item: -item["saving_cycles"])


def layout_opportunities(plan, steps, sku) -> list[dict]:
    """Layout-sensitive steps not in the SKU's preferred layout, priced in it."""
    preferred = getattr(sku, "layout", "NCHW")
    found = []
    for step in steps:
        if not step.kernel.layout_sensitive() or step.key.layout == preferred:
            continue
        key = step_key(plan, step.step, layout=preferred)
        if step.kernel.accepts(key):
            continue
        cost, _ = price(step.kernel, sku, key, step.config, step.attrs)
        saving = step.cost.total_cycles - cost.total_cycles
        if saving > 0:
            found.append({"kind": "layout", "step": step.name, "op_type": step.step["op_type"],
                          "layout": step.key.layout, "preferred": preferred,
                          "cycles": step.cost.total_cycles, "in_preferred": cost.total_cycles,
                          "saving_cycles": saving, "owner": "compiler"})
    return sorted(found, key=lambda item: -item["saving_cycles"])


def below_roofline(ops: list[dict], total_cycles: int) -> list[dict]:
    """Ops of a real share of the run achieving under BELOW_ROOFLINE of their roofline, with
    the cycles they would take at it (opslib's tile configurations or dispatch)."""
    found = []
    for op in ops:
        if op["cycles"] < MIN_CYCLES_SHARE * max(total_cycles, 1) or not op["operations"]:
            continue
        if op["roofline_efficiency"] < BELOW_ROOFLINE and op["bound"] != "latency-bound":
            at_roof = op["operations"] / op["attainable_ops_per_cycle"]
            found.append({"kind": "below_roofline", "step": op["name"],
                          "op_type": op["op_type"], "kernel": op["kernel"],
                          "cycles": op["cycles"], "efficiency": op["roofline_efficiency"],
                          "roofline_cycles": int(at_roof),
                          "saving_cycles": op["cycles"] - int(at_roof), "bound": op["bound"],
                          "owner": "opslib"})
    return sorted(found, key=lambda item: -item["saving_cycles"])
