"""ConvTranspose: one matmul per group on the array (weights^T x input columns), then the
columns are added back into the output (col2im), one strided add per kernel offset."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel
from npu_opslib.ops.matrix import MATRIX_EPILOGUES, tile_configs


def transpose_geometry(in_spatial, kernel, *, strides=None, dilations=None, pads=None,
                       output_padding=None, output_shape=None, auto_pad="NOTSET"):
    """(out_spatial, pads_begin, strides, dilations, output_padding) of a ConvTranspose."""
    n = len(in_spatial)
    strides = list(strides or [1] * n)
    dilations = list(dilations or [1] * n)
    extra = list(output_padding or [0] * n)
    extents = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    full = [s * (i - 1) + e + p for s, i, e, p in zip(strides, in_spatial, extents, extra)]
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = (list(output_shape)[-n:] if output_shape is not None
                  else [i * s for i, s in zip(in_spatial, strides)])
        total = [f - t for f, t in zip(full, target)]
        if auto_pad == "SAME_UPPER":
            begin = [t // 2 for t in total]
        else:
            begin = [t - t // 2 for t in total]
        return target, begin, strides, dilations, extra
    if auto_pad not in ("NOTSET", "VALID", ""):
        raise KernelError(f"ConvTranspose: auto_pad {auto_pad!r} is not one of NOTSET, "
                          "SAME_UPPER, SAME_LOWER, VALID")
    pads = list(pads or [0] * (2 * n)) if auto_pad != "VALID" else [0] * (2 * n)
    out = [f - pads[i] - pads[i + n] for i, f in enumerate(full)]
    return out, pads[:n], strides, dilations, extra


@register_kernel
class ConvTranspose(Kernel):
    op_type = "ConvTranspose"
    unit = "array"
    layouts = ("NCHW",)
    fusions = MATRIX_EPILOGUES

    def _run(self, x, w, b=None, *, group=1, kernel_shape=None, strides=None, pads=None,
             dilations=None, output_padding=None, output_shape=None, auto_pad="NOTSET"):
        n, c = x.shape[:2]
        group = int(group)
        kernel = list(w.shape[2:])
        m = w.shape[1] * group
        out, begin, strides, dilations, extra = transpose_geometry(
            x.shape[2:], kernel, strides=strides, dilations=dilations, pads=pads,
            output_padding=output_padding, output_shape=output_shape, auto_pad=auto_pad)
        spatial = x.shape[2:]
        # [G, C/G, M/G * prod(k)]^T @ [N, G, C/G, prod(in)] -> [N, G, M/G, *k, *in]
        weights = w.reshape(group, c // group, -1).transpose(0, 2, 1)
        cols = np.matmul(weights, x.reshape(n, group, c // group, -1))
        cols = cols.reshape((n, m) + tuple(kernel) + tuple(spatial))
        full_shape = [s * (i - 1) + (k - 1) * d + 1 + p for s, i, k, d, p in
                      zip(strides, spatial, kernel, dilations, extra)]
        lead = [max(0, -b) for b in begin]  # negative pads grow the output at the front
        full = np.zeros((n, m) + tuple(f + l + max(0, o + b - f) for f, l, o, b in
                                       zip(full_shape, lead, out, begin)), dtype=np.float64)
        for offset in np.ndindex(*kernel):
            index = (slice(None), slice(None)) + tuple(
                slice(l + o * d, l + o * d + (i - 1) * s + 1, s)
                for l, o, d, i, s in zip(lead, offset, dilations, spatial, strides))
            full[index] += cols[(slice(None), slice(None)) + offset]
        crop = (slice(None), slice(None)) + tuple(
            slice(b + l, b + l + o) for b, l, o in zip(begin, lead, out))
        y = full[crop]
        if b is not None:
            y = y + b.reshape((1, m) + (1,) * len(out))
        return (y.astype(x.dtype),)

    def _sizes(self, key, attrs):
        x_shape, w_shape = key.shapes[0], key.shapes[1]
        group = int(attrs.get("group", 1))
        out = transpose_geometry(
            x_shape[2:], list(w_shape[2:]), strides=attrs.get("strides"),
            dilations=attrs.get("dilations"), pads=attrs.get("pads"),
            output_padding=attrs.get("output_padding"), output_shape=attrs.get("output_shape"),
            auto_pad=attrs.get("auto_pad", "NOTSET"))[0]
        pixels = x_shape[0] * int(np.prod(x_shape[2:]))
        columns = w_shape[1] * int(np.prod(w_shape[2:]))
        return out, group, pixels, columns, x_shape[1] // group

    def output_shapes(self, key, attrs):
        out, group = self._sizes(key, attrs)[:2]
        return [(key.shapes[0][0], key.shapes[1][1] * group) + tuple(out)]

    def configs(self, key, attrs):
        _, _, pixels, columns, reduction = self._sizes(key, attrs)
        return tile_configs(pixels, columns, reduction)

    def cost(self, sku, key, config, attrs):
        _, group, pixels, columns, reduction = self._sizes(key, attrs)
        matmul = costs.gemm(sku, key.precision, pixels, columns, reduction, batch=group,
                            config=config)
        elements = pixels * columns * group
        itemsize = costs.itemsize(key.precision)
        out_elements = int(np.prod(self.output_shapes(key, attrs)[0]))
        col2im = costs.vector(sku, key.precision, elements, 1, bytes_read=0,
                              bytes_written=out_elements * itemsize)
        return matmul + col2im
