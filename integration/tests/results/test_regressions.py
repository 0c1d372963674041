"""The regressions' rows in a real SQLite store: history read back per track, regressions,
events and searches written in one transaction, filters, and bad ids."""

from datetime import datetime

import pytest

from stackci.errors import UsageError
from stackci.results.store import Store


@pytest.fixture
def store(store_url):
    store = Store(store_url)
    yield store
    store.close()


def night(store, name, tree, cycles, status="passed"):
    run_id = store.start_run(tier="smoke", budget_s=3600, plan={})
    combination = store.record_combination(name, f"key-{name}-{tree}", {
        "opslib": {"version": "1.4.0", "commit": f"c{tree}", "tree_hash": f"t{tree}"}})
    keys = ["build@x", "workloads:convnet:edge@x", "tests:opslib@x"]
    store.add_jobs(run_id, [
        {"key": keys[0], "stage": "build", "name": name, "sku": None,
         "combination_id": combination},
        {"key": keys[1], "stage": "workloads", "name": "convnet", "sku": "edge",
         "combination_id": combination},
        {"key": keys[2], "stage": "tests", "name": "opslib", "sku": None,
         "combination_id": combination}])
    store.finish_job(run_id, keys[0], status="passed",
                     details={"environment": f"/envs/lock{tree}"})
    store.finish_job(run_id, keys[1], status=status, duration_s=2.5,
                     details={"precision": "fp32", "kind": ""}, metrics=[
                         {"name": "total_cycles", "value": cycles, "workload": "convnet",
                          "sku": "edge"}])
    store.finish_job(run_id, keys[2], status="passed", metrics=[
        {"name": "tests_passed", "value": 10}])
    store.finish_run(run_id, "completed", {})
    return run_id


def test_history_of_a_track_holds_figures_outcomes_durations_and_vectors(store):
    first = night(store, "master", 1, 4500)
    second = night(store, "master", 2, 4800)
    night(store, "release:latest", 1, 4500)
    history = store.history("master")
    cycles = [p for p in history["points"] if p["metric"] == "total_cycles"]
    assert [(p["run_id"], p["value"], p["precision"]) for p in cycles] == \
        [(first, 4500, "fp32"), (second, 4800, "fp32")]
    outcomes = {(p["workload"], p["metric"]) for p in history["points"]}
    assert ("convnet", "outcome") in outcomes and ("convnet", "duration_s") in outcomes
    # A run-level job's figures are named by its stage and name, so modules do not collide.
    assert ("tests:opslib", "tests_passed") in outcomes
    assert sorted(v["opslib"]["tree_hash"] for v in history["vectors"].values()) == ["t1", "t2"]
    assert set(history["environments"].values()) == {"lock1", "lock2"}
    assert store.history("nothing") == {"points": [], "vectors": {}, "environments": {}}


def row(regression_id, state="new", teams=("opslib",)):
    return {"id": regression_id, "state": state, "kind": "change", "track": "master",
            "workload": "convnet", "sku": "edge", "precision": "fp32",
            "metric": "total_cycles", "last_good_run": 1, "first_bad_run": 2,
            "found_at": datetime(2026, 12, 3), "relative": 0.1, "summary": "up",
            "teams": list(teams), "search_of": None, "data": {"id": regression_id}}


def test_regressions_events_and_searches_are_written_together_and_filtered(store):
    store.record_regression_changes(2, {
        "regressions": [row("R1"), row("R2", "acknowledged", ("compiler",))],
        "events": [{"regression_id": "R1", "at": datetime(2026, 12, 3), "before": "",
                    "after": "new", "by": "nightly", "note": "up"}],
        "bisections": [{"regression_id": "R1", "done": False, "probes": 1, "culprit": "",
                        "state": {"modules": {}}}]})
    assert [r["id"] for r in store.regression_rows(state="new")] == ["R1"]
    assert [r["id"] for r in store.regression_rows(team="compiler")] == ["R2"]
    assert store.regression_row("R1")["found_run"] == 2
    store.record_regression_changes(3, {
        "regressions": [row("R1", "fixed")],
        "bisections": [{"regression_id": "R1", "done": True, "probes": 4,
                        "culprit": "opslib commit abc", "state": {"x": 1}}]})
    assert store.regression_row("R1")["state"] == "fixed"
    assert store.regression_row("R1")["found_run"] == 2       # kept from when it was found
    search = store.bisection_rows(["R1"])["R1"]
    assert (search["done"], search["probes"], search["updated_run"]) == (True, 4, 3)
    assert [e["after"] for e in store.regression_events("R1")] == ["new"]


def test_an_unknown_regression_id_is_a_one_line_usage_error(store):
    store.record_regression_changes(1, {"regressions": [row("R1")]})
    with pytest.raises(UsageError, match=r"no regression 'R9' \(newest: R1\)"):
        store.regression_row("R9")
