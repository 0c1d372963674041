"""A whole night (nightly/run.py) on the fake port: planning, executing, storing, resuming."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fakes import FakePort
from stackci import cli
from stackci.errors import UsageError
from stackci.nightly.plan import NightlyOptions, plan_jobs
from stackci.nightly.run import Nightly
from stackci.results.schema import JobRow
from stackci.workloads.suite import load_suite

REPO = Path(__file__).resolve().parents[3]


def statuses(store, run_id):
    return {job.key: job.status for job in store.jobs(run_id)}


def quick(**fields):
    """Smoke workloads, no module tests and no culprit-search probes (tests/regressions/
    test_nightly.py has those)."""
    return NightlyOptions(tier="smoke", no_tests=True, **{"bisect_probes": 0, **fields})


def night(ws, store, port, options=None, combinations=None, **kwargs):
    """One night of `port`'s suite on its master combination (or `combinations`)."""
    nightly = Nightly(ws, store, port=port, suite=port.suite_path(),
                      dashboard_dir=ws.home / "site", **kwargs)
    return nightly.start(options or quick(), combinations or [port.combination()])


def by_job(store, run_id):
    return {(job.name, job.sku): job for job in store.jobs(run_id) if job.stage == "workloads"}


def test_a_clean_night_runs_the_whole_dag(ws, store, tmp_path):
    port = FakePort(tmp_path)
    result = night(ws, store, port, quick(bisect_probes=8))
    assert result.ok
    found = statuses(store, result.run_id)
    tag = port.combination().key[:12]
    probes = {f"bisect:{n}" for n in range(1, 9)}
    pairs = [(w, s) for w in ("resnet", "bert") for s in ("edge", "datacenter")]
    assert set(found) == {f"build@{tag}", f"contracts@{tag}", "publish", f"regressions@{tag}",
                          *(f"workloads:{w}:{s}@{tag}" for w, s in pairs),
                          *(f"analysis:{w}:{s}@{tag}" for w, s in pairs), "analysis-advice",
                          *(f"analysis-explore:{s}@{tag}" for s in ("edge", "datacenter")),
                          *probes}
    # Nothing regressed on a first night, so no culprit search has a probe to run.
    assert {k: v for k, v in found.items() if k not in probes} == \
        {k: "passed" for k in found if k not in probes}
    assert {found[k] for k in probes} == {"not_run"} and result.summary["regressions"] == []
    assert port.count("build") == 1  # one environment shared by all jobs
    run = store.run(result.run_id)
    assert run.status == "completed"
    assert run.plan["combinations"][0]["key"] == port.combination().key
    assert result.summary["by_stage"]["workloads"] == {"passed": 4}
    assert result.summary["by_stage"]["publish"] == {"passed": 1}
    assert result.summary["dashboard"] == str(ws.home / "site" / "index.html")
    assert store.skus()["edge"]["clock_ghz"] == 1.0  # the build job's evidence, stored
    combination_id = store.jobs(result.run_id)[0].combination_id
    assert store.locks(combination_id)[0]["lock"]["modules"]["driver"]["version"] == "0.1.0"
    latency = [m for m in store.metrics(run_id=result.run_id) if m["name"] == "latency_us"]
    assert {(m["workload"], m["sku"]) for m in latency} == {
        (w, s) for w in ("resnet", "bert") for s in ("edge", "datacenter")}


def test_the_site_is_published_once_after_the_summary(ws, store, tmp_path):
    port = FakePort(tmp_path, workloads=("resnet",))
    result = night(ws, store, port)
    index = (ws.home / "site" / "index.html").read_text()
    # Published after the run was marked completed: the page shows the finished run.
    assert "completed" in index
    publish = [job for job in store.jobs(result.run_id) if job.stage == "publish"]
    assert len(publish) == 1 and publish[0].status == "passed"


def test_outcomes_of_workloads(ws, store, tmp_path):
    port = FakePort(tmp_path)
    port.behaviour = {("resnet", "edge"): "mismatch", ("resnet", "datacenter"): "crash",
                      ("bert", "edge"): "timeout"}
    result = night(ws, store, port)
    assert not result.ok
    jobs = by_job(store, result.run_id)
    assert jobs[("resnet", "edge")].status == "failed"
    assert "max abs error 0.5" in jobs[("resnet", "edge")].message
    assert jobs[("resnet", "datacenter")].status == "error"
    assert jobs[("resnet", "datacenter")].message.startswith("unsupported-operator:")
    assert jobs[("bert", "edge")].status == "timeout"
    assert jobs[("bert", "datacenter")].status == "passed"
    assert {b["status"] for b in result.summary["bad"]} == {"failed", "error", "timeout"}


def test_an_expected_failure_is_a_pass_and_only_that_failure(ws, store, tmp_path):
    port = FakePort(tmp_path)
    port.workload_options = {"resnet": {"expect": {"edge": "out-of-memory",
                                                   "datacenter": "out-of-memory"}},
                             "bert": {"expect": {"edge": "out-of-memory"}}}
    port.behaviour = {("resnet", "edge"): "oom", ("bert", "edge"): "crash"}
    result = night(ws, store, port)
    jobs = by_job(store, result.run_id)
    assert jobs[("resnet", "edge")].status == "passed"
    assert jobs[("resnet", "edge")].message.startswith("expected out-of-memory")
    # It ran where it was expected not to: a pass that says the manifest is out of date.
    assert jobs[("resnet", "datacenter")].status == "passed"
    assert "ran although out-of-memory was expected" in jobs[("resnet", "datacenter")].message
    # Another kind of failure than the one expected is still an error.
    assert jobs[("bert", "edge")].status == "error"


def test_a_workload_the_combination_cannot_serve_is_not_applicable(ws, store, tmp_path):
    port = FakePort(tmp_path)
    port.provides = {"compiler-api": "1.1"}
    port.workload_options = {"resnet": {"requires": {"compiler-api": ">=9"}}}
    result = night(ws, store, port)
    jobs = by_job(store, result.run_id)
    assert jobs[("resnet", "edge")].status == "not_run"
    assert jobs[("resnet", "edge")].reason == "not-applicable"
    assert jobs[("resnet", "edge")].message == (
        "not applicable: needs compiler-api >=9; the combination provides 1.1")
    assert jobs[("bert", "edge")].status == "passed"
    assert result.ok


def test_coverage_combinations_report_findings_without_failing_the_run(ws, store, tmp_path):
    port = FakePort(tmp_path)
    master = port.combination("master")
    coverage = port.combination("release:latest+driver=0.9.0", version="0.9.0")
    port.behaviour = {("resnet", "edge"): "mismatch"}  # fails on both combinations
    options = quick(default_plan=True)
    result = night(ws, store, port, options, [master, coverage])
    assert not result.ok  # master's failure gates
    assert result.findings == [f"workloads:resnet:edge@{coverage.key[:12]}"]

    # Only the coverage combination fails: a finding, and the run passes.
    port.behaviour = {}
    port.python_of[coverage.key] = Path("/fake/coverage/python")
    real_run_model = port.run_model
    port.run_model = lambda python, request: (
        _mismatch(real_run_model(python, request), request)
        if str(python).startswith("/fake/coverage") else real_run_model(python, request))
    result = night(ws, store, port, replace(options, no_reuse=True), [master, coverage])
    assert result.ok and len(result.findings) == 4


def _mismatch(document, request):
    """Spoil the outputs the fake wrote, so the comparison fails."""
    from stackci.workloads.npz import load_npz, save_npz

    outputs = load_npz(request.outputs)
    save_npz(request.outputs, {k: v + 1 for k, v in outputs.items()})
    return document


def test_broken_contracts_stop_the_combination(ws, store, tmp_path):
    port = FakePort(tmp_path)
    port.contracts_ok = False
    result = night(ws, store, port)
    jobs = store.jobs(result.run_id)
    contracts = next(j for j in jobs if j.stage == "contracts")
    assert contracts.status == "failed" and "driver-api >=2" in contracts.message
    for job in jobs:
        if job.stage == "workloads":
            assert (job.status, job.message) == ("not_run", f"dependency {contracts.key} failed")
    assert port.count("run_model") == 0
    assert next(j for j in jobs if j.stage == "publish").status == "passed"


def test_workload_and_sku_selection(ws, store, tmp_path):
    port = FakePort(tmp_path)
    result = night(ws, store, port, quick(workloads=["bert"], skus=["server"]))
    assert sorted(c[1:3] for c in port.calls if c[0] == "run_model") == [("bert", "server")]
    assert result.ok


def test_a_workload_without_skus_needs_sku_option(ws, store, tmp_path):
    port = FakePort(tmp_path)
    workload = load_suite(port.suite_path()).get("resnet")
    with pytest.raises(UsageError, match="workload resnet: no SKUs"):
        plan_jobs([port.combination()], [replace(workload, skus=())], quick())


def test_module_tests_run_in_a_subprocess_and_are_counted(ws, store, tmp_path):
    port = FakePort(tmp_path, workloads=())
    (port.sources["driver"] / "tests" / "test_ok.py").write_text(
        "import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    pass\n\n"
        "@pytest.mark.skip\ndef test_c():\n    pass\n")
    (port.sources["runtime"] / "tests" / "test_bad.py").write_text(
        "def test_a():\n    assert 1 == 2\n\ndef test_b():\n    pass\n")
    result = night(ws, store, port, NightlyOptions(tier="smoke", job_timeout_s=120))
    by_name = {j.name: j for j in store.jobs(result.run_id) if j.stage == "tests"}
    assert by_name["driver"].status == "passed"
    assert by_name["driver"].message == "2 passed, 0 failed, 1 skipped"
    assert by_name["runtime"].status == "failed"
    assert by_name["runtime"].message == "1 passed, 1 failed, 0 skipped"
    metrics = {(m["job_id"], m["name"]): m["value"] for m in store.metrics(run_id=result.run_id)}
    assert metrics[(by_name["runtime"].id, "tests_failed")] == 1
    assert not result.ok


def test_a_build_that_fails_blocks_its_combination_only(ws, store, tmp_path):
    port = FakePort(tmp_path, workloads=("resnet",))
    good, old = port.combination("master", "0.2.0"), port.combination("release:latest")
    port.broken.add(old.key)
    result = night(ws, store, port, quick(default_plan=True), [good, old])
    jobs = {job.key: job for job in store.jobs(result.run_id)}
    assert jobs[f"build@{old.key[:12]}"].status == "error"
    assert jobs[f"workloads:resnet:edge@{good.key[:12]}"].status == "passed"
    assert jobs[f"workloads:resnet:edge@{old.key[:12]}"].status == "not_run"
    assert not result.ok  # release:latest gates


def kill(store, run_id, running=(), never=(), used_s=5.0):
    """What a kill leaves: jobs still `running` or never started, the run unfinished."""
    with store._sessions.begin() as session:
        for keys, status in ((running, "running"), (never, "not_run")):
            for key in keys:
                row = session.query(JobRow).filter_by(run_id=run_id, key=key).one()
                row.status = status
    store.update_run(run_id, status="running", summary={"used_s": used_s})


def test_resume_after_a_kill_redoes_only_unfinished_jobs(ws, store, tmp_path):
    port = FakePort(tmp_path)
    first = night(ws, store, port)
    jobs = by_job(store, first.run_id)
    kill(store, first.run_id, running=[jobs[("resnet", "edge")].key],
         never=[jobs[("bert", "datacenter")].key])
    port.calls.clear()
    again = Nightly(ws, store, port=port, dashboard_dir=ws.home / "site").resume()
    assert again.run_id == first.run_id
    assert sorted(c[1:3] for c in port.calls if c[0] == "run_model") == [
        ("bert", "datacenter"), ("resnet", "edge")]
    assert set(statuses(store, first.run_id).values()) == {"passed"}
    assert store.run(first.run_id).status == "completed"
    assert again.summary["used_s"] >= 5.0  # the budget keeps the first session's time


def test_ctrl_c_stores_finished_jobs_and_resume_completes(ws, store, tmp_path):
    port = FakePort(tmp_path)

    class InterruptAtThirdStart:
        def __init__(self):
            self.started_jobs = 0

        def started(self, job):
            self.started_jobs += 1
            if self.started_jobs == 3:
                raise KeyboardInterrupt

        def finished(self, job, status):
            pass

    with pytest.raises(KeyboardInterrupt):
        night(ws, store, port, quick(workers=1), reporter=InterruptAtThirdStart())
    [run] = store.runs()
    assert run.status == "interrupted"
    assert run.counts["passed"] == 2  # build and contracts finished and were kept
    result = Nightly(ws, store, port=port, dashboard_dir=ws.home / "site").resume()
    assert result.ok and store.run(run.id).status == "completed"
    assert port.count("build") == 2  # each session builds (reuses) its environment once


def test_resume_without_an_unfinished_run(ws, store, tmp_path):
    with pytest.raises(UsageError, match="no unfinished run"):
        Nightly(ws, store, port=FakePort(tmp_path)).resume()


def test_estimates_from_history_push_jobs_out_of_budget(ws, store, tmp_path):
    port = FakePort(tmp_path, workloads=("resnet",))
    night(ws, store, port)
    with store._sessions.begin() as session:  # history says a resnet run takes an hour
        for row in session.query(JobRow).filter_by(stage="workloads"):
            row.duration_s = 3600.0
    result = night(ws, store, port, quick(budget_s=1800.0))
    assert result.ok  # out of budget is not a failure
    # The two workload jobs, and the analyses that need them.
    assert sorted(k.split(":")[0] for k in result.summary["out_of_budget"]) == [
        "analysis", "analysis", "workloads", "workloads"]
    rows = [j for j in store.jobs(result.run_id) if j.stage == "workloads"]
    assert {(j.status, j.message, j.reason) for j in rows} == {
        ("not_run", "out of budget", "budget")}
    # The site is published all the same: the night's findings are never left unshown.
    assert next(j for j in store.jobs(result.run_id) if j.stage == "publish").status == "passed"


# -- the command line ---------------------------------------------------------------------------

@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    port = FakePort(tmp_path, modules=("driver", "runtime", "opslib", "compiler", "serving"))
    monkeypatch.setattr("stackci.nightly.run.StackPort", lambda: port)
    monkeypatch.setattr("stackci.workloads.suite.default_suite_path", port.suite_path)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("stackci.commands.nightly",))
    monkeypatch.setenv("STACKCI_REPO", str(REPO))
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STACKCI_DB", f"sqlite:///{tmp_path / 'cli.db'}")
    return port


def test_cli_exit_codes(cli_env, capsys):
    assert cli.main(["nightly", "--tier", "smoke", "--no-tests", "--budget", "2h",
                     "--combination", "master"]) == 0
    out = capsys.readouterr().out
    assert "jobs by stage and outcome" in out and "2h00m budget" in out

    cli_env.behaviour[("bert", "edge")] = "mismatch"
    # The fake changed behind unchanged inputs: only --no-reuse runs it again.
    assert cli.main(["nightly", "--tier", "smoke", "--no-tests", "-c", "master",
                     "--no-reuse"]) == 1
    assert "1 job(s) of master or release:latest failed, errored or timed out" in \
        capsys.readouterr().err

    assert cli.main(["nightly", "--budget", "soon"]) == 2
    assert "--budget 'soon': expected a duration" in capsys.readouterr().err
    assert cli.main(["nightly", "--resume"]) == 2

    assert cli.main(["runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["counts"].get("failed", 0) for r in runs] == [1, 0]
    assert list(runs[0]) == ["id", "started_at", "finished_at", "status", "tier", "budget_s",
                             "host", "harness_version", "plan", "summary", "counts"]
