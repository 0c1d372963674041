"""Latency trends per workload and SKU, and the latest figures of each (index.html)."""

from __future__ import annotations

from stackci.dashboard.site import point_label, slug
from stackci.model import (COMPILE_S, LATENCY_US, MAX_ABS_ERROR, PEAK_DEVICE_BYTES, SPEED_RATIO,
                           TOTAL_CYCLES)
from stackci.results.store import Store

TREND_METRIC = LATENCY_US

LATEST_FIGURES = (LATENCY_US, TOTAL_CYCLES, PEAK_DEVICE_BYTES, MAX_ABS_ERROR, COMPILE_S,
                  SPEED_RATIO)


def trends(store: Store, metric: str = TREND_METRIC) -> dict[str, dict[str, list[dict]]]:
    """workload -> SKU -> points `{run_id, x, value}` in run order."""
    found: dict[str, dict[str, list[dict]]] = {}
    for row in store.metric_series(metric):
        if row["workload"] is None:
            continue
        found.setdefault(row["workload"], {}).setdefault(row["sku"], []).append({
            "run_id": row["run_id"], "value": row["value"],
            "x": point_label(row["run_id"], row["started_at"], row["combination"],
                             row["combination_key"])})
    return found


def latest_figures(store: Store) -> list[dict]:
    """For each workload x SKU, the newest value of each figure and the job it came from."""
    table: dict[tuple[str, str], dict] = {}
    for metric in LATEST_FIGURES:
        for row in store.metric_series(metric):
            if row["workload"] is None:
                continue
            entry = table.setdefault((row["workload"], row["sku"]), {
                "workload": row["workload"], "sku": row["sku"], "figures": {}, "job_id": None,
                "run_id": None})
            entry["figures"][metric] = row["value"]
            if metric == LATEST_FIGURES[0] or entry["job_id"] is None:
                entry["job_id"], entry["run_id"] = row["job_id"], row["run_id"]
    for entry in table.values():
        entry["page"] = f"ops/{slug(entry['workload'], entry['sku'])}.html"
    return [table[key] for key in sorted(table)]


def trend_figure(workload: str, by_sku: dict[str, list[dict]]) -> dict:
    return {
        "data": [{"type": "scatter", "mode": "lines+markers", "name": sku,
                  "x": [p["x"] for p in points], "y": [p["value"] for p in points]}
                 for sku, points in sorted(by_sku.items())],
        "layout": {"title": {"text": f"{workload}: simulated latency", "x": 0.02,
                             "xanchor": "left"},
                   "xaxis": {"type": "category", "title": {"text": "run / combination"}},
                   "yaxis": {"title": {"text": "latency (us)"}, "rangemode": "tozero"},
                   "margin": {"t": 40, "b": 90}, "height": 340},
    }
