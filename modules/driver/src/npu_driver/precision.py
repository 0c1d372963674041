"""Functional emulation of the array's number formats, with the rounding real hardware does.

Kernels compute in numpy; these helpers make their results carry the error of the precision the
NPU runs at: fp16 rounds through numpy's IEEE half, bf16 keeps the upper 16 bits of float32
(round to nearest, ties to even), int8 is symmetric per-tensor quantization with int32
accumulation. Results come back as float32 so that the rest of the stack keeps one dtype.
"""

from __future__ import annotations

import numpy as np

from .errors import DriverError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
INT8_MAX = 127


def _check(precision: str) -> None:
    if precision not in PRECISIONS:
        raise DriverError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def round_bf16(values: np.ndarray) -> np.ndarray:
    """float32 rounded to the nearest bfloat16 (ties to even), returned as float32.

    NaN stays NaN (rounding its bits could carry into the exponent and make it infinite)."""
    array = np.asarray(values, dtype=np.float32)
    bits = array.view(np.uint32)
    lsb = (bits >> 16) & 1
    rounded = ((bits + np.uint32(0x7FFF) + lsb) & np.uint32(0xFFFF0000)).astype(np.uint32)
    return np.where(np.isnan(array), array, rounded.view(np.float32))


def round_to(values: np.ndarray, precision: str) -> np.ndarray:
    """`values` as stored at `precision` (float32 result); int8 is quantized and dequantized."""
    _check(precision)
    array = np.asarray(values, dtype=np.float32)
    if precision == "fp16":
        with np.errstate(over="ignore"):  # beyond fp16's range is inf, as on the hardware
            return array.astype(np.float16).astype(np.float32)
    if precision == "bf16":
        return round_bf16(array)
    if precision == "int8":
        quantized, scale = quantize_int8(array)
        return dequantize_int8(quantized, scale)
    return array


def int8_scale(values: np.ndarray) -> float:
    """Symmetric per-tensor scale: the largest magnitude maps to 127 (1.0 for all-zero input)."""
    peak = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return peak / INT8_MAX if peak > 0 and np.isfinite(peak) else 1.0


def quantize_int8(values: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """(int8 array, scale) with values ~= int8 * scale; rounds half to even, saturates at +-127."""
    array = np.asarray(values, dtype=np.float32)
    scale = int8_scale(array) if scale is None else float(scale)
    if not scale > 0:
        raise DriverError(f"int8 scale must be positive, got {scale!r}")
    quantized = np.clip(np.rint(array / scale), -INT8_MAX, INT8_MAX).astype(np.int8)
    return quantized, scale


def dequantize_int8(quantized: np.ndarray, scale: float) -> np.ndarray:
    return quantized.astype(np.float32) * np.float32(scale)


def matmul(a: np.ndarray, b: np.ndarray, precision: str) -> np.ndarray:
    """a @ b as the array computes it at `precision`, returned as float32.

    fp16/bf16: operands rounded to the format, products accumulated in float32 (as the PEs do),
    the result rounded to the format. int8: both operands quantized, products accumulated in
    int32, the result rescaled to float32.
    """
    _check(precision)
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if precision == "int8":
        qa, scale_a = quantize_int8(a)
        qb, scale_b = quantize_int8(b)
        accumulated = np.matmul(qa.astype(np.int32), qb.astype(np.int32))
        return accumulated.astype(np.float32) * np.float32(scale_a * scale_b)
    if precision == "fp32":
        return np.matmul(a, b)
    return round_to(np.matmul(round_to(a, precision), round_to(b, precision)), precision)
