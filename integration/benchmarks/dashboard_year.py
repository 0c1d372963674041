"""A year of nights on the dashboard: how long `publish` takes and how long index.html takes
to load in headless Chromium, against the goals (publish <= 10 s, index <= 2 s).

    python integration/benchmarks/dashboard_year.py [--nights 365] [--combinations 17]
        [--db PATH] [--json]

Synthesizes into a fresh SQLite store (or reuses --db when it already holds the nights) the
history of the full default plan: `--nights` runs, each with every workload x SKU of the
suite (precision variants included) on every one of `--combinations` combinations, their
metrics (the figures the nightly records) and a three-op profile each, and per combination
the jobs of the other stages (build, contracts, tests, conformance with its node-suite
details, regressions, analysis) with the conformance and kernel-library figures; bulk inserts through
SQLAlchemy Core, so the synthesis is not what is measured. Then publishes the site from it
and opens index.html in Chromium (the browser helper of the tests, integration/tests/browser.py)
over a local http server, timing the page's load with every chart drawn.
A script, not a test: its figures go into docs/design.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from stackci.dashboard.publish import publish
from stackci.model import CONFORMANCE_PASSED, CONFORMANCE_TOTAL, LIBRARY_METRICS
from stackci.results.schema import (CombinationModule, CombinationRow, JobRow, MetricRow,
                                    OpProfileRow, Run)
from stackci.results.store import Store
from stackci.workloads.suite import load_suite
from stackci.workspace import MODULES

STAGES = ("build", "contracts", "tests", "conformance", "regressions", "analysis")
COMBINATION_METRICS = {"conformance": ((CONFORMANCE_PASSED, 1150), (CONFORMANCE_TOTAL, 1200)),
                       "build": tuple((m, v) for m, v in zip(LIBRARY_METRICS, (60, 900, 8400)))}
GOALS = {"publish_s": 10.0, "index_load_s": 2.0}
FIGURES = (("latency_us", "us"), ("total_cycles", "cycles"), ("peak_device_bytes", "bytes"),
           ("max_abs_error", ""), ("compile_s", "s"), ("run_s", "s"), ("speed_ratio", "x"),
           ("throughput_per_s", "1/s"), ("ops", "ops"))


def synthesize(store: Store, nights: int, combinations: int, seed: int = 1) -> int:
    """Store the year; returns the number of metric rows."""
    rng = random.Random(seed)
    suite = load_suite()
    pairs = [(w.name, sku) for w in suite.workloads for sku in (w.skus or ())]
    start = datetime(2026, 1, 1, 2, 0)
    metric_rows = 0
    with store.engine.begin() as db:
        combo_ids = []
        for c in range(combinations):
            cid = db.execute(insert(CombinationRow).values(
                name="master" if c == 0 else f"release:latest+pin{c}", key=f"{c:064x}",
                created_at=start)).inserted_primary_key[0]
            db.execute(insert(CombinationModule), [
                {"combination_id": cid, "module": m, "version": f"1.{c}.0",
                 "commit": f"{c:040x}", "tree_hash": f"{c:040x}"} for m in MODULES])
            combo_ids.append(cid)
        base = {pair: rng.uniform(50, 5000) for pair in pairs}
        for night in range(nights):
            when = start + timedelta(days=night)
            run_id = db.execute(insert(Run).values(
                started_at=when, finished_at=when + timedelta(hours=1), status="completed",
                tier="smoke", budget_s=86400.0, host="bench", harness_version="bench",
                plan={}, summary={"used_s": 3600.0})).inserted_primary_key[0]
            jobs = [{"run_id": run_id, "combination_id": cid, "key": f"workloads:{w}:{s}@{cid}",
                     "stage": "workloads", "name": w, "sku": s, "status": "passed",
                     "started_at": when, "finished_at": when, "duration_s": 30.0,
                     "estimate_s": 30.0, "message": "", "details": {}}
                    for cid in combo_ids for w, s in pairs]
            # The jobs of the other stages, as the nightly stores them: one each per
            # combination (the latest-run table and the job tallies read them all).
            jobs += [{"run_id": run_id, "combination_id": cid, "key": f"{stage}:{cid}",
                      "stage": stage, "name": stage, "sku": None, "status": "passed",
                      "started_at": when, "finished_at": when, "duration_s": 60.0,
                      "estimate_s": 60.0, "message": "",
                      "details": {"passed": 1150, "total": 1200, "floor": 1100, "counts": {},
                                  "failures": []} if stage == "conformance" else {}}
                     for cid in combo_ids for stage in STAGES]
            db.execute(insert(JobRow), jobs)
            ids = db.execute(select(JobRow.id, JobRow.combination_id, JobRow.name, JobRow.sku,
                                    JobRow.stage)
                             .where(JobRow.run_id == run_id)).all()
            metrics, ops = [], []
            for job_id, cid, name, sku, stage in ids:
                if stage in COMBINATION_METRICS:  # figures of a combination as a whole
                    metrics += [{"job_id": job_id, "run_id": run_id, "combination_id": cid,
                                 "workload": None, "sku": None, "name": figure,
                                 "value": value + night // 60, "unit": ""}
                                for figure, value in COMBINATION_METRICS[stage]]
                    continue
                if stage != "workloads":
                    continue
                latency = base[(name, sku)] * (1 + 0.01 * ((night // 30) % 3))
                values = (latency, latency * 1000, 1 << 24, 1e-5, rng.uniform(0.1, 1),
                          rng.uniform(0.5, 2), rng.uniform(1, 3), 1e6 / latency, 40)
                metrics += [{"job_id": job_id, "run_id": run_id, "combination_id": cid,
                             "workload": name, "sku": sku, "name": figure, "value": value,
                             "unit": unit} for (figure, unit), value in zip(FIGURES, values)]
                ops += [{"job_id": job_id, "idx": i, "name": f"op{i}", "op_type": t,
                         "kernel": f"{t.lower()}_k", "fusion": "", "cycles": latency * 300,
                         "macs": 1e6, "bytes_read": 1e5, "bytes_written": 1e5,
                         "unit": "array", "array_utilization": 0.5}
                        for i, t in enumerate(("Conv", "Gemm", "Softmax"))]
            db.execute(insert(MetricRow), metrics)
            db.execute(insert(OpProfileRow), ops)
            metric_rows += len(metrics)
    return metric_rows


def index_load_s(site: Path) -> tuple[float, float]:
    """Seconds from navigating to index.html to its load event (what a reader waits for
    before the page is there; lazy charts in view start drawing then), and until every
    chart was drawn, each lazy one scrolled into view in turn."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from browser import Browser, chromium_path, serve  # the tests' Chromium helper

    binary = chromium_path()
    if binary is None:
        raise SystemExit("dashboard_year: no Chromium (apt-get install -y chromium)")
    profile = Path(tempfile.mkdtemp(prefix="dashboard-year-chromium-"))
    browser = Browser(binary, profile)
    try:
        with serve(site) as base:
            page = browser.check(base + "index.html", timeout_s=120)
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    if page.errors or not page.all_charts_rendered:
        print(f"dashboard_year: index.html: errors {page.errors[:3]}, undrawn charts "
              f"{page.unrendered[:5]}", file=sys.stderr)
    return page.loaded_s, page.drawn_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--combinations", type=int, default=17)
    parser.add_argument("--db", default=None, help="SQLite file (kept; reused when full)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dashboard-year-"))
    db = Path(args.db) if args.db else work / "year.db"
    store = Store(f"sqlite:///{db}")
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(Run)).scalar()
    started = time.perf_counter()
    rows = synthesize(store, args.nights, args.combinations) if not stored else None
    synth_s = time.perf_counter() - started
    started = time.perf_counter()
    index = publish(store, work / "site")
    publish_s = time.perf_counter() - started
    loaded, drawn = index_load_s(work / "site")
    size = sum(p.stat().st_size for p in (work / "site").rglob("*") if p.is_file())
    figures = {"nights": args.nights, "combinations": args.combinations, "metric_rows": rows,
               "synthesis_s": round(synth_s, 1), "publish_s": round(publish_s, 2),
               "site_bytes": size, "index_bytes": index.stat().st_size,
               "index_load_s": round(loaded, 2), "all_charts_drawn_s": round(drawn, 2)}
    if args.json:
        print(json.dumps({**figures, "goals": GOALS}, indent=1))
        return
    for name, value in figures.items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else ("  ok" if value <= goal else f"  over the {goal} s goal")
        print(f"{name:<19}{value!s:>12}{verdict}")


if __name__ == "__main__":
    main()
