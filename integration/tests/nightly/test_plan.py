"""The plan is data stored with the run (nightly/plan.py): a resumed run executes exactly the
jobs of its stored plan, whatever suite.yaml says by then."""

from fakes import FakePort
from stackci.nightly.plan import NightlyOptions, Plan, make_plan
from stackci.nightly.run import Nightly
from stackci.results.schema import JobRow
from stackci.workloads.suite import Workload, load_suite


def options(**fields):
    return NightlyOptions(**{"no_tests": True, **fields})


def test_the_default_tier_is_smoke():
    assert NightlyOptions().tier == "smoke"


def test_a_plan_survives_the_store_unchanged(ws, store, tmp_path):
    port = FakePort(tmp_path)
    port.workload_options = {"resnet": {"expect": {"edge": "out-of-memory"},
                                        "requires": {"compiler-api": ">=1.1"},
                                        "tolerance": {"cosine": 0.9}}}
    plan = make_plan(ws, store, options(), load_suite(port.suite_path()),
                     [port.combination()])
    again = Plan.from_dict(plan.to_dict())
    assert again.to_dict() == plan.to_dict()
    assert [job.key for job in again.to_jobs()] == [job.key for job in plan.to_jobs()]
    stored = {Workload.from_record(job.params["workload"]) for job in again.jobs
              if job.stage == "workloads"}
    assert stored == set(load_suite(port.suite_path()).workloads)


def test_resume_runs_the_stored_plan_even_after_the_suite_changed(ws, store, tmp_path):
    port = FakePort(tmp_path)
    first = Nightly(ws, store, port=port, suite=port.suite_path()).start(
        options(), [port.combination()])
    planned = {job.key for job in store.jobs(first.run_id)}
    tolerance = {job.key: job.details["atol"] for job in store.jobs(first.run_id)
                 if job.stage == "workloads"}
    # Killed with every workload job unfinished.
    with store._sessions.begin() as session:
        for row in session.query(JobRow).filter_by(run_id=first.run_id, stage="workloads"):
            row.status = "not_run"
    store.update_run(first.run_id, status="running")

    # Meanwhile the suite changed: resnet is gone, gpt is new, bert's tolerance moved.
    port.workloads = ["bert", "gpt"]
    port.workload_options = {"bert": {"tolerance": {"atol": 0.5}}}
    changed = port.suite_path()
    assert load_suite(changed).names() == ["bert", "gpt"]

    port.calls.clear()
    again = Nightly(ws, store, port=port, suite=changed).resume()
    assert again.run_id == first.run_id
    assert {job.key for job in store.jobs(first.run_id)} == planned  # no job added or lost
    ran = sorted(call[1:3] for call in port.calls if call[0] == "run_model")
    assert ran == sorted((w, s) for w in ("resnet", "bert") for s in ("edge", "datacenter"))
    resumed = {job.key: job for job in store.jobs(first.run_id) if job.stage == "workloads"}
    assert {key: job.details["atol"] for key, job in resumed.items()} == tolerance
    assert {job.status for job in resumed.values()} == {"passed"}
    assert store.run(first.run_id).status == "completed"


def test_a_run_stored_before_plans_held_their_jobs_resumes_as_it_always_did(ws, store,
                                                                           tmp_path):
    """Such a plan lists job keys only: its jobs are laid out again from the stored options
    and combinations, keeping exactly the stored keys."""
    port = FakePort(tmp_path)
    plan = make_plan(ws, store, options(), load_suite(port.suite_path()), [port.combination()])
    keys = [job.key for job in plan.jobs if "bert:edge" not in job.key]
    legacy = {**plan.to_dict(), "jobs": keys}
    again = Plan.from_dict(legacy, load_suite(port.suite_path()))
    assert [job.key for job in again.jobs] == keys
    assert again.combinations == plan.combinations
