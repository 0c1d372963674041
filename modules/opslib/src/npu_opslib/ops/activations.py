"""Activations, transcendental functions and type casts beyond the 1.0 set (the vector unit)."""

from __future__ import annotations

import numpy as np
from scipy import special

from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, gelu, register_kernel
from npu_opslib.ops.elementwise import AxisSoftmax, _same_dtype, unary

SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function (scipy's, accurate to a few ulp), in float64 like the other
    transcendental kernels' references."""
    return special.erf(np.asarray(x, dtype=np.float64))


def _softplus(x):
    return np.logaddexp(0, x)


Sin = unary("Sin", np.sin, 4)
Cos = unary("Cos", np.cos, 4)
Tan = unary("Tan", np.tan, 4)
Asin = unary("Asin", np.arcsin, 4)
Acos = unary("Acos", np.arccos, 4)
Atan = unary("Atan", np.arctan, 4)
Sinh = unary("Sinh", np.sinh, 4)
Cosh = unary("Cosh", np.cosh, 4)
Asinh = unary("Asinh", np.arcsinh, 4)
Acosh = unary("Acosh", np.arccosh, 4)
Atanh = unary("Atanh", np.arctanh, 4)
Erf = unary("Erf", erf, 8)
Round = unary("Round", np.round)  # half to even, as ONNX
Softplus = unary("Softplus", _softplus, 4)
Softsign = unary("Softsign", lambda x: x / (1 + np.abs(x)), 2)
Mish = unary("Mish", lambda x: x * np.tanh(_softplus(x)), 8)
HardSwish = unary("HardSwish", lambda x: x * np.clip(x / 6 + 0.5, 0, 1), 3)


@register_kernel
class Gelu(Kernel):
    op_type = "Gelu"
    ops_per_element = 8

    def _run(self, x, approximate="none"):
        if approximate == "tanh":
            x64 = x.astype(np.float64)
            y = 0.5 * x64 * (1 + np.tanh(SQRT_2_OVER_PI * (x64 + 0.044715 * x64 ** 3)))
        elif approximate == "none":
            y = gelu(x)
        else:
            raise KernelError(f"Gelu: approximate {approximate!r} is not 'none' or 'tanh'")
        return _same_dtype(y, x)


@register_kernel
class Selu(Kernel):
    op_type = "Selu"
    ops_per_element = 4

    def _run(self, x, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
        return _same_dtype(gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), x)


@register_kernel
class Celu(Kernel):
    op_type = "Celu"
    ops_per_element = 4

    def _run(self, x, alpha=1.0):
        return _same_dtype(np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(
            np.minimum(x, 0) / alpha)), x)


@register_kernel
class ThresholdedRelu(Kernel):
    op_type = "ThresholdedRelu"

    def _run(self, x, alpha=1.0):
        return _same_dtype(np.where(x > alpha, x, 0), x)


@register_kernel
class Shrink(Kernel):
    op_type = "Shrink"

    def _run(self, x, bias=0.0, lambd=0.5):
        y = np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0))
        return _same_dtype(y, x)


@register_kernel
class PRelu(Kernel):
    op_type = "PRelu"

    def _run(self, x, slope):
        return _same_dtype(np.where(x < 0, x * slope, x), x)


@register_kernel
class Swish(Kernel):
    op_type = "Swish"
    ops_per_element = 5

    def _run(self, x, alpha=1.0):
        return _same_dtype(x / (1.0 + np.exp(-alpha * x)), x)


@register_kernel
class LogSoftmax(AxisSoftmax):
    op_type = "LogSoftmax"

    def along(self, x, axis):
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@register_kernel
class Hardmax(AxisSoftmax):
    op_type = "Hardmax"
    ops_per_element = 2

    def along(self, x, axis):
        first_max = np.expand_dims(np.argmax(x, axis=axis), axis)
        y = np.zeros_like(x)
        np.put_along_axis(y, first_max, 1, axis=axis)
        return y


@register_kernel
class CastLike(Kernel):
    op_type = "CastLike"

    def _run(self, x, like, saturate=None, round_mode=None):
        return (np.asarray(x).astype(like.dtype),)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]
