"""Winograd F(2x2, 3x3): a host-side shortcut for the functional result of 3x3 convolutions.

The NPU's systolic array computes a convolution directly, and that is what the cost model
prices; on the host, the same result needs 2.25 times fewer multiplications this way (each 4x4
input tile and 3x3 filter are transformed, multiplied pointwise as 16 matmuls over channels,
and transformed back into a 2x2 output tile). It pays on ResNet- and VGG-sized layers (64 or
more channels over 14x14 or more) and loses on small or thin ones, where the transforms cost
more than the saved multiplications; see `applies`. The filter transform is done once, when
the caller declares the weights constant (`Conv.prepack`). Results differ from the direct
computation by float32 rounding only (the transforms reassociate sums).
"""

from __future__ import annotations

import weakref

import numpy as np

from npu_opslib.ops.windows import scratch

# Lavin & Gray's F(2x2, 3x3) matrices: input transform B^T, filter transform G, output A^T.
B_T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
A_T = ((1, 1, 1, 0), (0, 1, -1, -1))

MIN_CHANNELS = 64
MIN_SIDE = 14


def applies(x_shape, w_shape, group, strides, dilations, begin, end) -> bool:
    """Whether a Conv of these shapes and attributes runs faster (and exactly as ONNX defines
    it) through `conv`: batch 1, 3x3, stride and dilation 1, padding 1 all round, one group,
    and big enough for the transforms to pay (measured: `nox -s benchmarks`)."""
    return len(x_shape) == 4 and x_shape[0] == 1 and tuple(w_shape[2:]) == (3, 3) and \
        group == 1 and tuple(strides) == (1, 1) and tuple(dilations) == (1, 1) and \
        tuple(begin) == (1, 1) and tuple(end) == (1, 1) and x_shape[1] >= MIN_CHANNELS and \
        min(x_shape[2:]) >= MIN_SIDE


def filters(w: np.ndarray) -> np.ndarray:
    """G w G^T for every filter, as 16 matrices [16, out channels, in channels] (float64
    arithmetic, stored in w's dtype)."""
    u = np.einsum("ai,kcij,bj->abkc", G, w.astype(np.float64), G)
    return np.ascontiguousarray(u.reshape(16, *w.shape[:2]).astype(w.dtype))


# Prepacked filters, by the weights they were made from. The kernels told that weights are
# constant share them: an engine's plan at each batch size has kernels of its own keys, and a
# server's instance runs one engine per batch size on one device's weights (ResNet-50 with
# plans at 1, 2 and 4 on two instances held 142 MB of filters, six sets of what two are). An
# entry lives as long as the array that owns the weights' memory (a device allocation's
# storage): a finalizer drops it with that owner. Keyed by address alone, as a kernel's own
# dict was, filters outlived their weights (ResNet-50's 23 MB stayed after its last engine
# closed) and a reused address of the same shape would have found another model's filters.
_PREPACKED: dict[tuple, np.ndarray] = {}


def _owner(w: np.ndarray) -> np.ndarray:
    """The ndarray at the root of `w`'s views: its memory lives at least as long as it does."""
    while isinstance(w.base, np.ndarray):
        w = w.base
    return w


def _key(w: np.ndarray) -> tuple:
    return id(_owner(w)), w.__array_interface__["data"][0], w.shape, w.strides, w.dtype.str


def prepack(w: np.ndarray) -> None:
    """Transform constant weights `w` once; `prepacked` finds them while their memory lives."""
    key = _key(w)
    if key in _PREPACKED:
        return
    _PREPACKED[key] = filters(w)
    # (no lock: a dict's item operations are atomic, and a finalizer must not wait on one)
    weakref.finalize(_owner(w), _PREPACKED.pop, key, None)


def prepacked(w: np.ndarray) -> np.ndarray | None:
    """The filters `prepack` made of `w`, or None."""
    return _PREPACKED.get(_key(w))


def _combine(coefficients, parts, out) -> None:
    """out = sum of coefficient * part, for coefficients in {-1, 0, 1}."""
    terms = [(c, p) for c, p in zip(coefficients, parts) if c]
    (c0, p0), (c1, p1) = terms[:2]
    if c0 == c1 == 1:
        np.add(p0, p1, out=out)
    elif c0 == 1:
        np.subtract(p0, p1, out=out)
    else:
        np.subtract(p1, p0, out=out)
    for c, p in terms[2:]:
        (np.add if c == 1 else np.subtract)(out, p, out=out)


def conv(x: np.ndarray, u: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The 3x3, padding-1 convolution of x [1, C, H, W] by the transformed filters `u` into
    out [1, K, H, W]. Works on flat planes so every transform step is one long vectorized
    operation: the input is split by row and column parity (tile (i, j) starts at row 2i-1,
    column 2j-1 of the unpadded input), so the 4x4 tiles' cells are shifted runs of these
    planes, as are the 2x2 output cells of the result planes."""
    _, c, h, w = x.shape
    k = u.shape[1]
    rows, cols = -(-h // 2) + 1, -(-w // 2) + 1  # tiles per axis, plus the spill row/column
    plane = c * rows * cols
    parity = scratch("winograd_in", (2, 2, plane + cols + 1), x.dtype)
    parity[...] = 0
    for ip in range(2):  # padded row 2t + ip is input row 2t + ip - 1
        t0 = 1 - ip
        for jp in range(2):
            s0 = 1 - jp
            dst = parity[ip, jp, :plane].reshape(c, rows, cols)
            ny, nx = -(-(h - (2 * t0 + ip - 1)) // 2), -(-(w - (2 * s0 + jp - 1)) // 2)
            dst[:, t0:t0 + ny, s0:s0 + nx] = x[0, :, 2 * t0 + ip - 1::2, 2 * s0 + jp - 1::2]
    half = scratch("winograd_rows", (4, 2, plane + 1), x.dtype)
    for a in range(4):  # B^T d along rows: tile row i is parity plane i % 2 shifted i // 2
        for jp in range(2):
            _combine(B_T[a], [parity[i % 2, jp, (i // 2) * cols:(i // 2) * cols + plane + 1]
                              for i in range(4)], half[a, jp])
    v = scratch("winograd_v", (4, 4, plane), x.dtype)
    for a in range(4):  # ... then along columns
        parts = [half[a, j % 2, j // 2: j // 2 + plane] for j in range(4)]
        for b in range(4):
            _combine(B_T[b], parts, v[a, b])
    positions = rows * cols
    m = scratch("winograd_m", (16, k, positions), x.dtype)
    np.matmul(u, v.reshape(16, c, positions), out=m)
    m = m.reshape(4, 4, k * positions)
    s = scratch("winograd_s", (2, 4, k * positions), x.dtype)
    for r in range(2):
        _combine(A_T[r], m, s[r])
    y = scratch("winograd_y", (2, 2, k * positions), x.dtype)
    for r in range(2):
        for q in range(2):
            _combine(A_T[q], s[r], y[r, q])
    for r in range(2):  # output row 2i + r, column 2j + q of tile (i, j)
        for q in range(2):
            nr, nq = -(-(h - r) // 2), -(-(w - q) // 2)
            np.copyto(out[0, :, r::2, q::2], y[r, q].reshape(k, rows, cols)[:, :nr, :nq])
    return out
