"""Regression objects: states and transitions, stable ids, storage round trips, dedupe of
later nights' findings, and the return to good that fixes one."""

import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from stackci.errors import UsageError
from stackci.regressions import (
    ALLOWED, ModuleVersion, Point, Regression, Series, SeriesKey, State, back_to_good,
    criterion_for, detect, from_finding, new_findings, op_diff, parse_state, start_search,
    transition)

T0 = datetime(2026, 11, 1, 2, 0)
V1 = {"compiler": ModuleVersion("1.5.0", "aaa", "t1")}
V2 = {"compiler": ModuleVersion("1.6.0", "bbb", "t2")}


def cycles_series(values, vectors):
    key = SeriesKey("resnet", "npu-edge", "fp32", "total_cycles", "master")
    return Series.of(key, [Point(i + 1, T0 + timedelta(days=i), v, x)
                           for i, (x, v) in enumerate(zip(values, vectors))])


def a_regression():
    [finding] = detect(cycles_series([100.0, 130.0], [V1, V2]))
    ops_a = [{"name": "conv1", "op_type": "Conv", "kernel": "conv_direct", "cycles": 100}]
    ops_b = [{"name": "conv1", "op_type": "Conv", "kernel": "conv_im2col", "cycles": 130}]
    return from_finding(finding, T0, op_diff(ops_a, ops_b))


def test_allowed_transitions_and_a_one_line_error_otherwise():
    regression = a_regression()
    assert regression.state is State.NEW and regression.open
    acked = transition(regression, "acknowledged", T0, by="alice", note="looking")
    fixed = transition(acked, State.FIXED, T0 + timedelta(days=1), by="nightly")
    assert not fixed.open
    assert [(t.before, t.after) for t in fixed.history] == \
        [(State.NEW, State.ACKNOWLEDGED), (State.ACKNOWLEDGED, State.FIXED)]
    with pytest.raises(UsageError, match="is fixed: it cannot become acknowledged"):
        transition(fixed, State.ACKNOWLEDGED, T0)
    with pytest.raises(UsageError, match="allowed: acknowledged, false_positive, fixed"):
        transition(transition(regression, "confirmed", T0), "new", T0)
    assert ALLOWED[State.FALSE_POSITIVE] == frozenset()


def test_states_parse_as_the_cli_spells_them():
    assert parse_state("false-positive") is State.FALSE_POSITIVE
    with pytest.raises(UsageError, match="unknown regression state 'closed'"):
        parse_state("closed")


def test_a_regression_round_trips_through_json_with_its_search():
    regression = a_regression()
    search = start_search(regression.last_good.vector, regression.first_bad.vector,
                          criterion_for(regression))
    stored = Regression(**{**regression.__dict__, "search": search})
    back = Regression.from_dict(json.loads(json.dumps(stored.to_dict())))
    assert back == stored
    assert back.culprit_modules() == ("compiler",)
    assert back.op_diff.changes[0].relabelled("kernel")


def test_the_id_is_stable_and_later_nights_do_not_raise_it_again():
    first = a_regression()
    assert a_regression().id == first.id
    history = cycles_series([100.0, 130.0, 130.0, 130.0], [V1, V2, V2, V2])
    again = detect(history)
    assert new_findings(again, [first], {history.key: history}) == []


def test_a_wall_clock_change_point_that_moves_by_a_run_is_the_same_change():
    rng = np.random.default_rng(5)
    key = SeriesKey("resnet", "npu-edge", "fp32", "compile_s", "master")
    values = list(2.0 * np.exp(rng.normal(0, 0.03, 40)))
    values[25:] = [v * 1.3 for v in values[25:]]
    points = [Point(i + 1, T0 + timedelta(days=i), V1 if i < 25 else V2, v)
              for i, v in enumerate(values)]
    series = Series.of(key, points)
    [finding] = detect(series)
    known = from_finding(finding, T0)
    shifted = type(finding)(**{**finding.__dict__, "first_bad": points[finding.first_bad.run_id]})
    assert new_findings([shifted], [known], {key: series}) == []


def test_back_to_good_fixes_exact_and_outcome_regressions():
    regression = a_regression()
    still = cycles_series([100.0, 130.0, 130.0], [V1, V2, V2])
    assert back_to_good(regression, still) is None
    reverted = cycles_series([100.0, 130.0, 100.0], [V1, V2, V1])
    assert back_to_good(regression, reverted).run_id == 3


def test_back_to_good_for_outcomes_skips_not_run():
    key = SeriesKey("resnet", "npu-edge", "fp32", "outcome", "master")
    statuses = ["passed", "error", "not_run"]
    series = Series.of(key, [Point(i + 1, T0 + timedelta(days=i), V2, None, s)
                             for i, s in enumerate(statuses)])
    [finding] = detect(series)
    flip = from_finding(finding, T0)
    assert back_to_good(flip, series) is None
    later = Series.of(key, [*series.points, Point(4, T0 + timedelta(days=3), V1, None)])
    assert back_to_good(flip, later).run_id == 4


def test_back_to_good_for_wall_clock_needs_min_size_runs_near_the_old_level():
    rng = np.random.default_rng(11)
    key = SeriesKey("resnet", "npu-edge", "fp32", "compile_s", "master")
    values = list(2.0 * np.exp(rng.normal(0, 0.03, 30)))
    values[20:] = [v * 1.3 for v in values[20:]]
    vectors = [V1 if i < 20 else V2 for i in range(30)]
    points = [Point(i + 1, T0 + timedelta(days=i), v, x)
              for i, (x, v) in enumerate(zip(values, vectors))]
    [finding] = detect(Series.of(key, points))
    regression = from_finding(finding, T0)
    assert back_to_good(regression, Series.of(key, points)) is None
    # The median of the newest min_size (4) runs decides: one run back is a spike, not a fix.
    reverted = points + [Point(31, T0 + timedelta(days=30), V1, 2.0)]
    assert back_to_good(regression, Series.of(key, reverted)) is None
    reverted += [Point(32 + i, T0 + timedelta(days=31 + i), V1, 2.01 + 0.01 * i)
                 for i in range(2)]
    assert back_to_good(regression, Series.of(key, reverted)).run_id == 33
