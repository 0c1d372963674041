"""The dashboard's series queries (results/series.py) on each backend: the weekly buckets and
the points the trends draw one by one."""

import pytest

from stackci.results.store import Store

VECTOR = {"driver": {"version": "0.1.0", "commit": "a" * 40, "tree_hash": "t1"}}
RUNS = 10


@pytest.fixture
def store(store_url):
    store = Store(store_url)
    yield store
    store.close()


def history(store: Store, combinations=("master", "pin1")) -> None:
    """RUNS runs, each measuring resnet on edge on every combination at the run's number
    (x 10 on the second combination)."""
    ids = [store.record_combination(name, f"k{i}", VECTOR) for i, name in enumerate(combinations)]
    for run in range(1, RUNS + 1):
        run_id = store.start_run(tier="smoke", budget_s=10, plan={})
        assert run_id == run
        for i, cid in enumerate(ids):
            key = f"workloads:resnet:edge@{cid}"
            store.add_jobs(run_id, [{"key": key, "stage": "workloads", "name": "resnet",
                                     "sku": "edge", "combination_id": cid}])
            store.finish_job(run_id, key, status="passed", metrics=[
                {"name": "latency_us", "value": float(run * 10 ** i), "workload": "resnet"}])


def test_buckets_aggregate_each_range_of_runs_per_combination(store):
    history(store)
    # Uneven ranges, so the halving CASE meets ranges of one run and a long one.
    buckets = [(1, 3), (4, 4), (5, 9), (10, 10)]
    rows = store.metric_buckets("latency_us", buckets)
    assert [(r["bucket"], r["combination"], r["runs"], r["mean"], r["run_id"])
            for r in rows] == [
        (0, "master", 3, 2.0, 3), (0, "pin1", 3, 20.0, 3),
        (1, "master", 1, 4.0, 4), (1, "pin1", 1, 40.0, 4),
        (2, "master", 5, 7.0, 9), (2, "pin1", 5, 70.0, 9),
        (3, "master", 1, 10.0, 10), (3, "pin1", 1, 100.0, 10)]
    assert [r["bucket"] for r in store.metric_buckets("latency_us", buckets[1:3])] == [
        0, 0, 1, 1]  # runs outside the ranges are left out


def test_buckets_leave_out_the_runs_drawn_as_points(store):
    history(store)
    buckets = [(1, 5), (6, 10)]
    rows = store.metric_buckets("latency_us", buckets, points_from=4, points_of=("master",))
    assert [(r["bucket"], r["combination"], r["runs"]) for r in rows] == [
        (0, "master", 3), (0, "pin1", 5), (1, "pin1", 5)]
    rows = store.metric_buckets("latency_us", buckets, points_from=4)  # of every combination
    assert [(r["bucket"], r["combination"], r["runs"]) for r in rows] == [
        (0, "master", 3), (0, "pin1", 3)]
    points = store.metric_series("latency_us", since_run=4, combinations=("master",))
    assert [(p["run_id"], p["combination"]) for p in points] == [
        (run, "master") for run in range(4, RUNS + 1)]
    assert store.combination_names() == {"master", "pin1"}


def test_latest_metrics_are_the_newest_row_of_each_figure_per_workload_and_sku(store):
    # Workloads and SKUs in and out of order, a NULL SKU (no comparison passes over it), a
    # figure of a combination as a whole (no workload: not a workload's figure), and a job
    # finished again (its rows replaced, so newer ids).
    cid = store.record_combination("master", "k0", VECTOR)
    rows = [("resnet", "edge"), ("bert", "dc"), ("resnet", None), ("alexnet", "edge"),
            ("resnet", "dc"), (None, None)]
    for run in range(1, 4):
        run_id = store.start_run(tier="smoke", budget_s=10, plan={})
        for i, (workload, sku) in enumerate(rows):
            key = f"workloads:{i}@{cid}"
            store.add_jobs(run_id, [{"key": key, "stage": "workloads", "name": str(i),
                                     "sku": sku, "combination_id": cid}])
            for attempt in range(1 if run < 3 else 2):
                store.finish_job(run_id, key, status="passed", metrics=[
                    {"name": name, "value": 100.0 * run + 10 * i + attempt,
                     "workload": workload} for name in ("latency_us", "compile_s")])
    found = {(r["name"], r["workload"], r["sku"]): (r["run_id"], r["value"])
             for r in store.latest_metrics(("latency_us", "compile_s"))}
    assert found == {(name, workload, sku): (3, 300.0 + 10 * i + 1)
                     for name in ("latency_us", "compile_s")
                     for i, (workload, sku) in enumerate(rows) if workload}
    assert store.latest_metrics(("no_such_figure",)) == []
