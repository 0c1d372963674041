"""onnxruntime's fused contrib kernels (`com.microsoft`): the GELU family, FusedConv and
FusedMatMul. Their maths is the built-in kernels' (GELU of `kernel.gelu`, the tanh form of
ONNX's Gelu, Conv's and MatMul's `_run`, the epilogue activations); what they add is the
fusion onnxruntime's optimizer made (a bias, an activation, a scale) in the same launch."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import EPILOGUES, gelu, register_kernel
from npu_opslib.ops.activations import Gelu as OnnxGelu
from npu_opslib.ops.contrib import ContribKernel, ms
from npu_opslib.ops.matrix import MatMul, matmul_shape
from npu_opslib.ops.nn import CONV_ATTRS, Conv

QUICK_GELU_ALPHA = 1.702


def _in_dtype(y, x):
    return (np.asarray(y).astype(x.dtype, copy=False),)


@register_kernel
class Gelu(ContribKernel):
    """0.5 x (1 + erf(x / sqrt 2)): ONNX's exact GELU."""

    op_type = ms("Gelu")
    ops_per_element = 8

    def _run(self, x):
        return _in_dtype(gelu(x), x)


@register_kernel
class BiasGelu(ContribKernel):
    """Gelu(A + B), B a bias broadcast over the last axis."""

    op_type = ms("BiasGelu")
    ops_per_element = 9

    def _run(self, a, b):
        return _in_dtype(gelu(a + b), a)


@register_kernel
class FastGelu(ContribKernel):
    """GELU's tanh approximation of (X + bias), as ONNX's Gelu(approximate="tanh")."""

    op_type = ms("FastGelu")
    ops_per_element = 9

    def _run(self, x, bias=None):
        y = x if bias is None else x + bias
        return OnnxGelu._run(self, y, approximate="tanh")


@register_kernel
class QuickGelu(ContribKernel):
    """x * sigmoid(alpha x)."""

    op_type = ms("QuickGelu")
    ops_per_element = 6

    def _run(self, x, alpha=QUICK_GELU_ALPHA):
        x64 = x.astype(np.float64)
        return _in_dtype(x64 * EPILOGUES["Sigmoid"].apply(float(alpha) * x64), x)


def _hard_sigmoid(y, alpha=0.2, beta=0.5):
    return np.clip(alpha * y + beta, 0.0, 1.0)


# FusedConv's `activation` and what its `activation_params` are, in order.
ACTIVATIONS = {
    "Relu": (EPILOGUES["Relu"].apply, ()),
    "Tanh": (EPILOGUES["Tanh"].apply, ()),
    "Sigmoid": (EPILOGUES["Sigmoid"].apply, ()),
    "LeakyRelu": (EPILOGUES["LeakyRelu"].apply, ("alpha",)),
    "Clip": (EPILOGUES["Clip"].apply, ("min", "max")),
    "HardSigmoid": (_hard_sigmoid, ("alpha", "beta")),
}


def activate(y, activation, params):
    """`y` through FusedConv's named activation (None or "": none)."""
    if not activation:
        return y
    if activation not in ACTIVATIONS:
        raise KernelError(f"{ms('FusedConv')}: activation {activation!r} is not one of "
                          f"{', '.join(ACTIVATIONS)}")
    fn, names = ACTIVATIONS[activation]
    return fn(y, **{n: float(p) for n, p in zip(names, params or [])})


@register_kernel
class FusedConv(Conv, ContribKernel):
    """activation(Conv(X, W) + B + Z): Z, optional, is a residual summed before the
    activation. onnxruntime's layout is NCHW; the layout pass leaves it there."""

    op_type = ms("FusedConv")
    layouts = ("any",)
    fusions = ("",)

    def prepack(self, key, constants, attrs):
        Conv.prepack(self, key, constants, {k: v for k, v in attrs.items() if k in CONV_ATTRS})

    def _run(self, x, w, b=None, z=None, *, activation="", activation_params=None, **attrs):
        y = Conv._run_into(self, None, x, w, b,
                           **{k: v for k, v in attrs.items() if k in CONV_ATTRS})[0]
        if z is not None:
            y = y + z
        return _in_dtype(activate(y, activation, activation_params), x)

    def _run_into(self, out, *inputs, **attrs):
        return self._run(*inputs, **attrs)

    def cost(self, sku, key, config, attrs):
        conv = Conv.cost(self, sku, key, config, attrs)
        out = int(np.prod(self.output_shapes(key, attrs)[0]))
        itemsize = costs.itemsize(key.precision)
        extra = int(np.prod(key.shapes[3])) * itemsize if len(key.shapes) > 3 else 0
        return conv + costs.vector(sku, key.precision, out, 2, bytes_read=extra,
                                   bytes_written=0)


def _transposed(x, trans_batch, trans):
    """FusedMatMul's operand: transBatch moves the first axis behind the other batch axes
    ([b0, b1.., m, k] -> [b1.., b0, m, k]... as onnxruntime's FusedMatMul), trans swaps the
    last two."""
    if trans_batch and x.ndim > 2:
        x = np.moveaxis(x, 0, x.ndim - 2)
    if trans:
        x = np.swapaxes(x, -1, -2)
    return x


@register_kernel
class FusedMatMul(MatMul, ContribKernel):
    """alpha * op(A) @ op(B), op a transpose of the matrices and/or the batch axes."""

    op_type = ms("FusedMatMul")
    fusions = ("",)
    precisions = ("fp32", "fp16", "bf16")

    def _run(self, a, b, *, alpha=1.0, transA=0, transB=0, transBatchA=0, transBatchB=0):
        a = _transposed(a, transBatchA, transA)
        b = _transposed(b, transBatchB, transB)
        y = MatMul._run(self, a, b)[0]
        return _in_dtype(y if float(alpha) == 1.0 else y * np.asarray(alpha, y.dtype), a)

    def _run_into(self, out, *inputs, **attrs):
        return self._run(*inputs, **attrs)

    def _operands(self, key, attrs):
        shapes = []
        for shape, tb, t in zip(key.shapes[:2], ("transBatchA", "transBatchB"),
                                ("transA", "transB")):
            dims = list(shape)
            if attrs.get(tb) and len(dims) > 2:
                dims = dims[1:-1] + dims[:1] + dims[-1:]
            if attrs.get(t) and len(dims) >= 2:
                dims[-1], dims[-2] = dims[-2], dims[-1]
            shapes.append(tuple(dims))
        return type(key)(key.op_type, tuple(shapes), key.precision, key.layout)

    def output_shapes(self, key, attrs):
        operands = self._operands(key, attrs)
        return [matmul_shape(*operands.shapes)]

    def configs(self, key, attrs):
        return MatMul.configs(self, self._operands(key, attrs), attrs)

    def cost(self, sku, key, config, attrs):
        return MatMul.cost(self, sku, self._operands(key, attrs), config, attrs)
