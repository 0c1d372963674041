"""Quantization kernels: Quantize/DequantizeLinear (per tensor, per axis, blocked),
DynamicQuantizeLinear, and the integer matrix ops (MatMulInteger, ConvInteger, QLinearMatMul,
QLinearConv), which run on the array at int8."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel
from npu_opslib.ops.matrix import MatMul
from npu_opslib.ops.nn import Conv

# TensorProto.DataType values of the integer outputs QuantizeLinear may be asked for.
_OUTPUT_DTYPES = {2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16}


def _broadcastable(param, x, axis, block_size):
    """A per-tensor, per-axis or blocked parameter shaped to broadcast against `x`."""
    param = np.asarray(param)
    if param.ndim == 0 or param.size == 1 and x.ndim == 0:
        return param.reshape(())
    axis = int(axis) % x.ndim
    if block_size:
        return np.repeat(param, int(block_size), axis=axis).take(
            np.arange(x.shape[axis]), axis=axis)
    shape = [1] * x.ndim
    shape[axis] = param.size
    return param.reshape(shape)


def _saturate(values, dtype):
    info = np.iinfo(dtype)
    return np.clip(np.round(values), info.min, info.max).astype(dtype)


@register_kernel
class QuantizeLinear(Kernel):
    op_type = "QuantizeLinear"
    ops_per_element = 3

    def _run(self, x, y_scale, y_zero_point=None, axis=1, block_size=0, saturate=1,
             output_dtype=0, precision=None):
        if y_zero_point is not None:
            dtype = y_zero_point.dtype
        elif output_dtype:
            dtype = _OUTPUT_DTYPES.get(int(output_dtype))
            if dtype is None:
                raise KernelError(f"QuantizeLinear: output_dtype {output_dtype} not supported")
        else:
            dtype = np.uint8
        # The division happens in the input's precision (as the operator defines it): ties
        # of the rounding that follows depend on it.
        scale = _broadcastable(y_scale, x, axis, block_size)
        zero = 0 if y_zero_point is None else _broadcastable(
            y_zero_point, x, axis, block_size).astype(np.float64)
        return (_saturate(np.rint(x / scale).astype(np.float64) + zero, dtype),)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


@register_kernel
class DequantizeLinear(Kernel):
    op_type = "DequantizeLinear"
    ops_per_element = 2

    def _run(self, x, x_scale, x_zero_point=None, axis=1, block_size=0, output_dtype=0):
        scale = _broadcastable(x_scale, x, axis, block_size)
        zero = 0 if x_zero_point is None else _broadcastable(
            x_zero_point, x, axis, block_size).astype(np.float64)
        y = (x.astype(np.float64) - zero) * scale.astype(np.float64)
        return (y.astype(np.asarray(x_scale).dtype),)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


@register_kernel
class DynamicQuantizeLinear(Kernel):
    """uint8 with the scale and zero point that map [min(x, 0), max(x, 0)] onto [0, 255]."""

    op_type = "DynamicQuantizeLinear"
    ops_per_element = 4

    def _run(self, x):
        # float32 arithmetic throughout, as the operator's definition computes it.
        low = np.float32(min(float(x.min()) if x.size else 0.0, 0.0))
        high = np.float32(max(float(x.max()) if x.size else 0.0, 0.0))
        scale = np.float32(high - low if high != low else 1.0) / np.float32(255)
        zero = np.rint(np.clip(np.float32(0) - low / scale, 0, 255))
        y = np.clip(np.rint(x.astype(np.float32) / scale) + zero, 0, 255)
        return (y.astype(np.uint8), np.array(scale, dtype=np.float32),
                np.array(zero, dtype=np.uint8))

    def output_shapes(self, key, attrs):
        return [key.shapes[0], (), ()]


def _int8_precision(sku, precision):
    return "int8" if "int8" in getattr(sku, "precisions", {}) else precision


def _centered(values, zero_point, axis=None):
    values = np.asarray(values, dtype=np.int32)
    if zero_point is None:
        return values
    zero = np.asarray(zero_point, dtype=np.int32)
    if zero.size > 1 and axis is not None:
        shape = [1] * values.ndim
        shape[axis] = zero.size
        zero = zero.reshape(shape)
    return values - zero


@register_kernel
class MatMulInteger(MatMul):
    op_type = "MatMulInteger"
    fusions = ("",)

    def _run(self, a, b, a_zero_point=None, b_zero_point=None):
        # A's zero point is per row (its axis -2), B's per column (axis -1).
        a32 = _centered(a, a_zero_point, a.ndim - 2 if np.size(a_zero_point) > 1 else None)
        b32 = _centered(b, b_zero_point, b.ndim - 1 if np.size(b_zero_point) > 1 else None)
        return (np.matmul(a32, b32).astype(np.int32),)

    def cost(self, sku, key, config, attrs):
        batch, M, N, K = self._bmnk(key)
        return costs.gemm(sku, _int8_precision(sku, key.precision), M, N, K, batch=batch,
                          config=config)


@register_kernel
class ConvInteger(Conv):
    op_type = "ConvInteger"
    fusions = ("",)

    def _run(self, x, w, x_zero_point=None, w_zero_point=None, **attrs):
        x32 = _centered(x, x_zero_point)
        w32 = _centered(w, w_zero_point, 0 if np.size(w_zero_point) > 1 else None)
        return (Conv._run(self, x32, w32, **attrs)[0].astype(np.int32),)

    def cost(self, sku, key, config, attrs):
        return costs.conv(sku, _int8_precision(sku, key.precision), config=config,
                          **self._geometry(key, attrs))


def _requantize(accumulator, x_scale, w_scale, y_scale, y_zero_point):
    """The int32 accumulator to the output's integers as onnxruntime's MLAS does it: one
    float32 multiplier per tensor or column, x_scale * w_scale / y_scale, the accumulator
    converted to float32 and multiplied by it, rounded half to even, the zero point added.
    In float64 the product lands on the other side of a .5 tie for a few elements per layer
    of a real model, one step off in the output."""
    f32 = np.float32
    multiplier = (np.asarray(x_scale, f32) * np.asarray(w_scale, f32)) / np.asarray(y_scale, f32)
    y = np.rint(accumulator.astype(f32) * multiplier.astype(f32)).astype(np.float64)
    return _saturate(y + np.asarray(y_zero_point, dtype=np.float64), y_zero_point.dtype)


@register_kernel
class QLinearMatMul(MatMul):
    op_type = "QLinearMatMul"
    fusions = ("",)

    def _run(self, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
        a32 = _centered(a, a_zero_point, a.ndim - 2 if np.size(a_zero_point) > 1 else None)
        b32 = _centered(b, b_zero_point, b.ndim - 1 if np.size(b_zero_point) > 1 else None)
        return (_requantize(np.matmul(a32, b32), a_scale, b_scale, y_scale,
                            np.asarray(y_zero_point)),)

    def output_shapes(self, key, attrs):
        return MatMul.output_shapes(self, type(key)(key.op_type, (key.shapes[0], key.shapes[3]),
                                                    key.precision, key.layout), attrs)

    def _bmnk(self, key):
        return MatMul._bmnk(self, type(key)(key.op_type, (key.shapes[0], key.shapes[3])))

    def cost(self, sku, key, config, attrs):
        batch, M, N, K = self._bmnk(key)
        return costs.gemm(sku, _int8_precision(sku, key.precision), M, N, K, batch=batch,
                          config=config)


@register_kernel
class QLinearConv(Conv):
    op_type = "QLinearConv"
    fusions = ("",)

    def _run(self, x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point,
             b=None, **attrs):
        x32 = _centered(x, x_zero_point)
        w32 = _centered(w, w_zero_point, 0 if np.size(w_zero_point) > 1 else None)
        accumulator = Conv._run(self, x32, w32, **attrs)[0].astype(np.int64)
        if b is not None:
            accumulator = accumulator + np.asarray(b, np.int64).reshape(
                (1, -1) + (1,) * (x.ndim - 2))
        w_scale = np.asarray(w_scale)
        if w_scale.size > 1:
            w_scale = w_scale.reshape((1, -1) + (1,) * (x.ndim - 2))
        return (_requantize(accumulator, x_scale, w_scale, y_scale, np.asarray(y_zero_point)),)

    def prepack(self, key, constants, attrs):
        """Nothing: Conv's Winograd filters are float, and input 1 here is x_scale."""

    def _operands(self, key):
        """The key of the convolution proper: input and weight shapes (Conv's helpers call
        back into this class with that key, so it is returned as is)."""
        if len(key.shapes) <= 3:
            return key
        return type(key)(key.op_type, (key.shapes[0], key.shapes[3]), key.precision,
                         key.layout)

    def output_shapes(self, key, attrs):
        return Conv.output_shapes(self, self._operands(key), attrs)

    def configs(self, key, attrs):
        return Conv.configs(self, self._operands(key), attrs)

    def cost(self, sku, key, config, attrs):
        return costs.conv(sku, _int8_precision(sku, key.precision), config=config,
                          **self._geometry(self._operands(key), attrs))
