"""The functional speed trend against onnxruntime (dashboard/pages/speed.py, index.html)."""

import json
from pathlib import Path

import pytest

from storedruns import nightly_like
from stackci.dashboard.pages.speed import speed_view
from stackci.dashboard.publish import publish
from stackci.results.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def test_speed_ratio_trend_in_data_json_and_on_the_index(tmp_path, store):
    nightly_like(store, {("resnet", "npu-edge"): 2.0, ("resnet", "npu-dc"): 1.2})
    nightly_like(store, {("resnet", "npu-edge"): 1.8, ("resnet", "npu-dc"): 1.1,
                         ("bert", "npu-edge"): 1.4})
    site = tmp_path / "site"
    publish(store, site)
    trend = json.loads((site / "data.json").read_text())["trends"]["speed_ratio"]
    assert {w: {s: [p["value"] for p in points] for s, points in skus.items()}
            for w, skus in trend.items()} == {
        "resnet": {"npu-edge": [2.0, 1.8], "npu-dc": [1.2, 1.1]}, "bert": {"npu-edge": [1.4]}}
    index = (site / "index.html").read_text()
    section = index.split('<section id="speed-ratio">')[1].split("</section>")[0]
    assert section.count('class="chart wide"') == 2  # one chart per SKU
    # The chart is lazy: the page names its figure file, which holds the figure.
    assert 'id="speed-npu-edge" data-src="data/speed-npu-edge.json"' in section
    chart = (site / "data" / "speed-npu-edge.json").read_text()
    assert '"x onnxruntime"' in chart and '"y0": 1.5' in chart and '"dash": "dash"' in chart
    figures = index.split("<h2>Latest figures</h2>")[1].split("</table>")[0]
    assert ">speed_ratio</th>" in figures
    # Above the goal is marked; at or below it is not.
    assert '<td class="num over-goal">1.8</td>' in figures
    assert '<td class="num">1.1</td>' in figures and '<td class="num">1.4</td>' in figures


def test_speed_chart_orders_runs_even_when_a_later_workload_has_fewer(store):
    nightly_like(store, {("resnet", "npu-edge"): 2.0})
    nightly_like(store, {("bert", "npu-edge"): 1.4})
    nightly_like(store, {("resnet", "npu-edge"): 1.8, ("bert", "npu-edge"): 1.3})
    chart, = speed_view(store)["charts"]
    axis = chart["figure"]["layout"]["xaxis"]
    assert [label.split()[0] for label in axis["categoryarray"]] == ["#1", "#2", "#3"]
    assert [trace["name"] for trace in chart["figure"]["data"]] == ["bert", "resnet"]


def test_an_empty_store_has_no_speed_chart(tmp_path, store):
    publish(store, tmp_path / "site")
    assert 'id="speed-ratio"' not in (tmp_path / "site" / "index.html").read_text()
    data = json.loads((tmp_path / "site" / "data.json").read_text())
    assert data["trends"]["speed_ratio"] == {}
    assert Path(tmp_path / "site" / "fidelity.html").is_file()
