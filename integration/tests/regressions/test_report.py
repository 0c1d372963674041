"""Routing to owners and the per-team reports (Markdown and the JSON an automation posts)."""

from datetime import datetime

from stackci.regressions import (
    TRIAGE, ModuleVersion, Point, Regression, Series, SeriesKey, Team, criterion_for, detect,
    from_finding, owners, render_json, render_markdown, start_search, team_reports,
    transition)

T0 = datetime(2026, 12, 1, 2, 0)
GOOD = {"compiler": ModuleVersion("1.5.0", "a1", "ta"), "opslib": ModuleVersion("1.3.0", "b1", "tb")}
TEAMS = {"compiler": Team("compiler", "@npu/compiler"), "opslib": Team("kernels", "@npu/kernels")}


def regression(moved, metric="total_cycles", workload="resnet"):
    bad = dict(GOOD)
    for m in moved:
        bad[m] = ModuleVersion("9.9.9", f"{m}-bad", f"{m}-tree-bad")
    key = SeriesKey(workload, "npu-edge", "fp32", metric, "master")
    series = Series.of(key, [Point(1, T0, GOOD, 100.0), Point(2, T0, bad, 150.0)])
    [finding] = detect(series)
    return from_finding(finding, T0)


def test_one_moved_module_routes_to_its_team_and_several_to_triage():
    assert owners(regression(["compiler"]), TEAMS.get) == [TEAMS["compiler"]]
    assert owners(regression(["compiler", "opslib"]), TEAMS.get) == [Team(TRIAGE)]
    assert owners(regression(["driver"]), TEAMS.get) == [Team(TRIAGE)]   # nobody owns it


def test_an_interaction_goes_to_both_teams():
    r = regression(["compiler", "opslib"])
    search = start_search(r.last_good.vector, r.first_bad.vector, criterion_for(r))
    probe_rows = []
    from stackci.regressions import modules
    state = search.modules
    while not state.done:
        state = modules.step(state, lambda v: probe_rows.append(v) or
                             (150.0 if all(e.commit.endswith("bad") for e in v.values())
                              else 100.0))
    r = Regression(**{**r.__dict__, "search": type(search)(state)})
    assert [t.name for t in owners(r, TEAMS.get)] == ["kernels", "compiler"] or \
        [t.name for t in owners(r, TEAMS.get)] == ["compiler", "kernels"]
    reports = team_reports([r], TEAMS.get)
    assert [rep.team.name for rep in reports] == ["compiler", "kernels"]
    assert "only compiler 9.9.9 with opslib 9.9.9" in render_markdown(reports[0])


def test_reports_list_open_regressions_per_team_as_markdown_and_json():
    a = regression(["compiler"])
    b = regression(["compiler"], workload="bert")
    closed = transition(regression(["compiler"], workload="mlp"), "false_positive", T0)
    [report] = team_reports([a, b, closed], TEAMS.get)
    assert report.team.name == "compiler" and len(report.regressions) == 2
    text = render_markdown(report)
    assert text.startswith("# Open regressions of compiler (@npu/compiler)")
    assert "| id | state | series | size | culprit |" in text
    assert "master/resnet/npu-edge/fp32/total_cycles" in text and "+50.0%" in text
    posted = render_json(report, TEAMS.get)
    assert posted["title"] == "2 open regressions of compiler"
    assert posted["labels"] == ["regression", "team:compiler"]
    assert {r["modules"][0] for r in posted["regressions"]} == {"compiler"}
    assert all(r["owners"] == [{"name": "compiler", "contact": "@npu/compiler"}]
               for r in posted["regressions"])
