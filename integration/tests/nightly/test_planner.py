"""The planner (nightly/planner.py): estimates from history, priorities, the prediction, P0;
and the night it plans: the cap on combinations, carry-over, the P0 in summary and exit code."""

import io
from datetime import datetime

import pytest
from fakes import FakePort
from stackci.durations import format_duration
from stackci.model import BUDGET, NOT_RUN, Job, Outcome
from stackci.nightly.budget import DEFAULT_ESTIMATES, DEFAULT_WORK_RATES, Budget
from stackci.nightly.plan import JobSpec, NightlyOptions
from stackci.nightly.planner import (CARRIED, COVERAGE, GATING, History, WorkRates, p0_of,
                                     predict, priority_class, prioritise)
from stackci.nightly.progress import PlainProgress
from stackci.nightly.run import Nightly
from stackci.results.history import PastJob
from stackci.results.schema import JobRow

WHEN = datetime(2026, 12, 1, 2, 0)


def past(run_id, key, status="passed", duration=None, reason="", stage="workloads",
         name="resnet", sku="edge"):
    return PastJob(run_id, WHEN, key, stage, name, sku, status, duration, reason)


def test_estimates_prefer_own_history_then_similar_jobs_then_the_stage_then_defaults():
    history = History([past(3, "w:resnet:edge@aaa", duration=10.0),
                       past(2, "w:resnet:edge@aaa", duration=30.0),
                       past(2, "w:resnet:edge@aaa", status="error", duration=1.0),
                       past(1, "w:resnet:edge@aaa", duration=20.0),
                       past(1, "w:resnet:edge@bbb", duration=99.0),
                       past(1, "w:bert:edge@bbb", name="bert", duration=7.0)])
    assert history.estimate("w:resnet:edge@aaa", "workloads", "resnet", "edge") == (
        20.0, "history")  # the median of its full runs; the crash is no evidence
    # Another combination: the same workload and SKU anywhere (10, 30, 20, 99).
    assert history.estimate("w:resnet:edge@ccc", "workloads", "resnet", "edge") == (
        25.0, "similar")
    assert history.estimate("w:vit:edge@ccc", "workloads", "vit", "edge")[1] == "stage"
    assert history.estimate("build@ccc", "build", "master", None) == (
        DEFAULT_ESTIMATES["build"], "default")


def spec(key, combination="c1", stage="workloads", needs=(), after=()):
    return JobSpec(key, stage, key, stage, combination=combination, needs=needs, after=after)


def test_priorities_put_gating_first_and_raise_carried_work_each_night():
    history = History([past(5, "w2@c2", NOT_RUN, reason=BUDGET),
                       past(4, "w2@c2", NOT_RUN, reason=BUDGET),
                       past(3, "w2@c2", NOT_RUN, reason=BUDGET),
                       past(5, "w3@c2", NOT_RUN, reason=BUDGET),
                       past(4, "w3@c2", "passed", duration=1.0),
                       past(5, "w4@c2", "failed", duration=1.0)])
    specs = [spec("w1@c2", "c2"), spec("w3@c2", "c2"), spec("w2@c2", "c2"),
             spec("w4@c2", "c2"), spec("g@c1", "c1")]
    ordered, carried = prioritise(specs, {"c1": GATING, "c2": COVERAGE}, history)
    by_key = {s.key: s.priority for s in ordered}
    assert priority_class(by_key["g@c1"]) == "gating"
    assert priority_class(by_key["w3@c2"]) == "carried"  # one night waited
    assert priority_class(by_key["w2@c2"]) == "new"  # three nights: raised to just below gating
    assert carried["w2@c2"]["nights"] == 3 and carried["w3@c2"]["nights"] == 1
    assert sorted(by_key, key=by_key.get) == ["g@c1", "w2@c2", "w4@c2", "w1@c2", "w3@c2"]
    assert CARRIED > COVERAGE  # w4 failed last time: first of the coverage class


def test_the_prediction_replays_the_workers_and_names_the_p0():
    specs = [spec("build", stage="build"), spec("a", needs=("build",)),
             spec("b", needs=("build",)), spec("c", needs=("build",)),
             spec("publish", combination=None, stage="publish", after=("a", "b", "c"))]
    specs = [s.__class__(**{**s.__dict__, "priority": i}) for i, s in enumerate(specs)]
    estimates = {"build": 10.0, "a": 5.0, "b": 5.0, "c": 5.0, "publish": 1.0}
    prediction = predict(specs, estimates, workers=2, budget_s=100.0)
    assert prediction.ends == {"build": 10.0, "a": 15.0, "b": 15.0, "c": 20.0, "publish": 21.0}
    assert p0_of(prediction, specs, frozenset()) is None
    tight = predict(specs, estimates, workers=2, budget_s=16.0)
    p0 = p0_of(tight, specs, gating=frozenset({"c"}))
    assert p0["stage"] == "workloads" and p0["jobs"] == ["c", "publish"]
    assert p0["gating"] == ["c"] and p0["predicted_end_s"] == 21.0
    assert predict(specs, estimates, workers=1, budget_s=100.0).end_s == 26.0


def test_plain_progress_prints_stage_transitions_and_a_status_line():
    out = io.StringIO()
    now = [0.0]
    progress = PlainProgress(out, every_s=3600, clock=lambda: now[0])
    jobs = [Job("b", "build", "b", None), Job("w1", "workloads", "w1", None),
            Job("w2", "workloads", "w2", None)]
    progress.begin(3, 0, jobs=jobs, estimates={"b": 10.0, "w1": 10.0, "w2": 10.0},
                   budget=Budget(600.0, clock=lambda: now[0]), workers=2)
    progress.started(jobs[0])
    now[0] = 20.0  # the build took twice its estimate: the ETA doubles the rest
    progress.finished(jobs[0], "passed")
    assert progress.eta_s() == 20.0
    progress.started(jobs[1])
    progress.finished(jobs[1], "failed")
    progress.close()
    lines = out.getvalue().splitlines()
    assert "3 jobs planned, 0 already done; 0 done, 0 running, 3 left; used 0.0s of 10m00s" \
        in lines[0]
    assert lines[1].endswith("stage build started (1 jobs)")
    assert "stage build finished; 1 done, 0 running, 2 left; used 20.0s of 10m00s; ETA" \
        in lines[2]
    assert lines[3].endswith("stage workloads started (2 jobs)")
    assert lines[4].endswith("failed w1")


def test_the_status_line_comes_at_least_every_interval():
    out = io.StringIO()
    progress = PlainProgress(out, every_s=0.05)
    progress.begin(1, 0, jobs=[Job("b", "build", "b", None)], estimates={"b": 1.0})
    import time
    time.sleep(0.3)
    progress.close()
    assert sum("0 done, 0 running, 1 left" in line for line in out.getvalue().splitlines()) >= 3


# -- the night the planner plans ------------------------------------------------------------

def nightly(ws, store, port):
    return Nightly(ws, store, port=port, suite=port.suite_path(), dashboard_dir=ws.home / "site")


def test_combinations_past_the_cap_are_carried_over_and_run_first_next_night(ws, store,
                                                                           tmp_path):
    port = FakePort(tmp_path, workloads=("resnet",))
    combos = [port.combination("master"), port.combination("release:latest", "0.0.9"),
              *(port.combination(f"release:latest+driver=0.{i}.0", f"0.{i}.0")
                for i in range(3, 6))]
    options = NightlyOptions(tier="smoke", no_tests=True, default_plan=True,
                             max_combinations=3)
    first = nightly(ws, store, port).start(options, combos)
    jobs = {job.key: job for job in store.jobs(first.run_id)}
    ran = {key[-12:] for key, job in jobs.items() if job.stage == "build"
           and job.status == "passed"}
    assert ran == {c.key[:12] for c in combos[:3]}
    for combination in combos[3:]:
        left = jobs[f"workloads:resnet:edge@{combination.key[:12]}"]
        assert (left.status, left.reason) == (NOT_RUN, BUDGET)
        assert "carried over (beyond --max-combinations 3)" in left.message
    # (Failed once in CI with a gating job not passing: the message names it next time.)
    assert first.ok, {key: ended for key, ended in first.ended.items()
                      if key not in first.advisory and ended[0] != "passed"}
    assert first.summary["deferred_combinations"] == 2
    assert first.gating_left_out == []  # coverage left out: not a P0

    second = nightly(ws, store, port).start(options, combos)
    jobs = {job.key: job for job in store.jobs(second.run_id)}
    ran = {key[-12:] for key, job in jobs.items() if job.stage == "build"
           and job.status == "passed"}
    # The two carried over run, beside the gating ones; the coverage that ran waits.
    assert ran == {c.key[:12] for c in (combos[0], combos[1], combos[3])}
    assert second.summary["carried_count"] > 0


def test_the_first_eta_leaves_out_the_combinations_past_the_cap(ws, store, tmp_path):
    """Their jobs end at once as carried over: counting their estimates made a fresh clone's
    first line announce an ETA of 25 hours for a seven-minute night."""
    out = io.StringIO()
    port = FakePort(tmp_path, workloads=("resnet",))
    combos = [port.combination("master"), port.combination("release:latest", "0.0.9"),
              *(port.combination(f"release:latest+driver=0.{i}.0", f"0.{i}.0")
                for i in range(3, 9))]
    options = NightlyOptions(tier="smoke", no_tests=True, default_plan=True,
                             max_combinations=2, workers=1)
    progress = PlainProgress(out, every_s=3600)
    Nightly(ws, store, port=port, suite=port.suite_path(), dashboard_dir=ws.home / "site",
            reporter=progress).start(options, combos)
    plan = store.run(1).plan
    kept = {c["key"] for c in plan["combinations"]} - set(plan["deferred"])
    expected = sum(seconds for key, seconds in plan["estimates"].items()
                   if next(j for j in plan["jobs"] if j["key"] == key)["combination"]
                   in kept | {None})
    first = out.getvalue().splitlines()[0]
    assert f"ETA {format_duration(expected)}" in first, (first, expected)


def test_a_plan_past_its_budget_names_the_p0_and_the_next_night_runs_it_first(ws, store,
                                                                             tmp_path):
    port = FakePort(tmp_path, workloads=("resnet", "bert"))
    night = nightly(ws, store, port)
    night.start(NightlyOptions(tier="smoke", no_tests=True), [port.combination()])
    with store._sessions.begin() as session:  # history: each bert run takes twenty minutes
        for row in session.query(JobRow).filter_by(stage="workloads", name="bert"):
            row.duration_s = 1200.0
    small = NightlyOptions(tier="smoke", no_tests=True, budget_s=1000.0, workers=1)
    result = night.start(small, [port.combination()])
    p0 = result.summary["p0"]
    assert p0["stage"] == "workloads" and p0["gating"]
    assert p0["jobs"][0].startswith("workloads:bert:")  # the first job that does not fit
    assert result.gating_left_out and all("bert" in key for key in result.gating_left_out)
    plan = store.run(result.run_id).plan
    assert plan["p0"]["stage"] == "workloads"
    assert plan["estimate_sources"][f"workloads:resnet:edge@{port.combination().key[:12]}"] \
        == "history"
    index = (ws.home / "site" / "index.html").read_text()
    assert "P0" in index and "bert" in index

    port.calls.clear()
    nightly(ws, store, port).start(NightlyOptions(tier="smoke", no_tests=True, workers=1),
                                   [port.combination()])
    models = [c[1] for c in port.calls if c[0] == "run_model"]
    assert models[:1] == ["bert"]  # the one carried over starts first


def workload_spec(name, tag="ccc"):
    return JobSpec(f"workloads:{name}:edge@{tag}", "workloads", name, "workloads",
                   combination=tag, sku="edge")


def test_a_workload_never_run_anywhere_is_estimated_from_its_work():
    """Three workloads ran (2 s + 1 s per G operations, one night of the third twice as
    slow); a fourth, never run, is priced on the line through them, not the stage median."""
    runs = {"a": (1e9, [3.0, 3.0]), "b": (2e9, [4.0, 4.0]), "c": (4e9, [6.0, 12.0, 6.0])}
    history = History([past(run, f"workloads:{name}:edge@aaa", name=name, duration=seconds)
                       for name, (_, durations) in runs.items()
                       for run, seconds in enumerate(durations)])
    specs = [workload_spec(name) for name in (*runs, "new")]
    works = {**{s.key: runs[s.name][0] for s in specs[:3]}, specs[3].key: 10e9}
    rates = WorkRates.fit(history, specs, works)
    intercept, slope = rates.fitted["workloads"]
    assert intercept == pytest.approx(2.0) and slope == pytest.approx(1e-9)
    assert history.estimate(specs[3].key, "workloads", "new", "edge", 10e9, rates) == (
        pytest.approx(12.0), "work")
    # The same workload elsewhere is better evidence than any line.
    assert history.estimate(specs[0].key, "workloads", "a", "edge", 1e9, rates) == (
        3.0, "similar")
    # Without a figure for its work, the stage's median (4 s) as before.
    assert history.estimate(specs[3].key, "workloads", "new", "edge", None, rates) == (
        4.0, "stage")


def test_below_three_points_the_rate_goes_through_the_origin():
    history = History([past(1, "workloads:a:edge@aaa", name="a", duration=3.0)])
    specs = [workload_spec("a"), workload_spec("new")]
    rates = WorkRates.fit(history, specs, {specs[0].key: 1e9, specs[1].key: 5e9})
    assert rates.fitted["workloads"] == (0.0, pytest.approx(3e-9))
    assert history.estimate(specs[1].key, "workloads", "new", "edge", 5e9, rates) == (
        pytest.approx(15.0), "work")


def test_with_no_history_at_all_the_work_is_priced_at_this_machines_rates():
    history, spec_ = History([]), workload_spec("new")
    rates = WorkRates.fit(history, [spec_], {spec_.key: 4e9})
    intercept, slope = DEFAULT_WORK_RATES["workloads"]
    assert history.estimate(spec_.key, "workloads", "new", "edge", 4e9, rates) == (
        pytest.approx(intercept + slope * 4e9), "work-default")
    # A kind of job without a rate, and a job without work, keep the stage's default.
    assert history.estimate("tests:driver@ccc", "tests", "driver", None, None, rates) == (
        DEFAULT_ESTIMATES["tests"], "default")


def test_a_fresh_night_prices_its_workloads_by_their_work(ws, store, tmp_path):
    port = FakePort(tmp_path, workloads=("resnet", "bert"))
    night = nightly(ws, store, port)
    result = night.start(NightlyOptions(tier="smoke", no_tests=True), [port.combination()])
    plan = store.run(result.run_id).plan
    priced = {key: source for key, source in plan["estimate_sources"].items()
              if key.startswith("workloads:")}
    assert priced and set(priced.values()) == {"work-default"}
    assert all(plan["estimates"][key] < DEFAULT_ESTIMATES["workloads"] / 10 for key in priced)
