"""Convolution, pooling and normalization kernels."""

from __future__ import annotations

import functools
import math

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel
from npu_opslib.ops import windows, winograd
from npu_opslib.ops.matrix import MATRIX_EPILOGUES, tile_configs


def _kernel_shape(attrs, weight_shape=None):
    shape = attrs.get("kernel_shape")
    if shape is None and weight_shape is not None:
        shape = weight_shape[2:]
    if shape is None:
        raise KernelError("kernel_shape attribute is required")
    return [int(k) for k in shape]


def _conv_geometry(x_shape, w_shape, attrs):
    kernel = _kernel_shape(attrs, w_shape)
    return windows.geometry(x_shape[2:], kernel, attrs.get("strides"), attrs.get("pads"),
                            attrs.get("dilations"), attrs.get("auto_pad", "NOTSET"))


def _frozen(value):
    return None if value is None else tuple(value)


@functools.lru_cache(maxsize=4096)
def _run_geometry(x_shape, w_shape, kernel_shape, strides, pads, dilations, auto_pad):
    """`_conv_geometry` of a launch, worked out once per shape and attributes (callers must
    not modify the lists it returns)."""
    return _conv_geometry(x_shape, w_shape, {"kernel_shape": kernel_shape, "strides": strides,
                                             "pads": pads, "dilations": dilations,
                                             "auto_pad": auto_pad})


CONV_ATTRS = ("group", "kernel_shape", "strides", "pads", "dilations", "auto_pad")


def _bias_in_matmul(x, w, b, n, group, n_out, pointwise) -> bool:
    """Whether the bias goes into the matmul as one more reduction row (see `im2col`'s
    `bias_row`): the im2col matrix is being built anyway, and widening the weights costs less
    than the pass over the output it saves (fewer weight columns than output positions)."""
    return b is not None and not pointwise and n == 1 and group == 1 and \
        x.dtype == w.dtype == b.dtype == np.float32 and w[0].size + 1 < n_out


CHUNK_BYTES = 1 << 20
"""Bytes of work buffer per chunk of a batch: a batched Conv or MaxPool runs on chunks of
images whose im2col matrix (or padded input) stays this small, so it is built and consumed in
the host's cache (a whole batch-16 matrix left it and cost ~3x per image), and an image runs
alone, through the batch-1 shortcuts (Winograd, the bias row in the matmul)."""


def _chunk_images(per_image_bytes: int) -> int:
    return max(1, CHUNK_BYTES // max(per_image_bytes, 1))


def _batch_out(out, shape, dtype):
    """The output array a chunked run writes into: `out` when it fits, else a new one."""
    if out is None or out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        return np.empty(shape, dtype)
    return out


def _run_chunked(run_chunk, out, x, chunk, *rest, **attrs):
    """`run_chunk` on `chunk` images of x at a time, each writing its slice of `out` (a
    C-contiguous slice along the batch is itself contiguous, so nothing is copied unless a
    chunk's result came back in a new array)."""
    for start in range(0, x.shape[0], chunk):
        part = out[start:start + chunk]
        result = run_chunk(part, x[start:start + chunk], *rest, **attrs)[0]
        if result is not part:
            np.copyto(part, result, casting="unsafe")
    return (out,)


class _ChunkedEpilogues:
    """`_execute_into` chunk by chunk, so a fused epilogue (the Relu after every SqueezeNet
    convolution) runs on each chunk while it is still in cache rather than in one more pass
    over the whole batch's output. An epilogue operand with the batch's leading dimension is
    sliced with its chunk; any other broadcasts to every chunk alike."""

    def _chunk(self, x, inputs, attrs) -> int:
        raise NotImplementedError

    def _execute_into(self, out, inputs, attrs, fusion):
        x = inputs[0]
        n = x.shape[0] if np.ndim(x) > 2 else 1
        chunk = self._chunk(x, inputs, attrs) if fusion and n > 1 else n
        if chunk >= n:
            return super()._execute_into(out, inputs, attrs, fusion)
        own = len(self._split_epilogues(inputs, attrs, fusion)[0])
        for start in range(0, n, chunk):
            part = slice(start, start + chunk)
            sliced = [v[part] if i == 0 or (i >= own and np.ndim(v) == out.ndim and
                                            np.shape(v)[0] == n) else v
                      for i, v in enumerate(inputs)]
            result = super()._execute_into(out[part], sliced, attrs, fusion)[0]
            if result is not out[part] and not np.shares_memory(result, out[part]):
                np.copyto(out[part], result, casting="unsafe")
        return (out,)


def _matmul_into(out, weights, cols, shape, product_shape):
    """weights @ cols as an array of `shape`, written into `out` when it is that array."""
    if out is None or out.shape != shape or out.dtype != cols.dtype or \
            np.result_type(weights, cols) != out.dtype:
        return np.matmul(weights, cols).reshape(shape)
    np.matmul(weights, cols, out=out.reshape(product_shape))
    return out


@register_kernel
class Conv(_ChunkedEpilogues, Kernel):
    """im2col as a strided view, then one matmul per group on the array."""

    op_type = "Conv"
    unit = "array"
    layouts = ("NCHW", "NHWC")
    fusions = MATRIX_EPILOGUES

    # Told of constant weights it transformed (`prepack`): only such a kernel looks for their
    # filters (a reference run stays direct).
    prepacks = False

    def prepack(self, key, constants, attrs):
        """Constant fp32 weights of a Winograd-sized convolution are transformed once."""
        w = constants.get(1)
        x_shape = key.shapes[0] if key.shapes else ()
        if w is None or key.precision != "fp32" or w.dtype != np.float32 or len(x_shape) != 4:
            return
        x_shape = (1,) + tuple(x_shape[1:])  # a batch runs image by image (`_run_into`)
        own = {k: v for k, v in attrs.items() if k in CONV_ATTRS}
        _, begin, end, strides, dilations = _conv_geometry(x_shape, w.shape, own)
        if winograd.applies(x_shape, w.shape, int(own.get("group", 1)), strides, dilations,
                            begin, end):
            self.prepacks = True
            winograd.prepack(w)

    def _run(self, x, w, b=None, **attrs):
        return self._run_into(None, x, w, b, **attrs)

    def _run_into(self, out, x, w, b=None, **attrs):
        """A batch runs in cache-sized chunks of images (see `CHUNK_BYTES`)."""
        n = x.shape[0]
        if n == 1 or x.ndim < 3:
            return self._run_chunk(out, x, w, b, **attrs)
        chunk = self._chunk(x, (x, w), attrs)
        if chunk >= n:
            return self._run_chunk(out, x, w, b, **attrs)
        out_spatial = self._out_spatial(x, w, attrs)
        out = _batch_out(out, (n, w.shape[0]) + tuple(out_spatial), x.dtype)
        return _run_chunked(self._run_chunk, out, x, chunk, w, b, **attrs)

    @staticmethod
    def _out_spatial(x, w, attrs):
        return _run_geometry(
            x.shape, w.shape, _frozen(attrs.get("kernel_shape")), _frozen(attrs.get("strides")),
            _frozen(attrs.get("pads")), _frozen(attrs.get("dilations")),
            attrs.get("auto_pad", "NOTSET"))[0]

    def _chunk(self, x, inputs, attrs) -> int:
        """Images per chunk: as many as keep the im2col matrix within `CHUNK_BYTES`."""
        w = inputs[1]
        if np.ndim(x) < 3 or np.ndim(w) != np.ndim(x):
            return x.shape[0]
        if self.prepacks and winograd.prepacked(w) is not None:
            return 1  # the transforms save more than a wider matmul would
        per_image = x[0].size * math.prod(w.shape[2:]) * \
            math.prod(self._out_spatial(x, w, attrs)) * x.itemsize // \
            max(math.prod(x.shape[2:]), 1)
        return _chunk_images(per_image)

    def _run_chunk(self, out, x, w, b=None, *, group=1, kernel_shape=None, strides=None,
                   pads=None, dilations=None, auto_pad="NOTSET"):
        out_spatial, begin, end, strides, dilations = _run_geometry(
            x.shape, w.shape, _frozen(kernel_shape), _frozen(strides), _frozen(pads),
            _frozen(dilations), auto_pad)
        kernel = list(w.shape[2:])
        n, c = x.shape[:2]
        m = w.shape[0]
        group = int(group)
        if c != w.shape[1] * group:
            raise KernelError(f"Conv: input has {c} channels, weight expects "
                              f"{w.shape[1]} x group {group}")
        filters = winograd.prepacked(w) if self.prepacks and x.dtype == np.float32 and \
            w.ndim == 4 else None
        if filters is not None and winograd.applies(
                x.shape, w.shape, group, strides, dilations, begin, end):
            return (self._run_winograd(out, x, filters, b),)
        n_out = math.prod(out_spatial)
        pointwise = all(k == 1 for k in kernel) and not any(begin + end) and all(
            s == 1 for s in strides)
        shape = (n, m) + tuple(out_spatial)
        if _bias_in_matmul(x, w, b, n, group, n_out, pointwise):
            cols = windows.im2col(x, begin, end, out_spatial, kernel, strides, dilations,
                                  bias_row=True)
            weights = windows.scratch("conv_weights", (m, cols.shape[0]), x.dtype)
            weights[:, :-1] = w.reshape(m, -1)
            weights[:, -1] = b
            return (_matmul_into(out, weights, cols, shape, (m, n_out)),)
        if pointwise:  # a 1x1 convolution is the matmul itself: no window gathering
            cols = x.reshape(n, group, c // group, n_out)
        else:
            cols = windows.im2col(x, begin, end, out_spatial, kernel, strides, dilations)
            cols = cols.reshape(n, group, (c // group) * math.prod(kernel), n_out)
        weights = w.reshape(group, m // group, -1)
        out = _matmul_into(out, weights, cols, shape, (n, group, m // group, n_out))
        if b is not None:
            out += b.reshape((1, m) + (1,) * len(out_spatial))
        return (out.astype(x.dtype, copy=False),)

    def _run_winograd(self, out, x, filters, b):
        shape = (1, filters.shape[1]) + x.shape[2:]
        if out is None or out.shape != shape or out.dtype != x.dtype:
            out = np.empty(shape, x.dtype)
        winograd.conv(x, filters, out)
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        return out

    def output_shapes(self, key, attrs):
        x_shape, w_shape = key.shapes[0], key.shapes[1]
        out = _conv_geometry(x_shape, w_shape, attrs)[0]
        return [(x_shape[0], w_shape[0]) + tuple(out)]

    def _geometry(self, key, attrs):
        x_shape, w_shape = key.shapes[0], key.shapes[1]
        out, begin, end, strides, dilations = _conv_geometry(x_shape, w_shape, attrs)
        kernel = list(w_shape[2:]) + [1] * (2 - len(w_shape[2:]))
        in_hw = list(x_shape[2:]) + [1] * (2 - len(x_shape[2:]))
        strides = list(strides) + [1] * (2 - len(strides))
        dilations = list(dilations) + [1] * (2 - len(dilations))
        # The cost model takes symmetric padding; the larger side bounds the work.
        pad = [max(b, e) for b, e in zip(begin, end)] + [0] * (2 - len(begin))
        return dict(batch=x_shape[0], in_channels=x_shape[1], in_h=in_hw[0], in_w=in_hw[1],
                    out_channels=w_shape[0], kernel_h=kernel[0], kernel_w=kernel[1],
                    stride_h=strides[0], stride_w=strides[1], pad_h=pad[0], pad_w=pad[1],
                    dilation_h=dilations[0], dilation_w=dilations[1],
                    groups=int(attrs.get("group", 1)))

    def configs(self, key, attrs):
        g = self._geometry(key, attrs)
        out = self.output_shapes(key, attrs)[0]
        pixels = g["batch"] * int(np.prod(out[2:]))
        reduction = (g["in_channels"] // g["groups"]) * g["kernel_h"] * g["kernel_w"]
        return tile_configs(pixels, g["out_channels"] // g["groups"], reduction)

    def cost(self, sku, key, config, attrs):
        return costs.conv(sku, key.precision, config=config, **self._geometry(key, attrs))


class Pool(Kernel):
    layouts = ("NCHW", "NHWC")
    def _pool_geometry(self, x_shape, attrs):
        kernel = _kernel_shape(attrs)
        return windows.geometry(x_shape[2:], kernel, attrs.get("strides"), attrs.get("pads"),
                                attrs.get("dilations"), attrs.get("auto_pad", "NOTSET"),
                                attrs.get("ceil_mode", 0))

    def output_shapes(self, key, attrs):
        x_shape = key.shapes[0]
        return [tuple(x_shape[:2]) + tuple(self._pool_geometry(x_shape, attrs)[0])]

    def cost(self, sku, key, config, attrs):
        out_elements = int(np.prod(self.output_shapes(key, attrs)[0]))
        window = int(np.prod(_kernel_shape(attrs)))
        itemsize = costs.itemsize(key.precision)
        return costs.vector(sku, key.precision, out_elements, window,
                            bytes_read=int(np.prod(key.shapes[0])) * itemsize,
                            bytes_written=out_elements * itemsize)


@register_kernel
class MaxPool(_ChunkedEpilogues, Pool):
    op_type = "MaxPool"
    fusions = ("", "Relu")

    def _run(self, x, with_indices=0, storage_order=0, **attrs):
        if not with_indices:
            return self._run_into(None, x, **attrs)
        out, begin, end, strides, dilations = self._pool_geometry(x.shape, attrs)
        kernel = _kernel_shape(attrs)
        lowest = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
        xp = windows.padded(x, begin, end, out, kernel, strides, dilations, value=lowest)
        pooled, where = windows.argmax_windows(xp, out, kernel, strides, dilations)
        # `where` holds padded coordinates per spatial axis; indices are flat over the
        # unpadded input, row-major (storage_order 0) or with the spatial axes reversed.
        spatial = [w - b for w, b in zip(where, begin)]
        dims = list(x.shape[2:])
        if storage_order:
            spatial, dims = spatial[::-1], dims[::-1]
        flat = np.zeros(pooled.shape, dtype=np.int64)
        for coordinate, size in zip(spatial, dims):
            flat = flat * size + coordinate
        n, c = x.shape[:2]
        plane = int(np.prod(x.shape[2:]))
        channel = (np.arange(n).reshape(n, 1) * c + np.arange(c).reshape(1, c)) * plane
        flat = flat + channel.reshape((n, c) + (1,) * len(dims))
        return pooled.astype(x.dtype, copy=False), flat

    def _run_into(self, out, x, with_indices=0, storage_order=0, **attrs):
        if with_indices:
            return self._run(x, with_indices, storage_order, **attrs)
        chunk = self._chunk(x, (x,), attrs)
        if chunk >= x.shape[0]:
            return self._run_chunk(out, x, **attrs)
        out_spatial = self._pool_geometry(x.shape, attrs)[0]
        out = _batch_out(out, tuple(x.shape[:2]) + tuple(out_spatial), x.dtype)
        return _run_chunked(self._run_chunk, out, x, chunk, **attrs)

    def _chunk(self, x, inputs, attrs) -> int:
        """Images per chunk: as many as keep the padded input within `CHUNK_BYTES`."""
        if attrs.get("with_indices") or np.ndim(x) <= 2:
            return x.shape[0]  # the indices count over the whole batch
        return _chunk_images(x[0].nbytes)

    def _run_chunk(self, out, x, **attrs):
        """One cache-sized chunk of a batch (see `CHUNK_BYTES`)."""
        out_spatial, begin, end, strides, dilations = self._pool_geometry(x.shape, attrs)
        kernel = _kernel_shape(attrs)
        lowest = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
        xp = windows.padded_scratch(x, begin, end, out_spatial, kernel, strides, dilations,
                                    value=lowest)
        shape = tuple(x.shape[:2]) + tuple(out_spatial)
        if out is None or out.shape != shape or out.dtype != x.dtype:
            out = None
        return (windows.max_windows(xp, out_spatial, kernel, strides, dilations, out),)


@register_kernel
class AveragePool(Pool):
    op_type = "AveragePool"

    def _run(self, x, count_include_pad=0, **attrs):
        out, begin, end, strides, dilations = self._pool_geometry(x.shape, attrs)
        kernel = _kernel_shape(attrs)
        xp = windows.padded(x, begin, end, out, kernel, strides, dilations)
        sums = windows.reduce_windows(xp, out, kernel, strides, dilations, np.add)
        # Divisor per output position: the window's cells inside the input (or inside the
        # explicit padding with count_include_pad; the extra ceil_mode padding never counts).
        inside = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
        if count_include_pad:
            inside = np.pad(inside, [(0, 0), (0, 0)] + list(zip(begin, end)), constant_values=1)
            inside_begin = [0] * len(begin)
        else:
            inside_begin = begin
        inside_end = [0] * len(end) if count_include_pad else end
        counts_p = windows.padded(inside, inside_begin, inside_end, out, kernel, strides,
                                  dilations)
        counts = windows.reduce_windows(counts_p, out, kernel, strides, dilations, np.add)
        return ((sums / counts).astype(x.dtype, copy=False),)


class GlobalPool(Kernel):
    layouts = ("NCHW", "NHWC")
    def output_shapes(self, key, attrs):
        x_shape = key.shapes[0]
        return [tuple(x_shape[:2]) + (1,) * (len(x_shape) - 2)]


@register_kernel
class GlobalAveragePool(GlobalPool):
    op_type = "GlobalAveragePool"

    def _run(self, x):
        spatial = math.prod(x.shape[2:])
        if x.dtype != np.float32 or spatial == 0:
            return (x.mean(axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype),)
        # The sums as one matrix-vector product: BLAS beats a reduction per channel.
        sums = x.reshape(-1, spatial) @ np.ones(spatial, np.float32)
        return ((sums / np.float32(spatial)).reshape(x.shape[:2] + (1,) * (x.ndim - 2)),)


@register_kernel
class GlobalMaxPool(GlobalPool):
    op_type = "GlobalMaxPool"

    def _run(self, x):
        return (x.max(axis=tuple(range(2, x.ndim)), keepdims=True),)


def _per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _training_batchnorm(x, scale, bias, mean, var, epsilon, momentum):
    """Training form (opset 14+): normalize by the batch's statistics; also return the
    running mean and variance updated with `momentum`."""
    axes = (0,) + tuple(range(2, x.ndim))
    x64 = x.astype(np.float64)
    batch_mean = x64.mean(axis=axes)
    batch_var = x64.var(axis=axes)
    y = (x64 - _per_channel(batch_mean, x.ndim)) / np.sqrt(
        _per_channel(batch_var, x.ndim) + epsilon) * _per_channel(scale, x.ndim) + \
        _per_channel(bias, x.ndim)
    running_mean = mean * momentum + batch_mean * (1 - momentum)
    running_var = var * momentum + batch_var * (1 - momentum)
    return (y.astype(x.dtype), running_mean.astype(mean.dtype), running_var.astype(var.dtype))


@register_kernel
class BatchNormalization(Kernel):
    """Inference form: y = (x - mean) / sqrt(var + eps) * scale + bias, per channel."""

    op_type = "BatchNormalization"
    layouts = ("NCHW", "NHWC")
    fusions = ("", "Relu")
    ops_per_element = 2

    def _run(self, x, scale, bias, mean, var, epsilon=1e-5, momentum=None, spatial=1,
             training_mode=0):
        if training_mode:
            return _training_batchnorm(x, scale, bias, mean, var, epsilon,
                                       0.9 if momentum is None else momentum)
        factor = (scale / np.sqrt(var + epsilon)).astype(x.dtype)
        shift = (bias - mean * factor).astype(x.dtype)
        return (x * _per_channel(factor, x.ndim) + _per_channel(shift, x.ndim),)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


def _lrn(x, size, alpha, beta, bias):
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    squares = np.square(x, dtype=np.float64)
    padded = np.pad(squares, [(0, 0), (before + 1, after)] + [(0, 0)] * (x.ndim - 2))
    cumulative = np.cumsum(padded, axis=1)
    window_sums = cumulative[:, size:] - cumulative[:, :-size]
    base = bias + alpha / size * window_sums
    if beta == 0.75:  # AlexNet's and GoogLeNet's: two square roots, not a general power
        root = np.sqrt(base)
        base *= root  # base ** 1.5
        np.sqrt(base, out=base)
        return (x / base).astype(x.dtype)
    return (x / base ** beta).astype(x.dtype)


@register_kernel
class LRN(Kernel):
    """Local response normalization across channels."""

    op_type = "LRN"
    layouts = ("NCHW", "NHWC")
    ops_per_element = 6

    def _run(self, x, size, alpha=1e-4, beta=0.75, bias=1.0):
        size = int(size)
        if x.ndim < 3:
            return (_lrn(x, size, alpha, beta, bias),)
        # The window runs across channels only, so images and rows are independent: blocks of
        # them keep the float64 temporaries in cache (a batch's worth left it).
        n, c, h = x.shape[:3]
        row_bytes = c * int(np.prod(x.shape[3:])) * 8
        rows = max(1, CHUNK_BYTES // max(row_bytes, 1))
        if rows >= n * h:
            return (_lrn(x, size, alpha, beta, bias),)
        out = np.empty_like(x)
        images = max(1, rows // h)
        for start in range(0, n, images):
            part = slice(start, start + images)
            for top in range(0, h, rows):  # whole images when `rows` covers them
                block = (part, slice(None), slice(top, top + rows))
                out[block] = _lrn(x[block], size, alpha, beta, bias)
        return (out,)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]
