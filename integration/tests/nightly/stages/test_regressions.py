"""The regressions job in whole nights on the fake port: what a night brought is raised once,
with its size, per-op diff and owner; the same vector twice raises nothing; a figure back to
good fixes its regression; a same-vector difference is a determinism bug; a flip is a flip.
The summary ends with the new regressions and the per-team reports are written."""

import json
from pathlib import Path

from fakes import FakePort
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.sources.combination import Combination, ModuleVersion

MODULES = ("driver", "runtime", "opslib", "compiler")


class CostPort(FakePort):
    """conv0 costs `extra[(opslib tree, workload)]` more cycles (latency follows at 1 GHz);
    `jitter` adds cycles whatever the vector (a determinism bug)."""

    def __init__(self, tmp_path):
        super().__init__(tmp_path, modules=MODULES)
        self.extra: dict[tuple[str, str], int] = {}
        self.jitter = 0
        self.combination_of: dict[str, Combination] = {}

    def environment(self, ws, combination, **options):
        env = super().environment(ws, combination, **options)
        env.python = Path(f"/fake/{combination.key}/bin/python")
        self.combination_of[str(env.python)] = combination
        return env

    def run_model(self, python, request):
        document = super().run_model(python, request)
        workload = request.model.stem.rsplit("-", 2)[0]
        tree = self.combination_of[str(python)].modules["opslib"].tree_hash
        extra = self.extra.get((tree, workload), 0) + self.jitter
        simulated = document["simulated"]
        simulated["ops"][0]["cycles"] += extra
        simulated["total_cycles"] += extra
        simulated["latency_us"] = simulated["total_cycles"] / 1000.0
        return document


def vector(opslib="o1", compiler="k1"):
    trees = {"driver": "d1", "runtime": "r1", "opslib": opslib, "compiler": compiler}
    return Combination("master", {m: ModuleVersion(m, "1.0.0", f"commit-{t}", f"tree-{t}")
                                  for m, t in trees.items()})


def night(ws, store, port, combination):
    nightly = Nightly(ws, store, port=port, suite=port.suite_path(),
                      dashboard_dir=ws.home / "site")
    return nightly.start(NightlyOptions(tier="smoke", no_tests=True, bisect_probes=0),
                         [combination])


def regressions(store, **filters):
    return {(r["workload"], r["sku"], r["metric"]): r for r in store.regression_rows(**filters)}


def test_the_same_vector_twice_raises_nothing(ws, store, tmp_path):
    port = CostPort(tmp_path)
    night(ws, store, port, vector())
    second = night(ws, store, port, vector())
    assert store.regression_rows() == []
    assert second.summary["regressions"] == []
    detect = next(j for j in store.jobs(second.run_id) if j.stage == "regressions")
    assert detect.status == "passed" and detect.message == "no new regression"


def test_a_costlier_kernel_is_raised_on_its_workload_only_then_fixed(ws, store, tmp_path):
    port = CostPort(tmp_path)
    port.extra = {("tree-o2", "resnet"): 300}
    night(ws, store, port, vector())
    bad = night(ws, store, port, vector(opslib="o2"))
    found = regressions(store)
    assert {w for w, _, _ in found} == {"resnet"}
    assert set(found) == {("resnet", sku, metric) for sku in ("edge", "datacenter")
                          for metric in ("total_cycles", "latency_us")}
    cycles = found[("resnet", "edge", "total_cycles")]
    assert cycles["state"] == "new" and cycles["teams"] == ["opslib"]   # OWNERS: modules/opslib/
    assert cycles["data"]["size"]["absolute"] == 300
    [change] = cycles["data"]["op_diff"]["changes"]
    assert (change["name"], change["delta_cycles"]) == ("conv0", 300)
    assert "opslib's kernel cost" in cycles["data"]["op_diff"]["hint"]
    # Latency and throughput share the cycles' culprit search.
    assert found[("resnet", "edge", "latency_us")]["search_of"] == cycles["id"]

    summary = bad.summary["regressions"]
    assert len(summary) == 4 and {e["culprit"] for e in summary} == {"opslib"}
    assert {t for e in summary for t in e["teams"]} == {"opslib"}
    reports = ws.home / "runs" / str(bad.run_id) / "regressions"
    posted = json.loads((reports / "opslib.json").read_text())
    assert posted["labels"] == ["regression", "team:opslib"] and len(posted["regressions"]) == 4
    assert cycles["id"] in (reports / "opslib.md").read_text()
    assert bad.ok   # a regression is news for a team, not a failed run

    night(ws, store, port, vector(opslib="o2"))          # the same vector again: nothing new
    assert len(store.regression_rows()) == 4
    fixed = night(ws, store, port, vector(opslib="o3"))   # the cost is back
    assert {r["state"] for r in store.regression_rows()} == {"fixed"}
    events = store.regression_events(cycles["id"])
    assert [e["after"] for e in events] == ["new", "fixed"]
    assert events[-1]["run_id"] == fixed.run_id
    assert json.loads((ws.home / "runs" / str(fixed.run_id) / "regressions" /
                       "index.json").read_text()) == []


def test_the_same_vector_measuring_twice_differently_is_a_determinism_bug(ws, store, tmp_path):
    port = CostPort(tmp_path)
    port.workloads = ["resnet"]
    night(ws, store, port, vector())
    port.jitter = 7
    night(ws, store, port, vector())
    found = regressions(store)
    cycles = found[("resnet", "edge", "total_cycles")]
    assert cycles["kind"] == "determinism" and "determinism bug" in cycles["summary"]
    assert cycles["search_of"] is None


def test_a_workload_that_stops_running_is_an_outcome_flip(ws, store, tmp_path):
    port = CostPort(tmp_path)
    port.workloads = ["resnet"]
    night(ws, store, port, vector())
    port.behaviour = {("resnet", "edge"): "crash"}
    night(ws, store, port, vector(compiler="k2"))
    found = regressions(store)
    assert set(found) == {("resnet", "edge", "outcome")}
    flip = found[("resnet", "edge", "outcome")]
    assert flip["kind"] == "outcome" and "a new unsupported operator" in flip["summary"]
    assert flip["teams"] == ["compiler"]
