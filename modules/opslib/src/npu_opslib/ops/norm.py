"""Normalization kernels of transformers and vision models beyond batch norm: layer, RMS,
instance, group, Lp and mean-variance normalization. Statistics are taken in float64 and the
result returned in the input's type."""

from __future__ import annotations

import numpy as np

from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel


class Normalize(Kernel):
    ops_per_element = 6

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


def _trailing(x, axis) -> tuple[int, ...]:
    return tuple(range(int(axis) % x.ndim, x.ndim))


@register_kernel
class LayerNormalization(Normalize):
    """Y, and optionally the Mean and inverse standard deviation over the trailing axes."""

    op_type = "LayerNormalization"

    def _run(self, x, scale, bias=None, axis=-1, epsilon=1e-5, stash_type=1):
        axes = _trailing(x, axis)
        stat_type = np.float32 if x.dtype == np.float16 else x.dtype
        trailing = x.shape[axes[0]:] if x.ndim else ()
        width = int(np.prod(trailing))
        rows = x.size // max(width, 1)
        if rows <= 1 or not _broadcast_within(trailing, scale, bias):
            return _layer_norm(x, scale, bias, axes, epsilon, stat_type)
        # Rows in cache-sized blocks: each row's statistics and result are the same as over
        # the whole array (the reductions run along the row), but the float64 temporaries of
        # a block stay in cache instead of streaming a batch's worth through memory.
        flat = x.reshape(rows, width)
        flat_scale = np.broadcast_to(scale, trailing).reshape(1, width)
        flat_bias = None if bias is None else np.broadcast_to(bias, trailing).reshape(1, width)
        y = np.empty((rows, width), x.dtype)
        mean = np.empty((rows, 1), stat_type)
        inv_std = np.empty((rows, 1), stat_type)
        step = max(1, ROW_BLOCK_ELEMENTS // width)
        for start in range(0, rows, step):
            block = slice(start, start + step)
            y[block], mean[block], inv_std[block] = _layer_norm(
                flat[block], flat_scale, flat_bias, (1,), epsilon, stat_type)
        stats_shape = x.shape[:axes[0]] + (1,) * len(axes)
        return y.reshape(x.shape), mean.reshape(stats_shape), inv_std.reshape(stats_shape)


def _layer_norm(x, scale, bias, axes, epsilon, stat_type):
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(np.square(x64 - mean).mean(axis=axes, keepdims=True) + epsilon)
    y = (x64 - mean) * inv_std * scale
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype), mean.astype(stat_type), inv_std.astype(stat_type)


def _broadcast_within(shape, *operands) -> bool:
    """Whether every operand (None: absent) broadcasts to `shape` without widening it."""
    try:
        return all(v is None or np.broadcast_shapes(np.shape(v), shape) == tuple(shape)
                   for v in operands)
    except ValueError:
        return False


ROW_BLOCK_ELEMENTS = 1 << 15
"""Elements per block of rows in LayerNormalization (float64 temporaries of 256 KiB)."""


@register_kernel
class RMSNormalization(Normalize):
    op_type = "RMSNormalization"

    def _run(self, x, scale, axis=-1, epsilon=1e-5, stash_type=1):
        x64 = x.astype(np.float64)
        rms = np.sqrt(np.square(x64).mean(axis=_trailing(x, axis), keepdims=True) + epsilon)
        return ((x64 / rms * scale).astype(x.dtype),)


def _channel(v, ndim):
    return np.asarray(v, dtype=np.float64).reshape((1, -1) + (1,) * (ndim - 2))


@register_kernel
class InstanceNormalization(Normalize):
    op_type = "InstanceNormalization"

    def _run(self, x, scale, bias, epsilon=1e-5):
        x64 = x.astype(np.float64)
        axes = tuple(range(2, x.ndim))
        mean = x64.mean(axis=axes, keepdims=True)
        var = np.square(x64 - mean).mean(axis=axes, keepdims=True)
        y = (x64 - mean) / np.sqrt(var + epsilon) * _channel(scale, x.ndim) + _channel(
            bias, x.ndim)
        return (y.astype(x.dtype),)


@register_kernel
class GroupNormalization(Normalize):
    """Scale and bias are per group in opset 18 and per channel from opset 21: their size
    says which."""

    op_type = "GroupNormalization"

    def _run(self, x, scale, bias, num_groups, epsilon=1e-5, stash_type=1):
        n, c = x.shape[:2]
        groups = int(num_groups)
        if c % groups:
            raise KernelError(f"GroupNormalization: {c} channels do not split into "
                              f"{groups} groups")
        grouped = x.astype(np.float64).reshape(n, groups, -1)
        mean = grouped.mean(axis=2, keepdims=True)
        var = np.square(grouped - mean).mean(axis=2, keepdims=True)
        normalized = ((grouped - mean) / np.sqrt(var + epsilon)).reshape(x.shape)
        if np.size(scale) == groups and groups != c:
            scale, bias = np.repeat(scale, c // groups), np.repeat(bias, c // groups)
        y = normalized * _channel(scale, x.ndim) + _channel(bias, x.ndim)
        return (y.astype(x.dtype),)


@register_kernel
class LpNormalization(Normalize):
    op_type = "LpNormalization"

    def _run(self, x, axis=-1, p=2):
        x64 = x.astype(np.float64)
        if int(p) == 1:
            norm = np.abs(x64).sum(axis=int(axis), keepdims=True)
        elif int(p) == 2:
            norm = np.sqrt(np.square(x64).sum(axis=int(axis), keepdims=True))
        else:
            raise KernelError(f"LpNormalization: p={p} is not 1 or 2")
        return (np.where(norm == 0, 0, x64 / np.where(norm == 0, 1, norm)).astype(x.dtype),)


@register_kernel
class MeanVarianceNormalization(Normalize):
    op_type = "MeanVarianceNormalization"

    def _run(self, x, axes=(0, 2, 3)):
        x64 = x.astype(np.float64)
        axes = tuple(int(a) for a in axes)
        mean = x64.mean(axis=axes, keepdims=True)
        std = np.sqrt(np.square(x64 - mean).mean(axis=axes, keepdims=True))
        return (((x64 - mean) / (std + 1e-9)).astype(x.dtype),)
