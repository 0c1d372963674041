"""The latest fidelity run per array and dataflow, and the worst total-cycle difference
per fidelity run (fidelity.html)."""

from __future__ import annotations

import math

from stackci.dashboard.site import goal_label, line_figure
from stackci.results.fidelity import DATAFLOWS, TOTAL_LIMIT_PERCENT
from stackci.results.fidelity import STAGE as FIDELITY_STAGE
from stackci.results.fidelity import TIER as FIDELITY_TIER
from stackci.results.store import Store

FIDELITY_DIFF = "total_cycles_diff_percent"

FIDELITY_METRICS = ("ours_compute_cycles", "scalesim_compute_cycles", "compute_cycles_diff",
                    "ours_total_cycles", "scalesim_total_cycles", "total_cycles_diff",
                    FIDELITY_DIFF)

DATAFLOW_NAMES = {"os": "output stationary", "ws": "weight stationary",
                  "is": "input stationary"}


def fidelity_runs(store: Store) -> list[dict]:
    """The runs `stackci fidelity record` stored, oldest first (of its tier only: a year of
    nightlies is a year of job tallies)."""
    return [run for run in reversed(store.runs(tier=FIDELITY_TIER))
            if run.plan.get("kind") == FIDELITY_STAGE]


def fidelity_row(job: dict, figures: dict[str, float]) -> dict:
    """One layer on one array and dataflow. The key (`fidelity:layer:RxC:dataflow`) names
    where it ran; the job's details (run_fidelity.py's row) hold the GEMM's shape."""
    _, layer, array, dataflow = job["key"].split(":")
    rows, cols = (int(n) for n in array.split("x"))
    details = job.details
    diff, percent = figures.get("compute_cycles_diff"), figures.get(FIDELITY_DIFF)
    compute_miss = diff is not None and diff != 0
    total_miss = percent is not None and abs(percent) > TOTAL_LIMIT_PERCENT
    return {"layer": layer, "rows": rows, "cols": cols, "dataflow": dataflow,
            **{dim: details.get(dim) for dim in ("M", "N", "K")},
            **{name: figures.get(name) for name in FIDELITY_METRICS},
            "ours_s": (details.get("ours") or {}).get("seconds"),
            "scalesim_s": (details.get("scalesim") or {}).get("seconds"),
            "compute_miss": compute_miss, "total_miss": total_miss,
            "miss": compute_miss or total_miss}


def fidelity_tables(rows: list[dict]) -> list[dict]:
    """The rows per array and dataflow: smaller arrays first, dataflows as run_fidelity.py
    orders them, layers in the order they were recorded."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["rows"], row["cols"], row["dataflow"]), []).append(row)
    order = sorted(groups, key=lambda g: (g[0] * g[1], g[0], DATAFLOWS.index(g[2])
                                          if g[2] in DATAFLOWS else len(DATAFLOWS)))
    return [{"array": f"{r}x{c}", "dataflow": df, "dataflow_name": DATAFLOW_NAMES.get(df, df),
             "anchor": f"{r}x{c}-{df}", "rows": groups[(r, c, df)],
             "misses": sum(row["miss"] for row in groups[(r, c, df)])}
            for r, c, df in order]


def fidelity_summary(run: dict, rows: list[dict]) -> dict:
    """The figures of run_fidelity.py's summary line, counted from the stored rows; the
    timings as run_fidelity.py summed them (or from the rows, for files without them)."""
    errors = [abs(row[FIDELITY_DIFF]) for row in rows if row[FIDELITY_DIFF] is not None]
    stored = run.summary
    ours_s = stored.get("ours_seconds")
    scalesim_s = stored.get("scalesim_seconds")
    if ours_s is None and all(row["ours_s"] is not None for row in rows):
        ours_s = sum(row["ours_s"] for row in rows)
    if scalesim_s is None and all(row["scalesim_s"] is not None for row in rows):
        scalesim_s = sum(row["scalesim_s"] for row in rows)
    speedup = stored.get("speedup")
    if speedup is None and ours_s and scalesim_s is not None:
        speedup = scalesim_s / ours_s
    if speedup is not None and not math.isfinite(speedup):
        speedup = None  # our time rounded to zero: no ratio worth showing
    return {"layers": len(rows),
            "compute_exact": sum(row["compute_cycles_diff"] == 0 for row in rows),
            "total_within": sum(e <= TOTAL_LIMIT_PERCENT for e in errors),
            "max_total_diff_percent": max(errors, default=None),
            "mean_total_diff_percent": sum(errors) / len(errors) if errors else None,
            "misses": sum(row["miss"] for row in rows),
            "ours_seconds": ours_s, "scalesim_seconds": scalesim_s, "speedup": speedup,
            "scalesim_peak_rss_mb": stored.get("scalesim_peak_rss_mb")}


def fidelity_trend(store: Store, runs: list[dict]) -> list[dict]:
    """Per fidelity run, the largest |total cycles difference %| of its layer runs."""
    worst: dict[int, float] = {}
    for point in store.metric_series(FIDELITY_DIFF):
        worst[point["run_id"]] = max(worst.get(point["run_id"], 0.0), abs(point["value"]))
    return [{"run_id": run["id"], "value": worst[run["id"]],
             "x": f"#{run['id']} {run['started_at']:%Y-%m-%d %H:%M}"}
            for run in runs if run["id"] in worst]


def fidelity_view(store: Store) -> dict | None:
    """The newest fidelity run, its tables per array and dataflow, and the trend of the worst
    total-cycle difference when more than one fidelity run is stored."""
    runs = fidelity_runs(store)
    if not runs:
        return None
    run = runs[-1]
    figures: dict[int, dict[str, float]] = {}
    for metric in store.metrics(run_id=run["id"]):
        figures.setdefault(metric["job_id"], {})[metric["name"]] = metric["value"]
    rows = [fidelity_row(job, figures.get(job["id"], {})) for job in store.jobs(run["id"])
            if job["stage"] == FIDELITY_STAGE]
    trend = fidelity_trend(store, runs)
    figure = None
    if len(trend) > 1:
        figure = line_figure("largest |total cycles difference| per fidelity run",
                             "max |total diff| (%)", {"max |total diff %|": trend},
                             floors=(TOTAL_LIMIT_PERCENT,))
        figure["layout"]["xaxis"]["title"]["text"] = "fidelity run"
        figure["layout"]["annotations"] = [goal_label(f"limit {TOTAL_LIMIT_PERCENT:g}%",
                                                      TOTAL_LIMIT_PERCENT)]
        figure["layout"]["height"] = 300
    return {"run": run, "summary": fidelity_summary(run, rows),
            "tables": fidelity_tables(rows), "trend": trend, "figure": figure,
            "limit": TOTAL_LIMIT_PERCENT, "source": run.plan.get("source")}
