"""The conformance stage (nightly/stages/conformance.py): the ONNX node suite's pass count and classified failures,
and the opslib size report, per combination (on the fake port)."""

from pathlib import Path

import pytest

from fakes import FakePort, conformance_report
from stackci.errors import StackError, UsageError
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.store import Store
from stackci.workloads.suite import Conformance, load_suite
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[4]
SPEC = Conformance(floor=1000, sku="npu-dc", tiers=("nightly",))
NEW = {"compiler-api": "1.1", "opslib-api": "1.2"}


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def night(tmp_path, store, port, *, provides=NEW, **options):
    port.provides = provides
    port.conformance_spec = {"floor": SPEC.floor, "sku": SPEC.sku, "tiers": list(SPEC.tiers)}
    ws = Workspace(repo=REPO, home=tmp_path / "home")
    options = NightlyOptions(**{"tier": "nightly", "no_tests": True, **options})
    result = Nightly(ws, store, port=port, suite=port.suite_path()).start(
        options, [port.combination()])
    return result, {job.name: job for job in store.jobs(result.run_id)
                    if job.stage == "conformance"}


def metrics_of(store, job):
    return {m["name"]: m["value"] for m in store.metrics(job_id=job.id)}


def test_the_pass_count_and_classified_failures_are_stored(tmp_path, store):
    port = FakePort(tmp_path, workloads=())
    result, jobs = night(tmp_path, store, port)
    node = jobs["onnx-node"]
    assert (node.status, node.sku) == ("passed", "npu-dc")
    assert node.message == ("1200 of 1203 node cases pass "
                               "(unsupported_operator 2, wrong_result 1)")
    assert metrics_of(store, node) == {
        "conformance_passed": 1200, "conformance_total": 1203,
        "conformance_unsupported_operator": 2, "conformance_unsupported_type": 0,
        "conformance_wrong_result": 1, "conformance_crash": 0}
    failures = node.details["failures"]
    assert [(f["name"], f["status"]) for f in failures] == [
        ("test_unsupported_operator_0", "unsupported_operator"),
        ("test_unsupported_operator_1", "unsupported_operator"),
        ("test_wrong_result_0", "wrong_result")]
    assert port.calls.count(("conformance", "npu-dc")) == 1
    size = jobs["opslib-size"]
    assert size.status == "passed"
    assert metrics_of(store, size) == {"opslib_kernels": 155, "opslib_variants": 773,
                                       "opslib_configs": 8441}
    assert result.ok


def test_below_the_floor_the_job_fails(tmp_path, store):
    port = FakePort(tmp_path, workloads=())
    port.report = conformance_report(999, {"crash": 5})
    result, jobs = night(tmp_path, store, port)
    assert jobs["onnx-node"].status == "failed"
    assert jobs["onnx-node"].message.endswith("below the floor of 1000")
    assert metrics_of(store, jobs["onnx-node"])["conformance_crash"] == 5
    assert not result.ok


def test_a_crashing_runner_is_an_error(tmp_path, store):
    port = FakePort(tmp_path, workloads=())
    port.report = StackError("python -m npu_compiler.conformance --json exited 1: boom",
                                   kind="crash")
    _, jobs = night(tmp_path, store, port)
    assert jobs["onnx-node"].status == "error"
    assert "exited 1: boom" in jobs["onnx-node"].message


def test_an_unexpected_document_is_an_error(tmp_path, store):
    port = FakePort(tmp_path, workloads=())
    port.report = {"passed": 3}
    _, jobs = night(tmp_path, store, port)
    assert jobs["onnx-node"].status == "error"
    assert "unexpected document" in jobs["onnx-node"].message


def test_combinations_without_the_interfaces_are_not_applicable(tmp_path, store):
    port = FakePort(tmp_path, workloads=())
    result, jobs = night(tmp_path, store, port,
                         provides={"compiler-api": "1.0", "opslib-api": "1.1"})
    assert jobs["onnx-node"].status == "not_run"
    assert jobs["onnx-node"].message == (
        "not applicable: needs compiler-api >=1.1; the combination provides 1.0")
    assert jobs["opslib-size"].message == (
        "not applicable: needs opslib-api >=1.2; the combination provides 1.1")
    assert port.count("conformance") == port.count("opslib_stats") == 0
    assert result.ok


def test_only_the_tiers_of_the_suite_run_it_and_named_workloads_leave_it_out(tmp_path, store):
    port = FakePort(tmp_path)
    assert night(tmp_path, store, port, tier="smoke")[1] == {}
    assert night(tmp_path, store, port, workloads=["bert"])[1] == {}
    assert set(night(tmp_path, store, port, tier="weekly")[1]) == {"onnx-node", "opslib-size"}


def test_the_suite_manifest_sets_the_floor(tmp_path):
    assert load_suite(REPO / "workloads" / "suite.yaml").conformance.floor == 1000
    manifest = tmp_path / "suite.yaml"
    base = "workloads: [{name: a, source: 'onnx-light:squeezenet', tiers: [smoke]}]\n"
    manifest.write_text(base + "conformance: {sku: npu-dc}\n")
    with pytest.raises(UsageError, match=r"suite.yaml: conformance.floor: missing"):
        load_suite(manifest)
    manifest.write_text(base + "conformance: {floor: many}\n")
    with pytest.raises(UsageError, match=r"conformance.floor: expected an integer, got 'many'"):
        load_suite(manifest)
    manifest.write_text(base + "conformance: {floor: 5, tiers: [daily]}\n")
    with pytest.raises(UsageError, match=r"conformance.tiers: expected a non-empty list"):
        load_suite(manifest)
