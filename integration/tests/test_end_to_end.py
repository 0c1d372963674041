"""The nightly for real, on a clone of this repository: builds master from git with uv, checks
contracts, runs a smoke workload on the simulated NPU, stores it, publishes the dashboard.

Narrowed to one workload on one SKU (and no module tests: they run in this same suite) so that it
stays within a minute or two; the README's full line runs the same code over more jobs.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from stackci.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                      capture_output=True).returncode != 0:
        pytest.skip("the repository has no commit to build from")
    target = tmp_path_factory.mktemp("clone") / "stack"
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True)
    return target


def nightly(clone: Path, home: Path, monkeypatch, *extra: str) -> int:
    # The analysis stage's batch sweep to 4, not 64: minutes saved, the same code run.
    monkeypatch.setattr("stackci.nightly.stages.analysis.MAX_BATCH", 4)
    monkeypatch.setenv("STACKCI_REPO", str(clone))
    monkeypatch.setenv("STACKCI_HOME", str(home))
    monkeypatch.delenv("STACKCI_DB", raising=False)
    return main(["nightly", "--combination", "master", "--tier", "smoke",
                 "--workload", "squeezenet", "--sku", "npu-edge", "--no-tests", "--workers", "1", *extra])


def test_two_nights_store_two_runs_and_two_trend_points(clone, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    assert nightly(clone, home, monkeypatch) == 0
    # Measured again, not reused (nightly/reuse.py has its own tests): the second night's
    # analysis must diff its plan against the first's.
    assert nightly(clone, home, monkeypatch, "--no-reuse") == 0
    out = capsys.readouterr().out
    assert "dashboard:" in out

    with sqlite3.connect(home / "results.db") as db:
        runs = db.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
        jobs = db.execute("SELECT stage, status, message FROM jobs WHERE run_id = ?",
                          (runs[-1][0],)).fetchall()
        latency = db.execute("SELECT value FROM metrics WHERE name = 'latency_us' AND "
                             "workload = 'squeezenet' AND sku = 'npu-edge'").fetchall()
        ops = db.execute("SELECT COUNT(*) FROM op_profiles").fetchone()[0]
    assert [status for _, status in runs] == ["completed", "completed"]
    assert {stage for stage, _, _ in jobs} == {"build", "contracts", "workloads", "regressions",
                                               "analysis", "bisect", "publish"}
    assert all(status == "passed" for stage, status, _ in jobs if stage != "bisect"), jobs
    # Nothing regressed between two nights of one vector: no culprit search to probe.
    assert {(status, message) for stage, status, message in jobs if stage == "bisect"} == \
        {("not_run", "not applicable: no culprit search is open")}
    # Simulated cycles are deterministic: the same combination gives the same figure twice.
    assert len(latency) == 2 and latency[0] == latency[1] and latency[0][0] > 0
    assert ops > 0

    site = home / "dashboard"
    index = (site / "index.html").read_text()
    assert "squeezenet" in index and "assets/plotly.min.js" in index
    assert "https://" not in index and "http://" not in index.replace("http://www.w3.org", "")
    assert (site / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    trend = json.loads((site / "data.json").read_text())["trends"]["latency_us"]["squeezenet"]
    assert len(trend["npu-edge"]) == 2
    check_the_real_analysis_stage(home, site)


def check_the_real_analysis_stage(home: Path, site: Path) -> None:
    """The analysis stage on the real stack, two nights of one vector: stored documents whose
    bounds are what their counterfactuals show, the sweet spot confirmed by a functional run,
    the second night's plan diffed against the first's (identical), a design sweep, advice."""
    from stackci.results.store import Store

    store = Store(f"sqlite:///{home / 'results.db'}")
    rows = store.analysis_documents(workload="squeezenet", sku="npu-edge")
    assert [r["run_id"] for r in rows] == [1, 2]
    doc = rows[-1]["document"]
    for op in doc["roofline"]["ops"]:
        best = min(op["counterfactual_cycles"], key=op["counterfactual_cycles"].get)
        saving = (op["cycles"] - op["counterfactual_cycles"][best]) / op["cycles"]
        assert op["bound"] == ("latency-bound" if saving < 0.05 else op["bound"])
        assert saving < 0.05 or op["helped_by"] == best or \
            op["counterfactual_cycles"][op["helped_by"]] == op["counterfactual_cycles"][best]
    sweep = doc["batch_sweep"]
    assert sweep["latency_bound_ms"] == 5 and sweep["confirmed"]["matches"]
    assert doc["plan_diff"]["identical"] and doc["plan_diff"]["a"] == rows[0]["label"]
    assert len(store.sweet_spots("squeezenet")) == 2 and store.design_sweeps(run_id=2)
    assert store.advice() and (site / "advice.html").is_file()
    store.close()
    from browser import chromium_path, check_site

    if chromium_path() is None:
        return
    pages = check_site(site, ["analysis/squeezenet__npu-edge__fp32.html", "sweetspots.html",
                              "explore.html", "advice.html", "analysis.html"])
    for name, page in pages.items():  # the real documents, drawn
        assert page.errors == [] and page.all_charts_rendered, (name, page.errors, page.unrendered)
    assert len(pages["analysis/squeezenet__npu-edge__fp32.html"].charts) == 4
