import subprocess
import threading

import pytest

from stackci.nightly.budget import Budget
from stackci.errors import StackciError, StackError
from stackci.model import OUT_OF_BUDGET
from stackci.nightly.executor import Executor
from stackci.model import Job, Outcome
from stackci.results.store import Store


class Clock:
    """A budget clock the test moves by hand: every job 'takes' what its action says."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def run_jobs(store, tmp_path, jobs, *, budget_s=1000.0, estimates=None, clock=None,
             job_timeout_s=60.0, grace_s=60.0, done=None, workers=2):
    run_id = store.start_run(tier="smoke", budget_s=budget_s, plan={})
    store.add_jobs(run_id, [{"key": j.key, "stage": j.stage, "name": j.name, "sku": j.sku,
                             "combination_id": None} for j in jobs])
    budget = Budget(budget_s, clock=clock or Clock())
    executor = Executor(store, run_id, jobs, resources=None, budget=budget,
                        estimates=estimates or {}, job_timeout_s=job_timeout_s,
                        grace_s=grace_s, workers=workers, workdir=tmp_path / "work",
                        done=done, poll_s=0.02)
    ended = executor.run()
    return ended, {j["key"]: j for j in store.jobs(run_id)}


def returns(status, message=""):
    return lambda ctx: Outcome(status, message)


def raises(exc):
    def action(ctx):
        raise exc
    return action


def test_each_way_a_job_can_end(store, tmp_path):
    jobs = [Job("ok", "tests", "ok", returns("passed")),
            Job("wrong", "tests", "wrong", returns("failed", "2 failed")),
            Job("stack", "workloads", "stack", raises(StackError("boom", kind="oom"))),
            Job("slow", "workloads", "slow", raises(StackError("too slow", kind="timeout"))),
            Job("sub", "tests", "sub", raises(subprocess.TimeoutExpired(["pytest"], 5))),
            Job("bug", "tests", "bug", raises(ZeroDivisionError("x"))),
            Job("harness", "build", "harness", raises(StackciError("no wheel")))]
    ended, rows = run_jobs(store, tmp_path, jobs)
    assert {key: status for key, (status, _) in ended.items()} == {
        "ok": "passed", "wrong": "failed", "stack": "error", "slow": "timeout",
        "sub": "timeout", "bug": "error", "harness": "error"}
    assert rows["stack"]["message"] == "oom: boom"
    assert rows["bug"]["message"].startswith("harness error: ZeroDivisionError")
    assert "Traceback" in rows["bug"]["details"]["traceback"]
    assert rows["wrong"]["duration_s"] is not None


def test_a_hanging_job_is_abandoned_as_timeout(store, tmp_path):
    release = threading.Event()

    def hang(ctx):
        release.wait(30)
        return Outcome("passed")

    try:
        ended, rows = run_jobs(store, tmp_path, [Job("hang", "tests", "hang", hang),
                                                 Job("next", "tests", "next", returns("passed"))],
                               job_timeout_s=0.05, grace_s=0.0, workers=1)
    finally:
        release.set()
    assert ended["hang"][0] == "timeout"
    assert "abandoned" in rows["hang"]["message"]
    assert ended["next"][0] == "passed"  # the worker slot was freed


def test_dependents_of_a_failed_job_are_not_run_naming_it(store, tmp_path):
    jobs = [Job("build", "build", "b", returns("error", "no wheel")),
            Job("tests", "tests", "t", returns("passed"), needs=("build",)),
            Job("deeper", "workloads", "w", returns("passed"), needs=("tests",)),
            Job("publish", "publish", "p", returns("passed"),
                after=("build", "tests", "deeper"))]
    ended, rows = run_jobs(store, tmp_path, jobs)
    assert rows["tests"]["status"] == "not_run"
    assert rows["tests"]["message"] == "dependency build error"
    assert rows["tests"]["details"]["reason"] == "dependency"
    assert rows["deeper"]["message"] == "dependency tests not run"
    assert ended["publish"][0] == "passed"  # `after` waits for the end, not for success


def test_jobs_past_the_budget_are_not_run(store, tmp_path):
    clock = Clock()

    def takes(seconds):
        def action(ctx):
            clock.now += seconds
            return Outcome("passed")
        return action

    jobs = [Job("a", "tests", "a", takes(40), priority=0),
            Job("b", "tests", "b", takes(40), priority=1),
            Job("c", "workloads", "c", takes(1), needs=("b",)),
            Job("d", "workloads", "d", takes(1))]
    ended, rows = run_jobs(store, tmp_path, jobs, budget_s=100.0, clock=clock, workers=1,
                           estimates={"a": 40, "b": 40, "c": 30, "d": 10})
    # a and b use 80 s; c (30 s) no longer fits, d (10 s) still does.
    assert {k: s for k, (s, _) in ended.items()} == {
        "a": "passed", "b": "passed", "c": "not_run", "d": "passed"}
    assert rows["c"]["message"] == OUT_OF_BUDGET
    assert rows["c"]["details"]["reason"] == "budget"
    assert rows["c"]["details"]["estimate_s"] == 30


def test_dependents_of_an_out_of_budget_job_are_out_of_budget_too(store, tmp_path):
    jobs = [Job("big", "tests", "big", returns("passed")),
            Job("after-big", "workloads", "w", returns("passed"), needs=("big",))]
    ended, rows = run_jobs(store, tmp_path, jobs, budget_s=10.0, estimates={"big": 11})
    assert ended["after-big"] == ("not_run", "budget")
    assert rows["after-big"]["message"].startswith(OUT_OF_BUDGET)


def test_jobs_start_by_priority_then_stage(store, tmp_path):
    order = []

    def make(key):
        def action(ctx):
            order.append(key)
            return Outcome("passed")
        return action

    jobs = [Job("w2", "workloads", "w2", make("w2"), priority=2),
            Job("t", "tests", "t", make("t"), priority=9),
            Job("w1", "workloads", "w1", make("w1"), priority=1),
            Job("b", "build", "b", make("b"), priority=5),
            Job("c", "contracts", "c", make("c"), priority=1)]
    run_jobs(store, tmp_path, jobs, workers=1)
    # The planner's priority decides (nightly/planner.py); the stage breaks ties.
    assert order == ["c", "w1", "w2", "b", "t"]


def test_jobs_done_before_are_not_run_again(store, tmp_path):
    calls = []

    def make(key):
        def action(ctx):
            calls.append(key)
            return Outcome("passed")
        return action

    jobs = [Job("build", "build", "b", make("build")),
            Job("tests", "tests", "t", make("tests"), needs=("build",))]
    ended, _ = run_jobs(store, tmp_path, jobs, done={"build": "passed"})
    assert calls == ["tests"]
    assert ended["tests"][0] == "passed"


def test_an_unknown_dependency_is_refused(store, tmp_path):
    with pytest.raises(StackciError, match="unknown job nope"):
        run_jobs(store, tmp_path, [Job("a", "tests", "a", returns("passed"), needs=("nope",))])
