"""The build and contracts stages (nightly/stages/build.py, contracts.py), called directly
with a run's resources on the fake port: they return outcomes and write nothing."""

from pathlib import Path

from fakes import FakePort
from stackci.errors import StackError
from stackci.model import JobContext
from stackci.nightly.resources import Resources
from stackci.nightly.stages import ACTIONS
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[4]


def context(tmp_path, port):
    ws = Workspace(repo=REPO, home=tmp_path / "home")
    resources = Resources(ws, port, publish=lambda: tmp_path / "site" / "index.html")
    return JobContext(timeout_s=60, workdir=tmp_path, resources=resources)


def test_build_returns_the_lock_and_the_skus_as_evidence(tmp_path):
    port = FakePort(tmp_path)
    combination = port.combination()
    outcome = ACTIONS["build"](combination, {})(context(tmp_path, port))
    assert outcome.status == "passed"
    assert [sku["name"] for sku in outcome.skus] == ["edge", "datacenter"]
    lock_hash, lock = outcome.lock
    assert lock_hash == combination.key and lock["modules"]["runtime"]["version"] == "0.1.0"
    assert outcome.details["skus"] == ["edge", "datacenter"]


def test_a_driver_without_its_sku_cli_still_built(tmp_path):
    port = FakePort(tmp_path)

    def no_skus(python, timeout_s=None):
        raise StackError("python -m npu_driver skus --json exited 2: npu-driver: error: "
                         "argument command: invalid choice: 'skus' (choose from 'cost')")

    port.skus = no_skus
    outcome = ACTIONS["build"](port.combination(), {})(context(tmp_path, port))
    assert outcome.status == "passed" and "SKUs not recorded" in outcome.message
    assert outcome.skus == [] and outcome.lock is not None


def test_a_driver_that_cannot_load_its_sku_yaml_fails_the_build(tmp_path):
    port = FakePort(tmp_path)

    def broken_sku(python, timeout_s=None):
        raise StackError("python -m npu_driver skus --json exited 2: npu-driver: error: "
                         "skus/npu-edge.yaml: clock_ghz: expected a positive number")

    port.skus = broken_sku
    outcome = ACTIONS["build"](port.combination(), {})(context(tmp_path, port))
    assert outcome.status == "error"
    assert outcome.message.startswith("the driver cannot load its SKUs: ")
    assert "skus/npu-edge.yaml: clock_ghz" in outcome.message


def test_contracts_are_parsed_once_per_combination_and_checked(tmp_path):
    port = FakePort(tmp_path)
    combination = port.combination()
    ctx = context(tmp_path, port)
    outcome = ACTIONS["contracts"](combination, {})(ctx)
    assert (outcome.status, outcome.message) == ("passed", "1 contract edges agree")
    assert ctx.resources.contracts(combination) is ctx.resources.contracts(combination)
    assert ctx.resources.provided(combination)["compiler-api"] == "1.2"
    assert port.count("build") == 1


def test_disagreeing_contracts_fail_with_the_chain(tmp_path):
    port = FakePort(tmp_path)
    port.contracts_ok = False
    outcome = ACTIONS["contracts"](port.combination(), {})(context(tmp_path, port))
    assert outcome.status == "failed"
    assert outcome.message.startswith("runtime 0.1.0 requires driver-api >=2; driver 0.1.0 "
                                      "provides driver-api 1.0")
