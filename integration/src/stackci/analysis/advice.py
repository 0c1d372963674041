"""Advice for the module teams from the stack's analysis documents (`python -m npu_compiler
analyze --json`, one per workload x SKU x precision) and design sweeps (`explore --json`).

Each item says what to change, the evidence (ops, cycles, counterfactual cycles), the modelled
gain on the suite (microseconds saved, and the share of the suite's modelled time), and the
owning team, found in the ownership file by the path the change concerns:

    kernel below its roofline, a fusion no kernel offers     -> opslib
    a fusion the kernel offers but the plan lacks, a layout,
    a fusion lost between two plans                          -> compiler
    copies that no compute overlaps, gaps between launches   -> runtime
    the share of memory-bound time, what doubling a resource
    or a design point of the sweep would save                -> the SKU file's owner (hardware)
    a batch sweet spot that moved                            -> workloads' owner (architecture)

Pure functions over JSON; the owners come in as an `Owners` (see owners.py).
"""

from __future__ import annotations

from collections import defaultdict

PATHS = {
    "kernel": "modules/opslib/src/npu_opslib/ops/",
    "fused-kernel": "modules/opslib/src/npu_opslib/ops/",
    "fusion": "modules/compiler/src/npu_compiler/",
    "layout": "modules/compiler/src/npu_compiler/",
    "lost-optimization": "modules/compiler/src/npu_compiler/",
    "copies": "modules/runtime/src/npu_runtime/",
    "launch-gaps": "modules/runtime/src/npu_runtime/",
    "hardware": "modules/driver/src/npu_driver/skus/{sku}.yaml",
    "design-point": "modules/driver/src/npu_driver/skus/{sku}.yaml",
    "sweet-spot": "workloads/suite.yaml",
}
MIN_RESOURCE_GAIN = 0.05  # a doubled resource saving less of a SKU's suite time is no advice
EVIDENCE_ROWS = 10


def _label(doc: dict) -> str:
    return f"{doc.get('workload') or doc.get('model')} on {doc['sku']} ({doc['precision']})"


def _us_per_cycle(doc: dict) -> float:
    cycles = doc.get("modelled_cycles") or 0
    return doc.get("latency_us", 0.0) / cycles if cycles else 0.0


def suite_time_us(docs: list[dict]) -> float:
    return sum(doc.get("latency_us", 0.0) for doc in docs)


def _item(kind: str, key: str, change: str, evidence: list[dict], gain_us: float,
          suite_us: float, sku: str = "", **extra) -> dict:
    evidence = sorted(evidence, key=lambda e: -e.get("saving_cycles", e.get("cycles", 0)))
    return {"id": f"{kind}:{key}", "kind": kind, "change": change,
            "path": PATHS[kind].format(sku=sku), "gain_us": gain_us,
            "gain_share": gain_us / suite_us if suite_us else 0.0,
            "workloads": sorted({e["workload"] for e in evidence if "workload" in e}),
            "evidence": evidence[:EVIDENCE_ROWS], "evidence_count": len(evidence), **extra}


def _op_evidence(doc: dict, entry: dict, **fields) -> dict:
    return {"workload": _label(doc), **fields,
            "gain_us": entry.get("saving_cycles", 0) * _us_per_cycle(doc)}


def kernel_items(docs: list[dict], suite_us: float) -> list[dict]:
    """Kernels well below their roofline, grouped by kernel and op type."""
    groups = defaultdict(list)
    for doc in docs:
        for entry in doc.get("below_roofline", []):
            groups[(entry["kernel"], entry["op_type"])].append(_op_evidence(
                doc, entry, step=entry["step"], cycles=entry["cycles"],
                roofline_cycles=entry["roofline_cycles"], saving_cycles=entry["saving_cycles"],
                efficiency=round(entry["efficiency"], 3), bound=entry["bound"]))
    items = []
    for (kernel, op_type), evidence in groups.items():
        worst = min(e["efficiency"] for e in evidence)
        items.append(_item(
            "kernel", f"{kernel}/{op_type}",
            f"Tune {kernel} ({op_type}): {len(evidence)} launches run at as little as "
            f"{100 * worst:.0f}% of their roofline; look at its tile configurations and dispatch",
            evidence, sum(e["gain_us"] for e in evidence), suite_us))
    return items


def fusion_items(docs: list[dict], suite_us: float) -> list[dict]:
    """Intermediates that round-trip DRAM, grouped by fusion pattern and by who can fix it."""
    groups = defaultdict(list)
    for doc in docs:
        for entry in doc.get("fusion_opportunities", []):
            kind = "fusion" if entry.get("kernel_supports_it") else "fused-kernel"
            groups[(kind, entry["pattern"])].append(_op_evidence(
                doc, entry, step=entry["producer"], consumer=entry["consumer"],
                separate_cycles=entry["separate_cycles"], fused_cycles=entry["fused_cycles"],
                saving_cycles=entry["saving_cycles"],
                dram_bytes_saved=entry.get("dram_bytes_saved", 0)))
    items = []
    for (kind, pattern), evidence in groups.items():
        if kind == "fusion":
            change = (f"Fuse {pattern}: the kernel accepts the epilogue but {len(evidence)} "
                      "plans keep the intermediate in DRAM")
        else:
            change = (f"Add a fused {pattern} kernel: {len(evidence)} intermediates round-trip "
                      "DRAM for want of one")
        items.append(_item(kind, pattern, change, evidence,
                           sum(e["gain_us"] for e in evidence), suite_us))
    return items


def layout_items(docs: list[dict], suite_us: float) -> list[dict]:
    groups = defaultdict(list)
    for doc in docs:
        for entry in doc.get("layout_opportunities", []):
            groups[(entry["op_type"], entry["preferred"])].append(_op_evidence(
                doc, entry, step=entry["step"], layout=entry["layout"],
                cycles=entry["cycles"], saving_cycles=entry["saving_cycles"]))
    return [_item("layout", f"{op}/{preferred}",
                  f"Lay {op} out in {preferred} (the SKU's layout): {len(ev)} steps pay a "
                  "re-layout on the way in and out", ev, sum(e["gain_us"] for e in ev), suite_us)
            for (op, preferred), ev in groups.items()]


def lost_items(docs: list[dict], suite_us: float) -> list[dict]:
    """Fusions a plan diff (`plan_diff` attached to a document) shows as lost, priced by the
    fusion opportunity the later plan has at that step."""
    items = []
    for doc in docs:
        diff = doc.get("plan_diff")
        if not diff:
            continue
        savings = {e["producer"]: e for e in doc.get("fusion_opportunities", [])}
        evidence = []
        for lost in diff.get("fusions_lost", []):
            found = savings.get(lost["step"], {})
            evidence.append(_op_evidence(doc, found, step=lost["step"],
                                         before=lost.get(diff["a"]), after=lost.get(diff["b"]),
                                         saving_cycles=found.get("saving_cycles", 0)))
        passes = diff.get("passes_only_in", {}).get(diff["a"], [])
        if evidence or passes:
            what = f"{len(evidence)} fusions" + (f" and passes {', '.join(passes)}" if passes else "")
            items.append(_item("lost-optimization", f"{diff['a']}->{diff['b']}/{_label(doc)}",
                               f"Restore what {diff['b']} lost against {diff['a']} on "
                               f"{_label(doc)}: {what}", evidence,
                               sum(e["gain_us"] for e in evidence), suite_us,
                               versions=[diff["a"], diff["b"]]))
    return items


def runtime_items(docs: list[dict], suite_us: float) -> list[dict]:
    copies, gaps = [], []
    for doc in docs:
        run = doc.get("run")
        if not run:
            continue
        compute = doc["modelled_cycles"] - run.get("copy_cycles", 0)
        hidden = min(run.get("copy_cycles_not_overlapped", 0), max(compute, 0))
        if hidden:
            copies.append({"workload": _label(doc), "cycles": run["copy_cycles"],
                           "not_overlapped": run["copy_cycles_not_overlapped"],
                           "saving_cycles": hidden, "gain_us": hidden * _us_per_cycle(doc)})
        if run.get("launch_gap_cycles"):
            gaps.append({"workload": _label(doc), "saving_cycles": run["launch_gap_cycles"],
                         "gain_us": run["launch_gap_cycles"] * _us_per_cycle(doc)})
    items = []
    if copies:
        items.append(_item("copies", "overlap",
                           "Overlap host copies with compute (a copy stream, double-buffered "
                           f"inputs): in {len(copies)} runs every copy waits on the kernels' stream",
                           copies, sum(e["gain_us"] for e in copies), suite_us))
    if gaps:
        items.append(_item("launch-gaps", "gaps", "Close the idle gaps between launches",
                           gaps, sum(e["gain_us"] for e in gaps), suite_us))
    return items


def hardware_items(docs: list[dict], suite_us: float) -> list[dict]:
    """Per SKU: what doubling each resource saves on its share of the suite (the documents'
    counterfactual totals), with the memory-bound share as context."""
    by_sku = defaultdict(list)
    for doc in docs:
        by_sku[doc["sku"]].append(doc)
    items = []
    for sku, group in by_sku.items():
        cycles = sum(d["modelled_cycles"] for d in group) or 1
        memory_share = sum(d["roofline"]["bound_share"].get("memory-bound", 0) * d["modelled_cycles"]
                           for d in group) / cycles
        totals = defaultdict(float)
        for doc in group:
            ratio = _us_per_cycle(doc)
            steps = sum(op["cycles"] for op in doc["roofline"]["ops"])
            for name, value in doc["roofline"]["counterfactual_total_cycles"].items():
                totals[name] += (steps - value) * ratio
        sku_us = suite_time_us(group)
        for name, gain_us in sorted(totals.items(), key=lambda kv: -kv[1]):
            if sku_us and gain_us / sku_us >= MIN_RESOURCE_GAIN:
                evidence = [{"workload": _label(d), "cycles": sum(o["cycles"] for o in d["roofline"]["ops"]),
                             "counterfactual_cycles": d["roofline"]["counterfactual_total_cycles"][name],
                             "memory_bound_share": round(d["roofline"]["bound_share"].get("memory-bound", 0), 3)}
                            for d in group]
                items.append(_item(
                    "hardware", f"{sku}/{name}",
                    f"{sku}: {name.replace('_x2', '').replace('_', ' ')} x2 saves "
                    f"{100 * gain_us / sku_us:.0f}% of its suite time ({100 * memory_share:.0f}% "
                    "of its cycles are memory-bound)", evidence, gain_us, suite_us, sku=sku,
                    memory_bound_share=memory_share))
    return items


def design_items(sweeps: list[dict], docs: list[dict], suite_us: float) -> list[dict]:
    """The Pareto points of a design sweep that beat the base SKU's own point on latency:
    those no larger than the base first (a better part outright), then the largest gains."""
    items = []
    for sweep in sweeps:
        points = sweep["points"]
        front = [points[i] for i in sweep.get("pareto", [])]
        base_point = sweep.get("base_point")
        if not base_point:
            continue
        for point in front:
            if point["latency_us"] >= base_point["latency_us"]:
                continue
            gain_us = base_point["latency_us"] - point["latency_us"]
            items.append(_item(
                "design-point", f"{sweep['base']}/{point['point']}",
                f"{sweep['base']}: array {point['array']}, SRAM {point['sram_bytes']} B, DRAM "
                f"{point['dram_bandwidth_gbps']:g} GB/s is {100 * gain_us / base_point['latency_us']:.0f}% "
                f"faster on the sweep's models at area {point['area']:.0f} "
                f"({sweep['base']} itself: {base_point['area']:.0f})",
                [{"point": point["point"], "latency_us": point["latency_us"],
                  "area": point["area"], "array_utilization": point["array_utilization"],
                  "base_latency_us": base_point["latency_us"]}], gain_us,
                suite_us or base_point["latency_us"], sku=sweep["base"],
                no_larger=point["area"] <= base_point["area"]))
    items.sort(key=lambda item: (not item["no_larger"], -item["gain_us"]))
    return items[:5]


def sweet_spot_items(docs: list[dict], previous: dict[str, dict], suite_us: float) -> list[dict]:
    """A sweet spot (Offline, Server or knee batch) that moved since the previous document of
    the same workload x SKU x precision: a finding even when batch-1 latency did not change."""
    items = []
    for doc in docs:
        now = doc.get("batch_sweep")
        before = (previous.get(_label(doc)) or {}).get("batch_sweep")
        if not now or not before:
            continue
        moved = {k: [before.get(k), now.get(k)] for k in ("offline", "server", "knee")
                 if before.get(k) != now.get(k)}
        if moved:
            text = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in moved.items())
            items.append(_item("sweet-spot", _label(doc),
                               f"Sweet spot of {_label(doc)} moved: {text}",
                               [{"workload": _label(doc), **{k: v for k, v in moved.items()}}],
                               0.0, suite_us, moved=moved))
    return items


def advise(docs: list[dict], owners, *, sweeps: list[dict] = (),
           previous: dict[str, dict] | None = None) -> list[dict]:
    """Every advice item, largest modelled gain first, each with its team and contact."""
    suite_us = suite_time_us(docs)
    items = (kernel_items(docs, suite_us) + fusion_items(docs, suite_us)
             + layout_items(docs, suite_us) + lost_items(docs, suite_us)
             + runtime_items(docs, suite_us) + hardware_items(docs, suite_us)
             + design_items(list(sweeps), docs, suite_us)
             + sweet_spot_items(docs, previous or {}, suite_us))
    for item in items:
        team = owners.owner_of(item["path"])
        item["team"] = team.name if team else "unowned"
        item["contact"] = team.contact if team else ""
    return sorted(items, key=lambda item: (-item["gain_us"], item["id"]))


def by_team(items: list[dict]) -> dict[str, list[dict]]:
    teams: dict[str, list[dict]] = {}
    for item in items:
        teams.setdefault(item["team"], []).append(item)
    return teams
