"""The static dashboard: HTML pages rendered from the results database (like `asv publish`).

index.html     budget banner, the latest run, recent runs, latency trends, latest figures,
               functional speed against onnxruntime, the ONNX node suite's pass count and the
               kernel library's size per combination
compat.html    the compatibility matrix (declared / verified / measured), disagreements first
conformance.html  the latest node-suite failures of each combination, by class
fidelity.html  the latest fidelity run (our scalesim mode against SCALE-Sim) per array and
               dataflow, and the worst total-cycle difference per fidelity run
ops/*.html     op-level breakdown of the latest run of one workload on one SKU
data.json      the figures the pages show, for scripts and tests
assets/        plotly.min.js (copied from the installed plotly package) and the stylesheet

Every page works offline: scripts and styles are referenced by relative path, never a CDN.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from stackci.budget import format_duration
from stackci.commands.fidelity import DATAFLOWS, TOTAL_LIMIT_PERCENT
from stackci.commands.fidelity import STAGE as FIDELITY_STAGE
from stackci.errors import StackciError
from stackci.matrix import build_matrix
from stackci.store import Store
from stackci.workspace import find_repo_root

RECENT_RUNS = 30
TREND_METRIC = "latency_us"
SPEED_METRIC = "speed_ratio"
SPEED_GOAL = 1.5  # the stack's functional run may take at most 1.5x onnxruntime's time
LATEST_FIGURES = ("latency_us", "total_cycles", "peak_device_bytes", "max_abs_error",
                  "compile_s", SPEED_METRIC)


def site_dir() -> Path:
    """The repository's dashboards/ directory (templates and static assets)."""
    beside_package = Path(__file__).resolve().parents[3] / "dashboards"
    if (beside_package / "templates").is_dir():
        return beside_package
    return find_repo_root() / "dashboards"


def plotly_js() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise StackciError(f"plotly's JavaScript is missing at {path}; reinstall plotly")
    return path


def slug(*parts: str) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", part) for part in parts)


def combination_label(name: str | None, key: str | None) -> str:
    return f"{name} {key[:8]}" if name and key else "-"


def point_label(run_id: int, started_at: datetime, name: str | None, key: str | None) -> str:
    """An x-axis position of a trend: which run, when it started, which combination it ran."""
    return f"#{run_id} {started_at:%Y-%m-%d %H:%M} {combination_label(name, key)}"


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


def op_breakdown(ops: list[dict]) -> dict:
    total = sum(op["cycles"] for op in ops) or 1.0
    rows = [{**op, "share": op["cycles"] / total} for op in ops]
    by_type: dict[str, float] = {}
    for op in ops:
        by_type[op["op_type"]] = by_type.get(op["op_type"], 0.0) + op["cycles"]
    ordered = sorted(by_type.items(), key=lambda item: item[1], reverse=True)
    figure = {"data": [{"type": "bar", "x": [t for t, _ in ordered],
                        "y": [c for _, c in ordered]}],
              "layout": {"title": {"text": "cycles by op type", "x": 0.02, "xanchor": "left"},
                         "yaxis": {"title": {"text": "cycles"}}, "height": 360,
                         "margin": {"t": 40}}}
    return {"rows": rows, "total_cycles": sum(op["cycles"] for op in ops),
            "by_type": ordered, "figure": figure}


CONFORMANCE_METRIC = "conformance_passed"
FAILURE_CLASSES = ("unsupported_operator", "unsupported_type", "wrong_result", "crash")
LIBRARY_METRICS = ("opslib_kernels", "opslib_variants", "opslib_configs")


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


def line_figure(title: str, y_title: str, traces: dict[str, list[dict]], *,
                floors: tuple = ()) -> dict:
    """Lines of points `{x, value}` per trace name, with optional dashed horizontal floors."""
    return {
        "data": [{"type": "scatter", "mode": "lines+markers", "name": name,
                  "x": [p["x"] for p in points], "y": [p["value"] for p in points]}
                 for name, points in sorted(traces.items())],
        "layout": {"title": {"text": title, "x": 0.02, "xanchor": "left"},
                   "xaxis": {"type": "category", "title": {"text": "run / combination"}},
                   "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
                   "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1,
                               "y0": floor, "y1": floor, "line": {"dash": "dash"}}
                              for floor in sorted(set(floors))],
                   "margin": {"t": 40, "b": 90}, "height": 340},
    }


def conformance_view(store: Store) -> dict | None:
    """The pass-count trend per combination and each combination's newest classified
    failures (from the details of the job that measured its last point)."""
    series = combination_series(store, CONFORMANCE_METRIC)
    if not series:
        return None
    latest = []
    for name, points in sorted(series.items()):
        job = store.job(points[-1]["job_id"]) or {}
        details = job.get("details") or {}
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


def run_order(traces: dict[str, list[dict]]) -> list[str]:
    """Every x label of the traces in run order: a category axis otherwise orders them by
    first appearance, which puts a run only a later trace has after the runs of the first."""
    labels = {p["x"]: p["run_id"] for points in traces.values() for p in points}
    return sorted(labels, key=lambda x: labels[x])


def goal_label(text: str, y: float) -> dict:
    """A note just above the right end of a dashed horizontal line at `y`."""
    return {"xref": "paper", "x": 1, "xanchor": "right", "y": y, "yanchor": "bottom",
            "text": text, "showarrow": False}


def speed_figure(sku: str, by_workload: dict[str, list[dict]]) -> dict:
    figure = line_figure(f"{sku}: functional run time / onnxruntime's", "x onnxruntime",
                         by_workload, floors=(SPEED_GOAL,))
    layout = figure["layout"]
    layout["xaxis"].update(categoryorder="array", categoryarray=run_order(by_workload))
    layout["showlegend"] = True
    layout["legend"] = {"title": {"text": "workload"}}
    layout["annotations"] = [goal_label(f"goal {SPEED_GOAL:g}x", SPEED_GOAL)]
    layout["height"] = 380
    return figure


def speed_view(store: Store) -> dict | None:
    """The functional speed trends: one chart per SKU (a line per workload), so a suite of
    many workloads stays a few readable charts."""
    series = trends(store, SPEED_METRIC)
    if not series:
        return None
    by_sku: dict[str, dict[str, list[dict]]] = {}
    for workload, skus in series.items():
        for sku, points in skus.items():
            by_sku.setdefault(sku, {})[workload] = points
    charts = [{"id": f"speed-{slug(sku)}", "sku": sku, "figure": speed_figure(sku, traces)}
              for sku, traces in sorted(by_sku.items())]
    return {"series": series, "charts": charts, "goal": SPEED_GOAL}


FIDELITY_DIFF = "total_cycles_diff_percent"
FIDELITY_METRICS = ("ours_compute_cycles", "scalesim_compute_cycles", "compute_cycles_diff",
                    "ours_total_cycles", "scalesim_total_cycles", "total_cycles_diff",
                    FIDELITY_DIFF)
DATAFLOW_NAMES = {"os": "output stationary", "ws": "weight stationary",
                  "is": "input stationary"}


def fidelity_runs(store: Store) -> list[dict]:
    """The runs `stackci fidelity record` stored, oldest first."""
    return [run for run in reversed(store.runs()) if (run["plan"] or {}).get("kind")
            == FIDELITY_STAGE]


def fidelity_row(job: dict, figures: dict[str, float]) -> dict:
    """One layer on one array and dataflow. The key (`fidelity:layer:RxC:dataflow`) names
    where it ran; the job's details (run_fidelity.py's row) hold the GEMM's shape."""
    _, layer, array, dataflow = job["key"].split(":")
    rows, cols = (int(n) for n in array.split("x"))
    details = job["details"] or {}
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
    stored = run["summary"] or {}
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
            "limit": TOTAL_LIMIT_PERCENT, "source": (run["plan"] or {}).get("source")}


OUTCOMES = ("passed", "failed", "error", "timeout", "not_run")


def latest_run_view(store: Store) -> dict | None:
    runs = store.runs(limit=1)
    if not runs:
        return None
    run = runs[0]
    jobs = store.jobs(run["id"])
    combinations = [c for c in store.run_combinations(run["id"]) if c]
    modules = sorted({m for c in combinations for m in c["modules"]})
    for combination in combinations:
        counts: dict[str, int] = {}
        for job in jobs:
            if job["combination_id"] == combination["id"]:
                counts[job["status"]] = counts.get(job["status"], 0) + 1
        combination["counts"] = counts
    return {
        "run": run, "jobs": jobs, "combinations": combinations, "modules": modules,
        "outcomes": OUTCOMES,
        # What a reader must look at: anything that did not pass and was not merely skipped
        # because the combination predates what the job needs.
        "attention": [job for job in jobs if job["status"] != "passed"
                      and (job["details"] or {}).get("reason") != "not-applicable"],
        "out_of_budget": [job for job in jobs if job["status"] == "not_run"
                          and (job["details"] or {}).get("reason") == "budget"],
        "used_s": (run["summary"] or {}).get("used_s"),
    }


def publish(store: Store, out_dir: str | Path) -> Path:
    """Write the site into `out_dir`; returns the path of index.html."""
    out = Path(out_dir)
    (out / "assets").mkdir(parents=True, exist_ok=True)
    (out / "ops").mkdir(exist_ok=True)
    site = site_dir()
    shutil.copyfile(plotly_js(), out / "assets" / "plotly.min.js")
    shutil.copyfile(site / "style.css", out / "assets" / "style.css")
    templates = Environment(loader=FileSystemLoader(site / "templates"), autoescape=True,
                            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    templates.filters["duration"] = format_duration
    templates.filters["number"] = _number

    series = trends(store)
    latest = latest_figures(store)
    generated = datetime.now().strftime("%Y-%m-%d %H:%M")
    for entry in latest:
        ops = store.op_profile(entry["job_id"]) if entry["job_id"] else []
        page = templates.get_template("ops.html").render(
            root="../", entry=entry, breakdown=op_breakdown(ops), generated=generated)
        (out / entry["page"]).write_text(page)
    charts = [{"id": f"trend-{slug(w)}", "workload": w, "figure": trend_figure(w, by_sku)}
              for w, by_sku in sorted(series.items())]
    compat = build_matrix(store.verdicts(), store.measured_vectors())
    cells = {f"{c['consumer']}|{c['interface']}|{c['consumer_version']}|{c['provider_version']}": c
             for edge in compat["edges"] for c in edge["cells"]}
    (out / "compat.html").write_text(templates.get_template("compat.html").render(
        root="", matrix=compat, cells=cells, generated=generated))
    conformance, library = conformance_view(store), library_view(store)
    (out / "conformance.html").write_text(templates.get_template("conformance.html").render(
        root="", conformance=conformance, generated=generated))
    fidelity = fidelity_view(store)
    (out / "fidelity.html").write_text(templates.get_template("fidelity.html").render(
        root="", fidelity=fidelity, generated=generated))
    speed = speed_view(store)
    index = out / "index.html"
    index.write_text(templates.get_template("index.html").render(
        root="", latest=latest_run_view(store), runs=store.runs(limit=RECENT_RUNS),
        charts=charts, figures=latest, figure_names=LATEST_FIGURES, generated=generated,
        conformance=conformance, library=library, speed=speed, speed_goal=SPEED_GOAL,
        fidelity=fidelity))
    (out / "data.json").write_text(json.dumps(
        {"trends": {TREND_METRIC: series, SPEED_METRIC: speed["series"] if speed else {},
                    CONFORMANCE_METRIC: conformance["series"] if conformance else {},
                    **{m: combination_series(store, m) for m in LIBRARY_METRICS}},
         "latest": latest, "compatibility": compat,
         "conformance": conformance["latest"] if conformance else [],
         "fidelity": {"run_id": fidelity["run"]["id"], "summary": fidelity["summary"],
                      "trend": fidelity["trend"]} if fidelity else None},
        indent=1, default=str))
    return index


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{int(value):,}"
