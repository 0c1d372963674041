"""The workload analysis pages, from two nights on the fake port (the second loses a fusion):
what each page lists, and every page in headless Chromium with its charts drawn."""

from pathlib import Path

import pytest

from browser import check_site, requires_browser
from fakes import FakePort
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.store import Store
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


@pytest.fixture
def site(store, tmp_path):
    ws = Workspace(repo=REPO, home=tmp_path / "home")
    port = FakePort(tmp_path)
    for unfused in (False, True):
        port.unfused = unfused
        result = Nightly(ws, store, port=port, suite=port.suite_path(),
                         dashboard_dir=tmp_path / "site").start(
            # no_reuse: the fake plans differently (unfused) behind unchanged inputs.
            NightlyOptions(tier="smoke", no_tests=True, workers=1, no_reuse=True),
            [port.combination()])
        assert result.ok, {k: v for k, v in result.ended.items() if v[0] != "passed"}
    return tmp_path / "site"


def test_the_nights_analyses_are_stored_and_shown(site, store):
    latest, previous = store.latest_analyses()
    assert len(latest) == 4 and len(previous) == 4  # 2 workloads x 2 SKUs, two nights
    doc = latest[0]["document"]
    # The second night's plan diff against the first's stored plan: the fusion it lost.
    assert doc["plan_diff"]["a"] == latest[0]["label"] and doc["plan_diff"]["fusions_lost"]
    assert doc["batch_sweep"]["confirmed"]["matches"]
    assert len(store.design_sweeps()) == 4 and store.advice()
    page = (site / "analysis" / "resnet__edge__fp32.html").read_text()
    assert "Conv+Relu" in page and "Gemm+Softmax" in page and "fusion" in page
    assert "Nothing lost" not in page and "pattern Conv+Relu" in page
    assert "resnet" in (site / "analysis.html").read_text()
    sweet = (site / "sweetspots.html").read_text()
    assert sweet.count("matches") == 4
    explore = (site / "explore.html").read_text()
    assert "nightly edge" in explore and "Pareto front" in explore
    advice = (site / "advice.html").read_text()
    teams = {item["team"] for item in store.advice()}
    assert teams and all(f'id="{team}"' in advice for team in teams)


@requires_browser
def test_every_analysis_page_renders_in_chromium(site):
    pages = check_site(site, ["analysis.html", "analysis/resnet__edge__fp32.html",
                              "analysis/bert__datacenter__fp32.html", "sweetspots.html",
                              "explore.html", "advice.html", "index.html"])
    for name, page in pages.items():
        assert page.errors == [], (name, page.errors)
        assert page.all_charts_rendered, (name, page.unrendered)
    # Cycle bars by op type and unit, the timeline, the roofline; a curve per SKU; a sweep each.
    assert {c["id"] for c in pages["analysis/resnet__edge__fp32.html"].charts} == {
        "by-type", "by-unit", "timeline", "roofline"}
    assert len(pages["sweetspots.html"].charts) == 2
    assert len(pages["explore.html"].charts) == 2
    assert "compiler" in pages["advice.html"].text or "opslib" in pages["advice.html"].text
