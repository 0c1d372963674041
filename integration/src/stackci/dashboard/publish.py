"""The static dashboard: HTML pages rendered from the results database (like `asv publish`).

index.html     budget banner, the latest run, recent runs, latency trends, latest figures,
               functional speed against onnxruntime, the ONNX node suite's pass count and the
               kernel library's size per combination
compat.html    the compatibility matrix (declared / verified / measured), disagreements first
conformance.html  the latest node-suite failures of each combination, by class
regressions.html  the stored regressions, open ones first: culprit module, commit, owner,
               size, per-op diff and the culprit search's evidence
fidelity.html  the latest fidelity run (our scalesim mode against SCALE-Sim) per array and
               dataflow, and the worst total-cycle difference per fidelity run
ops/*.html     op-level breakdown of the latest run of one workload on one SKU
analysis.html, analysis/*.html, sweetspots.html, explore.html, advice.html
               the workload analysis (pages/analysis.py)
data.json      the figures the pages show, for scripts and tests
data/*.json    one figure per lazy chart of index.html (drawn by assets/lazy.js when it
               scrolls into view; needs the site served over http, not file://)
assets/        plotly.min.js (copied from the installed plotly package) and the stylesheet

Every page works offline: scripts and styles are referenced by relative path, never a CDN.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from stackci.dashboard.pages.analysis import analysis_views
from stackci.dashboard.pages.conformance import (CONFORMANCE_METRIC, LIBRARY_METRICS,
                                                 combination_series, conformance_view,
                                                 library_view)
from stackci.dashboard.pages.fidelity import fidelity_view
from stackci.dashboard.pages.ops import op_breakdown
from stackci.dashboard.pages.regressions import regressions_view
from stackci.dashboard.pages.runs import latest_run_view
from stackci.dashboard.pages.speed import SPEED_GOAL, SPEED_METRIC, speed_view
from stackci.dashboard.pages.trends import (LATEST_FIGURES, TREND_METRIC, latest_figures,
                                            trend_figure, trends)
from stackci.dashboard.site import number, plotly_js, site_dir, slug
from stackci.durations import format_duration
from stackci.results.matrix import build_matrix
from stackci.results.store import Store

RECENT_RUNS = 30  # the index's table of runs; older ones are a line per month


def publish(store: Store, out_dir: str | Path) -> Path:
    """Write the site into `out_dir`; returns the path of index.html."""
    out = Path(out_dir)
    (out / "assets").mkdir(parents=True, exist_ok=True)
    (out / "ops").mkdir(exist_ok=True)
    site = site_dir()
    shutil.copyfile(plotly_js(), out / "assets" / "plotly.min.js")
    shutil.copyfile(site / "style.css", out / "assets" / "style.css")
    shutil.copyfile(site / "lazy.js", out / "assets" / "lazy.js")
    templates = Environment(loader=FileSystemLoader(site / "templates"), autoescape=True,
                            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    templates.filters["duration"] = format_duration
    templates.filters["number"] = number
    templates.globals["chart_file"] = ChartFiles(out)

    series, speed = read_at_once(store, trends, speed_view)
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
    regressions = regressions_view(store)
    (out / "regressions.html").write_text(templates.get_template("regressions.html").render(
        root="", regressions=regressions, generated=generated))
    publish_analysis(templates, out, analysis_views(store), generated)
    index = out / "index.html"
    runs = store.runs(limit=RECENT_RUNS)
    index.write_text(templates.get_template("index.html").render(
        root="", latest=latest_run_view(store), runs=runs,
        older=store.run_months(before_run=runs[-1]["id"]) if runs else [],
        charts=charts, figures=latest, figure_names=LATEST_FIGURES, generated=generated,
        conformance=conformance, library=library, speed=speed, speed_goal=SPEED_GOAL,
        fidelity=fidelity, regressions=regressions))
    (out / "data.json").write_text(json.dumps(
        {"trends": {TREND_METRIC: series, SPEED_METRIC: speed["series"] if speed else {},
                    CONFORMANCE_METRIC: conformance["series"] if conformance else {},
                    **{m: combination_series(store, m) for m in LIBRARY_METRICS}},
         "latest": latest, "compatibility": compat, "regressions": regressions["entries"],
         "conformance": conformance["latest"] if conformance else [],
         "fidelity": {"run_id": fidelity["run"]["id"], "summary": fidelity["summary"],
                      "trend": fidelity["trend"]} if fidelity else None},
        default=str))  # no indent: only the C encoder is fast enough for a year
    return index


def read_at_once(store: Store, *views) -> list:
    """`view(store)` of each view, run at once on threads of their own. The two trends
    spend most of their time in the database (SQLite sorting a year of rows into weekly
    buckets, outside the GIL), so on two cores they overlap (publish of the synthetic year:
    docs/design.md)."""
    with ThreadPoolExecutor(max_workers=len(views)) as pool:
        return [job.result() for job in [pool.submit(view, store) for view in views]]


class ChartFiles:
    """`chart_file(id, figure)` in a template: writes the figure to data/<id>.json and returns
    that path, for a lazy chart (assets/lazy.js) that fetches it when it scrolls into view."""

    def __init__(self, out: Path):
        self.folder = out / "data"
        self.folder.mkdir(exist_ok=True)

    def __call__(self, chart_id: str, figure: dict) -> str:
        name = f"{chart_id}.json"
        (self.folder / name).write_text(json.dumps(figure, default=str))
        return f"data/{name}"


def publish_analysis(templates, out: Path, views: dict, generated: str) -> None:
    (out / "analysis").mkdir(exist_ok=True)
    for page in views["documents"]:
        (out / page["page"]).write_text(templates.get_template("analysis_doc.html").render(
            root="../", d=page, generated=generated))
    for name, template, context in (
            ("analysis.html", "analysis.html", {"views": views}),
            ("sweetspots.html", "sweetspots.html", {"sweet": views["sweet"]}),
            ("explore.html", "explore.html", {"sweeps": views["explore"]}),
            ("advice.html", "advice.html", {"advice": views["advice"]})):
        (out / name).write_text(templates.get_template(template).render(
            root="", generated=generated, **context))
