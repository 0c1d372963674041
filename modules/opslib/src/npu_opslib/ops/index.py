"""Indexing kernels: the Gather and Scatter families, one-hot, triangular masks, ranges and
tiling, and the block rearrangements (DepthToSpace, SpaceToDepth). On the device they are DMA
gathers and scatters: their cost is the data they move."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel


def _int(value) -> int:
    return int(np.asarray(value).reshape(-1)[0])


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


class Movement(Kernel):
    """Reads its inputs once and writes an output of about the first input's size."""

    def output_shapes(self, key, attrs):
        return [key.shapes[0]] if key.shapes else [()]

    def cost(self, sku, key, config, attrs):
        itemsize = costs.itemsize(key.precision)
        written = sum(int(np.prod(s)) for s in self.output_shapes(key, attrs))
        return costs.vector(sku, key.precision, written, 0,
                            bytes_read=self.bytes_read(key, written, itemsize),
                            bytes_written=written * itemsize)

    def bytes_read(self, key, written: int, itemsize: int) -> int:
        """Every input, once."""
        return sum(int(np.prod(s)) for s in key.shapes) * itemsize


# Bytes of one index as the graphs give them (int64).
INDEX_BYTES = 8


class Gathering(Movement):
    """A DMA gather: reads its indices and the elements it picks, and writes those. What it
    does not pick never moves: an embedding lookup reads a sequence's rows, not the table
    (priced as a copy of its first input, BERT's lookup cost a read and a write of the whole
    94 MB table: 46.9 of its 129 ms at batch 1 on npu-micro)."""

    def bytes_read(self, key, written: int, itemsize: int) -> int:
        indices = int(np.prod(key.shapes[1])) if len(key.shapes) > 1 else 0
        return written * itemsize + indices * INDEX_BYTES


@register_kernel
class Gather(Gathering):
    op_type = "Gather"

    def _run(self, x, indices, axis=0):
        return (np.take(x, np.asarray(indices, dtype=np.int64), axis=axis),)

    def output_shapes(self, key, attrs):
        data, indices = key.shapes[0], key.shapes[1]
        axis = int(attrs.get("axis", 0)) % max(1, len(data))
        return [tuple(data[:axis]) + tuple(indices) + tuple(data[axis + 1:])]


def _normalized(indices, size):
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < -size or indices.max() >= size):
        raise KernelError(f"index out of range [-{size}, {size - 1}]")
    return np.where(indices < 0, indices + size, indices)


@register_kernel
class GatherElements(Gathering):
    op_type = "GatherElements"

    def _run(self, data, indices, axis=0):
        axis = int(axis) % data.ndim
        return (np.take_along_axis(data, _normalized(indices, data.shape[axis]), axis=axis),)

    def output_shapes(self, key, attrs):
        return [key.shapes[1]]


@register_kernel
class GatherND(Gathering):
    op_type = "GatherND"

    def _run(self, data, indices, batch_dims=0):
        b = int(batch_dims)
        depth = indices.shape[-1]
        batch = int(np.prod(data.shape[:b]))
        flat_data = data.reshape((batch,) + data.shape[b:])
        flat_index = indices.reshape(batch, -1, depth).astype(np.int64)
        rows = np.arange(batch).reshape(batch, 1)
        picked = flat_data[(rows,) + tuple(flat_index[..., j] for j in range(depth))]
        return (picked.reshape(indices.shape[:-1] + data.shape[b + depth:]),)

    def output_shapes(self, key, attrs):
        return [key.shapes[1][:-1]]


_SCATTER_REDUCTIONS = {"add": np.add, "mul": np.multiply, "max": np.maximum,
                       "min": np.minimum}


def _scatter(out, index, updates, reduction):
    if reduction in ("none", None):
        out[index] = updates
        return out
    if reduction not in _SCATTER_REDUCTIONS:
        raise KernelError(f"reduction {reduction!r} is not one of none, add, mul, max, min")
    _SCATTER_REDUCTIONS[reduction].at(out, index, updates)
    return out


@register_kernel
class ScatterElements(Movement):
    op_type = "ScatterElements"

    def _run(self, data, indices, updates, axis=0, reduction="none"):
        axis = int(axis) % data.ndim
        grid = list(np.indices(indices.shape, sparse=True))
        grid[axis] = _normalized(indices, data.shape[axis])
        return (_scatter(data.copy(), tuple(grid), updates, reduction),)


@register_kernel
class Scatter(ScatterElements):
    """Opset 9/10's name of ScatterElements."""

    op_type = "Scatter"


@register_kernel
class ScatterND(Movement):
    op_type = "ScatterND"

    def _run(self, data, indices, updates, reduction="none"):
        depth = indices.shape[-1]
        index = tuple(_normalized(indices[..., j], data.shape[j]) for j in range(depth))
        return (_scatter(data.copy(), index, updates, reduction),)


@register_kernel
class OneHot(Movement):
    op_type = "OneHot"

    def _run(self, indices, depth, values, axis=-1):
        depth = _int(depth)
        rank = indices.ndim + 1
        axis = int(axis) % rank
        index = np.asarray(indices).astype(np.int64)
        index = np.where(index < 0, index + depth, index)
        classes = np.arange(depth).reshape((depth,) + (1,) * (rank - 1 - axis))
        hot = np.expand_dims(index, axis) == classes
        off, on = values[0], values[1]
        return (np.where(hot, on, off).astype(values.dtype),)


@register_kernel
class Trilu(Movement):
    op_type = "Trilu"

    def _run(self, x, k=None, upper=1):
        diagonal = 0 if k is None else _int(k)
        return ((np.triu if upper else np.tril)(x, diagonal),)


@register_kernel
class Range(Movement):
    op_type = "Range"

    def _run(self, start, limit, delta):
        start, limit, delta = (np.asarray(v).reshape(()) for v in (start, limit, delta))
        count = max(int(np.ceil((limit - start) / delta)), 0)
        return ((start + np.arange(count) * delta).astype(start.dtype),)


@register_kernel
class Tile(Movement):
    op_type = "Tile"

    def _run(self, x, repeats):
        return (np.tile(x, _ints(repeats)),)


@register_kernel
class DepthToSpace(Movement):
    op_type = "DepthToSpace"

    def _run(self, x, blocksize, mode="DCR"):
        n, c, h, w = x.shape
        b = int(blocksize)
        if mode == "DCR":
            y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        elif mode == "CRD":
            y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        else:
            raise KernelError(f"DepthToSpace: mode {mode!r} is not DCR or CRD")
        return (y.reshape(n, c // (b * b), h * b, w * b),)


@register_kernel
class SpaceToDepth(Movement):
    op_type = "SpaceToDepth"

    def _run(self, x, blocksize, mode="DCR"):
        n, c, h, w = x.shape
        b = int(blocksize)
        blocks = x.reshape(n, c, h // b, b, w // b, b)
        if mode == "DCR":
            y = blocks.transpose(0, 3, 5, 1, 2, 4)
        elif mode == "CRD":
            y = blocks.transpose(0, 1, 3, 5, 2, 4)
        else:
            raise KernelError(f"SpaceToDepth: mode {mode!r} is not DCR or CRD")
        return (y.reshape(n, c * b * b, h // b, w // b),)


# TensorProto.DataType values (opslib imports no onnx).
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
           7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
           13: np.uint64}


@register_kernel
class EyeLike(Movement):
    op_type = "EyeLike"

    def _run(self, x, dtype=None, k=0):
        target = x.dtype if dtype is None else _DTYPES.get(int(dtype))
        if target is None:
            raise KernelError(f"EyeLike: data type {dtype} is not supported")
        return (np.eye(x.shape[0], x.shape[1], int(k), dtype=target),)


@register_kernel
class ReverseSequence(Movement):
    op_type = "ReverseSequence"

    def _run(self, x, sequence_lens, batch_axis=1, time_axis=0):
        lengths = np.asarray(sequence_lens, dtype=np.int64)
        steps = np.arange(x.shape[time_axis])
        # Time index t of batch b reads from lengths[b] - 1 - t while t < lengths[b].
        lens = lengths.reshape(1, -1)
        source = np.where(steps.reshape(-1, 1) < lens, lens - 1 - steps.reshape(-1, 1),
                          steps.reshape(-1, 1))  # [time, batch]
        moved = np.moveaxis(x, (time_axis, batch_axis), (0, 1))
        batch_index = np.arange(moved.shape[1]).reshape(1, -1)
        result = moved[source, batch_index]
        return (np.moveaxis(result, (0, 1), (time_axis, batch_axis)),)


@register_kernel
class CenterCropPad(Movement):
    op_type = "CenterCropPad"

    def _run(self, x, shape, axes=None):
        target = _ints(shape)
        chosen = [a % x.ndim for a in axes] if axes is not None else list(range(x.ndim))
        index = [slice(None)] * x.ndim
        widths = [(0, 0)] * x.ndim
        for axis, size in zip(chosen, target):
            have = x.shape[axis]
            if size < have:
                begin = (have - size) // 2
                index[axis] = slice(begin, begin + size)
            elif size > have:
                begin = (size - have) // 2
                widths[axis] = (begin, size - have - begin)
        return (np.pad(x[tuple(index)], widths),)


@register_kernel
class Compress(Movement):
    op_type = "Compress"

    def _run(self, x, condition, axis=None):
        keep = np.asarray(condition, dtype=np.bool_)
        if axis is None:
            return (np.compress(keep, x.reshape(-1)),)
        return (np.compress(keep, x, axis=int(axis)),)
