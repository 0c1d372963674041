"""Sliding-window geometry shared by convolution and pooling (ONNX's pads, auto_pad, ceil)."""

from __future__ import annotations

import math
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from npu_opslib.errors import KernelError

SCRATCH_LIMIT = 64 << 20
"""Bytes: scratch buffers up to this size are kept for reuse (per thread), larger ones are
allocated per call so one large batch does not pin its im2col matrix forever."""

_scratch = threading.local()


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


def scratch(purpose: str, shape, dtype) -> np.ndarray:
    """An uninitialized array for temporary work, reused across calls of this thread with the
    same `purpose`: an im2col matrix is rebuilt per convolution, and a fresh allocation of it
    pays page faults every time."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > SCRATCH_LIMIT:
        return np.empty(shape, dtype)
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    buffer = buffers.get(purpose)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = buffers[purpose] = np.empty(max(nbytes, 1), np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)


def padded_scratch(x, begin, end, out_spatial, kernel, strides, dilations, value=0.0):
    """`padded`, into a scratch buffer: only the border is filled, the interior is one copy
    of `x`."""
    widths = []
    for i, size in enumerate(x.shape[2:]):
        needed = (out_spatial[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
        widths.append((begin[i], max(end[i], needed - size - begin[i])))
    if not any(b or e for b, e in widths):
        return x
    shape = x.shape[:2] + tuple(size + b + e for size, (b, e) in zip(x.shape[2:], widths))
    xp = scratch("padded", shape, x.dtype)
    interior = [slice(None), slice(None)]
    for axis, (size, (b, e)) in enumerate(zip(x.shape[2:], widths), start=2):
        before = [slice(None)] * len(shape)
        before[axis] = slice(0, b)
        xp[tuple(before)] = value
        before[axis] = slice(b + size, None)
        xp[tuple(before)] = value
        interior.append(slice(b, b + size))
    xp[tuple(interior)] = x
    return xp


def im2col(x, begin, end, out_spatial, kernel, strides, dilations) -> np.ndarray:
    """The windows of zero-padded `x` as a scratch matrix [N, C, *kernel, *out_spatial]
    (C-contiguous, so [N, C * prod(kernel), prod(out_spatial)] is a free reshape)."""
    if _same_width_rows(x, begin, end, out_spatial, kernel, strides, dilations):
        return _im2col_flat(x, begin, end, out_spatial, kernel, dilations)
    xp = padded_scratch(x, begin, end, out_spatial, kernel, strides, dilations)
    view = windows(xp, out_spatial, kernel, strides, dilations)
    spatial = len(kernel)
    order = (0, 1) + tuple(range(2 + spatial, 2 + 2 * spatial)) + tuple(range(2, 2 + spatial))
    cols = scratch("im2col", x.shape[:2] + tuple(kernel) + tuple(out_spatial), x.dtype)
    np.copyto(cols, view.transpose(order))
    return cols


def _same_width_rows(x, begin, end, out_spatial, kernel, strides, dilations) -> bool:
    """Whether a 2-D convolution keeps the input's width at stride 1 ('same' padding across):
    then each window row is a contiguous run of the flattened input, see `_im2col_flat`."""
    return x.ndim == 4 and tuple(strides) == (1, 1) and out_spatial[1] == x.shape[3] and \
        begin[1] + end[1] == (kernel[1] - 1) * dilations[1] and \
        out_spatial[0] == x.shape[2] + begin[0] + end[0] - (kernel[0] - 1) * dilations[0]


def _im2col_flat(x, begin, end, out_spatial, kernel, dilations) -> np.ndarray:
    """`im2col` of a same-width stride-1 convolution. With only the rows padded, the window
    cells of kernel offset (i, j) over all output positions are one contiguous run of the flat
    buffer shifted by i rows and j columns, so the copy is of long runs rather than of rows
    of the output's width (a strided copy of short rows is dominated by numpy's per-row
    overhead). A horizontal shift wraps into the neighbouring row; those cells are where the
    left or right padding is, and are zeroed after the copy."""
    n, c, height, width = x.shape
    (kh, kw), (dh, dw), left = kernel, dilations, begin[1]
    rows = height + begin[0] + end[0]
    plane = rows * width
    flat = scratch("padded", (n * c * plane + (kw - 1) * dw,), x.dtype)
    body = flat[left: left + n * c * plane].reshape(n, c, rows, width)
    body[:, :, : begin[0]] = 0
    body[:, :, begin[0] + height:] = 0
    body[:, :, begin[0]: begin[0] + height] = x
    positions = out_spatial[0] * width
    item = flat.itemsize
    view = as_strided(flat, shape=(n, c, kh, kw, positions), writeable=False,
                      strides=(c * plane * item, plane * item, dh * width * item, dw * item, item))
    cols = scratch("im2col", (n, c, kh, kw) + tuple(out_spatial), x.dtype)
    np.copyto(cols.reshape(view.shape), view)
    for j in range(kw):
        shift = j * dw - left  # input column of output column 0
        if shift < 0:
            cols[:, :, :, j, :, : min(-shift, width)] = 0
        elif shift > 0:
            cols[:, :, :, j, :, max(width - shift, 0):] = 0
    return cols


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


def max_windows(xp, out_spatial, kernel, strides, dilations, out=None):
    """`reduce_windows(..., np.maximum)` on the flat buffer of `xp`, one spatial axis at a
    time: shifting the whole buffer by a kernel offset of an axis and taking the maximum
    gives, at every position, the maximum over that axis's window starting there (positions
    whose window crosses a row or channel are never read back). The maximum is exact, so the
    grouping does not change it, and numpy runs one long vectorized loop per kernel offset
    instead of a slow loop over short strided rows. The windows are then read at the
    strides."""
    for axis, (o, k, s, d) in enumerate(zip(out_spatial, kernel, strides, dilations)):
        needed = (o - 1) * s + (k - 1) * d + 1
        if needed > xp.shape[2 + axis]:  # the strided read below would overrun the buffer
            raise KernelError(f"windows of spatial axis {axis} need {needed} elements, the "
                              f"padded input has {xp.shape[2 + axis]}")
    xp = np.ascontiguousarray(xp)
    flat = xp.reshape(-1)
    items = [math.prod(xp.shape[2 + i + 1:]) for i in range(len(kernel))]  # elements per step
    held = None
    for k, d, item in zip(kernel, dilations, items):
        if k == 1:
            continue
        length = flat.size - (k - 1) * d * item
        held = "pool1" if held == "pool0" else "pool0"
        combined = scratch(held, (length,), flat.dtype)
        np.maximum(flat[:length], flat[d * item: d * item + length], out=combined)
        for offset in range(2, k):
            shift = offset * d * item
            np.maximum(combined, flat[shift: shift + length], out=combined)
        flat = combined
    itemsize = flat.itemsize
    shape = xp.shape[:2] + tuple(out_spatial)
    view = as_strided(flat, shape=shape, writeable=False, strides=(
        xp.shape[1] * math.prod(xp.shape[2:]) * itemsize, math.prod(xp.shape[2:]) * itemsize,
        *(s * item * itemsize for s, item in zip(strides, items))))
    if out is None:
        return view.copy()
    np.copyto(out, view)
    return out


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
