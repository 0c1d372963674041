"""Detection: exact changes and determinism bugs, outcome flips, noise-aware wall-clock."""

from datetime import datetime, timedelta

import numpy as np
import pytest

from stackci.errors import UsageError
from stackci.regressions import (
    FindingKind, ModuleVersion, Point, Series, SeriesKey, change_points, detect, detect_all,
    kind_of, lookup)
from stackci.regressions.metrics import Direction, Kind

T0 = datetime(2026, 11, 1, 2, 0)


def vector(**trees):
    return {m: ModuleVersion("1.0.0", f"c-{tree}", tree) for m, tree in trees.items()}


V1 = vector(driver="d1", compiler="k1")
V2 = vector(driver="d1", compiler="k2")


def series(metric, values, vectors=None, statuses=None, kinds=None, track="master"):
    key = SeriesKey("resnet", "npu-edge", "fp32", metric, track)
    points = []
    for i, value in enumerate(values):
        points.append(Point(i + 1, T0 + timedelta(days=i), (vectors or [V1] * len(values))[i],
                            value, (statuses or ["passed"] * len(values))[i],
                            (kinds or [""] * len(values))[i]))
    return Series.of(key, points)


def test_the_registry_knows_kinds_and_directions():
    assert kind_of("total_cycles").kind is Kind.DETERMINISTIC
    assert kind_of("compile_s").kind is Kind.WALL_CLOCK
    assert kind_of("speed_ratio").direction is Direction.HIGHER_IS_WORSE
    assert kind_of("conformance_passed").direction is Direction.LOWER_IS_WORSE
    assert kind_of("conformance_unsupported").direction is Direction.HIGHER_IS_WORSE
    assert kind_of("opslib_kernels").kind is Kind.DETERMINISTIC
    assert lookup("nobody_registered_this") is None
    with pytest.raises(UsageError, match="unknown metric 'nope'"):
        kind_of("nope")
    assert detect(series("nobody_registered_this", [1, 2], [V1, V2])) == []


def test_any_exact_change_between_vectors_is_reported_with_its_size():
    [finding] = detect(series("total_cycles", [1000, 1000, 1001], [V1, V1, V2]))
    assert finding.kind is FindingKind.CHANGE and finding.regressed
    assert (finding.last_good.run_id, finding.first_bad.run_id) == (2, 3)
    assert finding.size.absolute == 1 and finding.size.relative == pytest.approx(0.001)
    assert "compiler" in finding.summary


def test_an_improvement_is_a_change_but_not_a_regression():
    [finding] = detect(series("total_cycles", [1000, 900], [V1, V2]))
    assert not finding.regressed
    assert detect_all([series("total_cycles", [1000, 900], [V1, V2])]) == []
    [higher_is_better] = detect(series("throughput_per_s", [50.0, 40.0], [V1, V2]))
    assert higher_is_better.regressed


def test_two_runs_of_the_same_vector_that_agree_give_nothing():
    assert detect(series("total_cycles", [1000, 1000, 1000])) == []


def test_the_same_vector_measuring_differently_is_a_determinism_bug():
    # Back at V1 after V2 with another value: a revert that did not restore the figure.
    found = detect(series("peak_device_bytes", [64, 80, 65], [V1, V2, V1]))
    kinds = [f.kind for f in found]
    assert kinds.count(FindingKind.DETERMINISM) == 1
    bug = next(f for f in found if f.kind is FindingKind.DETERMINISM)
    assert (bug.last_good.run_id, bug.first_bad.run_id) == (1, 3)
    assert "determinism bug" in bug.summary


def test_a_different_lock_is_not_the_same_vector():
    key = SeriesKey("resnet", "npu-edge", "fp32", "total_cycles", "master")
    a = Point(1, T0, V1, 100.0, environment="lock-a")
    b = Point(2, T0 + timedelta(days=1), V1, 101.0, environment="lock-b")
    [finding] = detect(Series.of(key, [a, b]))
    assert finding.kind is FindingKind.CHANGE and "the environment" in finding.summary


@pytest.mark.parametrize("status,kind,words", [
    ("failed", "", "wrong answer"), ("error", "unsupported-operator", "unsupported operator"),
    ("error", "out-of-memory", "device memory"), ("timeout", "timeout", "timed out")])
def test_outcome_flips(status, kind, words):
    [flip] = detect(series("outcome", [None] * 3, [V1, V1, V2], ["passed", "not_run", status],
                           ["", "", kind]))
    assert flip.kind is FindingKind.OUTCOME and words in flip.summary
    assert (flip.last_good.run_id, flip.first_bad.run_id) == (1, 3)


def test_not_run_is_never_a_regression():
    assert detect(series("outcome", [None] * 3, None, ["passed", "not_run", "passed"])) == []
    assert detect(series("outcome", [None] * 2, None, ["not_run", "failed"])) == []
    assert detect(series("total_cycles", [100, None], [V1, V2], ["passed", "not_run"])) == []


# -- wall-clock --------------------------------------------------------------------------------

def stored_like_history(seed, n=45, cv=0.06, spikes=(11, 30)):
    """Nightly compile times: lognormal noise around 2.4 s, a few load spikes."""
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.log(1 + cv * cv))
    values = 2.4 * np.exp(rng.normal(0, sigma, n))
    for at in spikes:
        values[at] *= 2.5
    return values


def vectors_for(n, step_at=None):
    return [V2 if step_at is not None and i >= step_at else V1 for i in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_wall_clock_noise_without_a_step_gives_no_alert(seed):
    values = stored_like_history(seed)
    assert detect(series("compile_s", list(values), vectors_for(len(values)))) == []


@pytest.mark.parametrize("seed", range(5))
def test_a_20_percent_wall_clock_step_gives_one_alert_at_the_step(seed):
    values = stored_like_history(seed)
    values[30:] *= 1.2
    [finding] = detect(series("compile_s", list(values), vectors_for(len(values), 30)))
    assert finding.first_bad.run_id == 31 and finding.regressed
    assert finding.size.relative == pytest.approx(0.2, abs=0.06)
    assert finding.evidence["pvalue"] < 0.001 and "compiler" in finding.summary


def test_a_single_spike_is_not_a_change_and_a_new_level_needs_min_size_runs():
    rng = np.random.default_rng(7)
    flat = list(1.0 + rng.uniform(-0.01, 0.01, 24))
    spiked = list(flat)
    spiked[10] = 5.0
    assert change_points(spiked) == []
    stepped = flat + [1.5, 1.51, 1.49]          # three runs at the new level: not yet
    assert change_points(stepped) == []
    [cp] = change_points(stepped + [1.502])     # the fourth confirms it
    assert cp.index == len(flat)


def test_wall_clock_values_must_be_positive():
    with pytest.raises(UsageError, match="positive"):
        change_points([1.0, 0.0, 1.0])


def test_a_wall_clock_step_with_no_module_moved_is_the_machine_not_a_regression():
    values = stored_like_history(2)
    values[30:] *= 1.3
    [finding] = detect(series("compile_s", list(values), vectors_for(len(values))))
    assert not finding.regressed and finding.evidence["machine"]
    assert "the machine, not the code" in finding.summary
    assert detect_all([series("compile_s", list(values), vectors_for(len(values)))]) == []


def test_a_change_point_a_run_off_the_version_change_is_moved_onto_it():
    values = stored_like_history(3)
    values[30:] *= 1.3
    [finding] = detect(series("compile_s", list(values), vectors_for(len(values), 31)))
    assert finding.first_bad.run_id == 32 and finding.first_bad.vector == V2
    assert finding.last_good.vector == V1 and finding.regressed
