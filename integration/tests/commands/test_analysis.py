"""`stackci analyze`, `explore` and `advice` on the real stack (this interpreter's), on a smoke
workload: documents stored in the results store, advice routed by OWNERS, Markdown per team,
old JSON records imported, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from stackci.cli import main
from stackci.results.store import Store

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("stackci-analysis")


@pytest.fixture(scope="module", autouse=True)
def environment(home):
    # Module-scoped and undone afterwards: later tests must not inherit STACKCI_REPO.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STACKCI_REPO", str(REPO))
        patch.setenv("NPU_PLAN_CACHE", str(home / "plan-cache"))
        yield


def stored(home) -> Store:
    return Store(f"sqlite:///{home / 'results.db'}")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def analysed(home, environment):
    """One analysis with a batch sweep, stored under `home` (run once for the module); the
    latency bound is the suite's (squeezenet: 5 ms)."""
    code = main(["analyze", "squeezenet", "--sku", "npu-edge", "--home", str(home),
                 "--python", sys.executable, "--batch-sweep", "--max-batch", "4",
                 "--label", "v1", "--json"])
    assert code == 0
    return home


def test_analyze_stores_the_stack_document(analysed, capsys):
    store = stored(analysed)
    row = store.analysis_documents(workload="squeezenet", with_plan=True)[0]
    doc = row["document"]
    assert doc["workload"] == "squeezenet" and doc["sku"] == "npu-edge" and row["label"] == "v1"
    assert row["plan"]["steps"] and row["modelled_cycles"] == doc["modelled_cycles"]
    ops = store.analysis_ops(row["id"])
    assert [op["name"] for op in ops] == [op["name"] for op in doc["roofline"]["ops"]]
    assert all(op["compute"] + op["fill_drain"] + op["stall"] == op["cycles"] for op in ops)
    assert doc["run"]["total_cycles"] == doc["modelled_cycles"]
    sweep = doc["batch_sweep"]
    assert [p["batch"] for p in sweep["points"]] == [1, 2, 4]
    assert sweep["latency_bound_ms"] == 5
    server = next(p for p in sweep["points"] if p["batch"] == sweep["server"])
    assert server["latency_ms"] <= 5
    [spot] = store.sweet_spots("squeezenet")
    assert (spot["server"], spot["offline"], spot["confirmed"]) == (
        sweep["server"], sweep["offline"], True)
    # The harness's functional run at the sweet spot gives the sweep's cycles.
    assert sweep["confirmed"] == {"batch": sweep["server"], "sweep_cycles": server["cycles"],
                                  "run_cycles": server["cycles"], "matches": True}
    assert (analysed / "analysis" / "plans" / "v1" / "squeezenet__npu-edge" / "plan.json").is_file()


def test_analyze_against_an_earlier_plan_attaches_the_diff(analysed, capsys):
    earlier = analysed / "analysis" / "plans" / "v1" / "squeezenet__npu-edge"
    code, out, _ = run(capsys, "analyze", "squeezenet", "--sku", "npu-edge", "--home",
                       str(analysed), "--python", sys.executable, "--compare-plan", str(earlier),
                       "--label", "v2", "--json")
    assert code == 0
    diff = json.loads(out)["plan_diff"]
    assert diff["a"] == "squeezenet__npu-edge" and diff["b"] == "v2" and diff["identical"]
    # The stored plan of the last analysis, without naming a directory.
    code, out, _ = run(capsys, "analyze", "squeezenet", "--sku", "npu-edge", "--home",
                       str(analysed), "--python", sys.executable, "--compare-previous",
                       "--skip-pass", "fuse_epilogues", "--label", "unfused", "--json")
    assert code == 0
    doc = json.loads(out)
    diff = doc["plan_diff"]
    assert (diff["a"], diff["b"]) == ("v2", "unfused") and not diff["identical"]
    assert {"kind": "pass", "pass": "fuse_epilogues"} in diff["lost_optimizations"]
    assert doc["fusion_opportunities"] and all(
        f["saving_cycles"] > 0 for f in doc["fusion_opportunities"])
    # Every document is kept: the newest per workload x SKU x precision, and the one before.
    latest, previous = stored(analysed).latest_analyses()
    assert [r["label"] for r in latest] == ["unfused"] and [r["label"] for r in previous] == ["v2"]


def test_explore_and_advice(analysed, capsys, tmp_path):
    code, out, _ = run(capsys, "explore", "--sku", "npu-edge", "--home", str(analysed),
                       "--python", sys.executable, "--workload", "squeezenet",
                       "--vary", "array=16x16,32x32,64x64", "--vary", "dram_bandwidth=25.6,51.2",
                       "--json")
    assert code == 0
    sweep = json.loads(out)
    assert len(sweep["points"]) == 6 and sweep["models"] == ["squeezenet"]
    assert set(sweep["points"][0]["models"]) == {"squeezenet"}
    [row] = stored(analysed).design_sweeps()
    assert row["points"] == 6 and row["document"]["pareto"] == sweep["pareto"]
    code, out, _ = run(capsys, "advice", "--home", str(analysed), "--json",
                       "--markdown", str(tmp_path / "md"))
    assert code == 0
    advice = json.loads(out)
    teams = {i["team"] for i in advice["items"]}
    assert {"hardware", "runtime"} <= teams and "unowned" not in teams
    assert any(i["kind"] == "design-point" for i in advice["items"])
    assert (tmp_path / "md" / "hardware.md").read_text().startswith("# Advice for hardware")
    code, out, _ = run(capsys, "advice", "--home", str(analysed), "--team", "runtime", "--json")
    assert code == 0 and {i["team"] for i in json.loads(out)["items"]} == {"runtime"}
    code, out, _ = run(capsys, "advice", "--home", str(analysed))
    assert code == 0 and "advice from 1 analyses" in out
    # The lost fusion of the last analysis is the compiler's.
    assert "compiler" in teams


def test_json_files_of_older_harnesses_are_imported_once(analysed, tmp_path, capsys):
    home = tmp_path / "old-home"
    doc = stored(analysed).analysis_documents()[0]["document"]
    old = home / "analysis"
    (old / "sweeps").mkdir(parents=True)
    (old / "squeezenet__npu-edge__fp32.json").write_text(json.dumps(doc))
    (old / "squeezenet__npu-edge__fp32.previous.json").write_text(json.dumps(doc))
    (old / "sweeps" / "npu-edge.json").write_text(json.dumps(
        {"sku": "npu-edge", "points": [], "pareto": []}))
    code, out, _ = run(capsys, "advice", "--home", str(home), "--json")
    assert code == 0 and json.loads(out)["documents"] == 1
    assert len(stored(home).analysis_documents()) == 2 and len(stored(home).design_sweeps()) == 1
    assert not list(old.glob("*.json")) and (old / "imported" / "sweeps" / "npu-edge.json").is_file()
    run(capsys, "advice", "--home", str(home), "--json")
    assert len(stored(home).analysis_documents()) == 2


def test_one_line_errors(analysed, capsys, tmp_path):
    code, _, err = run(capsys, "advice", "--home", str(analysed), "--team", "nobody")
    assert code == 2 and "unknown team 'nobody'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "advice", "--home", str(tmp_path / "empty"))
    assert code == 2 and "no analyses stored" in err
    bad = tmp_path / "OWNERS"
    bad.write_text("modules/\n")
    code, _, err = run(capsys, "advice", "--home", str(analysed), "--owners", str(bad))
    assert code == 2 and f"{bad} line 1" in err
    code, _, err = run(capsys, "analyze", "no-such-workload", "--sku", "npu-edge", "--home",
                       str(analysed), "--python", sys.executable)
    assert code == 2 and "no workload named 'no-such-workload'" in err
    code, _, err = run(capsys, "explore", "--sku", "npu-edge", "--home", str(analysed),
                       "--python", sys.executable, "--workload", "squeezenet", "--vary", "array=7")
    assert code == 2 and "expected ROWSxCOLS" in err and "Traceback" not in err
