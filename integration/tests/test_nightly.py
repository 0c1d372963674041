import json
from pathlib import Path

import pytest
from types import SimpleNamespace

from nightly_fakes import FakeStack
from stackci import cli
from stackci.errors import UsageError
from stackci.jobs import Toolbox, junit_counts, pytest_outcome, workload_outcome
from stackci.nightly import Nightly, NightlyOptions
from stackci.store import Store
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path):
    return Workspace(repo=REPO, home=tmp_path / "home")


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def statuses(store, run_id):
    return {job["key"]: job["status"] for job in store.jobs(run_id)}


def quick(**fields):
    return NightlyOptions(tier="smoke", no_tests=True, **fields)


def test_a_clean_night_runs_the_whole_dag(ws, store, tmp_path):
    stack = FakeStack(tmp_path)
    result = Nightly(ws, store, toolbox=stack.toolbox()).start(quick())
    assert result.ok
    found = statuses(store, result.run_id)
    tag = stack.combination().key[:12]
    assert set(found) == {f"build@{tag}", f"contracts@{tag}", "publish",
                          *(f"workloads:{w}:{s}@{tag}" for w in ("resnet", "bert")
                            for s in ("edge", "datacenter"))}
    assert set(found.values()) == {"passed"}
    assert stack.count("build") == 1  # one environment shared by all jobs
    assert stack.count("prepare") == 2  # each workload prepared once, for both SKUs
    run = store.run(result.run_id)
    assert run["status"] == "completed"
    assert run["plan"]["combinations"][0]["key"] == stack.combination().key
    assert result.summary["by_stage"]["workloads"] == {"passed": 4}
    assert store.skus()["edge"]["clock_ghz"] == 1.0
    latency = [m for m in store.metrics(run_id=result.run_id) if m["name"] == "latency_us"]
    assert {(m["workload"], m["sku"]) for m in latency} == {
        (w, s) for w in ("resnet", "bert") for s in ("edge", "datacenter")}


def test_outcomes_of_workloads(ws, store, tmp_path):
    stack = FakeStack(tmp_path)
    stack.behaviour = {("resnet", "edge"): "mismatch", ("resnet", "datacenter"): "crash",
                       ("bert", "edge"): "timeout"}
    result = Nightly(ws, store, toolbox=stack.toolbox()).start(quick())
    assert not result.ok
    by_job = {(j["name"], j["sku"]): j for j in store.jobs(result.run_id)}
    assert by_job[("resnet", "edge")]["status"] == "failed"
    assert "max abs error 0.5" in by_job[("resnet", "edge")]["message"]
    assert by_job[("resnet", "datacenter")]["status"] == "error"
    assert by_job[("resnet", "datacenter")]["message"].startswith("unsupported-operator:")
    assert by_job[("bert", "edge")]["status"] == "timeout"
    assert by_job[("bert", "datacenter")]["status"] == "passed"
    assert {b["status"] for b in result.summary["bad"]} == {"failed", "error", "timeout"}


def test_an_expected_failure_is_a_pass_and_only_that_failure(ws, store, tmp_path):
    stack = FakeStack(tmp_path)
    stack.workloads[0].expect = (("edge", "out-of-memory"), ("datacenter", "out-of-memory"))
    stack.workloads[1].expect = (("edge", "out-of-memory"),)
    stack.behaviour = {("resnet", "edge"): "oom", ("bert", "edge"): "crash"}
    result = Nightly(ws, store, toolbox=stack.toolbox()).start(quick())
    by_job = {(j["name"], j["sku"]): j for j in store.jobs(result.run_id)}
    assert by_job[("resnet", "edge")]["status"] == "passed"
    assert by_job[("resnet", "edge")]["message"].startswith("expected out-of-memory")
    # It ran where it was expected not to: a pass that says the manifest is out of date.
    assert by_job[("resnet", "datacenter")]["status"] == "passed"
    assert "ran although out-of-memory was expected" in by_job[("resnet", "datacenter")]["message"]
    # Another kind of failure than the one expected is still an error.
    assert by_job[("bert", "edge")]["status"] == "error"


def test_a_workload_the_combination_cannot_serve_is_not_applicable(ws, store, tmp_path):
    stack = FakeStack(tmp_path)
    stack.workloads[0].requires = (("compiler-api", ">=9"),)
    toolbox = stack.toolbox()
    toolbox.load_contract = lambda path: SimpleNamespace(provides={"compiler-api": "1.1"})
    result = Nightly(ws, store, toolbox=toolbox).start(quick())
    by_job = {(j["name"], j["sku"]): j for j in store.jobs(result.run_id)}
    assert by_job[("resnet", "edge")]["status"] == "not_run"
    assert by_job[("resnet", "edge")]["message"] == (
        "not applicable: needs compiler-api >=9; the combination provides 1.1")
    assert by_job[("bert", "edge")]["status"] == "passed"
    assert result.ok


def test_coverage_combinations_report_findings_without_failing_the_run(ws, store, tmp_path):
    stack = FakeStack(tmp_path)
    toolbox = stack.toolbox()
    coverage = stack.combination("release:latest+driver=0.9.0", version="0.9.0")
    toolbox.plan_default = lambda ws, store: [stack.combination("master"), coverage]
    stack.behaviour = {("resnet", "edge"): "mismatch"}  # fails on both combinations
    options = quick()
    options.default_plan = True
    result = Nightly(ws, store, toolbox=toolbox).start(options)
    assert not result.ok  # master's failure gates
    assert result.findings == [f"workloads:resnet:edge@{coverage.key[:12]}"]

    # Only the coverage combination fails: a finding, and the run passes.
    stack.behaviour = {}
    build, run_model = toolbox.ensure_environment, toolbox.run_model

    def ensure_environment(ws, combination, progress=None):
        env = build(ws, combination, progress)
        env.python = Path("/fake") / combination.key / "python"  # tells run_model which
        return env

    def run_model_failing_on_coverage(python, model_path, sku, **options):
        document = run_model(python, model_path, sku, **options)
        return {**document, "match": coverage.key not in str(python)}  # full key in the path

    toolbox.ensure_environment = ensure_environment
    toolbox.run_model = run_model_failing_on_coverage
    result = Nightly(ws, store, toolbox=toolbox).start(options)
    assert result.ok and len(result.findings) == 4


def test_broken_contracts_stop_the_combination(ws, store, tmp_path):
    stack = FakeStack(tmp_path)
    stack.contracts_ok = False
    result = Nightly(ws, store, toolbox=stack.toolbox()).start(quick())
    jobs = store.jobs(result.run_id)
    contracts = next(j for j in jobs if j["stage"] == "contracts")
    assert contracts["status"] == "failed" and "driver-api>=2" in contracts["message"]
    for job in jobs:
        if job["stage"] == "workloads":
            assert (job["status"], job["message"]) == ("not_run",
                                                       f"dependency {contracts['key']} failed")
    assert stack.count("run_model") == 0
    assert next(j for j in jobs if j["stage"] == "publish")["status"] == "passed"


def test_workload_and_sku_selection(ws, store, tmp_path):
    stack = FakeStack(tmp_path)
    result = Nightly(ws, store, toolbox=stack.toolbox()).start(
        quick(workloads=["bert"], skus=["server"]))
    assert sorted(c[1:] for c in stack.calls if c[0] == "run_model") == [("bert", "server")]
    assert result.ok


def test_a_workload_without_skus_needs_sku_option(ws, store, tmp_path):
    stack = FakeStack(tmp_path)
    stack.workloads[0].skus = ()
    with pytest.raises(UsageError, match="workload resnet: no SKUs"):
        Nightly(ws, store, toolbox=stack.toolbox()).start(quick())


def test_module_tests_run_in_a_subprocess_and_are_counted(ws, store, tmp_path):
    stack = FakeStack(tmp_path, workloads=())
    (stack.sources["driver"] / "tests" / "test_ok.py").write_text(
        "import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    pass\n\n"
        "@pytest.mark.skip\ndef test_c():\n    pass\n")
    (stack.sources["runtime"] / "tests" / "test_bad.py").write_text(
        "def test_a():\n    assert 1 == 2\n\ndef test_b():\n    pass\n")
    result = Nightly(ws, store, toolbox=stack.toolbox()).start(
        NightlyOptions(tier="smoke", job_timeout_s=120))
    by_name = {j["name"]: j for j in store.jobs(result.run_id) if j["stage"] == "tests"}
    assert by_name["driver"]["status"] == "passed"
    assert by_name["driver"]["message"] == "2 passed, 0 failed, 1 skipped"
    assert by_name["runtime"]["status"] == "failed"
    assert by_name["runtime"]["message"] == "1 passed, 1 failed, 0 skipped"
    metrics = {(m["job_id"], m["name"]): m["value"] for m in store.metrics(run_id=result.run_id)}
    assert metrics[(by_name["runtime"]["id"], "tests_failed")] == 1
    assert not result.ok


def test_junit_and_exit_codes(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuites><testsuite tests="5" failures="1" errors="1" skipped="1"/>'
                     '<testsuite tests="2" failures="0" errors="0" skipped="0"/></testsuites>')
    assert junit_counts(junit) == {"passed": 4, "failed": 2, "skipped": 1}
    assert pytest_outcome(1, junit, "").status == "failed"
    assert pytest_outcome(4, junit, "ERROR: usage\n").status == "error"
    assert pytest_outcome(0, tmp_path / "missing.xml", "boom").message == "pytest exited 0: boom"
    empty = tmp_path / "empty.xml"
    empty.write_text('<testsuites><testsuite tests="0"/></testsuites>')
    # A module that ships no runnable test is no evidence that it works.
    assert (pytest_outcome(5, empty, "").status, pytest_outcome(5, empty, "").message) == (
        "failed", "no tests collected")


def test_workload_outcome_without_latency_or_errors():
    workload = type("W", (), {"name": "w", "precision": "fp32", "atol": 1.0, "rtol": 1.0})
    outcome = workload_outcome({"match": False, "simulated": {}}, workload, "edge")
    assert (outcome.status, outcome.message) == ("failed", "outputs differ from onnxruntime")
    assert [m["name"] for m in outcome.metrics] == ["ops"]


def test_workload_outcome_reports_the_speed_ratio_against_onnxruntime():
    workload = type("W", (), {"name": "w", "precision": "fp32", "atol": 1.0, "rtol": 1.0})
    result = {"match": True, "simulated": {}, "run_s": 0.3, "reference_s": 0.2}
    metrics = {m["name"]: m for m in workload_outcome(result, workload, "edge").metrics}
    assert metrics["speed_ratio"]["value"] == pytest.approx(1.5)
    assert metrics["speed_ratio"]["unit"] == "x" and metrics["reference_s"]["value"] == 0.2
    unmeasured = workload_outcome({**result, "reference_s": 0.0}, workload, "edge")
    assert "speed_ratio" not in {m["name"] for m in unmeasured.metrics}


def test_the_speed_ratio_compares_warm_runs_of_fp32_workloads():
    """compiler-api 1.2 reports a warm run (engine built, weights prepacked) beside the first
    one; that is what compares with onnxruntime's warm run. Emulated precisions get none."""
    fp32 = type("W", (), {"name": "w", "precision": "fp32", "atol": 1.0, "rtol": 1.0})
    result = {"match": True, "simulated": {}, "run_s": 0.9, "warm_run_s": 0.3,
              "reference_s": 0.2}
    metrics = {m["name"]: m["value"] for m in workload_outcome(result, fp32, "edge").metrics}
    assert metrics["speed_ratio"] == pytest.approx(1.5) and metrics["warm_run_s"] == 0.3
    bf16 = type("W", (), {"name": "w-bf16", "precision": "bf16", "atol": 1.0, "rtol": 1.0})
    assert "speed_ratio" not in {m["name"] for m in workload_outcome(result, bf16, "e").metrics}


def test_resume_after_a_kill_redoes_only_unfinished_jobs(ws, store, tmp_path):
    stack = FakeStack(tmp_path)
    first = Nightly(ws, store, toolbox=stack.toolbox()).start(quick())
    # What a kill leaves: a job still `running`, one never started, the run unfinished.
    jobs = {(j["name"], j["sku"]): j for j in store.jobs(first.run_id)}
    killed = jobs[("resnet", "edge")]["key"]
    never = jobs[("bert", "datacenter")]["key"]
    with store._sessions.begin() as session:
        from stackci.store import JobRow
        for key, status in ((killed, "running"), (never, "not_run")):
            row = session.query(JobRow).filter_by(run_id=first.run_id, key=key).one()
            row.status = status
    store.update_run(first.run_id, status="running", summary={"used_s": 5.0})

    stack.calls.clear()
    again = Nightly(ws, store, toolbox=stack.toolbox()).resume()
    assert again.run_id == first.run_id
    assert sorted(c[1:] for c in stack.calls if c[0] == "run_model") == [
        ("bert", "datacenter"), ("resnet", "edge")]
    assert stack.count("resolve") == 0  # the stored combination is reused, not re-resolved
    assert set(statuses(store, first.run_id).values()) == {"passed"}
    assert store.run(first.run_id)["status"] == "completed"
    assert again.summary["used_s"] >= 5.0  # the budget keeps the first session's time


def test_ctrl_c_stores_finished_jobs_and_resume_completes(ws, store, tmp_path):
    stack = FakeStack(tmp_path)

    class InterruptAtThirdStart:
        def __init__(self):
            self.started_jobs = 0

        def started(self, job):
            self.started_jobs += 1
            if self.started_jobs == 3:
                raise KeyboardInterrupt

        def finished(self, job, status):
            pass

    nightly = Nightly(ws, store, toolbox=stack.toolbox(), reporter=InterruptAtThirdStart())
    with pytest.raises(KeyboardInterrupt):
        nightly.start(quick(workers=1))
    [run] = store.runs()
    assert run["status"] == "interrupted"
    assert run["counts"]["passed"] == 2  # build and contracts finished and were kept
    result = Nightly(ws, store, toolbox=stack.toolbox()).resume()
    assert result.ok and store.run(run["id"])["status"] == "completed"
    assert stack.count("contracts") == 1


def test_resume_without_an_unfinished_run(ws, store, tmp_path):
    with pytest.raises(UsageError, match="no unfinished run"):
        Nightly(ws, store, toolbox=FakeStack(tmp_path).toolbox()).resume()


def test_estimates_from_history_push_jobs_out_of_budget(ws, store, tmp_path):
    stack = FakeStack(tmp_path, workloads=("resnet",))
    Nightly(ws, store, toolbox=stack.toolbox()).start(quick())
    with store._sessions.begin() as session:  # history says a resnet run takes an hour
        from stackci.store import JobRow
        for row in session.query(JobRow).filter_by(stage="workloads"):
            row.duration_s = 3600.0
    result = Nightly(ws, store, toolbox=stack.toolbox()).start(quick(budget_s=1800.0))
    assert result.ok  # out of budget is not a failure
    assert len(result.summary["out_of_budget"]) == 2
    rows = [j for j in store.jobs(result.run_id) if j["stage"] == "workloads"]
    assert {(j["status"], j["message"]) for j in rows} == {("not_run", "out of budget")}


# -- the command line ---------------------------------------------------------------------------

@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    stack = FakeStack(tmp_path)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("stackci.commands.nightly",))
    monkeypatch.setattr(Toolbox, "real", classmethod(lambda cls: stack.toolbox()))
    monkeypatch.setenv("STACKCI_REPO", str(REPO))
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STACKCI_DB", f"sqlite:///{tmp_path / 'cli.db'}")
    return stack


def test_cli_exit_codes(cli_env, capsys):
    assert cli.main(["nightly", "--tier", "smoke", "--no-tests", "--budget", "2h"]) == 0
    out = capsys.readouterr().out
    assert "jobs by stage and outcome" in out and "2h00m budget" in out

    cli_env.behaviour[("bert", "edge")] = "mismatch"
    assert cli.main(["nightly", "--tier", "smoke", "--no-tests"]) == 1
    assert "1 job(s) of master or release:latest failed, errored or timed out" in \
        capsys.readouterr().err

    assert cli.main(["nightly", "--budget", "soon"]) == 2
    assert "--budget 'soon': expected a duration" in capsys.readouterr().err
    assert cli.main(["nightly", "--resume"]) == 2

    assert cli.main(["runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["counts"].get("failed", 0) for r in runs] == [1, 0]
