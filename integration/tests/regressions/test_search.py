"""The culprit search's algorithms over fake probes and a fake history: module verdicts,
interactions, untestable probes, bisection bounds, wall-clock probes with repeats."""

import json
from datetime import datetime

import numpy as np
import pytest

from stackci.errors import StackciError
from stackci.regressions import (
    BAD, GOOD, UNTESTABLE, Criterion, CulpritSearch, Kind, ModuleVersion, Untestable, run,
    start_search)
from stackci.regressions import bisect, modules
from stackci.regressions.changepoint import DEFAULT

T0 = datetime(2026, 12, 1)


def mv(module, n):
    return ModuleVersion(f"1.{n}.0", f"{module}-c{n}", f"{module}-t{n}")


GOOD_V = {m: mv(m, 0) for m in ("driver", "runtime", "opslib", "compiler")}
BAD_V = {**GOOD_V, "opslib": mv("opslib", 9), "compiler": mv("compiler", 9),
         "driver": mv("driver", 9)}
EXACT = Criterion(Kind.DETERMINISTIC, (100.0,), (130.0,))


def cost_probe(rule):
    """rule(set of modules at their bad version) -> cycles."""
    def probe(vector):
        moved = {m for m, e in vector.items() if e.commit.endswith("c9")}
        return rule(moved)
    return probe


class FakeHistory:
    """Commits c1..c9 of every module touched it; c9 is the bad end."""

    def __init__(self, n=9):
        self.n = n

    def commits_touching(self, module, good, bad):
        return [f"{module}-c{i}" for i in range(1, self.n + 1)]

    def module_version(self, module, commit):
        n = int(commit.rsplit("c", 1)[1])
        return ModuleVersion(f"1.{n}.0", commit, f"{module}-t{n}")


def test_one_moved_module_is_the_culprit_without_a_probe():
    bad = {**GOOD_V, "compiler": mv("compiler", 9)}
    state = start_search(GOOD_V, bad, EXACT)
    assert state.modules.done and state.modules.verdict.modules == ("compiler",)
    assert len(state.modules.evidence) == 2        # the two measured endpoints


def test_no_moved_module_names_the_environment():
    state = start_search(GOOD_V, dict(GOOD_V), EXACT)
    assert state.modules.verdict.kind == "none"
    assert "environment" in state.modules.verdict.describe(GOOD_V)


def test_single_moves_name_the_module_that_reproduces():
    search = start_search(GOOD_V, BAD_V, EXACT).modules
    probe = cost_probe(lambda moved: 130.0 if "opslib" in moved else 100.0)
    while not search.done:
        search = modules.step(search, probe)
    assert search.verdict.kind == "module" and search.verdict.groups == (("opslib",),)
    assert [e.moved for e in search.evidence[2:]] == [("driver",), ("opslib",), ("compiler",)]


def test_pairs_are_tried_only_when_no_single_move_reproduces():
    search = start_search(GOOD_V, BAD_V, EXACT).modules
    probe = cost_probe(lambda moved: 130.0 if {"opslib", "compiler"} <= moved else 100.0)
    while not search.done:
        search = modules.step(search, probe)
    assert search.verdict.kind == "interaction"
    assert search.verdict.groups == (("opslib", "compiler"),)
    assert search.verdict.describe(BAD_V) == "only opslib 1.9.0 with compiler 1.9.0"
    assert len(search.evidence) == 2 + 3 + 3


def test_an_untestable_single_move_leaves_a_pair_unresolved_not_an_interaction():
    bad = {**GOOD_V, "opslib": mv("opslib", 9), "compiler": mv("compiler", 9)}

    def probe(vector):
        moved = {m for m, e in vector.items() if e.commit.endswith("c9")}
        if moved == {"compiler"}:
            raise Untestable("compiler 1.9.0 needs opslib-api 1.4")
        return 130.0 if len(moved) == 2 else 100.0
    search = start_search(GOOD_V, bad, EXACT).modules
    while not search.done:
        search = modules.step(search, probe)
    assert search.verdict.kind == "unresolved"
    assert modules.untestable_groups(search) == [("compiler",)]


def test_bisection_probes_the_middle_and_skips_untestable_commits():
    criterion = EXACT
    state = bisect.start_bisection(FakeHistory(), "opslib", GOOD_V, "opslib-c0", "opslib-c9",
                                   criterion)
    probed = []

    def probe(vector):
        n = int(vector["opslib"].commit.rsplit("c", 1)[1])
        probed.append(n)
        if n == 4:
            raise Untestable("does not build")
        return 130.0 if n >= 7 else 100.0
    while not state.done:
        state = bisect.step(state, probe)
    assert state.result.first_bad == "opslib-c7" and state.result.exact
    assert probed[0] == 4 and state.verdicts["opslib-c4"] == UNTESTABLE
    assert len(probed) <= 5


def test_a_culprit_hidden_behind_untestable_commits_is_a_range():
    state = bisect.start_bisection(FakeHistory(5), "opslib", GOOD_V, "opslib-c0", "opslib-c5",
                                   EXACT)

    def probe(vector):
        n = int(vector["opslib"].commit.rsplit("c", 1)[1])
        if n in (2, 3):
            raise Untestable("does not build")
        return 130.0 if n >= 3 else 100.0
    while not state.done:
        state = bisect.step(state, probe)
    assert state.result.untestable == ("opslib-c2", "opslib-c3")
    assert state.result.first_bad == "opslib-c4"
    assert state.result.last_good == "opslib-c1"


def test_a_bisection_state_survives_json_between_steps():
    state = bisect.start_bisection(FakeHistory(), "opslib", GOOD_V, "opslib-c0", "opslib-c9",
                                   EXACT)
    probe = cost_probe(lambda moved: 0)   # replaced below

    def probe(vector):
        return 130.0 if int(vector["opslib"].commit.rsplit("c", 1)[1]) >= 3 else 100.0
    while not state.done:
        state = bisect.Bisection.from_dict(json.loads(json.dumps(bisect.step(state, probe)
                                                                 .to_dict())))
    assert state.result.first_bad == "opslib-c3"


def test_an_empty_range_is_a_clear_error():
    class Empty(FakeHistory):
        def commits_touching(self, module, good, bad):
            return []
    with pytest.raises(StackciError, match="no commit touched modules/opslib"):
        bisect.start_bisection(Empty(), "opslib", GOOD_V, "a", "b", EXACT)


def test_the_midpoint_rule_names_the_commit_that_crosses_half_the_regression():
    # Two commits each add part: +10 at c2 (a third), +20 at c7: c7 crosses the middle.
    def probe(vector):
        n = int(vector["opslib"].commit.rsplit("c", 1)[1])
        return 100.0 + (10 if n >= 2 else 0) + (20 if n >= 7 else 0)
    state = bisect.start_bisection(FakeHistory(), "opslib", GOOD_V, "opslib-c0", "opslib-c9",
                                   EXACT)
    while not state.done:
        state = bisect.step(state, probe)
    assert state.result.first_bad == "opslib-c7"


def test_wall_clock_probes_take_repeats_and_the_detection_statistics():
    rng = np.random.default_rng(3)
    good_refs = tuple(2.0 * np.exp(rng.normal(0, 0.05, 12)))
    bad_refs = tuple(2.4 * np.exp(rng.normal(0, 0.05, 12)))
    criterion = Criterion(Kind.WALL_CLOCK, good_refs, bad_refs, repeats=8, config=DEFAULT)
    calls = []

    def probe(vector):
        n = int(vector["opslib"].commit.rsplit("c", 1)[1])
        calls.append(n)
        return float((2.4 if n >= 5 else 2.0) * np.exp(rng.normal(0, 0.05)))
    state = bisect.start_bisection(FakeHistory(), "opslib", GOOD_V, "opslib-c0", "opslib-c9",
                                   criterion)
    while not state.done:
        state = bisect.step(state, probe)
    assert state.result.first_bad == "opslib-c5"
    assert len(calls) == 8 * len(state.evidence)
    assert all(len(e.samples) == 8 for e in state.evidence)


def test_outcome_criteria_judge_statuses_and_not_run_is_untestable():
    criterion = Criterion(Kind.OUTCOME, ("passed",), ("error",))
    assert criterion.judge(["passed"])[0] == GOOD
    assert criterion.judge(["timeout"])[0] == BAD
    assert criterion.judge(["not_run"])[0] == UNTESTABLE


def test_the_whole_search_resumes_under_a_probe_budget():
    probe = cost_probe(lambda moved: 130.0 if "opslib" in moved else 100.0)

    def bisect_probe(vector):
        commit = vector["opslib"].commit
        return 130.0 if commit.endswith("c9") or int(commit.rsplit("c", 1)[1]) >= 6 else 100.0
    state = start_search(GOOD_V, BAD_V, EXACT)
    state = run(state, probe, FakeHistory(), max_probes=2)
    assert not state.done and state.probes == 2
    state = CulpritSearch.from_dict(json.loads(json.dumps(state.to_dict())))
    state = run(state, bisect_probe, FakeHistory())
    assert state.done
    assert [b.result.first_bad for b in state.bisections] == ["opslib-c6"]
    assert "opslib" in state.describe()


def test_a_module_that_appeared_is_named_but_not_bisected():
    bad = {**GOOD_V, "serving": mv("serving", 1)}
    state = run(start_search(GOOD_V, bad, EXACT), cost_probe(lambda moved: 0.0), FakeHistory())
    assert state.done and state.modules.verdict.modules == ("serving",)
    assert state.bisections == ()
