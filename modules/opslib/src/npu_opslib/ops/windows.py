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


def im2col(x, begin, end, out_spatial, kernel, strides, dilations, bias_row=False):
    """The windows of zero-padded `x` as a scratch matrix [N, C, *kernel, *out_spatial]
    (C-contiguous, so [N, C * prod(kernel), prod(out_spatial)] is a free reshape). With
    `bias_row` (batch 1) a row of ones follows in the same buffer, and the result is that
    [C * prod(kernel) + 1, prod(out_spatial)] matrix: a weight matrix whose last column is the
    bias then adds it inside the matmul, saving a pass over the output."""
    cols, matrix = _cols_scratch(x, kernel, out_spatial, bias_row)
    if _same_width_rows(x, begin, end, out_spatial, kernel, strides, dilations):
        _im2col_flat(cols, x, begin, end, out_spatial, kernel, dilations)
    else:
        xp = padded_scratch(x, begin, end, out_spatial, kernel, strides, dilations)
        view = windows(xp, out_spatial, kernel, strides, dilations)
        spatial = len(kernel)
        order = (0, 1) + tuple(range(2 + spatial, 2 + 2 * spatial)) + tuple(range(2, 2 + spatial))
        np.copyto(cols, view.transpose(order))
    if matrix is None:
        return cols
    matrix[-1] = 1
    return matrix


def _cols_scratch(x, kernel, out_spatial, bias_row: bool):
    """(the im2col scratch [N, C, *kernel, *out_spatial], None), or with `bias_row` (that
    scratch, the [C * prod(kernel) + 1, prod(out_spatial)] matrix over it and the row after)."""
    shape = x.shape[:2] + tuple(kernel) + tuple(out_spatial)
    if not bias_row:
        return scratch("im2col", shape, x.dtype), None
    if x.shape[0] != 1:
        raise KernelError(f"im2col: a bias row needs batch 1, got batch {x.shape[0]}")
    positions = math.prod(out_spatial)
    matrix = scratch("im2col", (x.shape[1] * math.prod(kernel) + 1, positions), x.dtype)
    return matrix[:-1].reshape(shape), matrix


def _same_width_rows(x, begin, end, out_spatial, kernel, strides, dilations) -> bool:
    """Whether a 2-D convolution keeps the input's width at stride 1 ('same' padding across):
    then each window row is a contiguous run of the flattened input, see `_im2col_flat`."""
    return x.ndim == 4 and tuple(strides) == (1, 1) and out_spatial[1] == x.shape[3] and \
        begin[1] + end[1] == (kernel[1] - 1) * dilations[1] and \
        out_spatial[0] == x.shape[2] + begin[0] + end[0] - (kernel[0] - 1) * dilations[0]


def _im2col_flat(cols, x, begin, end, out_spatial, kernel, dilations) -> None:
    """`im2col` into `cols` for a same-width stride-1 convolution. With only the rows padded,
    the window cells of kernel offset (i, j) over all output positions are one contiguous run
    of the flat buffer shifted by i rows and j columns, so the copy is of long runs rather
    than of rows of the output's width (a strided copy of short rows is dominated by numpy's
    per-row overhead). A horizontal shift wraps into the neighbouring row; those cells are
    where the left or right padding is, and are zeroed after the copy."""
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
    np.copyto(cols.reshape(view.shape), view)
    for j in range(kw):
        shift = j * dw - left  # input column of output column 0
        if shift < 0:
            cols[:, :, :, j, :, : min(-shift, width)] = 0
        elif shift > 0:
            cols[:, :, :, j, :, max(width - shift, 0):] = 0


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
    """`reduce_windows(..., np.maximum)`, one spatial axis at a time on flat buffers. Along an
    axis, shifting the whole buffer by a kernel offset and taking the maximum gives, at every
    position, the maximum over that axis's window starting there (positions whose window
    crosses a row or channel are never read back): numpy runs one long vectorized loop per
    offset instead of a slow loop over short strided rows. Before the next axis, only the
    window starts (every stride-th position) are kept, so the later passes run on a buffer
    the stride times smaller; the last axis is read at its stride into the result. The
    maximum is exact, so the grouping does not change it."""
    for axis, (o, k, s, d) in enumerate(zip(out_spatial, kernel, strides, dilations)):
        needed = (o - 1) * s + (k - 1) * d + 1
        if needed > xp.shape[2 + axis]:  # the strided reads below would overrun the buffer
            raise KernelError(f"windows of spatial axis {axis} need {needed} elements, the "
                              f"padded input has {xp.shape[2 + axis]}")
    current = np.ascontiguousarray(xp)
    last = len(kernel) - 1
    for axis, (o, k, s, d) in enumerate(zip(out_spatial, kernel, strides, dilations)):
        maxed = _shifted_max(current, axis, k, d)
        starts = [slice(None)] * maxed.ndim
        starts[2 + axis] = slice(0, (o - 1) * s + 1, s)
        if axis == last:
            view = maxed[tuple(starts)]
            if out is None:
                return view.copy()
            np.copyto(out, view)
            return out
        shape = list(maxed.shape)
        shape[2 + axis] = o
        # Alternating buffers: with k == 1, `maxed` is the previous axis's starts.
        current = scratch(f"pool_starts{axis % 2}", tuple(shape), maxed.dtype)
        np.copyto(current, maxed[tuple(starts)])
    return out  # no spatial axes: unreachable for a pooling kernel


def _shifted_max(x, axis: int, k: int, d: int) -> np.ndarray:
    """Each position of contiguous `x` holding the maximum of the `k` elements, `d` apart,
    that start there along spatial `axis` (meaningful where that window fits)."""
    if k == 1:
        return x
    flat = x.reshape(-1)
    step = d * math.prod(x.shape[3 + axis:])  # elements between window cells
    length = flat.size - (k - 1) * step
    maxed = scratch("pool_max", (flat.size,), x.dtype)
    np.maximum(flat[:length], flat[step: step + length], out=maxed[:length])
    for offset in range(2, k):
        np.maximum(maxed[:length], flat[offset * step: offset * step + length],
                   out=maxed[:length])
    return maxed.reshape(x.shape)


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
