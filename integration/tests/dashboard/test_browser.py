"""The published dashboard in headless Chromium: every page loads with no console error, no
failed resource and every chart drawn; and the checker itself sees what goes wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from browser import check_site, requires_browser
from fakes import FakePort
from stackci.dashboard.site import plotly_js, site_dir
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.store import Store
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]

pytestmark = requires_browser


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def test_every_published_page_renders_without_errors(tmp_path, store):
    for latency in (100.0, 90.0):  # two nights: trends have two points
        port = FakePort(tmp_path, latency_us=latency)
        Nightly(Workspace(repo=REPO, home=tmp_path / "home"), store, port=port,
                suite=port.suite_path(), dashboard_dir=tmp_path / "site").start(
            NightlyOptions(tier="smoke", no_tests=True, no_reuse=True), [port.combination()])
    pages = check_site(tmp_path / "site")
    assert "index.html" in pages and any(name.startswith("ops/") for name in pages)
    for name, page in pages.items():
        assert page.errors == [], name
        assert page.all_charts_rendered, (name, page.unrendered)
    assert len(pages["index.html"].charts) >= 2 and "Run 2" in pages["index.html"].text
    assert pages["ops/resnet__edge.html"].charts
    # The same combination measured two latencies: determinism bugs, listed on their page.
    assert "determinism bug" in pages["regressions.html"].text


def test_the_checker_reports_errors_and_undrawn_charts(tmp_path):
    # A checker that cannot fail checks nothing: a broken page must come back broken.
    (tmp_path / "broken.html").write_text(
        "<!doctype html><title>broken</title><script src='missing.js'></script>"
        "<div class='chart' id='never'></div>"
        "<script>console.error('boom'); undefinedFunction();</script>")
    (tmp_path / "fine.html").write_text(
        "<!doctype html><title>fine</title><link rel='icon' href='data:,'>"
        "<p>no charts here</p><script>console.log('hello')</script>")
    pages = check_site(tmp_path, timeout_s=2)
    broken, fine = pages["broken.html"], pages["fine.html"]
    assert any("boom" in e for e in broken.errors)
    assert any("undefinedFunction" in e for e in broken.errors)
    assert any("missing.js" in e or "404" in e for e in broken.errors)
    assert broken.unrendered == ["never"] and not broken.all_charts_rendered
    assert fine.errors == [] and fine.charts == [] and fine.title == "fine"


def test_lazy_charts_are_drawn_when_scrolled_into_view_and_a_missing_one_fails(tmp_path):
    # lazy.js draws a chart from its JSON file once it is in view; the checker scrolls to
    # it (it is far below the fold), and a chart whose file is missing comes back undrawn.
    (tmp_path / "assets").mkdir()
    shutil.copyfile(plotly_js(), tmp_path / "assets" / "plotly.min.js")
    shutil.copyfile(site_dir() / "lazy.js", tmp_path / "assets" / "lazy.js")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "far.json").write_text(json.dumps(
        {"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}], "layout": {}}))
    head = ("<!doctype html><title>lazy</title><link rel='icon' href='data:,'>"
            "<script src='assets/plotly.min.js'></script>"
            "<script src='assets/lazy.js' defer></script>")
    (tmp_path / "lazy.html").write_text(
        head + "<div style='height: 5000px'></div>"
        "<div class='chart' id='far' data-src='data/far.json' style='height: 300px'></div>")
    (tmp_path / "missing.html").write_text(
        head + "<div class='chart' id='gone' data-src='data/gone.json'></div>")
    pages = check_site(tmp_path, timeout_s=10)
    lazy, missing = pages["lazy.html"], pages["missing.html"]
    assert lazy.errors == [] and lazy.all_charts_rendered and lazy.charts[0]["id"] == "far"
    assert missing.unrendered == ["gone"]
    assert any("gone.json" in e for e in missing.errors)
    assert "Could not load data/gone.json" in missing.text
