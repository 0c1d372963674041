"""The fidelity page (dashboard/pages/fidelity.py): our scalesim mode against SCALE-Sim."""

import json
import re

import pytest

from storedruns import nightly_like
from stackci.results import fidelity
from stackci.dashboard.publish import publish
from stackci.results.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def layer(name, M, N, K, array, dataflow, ours, theirs):
    """A run_fidelity.py row (ours/theirs: (compute, total) cycles)."""
    return {"name": name, "M": M, "N": N, "K": K, "array": list(array), "dataflow": dataflow,
            "ours": {"compute_cycles": ours[0], "total_cycles": ours[1], "seconds": 0.002},
            "scalesim": {"compute_cycles": theirs[0], "total_cycles": theirs[1],
                         "seconds": 41.5},
            "compute_diff": ours[0] - theirs[0],
            "total_diff_percent": 100.0 * (ours[1] - theirs[1]) / theirs[1]}


ROWS = [
    layer("n146", 49, 2048, 512, (128, 128), "is", (52480, 63600), (52480, 60000)),  # +6%
    layer("n10", 3136, 64, 64, (32, 32), "ws", (203840, 215000), (203840, 215000)),
    layer("n10", 3136, 64, 64, (32, 32), "os", (213248, 230000), (213248, 229000)),
    layer("n13", 3136, 256, 64, (32, 32), "os", (98790, 213200), (98783, 213191)),  # compute
]


def record_fidelity(store, tmp_path, rows, summary=None) -> int:
    path = tmp_path / "fidelity.json"
    path.write_text(json.dumps({"summary": summary or {}, "layers": rows}))
    loaded_summary, results = fidelity.load_results(path)
    return fidelity.record(store, path, loaded_summary, results)["run_id"]


def sections(page: str) -> dict[str, str]:
    """The fidelity tables by anchor (array-dataflow)."""
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, re.S))


def row_of(table: str, layer_name: str) -> str:
    return re.search(rf"<tr[^>]*><td>{layer_name}</td>.*?</tr>", table, re.S).group(0)


def test_fidelity_page_tables_per_array_and_dataflow_with_misses_marked(tmp_path, store):
    nightly_like(store, {("resnet", "npu-edge"): 2.0})
    run_id = record_fidelity(store, tmp_path, ROWS, {"speedup": 20750.0,
                                                     "ours_seconds": 0.008,
                                                     "scalesim_seconds": 166.0})
    publish(store, tmp_path / "site")
    page = (tmp_path / "site" / "fidelity.html").read_text()
    assert f"run {run_id} &middot; weekly" in page
    summary = page.split('<table class="summary">')[1].split("</table>")[0]
    assert re.search(r"compute cycles exact</th><td[^>]*>3 of 4<", summary)
    assert re.search(r"total cycles within 5%</th><td[^>]*>3 of 4<", summary)
    assert "6.00%" in summary and "20,750x" in summary
    assert "0.008 s / 166 s (2m46s)" in summary
    tables = sections(page)
    assert list(tables) == ["32x32-os", "32x32-ws", "128x128-is"]  # small arrays first
    assert "<td>n13</td>" in tables["32x32-os"] and "<td>n10</td>" in tables["32x32-os"]
    exact = row_of(tables["32x32-ws"], "n10")
    assert 'class="miss"' not in exact and "miss-cell" not in exact
    assert ">3,136<" in exact and ">+0.00%<" in exact
    total_miss = row_of(tables["128x128-is"], "n146")
    assert total_miss.startswith('<tr class="miss">')
    assert '<td class="num miss-cell">+6.00%</td>' in total_miss
    assert '<td class="num">0</td>' in total_miss  # its compute cycles are exact
    compute_miss = row_of(tables["32x32-os"], "n13")
    assert '<td class="num miss-cell">7</td>' in compute_miss
    assert "+0.00%" in compute_miss and "miss-cell\">+" not in compute_miss
    assert tables["32x32-ws"].split("</h2>")[0].endswith("1 layer, all within bounds")
    assert tables["32x32-os"].split("</h2>")[0].endswith("2 layers, 1 miss")
    assert 'id="trend-fidelity"' not in page  # one fidelity run: no trend yet
    index = (tmp_path / "site" / "index.html").read_text()
    assert '<a href="fidelity.html">fidelity vs SCALE-Sim</a>' in index
    assert "compute cycles exact on 3, total within 5% on 3" in index


def test_several_fidelity_runs_trend_their_worst_total_difference(tmp_path, store):
    record_fidelity(store, tmp_path, ROWS)
    record_fidelity(store, tmp_path, ROWS[1:3])
    publish(store, tmp_path / "site")
    page = (tmp_path / "site" / "fidelity.html").read_text()
    assert 'id="trend-fidelity"' in page
    trend = json.loads((tmp_path / "site" / "data.json").read_text())["fidelity"]["trend"]
    assert [round(point["value"], 4) for point in trend] == [6.0, round(100 / 229, 4)]
    # The page shows the newest run only: two layer runs, nothing missed.
    assert list(sections(page)) == ["32x32-os", "32x32-ws"]
    assert 'class="miss"' not in page


def test_without_a_fidelity_run_the_page_says_so(tmp_path, store):
    nightly_like(store, {("resnet", "npu-edge"): 2.0})
    publish(store, tmp_path / "site")
    page = (tmp_path / "site" / "fidelity.html").read_text()
    assert "No fidelity run stored yet: record one with" in page
    assert "<table" not in page
    data = json.loads((tmp_path / "site" / "data.json").read_text())
    assert data["fidelity"] is None
    assert "Fidelity against SCALE-Sim" not in (tmp_path / "site" / "index.html").read_text()
