"""Reductions, arg-reductions, scans and top-k (the vector unit).

Reduction axes are an attribute up to opset 12 (ReduceSum) or 17 (the others) and an optional
input after; both forms are accepted. An empty or absent axes list reduces every axis, unless
`noop_with_empty_axes` asks for the identity.
"""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel


def _axes(x, axes_input, axes, noop_with_empty_axes):
    """The axes to reduce as a tuple, or None for 'none at all'."""
    given = axes_input if axes_input is not None else axes
    values = [] if given is None else [int(a) for a in np.asarray(given).reshape(-1)]
    if not values:
        return None if noop_with_empty_axes else tuple(range(x.ndim))
    return tuple(sorted({a % max(x.ndim, 1) for a in values}))


class Reduce(Kernel):
    """Subclasses define `reduce(x, axes, keepdims)` in float64 or the input's integer type."""

    def _run(self, x, axes_input=None, keepdims=1, noop_with_empty_axes=0, axes=None):
        chosen = _axes(x, axes_input, axes, noop_with_empty_axes)
        if chosen is None:
            return (self.identity(x),)
        y = self.reduce(x, chosen, bool(keepdims))
        return (np.asarray(y).astype(x.dtype, copy=False),)

    def identity(self, x):
        return x.copy()

    def reduce(self, x, axes, keepdims):
        raise NotImplementedError

    def output_shapes(self, key, attrs):
        # The axes may arrive as an input whose value the key does not carry: the output
        # is at most the input, which bounds the write traffic.
        return [key.shapes[0]]

    def cost(self, sku, key, config, attrs):
        elements = int(np.prod(key.shapes[0]))
        itemsize = costs.itemsize(key.precision)
        return costs.vector(sku, key.precision, elements, self.ops_per_element,
                            bytes_read=elements * itemsize, bytes_written=itemsize)


def _extreme(x, largest: bool):
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        return info.min if largest else info.max
    if x.dtype == np.bool_:
        return not largest
    return -np.inf if largest else np.inf


def _reduction(op_type, reduce, ops_per_element=1, identity=None):
    attrs = {"op_type": op_type, "ops_per_element": ops_per_element,
             "reduce": lambda self, x, axes, keepdims: reduce(x, axes, keepdims)}
    if identity is not None:
        attrs["identity"] = lambda self, x: identity(x)
    return register_kernel(type(op_type, (Reduce,), attrs))


def _wide(x):
    """Float inputs accumulate in float64; integers in their own type (as ONNX wraps them)."""
    return x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x


ReduceSum = _reduction("ReduceSum", lambda x, a, k: np.sum(_wide(x), axis=a, keepdims=k))
ReduceMean = _reduction("ReduceMean", lambda x, a, k: np.mean(_wide(x), axis=a, keepdims=k))
ReduceProd = _reduction("ReduceProd", lambda x, a, k: np.prod(_wide(x), axis=a, keepdims=k))
ReduceMax = _reduction("ReduceMax", lambda x, a, k: np.max(
    x, axis=a, keepdims=k, initial=_extreme(x, True)))
ReduceMin = _reduction("ReduceMin", lambda x, a, k: np.min(
    x, axis=a, keepdims=k, initial=_extreme(x, False)))
ReduceL1 = _reduction("ReduceL1", lambda x, a, k: np.sum(np.abs(_wide(x)), axis=a, keepdims=k))
ReduceL2 = _reduction("ReduceL2", lambda x, a, k: np.sqrt(np.sum(
    np.square(_wide(x)), axis=a, keepdims=k)), 2)
ReduceSumSquare = _reduction("ReduceSumSquare", lambda x, a, k: np.sum(
    np.square(_wide(x)), axis=a, keepdims=k), 2)
ReduceLogSum = _reduction("ReduceLogSum", lambda x, a, k: np.log(np.sum(
    _wide(x), axis=a, keepdims=k)), 2)
ReduceLogSumExp = _reduction("ReduceLogSumExp", lambda x, a, k: _logsumexp(x, a, k), 5)


def _logsumexp(x, axes, keepdims):
    x = x.astype(np.float64)
    if x.size == 0:
        return np.log(np.sum(np.exp(x), axis=axes, keepdims=keepdims))
    peak = np.max(x, axis=axes, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)
    y = np.log(np.sum(np.exp(x - peak), axis=axes, keepdims=True)) + peak
    return y if keepdims else np.squeeze(y, axis=axes)


class ArgReduce(Kernel):
    largest = True

    def _run(self, x, axis=0, keepdims=1, select_last_index=0):
        axis = int(axis) % max(x.ndim, 1)
        pick = np.argmax if self.largest else np.argmin
        if select_last_index:
            flipped = np.flip(x, axis=axis)
            index = x.shape[axis] - 1 - pick(flipped, axis=axis)
        else:
            index = pick(x, axis=axis)
        if keepdims:
            index = np.expand_dims(index, axis)
        return (np.asarray(index, dtype=np.int64),)

    def output_shapes(self, key, attrs):
        shape = list(key.shapes[0])
        axis = int(attrs.get("axis", 0)) % max(len(shape), 1)
        shape[axis] = 1
        return [tuple(shape) if attrs.get("keepdims", 1) else tuple(
            d for i, d in enumerate(shape) if i != axis)]


@register_kernel
class ArgMax(ArgReduce):
    op_type = "ArgMax"


@register_kernel
class ArgMin(ArgReduce):
    op_type = "ArgMin"
    largest = False


class Scan(Kernel):
    """Cumulative sum or product along an axis given as an input."""

    fn = None

    def _run(self, x, axis, exclusive=0, reverse=0):
        axis = int(np.asarray(axis).reshape(-1)[0]) % max(x.ndim, 1)
        y = np.flip(x, axis) if reverse else x
        y = type(self).fn(y, axis=axis, dtype=x.dtype)
        if exclusive:
            identity = np.zeros_like if type(self).fn is np.cumsum else np.ones_like
            head = identity(np.take(y, [0], axis=axis))
            y = np.concatenate([head, np.take(y, np.arange(y.shape[axis] - 1), axis=axis)],
                               axis=axis)
        return (np.flip(y, axis) if reverse else y,)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


@register_kernel
class CumSum(Scan):
    op_type = "CumSum"
    fn = staticmethod(np.cumsum)


@register_kernel
class CumProd(Scan):
    op_type = "CumProd"
    fn = staticmethod(np.cumprod)


@register_kernel
class TopK(Kernel):
    """The k largest (or smallest) along an axis; ties go to the lower index, as ONNX says.
    k is an attribute in opset 9 and an input after."""

    op_type = "TopK"
    ops_per_element = 8

    def _run(self, x, k_input=None, axis=-1, largest=1, sorted=1, k=None):
        count = int(np.asarray(k_input if k_input is not None else k).reshape(-1)[0])
        axis = int(axis) % max(x.ndim, 1)
        if count < 0 or count > x.shape[axis]:
            raise KernelError(f"TopK: k={count} outside [0, {x.shape[axis]}] on axis {axis}")
        # A stable sort of the keys keeps equal values in index order.
        keys = -x if largest else x
        if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.unsignedinteger):
            keys = -x.astype(np.int64) if largest else x.astype(np.int64)
        order = np.argsort(keys, axis=axis, kind="stable")
        indices = np.take(order, np.arange(count), axis=axis)
        values = np.take_along_axis(x, indices, axis=axis)
        return values, indices.astype(np.int64)

    def output_shapes(self, key, attrs):
        return [key.shapes[0], key.shapes[0]]
