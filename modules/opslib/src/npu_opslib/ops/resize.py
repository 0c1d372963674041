"""Resize (opsets 10 to 19) and Upsample: separable, one axis at a time. Nearest gathers rows;
linear and cubic multiply by a small [out, in] interpolation matrix per axis, which covers
antialiasing (a filter stretched by 1/scale) and exclude_outside (taps outside the input
dropped and the rest renormalized) with the same code."""

from __future__ import annotations

import math

import numpy as np

from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel


def source_coordinates(mode: str, out_size: int, in_size: int, scale: float, roi=None):
    """The input coordinate of each output index, and which outputs fall outside the input
    (only tf_crop_and_resize extrapolates)."""
    y = np.arange(out_size, dtype=np.float64)
    outside = None
    # The output extent is scale * in_size, which may be fractional: the coordinate maps
    # use it, not the rounded output size.
    extent = scale * in_size
    if mode == "align_corners":
        x = np.zeros(out_size) if extent == 1 else y * (in_size - 1) / (extent - 1)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        start, end = roi
        if extent == 1:
            x = np.full(out_size, (end - start) * (in_size - 1) / 2)
        else:
            x = y * (end - start) * (in_size - 1) / (extent - 1)
        x = x + start * (in_size - 1)
        outside = (x < 0) | (x > in_size - 1)
    elif mode == "pytorch_half_pixel":
        x = np.full(out_size, -0.5) if extent == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        offset = in_size / 2 * (1 - out_size / (scale * in_size))
        x = offset + (y + 0.5) / scale - 0.5
    else:
        raise KernelError(f"Resize: coordinate_transformation_mode {mode!r} is not supported")
    return x, outside


def nearest_indices(x: np.ndarray, mode: str, in_size: int) -> np.ndarray:
    rounding = {"round_prefer_floor": lambda v: np.ceil(v - 0.5),
                "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                "floor": np.floor, "ceil": np.ceil}
    if mode not in rounding:
        raise KernelError(f"Resize: nearest_mode {mode!r} is not one of {', '.join(rounding)}")
    return np.clip(rounding[mode](x), 0, in_size - 1).astype(np.int64)


def _linear_filter(d, a):
    return np.clip(1 - np.abs(d), 0, 1)


def _cubic_filter(d, a):
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


FILTERS = {"linear": (_linear_filter, 1), "cubic": (_cubic_filter, 2)}


def interpolation_matrix(x, in_size, mode, scale, *, antialias=False, cubic_coeff_a=-0.75,
                         exclude_outside=False) -> np.ndarray:
    """[out, in] weights: output i is sum_j W[i, j] * input[j] (edges replicated)."""
    filter_fn, support = FILTERS[mode]
    stretch = min(scale, 1.0) if antialias else 1.0
    start = math.floor(-support / stretch) + 1
    taps = 2 - 2 * start
    # Left neighbour of x (x - 1 when x is a whole number, as the taps then sit around it).
    base = np.ceil(x).astype(np.int64) - 1
    positions = base[:, None] + start + np.arange(taps)[None, :]
    weights = filter_fn((positions - x[:, None]) * stretch, cubic_coeff_a)
    if exclude_outside:
        weights = np.where((positions < 0) | (positions >= in_size), 0.0, weights)
    if exclude_outside or antialias:
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    matrix = np.zeros((len(x), in_size))
    rows = np.repeat(np.arange(len(x)), taps)
    np.add.at(matrix, (rows, np.clip(positions, 0, in_size - 1).reshape(-1)), weights.reshape(-1))
    return matrix


def resize(x, out_shape, scales, *, mode="nearest", coordinate_transformation_mode="half_pixel",
           nearest_mode="round_prefer_floor", cubic_coeff_a=-0.75, exclude_outside=0,
           extrapolation_value=0.0, antialias=0, roi=None):
    result = x if mode == "nearest" else x.astype(np.float64)
    extrapolated = np.zeros((1,) * x.ndim, dtype=bool)
    for axis in range(x.ndim):
        in_size, out_size, scale = x.shape[axis], int(out_shape[axis]), float(scales[axis])
        axis_roi = None if roi is None else (roi[axis], roi[axis + x.ndim])
        unchanged = out_size == in_size and math.isclose(scale, 1.0) and (
            axis_roi is None or (math.isclose(axis_roi[0], 0) and math.isclose(axis_roi[1], 1)))
        if unchanged:
            continue
        if coordinate_transformation_mode == "tf_crop_and_resize" and axis_roi is None:
            raise KernelError("Resize: tf_crop_and_resize needs the roi input")
        coords, outside = source_coordinates(coordinate_transformation_mode, out_size, in_size,
                                             scale, axis_roi)
        if mode == "nearest":
            result = np.take(result, nearest_indices(coords, nearest_mode, in_size), axis=axis)
        elif mode in FILTERS:
            matrix = interpolation_matrix(coords, in_size, mode, scale,
                                          antialias=bool(antialias),
                                          cubic_coeff_a=cubic_coeff_a,
                                          exclude_outside=bool(exclude_outside))
            result = np.moveaxis(np.tensordot(matrix, result, axes=([1], [axis])), 0, axis)
        else:
            raise KernelError(f"Resize: mode {mode!r} is not nearest, linear or cubic")
        if outside is not None:
            shape = [1] * x.ndim
            shape[axis] = out_size
            extrapolated = extrapolated | outside.reshape(shape)
    if extrapolated.any():
        result = np.where(extrapolated, extrapolation_value, result)
    if np.issubdtype(x.dtype, np.integer) and mode != "nearest":
        info = np.iinfo(x.dtype)
        result = np.clip(np.round(result), info.min, info.max)
    return result.astype(x.dtype, copy=False)


def output_shape(shape, scales=None, sizes=None, axes=None, policy="stretch"):
    """(output shape, per-axis scales) from either scales or sizes, as Resize-18 defines."""
    rank = len(shape)
    axes = [a % rank for a in axes] if axes is not None else list(range(rank))
    if sizes is not None and np.size(sizes):
        target = list(shape)
        for axis, size in zip(axes, np.asarray(sizes).reshape(-1)):
            target[axis] = int(size)
        factors = [t / s if s else 1.0 for t, s in zip(target, shape)]
        if policy in ("not_larger", "not_smaller"):
            pick = min if policy == "not_larger" else max
            common = pick(factors[a] for a in axes)
            factors = [common if i in axes else 1.0 for i in range(rank)]
            target = [int(common * shape[i] + 0.5) if i in axes else shape[i]
                      for i in range(rank)]
        elif policy != "stretch":
            raise KernelError(f"Resize: keep_aspect_ratio_policy {policy!r} is not stretch, "
                              "not_larger or not_smaller")
        return target, factors
    if scales is None or not np.size(scales):
        raise KernelError("Resize: needs scales or sizes")
    factors = [1.0] * rank
    for axis, scale in zip(axes, np.asarray(scales, dtype=np.float64).reshape(-1)):
        factors[axis] = float(scale)
    return [int(s * f) for s, f in zip(shape, factors)], factors


def _full_roi(roi, axes, rank):
    if roi is None or not np.size(roi):
        return None
    roi = np.asarray(roi, dtype=np.float64).reshape(-1)
    if axes is None:
        return roi
    full = np.concatenate([np.zeros(rank), np.ones(rank)])
    for i, axis in enumerate(a % rank for a in axes):
        full[axis], full[rank + axis] = roi[i], roi[len(axes) + i]
    return full


@register_kernel
class Resize(Kernel):
    """Inputs X, roi, scales, sizes (opset 11+); the importer states opset 10's (X, scales)
    in that form."""

    op_type = "Resize"
    layouts = ("NCHW",)
    ops_per_element = 4

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]  # the scales are an input the key does not carry

    def _run(self, x, roi=None, scales=None, sizes=None, *, mode="nearest", axes=None,
             coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor",
             cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=0.0, antialias=0,
             keep_aspect_ratio_policy="stretch"):
        target, factors = output_shape(x.shape, scales, sizes, axes, keep_aspect_ratio_policy)
        return (resize(x, target, factors, mode=mode, roi=_full_roi(roi, axes, x.ndim),
                       coordinate_transformation_mode=coordinate_transformation_mode,
                       nearest_mode=nearest_mode, cubic_coeff_a=cubic_coeff_a,
                       exclude_outside=exclude_outside,
                       extrapolation_value=extrapolation_value, antialias=antialias),)


@register_kernel
class Upsample(Kernel):
    """Opset 9's Upsample: asymmetric coordinates, nearest rounds down."""

    op_type = "Upsample"
    layouts = ("NCHW",)
    ops_per_element = 4

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]

    def _run(self, x, scales_input=None, mode="nearest", scales=None):
        factors = scales_input if scales_input is not None else scales
        target, factors = output_shape(x.shape, factors)
        return (resize(x, target, factors, mode=mode, nearest_mode="floor",
                       coordinate_transformation_mode="asymmetric"),)
