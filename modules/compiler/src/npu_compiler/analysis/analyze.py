"""One workload on one SKU at one precision, analysed: where the cycles go, what bounds each op
(confirmed counterfactually), fusion and layout opportunities, kernels below their roofline,
the run's utilization timeline and gaps (from the runtime's launch records of one functional
run), and optionally the batch sweep."""

from __future__ import annotations

from npu_compiler.analysis import breakdown, fusion, roofline, sweep
from npu_compiler.analysis.pricing import io_cost, price_steps


def compile_for(model, sku, *, precision="fp32", batch=None, pipeline=None, calibration=None,
                cache_dir=None):
    from npu_compiler.compile import compile_model

    return compile_model(model, sku, precision=precision, batch=batch, pipeline=pipeline,
                         calibration=calibration, cache_dir=cache_dir)


def analyze_plan(plan, sku, *, run: bool = True, seed: int = 0) -> dict:
    """The analysis document of a compiled plan on `sku` (the SKU it was compiled for)."""
    steps = price_steps(plan, sku)
    io = io_cost(plan, sku)
    cycles = breakdown.cycles_breakdown(steps, io)
    roofs = roofline.rooflines(steps, sku)
    modelled = cycles["total_cycles"]
    document = {
        "model": plan.model, "sku": sku.name, "precision": plan.precision,
        "batch": _batch(plan), "steps": len(plan.steps),
        "modelled_cycles": modelled,
        "latency_us": modelled / (sku.clock_ghz * 1e3),
        "cycles": cycles,
        "roofline": roofs,
        "fusion_opportunities": fusion.fusion_opportunities(plan, steps, sku),
        "layout_opportunities": fusion.layout_opportunities(plan, steps, sku),
        "below_roofline": fusion.below_roofline(roofs["ops"], modelled),
    }
    if run:
        document["run"] = functional_run(plan, sku, seed)
    return document


def functional_run(plan, sku, seed: int = 0) -> dict:
    """One run on the engine: the runtime's launch records give the timeline and the gaps."""
    from npu_compiler.engine import Engine
    from npu_compiler.passes.precision import random_feeds

    engine = Engine(plan, sku=sku)
    _, profile = engine.run(random_feeds(plan.inputs, seed))
    launches = profile["launches"]
    return {"total_cycles": profile["total_cycles"], "latency_us": profile["latency_us"],
            "peak_device_bytes": profile["peak_device_bytes"],
            "timeline": breakdown.utilization_timeline(launches),
            **launch_gaps(launches)}


def launch_gaps(launches: list[dict]) -> dict:
    """Idle cycles between launches on each stream, and copies that no compute overlaps (a
    copy on the stream of the kernels waits for them, or they for it)."""
    by_stream: dict[str, list[dict]] = {}
    for launch in launches:
        by_stream.setdefault(launch["stream"], []).append(launch)
    gaps = 0
    for records in by_stream.values():
        records.sort(key=lambda r: r["start_cycle"])
        for before, after in zip(records, records[1:]):
            gaps += max(0, after["start_cycle"] - before["start_cycle"] - before["cycles"])
    copies = [l for l in launches if l.get("unit") == "dma"]
    compute = [l for l in launches if l.get("unit") != "dma"]
    exposed = 0
    for copy in copies:
        start, stop = copy["start_cycle"], copy["start_cycle"] + copy["cycles"]
        covered = sum(max(0, min(stop, c["start_cycle"] + c["cycles"]) - max(start, c["start_cycle"]))
                      for c in compute)
        exposed += max(0, copy["cycles"] - covered)
    return {"launch_gap_cycles": gaps, "copy_cycles": sum(c["cycles"] for c in copies),
            "copy_cycles_not_overlapped": exposed, "launches": len(launches)}


def _batch(plan) -> int:
    shape = plan.inputs[0]["shape"] if plan.inputs else []
    return int(shape[0]) if shape and isinstance(shape[0], int) and shape[0] > 0 else 1


def analyze(model, sku, *, precision="fp32", batch=None, pipeline=None, calibration=None,
            cache_dir=None, run=True, batch_sweep=False, max_batch=sweep.DEFAULT_MAX_BATCH,
            latency_bound_ms=None, progress=None) -> tuple[dict, object]:
    """(the analysis document, the plan) of `model` on `sku`."""
    from npu_driver import load_sku

    target = load_sku(sku)
    plan = compile_for(model, target, precision=precision, batch=batch, pipeline=pipeline,
                       calibration=calibration, cache_dir=cache_dir)
    document = analyze_plan(plan, target, run=run)
    if batch_sweep:
        document["batch_sweep"] = sweep.batch_sweep(
            lambda b: compile_for(model, target, precision=precision, batch=b,
                                  pipeline=pipeline, calibration=calibration,
                                  cache_dir=cache_dir),
            target, max_batch=max_batch, latency_bound_ms=latency_bound_ms, progress=progress)
    return document, plan
