"""Latency trends per workload and SKU, and the latest figures of each (index.html)."""

from __future__ import annotations

from stackci.dashboard.pages.regressions import VectorLabels, change_marks
from stackci.dashboard.site import slug
from stackci.model import (COMPILE_S, LATENCY_US, MAX_ABS_ERROR, PEAK_DEVICE_BYTES, SPEED_RATIO,
                           TOTAL_CYCLES)
from stackci.results.store import Store

TREND_METRIC = LATENCY_US

LATEST_FIGURES = (LATENCY_US, TOTAL_CYCLES, PEAK_DEVICE_BYTES, MAX_ABS_ERROR, COMPILE_S,
                  SPEED_RATIO)


def trends(store: Store, metric: str = TREND_METRIC, exact: bool = True
           ) -> dict[str, dict[str, list[dict]]]:
    """workload -> SKU -> points `{run_id, x, value, change, regression}` in run order. The
    x label is the run and the modules that moved since the track's previous run; `change`
    marks a value that differs from the point before (for an `exact` figure that is a change
    point; a wall-clock one is only marked by its stored regressions, found by change-point
    detection), `regression` the stored regressions that start at the point."""
    found: dict[str, dict[str, list[dict]]] = {}
    labels, marks = VectorLabels(store), change_marks(store, metric)
    for row in store.metric_series(metric):
        if row["workload"] is None:
            continue
        points = found.setdefault(row["workload"], {}).setdefault(row["sku"], [])
        points.append({
            "run_id": row["run_id"], "value": row["value"], "x": labels.label(row),
            "change": exact and bool(points) and points[-1]["value"] != row["value"],
            "regression": marks.get((row["workload"], row["sku"]), {}).get(row["run_id"], "")})
    return found


def latest_figures(store: Store) -> list[dict]:
    """For each workload x SKU, the newest value of each figure and the job it came from
    (the latency's job, for the op page), from one grouped query."""
    table: dict[tuple[str, str], dict] = {}
    for row in store.latest_metrics(LATEST_FIGURES):
        entry = table.setdefault((row["workload"], row["sku"]), {
            "workload": row["workload"], "sku": row["sku"], "figures": {}, "job_id": None,
            "run_id": None})
        entry["figures"][row["name"]] = row["value"]
        if row["name"] == LATEST_FIGURES[0] or entry["job_id"] is None:
            entry["job_id"], entry["run_id"] = row["job_id"], row["run_id"]
    for entry in table.values():
        entry["page"] = f"ops/{slug(entry['workload'], entry['sku'])}.html"
    return [table[key] for key in sorted(table)]


def change_point_traces(traces: dict[str, list[dict]]) -> list[dict]:
    """One marker trace over the points that are change points (red: a stored regression
    starts there, with its id on hover; grey: the figure changed, no regression stored)."""
    marked = [p for _, points in sorted(traces.items()) for p in points
              if p.get("change") or p.get("regression")]
    return [{"type": "scatter", "mode": "markers", "name": "change point",
              "x": [p["x"] for p in marked], "y": [p["value"] for p in marked],
              "text": [p["regression"] or "changed (no regression stored)" for p in marked],
              "hovertemplate": "%{text}<extra>change point</extra>",
              "marker": {"symbol": "diamond-open", "size": 14, "line": {"width": 2},
                         "color": ["#cf222e" if p["regression"] else "#6e7781"
                                   for p in marked]}}] if marked else []


def trend_figure(workload: str, by_sku: dict[str, list[dict]]) -> dict:
    marks = change_point_traces(by_sku)
    return {
        "data": [{"type": "scatter", "mode": "lines+markers", "name": sku,
                  "x": [p["x"] for p in points], "y": [p["value"] for p in points]}
                 for sku, points in sorted(by_sku.items())] + marks,
        "layout": {"title": {"text": f"{workload}: simulated latency", "x": 0.02,
                             "xanchor": "left"},
                   "xaxis": {"type": "category", "automargin": True,
                             "title": {"text": "run: modules moved since the run before"}},
                   "yaxis": {"title": {"text": "latency (us)"}, "rangemode": "tozero"},
                   "margin": {"t": 40, "b": 90}, "height": 340},
    }
