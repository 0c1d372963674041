"""The analysis tables: a document with its ops and sweet spots in one write, the newest and
previous per workload x SKU x precision, the previous night's plan, sweeps, advice reports."""

import pytest

from stackci.results.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def document(cycles: int, server: int | None = 2, sku: str = "npu-edge") -> dict:
    return {"workload": "cnn", "sku": sku, "precision": "fp32", "modelled_cycles": cycles,
            "latency_us": cycles / 800,
            "cycles": {"by_layer": [{"name": "conv", "compute": cycles - 30, "fill_drain": 10,
                                     "stall": 20, "total": cycles}]},
            "roofline": {"ops": [{"name": "conv", "op_type": "Conv", "unit": "array",
                                  "kernel": "Conv", "cycles": cycles, "intensity": 12.5,
                                  "achieved_ops_per_cycle": 300.0, "bound": "memory-bound",
                                  "roofline_bound": "memory-bound",
                                  "helped_by": "dram_bandwidth_x2", "gain": 0.5,
                                  "counterfactual_cycles": {"dram_bandwidth_x2": cycles // 2}}]},
            "batch_sweep": {"offline": 4, "server": server, "knee": 2, "latency_bound_ms": 5.0,
                            "stopped": "max batch 4", "points": [{"batch": 1}],
                            "confirmed": {"matches": True}}}


def test_documents_ops_and_sweet_spots(store):
    first = store.record_analysis(document(1000), label="v1", plan={"steps": [1]}, run_id=None)
    second = store.record_analysis(document(900, server=4), label="v2", plan={"steps": [2]})
    store.record_analysis(document(500, sku="npu-dc"), label="v2")
    [op] = store.analysis_ops(first)
    assert (op["name"], op["bound"], op["compute"], op["fill_drain"], op["stall"]) == (
        "conv", "memory-bound", 970, 10, 20)
    assert op["counterfactual_cycles"] == {"dram_bandwidth_x2": 500}
    latest, previous = store.latest_analyses()
    assert [(r["id"], r["sku"]) for r in latest] == [(second, "npu-edge"), (3, "npu-dc")]
    assert [r["id"] for r in previous] == [first]
    assert "plan" not in latest[0]
    spots = store.sweet_spots("cnn")
    assert [(s["label"], s["server"], s["confirmed"]) for s in spots] == [
        ("v1", 2, True), ("v2", 4, True), ("v2", 2, True)]
    assert store.previous_plan("cnn", "npu-edge", "fp32", None)["plan"] == {"steps": [2]}


def test_the_previous_nights_plan_is_from_an_earlier_run(store):
    runs = [store.start_run(tier="smoke", budget_s=1.0, plan={}) for _ in range(2)]
    store.record_analysis(document(1000), label="night 1", plan={"steps": [1]}, run_id=runs[0])
    store.record_analysis(document(900), label="night 2", plan={"steps": [2]}, run_id=runs[1])
    assert store.previous_plan("cnn", "npu-edge", "fp32", runs[1])["label"] == "night 1"
    assert store.previous_plan("cnn", "npu-edge", "fp32", runs[0]) is None
    assert store.previous_plan("cnn", "npu-dc", "fp32", None) is None
    latest, _ = store.latest_analyses(before_run=runs[1])
    assert [r["label"] for r in latest] == ["night 1"]


def test_sweeps_and_advice_reports(store):
    store.record_design_sweep({"sku": "npu-dc", "points": [{}, {}]}, name="dc")
    store.record_design_sweep({"sku": "npu-dc", "points": [{}]}, name="dc")
    assert [s["points"] for s in store.latest_design_sweeps()] == [1]
    items = [{"team": "compiler", "kind": "fusion", "change": "fuse", "gain_us": 3.0},
             {"team": "opslib", "kind": "kernel", "change": "tile", "gain_us": 9.0}]
    assert store.record_advice(items) == 1
    assert store.record_advice(items[:1]) == 2
    assert [i["team"] for i in store.advice()] == ["compiler"]
    assert [i["gain_us"] for i in store.advice(batch=1)] == [9.0, 3.0]
    assert store.advice(batch=1, team="opslib")[0]["item"]["change"] == "tile"
