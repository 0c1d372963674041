"""Elementwise and activation kernels (the vector unit)."""

from __future__ import annotations

import numpy as np

from npu_opslib.kernel import Kernel, fits_into, register_kernel


def _same_dtype(result, like) -> tuple[np.ndarray]:
    return (np.asarray(result, dtype=np.asarray(like).dtype),)


class Binary(Kernel):
    fn = None

    def _run(self, a, b):
        return _same_dtype(type(self).fn(a, b), a)

    def _run_into(self, out, a, b):
        if out is not None and isinstance(a, np.ndarray) and fits_into(out, a, [b]):
            return (type(self).fn(a, b, out=out),)
        return self._run(a, b)


@register_kernel
class Add(Binary):
    op_type = "Add"
    fn = np.add
    fusions = ("", "Relu")


@register_kernel
class Sub(Binary):
    op_type = "Sub"
    fn = np.subtract


@register_kernel
class Mul(Binary):
    op_type = "Mul"
    fn = np.multiply


@register_kernel
class Div(Kernel):
    op_type = "Div"

    def _run(self, a, b):
        if np.issubdtype(np.asarray(a).dtype, np.integer):
            # ONNX integer division truncates toward zero, numpy's floors.
            return _same_dtype(np.trunc(np.divide(a, b)), a)
        return _same_dtype(np.divide(a, b), a)


@register_kernel
class Pow(Kernel):
    op_type = "Pow"
    ops_per_element = 4

    def _run(self, a, b):
        return _same_dtype(np.power(a, b), a)


class Variadic(Kernel):
    fn = None

    def _run(self, *inputs):
        result = inputs[0]
        for x in inputs[1:]:
            result = type(self).fn(result, x)
        return _same_dtype(result, inputs[0])


@register_kernel
class Sum(Variadic):
    op_type = "Sum"
    fn = np.add
    fusions = ("", "Relu")


@register_kernel
class Max(Variadic):
    op_type = "Max"
    fn = np.maximum


@register_kernel
class Min(Variadic):
    op_type = "Min"
    fn = np.minimum


@register_kernel
class Mean(Kernel):
    op_type = "Mean"

    def _run(self, *inputs):
        return _same_dtype(sum(inputs[1:], inputs[0]) / len(inputs), inputs[0])


class Unary(Kernel):
    def _run(self, x):
        return _same_dtype(self.fn(x), x)

    def fn(self, x):
        raise NotImplementedError


def unary(op_type: str, fn, ops_per_element: int = 1) -> type[Kernel]:
    cls = type(op_type, (Unary,), {"op_type": op_type, "ops_per_element": ops_per_element,
                                   "fn": staticmethod(fn)})
    return register_kernel(cls)


Relu = unary("Relu", lambda x: np.maximum(x, 0))
Sigmoid = unary("Sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)), 4)
Tanh = unary("Tanh", np.tanh, 4)
Exp = unary("Exp", np.exp, 4)
Log = unary("Log", np.log, 4)
Sqrt = unary("Sqrt", np.sqrt, 2)
Neg = unary("Neg", np.negative)
Abs = unary("Abs", np.abs)
Reciprocal = unary("Reciprocal", np.reciprocal, 2)
Floor = unary("Floor", np.floor)
Ceil = unary("Ceil", np.ceil)


@register_kernel
class LeakyRelu(Kernel):
    op_type = "LeakyRelu"

    def _run(self, x, alpha=0.01):
        return _same_dtype(np.where(x >= 0, x, x * alpha), x)


@register_kernel
class Elu(Kernel):
    op_type = "Elu"
    ops_per_element = 4

    def _run(self, x, alpha=1.0):
        return _same_dtype(np.where(x >= 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1)), x)


@register_kernel
class HardSigmoid(Kernel):
    op_type = "HardSigmoid"
    ops_per_element = 2

    def _run(self, x, alpha=0.2, beta=0.5):
        return _same_dtype(np.clip(alpha * x + beta, 0, 1), x)


@register_kernel
class Clip(Kernel):
    """Bounds are attributes before opset 11 and optional inputs after."""

    op_type = "Clip"

    def _run(self, x, min_input=None, max_input=None, min=None, max=None):
        low = min_input if min_input is not None and np.size(min_input) else min
        high = max_input if max_input is not None and np.size(max_input) else max
        low = -np.inf if low is None else low
        high = np.inf if high is None else high
        return _same_dtype(np.minimum(np.maximum(x, low), high), x)


class AxisSoftmax(Kernel):
    """Softmax-like ops over one axis; `coerce_2d=1` is the opset < 13 form (rows of the
    input flattened to 2-D [prod(:axis), prod(axis:)] and normalized per row), set by the
    importer. Subclasses say what happens `along` the axis."""

    ops_per_element = 5

    def _run(self, x, axis=-1, coerce_2d=0):
        shape = x.shape
        if coerce_2d:
            axis = axis % max(x.ndim, 1)
            x = x.reshape(int(np.prod(shape[:axis])), -1)
            axis = 1
        return _same_dtype(self.along(x, axis).reshape(shape), x)

    def along(self, x, axis):
        raise NotImplementedError


@register_kernel
class Softmax(AxisSoftmax):
    """Per-axis softmax (opset 13; earlier opsets through `coerce_2d`)."""

    op_type = "Softmax"

    def along(self, x, axis):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)


@register_kernel
class Identity(Kernel):
    op_type = "Identity"

    def _run(self, x):
        return (np.array(x, copy=True),)


@register_kernel
class Dropout(Kernel):
    """Inference: the identity (the mask, when asked for, is all ones)."""

    op_type = "Dropout"

    def _run(self, x, ratio=None, training_mode=None, seed=None, is_test=None):
        return (np.array(x, copy=True), np.ones(x.shape, dtype=bool))


@register_kernel
class Cast(Kernel):
    op_type = "Cast"

    # TensorProto.DataType values, so opslib needs no onnx import.
    DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
              7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
              13: np.uint64}

    def _run(self, x, to, saturate=None, round_mode=None):
        if int(to) not in self.DTYPES:
            from npu_opslib.errors import KernelError

            raise KernelError(f"Cast: target data type {to} not supported")
        return (np.asarray(x).astype(self.DTYPES[int(to)]),)
