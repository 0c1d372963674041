"""Functional speed against onnxruntime per SKU and workload (index.html)."""

from __future__ import annotations

from stackci.dashboard.pages.trends import change_point_traces, trends
from stackci.dashboard.site import goal_label, line_figure, run_order, slug
from stackci.model import SPEED_RATIO
from stackci.results.store import Store

SPEED_METRIC = SPEED_RATIO

SPEED_GOAL = 1.5  # the stack's functional run may take at most 1.5x onnxruntime's time


def speed_figure(sku: str, by_workload: dict[str, list[dict]]) -> dict:
    figure = line_figure(f"{sku}: functional run time / onnxruntime's", "x onnxruntime",
                         by_workload, floors=(SPEED_GOAL,))
    layout = figure["layout"]
    layout["xaxis"].update(categoryorder="array", categoryarray=run_order(by_workload))
    layout["showlegend"] = True
    layout["legend"] = {"title": {"text": "workload"}}
    layout["annotations"] = [goal_label(f"goal {SPEED_GOAL:g}x", SPEED_GOAL)]
    layout["height"] = 380
    figure["data"] += change_point_traces(by_workload)
    return figure


def speed_view(store: Store) -> dict | None:
    """The functional speed trends: one chart per SKU (a line per workload), so a suite of
    many workloads stays a few readable charts."""
    series = trends(store, SPEED_METRIC, exact=False)
    if not series:
        return None
    by_sku: dict[str, dict[str, list[dict]]] = {}
    for workload, skus in series.items():
        for sku, points in skus.items():
            by_sku.setdefault(sku, {})[workload] = points
    charts = [{"id": f"speed-{slug(sku)}", "sku": sku, "figure": speed_figure(sku, traces)}
              for sku, traces in sorted(by_sku.items())]
    return {"series": series, "charts": charts, "goal": SPEED_GOAL}
