"""Bad input and a starved night, on real nights in subprocesses: a full budget, a build
failure at an old commit, a corrupt model in the suite, a malformed contract, release manifest
and suite (not UTF-8 among them). Each asserts the recorded cause (one line, no traceback) and
that the night before it is stored exactly as it was."""

import pytest

from fakestack import commit, git, write_module
from faultstack import one_line_error, record

NOT_UTF8 = b"workloads:\n  - name: caf\xe9\n"


@pytest.fixture
def night_before(repo):
    """The repository after one good night: what every fault must leave as it was."""
    done = repo.run()
    assert done.returncode == 0, done.stderr
    return repo, repo.jobs(1), repo.metrics(1)


def kept(repo, jobs, metrics) -> str:
    assert repo.jobs(1) == jobs and repo.metrics(1) == metrics
    assert repo.run_status(1) == "completed"
    return f"run 1: {len(jobs)}/{len(jobs)} jobs"


def test_a_full_budget_still_publishes(night_before):
    repo, jobs, metrics = night_before
    repo.inject("beta", "slow", s=4)
    # Two slow nights, so the median of beta's history (the planner's estimate) is 4 s or
    # more whatever the first night took; --no-reuse because beta's inputs are unchanged and
    # a reused job takes no time (and leaves none in the history).
    for _ in range(2):
        assert repo.run("--workload", "beta", "--no-reuse").returncode == 0
    done = repo.run("--budget", "3s", "--no-reuse")
    # Out of budget is carried over, not a failure; a gating job left out is P0, exit 3.
    assert done.returncode == 3 and "P0" in done.stderr, done.stderr
    last = repo.query("SELECT max(id) FROM runs")[0][0]
    now = repo.jobs(last)
    assert now["beta"]["status"] == "not_run"
    assert now["beta"]["details"]["reason"] == "budget", now["beta"]
    assert now["publish"]["status"] == "passed"  # the dashboard is refreshed all the same
    assert f"run {last}" in (repo.home / "dashboard" / "index.html").read_text().lower()
    record("full budget (--budget 3s)", f"beta: {now['beta']['message']}; publish passed",
           kept(repo, jobs, metrics), "carried to the next night")


def test_a_build_failure_at_an_old_commit(night_before):
    repo, jobs, metrics = night_before
    write_module(repo.path, "driver", broken=True)
    broken = commit(repo.path, "driver: a broken build backend")
    write_module(repo.path, "driver")
    commit(repo.path, "driver: fixed")
    done = repo.run("--pin", f"driver={broken[:12]}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    now = repo.jobs(2)
    assert now["build"]["status"] == "error" and "driver" in now["build"]["message"]
    assert now["alpha"]["status"] == "not_run" and now["publish"]["status"] == "passed"
    record("build failure at an old commit", f"build: {now['build']['message']}",
           kept(repo, jobs, metrics), "not needed")


def test_a_corrupt_model_in_the_suite(night_before):
    repo, jobs, metrics = night_before
    (repo.path / "workloads" / "beta.onnx").write_bytes(b"\x08\x07garbage, not a model" * 20)
    done = repo.run()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    now = repo.jobs(2)
    assert now["alpha"]["status"] == "passed"
    assert now["beta"]["status"] == "error" and "beta" in now["beta"]["message"]
    assert "harness error" not in now["beta"]["message"] and "\n" not in now["beta"]["message"]
    record("corrupt model in the suite", f"beta: {now['beta']['message']}",
           kept(repo, jobs, metrics), "not needed")


def test_a_malformed_contract(night_before):
    repo, jobs, metrics = night_before
    (repo.path / "modules" / "runtime" / "contract.yaml").write_bytes(
        b"module: runtime\nprovides: {runtime-api: [1]}\nrequires: {}\n")
    head = commit(repo.path, "runtime: a malformed contract")
    done = repo.run()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    contracts = repo.jobs(2)["contracts"]
    assert contracts["status"] == "error"
    assert contracts["message"].startswith(
        f"modules/runtime/contract.yaml @ {head[:12]}: provides.runtime-api: expected")
    assert "cache" not in contracts["message"]
    record("malformed contract (runtime)", f"contracts: {contracts['message']}",
           kept(repo, jobs, metrics), "not needed")


def test_a_malformed_release_manifest(night_before):
    repo, jobs, metrics = night_before
    releases = repo.path / "contracts" / "releases"
    releases.mkdir(parents=True)
    (releases / "bad.yaml").write_bytes(b"modules:\n  driver: \xff\xfe\n")
    done = repo.run("--combination", "release:bad")
    assert done.returncode == 2
    line = one_line_error(done.stderr)
    assert line.startswith("stackci: error: contracts/releases/bad.yaml: not UTF-8 text")
    outside = repo.run("--combination", "release:../../x")
    assert outside.returncode == 2
    assert "known: bad" in one_line_error(outside.stderr)
    record("malformed release manifest (not UTF-8)", line.removeprefix("stackci: error: "),
           kept(repo, jobs, metrics), "not needed (nothing started)")


def test_a_malformed_suite(night_before):
    repo, jobs, metrics = night_before
    repo.suite.write_bytes(NOT_UTF8)
    done = repo.run()
    assert done.returncode == 2
    line = one_line_error(done.stderr)
    assert f"{repo.suite}: not UTF-8 text (byte 0xe9" in line
    repo.suite.write_text("workloads:\n  - name: x\n    source: file:x.onnx\n    tiers: 3\n")
    again = repo.run()
    assert again.returncode == 2 and "workloads[0] (x).tiers" in one_line_error(again.stderr)
    git(repo.path, "checkout", "--", "workloads/suite.yaml")
    record("malformed suite (not UTF-8; tiers: 3)", line.removeprefix("stackci: error: "),
           kept(repo, jobs, metrics), "not needed (nothing started)")
