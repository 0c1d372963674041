"""The published dashboard in headless Chromium: every page loads with no console error, no
failed resource and every chart drawn; and the checker itself sees what goes wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import check_site, requires_browser
from fakes import FakePort
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
