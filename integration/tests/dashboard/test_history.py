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


def nights(store: Store, latency_of) -> None:
    """NIGHTS nightly runs of one workload on one SKU, latency_of(night) each."""
    with store.engine.begin() as db:
        cid = db.execute(insert(CombinationRow).values(
            name="master", key="a" * 64, created_at=START)).inserted_primary_key[0]
        for night in range(NIGHTS):
            when = START + timedelta(days=night)
            run_id = db.execute(insert(Run).values(
                started_at=when, finished_at=when, status="completed", tier="smoke",
                budget_s=3600.0, host="h", harness_version="t", plan={},
                summary={})).inserted_primary_key[0]
            job_id = db.execute(insert(JobRow).values(
                run_id=run_id, combination_id=cid, key="workloads:resnet:edge",
                stage="workloads", name="resnet", sku="edge", status="passed",
                started_at=when, finished_at=when, duration_s=1.0, message="",
                details={})).inserted_primary_key[0]
            db.execute(insert(MetricRow).values(
                job_id=job_id, run_id=run_id, combination_id=cid, workload="resnet",
                sku="edge", name="latency_us", value=latency_of(night), unit="us"))


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
