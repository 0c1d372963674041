"""The dashboard over a long history: the index inlines only the recent runs and summarises
older ones by month, and trends keep every point of the recent runs and a weekly mean before
them (pages/trends.py, publish.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert

from stackci.dashboard.pages.trends import RECENT_RUNS
from stackci.dashboard.publish import RECENT_RUNS as RECENT_TABLE_RUNS
from stackci.dashboard.publish import publish
from stackci.results.schema import CombinationRow, JobRow, MetricRow, Run
from stackci.results.store import Store

NIGHTS = RECENT_RUNS + 28  # four weeks before the recent runs
START = datetime(2026, 1, 5, 2, 0)  # a Monday: ISO weeks start on the first night


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def nights(store: Store, latency_of, combinations: tuple[str, ...] = ("master",),
           count: int = NIGHTS) -> None:
    """`count` nightly runs of one workload on one SKU on each of `combinations`,
    latency_of(night) each."""
    with store.engine.begin() as db:
        cids = [db.execute(insert(CombinationRow).values(
            name=name, key=f"{i:064x}", created_at=START)).inserted_primary_key[0]
            for i, name in enumerate(combinations)]
        for night in range(count):
            when = START + timedelta(days=night)
            run_id = db.execute(insert(Run).values(
                started_at=when, finished_at=when, status="completed", tier="smoke",
                budget_s=3600.0, host="h", harness_version="t", plan={},
                summary={})).inserted_primary_key[0]
            for cid in cids:
                job_id = db.execute(insert(JobRow).values(
                    run_id=run_id, combination_id=cid, key=f"workloads:resnet:edge@{cid}",
                    stage="workloads", name="resnet", sku="edge", status="passed",
                    started_at=when, finished_at=when, duration_s=1.0, message="",
                    details={})).inserted_primary_key[0]
                db.execute(insert(MetricRow).values(
                    job_id=job_id, run_id=run_id, combination_id=cid, workload="resnet",
                    sku="edge", name="latency_us", value=latency_of(night), unit="us"))


def regression(store: Store, first_bad_run: int) -> None:
    store.record_regression_changes(first_bad_run, {"regressions": [{
        "id": "R7", "state": "new", "kind": "change", "track": "master", "workload": "resnet",
        "sku": "edge", "precision": "fp32", "metric": "latency_us",
        "last_good_run": first_bad_run - 1, "first_bad_run": first_bad_run,
        "found_at": START, "relative": 0.1, "summary": "up", "teams": [], "search_of": None,
        "data": {}}]})


def trend_points(tmp_path, store: Store) -> list[dict]:
    publish(store, tmp_path / "site")
    return json.loads((tmp_path / "site" / "data.json").read_text())[
        "trends"]["latency_us"]["resnet"]["edge"]


def test_the_index_lists_recent_runs_and_summarises_older_ones_by_month(tmp_path, store):
    nights(store, lambda night: 100.0)
    index = publish(store, tmp_path / "site").read_text()
    recent = index.split("<h2>Recent runs</h2>")[1].split("</table>")[0]
    assert recent.count("<tr><td>") == RECENT_TABLE_RUNS
    older = index.split('id="older-runs"')[1].split("</table>")[0]
    months = [row.split("</td>")[:2] for row in older.split("<tr><td>")[1:]]
    summarised = sum(int(runs.split(">")[-1]) for _, runs in months)
    assert summarised == NIGHTS - RECENT_TABLE_RUNS
    assert months[0][0] == f"{START + timedelta(days=NIGHTS - RECENT_TABLE_RUNS - 1):%Y-%m}"


def test_a_trend_keeps_recent_points_and_a_weekly_mean_before_them(tmp_path, store):
    # A step in the second week: the weekly points show it as a change point.
    nights(store, lambda night: (100.0 if night < 7 else 80.0) + night % 7)
    publish(store, tmp_path / "site")
    points = json.loads((tmp_path / "site" / "data.json").read_text())[
        "trends"]["latency_us"]["resnet"]["edge"]
    weekly = [p for p in points if p.get("weekly")]
    assert [p["weekly"] for p in weekly] == [7, 7, 7, 7]
    assert [p["value"] for p in weekly] == [103.0, 83.0, 83.0, 83.0]  # + mean of 0..6
    assert [p["change"] for p in weekly] == [False, True, False, False]
    assert weekly[0]["x"] == "2026-W02 master: mean of 7 runs"
    assert len(points) == 4 + RECENT_RUNS
    assert [p["value"] for p in points[4:6]] == [80.0 + 28 % 7, 80.0 + 29 % 7]  # as stored
    chart = json.loads((tmp_path / "site" / "data" / "trend-resnet.json").read_text())
    assert len(chart["data"][0]["x"]) == 4 + RECENT_RUNS


def test_recent_runs_are_points_on_gating_combinations_and_weekly_means_on_coverage(
        tmp_path, store):
    # A year of a dozen coverage combinations a night would stack thousands of points on
    # the recent runs' labels; their recent weeks are means, as their old ones.
    count = NIGHTS + 3  # the recent runs start on a Thursday: run 32, in the 5th week
    nights(store, lambda night: 100.0 + night % 7, combinations=("master", "pin1"),
           count=count)
    regression(store, first_bad_run=33)  # a recent run, in that split week
    points = trend_points(tmp_path, store)
    master = [p for p in points if "pin1" not in p["x"]]
    assert [p["weekly"] for p in master if p.get("weekly")] == [7, 7, 7, 7, 3]
    assert len(master) == 5 + RECENT_RUNS
    coverage = [p for p in points if "pin1" in p["x"]]
    weeks = (count + 6) // 7
    assert [p["weekly"] for p in coverage] == [7] * (weeks - 1) + [count - 7 * (weeks - 1)]
    assert [p["value"] for p in coverage[:-1]] == [103.0] * (weeks - 1)
    assert coverage[-1]["x"] == f"2026-W{weeks + 1:02d} pin1: mean of {count % 7} runs"
    # In run order, each week's mean at its newest run; the regression is marked on the
    # master point of its run and on the coverage week that holds it, not on master's
    # mean of that week's runs before the recent ones.
    assert [p["run_id"] for p in points] == sorted(p["run_id"] for p in points)
    assert [p["x"] for p in points if p["regression"]] == [
        "#33 no module moved", "2026-W06 pin1: mean of 7 runs"]


def test_without_gating_combinations_every_recent_point_is_drawn(tmp_path, store):
    nights(store, lambda night: 100.0, combinations=("nightly-a", "nightly-b"))
    points = trend_points(tmp_path, store)
    assert len([p for p in points if not p.get("weekly")]) == 2 * RECENT_RUNS
    assert len([p for p in points if p.get("weekly")]) == 2 * 4
