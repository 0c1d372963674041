"""analysis: the architecture team's night, on the gating combinations (docs/design.md,
"Workload analysis").

    analysis:W:SKU@C        per smoke workload x SKU (its precision is the workload's): analyze
                            with the batch sweep up to MAX_BATCH and the suite's latency bound,
                            one functional run at the sweet spot, the plan saved and diffed
                            against the previous night's stored plan of the same workload
                            (labelled with that night's combination)
    analysis-explore:SKU@C  one design sweep per SKU over the smoke plans (DESIGN_GRID)
    analysis-advice         the advice report of the night's analyses, routed by OWNERS

Each needs the workload job it analyses (a failed run is nothing to analyse) and comes after
the gating work in the executor's order (stage `analysis` follows `regressions`). The jobs
return their documents in `Outcome.analysis`; the executor stores them (results/analysis.py).
What they read of earlier nights comes through `ctx.resources.results`.
"""

from __future__ import annotations

import shutil

from stackci.analysis import advise, load_owners, records, steps
from stackci.model import FAILED, NOT_APPLICABLE, NOT_RUN, PASSED, JobContext, Outcome
from stackci.nightly.stages.workloads import not_applicable
from stackci.owners import FILENAME
from stackci.workloads.suite import Workload

STAGE = "analysis"
MAX_BATCH = 64  # the sweep also stops where device memory ends
EXPLORE_PRECISION = "fp32"
# Each SKU's what-ifs, as factors of its own fields: 3 x 4 x 4 x 3 = 144 design points.
DESIGN_GRID = {"array": (0.5, 1, 2), "sram_bytes": (0.5, 1, 2, 4),
               "dram_bandwidth_gbps": (0.5, 1, 2, 4), "vector_lanes": (0.5, 1, 2)}


def label(combination) -> str:
    return f"{combination.name} {combination.key[:8]}"


def job_specs(combinations: list, workloads: list, planned: list,
              every_precision: bool = False) -> list[dict]:
    """The analysis jobs (JobSpec fields) for these (gating) combinations: one per smoke
    workload x SKU whose workload job is planned, one explore per SKU, one advice.

    The smoke night analyses each model at EXPLORE_PRECISION only: the precision variants'
    sweeps were 68 % of a fresh clone's first night (1,011 of 1,484 job-seconds, 801 of them
    the variants'), which pushed the README's first line past ten minutes; the full nightly
    and weekly tiers (`every_precision`) analyse every variant."""
    keys = {spec.key for spec in planned}
    specs: list[dict] = []
    analysed_here = [w for w in workloads if w.in_tier("smoke")
                     and (every_precision or w.precision == EXPLORE_PRECISION)]
    for rank, combination in enumerate(combinations):
        tag = combination.key[:12]
        by_sku: dict[str, list] = {}
        for index, workload in enumerate(analysed_here):
            for sku in workload.skus:
                measured = f"workloads:{workload.name}:{sku}@{tag}"
                if measured not in keys:
                    continue
                key = f"{STAGE}:{workload.name}:{sku}@{tag}"
                by_sku.setdefault(sku, []).append((key, workload))
                specs.append({"key": key, "stage": STAGE, "name": workload.name,
                              "action": "analysis", "combination": combination.key,
                              "sku": sku, "needs": (measured,),
                              "priority": rank * 10000 + index,
                              "params": {"workload": workload.to_record(), "sku": sku,
                                         "label": label(combination),
                                         "max_batch": MAX_BATCH}})
        for sku, analysed in by_sku.items():
            chosen = [w.to_record() for _, w in analysed if w.precision == EXPLORE_PRECISION]
            if chosen:
                specs.append({"key": f"{STAGE}-explore:{sku}@{tag}", "stage": STAGE,
                              "name": f"explore {sku}", "action": "analysis-explore",
                              "combination": combination.key, "sku": sku,
                              "after": tuple(key for key, _ in analysed),
                              "priority": rank * 10000 + 9000,
                              "params": {"sku": sku, "workloads": chosen,
                                         "label": label(combination)}})
    if specs:
        specs.append({"key": f"{STAGE}-advice", "stage": STAGE, "name": "advice",
                      "action": "analysis-advice", "after": tuple(s["key"] for s in specs),
                      "priority": 99999})
    return specs


def analyze_action(combination, params: dict):
    workload, sku, name = Workload.from_record(params["workload"]), params["sku"], params["label"]
    max_batch = params.get("max_batch", MAX_BATCH)

    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        inapplicable = not_applicable(workload, combination, ctx)
        if inapplicable is not None:
            return inapplicable
        port, model = ctx.resources.port, ctx.resources.prepared(workload).model_path
        plan_dir = ctx.workdir / "plan"
        doc = steps.analyze(port, env.python, model, sku=sku, precision=workload.precision,
                            batch=workload.batch, plan_dir=plan_dir, batch_sweep=True,
                            max_batch=max_batch, latency_bound_ms=workload.latency_bound_ms,
                            timeout=ctx.timeout_s)
        doc["workload"] = workload.name
        sweep = doc.get("batch_sweep")
        if sweep:
            sweep["confirmed"] = steps.confirm_sweet_spot(
                port, env.python, model, sku=sku, precision=workload.precision, sweep=sweep,
                timeout=ctx.timeout_s)
        plan = steps.read_plan(plan_dir)
        reader = ctx.resources.results
        earlier = reader.previous_plan(workload.name, doc["sku"], workload.precision) \
            if reader is not None and plan is not None else None
        if earlier is not None:
            path = steps.write_plan(earlier["plan"], ctx.workdir / "previous")
            doc["plan_diff"] = steps.plan_diff(
                port, env.python, path, plan_dir, a_label=earlier["label"] or "previous",
                b_label=name, sku=sku, timeout=ctx.timeout_s)
        shutil.rmtree(plan_dir, ignore_errors=True)  # the weights: plan.json is stored
        return analysis_outcome(doc, plan, name)
    return run


def analysis_outcome(doc: dict, plan: dict | None, name: str) -> Outcome:
    """Passed, unless the functional run at the sweet spot disagrees with the sweep."""
    sweep = doc.get("batch_sweep") or {}
    confirmed = sweep.get("confirmed")
    shares = (doc.get("roofline") or {}).get("bound_share", {})
    bound = max(shares, key=shares.get) if shares else "-"
    message = (f"{doc['modelled_cycles']} cycles, mostly {bound}; sweet spots offline "
               f"{sweep.get('offline')}, server {sweep.get('server')}")
    lost = (doc.get("plan_diff") or {}).get("lost_optimizations") or []
    if lost:
        message += f"; {len(lost)} lost optimizations against {doc['plan_diff']['a']}"
    status = PASSED
    if confirmed is not None and not confirmed["matches"]:
        status = FAILED
        message = (f"the functional run at batch {confirmed['batch']} "
                   + (f"failed: {confirmed['error']}" if confirmed.get("error") else
                      f"took {confirmed['run_cycles']} cycles, the sweep said "
                      f"{confirmed['sweep_cycles']}"))
    return Outcome(status, message, details={"sweet_spots": {
        k: sweep.get(k) for k in ("offline", "server", "knee", "latency_bound_ms")}},
        analysis={"document": doc, "plan": plan, "label": name})


def design_grid(base: dict) -> list[str]:
    """`--vary` specs: DESIGN_GRID's factors applied to the SKU's own fields."""
    specs = []
    for field, factors in DESIGN_GRID.items():
        if field == "array":
            values = [f"{max(1, int(base['array_rows'] * f))}x{max(1, int(base['array_cols'] * f))}"
                      for f in factors]
        elif field == "dram_bandwidth_gbps":
            values = [f"{base[field] * f:g}" for f in factors]
        else:
            values = [str(max(1, int(base[field] * f))) for f in factors]
        specs.append(f"{field}={','.join(dict.fromkeys(values))}")
    return specs


def explore_action(combination, params: dict):
    sku, name = params["sku"], params["label"]
    workloads = [Workload.from_record(w) for w in params["workloads"]]

    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        base = next((s for s in ctx.resources.port.skus(env.python) if s["name"] == sku), None)
        if base is None:
            return Outcome(NOT_RUN, f"not applicable: the driver knows no SKU {sku}",
                           details={"reason": NOT_APPLICABLE})
        models = {w.name: str(ctx.resources.prepared(w).model_path) for w in workloads}
        doc = steps.explore(ctx.resources.port, env.python, models, sku=sku,
                            precision=EXPLORE_PRECISION, vary=design_grid(base),
                            timeout=ctx.timeout_s)
        message = (f"{len(doc['points'])} design points over {len(models)} plans, "
                   f"{len(doc['pareto'])} on the Pareto front")
        return Outcome(PASSED, message, analysis={"sweep": doc, "name": f"nightly {sku}",
                                                  "label": name})
    return run


def advice_action(combination, params: dict):
    def run(ctx: JobContext) -> Outcome:
        reader = ctx.resources.results
        owners_file = ctx.resources.ws.repo / FILENAME
        if reader is None or not owners_file.is_file():
            return Outcome(NOT_RUN, "not applicable: no results store or no OWNERS file",
                           details={"reason": NOT_APPLICABLE})
        docs, previous, sweeps = records.run_inputs(reader)
        if not docs:
            return Outcome(NOT_RUN, "not applicable: no analysis of this night",
                           details={"reason": NOT_APPLICABLE})
        items = advise(docs, load_owners(owners_file), sweeps=sweeps, previous=previous)
        teams = sorted({item["team"] for item in items})
        return Outcome(PASSED, f"{len(items)} items for {', '.join(teams) or 'nobody'}",
                       details={"teams": teams}, analysis={"advice": items})
    return run
