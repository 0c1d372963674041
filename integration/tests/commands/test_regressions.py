"""`stackci regressions`, `compare` and `bisect` as a person types them, on a store two fake
nights filled: one kernel got costlier on one workload."""

import pytest

from clihelpers import expect_one_line_error, run_json
from costport import CostPort, night, vector
from stackci.cli import main
from stackci.results.store import Store
from stackci.workspace import Workspace

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """(argv prefix, store, good run, bad run)."""
    home = tmp_path / "home"
    monkeypatch.setenv("STACKCI_REPO", str(REPO))
    db = f"sqlite:///{tmp_path / 'results.db'}"
    store = Store(db)
    port = CostPort(tmp_path)
    port.extra = {("tree-o2", "resnet"): 300}
    ws = Workspace(repo=REPO, home=home)
    good = night(ws, store, port, vector()).run_id
    bad = night(ws, store, port, vector(opslib="o2")).run_id
    yield ["--home", str(home), "--db", db], store, good, bad
    store.close()


def listed(capsys, options, *argv):
    code, found = run_json(capsys, ["regressions", *argv, *options, "--json"])
    assert code == 0
    return found


def test_list_filter_and_move_regressions(stored, capsys):
    options, store, _, bad = stored
    found = listed(capsys, options)
    assert len(found) == 4 and {r["first_bad_run"] for r in found} == {bad}
    assert {o["name"] for r in found for o in r["owners"]} == {"opslib"}
    assert listed(capsys, options, "--team", "compiler") == []
    assert len(listed(capsys, options, "--team", "opslib", "--state", "new")) == 4
    target = found[0]["id"]
    assert main(["regressions", "ack", target, "--note", "looking", *options]) == 0
    assert f"{target}: new -> acknowledged" in capsys.readouterr().out
    assert [r["id"] for r in listed(capsys, options, "--state", "acknowledged")] == [target]
    assert [e["note"] for e in store.regression_events(target)] == [found[0]["summary"],
                                                                   "looking"]
    assert main(["regressions", "false-positive", target, *options]) == 0
    capsys.readouterr()
    expect_one_line_error(capsys, ["regressions", "fixed", target, *options], 2,
                          "is false_positive: it cannot become fixed")
    assert main(["regressions", *options]) == 0
    assert "false_positive" in capsys.readouterr().out


def test_bad_ids_and_states_are_one_line_errors(stored, capsys):
    options = stored[0]
    expect_one_line_error(capsys, ["regressions", "ack", "R0000", *options], 2,
                          "no regression 'R0000'")
    expect_one_line_error(capsys, ["regressions", "--state", "sad", *options], 2,
                          "unknown regression state 'sad'")
    expect_one_line_error(capsys, ["regressions", "ack", *options], 2, "expected a regression ID")


def test_compare_shows_every_series_and_the_per_op_diff(stored, capsys):
    options, _, good, bad = stored
    code, found = run_json(capsys, ["compare", str(good), str(bad), "--json", *options])
    assert code == 0
    verdicts = {r["series"]: r["verdict"] for r in found["rows"]}
    assert verdicts["master/resnet/edge/fp32/total_cycles"] == "regressed"
    assert verdicts["master/bert/edge/fp32/total_cycles"] == "same"
    [diff] = [d for d in found["op_diffs"] if d["job"] == "master/resnet/edge/fp32"]
    assert [(c["name"], c["delta_cycles"]) for c in diff["changes"]] == [("conv0", 300)]
    assert main(["compare", str(good), str(bad), *options]) == 0
    out = capsys.readouterr().out
    assert "resnet/edge/fp32/total_cycles" in out and "conv0 (Conv) changed: +300" in out
    expect_one_line_error(capsys, ["compare", str(good), "99", *options], 2, "no run 99")
    expect_one_line_error(capsys, ["compare", "one", "2", *options], 2, "RUN_A 'one'")


def test_bisect_names_what_is_wrong_with_its_arguments(stored, capsys):
    options, _, good, bad = stored
    expect_one_line_error(capsys, ["bisect", "--series", "resnet/total_cycles", "--good",
                                   str(good), "--bad", str(bad), *options], 2,
                          "expected TRACK/WORKLOAD/SKU/PRECISION/METRIC")
    expect_one_line_error(capsys, ["bisect", "--series", "master/resnet/edge/fp32/nope",
                                   "--good", str(good), "--bad", str(bad), *options], 2,
                          "no such series stored")
    expect_one_line_error(capsys, ["bisect", "--series", "master/resnet/edge/fp32/total_cycles",
                                   "--good", "42", "--bad", str(bad), *options], 2,
                          "--good 42: series master/resnet/edge/fp32/total_cycles has no point")
    expect_one_line_error(capsys, ["bisect", "--series", "master/-/-/-/tests_passed",
                                   "--good", str(good), "--bad", str(bad), *options], 2,
                          "no job can measure tests_passed again")
