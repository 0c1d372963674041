"""The architecture team's pages, from the analysis tables (results/analysis.py):

analysis.html            every analysed workload x SKU x precision (newest), with links
analysis/W__SKU__P.html  stacked cycle bars by op type and by unit (compute / fill-drain /
                         stall), the utilization timeline, the roofline scatter (ops coloured by
                         bound, the roofs drawn), top ops, fusion and lost-optimization tables
sweetspots.html          throughput against latency per SKU, each point labelled by its batch,
                         and the sweet spots of every workload across SKUs (moved ones marked)
explore.html             per stored design sweep: latency against area with the Pareto front
advice.html              the newest advice report, by team
"""

from __future__ import annotations

from stackci.dashboard.site import slug
from stackci.results.store import Store

SPLIT = (("compute", "compute"), ("fill_drain", "fill/drain"), ("stall", "stall"))
BOUND_COLOURS = {"array-bound": "#1f77b4", "vector-bound": "#2ca02c",
                 "memory-bound": "#d62728", "latency-bound": "#9467bd"}


def _layout(title: str, x: str, y: str, **extra) -> dict:
    return {"title": {"text": title, "x": 0.02, "xanchor": "left"},
            "xaxis": {"title": {"text": x}}, "yaxis": {"title": {"text": y}},
            "margin": {"t": 40, "b": 60}, "height": 360, **extra}


def split_bars(title: str, groups: dict[str, dict]) -> dict:
    """Stacked bars: one per group (op type or unit), stacked by compute / fill-drain / stall."""
    names = sorted(groups, key=lambda g: -groups[g].get("total", 0))
    return {"data": [{"type": "bar", "name": label, "x": names,
                      "y": [groups[n].get(key, 0) for n in names]} for key, label in SPLIT],
            "layout": _layout(title, "", "cycles", barmode="stack")}


def timeline_figure(run: dict) -> dict | None:
    timeline = (run or {}).get("timeline") or {}
    starts = timeline.get("start_cycle")  # each bin's first cycle
    series = {k: v for k, v in timeline.items() if k not in ("start_cycle", "bin_cycles")
              and isinstance(v, list) and v}
    if not series:
        return None
    width = timeline.get("bin_cycles", 1)
    if not isinstance(starts, list):
        starts = [(starts or 0) + i * width for i in range(max(map(len, series.values())))]
    return {"data": [{"type": "scatter", "mode": "lines", "name": name, "line": {"shape": "hv"},
                      "x": starts[:len(values)], "y": values}
                     for name, values in sorted(series.items())],
            "layout": _layout("utilization over the run", "cycle", "utilization",
                              yaxis={"title": {"text": "utilization"}, "range": [0, 1.05]})}


def roofline_figure(doc: dict) -> dict | None:
    """Ops as points (intensity, achieved ops per cycle), coloured by their counterfactual
    bound; the roofs of the document's precision: DRAM bandwidth x intensity up to the array's
    and the vector unit's peaks."""
    roofline = doc.get("roofline") or {}
    ops = [op for op in roofline.get("ops", []) if op.get("intensity") and
           op.get("achieved_ops_per_cycle")]
    if not ops:
        return None
    data = []
    for bound in sorted({op["bound"] for op in ops}):
        chosen = [op for op in ops if op["bound"] == bound]
        data.append({"type": "scatter", "mode": "markers", "name": bound,
                     "marker": {"color": BOUND_COLOURS.get(bound), "size": 9},
                     "x": [op["intensity"] for op in chosen],
                     "y": [op["achieved_ops_per_cycle"] for op in chosen],
                     "text": [f"{op['name']} ({op['op_type']})" for op in chosen],
                     "hovertemplate": "%{text}<br>%{x:.3g} ops/B, %{y:.3g} ops/cycle"})
    roofs = roofline.get("roofs") or {}
    bandwidth = roofs.get("dram_bytes_per_cycle")
    xs = [op["intensity"] for op in ops]
    low, high = min(xs) / 4, max(xs) * 4
    for name, peaks in (("array roof", roofs.get("peak_ops_per_cycle") or {}),
                        ("vector roof", roofs.get("vector_ops_per_cycle") or {})):
        peak = peaks.get(doc.get("precision"))
        if not (peak and bandwidth):
            continue
        ridge = peak / bandwidth
        points = sorted({low, min(max(ridge, low), high), high})
        data.append({"type": "scatter", "mode": "lines", "name": name,
                     "line": {"dash": "dash", "color": "#555" if name == "array roof" else "#999"},
                     "x": points, "y": [min(peak, bandwidth * x) for x in points]})
    return {"data": data, "layout": _layout(
        "roofline: ops against the SKU's roofs", "arithmetic intensity (ops / DRAM byte)",
        "achieved ops / cycle", xaxis={"type": "log", "title": {"text": "arithmetic intensity "
                                                                 "(ops / DRAM byte)"}},
        yaxis={"type": "log", "title": {"text": "achieved ops / cycle"}})}


def document_page(row: dict) -> dict:
    doc = row["document"]
    cycles = doc.get("cycles") or {}
    bounds = {op["name"]: op for op in (doc.get("roofline") or {}).get("ops", [])}
    charts = [("by-type", split_bars("cycles by op type", cycles.get("by_op_type") or {})),
              ("by-unit", split_bars("cycles by unit", cycles.get("by_unit") or {})),
              ("timeline", timeline_figure(doc.get("run"))),
              ("roofline", roofline_figure(doc))]
    diff = doc.get("plan_diff") or {}
    return {"row": row, "doc": doc, "page": document_path(row),
            "charts": [{"id": cid, "figure": fig} for cid, fig in charts if fig],
            "top_ops": [{**op, "bound": bounds.get(op["name"], {})}
                        for op in cycles.get("top_ops", [])],
            "split": cycles.get("split") or {}, "shares": (doc.get("roofline") or {})
            .get("bound_share", {}), "fusions": doc.get("fusion_opportunities") or [],
            "layouts": doc.get("layout_opportunities") or [],
            "below": doc.get("below_roofline") or [], "diff": diff,
            "lost": diff.get("lost_optimizations") or [],
            "sweep": doc.get("batch_sweep")}


def document_path(row: dict) -> str:
    return f"analysis/{slug(row['workload'], row['sku'], row['precision'])}.html"


def sweet_spot_view(store: Store, latest: list[dict]) -> dict:
    """Curves per SKU (a trace per workload x precision, labelled by batch) and the table of
    sweet spots across SKUs, with the previous stored spot of each where it moved."""
    curves: dict[str, list[dict]] = {}
    table: dict[tuple, dict] = {}
    history: dict[tuple, list[dict]] = {}
    for spot in store.sweet_spots():
        history.setdefault((spot["workload"], spot["sku"], spot["precision"]), []).append(spot)
    for row in latest:
        sweep = row["document"].get("batch_sweep")
        if not sweep:
            continue
        points = sweep.get("points") or []
        curves.setdefault(row["sku"], []).append({
            "type": "scatter", "mode": "lines+markers+text",
            "name": f"{row['workload']} ({row['precision']})",
            "x": [p["latency_ms"] for p in points], "y": [p["throughput_per_s"] for p in points],
            "text": [f"b{p['batch']}" for p in points], "textposition": "top center"})
        spots = history.get((row["workload"], row["sku"], row["precision"]), [])
        before = spots[-2] if len(spots) > 1 else None
        moved = [k for k in ("offline", "server", "knee")
                 if before is not None and before[k] != sweep.get(k)]
        table.setdefault((row["workload"], row["precision"]), {})[row["sku"]] = {
            **{k: sweep.get(k) for k in ("offline", "server", "knee", "latency_bound_ms",
                                         "stopped")},
            "confirmed": sweep.get("confirmed"), "moved": moved, "before": before}
    skus = sorted({sku for entry in table.values() for sku in entry})
    charts = [{"id": f"sweet-{slug(sku)}", "sku": sku, "figure": {
        "data": traces, "layout": _layout(f"{sku}: throughput against latency, by batch",
                                          "latency per batch (ms)", "throughput (samples/s)",
                                          height=420)}}
              for sku, traces in sorted(curves.items())]
    rows = [{"workload": w, "precision": p, "by_sku": entry}
            for (w, p), entry in sorted(table.items())]
    return {"charts": charts, "skus": skus, "rows": rows}


def explore_view(store: Store) -> list[dict]:
    """Each stored sweep's newest version: points, Pareto front drawn as a line, the table."""
    views = []
    for row in store.latest_design_sweeps():
        doc = row["document"]
        points = [p for p in doc.get("points", []) if p.get("feasible", True)]
        front = sorted((doc["points"][i] for i in doc.get("pareto", [])),
                       key=lambda p: p["area"])
        base = doc.get("base_point")
        data = [{"type": "scatter", "mode": "markers", "name": "design points",
                 "marker": {"size": 6, "color": "#9ab"}, "x": [p["area"] for p in points],
                 "y": [p["latency_us"] for p in points],
                 "text": [f"#{p['point']} {p['array']}" for p in points]},
                {"type": "scatter", "mode": "lines+markers", "name": "Pareto front",
                 "marker": {"size": 8, "color": "#d62728"}, "x": [p["area"] for p in front],
                 "y": [p["latency_us"] for p in front]}]
        if base:
            data.append({"type": "scatter", "mode": "markers", "name": "base SKU",
                         "marker": {"size": 12, "symbol": "star", "color": "#000"},
                         "x": [base["area"]], "y": [base["latency_us"]]})
        views.append({"row": row, "doc": doc, "front": front, "id": f"explore-{row['id']}",
                      "figure": {"data": data, "layout": _layout(
                          f"{row['name']}: suite latency against area ({len(points)} points)",
                          "area proxy (PEs + SRAM bytes)", "suite latency (us)",
                          xaxis={"type": "log", "title": {"text": "area proxy (PEs + SRAM "
                                                                  "bytes)"}}, height=420)}})
    return views


def advice_view(store: Store) -> dict:
    items = store.advice()
    teams: dict[str, list[dict]] = {}
    for item in items:
        teams.setdefault(item["team"], []).append(item)
    return {"entries": items, "teams": dict(sorted(teams.items())),
            "batch": items[0]["batch"] if items else None}


def analysis_views(store: Store) -> dict:
    rows, _ = store.latest_analyses()
    return {"documents": [document_page(row) for row in rows],
            "sweet": sweet_spot_view(store, rows), "explore": explore_view(store),
            "advice": advice_view(store)}
