"""im2col's same-width fast path against the windows of the explicitly padded input."""

import numpy as np
import pytest

from npu_opslib.ops import windows


def reference_cols(x, begin, end, out_spatial, kernel, dilations):
    xp = windows.padded(x, begin, end, out_spatial, kernel, [1, 1], dilations)
    view = windows.windows(xp, out_spatial, kernel, [1, 1], dilations)
    return np.ascontiguousarray(view.transpose(0, 1, 4, 5, 2, 3))


@pytest.mark.parametrize("kernel,dilations,top,bottom,left", [
    ((3, 3), (1, 1), 1, 1, 1),  # the common 'same' 3x3
    ((5, 5), (1, 1), 2, 2, 2),
    ((1, 4), (1, 2), 0, 0, 0),  # every shift beyond the row: whole columns of padding
    ((2, 3), (2, 1), 0, 3, 2),  # asymmetric, left-heavy padding
    ((3, 2), (1, 1), 2, 0, 1),
])
@pytest.mark.parametrize("shape", [(1, 3, 6, 5), (2, 2, 4, 1)])
def test_same_width_im2col_matches_padded_windows(kernel, dilations, top, bottom, left, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    right = (kernel[1] - 1) * dilations[1] - left
    out_spatial = [shape[2] + top + bottom - (kernel[0] - 1) * dilations[0], shape[3]]
    args = ([top, left], [bottom, right], out_spatial, list(kernel), [1, 1], list(dilations))
    assert windows._same_width_rows(x, *args)
    windows.scratch("padded", (4096,), np.float32)[:] = np.nan  # stale scratch must not leak
    cols = windows.im2col(x, *args)
    expected = reference_cols(x, [top, left], [bottom, right], out_spatial, kernel, dilations)
    np.testing.assert_array_equal(cols, expected)


def naive_max_windows(xp, out_spatial, kernel, strides, dilations):
    out = np.full(xp.shape[:2] + tuple(out_spatial), -np.inf, xp.dtype)
    for index in np.ndindex(*out_spatial):
        where = (slice(None), slice(None)) + index
        for offset in np.ndindex(*kernel):
            cell = tuple(i * s + o * d for i, s, o, d in zip(index, strides, offset, dilations))
            out[where] = np.maximum(out[where], xp[(slice(None), slice(None)) + cell])
    return out


@pytest.mark.parametrize("spatial", [1, 2, 3])
def test_max_windows_matches_the_naive_maximum_over_each_window(spatial):
    rng = np.random.default_rng(spatial)
    for _ in range(25):
        kernel = [int(k) for k in rng.integers(1, 4, spatial)]
        strides = [int(s) for s in rng.integers(1, 4, spatial)]
        dilations = [int(d) for d in rng.integers(1, 3, spatial)]
        size = [int(rng.integers((k - 1) * d + 1, (k - 1) * d + 9))
                for k, d in zip(kernel, dilations)]
        out_spatial = [(n - (k - 1) * d - 1) // s + 1
                       for n, k, d, s in zip(size, kernel, dilations, strides)]
        xp = rng.standard_normal([2, 3] + size).astype(np.float32)
        for name in ("pool_max", "pool_starts0", "pool_starts1"):  # stale scratch must not leak
            windows.scratch(name, (4096,), np.float32)[:] = np.nan
        expected = naive_max_windows(xp, out_spatial, kernel, strides, dilations)
        np.testing.assert_array_equal(
            windows.max_windows(xp, out_spatial, kernel, strides, dilations), expected)
        into = np.empty_like(expected)
        windows.max_windows(xp, out_spatial, kernel, strides, dilations, into)
        np.testing.assert_array_equal(into, expected)
