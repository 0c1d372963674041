"""The ONNX node suite's pass count and failures, and the kernel library's size, per
combination (conformance.html and index.html)."""

from __future__ import annotations

from stackci.dashboard.site import line_figure, point_label, slug
from stackci.model import CONFORMANCE_PASSED, FAILURE_CLASSES, LIBRARY_METRICS
from stackci.results.store import Store

CONFORMANCE_METRIC = CONFORMANCE_PASSED



def combination_series(store: Store, metric: str) -> dict[str, list[dict]]:
    """combination name -> points `{run_id, job_id, x, value}` in run order (for figures of
    a combination as a whole, such as the node suite's pass count)."""
    found: dict[str, list[dict]] = {}
    for row in store.metric_series(metric):
        name = row["combination"] or "-"
        found.setdefault(name, []).append({
            "run_id": row["run_id"], "job_id": row["job_id"], "value": row["value"],
            "x": point_label(row["run_id"], row["started_at"], row["combination"],
                             row["combination_key"])})
    return found


def conformance_view(store: Store) -> dict | None:
    """The pass-count trend per combination and each combination's newest classified
    failures (from the details of the job that measured its last point)."""
    series = combination_series(store, CONFORMANCE_METRIC)
    if not series:
        return None
    latest = []
    for name, points in sorted(series.items()):
        job = store.job(points[-1]["job_id"])
        details = job.details
        failures = details.get("failures") or []
        latest.append({
            "combination": name, "run_id": points[-1]["run_id"], "status": job.get("status"),
            "passed": details.get("passed", points[-1]["value"]), "total": details.get("total"),
            "floor": details.get("floor"), "sku": details.get("sku") or job.get("sku"),
            "counts": details.get("counts") or {},
            "by_class": {kind: [f for f in failures if f.get("status") == kind]
                         for kind in FAILURE_CLASSES},
            "anchor": slug(name)})
    floors = tuple(entry["floor"] for entry in latest if entry["floor"] is not None)
    figure = line_figure("ONNX backend node suite: cases passed", "cases passed", series,
                         floors=floors)
    return {"series": series, "latest": latest, "figure": figure,
            "classes": FAILURE_CLASSES}


def library_view(store: Store) -> dict | None:
    """The kernel library's size per combination: kernels, variants, tile configurations."""
    traces, newest = {}, {}
    for metric in LIBRARY_METRICS:
        label = metric.removeprefix("opslib_")
        for name, points in combination_series(store, metric).items():
            traces[f"{name}: {label}"] = points
            newest.setdefault(name, {"combination": name})[label] = points[-1]["value"]
            newest[name]["run_id"] = points[-1]["run_id"]
    if not traces:
        return None
    return {"figure": line_figure("opslib size: variants and tile configurations", "count",
                                  traces),
            "latest": [newest[name] for name in sorted(newest)]}
