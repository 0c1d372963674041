"""The regressions job in whole nights on the fake port: what a night brought is raised once,
with its size, per-op diff and owner; the same vector twice raises nothing; a figure back to
good fixes its regression; a same-vector difference is a determinism bug; a flip is a flip.
The summary ends with the new regressions and the per-team reports are written."""

import json

from costport import CostPort, night, vector


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


def stored_wall_clock_nights(store, values, moves_every=3):
    """Nights of one workload job straight into the store, `compile_s` as given; the compiler
    moves every `moves_every` nights (code that moves without touching compile time), and
    the regressions job's conclusion is recorded each night as the executor would."""
    from stackci.nightly.stages.regressions import conclude
    from stackci.results.regressions import HistoryReader

    raised = []
    for night_index, value in enumerate(values):
        run_id = store.start_run(tier="smoke", budget_s=3600, plan={})
        tree = f"k{night_index // moves_every}"
        combination = store.record_combination("master", f"key-{tree}", {
            "compiler": {"version": "1.6.0", "commit": f"c-{tree}", "tree_hash": tree}})
        store.add_jobs(run_id, [{"key": "w", "stage": "workloads", "name": "resnet",
                                 "sku": "edge", "combination_id": combination}])
        store.finish_job(run_id, "w", status="passed", details={"precision": "fp32"}, metrics=[
            {"name": "compile_s", "value": value, "workload": "resnet", "sku": "edge"}])
        outcome = conclude(HistoryReader(store, run_id), "master", lambda module: None)
        if outcome.regressions:
            store.record_regression_changes(run_id, outcome.regressions)
            raised += outcome.details["new"]
        store.finish_run(run_id, "completed", {})
    return raised


def test_stored_wall_clock_noise_without_a_step_raises_nothing(store):
    import numpy as np
    noise = np.random.default_rng(11).lognormal(0.0, 0.05, 40)
    assert stored_wall_clock_nights(store, list(2.0 * noise)) == []


def test_a_20_percent_step_in_stored_wall_clock_history_raises_one_regression(store):
    import numpy as np
    noise = np.random.default_rng(12).lognormal(0.0, 0.05, 40)
    values = [2.0 * n * (1.2 if i >= 27 else 1.0) for i, n in enumerate(noise)]
    [raised] = stored_wall_clock_nights(store, values)
    [row] = store.regression_rows()
    assert row["id"] == raised and row["metric"] == "compile_s"
    assert row["first_bad_run"] == 28 and "compiler moved" in row["summary"]
    assert 0.15 < row["relative"] < 0.25


def test_the_summary_ends_with_one_line_per_new_regression():
    import io

    from rich.console import Console

    from stackci.nightly.display import print_regressions

    out = io.StringIO()
    print_regressions(Console(file=out, width=80), [{
        "id": "R1", "series": "master/squeezenet/npu-edge/fp32/total_cycles",
        "size": "1 -> 2 cycles", "culprit": "opslib 1.4.1; opslib commit c8ede1a40a60",
        "commits": ["c8ede1a40a60" + "0" * 28], "teams": ["opslib"]}], ["/r/opslib.md"])
    text = out.getvalue()
    assert "1 new regression(s)" in text
    assert "R1 master/squeezenet/npu-edge/fp32/total_cycles: 1 -> 2 cycles; culprit opslib " \
        "1.4.1; opslib commit c8ede1a40a60; commit c8ede1a40a60; team opslib" in \
        text.replace("\n", "")
    assert "team reports: /r/opslib.md" in text
    none = io.StringIO()
    print_regressions(Console(file=none, width=80), [])
    assert none.getvalue().strip() == "regressions: none new"
