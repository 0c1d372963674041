import numpy as np
import pytest

from stackci.workloads.compare import compare_outputs


def one(actual, expected, atol=1e-4, rtol=1e-3):
    [entry] = compare_outputs({"y": actual}, {"y": expected}, atol, rtol)
    return entry


def test_equal_outputs_match_with_zero_error():
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    entry = one(values.copy(), values)
    assert entry == {"name": "y", "shape": [2, 3], "dtype": "float32", "max_abs_error": 0.0,
                     "max_rel_error": 0.0, "match": True, "cosine_similarity": 1.0}


def test_cosine_similarity_judges_when_asked():
    expected = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    noisy = expected + np.float32(0.05) * np.random.default_rng(1).standard_normal(1000).astype(
        np.float32)
    (loose,) = compare_outputs({"y": noisy}, {"y": expected}, 1e-5, 1e-3, min_cosine=0.99)
    assert loose["match"] and 0.99 < loose["cosine_similarity"] < 1.0
    (strict,) = compare_outputs({"y": noisy}, {"y": expected}, 1e-5, 1e-3)
    assert not strict["match"] and strict["cosine_similarity"] == loose["cosine_similarity"]
    (opposite,) = compare_outputs({"y": -expected}, {"y": expected}, 1, 1, min_cosine=0.99)
    assert not opposite["match"] and opposite["cosine_similarity"] == pytest.approx(-1.0)
    (broken,) = compare_outputs({"y": np.full(3, np.nan, np.float32)},
                                {"y": np.ones(3, np.float32)}, 1, 1, min_cosine=0.5)
    assert broken["cosine_similarity"] is None and not broken["match"]


def test_errors_are_measured_and_judged_by_allclose():
    expected = np.array([1.0, -2.0, 4.0], dtype=np.float32)
    actual = expected + np.array([0.0, 0.001, -0.002], dtype=np.float32)
    entry = one(actual, expected, atol=0.0, rtol=1e-3)
    assert entry["max_abs_error"] == pytest.approx(0.002, rel=1e-4)
    assert entry["max_rel_error"] == pytest.approx(0.0005, rel=1e-3)
    assert entry["match"] is True
    assert one(actual, expected, atol=0.0, rtol=1e-4)["match"] is False


def test_relative_error_of_a_zero_expectation_is_finite():
    entry = one(np.array([1e-30], np.float32), np.array([0.0], np.float32))
    assert np.isfinite(entry["max_rel_error"]) and entry["max_rel_error"] > 1.0
    assert entry["match"] is True  # within atol


@pytest.mark.parametrize("actual, reason", [
    (np.zeros((2, 3), np.float32), "shape [2, 3] differs from expected [3, 2]"),
    (np.zeros((3, 2), np.float64), "dtype float64 differs from expected float32"),
])
def test_shape_and_dtype_mismatches_fail_with_a_reason(actual, reason):
    entry = one(actual, np.zeros((3, 2), np.float32))
    assert entry["match"] is False and entry["reason"] == reason
    assert entry["max_abs_error"] is None


def test_missing_and_unexpected_outputs_are_mismatches():
    expected = {"a": np.zeros(2, np.float32), "b": np.zeros(2, np.float32)}
    entries = compare_outputs({"a": np.zeros(2, np.float32), "c": np.ones(1, np.float32)},
                              expected, 1e-4, 1e-3)
    by_name = {e["name"]: e for e in entries}
    assert [e["name"] for e in entries] == ["a", "b", "c"]
    assert by_name["a"]["match"] and not by_name["b"]["match"] and not by_name["c"]["match"]
    assert "missing" in by_name["b"]["reason"] and "not an output" in by_name["c"]["reason"]


def test_nan_is_right_only_where_nan_is_expected():
    expected = np.array([np.nan, 1.0], np.float32)
    assert one(expected.copy(), expected)["match"] is True
    assert one(expected.copy(), expected)["max_abs_error"] == 0.0
    wrong = one(np.array([np.nan, np.nan], np.float32), expected)
    assert wrong["match"] is False and wrong["max_abs_error"] == float("inf")


def test_a_scalar_output_is_compared_like_any():
    """PLCMOS's output is one number (shape []): measured and judged, not a crash."""
    entry = one(np.array(3.5, np.float32), np.array(3.5, np.float32))
    assert entry["match"] and entry["max_abs_error"] == 0.0 and entry["shape"] == []
    entry = one(np.array(3.6, np.float32), np.array(3.5, np.float32))
    assert not entry["match"] and abs(entry["max_abs_error"] - 0.1) < 1e-6
