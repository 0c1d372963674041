import threading

import pytest
from sqlalchemy import text

from stackci.errors import StackciError, UsageError
from stackci.results.store import Store


@pytest.fixture
def store(store_url):
    store = Store(store_url)
    yield store
    store.close()


VECTOR = {"driver": {"version": "0.1.0", "commit": "a" * 40, "tree_hash": "t1"},
          "runtime": {"version": "0.2.0", "commit": "b" * 40, "tree_hash": "t2"}}


def planned(store, run_id, combination_id=None):
    store.add_jobs(run_id, [
        {"key": "build@x", "stage": "build", "name": "master", "sku": None,
         "combination_id": combination_id},
        {"key": "workloads:resnet:edge@x", "stage": "workloads", "name": "resnet",
         "sku": "edge", "combination_id": combination_id}])


def test_roundtrip_of_a_run_with_metrics_and_ops(store):
    run_id = store.start_run(tier="smoke", budget_s=3600, plan={"options": {"tier": "smoke"}},
                             host="h", harness_version="0.1.0")
    comb = store.record_combination("master", "k1", VECTOR)
    assert store.record_combination("master", "k1", VECTOR) == comb  # same key, same row
    planned(store, run_id, comb)
    store.start_job(run_id, "workloads:resnet:edge@x", estimate_s=12.0)
    assert {j["key"]: j["status"] for j in store.jobs(run_id)} == {
        "build@x": "not_run", "workloads:resnet:edge@x": "running"}
    job_id = store.finish_job(
        run_id, "workloads:resnet:edge@x", status="passed", message="ok", duration_s=3.5,
        details={"precision": "fp32"},
        metrics=[{"name": "latency_us", "value": 120.5, "unit": "us", "workload": "resnet"}],
        ops=[{"name": "conv0", "op_type": "Conv", "kernel": "k", "fusion": "Relu",
              "cycles": 10, "macs": 5, "bytes_read": 1, "bytes_written": 2, "unit": "array",
              "array_utilization": 0.5}])
    store.finish_run(run_id, "completed", {"used_s": 4.0})

    run = store.run(run_id)
    assert (run["status"], run["tier"], run["summary"]) == ("completed", "smoke", {"used_s": 4.0})
    assert run["finished_at"] is not None
    job = next(j for j in store.jobs(run_id) if j["key"].startswith("workloads"))
    assert (job["status"], job["duration_s"], job["estimate_s"], job["details"]) == (
        "passed", 3.5, 12.0, {"precision": "fp32"})
    [metric] = store.metrics(run_id=run_id)
    # The SKU defaults to the job's, the combination to the job's combination.
    assert (metric["sku"], metric["combination_id"], metric["value"]) == ("edge", comb, 120.5)
    [op] = store.op_profile(job_id)
    assert (op["op_type"], op["fusion"], op["cycles"]) == ("Conv", "Relu", 10.0)
    assert store.combination(comb)["modules"]["runtime"]["version"] == "0.2.0"
    assert [c["key"] for c in store.run_combinations(run_id)] == ["k1"]
    [series] = store.metric_series("latency_us")
    assert (series["workload"], series["combination"], series["run_id"]) == ("resnet", "master",
                                                                             run_id)
    assert store.runs()[0]["counts"] == {"passed": 1, "not_run": 1}


def test_finishing_a_job_again_replaces_its_metrics(store):
    run_id = store.start_run(tier="smoke", budget_s=10, plan={})
    planned(store, run_id)
    for value in (1.0, 2.0):
        store.finish_job(run_id, "build@x", status="passed",
                         metrics=[{"name": "tests_passed", "value": value}])
    assert [m["value"] for m in store.metrics(run_id=run_id)] == [2.0]


def test_add_jobs_keeps_existing_rows_on_resume(store):
    run_id = store.start_run(tier="smoke", budget_s=10, plan={})
    planned(store, run_id)
    store.finish_job(run_id, "build@x", status="passed")
    planned(store, run_id)
    assert {j["key"]: j["status"] for j in store.jobs(run_id)}["build@x"] == "passed"


def test_latest_unfinished_run(store):
    first = store.start_run(tier="smoke", budget_s=10, plan={})
    second = store.start_run(tier="smoke", budget_s=10, plan={})
    store.finish_run(second, "completed", {})
    assert store.latest_unfinished_run()["id"] == first
    store.update_run(first, status="interrupted")
    assert store.latest_unfinished_run()["id"] == first
    store.finish_run(first, "completed", {})
    assert store.latest_unfinished_run() is None


def test_estimate_is_the_mean_of_recent_finished_durations(store):
    for duration in (10.0, 20.0, 30.0):
        run_id = store.start_run(tier="smoke", budget_s=100, plan={})
        planned(store, run_id)
        store.finish_job(run_id, "workloads:resnet:edge@x", status="passed",
                         duration_s=duration)
        store.finish_job(run_id, "build@x", status="not_run", duration_s=None)
    assert store.estimate("workloads", "resnet", "edge") == 20.0
    assert store.estimate("workloads", "resnet", "edge", recent=1) == 30.0
    assert store.estimate("workloads", "resnet", "datacenter") is None
    assert store.estimate("build", "master", None) is None  # not_run is no evidence
    run_id = store.start_run(tier="smoke", budget_s=100, plan={})
    planned(store, run_id)
    store.finish_job(run_id, "build@x", status="error", duration_s=0.1)
    assert store.estimate("build", "master", None) is None  # nor is a crash


def test_jobs_can_finish_from_many_threads(store):
    run_id = store.start_run(tier="smoke", budget_s=10, plan={})
    keys = [f"tests:m{i}@x" for i in range(16)]
    store.add_jobs(run_id, [{"key": k, "stage": "tests", "name": k, "sku": None,
                             "combination_id": None} for k in keys])

    def finish(key):
        store.finish_job(run_id, key, status="passed", metrics=[{"name": "n", "value": 1}])

    threads = [threading.Thread(target=finish, args=(k,)) for k in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {j["status"] for j in store.jobs(run_id)} == {"passed"}
    assert len(store.metrics(run_id=run_id)) == 16


def test_sqlite_uses_wal(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_skus_upsert(store):
    store.upsert_sku("edge", {"clock_ghz": 1.0})
    store.upsert_sku("edge", {"clock_ghz": 1.2})
    assert store.skus() == {"edge": {"clock_ghz": 1.2}}


def test_unknown_status_and_unknown_job_are_refused(store):
    run_id = store.start_run(tier="smoke", budget_s=10, plan={})
    planned(store, run_id)
    with pytest.raises(ValueError, match="skipped"):
        store.finish_job(run_id, "build@x", status="skipped")
    with pytest.raises(StackciError, match="no job 'nope'"):
        store.finish_job(run_id, "nope", status="passed")


def test_bad_url_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot open results database"):
        Store("nosuchdialect://x")


def test_an_unreachable_postgresql_is_a_one_line_usage_error():
    with pytest.raises(UsageError, match="cannot open results database postgresql") as caught:
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert "\n" not in str(caught.value)


def test_measured_vectors_are_the_runs_and_combinations_whose_workloads_all_passed(store):
    good = store.record_combination("master", "k1", VECTOR)
    bad = store.record_combination("pin1", "k2", {**VECTOR, "runtime": {
        "version": "0.3.0", "commit": "c" * 40, "tree_hash": "t3"}})
    for run_id in (store.start_run(tier="smoke", budget_s=10, plan={}) for _ in range(2)):
        for cid, statuses in ((good, ("passed", "passed")), (bad, ("passed", "failed"))):
            keys = [f"workloads:w{i}:edge@{cid}" for i in range(2)] + [f"build@{cid}"]
            store.add_jobs(run_id, [{"key": key, "stage": key.split(":")[0].split("@")[0],
                                     "name": key, "sku": None, "combination_id": cid}
                                    for key in keys])
            for key, status in zip(keys, (*statuses, "failed")):  # build failing: no matter
                store.finish_job(run_id, key, status=status)
    assert [(v["run_id"], v["combination_id"], v["trees"]) for v in store.measured_vectors()
            ] == [(1, good, {"driver": "t1", "runtime": "t2"}),
                  (2, good, {"driver": "t1", "runtime": "t2"})]
