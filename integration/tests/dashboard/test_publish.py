import json
import re
from pathlib import Path

import pytest

from fakes import FakePort, conformance_report
from stackci import cli
from stackci.dashboard.pages.ops import op_breakdown
from stackci.dashboard.publish import publish
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.schema import JobRow
from stackci.results.store import Store
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def night(tmp_path, store, latency_us, **options):
    port = FakePort(tmp_path, latency_us=latency_us)
    ws = Workspace(repo=REPO, home=tmp_path / "home")
    return Nightly(ws, store, port=port, suite=port.suite_path(),
                   dashboard_dir=tmp_path / "site").start(
        # no_reuse: the fake measures another latency behind unchanged inputs.
        NightlyOptions(tier="smoke", no_tests=True, **{"no_reuse": True, **options}),
        [port.combination()])


def test_two_nights_give_two_points_per_trend(tmp_path, store):
    first = night(tmp_path, store, 100.0)
    second = night(tmp_path, store, 90.0)
    site = tmp_path / "site"
    assert second.summary["dashboard"] == str(site / "index.html")
    data = json.loads((site / "data.json").read_text())
    trends = data["trends"]["latency_us"]
    assert set(trends) == {"resnet", "bert"}
    for by_sku in trends.values():
        assert set(by_sku) == {"edge", "datacenter"}
        for points in by_sku.values():
            assert [p["value"] for p in points] == [100.0, 90.0]
            # x labels by version vector: which modules moved since the track's run before.
            assert [p["x"] for p in points] == [f"#{first.run_id} master first run",
                                                f"#{second.run_id} no module moved"]
    latest = {(e["workload"], e["sku"]): e for e in data["latest"]}
    assert latest[("bert", "edge")]["figures"]["latency_us"] == 90.0
    assert latest[("bert", "edge")]["run_id"] == second.run_id


def test_pages_work_offline(tmp_path, store):
    night(tmp_path, store, 100.0)
    site = tmp_path / "site"
    pages = [site / "index.html", *sorted((site / "ops").glob("*.html"))]
    assert len(pages) == 5  # index + 2 workloads x 2 SKUs
    for page in pages:
        html = page.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), page
        for ref in re.findall(r"""(?:src|href)="(?!data:)([^"#]+)\"""", html):
            assert (page.parent / ref).resolve().is_file(), f"{page}: {ref}"
    assert (site / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    index = (site / "index.html").read_text()
    # Charts are lazy: each names its figure file (checked to exist above), drawn by lazy.js.
    assert 'class="chart" id="trend-resnet" data-src="data/trend-resnet.json"' in index
    assert "Plotly.newPlot" in (site / "assets" / "lazy.js").read_text() and "Run 1" in index
    assert "job(s) out</strong>" not in index and "P0:" not in index
    assert 'class="status completed"' in index  # published once the run was over


def test_op_page_breaks_down_cycles(tmp_path, store):
    night(tmp_path, store, 100.0)
    page = (tmp_path / "site" / "ops" / "resnet__edge.html").read_text()
    assert "conv_im2col" in page and "66.7%" in page  # 3000 of 4500 cycles


def test_op_breakdown_orders_types_by_cycles():
    ops = [{"op_type": "Add", "cycles": 10.0}, {"op_type": "Conv", "cycles": 60.0},
           {"op_type": "Add", "cycles": 30.0}]
    found = op_breakdown(ops)
    assert found["by_type"] == [("Conv", 60.0), ("Add", 40.0)]
    assert [row["share"] for row in found["rows"]] == [0.1, 0.6, 0.3]


def test_banner_names_jobs_left_out_by_the_budget(tmp_path, store):
    night(tmp_path, store, 100.0)
    with store._sessions.begin() as session:  # history: each workload takes an hour
        for row in session.query(JobRow).filter_by(stage="workloads"):
            row.duration_s = 3600.0
    night(tmp_path, store, 100.0, budget_s=1800.0)
    index = (tmp_path / "site" / "index.html").read_text()
    assert "job(s) out</strong>" in index and "P0: run 2 does not fit its budget" in index
    banner = index.split("job(s) out</strong>")[1].split("</section>")[0]
    assert "workloads:resnet:edge@" in banner and "since tonight" in banner
    # Each job left out shows the plan's estimate and its evidence (it never started).
    assert "1h00m <span class=\"meta\">(history)</span>" in banner


def test_an_empty_store_publishes_a_page(tmp_path, store):
    index = publish(store, tmp_path / "empty")
    assert "No runs stored yet" in index.read_text()


def test_dashboard_command(tmp_path, store, monkeypatch, capsys):
    night(tmp_path, store, 100.0)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("stackci.commands.nightly",))
    monkeypatch.setenv("STACKCI_REPO", str(REPO))
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    out = tmp_path / "published"
    assert cli.main(["dashboard", "--db", store.url, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert (out / "ops" / "bert__datacenter.html").is_file()


def conformance_night(tmp_path, store, passed: int, failures: dict):
    port = FakePort(tmp_path, workloads=())
    port.report = conformance_report(passed, failures)
    port.provides = {"compiler-api": "1.1", "opslib-api": "1.2"}
    port.conformance_spec = {"floor": 1000, "sku": "npu-dc", "tiers": ["nightly"]}
    ws = Workspace(repo=REPO, home=tmp_path / "home")
    return Nightly(ws, store, port=port, suite=port.suite_path(),
                   dashboard_dir=tmp_path / "site").start(
        NightlyOptions(tier="nightly", no_tests=True, no_reuse=True), [port.combination()])


def test_conformance_trend_and_failures_by_class(tmp_path, store):
    conformance_night(tmp_path, store, 1100, {"crash": 1})
    conformance_night(tmp_path, store, 1150, {"unsupported_operator": 2, "wrong_result": 1})
    site = tmp_path / "site"
    data = json.loads((site / "data.json").read_text())
    assert [p["value"] for p in data["trends"]["conformance_passed"]["master"]] == [1100, 1150]
    assert [p["value"] for p in data["trends"]["opslib_configs"]["master"]] == [8441, 8441]
    index = (site / "index.html").read_text()
    section = index.split("Operator conformance")[1].split("</section>")[0]
    assert 'id="trend-conformance"' in section and ">1,150<" in section
    assert 'href="conformance.html#master"' in section
    assert "Kernel library size" in index and ">8,441<" in index
    page = (site / "conformance.html").read_text()
    by_class = {kind: page.split(f"<summary>{kind}: ")[1].split("</details>")[0]
                for kind in ("unsupported operator", "wrong result", "crash")}
    # The newest run's failures, each listed under its class.
    assert by_class["unsupported operator"].startswith("2</summary>")
    assert "test_unsupported_operator_1" in by_class["unsupported operator"]
    assert "test_wrong_result_0" in by_class["wrong result"]
    assert by_class["crash"].startswith("0</summary>") and "test_crash_0" not in page
