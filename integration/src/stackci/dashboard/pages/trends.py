"""Latency trends per workload and SKU, and the latest figures of each (index.html)."""

from __future__ import annotations

from stackci.dashboard.pages.regressions import VectorLabels, change_marks
from stackci.dashboard.site import slug
from stackci.model import (COMPILE_S, GATING_COMBINATIONS, LATENCY_US, MAX_ABS_ERROR,
                           PEAK_DEVICE_BYTES, SPEED_RATIO, TOTAL_CYCLES)
from stackci.results.store import Store

TREND_METRIC = LATENCY_US

# A trend shows every point of its newest RECENT_RUNS runs on the combinations a night
# gates on (master, release:latest) and one weekly mean per combination otherwise: before
# them, and throughout for the coverage combinations (a dozen or more pairwise combinations
# a night would make a trace of thousands of points stacked on each run's label). A year of
# nights stays a chart a browser draws at once; the old weeks still show the figure's level.
RECENT_RUNS = 90

LATEST_FIGURES = (LATENCY_US, TOTAL_CYCLES, PEAK_DEVICE_BYTES, MAX_ABS_ERROR, COMPILE_S,
                  SPEED_RATIO)


def trends(store: Store, metric: str = TREND_METRIC, exact: bool = True
           ) -> dict[str, dict[str, list[dict]]]:
    """workload -> SKU -> points `{run_id, x, value, change, regression}` in run order. The
    x label is the run and the modules that moved since the track's previous run; `change`
    marks a value that differs from the point before (for an `exact` figure that is a change
    point; a wall-clock one is only marked by its stored regressions, found by change-point
    detection), `regression` the stored regressions that start at the point. Points of the
    newest RECENT_RUNS runs are drawn one by one for the gating combinations (every
    combination when none is named so, or when every run is recent); the rest is one point
    per ISO week and combination (`weekly`: how many runs it stands for), aggregated in SQL."""
    marks = change_marks(store, metric)
    runs = store.run_starts()
    since = recent_start(runs)
    # A history within RECENT_RUNS is drawn point by point, every combination of it.
    buckets = week_buckets(runs) if since is not None else []
    drawn = point_combinations(store) if since is not None else None
    found: dict[str, dict[str, list[dict]]] = {}
    for row in store.metric_buckets(metric, [(lo, hi) for lo, hi, _ in buckets],
                                    points_from=since, points_of=drawn):
        if row["workload"] is None:
            continue
        lo, hi, week = buckets[row["bucket"]]
        if since is not None and (drawn is None or row["combination"] in drawn):
            hi = min(hi, since - 1)  # its runs from `since` on are points, marked there
        regressions = marks.get((row["workload"], row["sku"]), {})
        found.setdefault(row["workload"], {}).setdefault(row["sku"], []).append({
            "run_id": row["run_id"], "value": row["mean"], "weekly": row["runs"],
            "x": f"{week} {row['combination'] or '-'}: mean of {row['runs']} runs",
            "regression": ", ".join(text for run, text in sorted(regressions.items())
                                    if lo <= run <= hi)})
    labels = VectorLabels(store)
    for row in store.metric_series(metric, since_run=since, combinations=drawn):
        if row["workload"] is None:
            continue
        found.setdefault(row["workload"], {}).setdefault(row["sku"], []).append({
            "run_id": row["run_id"], "value": row["value"], "x": labels.label(row),
            "regression": marks.get((row["workload"], row["sku"]), {}).get(row["run_id"], "")})
    for by_sku in found.values():
        for sku, points in by_sku.items():
            by_sku[sku] = in_run_order(points, exact)
    return found


def in_run_order(points: list[dict], exact: bool) -> list[dict]:
    """The points (weekly means first, then single runs) sorted by run, each weekly one at
    its newest run (stable: a week's mean before the run that ends it), with `change`."""
    points.sort(key=lambda p: p["run_id"])
    for before, point in zip([None, *points], points):
        point["change"] = exact and before is not None and before["value"] != point["value"]
    return points


def point_combinations(store: Store) -> tuple[str, ...] | None:
    """The combinations whose recent runs are drawn point by point: the gating ones, or
    every one (None) in a history without them (a store of named combinations only)."""
    gating = tuple(sorted(store.combination_names() & set(GATING_COMBINATIONS)))
    return gating or None


def recent_start(runs: list[tuple[int, object]], recent: int = RECENT_RUNS) -> int | None:
    """The id of the oldest of the newest `recent` runs (None: every run is recent)."""
    return runs[-recent][0] if len(runs) > recent else None


def week_buckets(runs: list[tuple[int, object]]) -> list[tuple[int, int, str]]:
    """The ISO weeks of the runs as (first run id, last run id, "2026-W05"), oldest first.
    Run ids grow with their start, so a week is an id range."""
    weeks: dict[str, list[int]] = {}
    for run_id, started in runs:
        year, week, _ = started.isocalendar()
        weeks.setdefault(f"{year}-W{week:02d}", []).append(run_id)
    return [(min(ids), max(ids), week) for week, ids in weeks.items()]


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
