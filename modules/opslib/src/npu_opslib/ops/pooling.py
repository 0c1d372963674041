"""Pooling beyond max and average: Lp pooling (windowed and global) and MaxUnpool."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel
from npu_opslib.ops import windows
from npu_opslib.ops.nn import GlobalPool, Pool, _kernel_shape


@register_kernel
class LpPool(Pool):
    """(sum over the window of |x|^p)^(1/p); padding counts as zeros."""

    op_type = "LpPool"

    def _run(self, x, p=2, **attrs):
        out, begin, end, strides, dilations = self._pool_geometry(x.shape, attrs)
        kernel = _kernel_shape(attrs)
        powered = np.abs(x.astype(np.float64)) ** p
        xp = windows.padded(powered, begin, end, out, kernel, strides, dilations)
        sums = windows.reduce_windows(xp, out, kernel, strides, dilations, np.add)
        return ((sums ** (1.0 / p)).astype(x.dtype),)


@register_kernel
class GlobalLpPool(GlobalPool):
    op_type = "GlobalLpPool"

    def _run(self, x, p=2):
        axes = tuple(range(2, x.ndim))
        sums = (np.abs(x.astype(np.float64)) ** p).sum(axis=axes, keepdims=True)
        return ((sums ** (1.0 / p)).astype(x.dtype),)


@register_kernel
class MaxUnpool(Kernel):
    """Scatters pooled values back to the flat positions MaxPool's indices name; the output
    shape is the pooling's input shape (or the output_shape input)."""

    op_type = "MaxUnpool"
    layouts = ("NCHW",)

    def _run(self, x, indices, output_shape=None, *, kernel_shape, strides=None, pads=None):
        if output_shape is not None:
            shape = tuple(int(d) for d in np.asarray(output_shape).reshape(-1))
        else:
            shape = tuple(x.shape[:2]) + tuple(self._spatial(x.shape, kernel_shape, strides,
                                                             pads))
        y = np.zeros(int(np.prod(shape)), dtype=x.dtype)
        flat = np.asarray(indices, dtype=np.int64).reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= y.size):
            raise KernelError(f"MaxUnpool: index outside the output of {y.size} elements")
        y[flat] = x.reshape(-1)
        return (y.reshape(shape),)

    @staticmethod
    def _spatial(x_shape, kernel_shape, strides, pads):
        n = len(kernel_shape)
        strides = list(strides or [1] * n)
        pads = list(pads or [0] * (2 * n))
        return [(size - 1) * s + k - pads[i] - pads[i + n]
                for i, (size, k, s) in enumerate(zip(x_shape[2:], kernel_shape, strides))]

    def output_shapes(self, key, attrs):
        return [tuple(key.shapes[0][:2]) + tuple(self._spatial(
            key.shapes[0], attrs["kernel_shape"], attrs.get("strides"), attrs.get("pads")))]

    def cost(self, sku, key, config, attrs):
        written = int(np.prod(self.output_shapes(key, attrs)[0]))
        itemsize = costs.itemsize(key.precision)
        read = int(np.prod(key.shapes[0])) * (itemsize + 8)
        return costs.vector(sku, key.precision, written, 0, bytes_read=read,
                            bytes_written=written * itemsize)
