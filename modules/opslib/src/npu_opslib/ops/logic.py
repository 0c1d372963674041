"""Comparison, boolean, bitwise and selection kernels (the vector unit)."""

from __future__ import annotations

import numpy as np

from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel


class Compare(Kernel):
    """A broadcasting comparison: bool output."""

    fn = None

    def _run(self, a, b):
        return (np.asarray(type(self).fn(a, b), dtype=np.bool_),)


def _compare(op_type: str, fn) -> type[Kernel]:
    return register_kernel(type(op_type, (Compare,), {"op_type": op_type,
                                                      "fn": staticmethod(fn)}))


Equal = _compare("Equal", np.equal)
Less = _compare("Less", np.less)
Greater = _compare("Greater", np.greater)
LessOrEqual = _compare("LessOrEqual", np.less_equal)
GreaterOrEqual = _compare("GreaterOrEqual", np.greater_equal)
And = _compare("And", np.logical_and)
Or = _compare("Or", np.logical_or)
Xor = _compare("Xor", np.logical_xor)


@register_kernel
class Not(Kernel):
    op_type = "Not"

    def _run(self, x):
        return (np.logical_not(x),)


class Bitwise(Kernel):
    fn = None

    def _run(self, *inputs):
        return (np.asarray(type(self).fn(*inputs), dtype=inputs[0].dtype),)


def _bitwise(op_type: str, fn) -> type[Kernel]:
    return register_kernel(type(op_type, (Bitwise,), {"op_type": op_type,
                                                      "fn": staticmethod(fn)}))


BitwiseAnd = _bitwise("BitwiseAnd", np.bitwise_and)
BitwiseOr = _bitwise("BitwiseOr", np.bitwise_or)
BitwiseXor = _bitwise("BitwiseXor", np.bitwise_xor)
BitwiseNot = _bitwise("BitwiseNot", np.invert)


@register_kernel
class BitShift(Kernel):
    op_type = "BitShift"

    def _run(self, x, y, direction="LEFT"):
        if direction not in ("LEFT", "RIGHT"):
            raise KernelError(f"BitShift: direction {direction!r} is not LEFT or RIGHT")
        shift = np.left_shift if direction == "LEFT" else np.right_shift
        return (shift(x, y.astype(x.dtype)).astype(x.dtype),)


@register_kernel
class Where(Kernel):
    op_type = "Where"

    def _run(self, condition, x, y):
        return (np.where(condition, x, y).astype(np.result_type(x, y), copy=False),)


@register_kernel
class IsNaN(Kernel):
    op_type = "IsNaN"

    def _run(self, x):
        return (np.isnan(x),)


@register_kernel
class IsInf(Kernel):
    op_type = "IsInf"

    def _run(self, x, detect_negative=1, detect_positive=1):
        positive = np.isposinf(x) if detect_positive else np.zeros(x.shape, np.bool_)
        negative = np.isneginf(x) if detect_negative else np.zeros(x.shape, np.bool_)
        return (positive | negative,)


@register_kernel
class Mod(Kernel):
    """fmod=0: the sign of the divisor (Python's and numpy's mod);
    fmod=1: the sign of the dividend (C's fmod)."""

    op_type = "Mod"
    ops_per_element = 2

    def _run(self, a, b, fmod=0):
        if fmod:
            return (np.fmod(a, b).astype(a.dtype, copy=False),)
        return (np.mod(a, b).astype(a.dtype, copy=False),)


@register_kernel
class Sign(Kernel):
    op_type = "Sign"

    def _run(self, x):
        return (np.sign(x).astype(x.dtype, copy=False),)
