"""Data movement and shape kernels: on the device these are copies (or nothing at all)."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


class Copy(Kernel):
    """A kernel whose device work is one read and one write of its first input."""

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]

    def cost(self, sku, key, config, attrs):
        nbytes = int(np.prod(key.shapes[0])) * costs.itemsize(key.precision)
        return costs.vector(sku, key.precision, int(np.prod(key.shapes[0])), 0,
                            bytes_read=nbytes, bytes_written=nbytes)


@register_kernel
class Reshape(Copy):
    op_type = "Reshape"

    def _run(self, x, shape=None, allowzero=0):
        if shape is None:
            raise KernelError("Reshape: the shape input is required")
        target = _ints(shape)
        if not allowzero:
            target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
        return (np.reshape(x, target).copy(),)


@register_kernel
class Flatten(Copy):
    op_type = "Flatten"

    def _run(self, x, axis=1):
        axis = axis + x.ndim if axis < 0 else axis
        return (x.reshape(int(np.prod(x.shape[:axis])), -1).copy(),)


@register_kernel
class Transpose(Copy):
    op_type = "Transpose"

    def _run(self, x, perm=None):
        return (np.ascontiguousarray(np.transpose(x, perm)),)


@register_kernel
class Unsqueeze(Copy):
    """Axes are an attribute before opset 13 and an input after."""

    op_type = "Unsqueeze"

    def _run(self, x, axes_input=None, axes=None):
        axes = _ints(axes_input if axes_input is not None else axes)
        rank = x.ndim + len(axes)
        shape = list(x.shape)
        for axis in sorted(a % rank for a in axes):
            shape.insert(axis, 1)
        return (x.reshape(shape).copy(),)


@register_kernel
class Squeeze(Copy):
    op_type = "Squeeze"

    def _run(self, x, axes_input=None, axes=None):
        axes = axes_input if axes_input is not None else axes
        if axes is None:
            return (np.squeeze(x).copy(),)
        return (np.squeeze(x, axis=tuple(a % x.ndim for a in _ints(axes))).copy(),)


@register_kernel
class Concat(Kernel):
    op_type = "Concat"

    def _run(self, *inputs, axis=1):
        return self._run_into(None, *inputs, axis=axis)

    def _run_into(self, out, *inputs, axis=1):
        """Straight into the launch's output: where the compiler cannot place the inputs in
        the output in place (a batch above 1), this is the one copy left."""
        if out is None or out.dtype != np.result_type(*inputs):
            return (np.concatenate(inputs, axis=axis),)
        return (np.concatenate(inputs, axis=axis, out=out),)

    def output_shapes(self, key, attrs):
        axis = attrs.get("axis", 1)
        shape = list(key.shapes[0])
        shape[axis] = sum(s[axis] for s in key.shapes)
        return [tuple(shape)]

    def cost(self, sku, key, config, attrs):
        elements = sum(int(np.prod(s)) for s in key.shapes)
        nbytes = elements * costs.itemsize(key.precision)
        return costs.vector(sku, key.precision, elements, 0, bytes_read=nbytes,
                            bytes_written=nbytes)


@register_kernel
class Split(Kernel):
    op_type = "Split"

    def _run(self, x, split_input=None, axis=0, split=None, num_outputs=None):
        sizes = split_input if split_input is not None else split
        if sizes is None:
            # Equal chunks of ceil(size / parts), the last one smaller (opset 18).
            parts = int(num_outputs or 2)
            chunk = -(-x.shape[axis] // parts)
            sizes = [min(chunk, max(x.shape[axis] - i * chunk, 0)) for i in range(parts)]
        points = np.cumsum(_ints(sizes))[:-1]
        return tuple(a.copy() for a in np.split(x, points, axis=axis))

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


@register_kernel
class Slice(Copy):
    op_type = "Slice"

    def _run(self, x, starts=None, ends=None, axes=None, steps=None):
        starts, ends = _ints(starts), _ints(ends)
        axes = _ints(axes) if axes is not None else list(range(len(starts)))
        steps = _ints(steps) if steps is not None else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            index[axis % x.ndim] = slice(start, end, step)
        return (x[tuple(index)].copy(),)


@register_kernel
class Pad(Copy):
    """Pads are an attribute before opset 11 and an input after."""

    op_type = "Pad"

    def _run(self, x, pads_input=None, value_input=None, axes_input=None, mode="constant",
             pads=None, value=0.0):
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = _ints(pads_input if pads_input is not None else pads)
        if value_input is not None and np.size(value_input):
            value = np.asarray(value_input).reshape(-1)[0]
        axes = _ints(axes_input) if axes_input is not None else list(range(x.ndim))
        half = len(pads) // 2
        widths = [(0, 0)] * x.ndim
        for i, axis in enumerate(axes):
            widths[axis % x.ndim] = (pads[i], pads[i + half])
        if any(b < 0 or e < 0 for b, e in widths):
            raise KernelError("Pad: negative pads are not supported")
        if mode == "constant":
            return (np.pad(x, widths, mode="constant", constant_values=value),)
        if mode in ("reflect", "edge", "wrap"):
            return (np.pad(x, widths, mode=mode),)
        raise KernelError(f"Pad: mode {mode!r} is not one of constant, reflect, edge, wrap")


@register_kernel
class Expand(Copy):
    op_type = "Expand"

    def _run(self, x, shape):
        target = np.broadcast_shapes(x.shape, tuple(_ints(shape)))
        return (np.broadcast_to(x, target).copy(),)


class Metadata(Kernel):
    """Kernels whose result is known from shapes and attributes: no data is touched."""


    def cost(self, sku, key, config, attrs):
        return costs.vector(sku, key.precision, 0, 0, bytes_read=0, bytes_written=0)


@register_kernel
class Shape(Metadata):
    op_type = "Shape"

    def _run(self, x, start=0, end=None):
        return (np.array(x.shape[start:end], dtype=np.int64),)


@register_kernel
class Size(Metadata):
    op_type = "Size"

    def _run(self, x):
        return (np.array(x.size, dtype=np.int64),)


@register_kernel
class Constant(Metadata):
    op_type = "Constant"

    def _run(self, value=None, value_float=None, value_floats=None, value_int=None,
             value_ints=None, value_string=None, value_strings=None, sparse_value=None):
        if value is not None:
            return (np.array(value),)
        if value_float is not None:
            return (np.array(value_float, dtype=np.float32),)
        if value_floats is not None:
            return (np.array(value_floats, dtype=np.float32),)
        if value_int is not None:
            return (np.array(value_int, dtype=np.int64),)
        if value_ints is not None:
            return (np.array(value_ints, dtype=np.int64),)
        raise KernelError("Constant: no supported value attribute (value, value_float(s), "
                          "value_int(s))")


@register_kernel
class ConstantOfShape(Kernel):
    op_type = "ConstantOfShape"

    def _run(self, shape, value=None):
        fill = np.zeros(1, dtype=np.float32) if value is None else np.asarray(value)
        return (np.full(_ints(shape), fill.reshape(-1)[0], dtype=fill.dtype),)

    def cost(self, sku, key, config, attrs):
        return costs.vector(sku, key.precision, 0, 0, bytes_read=0, bytes_written=0)
