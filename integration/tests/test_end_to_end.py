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


def nightly(clone: Path, home: Path, monkeypatch) -> int:
    monkeypatch.setenv("STACKCI_REPO", str(clone))
    monkeypatch.setenv("STACKCI_HOME", str(home))
    monkeypatch.delenv("STACKCI_DB", raising=False)
    return main(["nightly", "--combination", "master", "--tier", "smoke",
                 "--workload", "squeezenet", "--sku", "npu-edge", "--no-tests", "--workers", "1"])


def test_two_nights_store_two_runs_and_two_trend_points(clone, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    assert nightly(clone, home, monkeypatch) == 0
    assert nightly(clone, home, monkeypatch) == 0
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
                                               "bisect", "publish"}
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
