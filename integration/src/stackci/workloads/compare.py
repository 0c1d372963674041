"""Per-output comparison of the stack's outputs against the reference."""

from __future__ import annotations

import numpy as np


def compare_outputs(actual: dict, expected: dict, atol: float, rtol: float,
                    min_cosine: float | None = None) -> list[dict]:
    """One entry per expected output (then any unexpected ones), in the reference's order.

    `match` is `np.allclose(actual, expected, atol, rtol)` with equal shapes, or with
    `min_cosine` (reduced precision such as int8, where single elements may be far off but
    the output must point the same way) `cosine_similarity >= min_cosine`; a missing output,
    a different shape or dtype is a mismatch with a `reason`. Every compared entry carries
    its `cosine_similarity`.
    """
    results = [_compare_one(name, actual.get(name), np.asarray(want), atol, rtol, min_cosine)
               for name, want in expected.items()]
    for name in actual:
        if name not in expected:
            got = np.asarray(actual[name])
            results.append(_entry(name, got, None, None, False,
                                  "not an output of the reference model"))
    return results


def _compare_one(name, got, want: np.ndarray, atol: float, rtol: float,
                 min_cosine: float | None) -> dict:
    if got is None:
        return _entry(name, want, None, None, False, "missing from the stack's outputs")
    got = np.asarray(got)
    if got.shape != want.shape:
        return _entry(name, got, None, None, False,
                      f"shape {list(got.shape)} differs from expected {list(want.shape)}")
    if got.dtype != want.dtype:
        return _entry(name, got, None, None, False,
                      f"dtype {got.dtype} differs from expected {want.dtype}")
    if got.size == 0:
        return _entry(name, got, 0.0, 0.0, True)
    # Flat copies: a scalar (0-d) output compares like any other (item assignment below).
    got64, want64 = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    abs_error = np.abs(got64 - want64)
    # NaN where NaN is expected, and equal infinities, are right (inf - inf would be NaN)
    abs_error[(np.isnan(got64) & np.isnan(want64)) | (got64 == want64)] = 0.0
    tiny = np.finfo(want.dtype).tiny if np.issubdtype(want.dtype, np.floating) else 1.0
    rel_error = abs_error / np.maximum(np.abs(want64), tiny)
    cosine = cosine_similarity(got64, want64)
    if min_cosine is None:
        match = bool(np.allclose(got64, want64, atol=atol, rtol=rtol, equal_nan=True))
    else:
        match = cosine is not None and cosine >= min_cosine
    entry = _entry(name, got, _max(abs_error), _max(rel_error), match)
    entry["cosine_similarity"] = cosine
    return entry


def cosine_similarity(got: np.ndarray, want: np.ndarray) -> float | None:
    """<got, want> / (|got| |want|) over all elements; 1.0 when both are zero, None when
    either has a NaN or infinity (no direction to compare)."""
    got, want = got.ravel().astype(np.float64), want.ravel().astype(np.float64)
    if not (np.isfinite(got).all() and np.isfinite(want).all()):
        return None
    norms = float(np.linalg.norm(got)) * float(np.linalg.norm(want))
    if norms == 0.0:
        return 1.0 if not got.any() and not want.any() else 0.0
    return float(np.clip(np.dot(got, want) / norms, -1.0, 1.0))


def _max(errors: np.ndarray) -> float:
    """The largest error; NaN (a NaN on one side only) counts as infinitely wrong."""
    if np.isnan(errors).any():
        return float("inf")
    return float(errors.max())


def _entry(name, array, max_abs, max_rel, match, reason=None) -> dict:
    entry = {
        "name": name,
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "max_abs_error": max_abs,
        "max_rel_error": max_rel,
        "match": match,
    }
    if reason:
        entry["reason"] = reason
    return entry
