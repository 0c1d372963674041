"""regressions.html and the trends' change points and version-vector labels, published from
two fake nights in which one kernel got costlier on one workload."""

import json
from pathlib import Path

import pytest

from costport import CostPort, night, vector
from stackci.dashboard.publish import publish
from stackci.results.store import Store
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def test_the_page_lists_open_regressions_first_with_culprit_owner_and_op_diff(tmp_path, store):
    ws = Workspace(repo=REPO, home=tmp_path / "home")
    port = CostPort(tmp_path)
    port.extra = {("tree-o2", "resnet"): 300}
    night(ws, store, port, vector())
    night(ws, store, port, vector(opslib="o2"))
    rows = store.regression_rows()
    closed = next(r for r in rows if r["metric"] == "latency_us" and r["sku"] == "edge")
    store.record_regression_changes(None, {"regressions": [{**closed, "state": "fixed"}]})
    site = tmp_path / "site"
    publish(store, site)

    page = (site / "regressions.html").read_text()
    assert "Regressions: 3 open" in page
    table = page[page.index("<tbody>"):page.index("</tbody>")]
    order = [r["id"] for r in sorted(rows, key=lambda r: table.index(r["id"]))]
    assert order[-1] == closed["id"]                    # open first, the fixed one last
    cycles = next(r for r in rows if r["metric"] == "total_cycles" and r["sku"] == "edge")
    section = page[page.index(f'id="r-{cycles["id"]}"'):]
    section = section[:section.index("</section>")]
    assert "opslib" in section and "conv0" in section and "+300" in section
    assert "opslib 1.0.0 (commit-" in section           # what moved at the first bad run
    assert "opslib&#39;s kernel cost" in section   # the diff's hint, escaped

    index = (site / "index.html").read_text()
    assert 'href="regressions.html">regressions (3 open)' in index
    trend = json.loads((site / "data.json").read_text())["trends"]["latency_us"]["resnet"]
    labels = [p["x"] for p in trend["edge"]]
    assert labels[0].endswith("master first run") and labels[1].startswith("#2 opslib 1.0.0 (")
    assert trend["edge"][1]["change"] and closed["id"] in trend["edge"][1]["regression"]
    assert not any(p["change"] for p in json.loads((site / "data.json").read_text())
                   ["trends"]["latency_us"]["bert"]["edge"])
