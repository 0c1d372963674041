"""Sliding-window geometry shared by convolution and pooling (ONNX's pads, auto_pad, ceil)."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from npu_opslib.errors import KernelError


def geometry(in_spatial, kernel, strides=None, pads=None, dilations=None, auto_pad="NOTSET",
             ceil_mode=0):
    """(out_spatial, pads_begin, pads_end, strides, dilations) of a window op."""
    n = len(in_spatial)
    strides = list(strides or [1] * n)
    dilations = list(dilations or [1] * n)
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    begin, end, out = [0] * n, [0] * n, [0] * n
    for i in range(n):
        extent = (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out[i] = math.ceil(in_spatial[i] / strides[i])
            total = max((out[i] - 1) * strides[i] + extent - in_spatial[i], 0)
            small, large = total // 2, total - total // 2
            begin[i], end[i] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
            continue
        if auto_pad == "VALID":
            begin[i] = end[i] = 0
        elif auto_pad in ("NOTSET", ""):
            given = list(pads or [0] * (2 * n))
            begin[i], end[i] = given[i], given[i + n]
        else:
            raise KernelError(f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, "
                              "SAME_LOWER, VALID")
        span = in_spatial[i] + begin[i] + end[i] - extent
        if span < 0:
            raise KernelError(f"window {extent} larger than padded input "
                              f"{in_spatial[i] + begin[i] + end[i]}")
        if ceil_mode:
            out[i] = math.ceil(span / strides[i]) + 1
            # The last window must start inside the input or its left padding.
            if (out[i] - 1) * strides[i] >= in_spatial[i] + begin[i]:
                out[i] -= 1
        else:
            out[i] = span // strides[i] + 1
    return out, begin, end, strides, dilations


def padded(x, begin, end, out_spatial, kernel, strides, dilations, value=0.0):
    """`x` padded so that every window of the output lies inside it (ceil_mode may need more
    padding at the end than `end`)."""
    widths = [(0, 0), (0, 0)]
    for i, size in enumerate(x.shape[2:]):
        needed = (out_spatial[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
        widths.append((begin[i], max(end[i], needed - size - begin[i])))
    if all(w == (0, 0) for w in widths):
        return x
    return np.pad(x, widths, mode="constant", constant_values=value)


def windows(xp, out_spatial, kernel, strides, dilations):
    """A strided view [N, C, *out_spatial, *kernel] of the windows of padded input `xp`."""
    n_spatial = len(kernel)
    base = xp.strides[2:]
    shape = xp.shape[:2] + tuple(out_spatial) + tuple(kernel)
    strides_ = xp.strides[:2] + tuple(base[i] * strides[i] for i in range(n_spatial)) + tuple(
        base[i] * dilations[i] for i in range(n_spatial))
    return as_strided(xp, shape=shape, strides=strides_, writeable=False)


def reduce_windows(xp, out_spatial, kernel, strides, dilations, combine):
    """Combine (np.maximum, np.add) the windows of `xp` into [N, C, *out_spatial]: one
    vectorized op per kernel offset, which beats reducing tiny trailing window axes."""
    result = None
    for offset in np.ndindex(*kernel):
        index = (slice(None), slice(None)) + tuple(
            slice(o * d, o * d + (n - 1) * s + 1, s)
            for o, d, n, s in zip(offset, dilations, out_spatial, strides))
        window = xp[index]
        result = window.copy() if result is None else combine(result, window, out=result)
    return result


def argmax_windows(xp, out_spatial, kernel, strides, dilations):
    """The window maxima of `xp` and, per spatial axis, the padded coordinate each came from
    (the first in row-major window order on ties)."""
    best = None
    where = None
    grids = [np.arange(n).reshape((-1,) + (1,) * (len(kernel) - 1 - i)) * s
             for i, (n, s) in enumerate(zip(out_spatial, strides))]
    for offset in np.ndindex(*kernel):
        index = (slice(None), slice(None)) + tuple(
            slice(o * d, o * d + (n - 1) * s + 1, s)
            for o, d, n, s in zip(offset, dilations, out_spatial, strides))
        window = xp[index]
        coords = [g + o * d for g, o, d in zip(grids, offset, dilations)]
        if best is None:
            best = window.copy()
            where = [np.broadcast_to(c, best.shape).copy() for c in coords]
            continue
        better = window > best
        best = np.where(better, window, best)
        where = [np.where(better, c, w) for c, w in zip(coords, where)]
    return best, where
